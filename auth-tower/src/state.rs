//! [`Shared`]: what every clone of the layer and its services reads, built once by
//! [`AuthLayerBuilder::build`](crate::AuthLayerBuilder::build), plus what the service and
//! the routes have in common: the session rules (lifetime, idle timeout, refresh due) and
//! writing the session cookies.

use crate::cache::SessionCache;
use crate::cookies::{self, CookieAttrs};
use crate::refresh::Flights;
use crate::routes::AuthRoutes;
use auth_core::metrics::CacheCounters;
use auth_core::seal::Sealer;
use auth_core::{
    AuthConfig, CookieStore, Identity, IdentityProvider, LoginResult, Session, SessionStore, TokenSet, User,
};
use http::header::{CACHE_CONTROL, SET_COOKIE, VARY};
use http::{HeaderMap, HeaderValue};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The name of the pending-login cookie (before the `__Host-`/`__Secure-` prefix);
/// distinct from the session cookie and from the cookies identity providers set on their
/// own origin (`_session`, `_interaction`, ...).
pub(crate) const PENDING_COOKIE: &str = "auth_pending";
/// The sealing purpose of the pending-login cookie: it cannot be replayed as a session.
pub(crate) const PENDING_PURPOSE: &str = "pending";
/// How long a login may take, from the redirect to the provider to the callback.
pub(crate) const PENDING_TTL_SECS: u64 = 600;
/// The cookie-budget warning is logged at most this often (the rest are counted).
const BUDGET_WARNING_INTERVAL_SECS: u64 = 60;

/// The routes the layer serves itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Login,
    Callback,
    Logout,
    BackchannelLogout,
    /// `GET /auth/jwks`, served only with `publish_client_jwks = true`.
    Jwks,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: AuthConfig,
    pub(crate) providers: Vec<Arc<dyn IdentityProvider>>,
    pub(crate) store: Arc<dyn SessionStore>,
    /// Present only for the default cookie store (see [`SessionCache`]).
    pub(crate) cache: Option<Arc<SessionCache>>,
    /// The configured cookie store, when it is the store: it says which cookies were
    /// sealed with a previous secret and should be sealed again.
    pub(crate) resealer: Option<Arc<CookieStore>>,
    /// Whether the store lists sessions ([`SessionStore::listing`]): then sessions keep when
    /// they were last written and the browser's summary, and each signed-in request gets
    /// [`Sessions`](crate::Sessions).
    pub(crate) listing: bool,
    /// Whether sessions past `cookie_budget_bytes` live in a server-side store, behind an
    /// overflow ticket (`cookie_overflow = "store"`, see [`crate::overflow`]).
    pub(crate) overflow: bool,
    pub(crate) sealer: Sealer,
    pub(crate) routes: AuthRoutes,
    pub(crate) callback_path: String,
    pub(crate) attrs: CookieAttrs,
    /// The session cookie's full name (`cookie_name` with its `__Host-`/`__Secure-` prefix).
    pub(crate) session_cookie: String,
    /// The pending-login cookie's full name (`__Host-auth_pending` on https).
    pub(crate) pending_cookie: String,
    /// The pending-login cookie's attributes: always `Path=/`, never a `Domain`.
    pub(crate) pending_attrs: CookieAttrs,
    /// `{pending_cookie}_*`: what strips every pending-login cookie from the app's view.
    pub(crate) pending_prefix: String,
    /// Whether a provider accepts bearer tokens: the bearer path runs only then.
    pub(crate) bearer: bool,
    /// Verified bearer tokens, by exact value, until their `exp`.
    pub(crate) bearer_cache: SessionCache,
    /// Opaque bearer tokens the provider refused lately (asked again after a minute).
    pub(crate) bearer_refusals: crate::bearer::Refusals,
    /// The logins signed out lately, so in-flight requests do not write them back.
    pub(crate) ended: EndedLogins,
    /// When a refused back-channel request may next be logged at warn.
    pub(crate) refusal_log: LogThrottle,
    /// The "session store failed" error of requests served anonymous (every 10 s at most).
    pub(crate) store_error_log: LogThrottle,
    /// The "tokens could not be refreshed" warning (every 10 s at most).
    pub(crate) refresh_error_log: LogThrottle,
    /// The `jti`s of logout tokens that ended sessions, to refuse replays.
    pub(crate) logout_tokens: crate::routes::SeenLogoutTokens,
    /// Refreshes in flight, and their recent outcomes.
    pub(crate) flights: Flights,
    /// The "session cookies are too big" warning (once a minute at most).
    pub(crate) budget: LogThrottle,
    /// Lookups of `cache` (no-ops without it) and of `bearer_cache`: made when the layer is
    /// built, bound to the metrics recorder installed then, so counting costs a request an
    /// atomic add rather than a lookup by name (see [`auth_core::metrics`]).
    pub(crate) cookie_cache_counts: CacheCounters,
    pub(crate) bearer_cache_counts: CacheCounters,
    /// Lookups of a server-side store's own copies ([`SessionStore::cached`]).
    pub(crate) store_cache_counts: CacheCounters,
}

