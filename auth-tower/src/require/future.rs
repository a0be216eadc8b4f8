//! [`ResponseFuture`] of [`Require`](super::Require).

use crate::body::AuthBody;
use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use pin_project_lite::pin_project;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

pin_project! {
    /// The response future of [`Require`](super::Require): the inner service's, or a
    /// refusal ready at once.
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Inner { #[pin] future: F },
        Refused { response: Option<Response<Full<Bytes>>> },
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn inner(future: F) -> Self {
        Self { kind: Kind::Inner { future } }
    }

    pub(super) fn refused(response: Response<Full<Bytes>>) -> Self {
        Self { kind: Kind::Refused { response: Some(response) } }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.kind {
            Kind::Inner { .. } => "inner",
            Kind::Refused { .. } => "refused",
        };
        f.debug_struct("ResponseFuture").field("state", &state).finish()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<AuthBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { future } => Poll::Ready(Ok(ready!(future.poll(cx))?.map(AuthBody::new))),
            KindProj::Refused { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response.map(AuthBody::full))),
                None => panic!("ResponseFuture polled after it completed"),
            },
        }
    }
}
