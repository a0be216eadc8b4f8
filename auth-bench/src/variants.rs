//! The servers under test: one axum app per variant, all with the same trivial handler,
//! and the header that signs their clients in (a `Cookie`, or an `Authorization: Bearer`).
//!
//! The many-session variants ((1c), (8), (9)) are measured once per `--sessions` count,
//! each count a [`Case`]; their clients are many distinct users whose cookies `bench-run`
//! makes ([`crate::many`]), not their server.

use crate::fixtures;
use crate::load::Credentials;
use crate::many;
use crate::peer;
use auth_core::{AuthConfig, Session, SessionStore};
use auth_testkit::MockIdp;
use auth_tower::{AuthLayer, User};
use axum::Router;
use axum::routing::get;
use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderName, HeaderValue};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
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
    /// (1d) The bare handler, the request carrying variant (4)'s chunked cookies, unread:
    /// the bytes' share of (4)'s cost, as (1b) is of (3)'s.
    BareChunkedCookie,
    /// (2) `AuthLayer`, a request without cookie.
    Anonymous,
    /// (3) `AuthLayer`, a request with the sealed session of a typical Google login.
    LoggedIn,
    /// (3m) (3) with a Prometheus recorder installed (`metrics-exporter-prometheus`) before
    /// the layer is built, so its per-request counters (session cache hits) record: what
    /// metrics cost a signed-in request.
    LoggedInMetrics,
    /// (3d) (3) with `dpop = true` and (3)'s session holding a DPoP key (what a DPoP-bound
    /// login adds to its cookie): what DPoP costs a signed-in request.
    LoggedInDpop,
    /// (4) The same with ID, access and refresh tokens, exposed, in a chunked cookie.
    Chunked,
    /// (5) Logged in with `auth-redis`'s `RedisStore`.
    Redis,
    /// (6) axum-login + tower-sessions with its memory store, logged in.
    Peer,
    /// (7) `AuthLayer`, an API client sending the same bearer JWT every time: verified
    /// against `MockIdp`'s keys on the first request, then found in the layer's cache.
    Bearer,
    /// (1c) The bare handler, the requests carrying (8)'s cookies in turn, unread: the
    /// floor of (8), as (1b) is of (3).
    BareManyCookies,
    /// (8) `AuthLayer`, many distinct users, each with (3)'s kind of sealed session, their
    /// cookies sent in turn (cookie store).
    ManySessions,
    /// (8b) As (8), with the layer's default `session_cache_entries` (10,000): past that
    /// many users, most requests open their cookie.
    ManySessionsDefaultCache,
    /// (9) The same users' sessions in Redis (`RedisStore`), their tickets sent in turn.
    ManySessionsRedis,
}

/// Whose cookies the clients of a many-session variant send (see [`crate::many`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Crowd {
    /// The users' sessions sealed by the cookie store: (8)'s cookies, also sent to (1c).
    Sealed,
    /// The users' sessions saved in Redis: (9)'s cookies carry their tickets.
    Redis,
}

impl Variant {
    /// Every variant, in the table's order.
    pub const ALL: [Variant; 15] = [
        Variant::Bare,
        Variant::BareCookie,
        Variant::BareChunkedCookie,
        Variant::BareManyCookies,
        Variant::Anonymous,
        Variant::LoggedIn,
        Variant::LoggedInMetrics,
        Variant::LoggedInDpop,
        Variant::Chunked,
        Variant::Redis,
        Variant::Peer,
        Variant::Bearer,
        Variant::ManySessions,
        Variant::ManySessionsDefaultCache,
        Variant::ManySessionsRedis,
    ];

