//! `MockIdp`: a real OpenID Connect provider on `127.0.0.1`, for tests and offline demos.
//!
//! It speaks plain HTTP on an ephemeral port and implements what a relying party needs:
//! discovery, JWKS, the authorization-code flow with PKCE (S256), `client_secret_basic`
//! and `client_secret_post`, refresh-token rotation, userinfo, token introspection
//! (RFC 7662, for its opaque access tokens), RP-initiated logout and back-channel logout
//! (it signs logout tokens and POSTs them to your app), and DPoP (RFC 9449) with server
//! nonces when asked ([`MockIdpBuilder::dpop`]).
//! Tests steer it at run time: sign users in automatically, rotate keys, inject
//! [`Fault`]s and count [`Hits`] per endpoint.
//!
//! It depends on no other crate of this workspace, so it works for any OIDC client.
//!
//! # Starting a provider
//!
//! [`MockIdp::start`] serves the default client (`mock-client` / `mock-secret`) and two
//! users, `alice` (Alice Example, `alice@example.test`) and `bob`. Point your app at
//! [`MockIdp::metadata_url`] and use [`MockIdp::client_id`] and
//! [`MockIdp::client_secret`]. The server stops when the handle is dropped (or with
//! [`MockIdp::stop`]). It runs on the Tokio runtime that started it, so start one per
//! test (each `#[tokio::test]` has its own runtime) rather than sharing one in a static.
//!
//! ```
//! use auth_testkit::{MockIdp, MockUser};
//! use serde_json::json;
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let idp = MockIdp::builder()
//!     .user(MockUser::new("carol").email("carol@example.test").claim("groups", json!(["admins"])))
//!     .login_as(Some("carol")) // skip the login page
//!     .start()
//!     .await?;
//!
//! let http = reqwest::Client::builder()
//!     .redirect(reqwest::redirect::Policy::none())
//!     .build()?;
//! let discovery: serde_json::Value = http.get(idp.metadata_url()).send().await?.json().await?;
//! assert_eq!(discovery["issuer"], idp.issuer());
//!
//! // What your app's login route does: send the browser to the authorization endpoint...
//! let authorize = http
//!     .get(format!("{}/authorize", idp.issuer()))
//!     .query(&[
//!         ("client_id", idp.client_id()),
//!         ("redirect_uri", "http://localhost:3000/oauth2callback"),
//!         ("response_type", "code"),
//!         ("scope", "openid email"),
//!         ("state", "xyz"),
//!         ("nonce", "n-1"),
//!     ])
//!     .send()
//!     .await?;
//! // ...which, with auto-login, comes straight back with a code, the state and `iss`.
//! let callback = url::Url::parse(authorize.headers()["location"].to_str()?)?;
//! let code = callback.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned());
//!
//! // What your app's callback does: exchange the code.
//! let tokens: serde_json::Value = http
//!     .post(format!("{}/token", idp.issuer()))
//!     .basic_auth(idp.client_id(), Some(idp.client_secret()))
//!     .form(&[
//!         ("grant_type", "authorization_code"),
//!         ("code", code.as_deref().unwrap_or_default()),
//!         ("redirect_uri", "http://localhost:3000/oauth2callback"),
//!     ])
//!     .send()
//!     .await?
//!     .json()
//!     .await?;
//! assert!(tokens["id_token"].is_string());
//! assert_eq!(idp.hits().token, 1);
//! assert_eq!(idp.last_authorize_params().unwrap()["nonce"], "n-1");
//! # Ok(()) }
//! ```
//!
//! # Signing in
//!
//! Without auto-login, `/authorize` shows a small self-contained HTML page with one
//! button per user (`id="login-<username>"`) and a Cancel button (which sends
//! `error=access_denied` back); users with a [`MockUser::password`] need it typed in.
//! [`MockIdp::login_as`] switches auto-login on or off at any time.
//!
//! This is a test provider, so clients are not registered with redirect URIs: **any
//! absolute `http` or `https` `redirect_uri` is accepted**, and the token request must
//! repeat it exactly. The scope must contain `openid`; every user claim is released
//! whatever the scope, and a refresh token is always issued.
//!
//! # Sessions and back-channel logout
//!
//! Each login opens a provider session: full ID tokens carry its `sid` (kept across
//! refreshes, absent from minimal ID tokens). Each refresh spends the refresh token and
//! issues a new one (rotation); a spent one answers `invalid_grant`
//! ([`MockIdpBuilder::rotate_refresh_tokens`] turns rotation off). Short
//! [`MockIdpBuilder::access_token_ttl`] and [`MockIdpBuilder::id_token_ttl`] make
//! refreshes and expiry quick to test. [`MockIdp::backchannel_logout`] sends a
//! [`LogoutToken`], correct or broken on purpose, to your app's back-channel logout route.
//!
//! # Step-up and access tokens
//!
//! [`MockIdpBuilder::auth_age`] (or [`MockIdp::set_auth_age`]) makes the person's
//! provider login that old: an ID token's `auth_time` is `now - age`, until the app asks
//! for a fresh login with `max_age` or `prompt=login`, which gives `auth_time = now`. An
//! `acr_values` request gets the first value back as the `acr` claim.
//! [`Fault::IgnoreStepUp`] plays a provider that ignores all three.
//!
//! For an API's bearer-token checks, [`MockIdp::access_token_for`] signs an RFC 9068
//! access token (`typ: at+jwt`) for a user, and [`MockIdp::sign_jwt`] signs any claims.
//!
//! # Faults, keys and counters
//!
//! ```
//! use auth_testkit::{Fault, MockIdp};
//! use std::time::Duration;
//!
//! # #[tokio::main] async fn main() -> std::io::Result<()> {
//! let idp = MockIdp::start().await?;
//! idp.set_fault(Fault::AlgNone); // ID tokens now say alg "none"
//! idp.add_fault(Fault::Delay(Duration::from_millis(10))); // ...and answers are slow
//! idp.clear_faults();
//!
//! idp.rotate_keys(); // new kid; /jwks stops serving the old key
//! let token = idp.sign_id_token(serde_json::json!({ "sub": "alice" }));
//! assert_eq!(token.split('.').count(), 3);
//! assert_eq!(idp.hits().jwks, 0);
//! idp.stop().await; // the port is free again
//! # Ok(()) }
//! ```
//!
//! # Emulating Google, Microsoft and other shapes
//!
//! The mock has no provider-specific modes; a few generic knobs reproduce each
//! provider's documents. Google: users with an `hd` claim ([`MockUser::claim`]), and
//! [`Fault::IdTokenClaims`] with `{"iss": "127.0.0.1:PORT"}` for the issuer spelt without
//! its scheme. Microsoft Entra ID's multi-tenant `common` endpoint:
//!
//! ```
//! use auth_testkit::{MockIdp, MockUser};
//! use serde_json::json;
//!
//! # #[tokio::main] async fn main() -> std::io::Result<()> {
//! let idp = MockIdp::builder()
//!     .path("/common/v2.0") // the discovery URL names the tenant, as Entra's does
//!     .issuer_template("/{tenantid}/v2.0", "tid") // discovery: the template; tokens: the user's tid
//!     .user(MockUser::new("sub-1").claim("tid", json!("9188040d-6c67-4c5b-b112-36a304b66dad")))
//!     .start()
//!     .await?;
//! assert!(idp.metadata_url().ends_with("/common/v2.0/.well-known/openid-configuration"));
//! # Ok(()) }
//! ```
//!
//! [`MockIdpBuilder::path`] alone gives Keycloak's `/realms/NAME` shape, and
//! [`Fault::DiscoveryExtra`] adds or removes any discovery field.
//!
//! # The keys are public
//!
//! The RSA keys are three fixed test keys committed in `auth-testkit/keys/` (so that a
//! debug build does not spend seconds generating keys). Anyone can sign tokens with them:
//! **never trust this provider's keys outside tests and local demos.**
//!
//! # The `mock-idp` binary
//!
//! `cargo run -p auth-testkit --bin mock-idp -- --port 9000 --login-as alice` serves the
//! same provider from the command line; `--help` lists the flags.

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod access_token;
mod backchannel;
mod fault;
mod jwt;
mod keys;
pub mod logs;
mod server;
mod user;

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use url::Url;