impl Shared {
    pub(crate) fn route_of(&self, path: &str) -> Option<Route> {
        if path == self.routes.login_path() {
            Some(Route::Login)
        } else if path == self.callback_path {
            Some(Route::Callback)
        } else if path == self.routes.logout_path() {
            Some(Route::Logout)
        } else if path == self.routes.backchannel_logout_path() {
            Some(Route::BackchannelLogout)
        } else if self.config.publish_client_jwks && path == self.routes.jwks_path() {
            Some(Route::Jwks)
        } else {
            None
        }
    }

    pub(crate) fn provider(&self, name: &str) -> Option<&Arc<dyn IdentityProvider>> {
        self.providers.iter().find(|p| p.name() == name)
    }

    pub(crate) fn user(&self, session: Arc<Session>) -> User {
        User::from_session(session, self.config.expose_tokens)
    }

    pub(crate) fn session_cookie(&self) -> &str {
        &self.session_cookie
    }

    /// The names of the pending-login cookies (the name and the `_*` pattern), which the
    /// app never sees either.
    pub(crate) fn pending_names(&self) -> [&str; 2] {
        [self.pending_cookie.as_str(), self.pending_prefix.as_str()]
    }

    /// The pending-login cookie of the login whose OAuth `state` is `state`:
    /// `{pending}_{16 hex digits}`, so that logins started in two tabs do not overwrite each
    /// other and a callback finds its own. The digits are FNV-1a of `state` (the same on
    /// every instance); the cookie's content is still compared with the whole `state`.
    pub(crate) fn pending_cookie_for(&self, state: &str) -> String {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in state.bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        format!("{}_{hash:016x}", self.pending_cookie)
    }

