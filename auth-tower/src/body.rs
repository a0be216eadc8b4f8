//! [`AuthBody`]: the response body of [`AuthService`](crate::AuthService).
//!
//! The service answers some requests itself (redirects, pages) and passes the others to
//! the inner service, so its body is one or the other. The inner body is passed through
//! untouched, without boxing; the error type stays the inner body's.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use pin_project_lite::pin_project;
use std::pin::Pin;
use std::task::{Context, Poll};

pin_project! {
    /// The inner service's body, or a page or redirect of the auth layer.
    ///
    /// It implements [`http_body::Body`] with the inner body's `Error`, so axum, hyper and
    /// tonic accept it wherever they accept the inner body.
    #[derive(Debug)]
    pub struct AuthBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<B> {
        Inner { #[pin] body: B },
        Full { #[pin] body: Full<Bytes> },
    }
}

impl<B> AuthBody<B> {
    /// Wraps the inner service's body.
    pub fn new(body: B) -> Self {
        Self { kind: Kind::Inner { body } }
    }

    /// A body of the layer itself.
    pub(crate) fn full(body: Full<Bytes>) -> Self {
        Self { kind: Kind::Full { body } }
    }
}

impl<B> Body for AuthBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx),
            KindProj::Full { body } => body.poll_frame(cx).map_err(|never| match never {}),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Full { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Full { body } => body.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn both_kinds_stream_their_bytes() {
        let inner: AuthBody<Full<Bytes>> = AuthBody::new(Full::new(Bytes::from_static(b"inner")));
        assert_eq!(inner.size_hint().exact(), Some(5));
        assert_eq!(inner.collect().await.map(|c| c.to_bytes()).ok(), Some(Bytes::from_static(b"inner")));

        let own: AuthBody<http_body_util::Empty<Bytes>> = AuthBody::full(Full::new(Bytes::from_static(b"page")));
        assert!(!own.is_end_stream());
        assert_eq!(own.collect().await.map(|c| c.to_bytes()).ok(), Some(Bytes::from_static(b"page")));
    }

    #[test]
    fn keeps_the_inner_error_type() {
        fn error_of<B: Body>(_: &B) -> std::any::TypeId
        where
            B::Error: 'static,
        {
            std::any::TypeId::of::<B::Error>()
        }
        type Inner = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;
        let body: AuthBody<Inner> = AuthBody::full(Full::new(Bytes::new()));
        assert_eq!(error_of(&body), std::any::TypeId::of::<std::io::Error>());
    }
}
