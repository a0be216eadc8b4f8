//! The HTTP side: shared state, the OIDC endpoints and the accept loop.
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

mod client_assertion;
mod dpop;

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
        match &self.config.id_token_es256 {
            Some(key) if alg == Alg::Rs256 => jwt::sign_es256(key, &Value::Object(claims), opts),
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
        .route("/authorize", get(authorize))
        .route("/authorize/login", post(login))
        .route("/token", post(token))
        .route("/userinfo", get(userinfo).post(userinfo))
        .route("/end_session", get(end_session).post(end_session))
        .route("/introspect", post(introspect))
        .route("/par", post(par))
        .route("/revoke", post(revoke))
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
    axum::Json(json!({ "keys": served })).into_response()
}

/// A validated authorization request: enough to redirect back to the client.
#[derive(Debug)]
struct AuthRequest {
    redirect_uri: Url,
    /// As sent: the token request must repeat it exactly.
    redirect_uri_raw: String,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    scope: String,
    prompt_none: bool,
    /// `max_age` (any value) or `prompt=login`: the person must authenticate again now.
    reauthenticate: bool,
    /// The DPoP key's thumbprint (RFC 9449 `dpop_jkt`).
    dpop_jkt: Option<String>,
    /// The first of the space-separated `acr_values`, the class the login reaches.
    acr: Option<String>,
    /// `response_mode=form_post`: the answer is a page that POSTs it to `redirect_uri`.
    form_post: bool,
}

impl Shared {
    /// Checks the parameters of `/authorize` (also re-posted by the login form). Errors
    /// about the client or `redirect_uri` are an HTML page, never a redirect to an
    /// unvalidated URL; the rest redirect back with an OAuth error.
    fn validate_authorize(&self, params: &Params, faults: &Faults) -> Result<AuthRequest, Response> {
        let client_id = params.get("client_id").map(String::as_str).unwrap_or_default();
        if client_id != self.config.client_id {
            let msg = format!(
                "Unknown client_id \"{client_id}\". This mock provider knows only \"{}\".",
                self.config.client_id
            );
            return Err(html_page(StatusCode::BAD_REQUEST, "Unknown client", &msg));
        }
        let raw = params.get("redirect_uri").map(String::as_str).unwrap_or_default();
        let Some(redirect_uri) = http_url(raw) else {
            let msg = "The redirect_uri parameter is missing or is not an absolute http(s) URL.";
            return Err(html_page(StatusCode::BAD_REQUEST, "Invalid redirect_uri", msg));
        };
        let prompt: Vec<&str> = params.get("prompt").map(|p| p.split(' ').collect()).unwrap_or_default();
        let request = AuthRequest {
            redirect_uri,
            redirect_uri_raw: raw.to_owned(),
            state: params.get("state").cloned(),
            nonce: params.get("nonce").cloned(),
            code_challenge: params.get("code_challenge").cloned(),
            scope: params.get("scope").cloned().unwrap_or_default(),
            prompt_none: prompt.contains(&"none"),
            reauthenticate: params.contains_key("max_age") || prompt.contains(&"login"),
            acr: params.get("acr_values").and_then(|v| v.split(' ').find(|v| !v.is_empty())).map(String::from),
            dpop_jkt: params.get("dpop_jkt").cloned(),
            form_post: params.get("response_mode").is_some_and(|m| m == "form_post"),
        };
        let problem = if params.get("response_type").map(String::as_str) != Some("code") {
            Some(("unsupported_response_type", "Only response_type=code is supported."))
        } else if params.get("response_mode").is_some_and(|m| m != "query" && m != "form_post") {
            Some(("invalid_request", "Only response_mode=query and response_mode=form_post are supported."))
        } else if !request.scope.split(' ').any(|s| s == "openid") {
            Some(("invalid_scope", "The scope must include openid."))
        } else if request.code_challenge.is_some()
            && params.get("code_challenge_method").map(String::as_str) != Some("S256")
        {
            Some(("invalid_request", "Only code_challenge_method=S256 is supported."))
        } else {
            None
        };
        match problem {
            Some((error, description)) => Err(self.redirect_error(&request, error, description, faults)),
            None => Ok(request),
        }
    }