    /// The names of the pending-login cookies the request carries (at most a few dozen
    /// are looked at), with their values.
    pub(crate) fn pending_cookies<'h>(&self, request: &'h HeaderMap) -> Vec<(&'h str, &'h str)> {
        let prefix = format!("{}_", self.pending_cookie);
        let mut found = Vec::new();
        for value in request.get_all(http::header::COOKIE).iter().filter_map(|v| v.to_str().ok()) {
            for pair in value.split(';') {
                if let Some((name, value)) = pair.trim().split_once('=')
                    && name.starts_with(&prefix)
                    && found.len() < 32
                {
                    found.push((name, value));
                }
            }
        }
        found
    }

    // -------------------------------------------------------------------- session rules

    /// A session for a login completed at `now` by the browser that sent `request`.
    pub(crate) fn new_session(&self, identity: Identity, tokens: TokenSet, now: u64, request: &HeaderMap) -> Session {
        let identity = self.kept_claims(identity);
        let expires_at = self.expires_at(now, &identity);
        let tokens = self.config.keep_tokens.apply(tokens);
        // 96 random bits name the login.
        let login_id = auth_core::random_token()[..16].to_owned();
        Session::starting_at(identity, tokens, now, expires_at)
            .with_idle_expires_at(self.idle_deadline(now))
            .with_login_id(Some(login_id))
            .with_updated_at(self.written_at(now))
            .with_device(if self.listing { crate::sessions::device(request) } else { None })
    }

    /// The [`Sessions`](crate::Sessions) of a request signed in with `session`, whose cookie
    /// carries `ticket`, when the store lists sessions. They name the session by the ticket
    /// the store lists it by: `ticket` itself, or with `cookie_overflow = "store"` the server
    /// store's ticket of a session that overflowed (none for one in its cookie: nothing
    /// lists those).
    pub(crate) fn sessions(&self, session: &Arc<Session>, ticket: &str) -> Option<crate::Sessions> {
        let listed = match (self.listing, self.overflow) {
            (false, _) => None,
            (true, false) => Some(ticket),
            (true, true) => crate::overflow::server_ticket(ticket),
        }?;
        Some(crate::Sessions::new(Arc::clone(&self.store), Arc::clone(session), listed))
    }

    /// What a session written at `now` keeps as [`Session::updated_at`]: `now` when the
    /// store lists sessions (it is their "last seen"), else nothing.
    pub(crate) fn written_at(&self, now: u64) -> Option<u64> {
        self.listing.then_some(now)
    }

    /// `old` after a refresh at `now` returned `result`: new identity and tokens, the same
    /// start, the lifetime recomputed (a new ID token moves it with `end_with_id_token`),
    /// and the idle deadline renewed (the person is active).
    pub(crate) fn refreshed_session(&self, old: &Session, result: LoginResult, now: u64) -> Session {
        let mut identity = result.identity;
        // Still the provider that refreshed it, whatever name it wrote.
        identity.provider.clone_from(&old.identity.provider);
        let identity = self.kept_claims(identity);
        let expires_at = self.expires_at(old.created_at, &identity);
        let tokens = self.config.keep_tokens.apply(result.tokens);
        Session::starting_at(identity, tokens, old.created_at, expires_at)
            .with_idle_expires_at(self.idle_deadline(now))
            .with_login_id(old.login_id.clone())
            .with_updated_at(self.written_at(now))
            .with_device(old.device.clone())
    }

    /// `identity` with only the claims its provider's sessions keep (`keep_claims`,
    /// `drop_claims`), so that what is stored or sealed into the cookie is smaller.
    fn kept_claims(&self, mut identity: Identity) -> Identity {
        // Claims left as text (a refresh without a new ID token) are parsed only to filter.
        if let Some(provider) = self.config.providers.get(&identity.provider)
            && provider.filters_claims()
        {
            provider.retain_claims(&mut identity.claims);
        }
        identity
    }

    /// The absolute end of a session that started at `created_at`: its lifetime later, or
    /// earlier when the ID token expires first and `end_with_id_token` is set.
    fn expires_at(&self, created_at: u64, identity: &Identity) -> u64 {
        let absolute = created_at.saturating_add(self.config.session_lifetime_secs);
        let id_token_exp =
            identity.claims.get("exp").and_then(|exp| exp.as_u64().or_else(|| exp.as_f64().map(|f| f as u64)));
        match id_token_exp {
            Some(exp) if self.config.end_with_id_token => absolute.min(exp),
            _ => absolute,
        }
    }

    /// The idle deadline of a session used at `now`.
    pub(crate) fn idle_deadline(&self, now: u64) -> Option<u64> {
        self.config.idle_timeout_secs.map(|idle| now.saturating_add(idle))
    }

    /// Whether the access token of `session` is due for a refresh at `now`: it expires
    /// within `refresh_margin_secs` and a refresh token exists. Two integer compares.
    pub(crate) fn refresh_due(&self, session: &Session, now: u64) -> bool {
        let tokens = &session.tokens;
        tokens.refresh_token.is_some()
            && tokens.expires_at.is_some_and(|at| at <= now.saturating_add(self.config.refresh_margin_secs))
    }

    /// Whether the idle deadline of `session` should move at `now`. Renewing on every
    /// request would rewrite the cookie (or the store entry) every time, so it moves only
    /// once at least a tenth of the idle window (at least a second) has passed since the
    /// last renewal: a session ends after 90 % to 100 % of `idle_timeout_secs` without a
    /// request. A deadline without a configured timeout (the setting was removed) is lifted,
    /// and a session without one gets one.
    pub(crate) fn renewal_due(&self, session: &Session, now: u64) -> bool {
        match (self.config.idle_timeout_secs, session.idle_expires_at) {
            (Some(idle), Some(at)) => at.saturating_sub(now) <= idle.saturating_sub((idle / 10).max(1)),
            (None, None) => false,
            _ => true,
        }
    }

    /// Whether a cached session needs the slow path (a refresh or a renewal) at `now`.
    pub(crate) fn work_due(&self, session: &Session, now: u64) -> bool {
        self.refresh_due(session, now) || self.renewal_due(session, now)
    }

    // -------------------------------------------------------------------------- cookies

    /// The names of the session cookie and its chunks in the request.
    pub(crate) fn present_session_cookies(&self, request: &HeaderMap) -> Vec<String> {
        cookies::present_names(request, &self.session_cookie).into_iter().map(str::to_owned).collect()
    }

    /// `Set-Cookie` values carrying `ticket` for `session` (chunked when long) with a
    /// `Max-Age` of the session's remaining time at `now`, and deleting the chunks named in
    /// `present` that are no longer written. Warns when they exceed `cookie_budget_bytes`.
    pub(crate) fn session_cookies(
        &self,
        ticket: &str,
        session: &Session,
        present: &[String],
        now: u64,
    ) -> Vec<HeaderValue> {
        let written = cookies::split(&self.session_cookie, ticket);
        if written.len() > cookies::MAX_CHUNKS {
            tracing::error!(
                chunks = written.len(),
                max_chunks = cookies::MAX_CHUNKS,
                "the session cookie needs more chunks than the layer reads back, so the session will not be \
                 recognized; keep sessions on the server (session_store) or keep fewer tokens (keep_tokens)"
            );
        }
        let max_age = session.remaining_secs(now);
        let size = cookies::header_bytes(&written);
        warn_over_budget(&self.budget, size, self.config.cookie_budget_bytes, written.len(), now);
        let mut out: Vec<HeaderValue> = written
            .iter()
            .filter_map(|(name, value)| header_value(self.attrs.set_cookie(name, value, max_age)))
            .collect();
        for stale in present {
            if !written.iter().any(|(name, _)| name == stale) {
                out.extend(header_value(self.attrs.delete_cookie(stale)));
            }
        }
        out
    }

    /// `Set-Cookie` values deleting the session cookie and the chunks named in `present`
    /// (at least the plain name).
    pub(crate) fn clear_cookies(&self, present: &[String]) -> Vec<HeaderValue> {
        if present.is_empty() {
            return header_value(self.attrs.delete_cookie(&self.session_cookie)).into_iter().collect();
        }
        present.iter().filter_map(|name| header_value(self.attrs.delete_cookie(name))).collect()
    }

    /// `Set-Cookie` values deleting the session cookie and every chunk of it the request
    /// carries (at least the plain name).
    pub(crate) fn clear_session_cookies(&self, request: &HeaderMap) -> Vec<HeaderValue> {
        self.clear_cookies(&self.present_session_cookies(request))
    }
}

