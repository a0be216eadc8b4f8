//! Refreshing access tokens before the inner service runs, one refresh per session at a
//! time.
//!
//! A session is due when its access token expires within `refresh_margin_secs` and it has
//! a refresh token ([`Shared::refresh_due`]). The requests of one person often arrive
//! together (a page and its assets, an app's parallel API calls); they must cause one call
//! to the token endpoint, not one each: providers rotate refresh tokens and refuse a spent
//! one (`invalid_grant`), which would end the session.
//!
//! - Within a process, requests due for the same tokens (refresh token, access token and
//!   its expiry: a [`FlightKey`]) join one *flight*: the first starts it on its own Tokio
//!   task (so a client hanging up cannot abandon a rotated refresh token half-way), the
//!   others wait for its outcome. The outcome is remembered for [`MEMO`] after the flight
//!   lands (unless the store failed: the next request tries again), so that requests still carrying the previous cookie (sent before the browser
//!   had the new one) get the new session and cookie instead of spending the old refresh
//!   token again, and so that a provider that is down is asked again at most that often
//!   per session. The key is not the refresh token alone: providers that do not rotate it
//!   (panva's `oidc-provider` for confidential clients, Google) hand the same one back, and
//!   the refreshed session, once due in its turn, must start a new flight rather than be
//!   given the remembered outcome, whose access token has expired by then.
//! - Across instances sharing a server-side store, the flight holds the store's lock
//!   `refresh:{ticket}` ([`SessionStore::lock`](auth_core::SessionStore::lock)).
//!   An instance that finds it taken polls the store until the session there is no longer
//!   due (another instance refreshed it), is gone (the refresh was refused, or someone
//!   logged out), or the lock is free (then it refreshes itself); it waits at most the
//!   lock's time to live. The cookie store has nothing to share: its instances refresh on
//!   their own.
//! - Waiting needs a timer, which is Tokio's. Off a Tokio runtime (another executor) a
//!   refresh runs within the request; when another instance holds the lock, the request
//!   does not wait: it goes on with the current tokens (logged once at warn), and a later
//!   request finds the refreshed session.

use crate::state::Shared;
use auth_core::{ProviderError, Session, SessionLock, unix_now};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing::Instrument as _;
use tracing::field::Empty;

/// How often a refresh the provider could not answer is logged at warn (the rest at debug).
const REFRESH_ERROR_LOG_SECS: u64 = 10;

/// How long the outcome of a flight is remembered after it landed.
pub(crate) const MEMO: Duration = Duration::from_secs(10);
/// How often an instance waiting for another one's refresh looks at the store.
const POLL: Duration = Duration::from_millis(50);

/// What a refresh led to.
#[derive(Clone)]
pub(crate) enum Outcome {
    /// Fresh tokens, stored: the session, and the ticket the cookie carries from now on.
    Refreshed { session: Arc<Session>, ticket: Arc<str> },
    /// The provider refused the refresh (`invalid_grant`, another subject, ...), or the
    /// session ended meanwhile: it is deleted, the request is anonymous.
    LoggedOut,
    /// Nothing changed (the provider is unreachable, cannot refresh, or another instance
    /// took too long): the session goes on as it is.
    Kept,
    /// The store failed: the request is served as anonymous (the cookie is kept).
    StoreFailed,
}

impl Outcome {
    fn name(&self) -> &'static str {
        match self {
            Self::Refreshed { .. } => "refreshed",
            Self::LoggedOut => "logged_out",
            Self::Kept => "kept",
            Self::StoreFailed => "store_error",
        }
    }
}

/// The refreshes in flight in this process, and the recent outcomes, by the tokens they
/// refresh.
#[derive(Default)]
pub(crate) struct Flights {
    map: Mutex<HashMap<FlightKey, Flight>>,
}

/// What a flight refreshes away from: the refresh token, and the access token and expiry
/// it replaces (a refresh always changes these, even when the refresh token stays).
#[derive(Clone, PartialEq, Eq, Hash)]
struct FlightKey {
    refresh_token: String,
    access_token: Option<String>,
    expires_at: Option<u64>,
}

