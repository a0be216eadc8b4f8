//! The HTTP side: shared state, discovery and keys, the router and the accept loop. The
//! endpoints live by concern: `authorize` (the authorization request and its login form),
//! `token` (the grants), `endpoints` (userinfo, introspection, PAR, revocation,
//! end-session), `client_assertion` and `dpop` (what the token endpoint checks).
//!
//! Every handler starts with [`Shared::enter`], which counts the hit and applies the
//! endpoint-wide faults (`Delay`, `Unavailable`). Input from the network never panics:
//! bad requests get a `400` (an HTML page on browser endpoints, OAuth JSON on the token
//! endpoint).

// Helpers return `Err(Response)` for an early answer; it is built once per request, so
// boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use url::Url;

mod authorize;
mod client_assertion;
mod dpop;
mod endpoints;
mod token;

use crate::fault::{Fault, Faults, WRONG_AUDIENCE, WRONG_ISSUER, WRONG_NONCE};
use crate::jwt::{self, Alg, SignOptions};
use crate::keys::{self, SigningKey};
use crate::user::MockUser;
pub use client_assertion::ClientAuthentication;

/// Authorization codes live this long.
const CODE_TTL: Duration = Duration::from_secs(60);
/// Pushed authorization requests (RFC 9126) live this long.
const PAR_TTL: Duration = Duration::from_secs(60);
/// The prefix of every `request_uri` the PAR endpoint hands out (RFC 9126 §2.2).
const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

type Params = BTreeMap<String, String>;

/// Settings fixed at start.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) issuer: String,
    /// A multi-tenant issuer: see [`MockIdpBuilder::issuer_template`](crate::MockIdpBuilder::issuer_template).
    pub(crate) tenant_issuer: Option<TenantIssuer>,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) users: Vec<MockUser>,
    pub(crate) id_token_ttl: Duration,
    pub(crate) access_token_ttl: Duration,
    /// How long ago a login that does not ask for re-authentication happened.
    pub(crate) auth_age: Duration,
    pub(crate) minimal_id_token: bool,
    pub(crate) end_session: bool,
    pub(crate) keep_previous_key: bool,
    /// Whether a refresh spends the refresh token and issues a new one.
    pub(crate) rotate_refresh_tokens: bool,
    /// The `aud` introspection reports for the access tokens of `/token` (default: the
    /// client id).
    pub(crate) introspection_audience: Option<String>,
    /// How the client authenticates (default: with its secret).
    pub(crate) client_authentication: ClientAuthentication,
    /// The `jti`s of the client assertions accepted so far.
    pub(crate) seen_assertions: client_assertion::SeenAssertions,
    /// Advertise `require_pushed_authorization_requests` and refuse `/authorize` requests
    /// that were not pushed.
    pub(crate) require_par: bool,
    /// Check DPoP proofs at `/token` and `/userinfo` and bind tokens to their keys.
    pub(crate) dpop: bool,
    /// Require the server's DPoP nonce in every proof.
    pub(crate) dpop_nonce_required: bool,
    /// Sign ID tokens ES256 with this key instead of RS256.
    pub(crate) id_token_es256: Option<keys::EcSigningKey>,
    /// Sign ID tokens PS256 with this key instead of RS256.
    pub(crate) id_token_ps256: Option<&'static keys::PsSigningKey>,
}

/// An issuer that differs per user: discovery advertises `template`; ID tokens and callbacks
/// name it with `placeholder` replaced by the user's `claim`.
#[derive(Debug)]
pub(crate) struct TenantIssuer {
    pub(crate) template: String,
    pub(crate) placeholder: String,
    pub(crate) claim: String,
}