    /// The name used on command lines and in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Bare => "bare",
            Variant::BareCookie => "bare-cookie",
            Variant::BareChunkedCookie => "bare-chunked-cookie",
            Variant::Anonymous => "anonymous",
            Variant::LoggedIn => "logged-in",
            Variant::LoggedInMetrics => "logged-in-metrics",
            Variant::LoggedInDpop => "logged-in-dpop",
            Variant::Chunked => "chunked",
            Variant::Redis => "redis",
            Variant::Peer => "axum-login",
            Variant::Bearer => "bearer",
            Variant::BareManyCookies => "bare-many-cookies",
            Variant::ManySessions => "many-sessions",
            Variant::ManySessionsDefaultCache => "many-sessions-default-cache",
            Variant::ManySessionsRedis => "many-sessions-redis",
        }
    }

    /// The row label of the table; a many-session variant's names its count ([`Case::label`]).
    pub fn label(self) -> &'static str {
        match self {
            Variant::Bare => "(1) bare axum",
            Variant::BareCookie => "(1b) bare axum, request carrying the cookie of (3), unread",
            Variant::BareChunkedCookie => "(1d) bare axum, request carrying the chunked cookies of (4), unread",
            Variant::Anonymous => "(2) AuthLayer, anonymous",
            Variant::LoggedIn => "(3) AuthLayer, logged in (cookie store)",
            Variant::LoggedInMetrics => "(3m) AuthLayer, logged in (cookie store), Prometheus recorder installed",
            Variant::LoggedInDpop => "(3d) AuthLayer, logged in (cookie store), session holding a DPoP key",
            Variant::Chunked => "(4) AuthLayer, logged in, tokens exposed, chunked cookie",
            Variant::Redis => "(5) AuthLayer, logged in (RedisStore)",
            Variant::Peer => "(6) axum-login + tower-sessions (memory store)",
            Variant::Bearer => "(7) AuthLayer, API client with a bearer JWT (verified once, then cached)",
            Variant::BareManyCookies => "(1c) bare axum, requests carrying the cookies of (8) in turn, unread",
            Variant::ManySessions => {
                "(8) AuthLayer, distinct sessions rotating (cookie store, session_cache_entries = 100000)"
            }
            Variant::ManySessionsDefaultCache => {
                "(8b) AuthLayer, distinct sessions rotating (cookie store, default session_cache_entries = 10000)"
            }
            Variant::ManySessionsRedis => {
                "(9) AuthLayer, distinct sessions rotating (RedisStore, local copies of up to 100000)"
            }
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
            Variant::Bare
            | Variant::BareCookie
            | Variant::BareChunkedCookie
            | Variant::BareManyCookies
            | Variant::Anonymous => ANONYMOUS,
            Variant::LoggedIn
            | Variant::LoggedInMetrics
            | Variant::LoggedInDpop
            | Variant::Chunked
            | Variant::Redis
            | Variant::Peer
            | Variant::Bearer
            | Variant::ManySessions
            | Variant::ManySessionsDefaultCache
            | Variant::ManySessionsRedis => LOGGED_IN,
        }
    }

    /// For a many-session variant, whose cookies its clients send; `None` for the others,
    /// whose server signs its one client in itself ([`Prepared::credential`]).
    pub fn crowd(self) -> Option<Crowd> {
        match self {
            Variant::BareManyCookies | Variant::ManySessions | Variant::ManySessionsDefaultCache => Some(Crowd::Sealed),
            Variant::ManySessionsRedis => Some(Crowd::Redis),
            _ => None,
        }
    }

    /// Whether its server needs the bench's Redis (`--redis-url`).
    pub fn uses_redis(self) -> bool {
        matches!(self, Variant::Redis | Variant::ManySessionsRedis)
    }

    /// The variant whose server receives the same requests unread: the bare handler
    /// carrying the same cookies, to which the ratio "to floor" compares.
    pub fn floor(self) -> Option<Variant> {
        match self {
            Variant::LoggedIn | Variant::LoggedInMetrics => Some(Variant::BareCookie),
            Variant::Chunked => Some(Variant::BareChunkedCookie),
            Variant::ManySessions | Variant::ManySessionsDefaultCache => Some(Variant::BareManyCookies),
            _ => None,
        }
    }
}

/// A variant as a run measures it: a many-session variant once per `--sessions` count,
/// each in its own server process (so that peak RSS is per count).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Case {
    /// The variant.
    pub variant: Variant,
    /// How many distinct users take turns, for a many-session variant; `None` otherwise.
    pub sessions: Option<usize>,
}

impl Case {
    /// Each of `variants`, the many-session ones once per count of `sessions`.
    pub fn expand(variants: &[Variant], sessions: &[usize]) -> Vec<Case> {
        variants
            .iter()
            .flat_map(|&variant| match variant.crowd() {
                Some(_) => sessions.iter().map(|&n| Case { variant, sessions: Some(n) }).collect(),
                None => vec![Case { variant, sessions: None }],
            })
            .collect()
    }