pub use backchannel::{BACKCHANNEL_LOGOUT_EVENT, LogoutDelivery, LogoutToken};
pub use fault::{Fault, WRONG_AUDIENCE, WRONG_ISSUER, WRONG_NONCE};
pub use logs::{CaptureGuard, CapturedLogs, capture_logs};
pub use server::ClientAuthentication;
pub use user::MockUser;

use server::{Config, Endpoint, Shared, TenantIssuer};

/// A running mock OpenID provider. Dropping it stops the server.
pub struct MockIdp {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for MockIdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockIdp")
            .field("issuer", &self.shared.config.issuer)
            .field("client_id", &self.shared.config.client_id)
            .finish_non_exhaustive()
    }
}

/// How many requests each endpoint received, from [`MockIdp::hits`]. Read its fields;
/// new endpoints add fields (`#[non_exhaustive]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Hits {
    /// `GET /.well-known/openid-configuration`
    pub discovery: usize,
    /// `GET /jwks`
    pub jwks: usize,
    /// `GET /authorize` (not the login form's POST)
    pub authorize: usize,
    /// `POST /token`
    pub token: usize,
    /// `GET` or `POST /userinfo`
    pub userinfo: usize,
    /// `GET` or `POST /end_session`
    pub end_session: usize,
    /// `POST /introspect` (RFC 7662 token introspection)
    pub introspect: usize,
    /// `POST /par` (RFC 9126 pushed authorization requests)
    pub par: usize,
    /// `POST /revoke` (RFC 7009 token revocation)
    pub revocation: usize,
}