/// Settings changed by the test at run time, and the grants the server handed out.
#[derive(Debug, Default)]
pub(crate) struct Mutable {
    pub(crate) login_as: Option<String>,
    pub(crate) faults: Faults,
    pub(crate) key_index: usize,
    pub(crate) previous_key: Option<usize>,
    pub(crate) last_authorize: Option<Params>,
    pub(crate) last_end_session: Option<Params>,
    /// The parameters of the most recent pushed authorization request.
    pub(crate) last_par: Option<Params>,
    /// Every token `/revoke` was asked to revoke, in order.
    pub(crate) revoked: Vec<String>,
    /// Pushed requests by `request_uri`, until used or expired.
    pushed: HashMap<String, (Params, Instant)>,
    /// Replaces `Config::access_token_ttl` from now on (see `MockIdp::set_access_token_ttl`).
    pub(crate) access_token_ttl: Option<Duration>,
    /// Replaces `Config::auth_age` from now on (see `MockIdp::set_auth_age`).
    pub(crate) auth_age: Option<Duration>,
    /// The current DPoP nonce, and whether no proof has used it yet.
    dpop_nonce: Option<String>,
    dpop_nonce_fresh: bool,
    /// The `jti`s of the DPoP proofs accepted so far (with their key's thumbprint).
    dpop_jtis: std::collections::HashSet<String>,
    codes: HashMap<String, CodeGrant>,
    access_tokens: HashMap<String, AccessGrant>,
    refresh_tokens: HashMap<String, RefreshGrant>,
}

#[derive(Debug)]
struct CodeGrant {
    client_id: String,
    redirect_uri: String,
    username: String,
    nonce: Option<String>,
    code_challenge: Option<String>,
    scope: String,
    auth_time: u64,
    /// The `acr` granted: the first of the request's `acr_values`.
    acr: Option<String>,
    /// The provider session this login opened (the ID token's `sid`).
    sid: String,
    /// The DPoP key the authorization request named (`dpop_jkt`).
    dpop_jkt: Option<String>,
    expires: Instant,
}

#[derive(Debug)]
struct AccessGrant {
    username: String,
    scope: String,
    issued_at: u64,
    expires: Instant,
    /// `expires` in Unix seconds, for introspection's `exp`.
    expires_at: u64,
    /// The DPoP key the token is bound to.
    jkt: Option<String>,
}

#[derive(Debug, Clone)]
struct RefreshGrant {
    client_id: String,
    username: String,
    scope: String,
    auth_time: u64,
    acr: Option<String>,
    sid: String,
    /// The DPoP key the grant's tokens are bound to.
    jkt: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Endpoint {
    Discovery,
    Jwks,
    Authorize,
    Token,
    Userinfo,
    EndSession,
    Introspect,
    Par,
    Revoke,
}

/// Everything the handlers and the [`MockIdp`](crate::MockIdp) handle share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    state: Mutex<Mutable>,
    hits: [AtomicUsize; 9],
}

impl Shared {
    pub(crate) fn new(config: Config, login_as: Option<String>) -> Self {
        let state = Mutable { login_as, ..Mutable::default() };
        Self { config, state: Mutex::new(state), hits: Default::default() }
    }