/// How long a logout is remembered in this process, against requests that were in flight.
const ENDED_MEMORY_SECS: u64 = 15 * 60;
/// [`ENDED_MEMORY_SECS`] as a duration.
pub(crate) const ENDED_MEMORY: std::time::Duration = std::time::Duration::from_secs(ENDED_MEMORY_SECS);
/// How many logouts are remembered at most.
const ENDED_MAX: usize = 10_000;

/// A login's key in [`EndedLogins`]: its random name ([`Session::login_id`]), looked up
/// without allocating; for sessions written before logins had one, NUL, provider, subject
/// and start (`created_at`, in seconds), which no login id (base64url) can equal.
fn legacy_key(session: &Session) -> String {
    format!("\0{}\u{1f}{}\u{1f}{}", session.identity.provider, session.identity.subject, session.created_at)
}

/// The logins signed out lately in this process, so that a request that was in flight when
/// its session was signed out (a slow handler, a refresh waiting on the token endpoint)
/// does not write the session cookie back, and no cookie of the signed-out login a browser
/// (or a thief) may still send opens here: logout wins. A login is named by a random id
/// that refreshes and renewals keep, so every cookie of it is refused (also one a refresh
/// wrote just before the logout) and a new login of the same person is not. Sessions
/// written before logins were named are told by provider, subject and start, and the
/// signed-out cookie by a fingerprint of its ticket. Times are in milliseconds. Per
/// process: with the cookie store, another instance cannot know (documented).
#[derive(Debug, Default)]
pub(crate) struct EndedLogins {
    /// Login to (when it was signed out, in Unix milliseconds; the signed-out ticket's fingerprint).
    ended: std::sync::Mutex<std::collections::HashMap<String, (u64, u64)>>,
    /// Tickets signed out while the store failed (its session may still be there), by
    /// fingerprint, to when: refused here until the store has deleted them.
    undeleted: std::sync::Mutex<std::collections::HashMap<u64, u64>>,
}

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_millis() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Inserts `key` into a memory of [`EndedLogins`] bounded at [`ENDED_MAX`] entries: when
/// full, entries older than [`ENDED_MEMORY_SECS`] at `now_ms` go, then (still full of fresh
/// ones) the oldest. `at` reads an entry's time (Unix milliseconds).
fn remember<K: std::hash::Hash + Eq + Clone, V>(
    map: &mut std::collections::HashMap<K, V>,
    key: K,
    value: V,
    now_ms: u64,
    at: impl Fn(&V) -> u64,
) {
    if map.len() >= ENDED_MAX {
        map.retain(|_, v| at(v).saturating_add(ENDED_MEMORY_SECS * 1000) > now_ms);
        if map.len() >= ENDED_MAX
            && let Some(oldest) = map.iter().min_by_key(|(_, v)| at(v)).map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
    }
    map.insert(key, value);
}