impl MockIdp {
    /// A builder to choose the port, client, users, token lifetimes and behaviour.
    pub fn builder() -> MockIdpBuilder {
        MockIdpBuilder::default()
    }

    /// Starts a provider on an ephemeral port of `127.0.0.1` with the default client and
    /// users (`alice`, `bob`); the same as `MockIdp::builder().start()`.
    pub async fn start() -> io::Result<MockIdp> {
        Self::builder().start().await
    }

    /// The issuer, `http://127.0.0.1:PORT` followed by the [path](MockIdpBuilder::path)
    /// unless overridden (no trailing slash). The endpoints are served under it. With an
    /// [issuer template](MockIdpBuilder::issuer_template), discovery and tokens name the
    /// template's issuers instead.
    pub fn issuer(&self) -> String {
        self.shared.config.issuer.clone()
    }

    /// The discovery URL: the issuer followed by `/.well-known/openid-configuration`.
    pub fn metadata_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.shared.config.issuer.trim_end_matches('/'))
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The only client's id.
    pub fn client_id(&self) -> &str {
        &self.shared.config.client_id
    }

    /// The only client's secret.
    pub fn client_secret(&self) -> &str {
        &self.shared.config.client_secret
    }

    /// The users this provider can sign in.
    pub fn users(&self) -> &[MockUser] {
        &self.shared.config.users
    }

    /// A snapshot of the per-endpoint request counters.
    pub fn hits(&self) -> Hits {
        let count = |endpoint| self.shared.hit_count(endpoint);
        Hits {
            discovery: count(Endpoint::Discovery),
            jwks: count(Endpoint::Jwks),
            authorize: count(Endpoint::Authorize),
            token: count(Endpoint::Token),
            userinfo: count(Endpoint::Userinfo),
            end_session: count(Endpoint::EndSession),
            introspect: count(Endpoint::Introspect),
            par: count(Endpoint::Par),
            revocation: count(Endpoint::Revoke),
        }
    }

    /// Revokes every access token `/token` has issued so far: introspection calls them
    /// inactive and userinfo refuses them from now on. Tokens issued later are live.
    pub fn revoke_access_tokens(&self) {
        self.shared.revoke_access_tokens();
    }

    /// Sets every counter back to zero.
    pub fn reset_hits(&self) {
        self.shared.reset_hits();
    }

    /// Makes `fault` the only active fault. Faults stay until [`MockIdp::clear_faults`].
    pub fn set_fault(&self, fault: Fault) {
        let mut state = self.shared.lock();
        state.faults.clear();
        state.faults.add(fault);
    }

    /// Adds `fault` to the active ones (replacing an active fault of the same kind).
    pub fn add_fault(&self, fault: Fault) {
        self.shared.lock().faults.add(fault);
    }

    /// Back to correct behaviour.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// `Some(username)`: `/authorize` signs this user in at once and redirects back with
    /// a code. `None`: `/authorize` shows the HTML login page.
    ///
    /// # Panics
    ///
    /// When there is no user with this name (a mistake in the test).
    pub fn login_as(&self, user: Option<&str>) {
        if let Some(name) = user {
            assert!(
                self.shared.user(name).is_some(),
                "MockIdp::login_as: {}",
                unknown_user(name, &self.shared.config.users)
            );
        }
        self.shared.lock().login_as = user.map(String::from);
    }

    /// Switches to the next embedded signing key (`mock-key-1` → `mock-key-2` → `mock-key-3`
    /// → `mock-key-1`). New ID tokens carry the new `kid`, and `/jwks` serves only the new
    /// key unless [`MockIdpBuilder::keep_previous_key`] is set.
    pub fn rotate_keys(&self) {
        let mut state = self.shared.lock();
        state.previous_key = Some(state.key_index);
        state.key_index = (state.key_index + 1) % keys::all().len();
    }

    /// The current signing key's id.
    pub fn current_kid(&self) -> String {
        self.shared.current_key().kid.clone()
    }

    /// The current public key as SPKI PEM (LF line endings), the HMAC key used by
    /// [`Fault::Hs256WithPublicKey`].
    pub fn public_key_pem(&self) -> String {
        self.shared.current_key().public_pem.clone()
    }

    /// The query parameters of the most recent `/authorize` request, to assert on
    /// `scope`, `prompt`, PKCE parameters and the like.
    pub fn last_authorize_params(&self) -> Option<BTreeMap<String, String>> {
        self.shared.lock().last_authorize.clone()
    }

    /// The parameters of the most recent pushed authorization request (`POST /par`, RFC
    /// 9126) the provider accepted; `/authorize` then sees only `client_id` and `request_uri`
    /// ([`last_authorize_params`](Self::last_authorize_params)).
    pub fn last_par_params(&self) -> Option<BTreeMap<String, String>> {
        self.shared.lock().last_par.clone()
    }

    /// Every token `POST /revoke` (RFC 7009) was asked to revoke so far, in order. A revoked
    /// refresh token is refused (`invalid_grant`) from then on, a revoked access token by
    /// `/userinfo` and introspection.
    pub fn revoked_tokens(&self) -> Vec<String> {
        self.shared.lock().revoked.clone()
    }

    /// The parameters (query and form) of the most recent `/end_session` request, for
    /// example to check that `id_token_hint` was sent.
    pub fn last_end_session_params(&self) -> Option<BTreeMap<String, String>> {
        self.shared.lock().last_end_session.clone()
    }

    /// Signs `claims` exactly as given (RS256, current key and `kid`, header `typ: "JWT"`,
    /// no faults): for tests that need a hand-made ID token.
    pub fn sign_id_token(&self, claims: serde_json::Value) -> String {
        self.sign_jwt(Some("JWT"), claims)
    }

    /// Signs `claims` exactly as given, with the header `typ` when `Some` (no `typ` when
    /// `None`): RS256 with the current key and its `kid`, no faults. For hand-made tokens
    /// of any kind, such as an access token with a wrong `typ` or a missing claim.
    pub fn sign_jwt(&self, typ: Option<&str>, claims: serde_json::Value) -> String {
        jwt::sign_typed(self.shared.current_key(), &claims, jwt::SignOptions::default(), typ)
    }

    /// A JWT access token (RFC 9068) for `username`, as an API receives it as a bearer
    /// token: RS256 with the current key and its `kid`, header `typ: "at+jwt"`, claims
    /// `iss` and `sub` as in the user's ID tokens, `aud` = `audience`, `client_id`, `iat`
    /// (now), `exp` (now + the [access-token lifetime](MockIdp::set_access_token_ttl)),
    /// a random `jti`, `scope` = `scope`, and the user's own claims (email, name, custom
    /// claims such as `groups`). No faults apply; for a broken token, change the claims and
    /// sign them with [`MockIdp::sign_jwt`].
    ///
    /// The token is not known to `/userinfo`, which accepts only the token endpoint's
    /// access tokens.
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> std::io::Result<()> {
    /// let idp = auth_testkit::MockIdp::start().await?;
    /// let token = idp.access_token_for("alice", "https://api.example.test", "read write");
    /// assert_eq!(token.split('.').count(), 3);
    /// # Ok(()) }
    /// ```
    ///
    /// # Panics
    ///
    /// When there is no user with this name (a mistake in the test).
    pub fn access_token_for(&self, username: &str, audience: &str, scope: &str) -> String {
        let Some(user) = self.shared.user(username) else {
            panic!("MockIdp::access_token_for: {}", unknown_user(username, &self.shared.config.users));
        };
        let claims = access_token::claims(&self.shared, user, audience, scope);
        self.sign_jwt(Some("at+jwt"), claims)
    }

    /// Changes the lifetime of the access tokens issued from now on (first set by
    /// [`MockIdpBuilder::access_token_ttl`]): for example short for the login, then long, so
    /// that a test sees exactly one refresh.
    pub fn set_access_token_ttl(&self, ttl: Duration) {
        self.shared.lock().access_token_ttl = Some(ttl);
    }

    /// Changes how long ago the person signed in at the provider for logins from now on
    /// (first set by [`MockIdpBuilder::auth_age`]): for example a long age, so that the
    /// app's `max_age` check asks for a step-up.
    pub fn set_auth_age(&self, age: Duration) {
        self.shared.lock().auth_age = Some(age);
    }

    /// Signs `token`, a back-channel logout token (correct unless `token` breaks it on
    /// purpose), with the current key.
    pub fn logout_token(&self, token: &LogoutToken) -> String {
        token.sign(&self.shared)
    }

    /// Sends a back-channel logout, as a provider does when a person signs out there:
    /// POSTs `logout_token=<token>` (form-encoded) to the app's back-channel logout URI
    /// `uri` (plain `http` only) and returns the app's answer.
    ///
    /// ```no_run
    /// # async fn f(idp: auth_testkit::MockIdp) -> std::io::Result<()> {
    /// use auth_testkit::LogoutToken;
    /// let answer = idp.backchannel_logout("http://127.0.0.1:3000/auth/backchannel-logout", &LogoutToken::for_subject("alice")).await?;
    /// assert_eq!(answer.status, 200);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// When `uri` is not an `http` URL, the app cannot be reached, or it does not answer
    /// within 10 seconds.
    pub async fn backchannel_logout(&self, uri: &str, token: &LogoutToken) -> io::Result<LogoutDelivery> {
        backchannel::deliver(uri, &self.logout_token(token)).await
    }

    /// Sends `raw` (any text, such as a hand-made or replayed token) as the logout token of a
    /// back-channel logout to `uri`; see [`MockIdp::backchannel_logout`].
    ///
    /// # Errors
    /// As [`MockIdp::backchannel_logout`].
    pub async fn send_logout_token(&self, uri: &str, raw: &str) -> io::Result<LogoutDelivery> {
        backchannel::deliver(uri, raw).await
    }

    /// Stops serving, closes open connections and releases the port before returning,
    /// so a new provider can start on the same port.
    pub async fn stop(mut self) {
        self.task.abort();
        // Resolves once the server future (listener and connections) has been dropped.
        let _ = (&mut self.task).await;
    }
}