    /// The run-time state; a panic elsewhere never makes it unusable.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Mutable> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn hit_count(&self, endpoint: Endpoint) -> usize {
        self.hits[endpoint as usize].load(Ordering::Relaxed)
    }

    /// Makes every access token `/token` issued so far inactive (introspection) and unknown
    /// (userinfo).
    pub(crate) fn revoke_access_tokens(&self) {
        self.lock().access_tokens.clear();
    }

    pub(crate) fn reset_hits(&self) {
        for hit in &self.hits {
            hit.store(0, Ordering::Relaxed);
        }
    }

    pub(crate) fn current_key(&self) -> &'static SigningKey {
        &keys::all()[self.lock().key_index]
    }

    /// The lifetime of access tokens issued now.
    pub(crate) fn access_token_ttl(&self) -> Duration {
        self.lock().access_token_ttl.unwrap_or(self.config.access_token_ttl)
    }

    pub(crate) fn user(&self, username: &str) -> Option<&MockUser> {
        self.config.users.iter().find(|u| u.username() == username)
    }

    /// Counts the hit, then applies `Delay` and `Unavailable`; returns the active faults.
    async fn enter(&self, endpoint: Option<Endpoint>) -> Result<Faults, Response> {
        if let Some(endpoint) = endpoint {
            self.hits[endpoint as usize].fetch_add(1, Ordering::Relaxed);
        }
        let faults = self.lock().faults.clone();
        if let Some(delay) = faults.find(|f| match f {
            Fault::Delay(d) => Some(*d),
            _ => None,
        }) {
            tokio::time::sleep(delay).await;
        }
        if faults.has(&Fault::Unavailable) {
            let body = "mock-idp: temporarily unavailable (Fault::Unavailable)";
            return Err((StatusCode::SERVICE_UNAVAILABLE, body).into_response());
        }
        Ok(faults)
    }

    /// Checks the client's credentials (`client_secret_basic` or `client_secret_post`, or
    /// an assertion, see [`client_assertion`]): `Err` is the `401 invalid_client` answer.
    fn authenticate_client(&self, headers: &HeaderMap, params: &Params) -> Result<(), Response> {
        if params.contains_key("client_assertion") || self.config.client_authentication != ClientAuthentication::Secret
        {
            return self.authenticate_assertion(params);
        }
        let client = client_credentials(headers, params);
        if client
            .as_ref()
            .is_some_and(|(id, secret)| *id == self.config.client_id && *secret == self.config.client_secret)
        {
            return Ok(());
        }
        let mut response = oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Client authentication failed.");
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Basic realm=\"mock-idp\""));
        Err(response)
    }

    fn base(&self) -> &str {
        self.config.issuer.trim_end_matches('/')
    }

    /// The `issuer` of the discovery document.
    fn advertised_issuer(&self) -> &str {
        self.config.tenant_issuer.as_ref().map_or(&self.config.issuer, |t| &t.template)
    }

    /// The issuer of what `user` receives (`iss` of ID tokens, the callback's `iss`): the
    /// template filled with the user's claim, or the template itself when the user lacks it.
    pub(crate) fn issuer_for(&self, user: Option<&MockUser>) -> String {
        match (&self.config.tenant_issuer, user) {
            (Some(t), Some(user)) => match user.claims().get(&t.claim).and_then(Value::as_str) {
                Some(value) => t.template.replace(&t.placeholder, value),
                None => t.template.clone(),
            },
            (Some(t), None) => t.template.clone(),
            (None, _) => self.config.issuer.clone(),
        }
    }

    fn discovery_document(&self, faults: &Faults) -> Value {
        let base = self.base();
        let mut claims: Vec<String> = [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "acr",
            "nonce",
            "azp",
            "sid",
            "email",
            "email_verified",
            "name",
            "picture",
        ]
        .map(String::from)
        .into();
        for user in &self.config.users {
            for key in user.claims().keys() {
                if !claims.contains(key) {
                    claims.push(key.clone());
                }
            }
        }
        let mut doc = json!({
            "issuer": self.advertised_issuer(),
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/token"),
            "userinfo_endpoint": format!("{base}/userinfo"),
            "jwks_uri": format!("{base}/jwks"),
            "end_session_endpoint": format!("{base}/end_session"),
            "introspection_endpoint": format!("{base}/introspect"),
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "pushed_authorization_request_endpoint": format!("{base}/par"),
            "require_pushed_authorization_requests": self.config.require_par,
            "revocation_endpoint": format!("{base}/revoke"),
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "form_post"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile", "offline_access"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "client_secret_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256", "PS256", "ES256", "HS256"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": claims,
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "authorization_response_iss_parameter_supported": true,
            "backchannel_logout_supported": true,
            "backchannel_logout_session_supported": true,
        });
        if let Value::Object(map) = &mut doc {
            if !self.config.end_session {
                map.remove("end_session_endpoint");
            }
            if self.config.dpop {
                map.insert("dpop_signing_alg_values_supported".into(), json!(["ES256", "EdDSA"]));
            }
            if self.config.id_token_es256.is_some() {
                map.insert("id_token_signing_alg_values_supported".into(), json!(["ES256"]));
            }
            if self.config.id_token_ps256.is_some() {
                map.insert("id_token_signing_alg_values_supported".into(), json!(["PS256"]));
            }
            if faults.has(&Fault::DiscoveryIssuerMismatch) {
                map.insert("issuer".into(), WRONG_ISSUER.into());
            }
            if let Some(extra) = faults.find(|f| match f {
                Fault::DiscoveryExtra(v) => Some(v),
                _ => None,
            }) {
                jwt::merge(map, extra);
            }
        }
        doc
    }

    /// The ID token for `user` signed in by `grant`, with the active ID-token faults applied.
    /// Full ID tokens carry `sid`, the provider session a back-channel logout names;
    /// minimal ones do not (as `oidc-provider` without its logout features).
    fn id_token(&self, user: &MockUser, grant: &RefreshGrant, nonce: Option<&str>, faults: &Faults) -> String {
        let auth_time = grant.auth_time;
        let now = unix_now();
        let ttl = self.config.id_token_ttl.as_secs();
        let mut claims = Map::new();
        if !self.config.minimal_id_token {
            claims = user.claims();
        }
        let protocol = json!({
            "iss": self.issuer_for(Some(user)),
            "sub": user.username(),
            "aud": self.config.client_id,
            "azp": self.config.client_id,
            "exp": now + ttl,
            "iat": now,
            "auth_time": auth_time,
        });
        jwt::merge(&mut claims, &protocol);
        if let Some(acr) = &grant.acr {
            claims.insert("acr".into(), acr.as_str().into());
        }
        if let Some(nonce) = nonce {
            claims.insert("nonce".into(), nonce.into());
        }
        if !self.config.minimal_id_token {
            claims.insert("sid".into(), grant.sid.as_str().into());
        }

        if faults.has(&Fault::WrongIssuer) {
            claims.insert("iss".into(), WRONG_ISSUER.into());
        }
        if faults.has(&Fault::WrongAudience) {
            claims.insert("aud".into(), WRONG_AUDIENCE.into());
        }
        if faults.has(&Fault::MissingSub) {
            claims.remove("sub");
        }
        if faults.has(&Fault::WrongNonce) {
            claims.insert("nonce".into(), WRONG_NONCE.into());
        }
        if let Some(ago) = faults.find(|f| match f {
            Fault::Expired(d) => Some(d.as_secs()),
            _ => None,
        }) {
            let back = ttl + ago;
            claims.insert("exp".into(), now.saturating_sub(ago).into());
            claims.insert("iat".into(), now.saturating_sub(back).into());
            claims.insert("auth_time".into(), auth_time.saturating_sub(back).into());
        }
        if faults.has(&Fault::MissingIat) {
            claims.remove("iat");
        }
        if let Some(extra) = faults.find(|f| match f {
            Fault::IdTokenClaims(v) => Some(v),
            _ => None,
        }) {
            jwt::merge(&mut claims, extra);
        }

        let alg = if faults.has(&Fault::AlgNone) {
            Alg::None
        } else if faults.has(&Fault::Hs256WithPublicKey) {
            Alg::Hs256WithPublicKey
        } else {
            Alg::Rs256
        };
        let opts = SignOptions {
            alg,
            omit_kid: faults.has(&Fault::NoKid),
            corrupt_signature: faults.has(&Fault::BadSignature),
        };
        match (&self.config.id_token_es256, self.config.id_token_ps256) {
            (Some(key), _) if alg == Alg::Rs256 => jwt::sign_es256(key, &Value::Object(claims), opts),
            (_, Some(key)) if alg == Alg::Rs256 => jwt::sign_ps256(key, &Value::Object(claims), opts),
            _ => jwt::sign(self.current_key(), &Value::Object(claims), opts),
        }
    }

    /// The `iss` parameter on redirects back to the client (RFC 9207), for `user` when known.
    fn callback_iss(&self, faults: &Faults, user: Option<&MockUser>) -> String {
        faults
            .find(|f| match f {
                Fault::CallbackIssuer(iss) => Some(iss.clone()),
                _ => None,
            })
            .unwrap_or_else(|| self.issuer_for(user))
    }
}