    fn redirect_error(&self, request: &AuthRequest, error: &str, description: &str, faults: &Faults) -> Response {
        let mut answer = vec![("error", error.to_owned()), ("error_description", description.to_owned())];
        if let Some(state) = &request.state {
            answer.push(("state", state.clone()));
        }
        answer.push(("iss", self.callback_iss(faults, None)));
        respond(request, &answer)
    }

    /// Signs `username` in: stores a fresh code and redirects back to the client.
    ///
    /// The login happened `auth_age` ago unless the request asks for re-authentication
    /// (`max_age`, `prompt=login`); `Fault::IgnoreStepUp` ignores that and `acr_values`.
    fn complete_login(&self, request: &AuthRequest, username: &str, faults: &Faults) -> Response {
        let code = jwt::random_token();
        let now = Instant::now();
        let step_up = !faults.has(&Fault::IgnoreStepUp);
        {
            let mut state = self.lock();
            let age = if step_up && request.reauthenticate {
                0
            } else {
                state.auth_age.unwrap_or(self.config.auth_age).as_secs()
            };
            state.codes.retain(|_, grant| grant.expires > now);
            state.codes.insert(
                code.clone(),
                CodeGrant {
                    client_id: self.config.client_id.clone(),
                    redirect_uri: request.redirect_uri_raw.clone(),
                    username: username.to_owned(),
                    nonce: request.nonce.clone(),
                    code_challenge: request.code_challenge.clone(),
                    scope: request.scope.clone(),
                    auth_time: unix_now().saturating_sub(age),
                    acr: request.acr.clone().filter(|_| step_up),
                    sid: jwt::random_token(),
                    dpop_jkt: request.dpop_jkt.clone(),
                    expires: now + CODE_TTL,
                },
            );
        }
        let mut answer = vec![("code", code)];
        if let Some(state) = &request.state {
            answer.push(("state", state.clone()));
        }
        answer.push(("iss", self.callback_iss(faults, self.user(username))));
        respond(request, &answer)
    }

    fn login_page(&self, params: &Params, error: Option<&str>) -> Response {
        let mut body = String::new();
        if let Some(error) = error {
            body.push_str(&format!("<p role=\"alert\" class=\"error\">{}</p>\n", escape(error)));
        }
        body.push_str(&format!(
            "<p>Choose an account to continue to <code>{}</code>.</p>\n\
             <form method=\"post\" action=\"authorize/login\">\n",
            escape(&self.config.client_id)
        ));
        for (key, value) in params.iter().filter(|(k, _)| !matches!(k.as_str(), "login" | "password" | "cancel")) {
            body.push_str(&format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">\n", escape(key), escape(value)));
        }
        if self.config.users.iter().any(MockUser::has_password) {
            body.push_str(
                "<p><label for=\"password\">Password (only for accounts that have one)</label>\n\
                 <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\"></p>\n",
            );
        }
        body.push_str("<ul>\n");
        for user in &self.config.users {
            let email = user.email_address().map(|e| format!(" <small>{}</small>", escape(e))).unwrap_or_default();
            body.push_str(&format!(
                "<li><button type=\"submit\" id=\"login-{u}\" name=\"login\" value=\"{u}\">Sign in as {}{email}</button></li>\n",
                escape(user.display_name()),
                u = escape(user.username()),
            ));
        }
        body.push_str(
            "</ul>\n<p><button type=\"submit\" id=\"cancel\" name=\"cancel\" value=\"1\">Cancel</button></p>\n</form>\n",
        );
        let status = if error.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
        html_raw(status, "Sign in to Mock IdP", &body)
    }
}