impl fmt::Debug for Flights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = self.map.lock().map_or(0, |m| m.len());
        f.debug_struct("Flights").field("len", &len).finish()
    }
}

struct Flight {
    outcome: watch::Receiver<Option<Outcome>>,
    /// When the outcome is forgotten; `None` while in flight.
    forget_at: Option<Instant>,
}

impl Flight {
    fn keep(&self, now: Instant) -> bool {
        match self.forget_at {
            Some(at) => at > now,
            // In flight, unless its task died without an answer.
            None => self.outcome.borrow().is_some() || self.outcome.has_changed().is_ok(),
        }
    }
}

/// Refreshes `session` (carried by `ticket`), or joins the flight already doing so.
pub(crate) async fn refresh(shared: &Arc<Shared>, ticket: &str, session: &Arc<Session>) -> Outcome {
    let tokens = &session.tokens;
    let Some(refresh_token) = tokens.refresh_token.clone() else { return Outcome::Kept };
    let key = FlightKey { refresh_token, access_token: tokens.access_token.clone(), expires_at: tokens.expires_at };
    let (mut outcome, leader) = {
        let mut map = shared.flights.map.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        map.retain(|_, flight| flight.keep(now));
        match map.get(&key) {
            Some(flight) => (flight.outcome.clone(), None),
            None => {
                let (sender, receiver) = watch::channel(None);
                map.insert(key.clone(), Flight { outcome: receiver.clone(), forget_at: None });
                (receiver, Some(sender))
            }
        }
    };
    if let Some(sender) = leader {
        let flight = {
            let (shared, ticket, session) = (Arc::clone(shared), ticket.to_owned(), Arc::clone(session));
            async move {
                let outcome = run(&shared, &ticket, session).await;
                let mut map = shared.flights.map.lock().unwrap_or_else(PoisonError::into_inner);
                if matches!(outcome, Outcome::StoreFailed) {
                    // Not remembered: the next request asks the store again, which may be back.
                    map.remove(&key);
                } else if let Some(flight) = map.get_mut(&key) {
                    flight.forget_at = Some(Instant::now() + MEMO);
                }
                drop(map);
                let _ = sender.send(Some(outcome));
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(flight)),
            // Not on a Tokio runtime: refresh within this request.
            Err(_) => flight.await,
        }
    }
    match outcome.wait_for(Option::is_some).await {
        Ok(landed) => landed.clone().unwrap_or(Outcome::Kept),
        // The flight's task ended without an answer (the runtime is shutting down).
        Err(_) => Outcome::Kept,
    }
}

/// One flight: the refresh under the store's lock, in span `auth.refresh`.
async fn run(shared: &Shared, ticket: &str, session: Arc<Session>) -> Outcome {
    let span = tracing::info_span!("auth.refresh", provider = %session.identity.provider, outcome = Empty);
    async {
        let outcome = match shared.store.lock() {
            Some(lock) => locked(shared, lock, ticket).await,
            None => refresh_now(shared, ticket, &session).await,
        };
        tracing::Span::current().record("outcome", outcome.name());
        tracing::info!(outcome = outcome.name(), "session refresh finished");
        auth_core::metrics::refresh(&session.identity.provider, outcome.name());
        outcome
    }
    .instrument(span)
    .await
}

