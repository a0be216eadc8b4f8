//! [`AuthService`] and its [`ResponseFuture`]: the hot path.
//!
//! Every request that is not one of the layer's routes passes here. One pass over the
//! `Cookie` header, as bytes ([`cookies::scan`]), finds the session cookie in place (no jar,
//! no copy, no text validation of the other cookies) and computes the header without the
//! layer's own cookies, which replaces it before the inner service is called, so the inner
//! service never sees them. A header holding none of them is not touched.
//!
//! With the default cookie store a repeat cookie is found in the [`SessionCache`]; when its
//! session needs nothing (two integer compares: no refresh due, no idle renewal due), the
//! inner service is called at once and its future is not boxed. The cache is looked up with
//! the cookie's bytes (a split cookie's chunks, without joining them): a hit means they
//! equal a value that opened, so only a miss validates and joins them. Everything else (a cookie
//! seen for the first time, any cookie with a server-side store, the ticket of a session that
//! overflowed into one, a refresh, a renewal, a re-seal with the current secret) runs in one
//! boxed future ([`prepare`]) before the inner service is called, and the cookies it writes
//! go on the inner service's response.
//!
//! [`SessionCache`]: crate::cache::SessionCache

use crate::bearer;
use crate::body::AuthBody;
use crate::cookies;
use crate::page::Page;
use crate::refresh::{self, Outcome};
use crate::require::ClientKind;
use crate::routes;
use crate::sessions::Sessions;
use crate::state::{self, Shared};
use auth_core::{Session, User, unix_now};
use futures_util::future::BoxFuture;
use http::{HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tower_service::Service;

/// The service made by [`AuthLayer`](crate::AuthLayer) around your service `S`.
pub struct AuthService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> AuthService<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>) -> Self {
        Self { inner, shared }
    }
}

impl<S: Clone> Clone for AuthService<S> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), shared: Arc::clone(&self.shared) }
    }
}

impl<S: fmt::Debug> fmt::Debug for AuthService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthService").field("inner", &self.inner).finish_non_exhaustive()
    }
}

/// What the cookie of a request led to, before the inner service is called.
enum Lookup {
    /// Nothing to look up: anonymous, maybe with broken chunks to clear.
    Anonymous(Vec<HeaderValue>),
    /// A cached session that needs nothing.
    Ready(Arc<Session>),
    /// A server-side store's current copy of the session, which needs nothing; with the
    /// person's sessions when the store lists them.
    Stored(Arc<Session>, Option<Sessions>),
    /// Work before the inner service: load the session, and refresh or renew it.
    Prepare(Box<Pending>),
}

/// What [`prepare`] starts from (boxed: rare, and it would make every [`Lookup`] large).
struct Pending {
    ticket: String,
    cached: Option<Arc<Session>>,
    present: Vec<String>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AuthService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ReqBody: http_body::Body + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<AuthBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let shared = &self.shared;
        if let Some(route) = shared.route_of(request.uri().path()) {
            let (parts, body) = request.into_parts();
            let shared = Arc::clone(shared);
            let future: BoxFuture<'static, Page> = Box::pin(routes::handle(shared, route, parts, body));
            return ResponseFuture { kind: Kind::Route { future } };
        }

        if shared.bearer {
            match bearer::credentials(request.headers()) {
                bearer::Credentials::None => {}
                bearer::Credentials::Malformed(description) => {
                    let refused = bearer::invalid_request(ClientKind::of(request.headers()), description);
                    return ResponseFuture { kind: Kind::Route { future: Box::pin(std::future::ready(refused)) } };
                }
                bearer::Credentials::Bearer(token) => {
                    // An API client: the token alone says who it is; no cookie is read or written.
                    // A hit means these exact bytes were checked and verified before.
                    let cached = shared.bearer_cache.get_parts(&[(0, token)], unix_now());
                    shared.bearer_cache_counts.record(cached.is_some());
                    let unverified = match cached {
                        Some(_) => None,
                        None => match bearer::token_text(token) {
                            Ok(text) => Some(text.to_owned()),
                            Err(description) => {
                                let refused = bearer::invalid_request(ClientKind::of(request.headers()), description);
                                let future: BoxFuture<'static, Page> = Box::pin(std::future::ready(refused));
                                return ResponseFuture { kind: Kind::Route { future } };
                            }
                        },
                    };
                    // The app never sees the layer's cookies, whichever credential came.
                    cookies::scan(request.headers(), shared.session_cookie(), &shared.pending_names())
                        .into_strip()
                        .apply(request.headers_mut());
                    request.extensions_mut().insert(shared.routes.clone());
                    let Some(token) = unverified else {
                        request.extensions_mut().insert(cached.map(User::from_bearer).unwrap_or_default());
                        let future = self.inner.call(request);
                        return ResponseFuture { kind: Kind::Inner { future, set_cookies: Vec::new(), writes: None } };
                    };
                    let kind = ClientKind::of(request.headers());
                    let prepare = Box::pin(verify_bearer(Arc::clone(shared), token, kind));
                    let clone = self.inner.clone();
                    let service = std::mem::replace(&mut self.inner, clone);
                    let state = Box::new(Preparing { prepare, service, request });
                    return ResponseFuture { kind: Kind::Prepare { state } };
                }
            }
        }