impl Drop for MockIdp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Configures a [`MockIdp`]; from [`MockIdp::builder`].
#[derive(Debug, Clone)]
pub struct MockIdpBuilder {
    ip: IpAddr,
    port: u16,
    path: String,
    issuer: Option<String>,
    issuer_template: Option<(String, String)>,
    client_id: String,
    client_secret: String,
    users: Vec<MockUser>,
    login_as: Option<String>,
    id_token_ttl: Duration,
    access_token_ttl: Duration,
    auth_age: Duration,
    minimal_id_token: bool,
    end_session: bool,
    keep_previous_key: bool,
    rotate_refresh_tokens: bool,
    introspection_audience: Option<String>,
    client_authentication: ClientAuthentication,
    require_par: bool,
    dpop: bool,
    dpop_nonce_required: bool,
    id_token_es256: bool,
    id_token_ps256: bool,
}

impl Default for MockIdpBuilder {
    fn default() -> Self {
        Self {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            path: String::new(),
            issuer: None,
            issuer_template: None,
            client_id: "mock-client".into(),
            client_secret: "mock-secret".into(),
            users: Vec::new(),
            login_as: None,
            id_token_ttl: Duration::from_secs(300),
            access_token_ttl: Duration::from_secs(3600),
            auth_age: Duration::ZERO,
            minimal_id_token: false,
            end_session: true,
            keep_previous_key: false,
            rotate_refresh_tokens: true,
            introspection_audience: None,
            client_authentication: ClientAuthentication::Secret,
            require_par: false,
            dpop: false,
            dpop_nonce_required: false,
            id_token_es256: false,
            id_token_ps256: false,
        }
    }
}