impl EndedLogins {
    /// Runs `f` with the entry of `session`'s login, if any.
    fn with_entry<T>(&self, session: &Session, f: impl FnOnce(Option<&(u64, u64)>) -> T) -> T {
        let ended = self.ended.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if ended.is_empty() {
            return f(None);
        }
        match &session.login_id {
            Some(id) => f(ended.get(id.as_str())),
            None => f(ended.get(&legacy_key(session))),
        }
    }

    /// Whether `a` and `b` are sessions of one login.
    pub(crate) fn same_login(a: &Session, b: &Session) -> bool {
        a.identity.provider == b.identity.provider
            && match (&a.login_id, &b.login_id) {
                (Some(x), Some(y)) => x == y,
                (None, None) => a.identity.subject == b.identity.subject && a.created_at == b.created_at,
                _ => false,
            }
    }

    /// FNV-1a of a ticket (the cookie's value).
    fn fingerprint(ticket: &str) -> u64 {
        ticket.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
    }

    /// Remembers that `session`, behind `ticket`, was signed out at `now_ms`.
    pub(crate) fn end(&self, session: &Session, ticket: &str, now_ms: u64) {
        let key = session.login_id.clone().unwrap_or_else(|| legacy_key(session));
        let mut ended = self.ended.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        remember(&mut ended, key, (now_ms, Self::fingerprint(ticket)), now_ms, |(at, _)| *at);
    }

    /// Whether the login of `session` was signed out after `began_ms` (a request that began
    /// before the logout must not write it back, whatever a refresh changed since).
    pub(crate) fn ended_since(&self, session: &Session, began_ms: u64) -> bool {
        self.with_entry(session, |entry| entry.is_some_and(|(at, _)| *at > began_ms))
    }

    /// Whether `session`, behind `ticket`, was signed out lately: its login (when named),
    /// or this very ticket.
    pub(crate) fn signed_out(&self, session: &Session, ticket: &str) -> bool {
        let fresh = |at: u64| at.saturating_add(ENDED_MEMORY_SECS * 1000) > unix_millis();
        // Every request whose cookie is not cached asks: no allocation, and the ticket is
        // only hashed when a login matched or a store failed lately.
        let named = session.login_id.is_some();
        if self.with_entry(session, |entry| {
            entry.is_some_and(|(at, f)| fresh(*at) && (named || *f == Self::fingerprint(ticket)))
        }) {
            return true;
        }
        let undeleted = self.undeleted.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        !undeleted.is_empty() && undeleted.get(&Self::fingerprint(ticket)).is_some_and(|at| fresh(*at))
    }

    /// Remembers that `ticket` was signed out at `now_ms` but the store could not delete its
    /// session (it was down): until [`deleted`](Self::deleted), this process refuses it
    /// whatever the store answers once it is back.
    pub(crate) fn undeleted(&self, ticket: &str, now_ms: u64) {
        let mut undeleted = self.undeleted.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        remember(&mut undeleted, Self::fingerprint(ticket), now_ms, now_ms, |at| *at);
    }

    /// The store deleted the session behind `ticket` after all.
    pub(crate) fn deleted(&self, ticket: &str) {
        let mut undeleted = self.undeleted.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        undeleted.remove(&Self::fingerprint(ticket));
    }
}

/// Lets a line that could repeat on every request through at most once every `every`
/// seconds per layer, counting the ones held back meanwhile, so that a popular app's log is
/// not flooded by one condition (oversized cookies, a store that is down, a flood of bad
/// logout tokens). Lock-free: a relaxed load and, when due, one compare-and-swap.
#[derive(Debug, Default)]
pub(crate) struct LogThrottle {
    /// When a line was last let through (Unix seconds), 0 for never.
    last: AtomicU64,
    /// Lines held back since then.
    held_back: AtomicU64,
}