        // One pass over the `Cookie` headers: the session cookie, and the headers without
        // the layer's cookies (applied below, once the lookup is done with the headers).
        let found = cookies::scan(request.headers(), shared.session_cookie(), &shared.pending_names());
        let lookup = match found.parts() {
            // Chunks without their siblings cannot be read, but would be sent forever.
            None if found.is_present() => Lookup::Anonymous(shared.clear_session_cookies(request.headers())),
            None => Lookup::Anonymous(Vec::new()),
            Some(parts) => {
                // The clock is read only when there is a session to check.
                let now = unix_now();
                // Split cookies sent in order are looked up without joining them.
                let joined = match parts {
                    cookies::Parts::Unordered => found.value(),
                    _ => None,
                };
                let cached = shared.cache.as_ref().and_then(|cache| match (&parts, &joined) {
                    (cookies::Parts::Whole(value), _) => cache.get_parts(&[(0, value)], now),
                    (cookies::Parts::Chunks(chunks), _) => cache.get_parts(chunks, now),
                    (cookies::Parts::Unordered, Some(value)) => cache.get_parts(&[(0, value.as_bytes())], now),
                    (cookies::Parts::Unordered, None) => None,
                });
                shared.cookie_cache_counts.record(cached.is_some());
                match cached {
                    Some(session) if !shared.work_due(&session, now) => Lookup::Ready(session),
                    // A miss with the cookie store: opened here, without a future.
                    None if shared.cache.is_some() && shared.resealer.is_some() => {
                        match joined.or_else(|| found.value()) {
                            Some(ticket) => shared.open_cookie(&ticket, now, request.headers()),
                            None => Lookup::Anonymous(shared.clear_session_cookies(request.headers())),
                        }
                    }
                    // A server-side store: its own current copy, if it keeps one (RedisStore).
                    None if shared.cache.is_none() => match joined.or_else(|| found.value()) {
                        Some(ticket) => shared.open_stored(&ticket, now, request.headers()),
                        None => Lookup::Anonymous(shared.clear_session_cookies(request.headers())),
                    },
                    cached => match joined.or_else(|| found.value()) {
                        Some(ticket) => Lookup::Prepare(Box::new(Pending {
                            ticket: ticket.into_owned(),
                            cached,
                            present: shared.present_session_cookies(request.headers()),
                        })),
                        // Out-of-order chunks with one missing.
                        None => Lookup::Anonymous(shared.clear_session_cookies(request.headers())),
                    },
                }
            }
        };
        found.into_strip().apply(request.headers_mut());
        request.extensions_mut().insert(shared.routes.clone());
        match lookup {
            Lookup::Anonymous(set_cookies) => {
                request.extensions_mut().insert(User::anonymous());
                ResponseFuture { kind: Kind::Inner { future: self.inner.call(request), set_cookies, writes: None } }
            }
            Lookup::Ready(session) => {
                request.extensions_mut().insert(shared.user(session));
                ResponseFuture {
                    kind: Kind::Inner { future: self.inner.call(request), set_cookies: Vec::new(), writes: None },
                }
            }
            Lookup::Stored(session, sessions) => {
                if let Some(sessions) = sessions {
                    request.extensions_mut().insert(sessions);
                }
                request.extensions_mut().insert(shared.user(session));
                ResponseFuture {
                    kind: Kind::Inner { future: self.inner.call(request), set_cookies: Vec::new(), writes: None },
                }
            }
            Lookup::Prepare(pending) => {
                let Pending { ticket, cached, present } = *pending;
                let prepare = Box::pin(prepare(Arc::clone(shared), ticket, cached, present));
                // The ready service goes with the request; `self` keeps a fresh clone.
                let clone = self.inner.clone();
                let service = std::mem::replace(&mut self.inner, clone);
                ResponseFuture { kind: Kind::Prepare { state: Box::new(Preparing { prepare, service, request }) } }
            }
        }
    }
}