async fn authorize(AxState(s): St, RawQuery(query): RawQuery) -> Response {
    let params = parse_form(query.as_deref().unwrap_or_default().as_bytes());
    s.lock().last_authorize = Some(params.clone());
    let faults = match s.enter(Some(Endpoint::Authorize)).await {
        Ok(faults) => faults,
        Err(response) => return response,
    };
    let (params, pushed) = match s.pushed_request(params) {
        Ok(resolved) => resolved,
        Err(response) => return response,
    };
    let request = match s.validate_authorize(&params, &faults) {
        Ok(request) => request,
        Err(response) => return response,
    };
    if s.config.require_par && !pushed {
        let description = "Pushed Authorization Request must be used (require_pushed_authorization_requests).";
        return s.redirect_error(&request, "invalid_request", description, &faults);
    }
    if faults.has(&Fault::AccessDenied) {
        return s.redirect_error(&request, "access_denied", "The user denied access (Fault::AccessDenied).", &faults);
    }
    let login_as = s.lock().login_as.clone();
    match login_as {
        Some(username) => s.complete_login(&request, &username, &faults),
        None if request.prompt_none => {
            s.redirect_error(&request, "login_required", "prompt=none, but nobody is signed in.", &faults)
        }
        None => s.login_page(&params, None),
    }
}

async fn login(AxState(s): St, body: Bytes) -> Response {
    let params = parse_form(&body);
    let faults = match s.enter(None).await {
        Ok(faults) => faults,
        Err(response) => return response,
    };
    let request = match s.validate_authorize(&params, &faults) {
        Ok(request) => request,
        Err(response) => return response,
    };
    if params.contains_key("cancel") {
        return s.redirect_error(&request, "access_denied", "The user cancelled the sign-in.", &faults);
    }
    if faults.has(&Fault::AccessDenied) {
        return s.redirect_error(&request, "access_denied", "The user denied access (Fault::AccessDenied).", &faults);
    }
    let username = params.get("login").map(String::as_str).unwrap_or_default();
    let Some(user) = s.user(username) else {
        return s.login_page(&params, Some(&format!("There is no account named \"{username}\".")));
    };
    if !user.password_matches(params.get("password").map(String::as_str)) {
        return s.login_page(&params, Some(&format!("Wrong password for \"{username}\".")));
    }
    s.complete_login(&request, username, &faults)
}

async fn token(AxState(s): St, headers: HeaderMap, body: Bytes) -> Response {
    let faults = match s.enter(Some(Endpoint::Token)).await {
        Ok(faults) => faults,
        Err(response) => return response,
    };
    if let Some(error) = faults.find(|f| match f {
        Fault::TokenError(e) => Some(e),
        _ => None,
    }) {
        return oauth_error(StatusCode::BAD_REQUEST, error, "Fault::TokenError");
    }
    let params = parse_form(&body);
    if let Err(response) = s.authenticate_client(&headers, &params) {
        return response;
    }
    let jkt = match s.dpop_proof(&headers, dpop::At::Token, "POST", "/token", None, &faults) {
        Ok(jkt) => jkt,
        Err(response) => return response,
    };
    let mut response = match params.get("grant_type").map(String::as_str) {
        Some("authorization_code") => code_grant(&s, &params, &faults, jkt),
        Some("refresh_token") => refresh_grant(&s, &params, &faults, jkt),
        Some(_) => {
            oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "Use authorization_code or refresh_token.")
        }
        None => oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "grant_type is missing."),
    };
    s.add_dpop_nonce(&mut response);
    response
}

fn code_grant(s: &Shared, params: &Params, faults: &Faults, jkt: Option<String>) -> Response {
    let invalid = |description: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description);
    let Some(code) = params.get("code") else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "code is missing.");
    };
    // Removed on first use, whatever the outcome: a code is never good twice.
    let Some(grant) = s.lock().codes.remove(code) else {
        return invalid("The code is unknown or was already used.");
    };
    if grant.expires <= Instant::now() {
        return invalid("The code has expired.");
    }
    if grant.client_id != s.config.client_id {
        return invalid("The code was issued to another client.");
    }
    if params.get("redirect_uri") != Some(&grant.redirect_uri) {
        return invalid("redirect_uri does not match the one sent to /authorize.");
    }
    if let Some(challenge) = &grant.code_challenge {
        match params.get("code_verifier") {
            None => return invalid("code_verifier is missing (PKCE)."),
            Some(verifier) if jwt::pkce_s256(verifier) != *challenge => {
                return invalid("code_verifier does not match code_challenge (PKCE).");
            }
            Some(_) => {}
        }
    }
    if grant.dpop_jkt.is_some() && grant.dpop_jkt != jkt {
        return invalid("The DPoP proof's key is not the one dpop_jkt named at /authorize.");
    }
    let refresh = RefreshGrant {
        client_id: grant.client_id,
        username: grant.username,
        scope: grant.scope,
        auth_time: grant.auth_time,
        acr: grant.acr,
        sid: grant.sid,
        jkt,
    };
    issue_tokens(s, refresh, grant.nonce.as_deref(), faults)
}

