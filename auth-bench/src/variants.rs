//! The servers under test: one axum app per variant, all with the same trivial handler,
//! and the header that signs their clients in (a `Cookie`, or an `Authorization: Bearer`).

use crate::fixtures;
use crate::peer;
use auth_core::{AuthConfig, Session, SessionStore};
use auth_testkit::MockIdp;
use auth_tower::{AuthLayer, User};
use axum::Router;
use axum::routing::get;
use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderName, HeaderValue};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// What the handler answers a signed-in request.
pub const LOGGED_IN: &str = "logged-in";
/// What the handler answers an anonymous request (same length as [`LOGGED_IN`]).
pub const ANONYMOUS: &str = "anonymous";

/// One configuration of the server, as numbered in the issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// (1) The bare axum handler, no layer.
    Bare,
    /// (1b) The bare handler, the request carrying variant (3)'s cookie, unread: what
    /// sending and parsing the cookie costs without any layer.
    BareCookie,
    /// (2) `AuthLayer`, a request without cookie.
    Anonymous,
    /// (3) `AuthLayer`, a request with the sealed session of a typical Google login.
    LoggedIn,
    /// (4) The same with ID, access and refresh tokens, exposed, in a chunked cookie.
    Chunked,
    /// (5) Logged in with `auth-redis`'s `RedisStore`.
    Redis,
    /// (6) axum-login + tower-sessions with its memory store, logged in.
    Peer,
    /// (7) `AuthLayer`, an API client sending the same bearer JWT every time: verified
    /// against `MockIdp`'s keys on the first request, then found in the layer's cache.
    Bearer,
}

impl Variant {
    /// Every variant, in the order.
    pub const ALL: [Variant; 8] = [
        Variant::Bare,
        Variant::BareCookie,
        Variant::Anonymous,
        Variant::LoggedIn,
        Variant::Chunked,
        Variant::Redis,
        Variant::Peer,
        Variant::Bearer,
    ];

    /// The name used on command lines and in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Bare => "bare",
            Variant::BareCookie => "bare-cookie",
            Variant::Anonymous => "anonymous",
            Variant::LoggedIn => "logged-in",
            Variant::Chunked => "chunked",
            Variant::Redis => "redis",
            Variant::Peer => "axum-login",
            Variant::Bearer => "bearer",
        }
    }

    /// The row label of the table.
    pub fn label(self) -> &'static str {
        match self {
            Variant::Bare => "(1) bare axum",
            Variant::BareCookie => "(1b) bare axum, request carrying the cookie of (3), unread",
            Variant::Anonymous => "(2) AuthLayer, anonymous",
            Variant::LoggedIn => "(3) AuthLayer, logged in (cookie store)",
            Variant::Chunked => "(4) AuthLayer, logged in, tokens exposed, chunked cookie",
            Variant::Redis => "(5) AuthLayer, logged in (RedisStore)",
            Variant::Peer => "(6) axum-login + tower-sessions (memory store)",
            Variant::Bearer => "(7) AuthLayer, API client with a bearer JWT (verified once, then cached)",
        }
    }

    /// The variant named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }

    /// The body every request must get back: a logged-in variant that answers
    /// [`ANONYMOUS`] is broken, not fast.
    pub fn expected_body(self) -> &'static str {
        match self {
            Variant::Bare | Variant::BareCookie | Variant::Anonymous => ANONYMOUS,
            Variant::LoggedIn | Variant::Chunked | Variant::Redis | Variant::Peer | Variant::Bearer => LOGGED_IN,
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The handler of every variant but the peer's: reads `user.is_logged_in()`. Without the
/// layer (bare) the extractor finds no `User` and answers anonymous.
pub async fn home(user: User) -> &'static str {
    if user.is_logged_in() { LOGGED_IN } else { ANONYMOUS }
}

/// The request header that says who a variant's client is, sent with every request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    /// `cookie` or `authorization`.
    pub name: HeaderName,
    /// The header's value.
    pub value: String,
}

impl Credential {
    /// A `Cookie` header.
    pub fn cookie(value: String) -> Self {
        Self { name: COOKIE, value }
    }

    /// An `Authorization: Bearer` header.
    pub fn bearer(token: &str) -> Self {
        Self { name: AUTHORIZATION, value: format!("Bearer {token}") }
    }

    /// The header to put in requests, converted once.
    ///
    /// # Errors
    /// When the value is not a valid header value.
    pub fn header(&self) -> Result<(HeaderName, HeaderValue), String> {
        let value = HeaderValue::try_from(self.value.as_str()).map_err(|e| format!("{}: {e}", self.name))?;
        Ok((self.name.clone(), value))
    }
}

/// A server ready to be served: the app, the header of its clients, and what the app
/// needs running beside it.
#[derive(Debug)]
pub struct Prepared {
    /// The app.
    pub app: Router,
    /// The header every request carries; `None` for anonymous requests.
    pub credential: Option<Credential>,
    /// The bearer variant's identity provider, which serves the keys the app fetches on
    /// the first request: keep it as long as the app serves (dropping it stops it).
    pub idp: Option<MockIdp>,
}

impl Prepared {
    fn new(app: Router, credential: Option<Credential>) -> Self {
        Self { app, credential, idp: None }
    }
}

/// The audience of the bearer variant's access tokens (its config's `bearer_audience`).
pub const BEARER_AUDIENCE: &str = "api://bench";