/// Whether `session` passes `provider`'s admission rules: at once when they are the ones it
/// was admitted under, else checked again (the config changed since: a tightened rule ends
/// the sessions that no longer pass).
fn admitted(provider: &dyn auth_core::IdentityProvider, session: &Session) -> bool {
    if provider.admission() == session.admission {
        return true;
    }
    match provider.readmit(&session.identity) {
        Ok(()) => true,
        Err(error) => {
            tracing::info!(%error, "a session no longer passes the provider's admission rules; it ends");
            false
        }
    }
}

/// The session a response's `Set-Cookie` writes, and when its request began: at response
/// time, a logout of that login since then wins over the write.
struct Writes {
    shared: Arc<Shared>,
    session: Arc<Session>,
    /// When the request began, in Unix milliseconds.
    began: u64,
}

/// The user of a request, and the cookies to set on its response; or the layer's answer
/// instead of the inner service's (a refused bearer token).
struct Prepared {
    user: User,
    set_cookies: Vec<HeaderValue>,
    /// Present when `set_cookies` writes a session.
    writes: Option<Box<Writes>>,
    refused: Option<Page>,
    /// Present for a session of a store that lists sessions.
    sessions: Option<Sessions>,
}

impl Prepared {
    fn anonymous(set_cookies: Vec<HeaderValue>) -> Self {
        Self { user: User::anonymous(), set_cookies, writes: None, refused: None, sessions: None }
    }
}

/// Verifies a bearer token ([`bearer::authenticate`]) into the request's user, or the
/// refusal that answers it.
async fn verify_bearer(shared: Arc<Shared>, token: String, kind: ClientKind) -> Prepared {
    match bearer::authenticate(shared, token, kind).await {
        Ok(session) => Prepared { user: User::from_bearer(session), ..Prepared::anonymous(Vec::new()) },
        Err(refused) => Prepared { refused: Some(refused), ..Prepared::anonymous(Vec::new()) },
    }
}

impl Shared {
    /// A cache miss with the cookie store: opens `ticket` now and caches it when it is
    /// ready to serve; clears it when it does not open or has ended; the rare rest (a
    /// refresh or renewal due, a previous secret) goes the slow way.
    fn open_cookie(&self, ticket: &str, now: u64, headers: &http::HeaderMap) -> Lookup {
        let (Some(cookie), Some(cache)) = (&self.resealer, &self.cache) else {
            unreachable!("only called with the cookie store and its cache")
        };
        if self.overflow && crate::overflow::server_ticket(ticket).is_some() {
            // A session that overflowed into the server store: loaded from there, never cached.
            return Lookup::Prepare(Box::new(Pending {
                ticket: ticket.to_owned(),
                cached: None,
                present: self.present_session_cookies(headers),
            }));
        }
        match cookie.open(ticket) {
            Some((session, _)) if !self.usable(&session, ticket, now) => {
                tracing::debug!("session cookie ended (expired, provider removed or signed out); clearing it");
                Lookup::Anonymous(self.clear_session_cookies(headers))
            }
            None => {
                tracing::debug!("session cookie did not open (tampered or foreign secret); clearing it");
                Lookup::Anonymous(self.clear_session_cookies(headers))
            }
            Some((session, true)) => {
                let session = Arc::new(session);
                if self.work_due(&session, now) {
                    return Lookup::Prepare(Box::new(Pending {
                        ticket: ticket.to_owned(),
                        cached: Some(session),
                        present: self.present_session_cookies(headers),
                    }));
                }
                self.cache_unless_signed_out(cache, ticket, &session);
                Lookup::Ready(session)
            }
            // Sealed with a previous secret: the slow way seals it again.
            Some((_, false)) => Lookup::Prepare(Box::new(Pending {
                ticket: ticket.to_owned(),
                cached: None,
                present: self.present_session_cookies(headers),
            })),
        }
    }