fn refresh_grant(s: &Shared, params: &Params, faults: &Faults, jkt: Option<String>) -> Response {
    let Some(token) = params.get("refresh_token") else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "refresh_token is missing.");
    };
    // Rotation: the presented refresh token is spent. Without it, it stays valid and is
    // repeated in the answer.
    let (grant, kept) = {
        let mut state = s.lock();
        if s.config.rotate_refresh_tokens {
            (state.refresh_tokens.remove(token), None)
        } else {
            (state.refresh_tokens.get(token).cloned(), Some(token.clone()))
        }
    };
    match grant {
        Some(grant) if grant.jkt.is_some() && grant.jkt != jkt => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "The refresh token is DPoP-bound; the proof's key is not its key.",
        ),
        Some(mut grant) if grant.client_id == s.config.client_id => {
            grant.jkt = grant.jkt.or(jkt);
            issue_tokens_with(s, grant, None, faults, kept)
        }
        _ => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "The refresh token is unknown or was already used."),
    }
}

fn issue_tokens(s: &Shared, grant: RefreshGrant, nonce: Option<&str>, faults: &Faults) -> Response {
    issue_tokens_with(s, grant, nonce, faults, None)
}

/// Issues tokens for `grant`; `refresh_token` is the one to hand back (a new one when `None`).
fn issue_tokens_with(
    s: &Shared,
    mut grant: RefreshGrant,
    nonce: Option<&str>,
    faults: &Faults,
    refresh_token: Option<String>,
) -> Response {
    let Some(user) = s.user(&grant.username) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "The user no longer exists.");
    };
    let id_token = s.id_token(user, &grant, nonce, faults);
    let access_token_ttl = s.access_token_ttl();
    let access_token = jwt::random_token();
    let refresh_token = refresh_token.unwrap_or_else(jwt::random_token);
    if faults.has(&Fault::DpopUnboundToken) {
        grant.jkt = None;
    }
    let body = json!({
        "access_token": access_token,
        "token_type": if grant.jkt.is_some() { "DPoP" } else { "Bearer" },
        "expires_in": access_token_ttl.as_secs(),
        "id_token": id_token,
        "refresh_token": refresh_token,
        "scope": grant.scope,
    });
    let now = Instant::now();
    let issued_at = unix_now();
    let access = AccessGrant {
        username: grant.username.clone(),
        scope: grant.scope.clone(),
        issued_at,
        expires: now + access_token_ttl,
        expires_at: issued_at + access_token_ttl.as_secs(),
        jkt: grant.jkt.clone(),
    };
    let mut state = s.lock();
    state.access_tokens.retain(|_, g| g.expires > now);
    state.access_tokens.insert(access_token, access);
    state.refresh_tokens.insert(refresh_token, grant);
    no_store(StatusCode::OK, body)
}

async fn userinfo(AxState(s): St, headers: HeaderMap) -> Response {
    let faults = match s.enter(Some(Endpoint::Userinfo)).await {
        Ok(faults) => faults,
        Err(response) => return response,
    };
    let dpop_token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| s.config.dpop && scheme.eq_ignore_ascii_case("dpop"))
        .map(|(_, token)| token.trim());
    let jkt = match dpop_token {
        Some(token) => match s.dpop_proof(&headers, dpop::At::Userinfo, "GET", "/userinfo", Some(token), &faults) {
            Ok(Some(jkt)) => Some(jkt),
            Ok(None) => {
                return s.dpop_refusal(dpop::At::Userinfo, "invalid_dpop_proof", "The DPoP proof is missing.");
            }
            Err(response) => return response,
        },
        None => None,
    };
    let username = dpop_token.or_else(|| bearer(&headers)).and_then(|token| {
        let state = s.lock();
        let grant = state.access_tokens.get(token)?;
        // A bound token only with a proof of its key; an unbound one only as a bearer token.
        (grant.expires > Instant::now() && grant.jkt == jkt).then(|| grant.username.clone())
    });
    let Some(user) = username.as_deref().and_then(|u| s.user(u)) else {
        let mut response =
            oauth_error(StatusCode::UNAUTHORIZED, "invalid_token", "Missing, unknown or expired access token.");
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer error=\"invalid_token\""));
        return response;
    };
    let mut claims = user.claims();
    if faults.has(&Fault::UserinfoSubMismatch) {
        claims.insert("sub".into(), format!("{}-other", user.username()).into());
    }
    let mut response = no_store(StatusCode::OK, Value::Object(claims));
    s.add_dpop_nonce(&mut response);
    response
}