/// Builds `variant`'s app and logs in the way its users would.
///
/// `redis_url` is needed by [`Variant::Redis`] only.
///
/// # Errors
/// A message, for example when the Redis variant is asked for but not built in.
pub async fn prepare(variant: Variant, redis_url: Option<&str>) -> Result<Prepared, String> {
    let handler = Router::new().route("/", get(home));
    match variant {
        Variant::Bare => Ok(Prepared::new(handler, None)),
        Variant::BareCookie => Ok(Prepared::new(handler, Some(google_cookie().await))),
        Variant::Anonymous => Ok(Prepared::new(handler.layer(auth_layer(fixtures::config(false), None)?), None)),
        Variant::LoggedIn => {
            let app = handler.layer(auth_layer(fixtures::config(false), None)?);
            Ok(Prepared::new(app, Some(google_cookie().await)))
        }
        Variant::Chunked => {
            let cookie = fixtures::cookie_header(&fixtures::sealed(&fixtures::google_session_with_tokens()).await);
            let app = handler.layer(auth_layer(fixtures::config(true), None)?);
            Ok(Prepared::new(app, Some(Credential::cookie(cookie))))
        }
        Variant::Redis => {
            let url = redis_url.ok_or("the redis variant needs --redis-url")?;
            let store = redis_store(url).await?;
            let ticket = save(&*store, &fixtures::google_session()).await?;
            let app = handler.layer(auth_layer(fixtures::config(false), Some(store))?);
            Ok(Prepared::new(app, Some(Credential::cookie(fixtures::cookie_header(&ticket)))))
        }
        Variant::Peer => {
            let app = peer::app();
            let cookie = peer::log_in(&app).await?;
            Ok(Prepared::new(app, Some(Credential::cookie(cookie))))
        }
        Variant::Bearer => {
            // A day: the token must not expire during a run (the layer caches it until `exp`).
            let idp = MockIdp::builder()
                .access_token_ttl(Duration::from_secs(24 * 3600))
                .start()
                .await
                .map_err(|e| format!("MockIdp: {e}"))?;
            let extra = format!("bearer_audience = \"{BEARER_AUDIENCE}\"\n");
            let config = fixtures::mock_idp_config(&idp, "http://127.0.0.1:3000/oauth2callback", &extra)?;
            let token = idp.access_token_for("alice", BEARER_AUDIENCE, "api:read");
            let app = handler.layer(auth_layer(config, None)?);
            Ok(Prepared { app, credential: Some(Credential::bearer(&token)), idp: Some(idp) })
        }
    }
}

/// The cookie of variant (3): a typical Google login's session, sealed by the cookie store.
async fn google_cookie() -> Credential {
    Credential::cookie(fixtures::cookie_header(&fixtures::sealed(&fixtures::google_session()).await))
}

/// The layer as the quick start builds it (`from_config`), or with `store`.
fn auth_layer(config: AuthConfig, store: Option<Arc<dyn SessionStore>>) -> Result<AuthLayer, String> {
    let providers = auth_providers::from_config(&config).map_err(|e| e.to_string())?;
    let builder = AuthLayer::builder(config).with_providers(providers);
    let builder = match store {
        Some(store) => builder.with_store(store),
        None => builder,
    };
    builder.build().map_err(|e| e.to_string())
}

async fn save(store: &dyn SessionStore, session: &Session) -> Result<String, String> {
    store.save(session).await.map_err(|e| format!("cannot save the bench session: {e}"))
}

#[cfg(feature = "redis")]
async fn redis_store(url: &str) -> Result<Arc<dyn SessionStore>, String> {
    let store = auth_redis::RedisStore::new(url).map_err(|e| e.to_string())?.with_prefix("auth-bench:");
    store.ping().await.map_err(|e| format!("Redis at {url} does not answer: {e}"))?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "redis"))]
async fn redis_store(_url: &str) -> Result<Arc<dyn SessionStore>, String> {
    Err(REDIS_NOT_BUILT.into())
}

/// Why the Redis variant is skipped when `auth-bench` is built without feature `redis`.
pub const REDIS_NOT_BUILT: &str = "skipped: auth-bench built without feature `redis`";

/// Whether this build can run the Redis variant.
pub const REDIS_BUILT: bool = cfg!(feature = "redis");

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn answer(prepared: &Prepared) -> String {
        let mut request = Request::get("/");
        if let Some(credential) = &prepared.credential {
            request = request.header(&credential.name, &credential.value);
        }
        let request = request.body(axum::body::Body::empty()).unwrap_or_default();
        let response = prepared.app.clone().oneshot(request).await.map_err(|e| e.to_string());
        let body = match response {
            Ok(response) => response.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default(),
            Err(error) => panic!("{error}"),
        };
        String::from_utf8_lossy(&body).into_owned()
    }

    #[tokio::test]
    async fn every_local_variant_answers_as_expected() {
        for variant in Variant::ALL.into_iter().filter(|v| *v != Variant::Redis) {
            let prepared = prepare(variant, None).await.unwrap_or_else(|e| panic!("{variant}: {e}"));
            // The first request fills the caches (the bearer token is verified), the second
            // is the one the bench repeats.
            assert_eq!(answer(&prepared).await, variant.expected_body(), "{variant}, first request");
            assert_eq!(answer(&prepared).await, variant.expected_body(), "{variant}, repeated");
            if let Some(idp) = &prepared.idp {
                let hits = idp.hits();
                assert_eq!((hits.discovery, hits.jwks), (1, 1), "{variant}: fetched once, then cached");
            }
        }
        assert_eq!(Variant::parse("axum-login"), Some(Variant::Peer));
        assert_eq!(Variant::parse("bearer"), Some(Variant::Bearer));
    }
}