    /// A request with a server-side store: serves the store's own current copy of the
    /// session ([`SessionStore::cached`]) when it has one that needs nothing; the rest goes
    /// the slow way, through [`SessionStore::load`].
    fn open_stored(&self, ticket: &str, now: u64, headers: &http::HeaderMap) -> Lookup {
        let copy = self.store.cached(ticket);
        self.store_cache_counts.record(copy.is_some());
        let copy = copy.filter(|session| self.usable(session, ticket, now));
        match copy {
            Some(session) if !self.work_due(&session, now) => {
                let sessions = self.sessions(&session, ticket);
                Lookup::Stored(session, sessions)
            }
            cached => Lookup::Prepare(Box::new(Pending {
                ticket: ticket.to_owned(),
                cached,
                present: self.present_session_cookies(headers),
            })),
        }
    }

    /// Caches `session` behind `ticket`, unless its login was signed out meanwhile: a logout
    /// records the login before it empties the cache of it, so an insert that lands after
    /// that emptying sees the record and takes its entry back (else hits, which do not ask,
    /// would serve the signed-out cookie; found by the soak). Never a session behind an
    /// overflow ticket: its server store may end it without the cache knowing.
    fn cache_unless_signed_out(&self, cache: &crate::cache::SessionCache, ticket: &str, session: &Arc<Session>) {
        if self.overflow && crate::overflow::server_ticket(ticket).is_some() {
            return;
        }
        cache.insert_unless(ticket, Arc::clone(session), |session| self.ended.signed_out(session, ticket));
    }

    /// Whether a session loaded from behind `ticket` may be served: not expired, of a
    /// provider still configured whose admission rules it passes, and not signed out lately
    /// on this instance. Stores must not return ended sessions; a custom one that does is
    /// not trusted. Removing a provider from the config signs its users out; the cookie
    /// store cannot revoke the copy a browser still sends of a signed-out login.
    pub(crate) fn usable(&self, session: &Session, ticket: &str, now: u64) -> bool {
        !session.is_expired_at(now)
            && self.provider(&session.identity.provider).is_some_and(|p| admitted(p.as_ref(), session))
            && !self.ended.signed_out(session, ticket)
    }
}

/// Loads the session behind `ticket` (unless `cached`), refreshes its tokens when due,
/// renews its idle deadline when due, re-seals it when the store asks to; returns its user
/// and the cookies to write. `present` names the session cookie and chunks of the request.
async fn prepare(shared: Arc<Shared>, ticket: String, cached: Option<Arc<Session>>, present: Vec<String>) -> Prepared {
    let began_ms = crate::state::unix_millis();
    let now = unix_now();
    let (mut session, loaded) = match cached {
        Some(session) => (session, false),
        None => match shared.store.load(&ticket).await {
            Ok(Some(session)) if shared.usable(&session, &ticket, now) => (Arc::new(session), true),
            Ok(_) => {
                tracing::debug!(
                    "session cookie did not open (tampered, foreign secret, expired or ended); clearing it"
                );
                return Prepared::anonymous(shared.clear_cookies(&present));
            }
            Err(error) => {
                shared.log_store_failure(&error);
                return Prepared::anonymous(Vec::new());
            }
        },
    };
    let mut current: Arc<str> = ticket.as_str().into();
    let mut changed = false;
    if shared.refresh_due(&session, now) {
        match refresh::refresh(&shared, &ticket, &session).await {
            Outcome::Refreshed { session: fresh, ticket: fresh_ticket } => {
                session = fresh;
                current = fresh_ticket;
                changed = true;
            }
            Outcome::LoggedOut => return Prepared::anonymous(shared.clear_cookies(&present)),
            Outcome::Kept => {}
            Outcome::StoreFailed => return Prepared::anonymous(Vec::new()),
        }
    }
    let reseal = loaded && shared.resealer.as_ref().is_some_and(|cookie| cookie.needs_reissue(&ticket));
    if !changed && (reseal || shared.renewal_due(&session, now)) {
        let mut renewed = (*session).clone();
        renewed.idle_expires_at = shared.idle_deadline(now);
        renewed.updated_at = shared.written_at(now).or(renewed.updated_at);
        match shared.store.update(&ticket, &renewed).await {
            Ok(fresh_ticket) => {
                session = Arc::new(renewed);
                current = fresh_ticket.into();
                changed = true;
            }
            Err(error) => tracing::warn!(%error, "could not renew the session; it goes on unchanged"),
        }
    }
    // The session passed every check: cache it (the store's update forgot the old ticket).
    if let Some(cache) = &shared.cache {
        shared.cache_unless_signed_out(cache, &current, &session);
    }
    let (set_cookies, writes) = if changed {
        let writes = Writes { shared: Arc::clone(&shared), session: Arc::clone(&session), began: began_ms };
        (shared.session_cookies(&current, &session, &present, now), Some(Box::new(writes)))
    } else {
        (Vec::new(), None)
    };
    // Only stores that list sessions pay for the handle (a hash of the ticket).
    let sessions = shared.sessions(&session, &current);
    Prepared { user: shared.user(session), set_cookies, writes, refused: None, sessions }
}