    /// The name in the output and the JSON: the variant's, with `@N` for a count other
    /// than [`many::DEFAULT_SESSIONS`] (`many-sessions@1000`).
    pub fn name(&self) -> String {
        match self.sessions {
            Some(n) if n != many::DEFAULT_SESSIONS => format!("{}@{n}", self.variant.name()),
            _ => self.variant.name().to_owned(),
        }
    }

    /// The row label: the variant's, a many-session one with its count
    /// ("(8) AuthLayer, 100,000 distinct sessions rotating (cookie store)").
    pub fn label(&self) -> String {
        let Some(n) = self.sessions else { return self.variant.label().to_owned() };
        let (count, plural) = (thousands(n), if n == 1 { "" } else { "s" });
        match self.variant {
            Variant::BareManyCookies => {
                format!("(1c) bare axum, requests carrying the {count} cookie{plural} of (8) in turn, unread")
            }
            Variant::ManySessions => format!(
                "(8) AuthLayer, {count} distinct session{plural} rotating (cookie store, session_cache_entries = 100000)"
            ),
            Variant::ManySessionsDefaultCache => format!(
                "(8b) AuthLayer, {count} distinct session{plural} rotating (cookie store, default session_cache_entries = 10000)"
            ),
            Variant::ManySessionsRedis => {
                format!(
                    "(9) AuthLayer, {count} distinct session{plural} rotating (RedisStore, local copies of up to 100000)"
                )
            }
            other => other.label().to_owned(),
        }
    }

    /// The case whose server receives the same requests unread ([`Variant::floor`], at
    /// the same count).
    pub fn floor(&self) -> Option<Case> {
        self.variant.floor().map(|variant| Case { variant, sessions: self.sessions })
    }
}

/// `n` with commas between thousands: 100,000.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
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
    /// The header every request carries; `None` for anonymous requests and for the
    /// many-session variants, whose cookies `bench-run` makes ([`crate::many`]).
    pub credential: Option<Credential>,
    /// The bearer variant's identity provider, which serves the keys the app fetches on
    /// the first request: keep it as long as the app serves (dropping it stops it).
    pub idp: Option<MockIdp>,
    /// The metrics variant's Prometheus recorder, to read what it recorded.
    pub metrics: Option<PrometheusHandle>,
}

impl Prepared {
    fn new(app: Router, credential: Option<Credential>) -> Self {
        Self { app, credential, idp: None, metrics: None }
    }
}

/// The process's Prometheus recorder, installed as the global recorder on first use (as an
/// app installs it, before building its layer). It stays for the life of the process: each
/// variant runs in its own `bench-server` process, so only the metrics variant records;
/// where variants share a process (`bench-hotpath` runs one, the tests all), those prepared
/// after it record too.
fn prometheus() -> Result<PrometheusHandle, String> {
    static HANDLE: std::sync::OnceLock<Result<PrometheusHandle, String>> = std::sync::OnceLock::new();
    HANDLE.get_or_init(|| PrometheusBuilder::new().install_recorder().map_err(|e| e.to_string())).clone()
}

/// The key prefix of the Redis variants' `RedisStore`, in the server and in `bench-run`,
/// which saves the users of (9) with it.
pub const REDIS_PREFIX: &str = "auth-bench:";

/// The session cache of (8): room for the bench's default 100,000 users.
pub const MANY_SESSIONS_CACHE_ENTRIES: u64 = 100_000;

/// The audience of the bearer variant's access tokens (its config's `bearer_audience`).
pub const BEARER_AUDIENCE: &str = "api://bench";