impl LogThrottle {
    /// `Some(lines held back since the last one)` when a line may be logged at `now` (the
    /// caller logs it at its level), else `None` (counted; log it at debug, if at all).
    pub(crate) fn due(&self, now: u64, every: u64) -> Option<u64> {
        let last = self.last.load(Ordering::Relaxed);
        let due = last == 0 || now >= last.saturating_add(every);
        if !due || self.last.compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed).is_err() {
            self.held_back.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(self.held_back.swap(0, Ordering::Relaxed))
    }
}

/// How often a failing session store is logged at error (the other failures at debug).
const STORE_ERROR_LOG_SECS: u64 = 10;

impl Shared {
    /// Logs that the session store failed a request, which is served anonymous: while the
    /// store is down every request fails the same way, so one error line every few seconds
    /// (with how many were held back), the rest at debug.
    pub(crate) fn log_store_failure(&self, error: &auth_core::StoreError) {
        match self.store_error_log.due(auth_core::unix_now(), STORE_ERROR_LOG_SECS) {
            Some(held_back) => tracing::error!(
                %error,
                more_since_last_error = held_back,
                "session store failed; serving requests as anonymous (further failures in the next 10 s are \
                 logged at debug)"
            ),
            None => tracing::debug!(%error, "session store failed; serving the request as anonymous"),
        }
    }
}

/// Warns when the session cookies exceed `cookie_budget_bytes`, once a minute at most.
fn warn_over_budget(throttle: &LogThrottle, size: usize, budget: u64, cookies: usize, now: u64) {
    if budget == 0 || size as u64 <= budget {
        return;
    }
    let Some(held_back) = throttle.due(now, BUDGET_WARNING_INTERVAL_SECS) else { return };
    tracing::warn!(
        bytes = size,
        cookie_budget_bytes = budget,
        cookies,
        more_since_last_warning = held_back,
        "the session cookies exceed cookie_budget_bytes: browsers send them with every request and many \
         proxies refuse request headers past 8 KB; keep sessions on the server (session_store = \"memory\" \
         or a Redis URL), only the big ones (cookie_overflow = \"store\"), or fewer tokens (keep_tokens)"
    );
}

/// A `Set-Cookie` line as a header value; `None` (logged) if it is not a valid one, which
/// only a cookie name or path the builder did not check could cause.
pub(crate) fn header_value(line: String) -> Option<HeaderValue> {
    HeaderValue::try_from(line).map_err(|_| tracing::error!("a Set-Cookie value is not a valid header value")).ok()
}

/// Appends `Set-Cookie: line` to `headers`.
pub(crate) fn append_cookie(headers: &mut HeaderMap, line: String) {
    if let Some(value) = header_value(line) {
        headers.append(SET_COOKIE, value);
    }
}

/// Appends `set_cookies` to the headers of a response of the app behind the layer and, when
/// there is any, keeps the response out of shared caches: a CDN or proxy that stored it
/// would hand this browser's session (or its deletion) to everyone asking for the URL.
/// `Cache-Control` gets `private` instead of `public` and `s-maxage` (the rest is kept), or
/// becomes `no-store` when the app sent none; `Vary` gets `Cookie`. A response the layer
/// adds no cookie to is not touched.
pub(crate) fn append_to_app_response(headers: &mut HeaderMap, set_cookies: impl IntoIterator<Item = HeaderValue>) {
    let mut appended = false;
    for value in set_cookies {
        headers.append(SET_COOKIE, value);
        appended = true;
    }
    if appended {
        keep_from_shared_caches(headers);
    }
}

/// Makes the response `private` (or `no-store`) and adds `Cookie` to its `Vary`.
fn keep_from_shared_caches(headers: &mut HeaderMap) {
    let cache_control = private_cache_control(headers).unwrap_or(HeaderValue::from_static("no-store"));
    headers.insert(CACHE_CONTROL, cache_control);
    let varies = headers.get_all(VARY).iter().any(|value| {
        value.to_str().is_ok_and(|text| {
            text.split(',').map(str::trim).any(|field| field == "*" || field.eq_ignore_ascii_case("cookie"))
        })
    });
    if !varies {
        headers.append(VARY, HeaderValue::from_static("Cookie"));
    }
}

