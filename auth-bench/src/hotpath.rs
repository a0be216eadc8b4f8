//! The hot path without sockets: a variant's app driven in process, one request after
//! another, so that instruction counts (valgrind's callgrind) are reproducible and show
//! only the app, the layer and axum, not the network stack or the load generator.

use crate::load::{Credentials, Rotation};
use crate::variants::{self, Variant};
use auth_testkit::MockIdp;
use axum::Router;
use axum::body::Body;
use http::header::HOST;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// A variant's app and the requests its clients send, in turn as the load generator does.
#[derive(Debug)]
pub struct HotPath {
    app: Router,
    credentials: Credentials,
    expected: &'static str,
    /// Kept serving for the bearer variant, whose first request fetches its keys.
    _idp: Option<MockIdp>,
}

impl HotPath {
    /// Prepares `variant` as its server would, with `sessions` distinct users for a
    /// many-session variant ([`variants::clients`]).
    ///
    /// # Errors
    /// As [`variants::prepare`] and [`variants::clients`].
    pub async fn new(variant: Variant, redis_url: Option<&str>, sessions: usize) -> Result<Self, String> {
        let prepared = variants::prepare(variant, redis_url).await?;
        let credentials = variants::clients(variant, &prepared, sessions, redis_url).await?;
        // As `axum::serve` does for each connection: routes become services once, not per request.
        Ok(Self {
            app: prepared.app.with_state(()),
            credentials,
            expected: variant.expected_body(),
            _idp: prepared.idp,
        })
    }

    /// Sends `n` requests one after another; returns how many got the expected answer.
    pub async fn drive(&self, n: usize) -> usize {
        let mut good = 0;
        let mut rotation = Rotation::new(0, 1, self.credentials.clients());
        for _ in 0..n {
            let mut request = Request::get("/").header(HOST, "127.0.0.1:3000");
            if let Some((name, value)) = self.credentials.header(rotation.advance()) {
                request = request.header(name.clone(), value.clone());
            }
            let Ok(request) = request.body(Body::empty()) else { continue };
            let Ok(response) = self.app.clone().oneshot(request).await;
            if response.status() != StatusCode::OK {
                continue;
            }
            if let Ok(body) = response.into_body().collect().await {
                good += usize::from(body.to_bytes() == self.expected.as_bytes());
            }
        }
        good
    }
}