impl MockIdpBuilder {
    /// The port to listen on; `0` (the default) picks a free one. A port released by
    /// [`MockIdp::stop`] can be reused at once.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The address to listen on (default `127.0.0.1`). When it is unspecified
    /// (`0.0.0.0` or `::`), the issuer names the matching loopback address.
    pub fn bind(mut self, ip: IpAddr) -> Self {
        self.ip = ip;
        self
    }

    /// Advertises this issuer instead of `http://IP:PORT`, for example behind a proxy.
    /// It is used verbatim as the `iss` (a trailing slash is kept); endpoint URLs are
    /// built from it without the trailing slash.
    pub fn issuer(mut self, url: impl Into<String>) -> Self {
        self.issuer = Some(url.into());
        self
    }

    /// Serves every endpoint under `path`, such as `/realms/demo` (Keycloak's shape) or
    /// `/common/v2.0` (Microsoft Entra ID's): the issuer becomes `http://IP:PORT{path}` and
    /// the discovery URL `http://IP:PORT{path}/.well-known/openid-configuration`. It must
    /// start with `/` and not end with one; [`start`](Self::start) refuses anything else.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Emulates a multi-tenant issuer, as Microsoft Entra ID's `common` endpoint does: the
    /// discovery document advertises the issuer `ORIGIN{template}` (`ORIGIN` is
    /// `http://IP:PORT`, or the scheme and host of [`issuer`](Self::issuer) when set), and
    /// each ID token's `iss`, like the callback's `iss` parameter, is that issuer with the
    /// template's one `{placeholder}` replaced by the signed-in user's `claim`.
    ///
    /// `issuer_template("/{tenantid}/v2.0", "tid")` with a user whose `tid` is `T` gives
    /// discovery `http://IP:PORT/{tenantid}/v2.0` and tokens from `http://IP:PORT/T/v2.0`.
    /// A user without the claim gets the template itself. [`start`](Self::start) refuses a
    /// template that does not start with `/` or lacks a `{placeholder}`.
    pub fn issuer_template(mut self, template: impl Into<String>, claim: impl Into<String>) -> Self {
        self.issuer_template = Some((template.into(), claim.into()));
        self
    }