pin_project! {
    /// The response future of [`AuthService`].
    pub struct ResponseFuture<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        kind: Kind<S::Future, S, ReqBody>,
    }
}

/// The state of a request whose session is being prepared.
struct Preparing<S, B> {
    prepare: BoxFuture<'static, Prepared>,
    service: S,
    request: Request<B>,
}

pin_project! {
    #[project = KindProj]
    #[project_replace = KindReplace]
    enum Kind<F, S, B> {
        /// The inner service's response, plus cookies to set on it.
        Inner { #[pin] future: F, set_cookies: Vec<HeaderValue>, writes: Option<Box<Writes>> },
        /// Loading, refreshing or renewing the session, before calling the inner service
        /// (boxed: rare, and large enough to make every response future twice as big).
        Prepare { state: Box<Preparing<S, B>> },
        /// One of the layer's own routes.
        Route { future: BoxFuture<'static, Page> },
        /// Between `Prepare` and `Inner`, within one poll.
        Moving,
    }
}

impl<S: Service<Request<B>>, B> fmt::Debug for ResponseFuture<S, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.kind {
            Kind::Inner { .. } => "inner",
            Kind::Prepare { .. } => "preparing session",
            Kind::Route { .. } => "auth route",
            Kind::Moving => "moving",
        };
        f.debug_struct("ResponseFuture").field("state", &state).finish()
    }
}

impl<S, ReqBody, ResBody> Future for ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Output = Result<Response<AuthBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut kind = self.project().kind;
        loop {
            match kind.as_mut().project() {
                KindProj::Inner { future, set_cookies, writes } => {
                    let mut response = ready!(future.poll(cx))?.map(AuthBody::new);
                    if let Some(writes) = writes.take()
                        && writes.shared.ended.ended_since(&writes.session, writes.began)
                    {
                        // Signed out while this request ran: logout wins, the cookie stays gone.
                        *set_cookies = writes.shared.clear_cookies(&[]);
                    }
                    // A session cookie on a response a shared cache may store would be
                    // served to everyone: such a response is made private.
                    state::append_to_app_response(response.headers_mut(), set_cookies.drain(..));
                    return Poll::Ready(Ok(response));
                }
                KindProj::Route { future } => {
                    return future.as_mut().poll(cx).map(|page| Ok(page.map(AuthBody::full)));
                }
                KindProj::Prepare { state } => {
                    let Prepared { user, set_cookies, writes, refused, sessions } =
                        ready!(state.prepare.as_mut().poll(cx));
                    if let Some(refused) = refused {
                        kind.set(Kind::Moving);
                        return Poll::Ready(Ok(refused.map(AuthBody::full)));
                    }
                    let KindReplace::Prepare { state } = kind.as_mut().project_replace(Kind::Moving) else {
                        unreachable!("the state was Prepare a moment ago")
                    };
                    let Preparing { mut service, mut request, .. } = *state;
                    request.extensions_mut().insert(user);
                    if let Some(sessions) = sessions {
                        request.extensions_mut().insert(sessions);
                    }
                    kind.set(Kind::Inner { future: service.call(request), set_cookies, writes });
                }
                KindProj::Moving => unreachable!("ResponseFuture polled after a panic in the inner service"),
            }
        }
    }
}