/// RFC 7662 token introspection, for the client only (authenticated as at `/token`):
/// `active` with the grant's claims for a live access token `/token` issued, `{"active":
/// false}` for anything else (a JWT from `MockIdp::access_token_for` included).
async fn introspect(AxState(s): St, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(response) = s.enter(Some(Endpoint::Introspect)).await {
        return response;
    }
    let params = parse_form(&body);
    if let Err(response) = s.authenticate_client(&headers, &params) {
        return response;
    }
    let Some(token) = params.get("token") else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "token is missing.");
    };
    let answer = {
        let state = s.lock();
        state.access_tokens.get(token).filter(|grant| grant.expires > Instant::now()).map(|grant| {
            let user = s.user(&grant.username);
            json!({
                "active": true,
                "sub": grant.username,
                "client_id": s.config.client_id,
                "scope": grant.scope,
                "token_type": "Bearer",
                "exp": grant.expires_at,
                "iat": grant.issued_at,
                "iss": s.issuer_for(user),
                "aud": s.config.introspection_audience.as_deref().unwrap_or(&s.config.client_id),
            })
        })
    };
    no_store(StatusCode::OK, answer.unwrap_or_else(|| json!({ "active": false })))
}

impl Shared {
    /// The parameters of an `/authorize` request: those pushed earlier when it carries a
    /// `request_uri` (which is spent: single use), else its own; and whether they were
    /// pushed. An unknown, used or expired `request_uri`, or one pushed by another client,
    /// is an HTML `400` page (there is no validated `redirect_uri` to send an error to).
    fn pushed_request(&self, params: Params) -> Result<(Params, bool), Response> {
        let Some(request_uri) = params.get("request_uri") else { return Ok((params, false)) };
        let now = Instant::now();
        let pushed = {
            let mut state = self.lock();
            state.pushed.retain(|_, (_, expires)| *expires > now);
            state.pushed.remove(request_uri)
        };
        match pushed {
            Some((pushed, _)) if pushed.get("client_id") == params.get("client_id") => Ok((pushed, true)),
            Some(_) => {
                let msg = "The request_uri was pushed by another client than this request's client_id.";
                Err(html_page(StatusCode::BAD_REQUEST, "Invalid request_uri", msg))
            }
            None => {
                let msg = "The request_uri is unknown, was already used, or has expired.";
                Err(html_page(StatusCode::BAD_REQUEST, "Invalid request_uri", msg))
            }
        }
    }
}

/// RFC 9126 pushed authorization requests, for the client only (authenticated as at
/// `/token`): the parameters are checked as `/authorize` checks them and kept for
/// [`PAR_TTL`] under a fresh single-use `request_uri`. Answers `201 {"request_uri",
/// "expires_in"}`, or `400 {"error": "invalid_request"}` for parameters `/authorize` would
/// refuse.
async fn par(AxState(s): St, headers: HeaderMap, body: Bytes) -> Response {
    let faults = match s.enter(Some(Endpoint::Par)).await {
        Ok(faults) => faults,
        Err(response) => return response,
    };
    if let Some(delay) = faults.find(|f| match f {
        Fault::ParDelay(d) => Some(*d),
        _ => None,
    }) {
        tokio::time::sleep(delay).await;
    }
    if faults.has(&Fault::ParServerError) {
        return oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "Fault::ParServerError");
    }
    if let Some(error) = faults.find(|f| match f {
        Fault::ParError(e) => Some(e),
        _ => None,
    }) {
        return oauth_error(StatusCode::BAD_REQUEST, error, "Fault::ParError");
    }
    let mut params = parse_form(&body);
    if let Err(response) = s.authenticate_client(&headers, &params) {
        return response;
    }
    params.remove("client_secret");
    params.entry("client_id".into()).or_insert_with(|| s.config.client_id.clone());
    if params.contains_key("request_uri") {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "request_uri may not be pushed.");
    }
    if s.validate_authorize(&params, &faults).is_err() {
        let description = "The pushed parameters are not a valid authorization request (see /authorize).";
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", description);
    }
    let request_uri = format!("{REQUEST_URI_PREFIX}{}", jwt::random_token());
    {
        let mut state = s.lock();
        state.last_par = Some(params.clone());
        state.pushed.insert(request_uri.clone(), (params, Instant::now() + PAR_TTL));
    }
    no_store(StatusCode::CREATED, json!({ "request_uri": request_uri, "expires_in": PAR_TTL.as_secs() }))
}