/// The endpoints, under `path` (empty, or `/segments` without a trailing slash).
pub(crate) fn router(shared: Arc<Shared>, path: &str) -> Router {
    let routes = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize::authorize))
        .route("/authorize/login", post(authorize::login))
        .route("/token", post(token::token))
        .route("/userinfo", get(endpoints::userinfo).post(endpoints::userinfo))
        .route("/end_session", get(endpoints::end_session).post(endpoints::end_session))
        .route("/introspect", post(endpoints::introspect))
        .route("/par", post(endpoints::par))
        .route("/revoke", post(endpoints::revoke))
        .with_state(shared);
    if path.is_empty() { routes } else { Router::new().nest(path, routes) }
}

/// Serves until the task running this future is aborted; aborting drops the listener and
/// every open connection, so a stopped IdP is really gone (no keep-alive stragglers).
pub(crate) async fn serve(listener: TcpListener, router: Router) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let service = hyper_util::service::TowerToHyperService::new(router.clone());
                    connections.spawn(async move {
                        let io = hyper_util::rt::TokioIo::new(stream);
                        let served = hyper::server::conn::http1::Builder::new()
                            .serve_connection(io, service)
                            .await;
                        if let Err(error) = served {
                            tracing::debug!(%error, "mock-idp connection ended with an error");
                        }
                    });
                }
                Err(error) => {
                    // For example too many open files: back off instead of spinning.
                    tracing::warn!(%error, "mock-idp accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

type St = AxState<Arc<Shared>>;

async fn discovery(AxState(s): St) -> Response {
    match s.enter(Some(Endpoint::Discovery)).await {
        Ok(faults) => axum::Json(s.discovery_document(&faults)).into_response(),
        Err(response) => response,
    }
}

async fn jwks(AxState(s): St) -> Response {
    if let Err(response) = s.enter(Some(Endpoint::Jwks)).await {
        return response;
    }
    let all = keys::all();
    let (current, previous) = {
        let state = s.lock();
        (state.key_index, state.previous_key)
    };
    let mut served = vec![all[current].jwk.clone()];
    if let Some(previous) = previous.filter(|p| s.config.keep_previous_key && *p != current) {
        served.push(all[previous].jwk.clone());
    }
    if let Some(ec) = &s.config.id_token_es256 {
        served.push(ec.jwk.clone());
    }
    if let Some(ps) = s.config.id_token_ps256 {
        served.push(ps.jwk.clone());
    }
    axum::Json(json!({ "keys": served })).into_response()
}

// ---- small helpers ----

pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn parse_form(bytes: &[u8]) -> Params {
    url::form_urlencoded::parse(bytes).into_owned().collect()
}

/// Any absolute `http` or `https` URL is accepted as a redirect target (this is a test
/// provider: clients are not pre-registered with their redirect URIs).
fn http_url(raw: &str) -> Option<Url> {
    Url::parse(raw).ok().filter(|u| matches!(u.scheme(), "http" | "https"))
}

/// `client_secret_basic` (RFC 6749 §2.3.1: both parts form-urlencoded) or else
/// `client_secret_post`.
fn client_credentials(headers: &HeaderMap, params: &Params) -> Option<(String, String)> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let (scheme, encoded) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        return Some((form_decode(id)?, form_decode(secret)?));
    }
    Some((params.get("client_id")?.clone(), params.get("client_secret")?.clone()))
}