/// Builds `variant`'s app and logs in the way its users would.
///
/// `redis_url` is needed by the variants that [use Redis](Variant::uses_redis) only.
///
/// # Errors
/// A message, for example when the Redis variant is asked for but not built in.
pub async fn prepare(variant: Variant, redis_url: Option<&str>) -> Result<Prepared, String> {
    let handler = Router::new().route("/", get(home));
    match variant {
        Variant::Bare | Variant::BareManyCookies => Ok(Prepared::new(handler, None)),
        Variant::BareCookie => Ok(Prepared::new(handler, Some(google_cookie().await))),
        Variant::BareChunkedCookie => Ok(Prepared::new(handler, Some(chunked_cookie().await))),
        Variant::Anonymous => Ok(Prepared::new(handler.layer(auth_layer(fixtures::config(false), None)?), None)),
        Variant::LoggedIn => {
            let app = handler.layer(auth_layer(fixtures::config(false), None)?);
            Ok(Prepared::new(app, Some(google_cookie().await)))
        }
        Variant::LoggedInDpop => {
            let mut config = fixtures::config(false);
            for provider in config.providers.values_mut() {
                provider.dpop = auth_core::DpopMode::Required;
            }
            let app = handler.layer(auth_layer(config, None)?);
            let mut session = fixtures::google_session();
            let key = auth_core::DpopKey::generate(auth_core::DpopAlg::Es256).map_err(|e| e.to_string())?;
            session.tokens.dpop_key = Some(key.stored().to_owned());
            let cookie = Credential::cookie(fixtures::cookie_header(&fixtures::sealed(&session).await));
            Ok(Prepared::new(app, Some(cookie)))
        }
        Variant::LoggedInMetrics => {
            // First the recorder, then the layer, which binds its counters to it.
            let metrics = prometheus()?;
            let app = handler.layer(auth_layer(fixtures::config(false), None)?);
            Ok(Prepared { metrics: Some(metrics), ..Prepared::new(app, Some(google_cookie().await)) })
        }
        Variant::ManySessions => {
            // Sized for the bench's 100,000 users, as a site expecting that many active
            // sessions would set it (the default keeps 10,000).
            let mut config = fixtures::config(false);
            config.session_cache_entries = MANY_SESSIONS_CACHE_ENTRIES;
            Ok(Prepared::new(handler.layer(auth_layer(config, None)?), None))
        }
        Variant::ManySessionsDefaultCache => {
            let config = fixtures::config(false);
            debug_assert_eq!(config.session_cache_entries, auth_core::config::DEFAULT_SESSION_CACHE_ENTRIES);
            Ok(Prepared::new(handler.layer(auth_layer(config, None)?), None))
        }
        Variant::Chunked => {
            let app = handler.layer(auth_layer(fixtures::config(true), None)?);
            Ok(Prepared::new(app, Some(chunked_cookie().await)))
        }
        Variant::Redis => {
            let url = redis_url.ok_or("the redis variant needs --redis-url")?;
            let store = redis_store(url).await?;
            let ticket = save(&*store, &fixtures::google_session()).await?;
            let app = handler.layer(auth_layer(fixtures::config(false), Some(store))?);
            Ok(Prepared::new(app, Some(Credential::cookie(fixtures::cookie_header(&ticket)))))
        }
        Variant::ManySessionsRedis => {
            let store = redis_store(redis_url.ok_or("the many-sessions-redis variant needs --redis-url")?).await?;
            Ok(Prepared::new(handler.layer(auth_layer(fixtures::config(false), Some(store))?), None))
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
            Ok(Prepared { idp: Some(idp), ..Prepared::new(app, Some(Credential::bearer(&token))) })
        }
    }
}

/// The cookies of variant (4): the session with its tokens, sealed and split in chunks.
async fn chunked_cookie() -> Credential {
    Credential::cookie(fixtures::cookie_header(&fixtures::sealed(&fixtures::google_session_with_tokens()).await))
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

/// The clients of `variant` as the load generator sends them: the one its server signed in
/// (`prepared.credential`, or none), or `sessions` distinct users made by [`crate::many`]
/// for a many-session variant (saved in the Redis at `redis_url` for (9)).
///
/// `bench-run` makes the users once per run instead, and shares them between variants.
///
/// # Errors
/// When a header value is invalid, or the users cannot be made.
pub async fn clients(
    variant: Variant,
    prepared: &Prepared,
    sessions: usize,
    redis_url: Option<&str>,
) -> Result<Credentials, String> {
    match variant.crowd() {
        None => single(prepared.credential.as_ref()),
        Some(Crowd::Sealed) => Ok(Credentials::new(COOKIE, many::sealed_cookies(sessions).await?)),
        Some(Crowd::Redis) => {
            let url = redis_url.ok_or("the many-sessions-redis variant needs a Redis URL")?;
            Ok(Credentials::new(COOKIE, many::redis_cookies(url, sessions).await?))
        }
    }
}

/// The clients of a variant whose server signs its one client in: `credential` sent with
/// every request, or anonymous requests.
///
/// # Errors
/// When the value is not a valid header value.
pub fn single(credential: Option<&Credential>) -> Result<Credentials, String> {
    match credential {
        Some(credential) => {
            let (name, value) = credential.header()?;
            Ok(Credentials::new(name, [value]))
        }
        None => Ok(Credentials::anonymous()),
    }
}

/// The store of the Redis variants' servers, also the one `bench-run` saves (9)'s users
/// with: prefix [`REDIS_PREFIX`], local copies of up to [`MANY_SESSIONS_CACHE_ENTRIES`]
/// sessions, Redis checked to answer.
#[cfg(feature = "redis")]
pub(crate) async fn redis_store(url: &str) -> Result<Arc<dyn SessionStore>, String> {
    // Local copies for as many users as (8)'s cache holds, as a site expecting that many
    // active sessions would size them (`session_cache_entries`).
    let entries = usize::try_from(MANY_SESSIONS_CACHE_ENTRIES).unwrap_or(usize::MAX);
    let store = auth_redis::RedisStore::new(url)
        .map_err(|e| e.to_string())?
        .with_prefix(REDIS_PREFIX)
        .with_local_cache(entries);
    store.ping().await.map_err(|e| format!("Redis at {url} does not answer: {e}"))?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "redis"))]