    /// The client's id and secret (default `mock-client` / `mock-secret`).
    pub fn client(mut self, client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        self.client_id = client_id.into();
        self.client_secret = client_secret.into();
        self
    }

    /// Adds a user. When none is added, the provider has `alice` (Alice Example,
    /// `alice@example.test`) and `bob` (Bob Example, `bob@example.test`).
    pub fn user(mut self, user: MockUser) -> Self {
        self.users.push(user);
        self
    }

    /// Auto-login from the start; see [`MockIdp::login_as`].
    pub fn login_as(mut self, user: Option<&str>) -> Self {
        self.login_as = user.map(String::from);
        self
    }

    /// ID token lifetime (default 5 minutes).
    pub fn id_token_ttl(mut self, ttl: Duration) -> Self {
        self.id_token_ttl = ttl;
        self
    }

    /// Access token lifetime, reported as `expires_in`, enforced by `/userinfo` and used
    /// for the `exp` of [`MockIdp::access_token_for`] (default 1 hour).
    pub fn access_token_ttl(mut self, ttl: Duration) -> Self {
        self.access_token_ttl = ttl;
        self
    }

    /// How long ago the person signed in at the provider (default zero): a login that does
    /// not ask for re-authentication gets `auth_time` = now − `age` in its ID token, as
    /// with a provider session that is still open. A request with `max_age` (any value) or
    /// `prompt=login` re-authenticates and gets `auth_time` = now (unless
    /// [`Fault::IgnoreStepUp`]). See also [`MockIdp::set_auth_age`].
    pub fn auth_age(mut self, age: Duration) -> Self {
        self.auth_age = age;
        self
    }

    /// When `true`, ID tokens carry only `iss`, `sub`, `aud`, `azp`, `exp`, `iat`,
    /// `auth_time`, `nonce` and (when requested with `acr_values`) `acr`, and profile claims come only from `/userinfo` (as with
    /// panva's `oidc-provider`). Default `false`.
    pub fn minimal_id_token(mut self, minimal: bool) -> Self {
        self.minimal_id_token = minimal;
        self
    }