/// RFC 7009 token revocation, for the client only (authenticated as at `/token`): the
/// token is recorded (see `MockIdp::revoked_tokens`) and, when it is a refresh or access
/// token `/token` issued, forgotten, so a refresh with it answers `invalid_grant`. Answers
/// `200` also for tokens it does not know, as the RFC says.
async fn revoke(AxState(s): St, headers: HeaderMap, body: Bytes) -> Response {
    let faults = match s.enter(Some(Endpoint::Revoke)).await {
        Ok(faults) => faults,
        Err(response) => return response,
    };
    if let Some(delay) = faults.find(|f| match f {
        Fault::RevocationDelay(d) => Some(*d),
        _ => None,
    }) {
        tokio::time::sleep(delay).await;
    }
    if faults.has(&Fault::RevocationServerError) {
        return oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "Fault::RevocationServerError");
    }
    let params = parse_form(&body);
    if let Err(response) = s.authenticate_client(&headers, &params) {
        return response;
    }
    let Some(token) = params.get("token") else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "token is missing.");
    };
    let mut state = s.lock();
    state.refresh_tokens.remove(token);
    state.access_tokens.remove(token);
    state.revoked.push(token.clone());
    (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response()
}

async fn end_session(AxState(s): St, RawQuery(query): RawQuery, body: Bytes) -> Response {
    if let Err(response) = s.enter(Some(Endpoint::EndSession)).await {
        return response;
    }
    if !s.config.end_session {
        return html_page(StatusCode::NOT_FOUND, "Not found", "RP-initiated logout is disabled on this mock provider.");
    }
    let mut params = parse_form(query.as_deref().unwrap_or_default().as_bytes());
    params.extend(parse_form(&body));
    s.lock().last_end_session = Some(params.clone());
    match params.get("post_logout_redirect_uri") {
        Some(uri) => match http_url(uri) {
            Some(mut url) => {
                if let Some(state) = params.get("state") {
                    url.query_pairs_mut().append_pair("state", state);
                }
                found(&url)
            }
            None => html_page(
                StatusCode::BAD_REQUEST,
                "Invalid post_logout_redirect_uri",
                "post_logout_redirect_uri must be an absolute http(s) URL.",
            ),
        },
        None => html_page(StatusCode::OK, "You are signed out", "You are signed out of the mock provider."),
    }
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

/// The authorization response `answer` to `request`'s client: a redirect with it in the
/// query, or with `response_mode=form_post` a page that POSTs it to `redirect_uri` as soon
/// as it loads (OAuth 2.0 Form Post Response Mode), as `oidc-provider` answers.
fn respond(request: &AuthRequest, answer: &[(&str, String)]) -> Response {
    if !request.form_post {
        let mut url = request.redirect_uri.clone();
        url.query_pairs_mut().extend_pairs(answer.iter().map(|(k, v)| (*k, v.as_str())));
        return found(&url);
    }
    let mut body = format!("<form method=\"post\" action=\"{}\">\n", escape(request.redirect_uri.as_str()));
    for (name, value) in answer {
        body.push_str(&format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">\n", escape(name), escape(value)));
    }
    body.push_str(
        "<noscript><button type=\"submit\">Continue</button></noscript>\n</form>\n\
         <script>document.forms[0].submit();</script>\n",
    );
    html_raw(StatusCode::OK, "Submit this form", &body)
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