/// The refresh of a server-side session, once this instance holds the store's lock; or the
/// refresh another instance made meanwhile.
async fn locked(shared: &Shared, store: &dyn SessionLock, ticket: &str) -> Outcome {
    let key = format!("refresh:{ticket}");
    // A refresh is a token request, maybe a key-set fetch, and a store write.
    let lock_ttl = Duration::from_secs(shared.config.http_timeout_secs.saturating_mul(2).saturating_add(5));
    let give_up = Instant::now() + lock_ttl + Duration::from_secs(1);
    loop {
        match store.try_lock(&key, lock_ttl).await {
            Ok(true) => {
                // Loaded again under the lock: another instance may have refreshed (or ended)
                // the session since this request loaded it, spending its refresh token.
                let outcome = match reload(shared, ticket).await {
                    Ok(current) => refresh_now(shared, ticket, &current).await,
                    Err(settled) => settled,
                };
                if let Err(error) = store.unlock(&key).await {
                    tracing::warn!(%error, "could not release the refresh lock; it expires by itself");
                }
                return outcome;
            }
            Ok(false) => {}
            Err(error) => {
                tracing::error!(%error, "session store failed to take the refresh lock; serving the request as anonymous");
                return Outcome::StoreFailed;
            }
        }
        if Instant::now() >= give_up {
            tracing::warn!("another instance's refresh of this session took too long; going on with the old tokens");
            return Outcome::Kept;
        }
        if tokio::runtime::Handle::try_current().is_err() {
            tracing::warn!(
                "another instance is refreshing this session and waiting for it needs a Tokio runtime; \
                 going on with the old tokens"
            );
            return Outcome::Kept;
        }
        tokio::time::sleep(POLL).await;
        if let Err(settled) = reload(shared, ticket).await {
            return settled;
        }
    }
}

/// The session behind `ticket` as the store has it now: `Ok` when it still needs a
/// refresh, else how the request is settled (refreshed meanwhile by another holder of the
/// lock, ended or expired, or the store failed).
async fn reload(shared: &Shared, ticket: &str) -> Result<Session, Outcome> {
    let now = unix_now();
    match shared.store.load(ticket).await {
        // A custom store may hand back a session past its deadline: never serve it.
        Ok(Some(current)) if current.is_expired_at(now) => Err(Outcome::LoggedOut),
        Ok(Some(current)) if !shared.refresh_due(&current, now) => {
            Err(Outcome::Refreshed { session: Arc::new(current), ticket: ticket.into() })
        }
        Ok(Some(current)) => Ok(current),
        Ok(None) => Err(Outcome::LoggedOut),
        Err(error) => {
            shared.log_store_failure(&error);
            Err(Outcome::StoreFailed)
        }
    }
}

/// Asks the provider for fresh tokens and stores them.
async fn refresh_now(shared: &Shared, ticket: &str, session: &Session) -> Outcome {
    let Some(provider) = shared.provider(&session.identity.provider) else {
        tracing::warn!("the session's provider is no longer configured; its tokens cannot be refreshed");
        return Outcome::Kept;
    };
    match provider.refresh(session).await {
        Ok(result) => {
            // The provider admitted the refreshed identity under its current rules.
            let refreshed = shared.refreshed_session(session, result, unix_now()).with_admission(provider.admission());
            match shared.store.update(ticket, &refreshed).await {
                Ok(ticket) => Outcome::Refreshed { session: Arc::new(refreshed), ticket: ticket.into() },
                Err(error) => {
                    tracing::error!(%error, "the refreshed session could not be stored; serving the request as anonymous");
                    Outcome::StoreFailed
                }
            }
        }
        Err(error @ (ProviderError::Rejected(_) | ProviderError::Denied(_))) => {
            tracing::warn!(%error, "the provider refused the refresh; ending the session");
            if let Err(error) = shared.store.delete(ticket).await {
                tracing::warn!(%error, "could not delete the session whose refresh was refused");
            }
            Outcome::LoggedOut
        }
        Err(ProviderError::Unsupported(what)) => {
            tracing::debug!(what, "the provider cannot refresh; keeping the session");
            Outcome::Kept
        }
        Err(error) => {
            // While the provider is down every session due fails the same way: one warning
            // every few seconds per layer (with how many were held back), the rest at debug.
            match shared.refresh_error_log.due(unix_now(), REFRESH_ERROR_LOG_SECS) {
                Some(held_back) => tracing::warn!(
                    %error,
                    more_since_last_warning = held_back,
                    "tokens could not be refreshed; keeping the sessions as they are until their next try \
                     (further failures in the next 10 s are logged at debug)"
                ),
                None => tracing::debug!(%error, "tokens could not be refreshed; keeping the session as it is"),
            }
            Outcome::Kept
        }
    }
}