    /// Whether to offer RP-initiated logout: advertise `end_session_endpoint` and serve
    /// it (default `true`; when `false` the endpoint answers 404).
    pub fn end_session(mut self, enabled: bool) -> Self {
        self.end_session = enabled;
        self
    }

    /// When `true`, `/jwks` keeps serving the previous key after
    /// [`MockIdp::rotate_keys`] (a graceful rotation). Default `false`.
    pub fn keep_previous_key(mut self, keep: bool) -> Self {
        self.keep_previous_key = keep;
        self
    }

    /// Whether each refresh spends the refresh token and issues a new one (default `true`,
    /// as Microsoft Entra ID does). With `false`, a refresh token stays valid and the
    /// refresh answer repeats it, as panva's `oidc-provider` does for confidential clients
    /// and Google does (which omits it instead).
    pub fn rotate_refresh_tokens(mut self, rotate: bool) -> Self {
        self.rotate_refresh_tokens = rotate;
        self
    }

    /// The `aud` that token introspection (`POST /introspect`, RFC 7662) reports for the
    /// opaque access tokens `/token` issues (default: the client id), such as the
    /// `bearer_audience` of the API under test.
    pub fn introspection_audience(mut self, audience: impl Into<String>) -> Self {
        self.introspection_audience = Some(audience.into());
        self
    }

    /// Whether `/authorize` accepts only pushed authorization requests (RFC 9126): the
    /// discovery document says `require_pushed_authorization_requests` and a request
    /// without a `request_uri` from `POST /par` is sent back with `error=invalid_request`,
    /// and so is a login form posted without one (a pushed request's form carries only its
    /// `client_id` and a fresh `request_uri`). Default `false` (the PAR endpoint is
    /// advertised and served either way).
    pub fn require_pushed_authorization_requests(mut self, required: bool) -> Self {
        self.require_par = required;
        self
    }

    /// Whether `/token` and `/userinfo` speak DPoP (RFC 9449; default `false`). A token
    /// request with a valid `DPoP` proof gets tokens bound to the proof's key (`token_type`
    /// `DPoP`); the code exchange must use the key `/authorize` named in `dpop_jkt`, a
    /// refresh of a bound grant and `/userinfo` (`Authorization: DPoP`, proof with `ath`)
    /// the bound key. A request without a proof gets `Bearer` tokens. A bad proof is
    /// `invalid_dpop_proof`. See [`Fault::DpopNonceRotated`] and [`Fault::DpopUnboundToken`].
    pub fn dpop(mut self, on: bool) -> Self {
        self.dpop = on;
        self
    }

    /// Whether every DPoP proof must carry the server's current nonce (default `false`): a
    /// proof without it is answered `use_dpop_nonce` with the nonce in a `DPoP-Nonce`
    /// header, which every answer of `/token` and `/userinfo` carries.
    pub fn dpop_nonce_required(mut self, required: bool) -> Self {
        self.dpop_nonce_required = required;
        self
    }

    /// Whether `/token` signs ID tokens ES256 (default `false`: RS256), with an EC P-256
    /// key made at start whose public JWK (`kid` `mock-ec-key`) `/jwks` serves beside the
    /// RSA key; discovery then says `id_token_signing_alg_values_supported = ["ES256"]`.
    /// Access tokens, logout tokens and hand-signed tokens stay RS256; the faults that
    /// change the algorithm (`AlgNone`, `Hs256WithPublicKey`) still do.
    pub fn id_token_es256(mut self, on: bool) -> Self {
        self.id_token_es256 = on;
        self
    }

    /// Whether `/token` signs ID tokens PS256 (RSASSA-PSS; default `false`: RS256), with a
    /// committed RSA key of their own (kid `mock-key-ps256`) served by `/jwks` beside the
    /// RS256 key; discovery then says `id_token_signing_alg_values_supported = ["PS256"]`.
    /// As with [`id_token_es256`](Self::id_token_es256), access, logout and hand-signed
    /// tokens stay RS256. Starting with both is an error.
    pub fn id_token_ps256(mut self, on: bool) -> Self {
        self.id_token_ps256 = on;
        self
    }

    /// How the client authenticates at `/token` and `/introspect` (default: with its
    /// secret, `client_secret_basic` or `client_secret_post`). With
    /// [`ClientAuthentication::PrivateKeyJwt`] or [`ClientAuthentication::ClientSecretJwt`]
    /// only an RFC 7523 client assertion is accepted: signed as the method says, `iss` and
    /// `sub` the client id, `aud` the issuer or the token endpoint (see
    /// [`Fault::ClientAssertionAudience`]), `exp` not past, a `jti` not seen before.
    pub fn client_authentication(mut self, method: ClientAuthentication) -> Self {
        self.client_authentication = method;
        self
    }

