//! [`RequireLayer`] and its service [`Require`].

use super::future::ResponseFuture;
use auth_core::{Policy, User};
use http::{Request, Response};
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower_layer::Layer;
use tower_service::Service;

/// Guards a whole service with a [`Policy`]: requests it allows go through, the others
/// get the [`refusal`](super::refusal) their client expects (a redirect, a page, JSON, or
/// a gRPC status). Put it inside an [`AuthLayer`](crate::AuthLayer), which puts the
/// [`User`] it evaluates in the request (without one, everyone is anonymous).
///
/// With axum, guard some routes with `route_layer`:
///
/// ```
/// # #[cfg(feature = "axum")] {
/// use auth_tower::{Policy, RequireLayer};
/// use axum::{Router, routing::get};
///
/// let admin: Router = Router::new()
///     .route("/admin", get(|| async { "admins only" }))
///     .route_layer(RequireLayer::new(Policy::group("admins")));
/// # }
/// ```
///
/// With tonic: `Server::builder().layer(auth).layer(RequireLayer::new(policy))`; with
/// hyper: `RequireLayer::new(policy).layer(service)`.
#[derive(Clone)]
pub struct RequireLayer {
    policy: Arc<Policy>,
}

impl RequireLayer {
    /// A layer requiring `policy`.
    pub fn new(policy: Policy) -> Self {
        Self { policy: Arc::new(policy) }
    }

    /// Anyone signed in ([`Policy::LoggedIn`]).
    pub fn logged_in() -> Self {
        Self::new(Policy::LoggedIn)
    }
}

impl fmt::Debug for RequireLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireLayer").field("policy", &self.policy).finish()
    }
}

impl<S> Layer<S> for RequireLayer {
    type Service = Require<S>;

    fn layer(&self, inner: S) -> Require<S> {
        Require { inner, policy: Arc::clone(&self.policy) }
    }
}

/// The service of a [`RequireLayer`].
#[derive(Clone)]
pub struct Require<S> {
    inner: S,
    policy: Arc<Policy>,
}

impl<S: fmt::Debug> fmt::Debug for Require<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Require").field("inner", &self.inner).field("policy", &self.policy).finish()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Require<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<crate::AuthBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let decision = match request.extensions().get::<User>() {
            Some(user) => self.policy.evaluate(user),
            None => {
                tracing::warn!("RequireLayer without AuthLayer: is the auth layer applied outside the guard?");
                self.policy.evaluate(&User::anonymous())
            }
        };
        let (head, body) = request.into_parts();
        match super::refusal(&decision, &head) {
            None => ResponseFuture::inner(self.inner.call(Request::from_parts(head, body))),
            Some(refused) => ResponseFuture::refused(refused),
        }
    }
}