fn form_decode(part: &str) -> Option<String> {
    let spaced = part.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8().ok().map(|s| s.into_owned())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let (scheme, token) = headers.get(header::AUTHORIZATION)?.to_str().ok()?.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn found(url: &Url) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
}

fn no_store(status: StatusCode, body: Value) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store"), (header::PRAGMA, "no-cache")], axum::Json(body)).into_response()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    no_store(status, json!({ "error": error, "error_description": description }))
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A page with a heading and one paragraph of (escaped) text.
fn html_page(status: StatusCode, title: &str, text: &str) -> Response {
    html_raw(status, title, &format!("<p>{}</p>\n", escape(text)))
}

/// A self-contained page (no external resources) around already-escaped `body` HTML.
fn html_raw(status: StatusCode, title: &str, body: &str) -> Response {
    let title = escape(title);
    let page = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>\n\
         body{{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;line-height:1.5}}\n\
         ul{{list-style:none;padding:0}} li{{margin:.5rem 0}}\n\
         button{{font:inherit;width:100%;padding:.6rem;text-align:left;cursor:pointer}}\n\
         .error{{color:#a00;font-weight:bold}}\n\
         </style>\n</head>\n<body>\n<main>\n<h1>{title}</h1>\n{body}</main>\n</body>\n</html>\n"
    );
    (status, [(header::CACHE_CONTROL, "no-store")], Html(page)).into_response()
}