/// The response's `Cache-Control` directives with `private` first and without `public`,
/// `s-maxage` or a field-limited `private="..."`; `None` when it has no `Cache-Control` or
/// one that is not text (the caller then sends `no-store`).
fn private_cache_control(headers: &HeaderMap) -> Option<HeaderValue> {
    let mut values = headers.get_all(CACHE_CONTROL).iter().peekable();
    values.peek()?;
    let mut merged = String::from("private");
    for value in values {
        for directive in directives(value.to_str().ok()?) {
            let name = directive.split_once('=').map_or(directive, |(name, _)| name).trim_end();
            if ["public", "private", "s-maxage"].iter().any(|shared| name.eq_ignore_ascii_case(shared)) {
                continue;
            }
            merged.push_str(", ");
            merged.push_str(directive);
        }
    }
    HeaderValue::from_str(&merged).ok()
}

/// The comma-separated directives of a `Cache-Control` value, trimmed, empty ones left out;
/// a comma inside a quoted string (`no-cache="a, b"`) does not separate.
fn directives(text: &str) -> impl Iterator<Item = &str> {
    let mut quoted = false;
    let mut escaped = false;
    text.split(move |c: char| {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => return true,
            _ => {}
        }
        false
    })
    .map(str::trim)
    .filter(|directive| !directive.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttled_line_comes_once_per_interval_with_the_count_held_back() {
        let throttle = LogThrottle::default();
        assert_eq!(throttle.due(1_000, 10), Some(0));
        assert_eq!((throttle.due(1_001, 10), throttle.due(1_009, 10)), (None, None));
        assert_eq!(throttle.due(1_010, 10), Some(2), "two held back since the last line");
        assert_eq!(throttle.due(1_011, 10), None);
    }

    fn with(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    fn all(headers: &HeaderMap, name: &str) -> Vec<String> {
        headers.get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect()
    }

    fn cookie() -> HeaderValue {
        HeaderValue::from_static("s=v; Path=/")
    }

    /// The `Cache-Control` and `Vary` of a response with `before` once the layer adds a cookie.
    fn after(before: &[(&'static str, &'static str)]) -> (Vec<String>, Vec<String>) {
        let mut headers = with(before);
        append_to_app_response(&mut headers, [cookie()]);
        assert_eq!(all(&headers, "set-cookie"), ["s=v; Path=/"]);
        (all(&headers, "cache-control"), all(&headers, "vary"))
    }

    #[test]
    fn responses_with_layer_cookies_are_kept_from_shared_caches() {
        let cache_control = |before| after(before).0;
        assert_eq!(after(&[]), (vec!["no-store".into()], vec!["Cookie".into()]));
        assert_eq!(
            cache_control(&[("cache-control", "public, max-age=3600, s-maxage=600")]),
            ["private, max-age=3600"]
        );
        assert_eq!(
            cache_control(&[
                ("cache-control", "Public, S-MaxAge = 5"),
                ("cache-control", "no-cache=\"a, public\", must-revalidate")
            ]),
            ["private, no-cache=\"a, public\", must-revalidate"],
            "quoted commas do not separate, several headers merge"
        );
        assert_eq!(cache_control(&[("cache-control", "private=\"x\", max-age=60")]), ["private, max-age=60"]);
        assert_eq!(cache_control(&[("cache-control", "no-store")]), ["private, no-store"]);
        assert_eq!(cache_control(&[("cache-control", "")]), ["private"]);
        let vary = |before| after(before).1;
        assert_eq!(vary(&[("vary", "Accept-Encoding, Origin")]), ["Accept-Encoding, Origin", "Cookie"]);
        assert_eq!(vary(&[("vary", "accept-encoding,cookie")]), ["accept-encoding,cookie"], "not twice");
        assert_eq!(vary(&[("vary", "*")]), ["*"]);
        // Not text: no-store.
        let mut headers = HeaderMap::new();
        headers.insert(CACHE_CONTROL, HeaderValue::from_bytes(b"public, x=\xff").expect("obs-text"));
        append_to_app_response(&mut headers, [cookie()]);
        assert_eq!(all(&headers, "cache-control"), ["no-store"]);
    }

    #[test]
    fn responses_without_layer_cookies_are_untouched() {
        let mut headers = with(&[("cache-control", "public, s-maxage=600"), ("set-cookie", "app=1")]);
        let before = headers.clone();
        append_to_app_response(&mut headers, []);
        assert_eq!(headers, before);
    }
}