    /// Binds the port and starts serving on the current Tokio runtime.
    ///
    /// Fails when the port cannot be bound, or with `InvalidInput` when `login_as`
    /// names an unknown user.
    pub async fn start(self) -> io::Result<MockIdp> {
        if self.id_token_es256 && self.id_token_ps256 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "MockIdpBuilder: id_token_es256 and id_token_ps256 are both on; choose one ID token algorithm",
            ));
        }
        let users = if self.users.is_empty() { MockUser::defaults() } else { self.users };
        if let Some(name) = &self.login_as
            && !users.iter().any(|u| u.username() == name)
        {
            let message = format!(
                "MockIdpBuilder::login_as: {}; add the user with MockIdpBuilder::user",
                unknown_user(name, &users)
            );
            return Err(io::Error::new(io::ErrorKind::InvalidInput, message));
        }
        let invalid = |message: String| io::Error::new(io::ErrorKind::InvalidInput, message);
        let path = self.path;
        if !path.is_empty() && (!path.starts_with('/') || path.ends_with('/') || path.contains(['?', '#'])) {
            return Err(invalid(format!(
                "MockIdpBuilder::path: {path:?} is not a plain path such as \"/realms/demo\" (leading '/', no trailing '/')"
            )));
        }
        let listener = tokio::net::TcpListener::bind((self.ip, self.port)).await?;
        let addr = listener.local_addr()?;
        let issuer = self.issuer.unwrap_or_else(|| format!("http://{}{path}", advertised(addr)));
        let tenant_issuer = match self.issuer_template {
            None => None,
            Some((template, claim)) => {
                let placeholder = template
                    .find('{')
                    .and_then(|start| template[start..].find('}').map(|len| template[start..=start + len].to_owned()))
                    .filter(|p| p.len() > 2 && template.starts_with('/'))
                    .ok_or_else(|| {
                        invalid(format!(
                            "MockIdpBuilder::issuer_template: {template:?} is not a path with a {{placeholder}}, such as \"/{{tenantid}}/v2.0\""
                        ))
                    })?;
                let origin = Url::parse(&issuer)
                    .map(|url| url.origin().ascii_serialization())
                    .map_err(|_| invalid(format!("MockIdpBuilder::issuer: {issuer:?} is not an absolute URL")))?;
                Some(TenantIssuer { template: format!("{origin}{template}"), placeholder, claim })
            }
        };
        let config = Config {
            issuer,
            tenant_issuer,
            client_id: self.client_id,
            client_secret: self.client_secret,
            users,
            id_token_ttl: self.id_token_ttl,
            access_token_ttl: self.access_token_ttl,
            auth_age: self.auth_age,
            minimal_id_token: self.minimal_id_token,
            end_session: self.end_session,
            keep_previous_key: self.keep_previous_key,
            rotate_refresh_tokens: self.rotate_refresh_tokens,
            introspection_audience: self.introspection_audience,
            client_authentication: self.client_authentication,
            seen_assertions: Default::default(),
            require_par: self.require_par,
            dpop: self.dpop,
            dpop_nonce_required: self.dpop_nonce_required,
            id_token_ps256: self.id_token_ps256.then(keys::ps256),
            id_token_es256: match self.id_token_es256 {
                false => None,
                true => Some(
                    keys::EcSigningKey::generate()
                        .ok_or_else(|| io::Error::other("MockIdpBuilder::id_token_es256: no EC key could be made"))?,
                ),
            },
        };
        keys::all(); // parse the keys now, not during the first token request
        let shared = Arc::new(Shared::new(config, self.login_as));
        let task = tokio::spawn(server::serve(listener, server::router(Arc::clone(&shared), &path)));
        Ok(MockIdp { shared, addr, task })
    }
}

/// The address to put in the issuer: loopback instead of "any".
fn advertised(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()),
        _ => addr,
    }
}

fn unknown_user(name: &str, users: &[MockUser]) -> String {
    let known: Vec<&str> = users.iter().map(MockUser::username).collect();
    format!("no user named \"{name}\" (users: {})", known.join(", "))
}