pub(crate) async fn redis_store(_url: &str) -> Result<Arc<dyn SessionStore>, String> {
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

    async fn answer(app: &Router, header: Option<(&HeaderName, &HeaderValue)>) -> String {
        let mut request = Request::get("/");
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        let request = request.body(axum::body::Body::empty()).unwrap_or_default();
        let response = app.clone().oneshot(request).await.map_err(|e| e.to_string());
        let body = match response {
            Ok(response) => response.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default(),
            Err(error) => panic!("{error}"),
        };
        String::from_utf8_lossy(&body).into_owned()
    }

    #[tokio::test]
    async fn every_local_variant_answers_as_expected() {
        for variant in Variant::ALL.into_iter().filter(|v| !v.uses_redis()) {
            let prepared = prepare(variant, None).await.unwrap_or_else(|e| panic!("{variant}: {e}"));
            let clients = clients(variant, &prepared, 3, None).await.unwrap_or_else(|e| panic!("{variant}: {e}"));
            assert_eq!(clients.clients(), if variant.crowd().is_some() { 3 } else { 1 }, "{variant}");
            for client in 0..clients.clients() {
                // The first request fills the caches (the bearer token is verified), the
                // second is the one the bench repeats.
                let header = clients.header(client);
                assert_eq!(answer(&prepared.app, header).await, variant.expected_body(), "{variant} {client}, first");
                assert_eq!(answer(&prepared.app, header).await, variant.expected_body(), "{variant} {client}, again");
            }
            if let Some(idp) = &prepared.idp {
                let hits = idp.hits();
                assert_eq!((hits.discovery, hits.jwks), (1, 1), "{variant}: fetched once, then cached");
            }
            if let Some(metrics) = &prepared.metrics {
                let text = metrics.render();
                let hits =
                    text.lines().find_map(|l| l.strip_prefix("auth_session_cache_hits_total{cache=\"cookie\"} "));
                assert!(hits.and_then(|n| n.parse::<u64>().ok()).is_some_and(|n| n >= 1), "{variant}: {text}");
            }
        }
        assert_eq!(Variant::parse("axum-login"), Some(Variant::Peer));
        assert_eq!(Variant::parse("bearer"), Some(Variant::Bearer));
        assert_eq!(Variant::parse("many-sessions-redis"), Some(Variant::ManySessionsRedis));
    }

    #[test]
    fn many_session_variants_are_measured_once_per_count() {
        let cases =
            Case::expand(&[Variant::Bare, Variant::ManySessions, Variant::BareManyCookies], &[1, 1000, 100_000]);
        let names: Vec<String> = cases.iter().map(Case::name).collect();
        assert_eq!(
            names,
            [
                "bare",
                "many-sessions@1",
                "many-sessions@1000",
                "many-sessions",
                "bare-many-cookies@1",
                "bare-many-cookies@1000",
                "bare-many-cookies"
            ]
        );
        assert_eq!(
            cases[3].label(),
            "(8) AuthLayer, 100,000 distinct sessions rotating (cookie store, session_cache_entries = 100000)"
        );
        assert_eq!(
            cases[1].label(),
            "(8) AuthLayer, 1 distinct session rotating (cookie store, session_cache_entries = 100000)"
        );
        assert_eq!(cases[2].floor().map(|c| c.name()).as_deref(), Some("bare-many-cookies@1000"));
        assert_eq!(cases[0].label(), "(1) bare axum");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
