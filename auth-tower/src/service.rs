//! [`AuthService`] and its [`ResponseFuture`]: the hot path.
//!
//! Every request that is not one of the layer's routes passes here. The session cookie is
//! read in place from the `Cookie` header (no jar, no copy when it is not chunked). With
//! the default cookie store a repeat cookie is found in the [`SessionCache`], so the inner
//! service is called at once and its future is not boxed; only a cookie seen for the first
//! time (or any cookie with a server-side store) waits for the store, through one boxed
//! future, before the inner service is called.
//!
//! [`SessionCache`]: crate::cache::SessionCache

use crate::body::AuthBody;
use crate::page::Page;
use crate::routes;
use crate::state::Shared;
use auth_core::cookies;
use auth_core::{Session, StoreError, User};
use futures_util::future::BoxFuture;
use http::header::SET_COOKIE;
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
    Cached(Arc<Session>),
    Load(String),
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AuthService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
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
            let (parts, _body) = request.into_parts();
            let future = Box::pin(routes::handle(Arc::clone(shared), route, parts));
            return ResponseFuture { kind: Kind::Route { future } };
        }

        let lookup = match cookies::read(request.headers(), shared.session_cookie()) {
            None if request.headers().contains_key(http::header::COOKIE) => {
                // Chunks without their siblings cannot be read, but would be sent forever.
                let broken = !cookies::present_names(request.headers(), shared.session_cookie()).is_empty();
                Lookup::Anonymous(if broken { shared.clear_session_cookies(request.headers()) } else { Vec::new() })
            }
            None => Lookup::Anonymous(Vec::new()),
            Some(ticket) => match shared.cache.as_ref().and_then(|c| c.get(&ticket)) {
                Some(session) => Lookup::Cached(session),
                None => Lookup::Load(ticket.into_owned()),
            },
        };
        request.extensions_mut().insert(shared.routes.clone());
        match lookup {
            Lookup::Anonymous(set_cookies) => {
                request.extensions_mut().insert(User::anonymous());
                ResponseFuture { kind: Kind::Inner { future: self.inner.call(request), set_cookies } }
            }
            Lookup::Cached(session) => {
                request.extensions_mut().insert(shared.user(session));
                ResponseFuture { kind: Kind::Inner { future: self.inner.call(request), set_cookies: Vec::new() } }
            }
            Lookup::Load(ticket) => {
                let store = Arc::clone(&shared.store);
                let load = Box::pin(async move {
                    let loaded = store.load(&ticket).await;
                    (ticket, loaded)
                });
                // The ready service goes with the request; `self` keeps a fresh clone.
                let clone = self.inner.clone();
                let service = std::mem::replace(&mut self.inner, clone);
                ResponseFuture { kind: Kind::Load { load, service, request, shared: Arc::clone(shared) } }
            }
        }
    }
}

type Loaded = (String, Result<Option<Session>, StoreError>);

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

pin_project! {
    #[project = KindProj]
    #[project_replace = KindReplace]
    enum Kind<F, S, B> {
        /// The inner service's response, plus cookies to set on it.
        Inner { #[pin] future: F, set_cookies: Vec<HeaderValue> },
        /// Waiting for the session store, before calling the inner service.
        Load { load: BoxFuture<'static, Loaded>, service: S, request: Request<B>, shared: Arc<Shared> },
        /// One of the layer's own routes.
        Route { future: BoxFuture<'static, Page> },
        /// Between `Load` and `Inner`, within one poll.
        Moving,
    }
}

impl<S: Service<Request<B>>, B> fmt::Debug for ResponseFuture<S, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.kind {
            Kind::Inner { .. } => "inner",
            Kind::Load { .. } => "loading session",
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
                KindProj::Inner { future, set_cookies } => {
                    let mut response = ready!(future.poll(cx))?.map(AuthBody::new);
                    for value in set_cookies.drain(..) {
                        response.headers_mut().append(SET_COOKIE, value);
                    }
                    return Poll::Ready(Ok(response));
                }
                KindProj::Route { future } => {
                    return future.as_mut().poll(cx).map(|page| Ok(page.map(AuthBody::full)));
                }
                KindProj::Load { load, .. } => {
                    let (ticket, loaded) = ready!(load.as_mut().poll(cx));
                    let KindReplace::Load { mut service, mut request, shared, .. } =
                        kind.as_mut().project_replace(Kind::Moving)
                    else {
                        unreachable!("the state was Load a moment ago")
                    };
                    let set_cookies = attach_user(&shared, &ticket, loaded, &mut request);
                    kind.set(Kind::Inner { future: service.call(request), set_cookies });
                }
                KindProj::Moving => unreachable!("ResponseFuture polled after a panic in the inner service"),
            }
        }
    }
}

/// Puts the loaded session's user (or anonymous) into `request`; returns the cookies to
/// set on the response: deletions when the cookie did not load.
fn attach_user<B>(
    shared: &Shared,
    ticket: &str,
    loaded: Result<Option<Session>, StoreError>,
    request: &mut Request<B>,
) -> Vec<HeaderValue> {
    let (user, set_cookies) = match loaded {
        Ok(Some(session)) => {
            let session = Arc::new(session);
            if let Some(cache) = &shared.cache {
                cache.insert(ticket, Arc::clone(&session));
            }
            (shared.user(session), Vec::new())
        }
        Ok(None) => {
            tracing::debug!("session cookie did not open (tampered, foreign secret or expired); clearing it");
            (User::anonymous(), shared.clear_session_cookies(request.headers()))
        }
        Err(error) => {
            tracing::error!(%error, "session store failed; serving the request as anonymous");
            (User::anonymous(), Vec::new())
        }
    };
    request.extensions_mut().insert(user);
    set_cookies
}
