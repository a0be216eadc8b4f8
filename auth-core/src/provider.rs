//! The [`IdentityProvider`] trait: what the auth layer needs from Google, Microsoft, any
//! OpenID Connect issuer, or a provider written outside this workspace.

use crate::{Identity, ProviderError, Session, TokenSet};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where to send the browser to log in, and what to remember until it comes back.
/// `Debug` shows the URL without its query (which holds `state` and `nonce`).
#[non_exhaustive]
pub struct Authorization {
    /// The provider's authorization URL with every parameter set.
    pub url: String,
    /// The secrets of this attempt; the layer seals them into the pending-login cookie.
    pub pending: PendingLogin,
}

impl fmt::Debug for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = self.url.split(['?', '#']).next().unwrap_or_default();
        f.debug_struct("Authorization")
            .field("url", &format_args!("{url}?<redacted>"))
            .field("pending", &self.pending)
            .finish()
    }
}

impl Authorization {
    /// Send the browser to `url`; keep `pending` until it comes back.
    ///
    /// ```
    /// use auth_core::{Authorization, PendingLogin};
    /// let login = Authorization::new("https://idp.example/authorize?state=s3cr3t&nonce=n0nce", PendingLogin::new("s3cr3t"));
    /// let debug = format!("{login:?}");
    /// assert!(debug.contains("https://idp.example/authorize") && !debug.contains("s3cr3t") && !debug.contains("n0nce"));
    /// ```
    pub fn new(url: impl Into<String>, pending: PendingLogin) -> Self {
        Self { url: url.into(), pending }
    }
}

/// The per-attempt secrets of a login, kept in a sealed cookie between the redirect to
/// the provider and the callback. `Debug` shows none of them.
///
/// ```
/// let pending = auth_core::PendingLogin::new(auth_core::random_token()).with_nonce("n");
/// assert_eq!(format!("{pending:?}"), "PendingLogin { .. }");
/// ```
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PendingLogin {
    /// The OAuth 2.0 `state`; the layer compares it with the callback's in constant time.
    pub state: String,
    /// The OpenID Connect `nonce` the ID token must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The PKCE code verifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkce_verifier: Option<String>,
    /// The DPoP key ([`DpopKey::stored`](crate::DpopKey::stored)) whose thumbprint the
    /// authorization request named (`dpop_jkt`), when the provider uses DPoP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_key: Option<String>,
}

impl PendingLogin {
    /// An attempt whose OAuth 2.0 `state` is `state` (make it unguessable, such as
    /// [`random_token`](crate::random_token)).
    pub fn new(state: impl Into<String>) -> Self {
        Self { state: state.into(), nonce: None, pkce_verifier: None, dpop_key: None }
    }

    /// With the OpenID Connect `nonce` the ID token must carry.
    #[must_use]
    pub fn with_nonce(mut self, nonce: impl Into<String>) -> Self {
        self.nonce = Some(nonce.into());
        self
    }

    /// With the PKCE code verifier.
    #[must_use]
    pub fn with_pkce_verifier(mut self, verifier: impl Into<String>) -> Self {
        self.pkce_verifier = Some(verifier.into());
        self
    }

    /// With the DPoP key of this login ([`DpopKey::stored`](crate::DpopKey::stored)).
    #[must_use]
    pub fn with_dpop_key(mut self, key: impl Into<String>) -> Self {
        self.dpop_key = Some(key.into());
        self
    }
}

impl fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PendingLogin { .. }")
    }
}

/// The query of a callback the layer has already checked (`state` matched).
/// `Debug` does not show the code.
#[derive(Clone)]
#[non_exhaustive]
pub struct CallbackParams {
    /// The authorization code.
    pub code: String,
    /// The RFC 9207 `iss` parameter, when the provider sent one; the provider checks it.
    pub iss: Option<String>,
}

impl CallbackParams {
    /// A callback carrying `code` and, when the provider sent it, `iss`.
    pub fn new(code: impl Into<String>, iss: Option<String>) -> Self {
        Self { code: code.into(), iss }
    }
}

impl fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackParams").field("code", &"<redacted>").field("iss", &self.iss).finish()
    }
}

/// A completed login.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LoginResult {
    /// Who signed in.
    pub identity: Identity,
    /// The tokens the provider issued.
    pub tokens: TokenSet,
}

impl LoginResult {
    /// `identity` signed in and the provider issued `tokens`.
    pub fn new(identity: Identity, tokens: TokenSet) -> Self {
        Self { identity, tokens }
    }
}

/// What a login must achieve beyond signing someone in (step-up): the OpenID Connect
/// authorization request's `max_age`, `acr_values` and `prompt`.
///
/// The layer checks what comes back (the ID token's `auth_time` and `acr`) against what
/// was asked, so a provider that ignores the request cannot pass a guard.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LoginOptions {
    /// The login must be at most this many seconds old (`max_age`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
    /// The login must reach one of these authentication context classes (`acr_values`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acr_values: Vec<String>,
    /// The `prompt` parameter, such as `"login"` (re-authenticate) or `"select_account"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
}

impl LoginOptions {
    /// Nothing more than a login.
    pub fn new() -> Self {
        Self::default()
    }

    /// With `max_age` (and `prompt=login`, which providers that ignore `max_age` heed).
    #[must_use]
    pub fn with_max_age(mut self, secs: u64) -> Self {
        self.max_age = Some(secs);
        self.prompt.get_or_insert_with(|| "login".into());
        self
    }

    /// With `acr_values`.
    #[must_use]
    pub fn with_acr_values<S: Into<String>>(mut self, values: impl IntoIterator<Item = S>) -> Self {
        self.acr_values = values.into_iter().map(Into::into).collect();
        self
    }

    /// With `prompt`.
    #[must_use]
    pub fn with_prompt(mut self, prompt: impl Into<String>) -> Self {
        self.prompt = Some(prompt.into());
        self
    }

    /// Whether nothing beyond a login is asked.
    pub fn is_empty(&self) -> bool {
        self.max_age.is_none() && self.acr_values.is_empty() && self.prompt.is_none()
    }
}

/// What a verified OpenID Connect back-channel logout token names: the sessions of
/// `subject`, or the one provider session `sid` (at least one of them is present).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogoutClaims {
    /// The `sub` claim: every session of this subject ends (unless `sid` narrows it).
    pub subject: Option<String>,
    /// The `sid` claim: the provider's session id, as in the ID token's `sid`.
    pub sid: Option<String>,
    /// The token's `jti`, when it has one: the layer accepts each once, until
    /// [`expires_at`](Self::expires_at), and remembers it only after the sessions ended
    /// (so a provider retrying after a store failure is not taken for a replay).
    pub jti: Option<String>,
    /// Until when the token is accepted (its `exp` plus the clock leeway), Unix seconds.
    pub expires_at: Option<u64>,
}

impl LogoutClaims {
    /// Claims naming `subject` and/or `sid`.
    pub fn new(subject: Option<String>, sid: Option<String>) -> Self {
        Self { subject, sid, jti: None, expires_at: None }
    }

    /// With the token's `jti`, accepted until `expires_at` (Unix seconds).
    #[must_use]
    pub fn with_token_id(mut self, jti: impl Into<String>, expires_at: u64) -> Self {
        self.jti = Some(jti.into());
        self.expires_at = Some(expires_at);
        self
    }
}

/// An identity provider: builds authorization URLs and turns callbacks into identities.
///
/// The trait is object safe; the layer holds `Arc<dyn IdentityProvider>`s. A provider
/// must verify everything it receives from the network: a returned `Ok` is trusted.
#[async_trait]
pub trait IdentityProvider: Send + Sync + fmt::Debug + 'static {
    /// The name in `/auth/login?provider=NAME` and in [`User::provider`](crate::User::provider).
    fn name(&self) -> &str;

    /// A human name for the chooser page ("Google", "Microsoft").
    fn display_name(&self) -> &str {
        self.name()
    }

    /// Starts a login: an authorization URL with fresh `state`, `nonce` and PKCE values.
    ///
    /// # Errors
    /// [`ProviderError::Unavailable`] when the provider cannot be reached.
    async fn authorize(&self, redirect_uri: &str) -> Result<Authorization, ProviderError>;

    /// Starts a login that must also meet `options` (step-up: `max_age`, `acr_values`,
    /// `prompt`). The layer calls this one; the default ignores `options` and calls
    /// [`authorize`](Self::authorize), and the layer then refuses the login if its ID
    /// token does not show what was asked.
    ///
    /// # Errors
    /// As [`authorize`](Self::authorize).
    async fn authorize_with(&self, redirect_uri: &str, options: &LoginOptions) -> Result<Authorization, ProviderError> {
        let _ = options;
        self.authorize(redirect_uri).await
    }

    /// Finishes a login: exchanges the code and verifies what comes back.
    ///
    /// # Errors
    /// [`ProviderError::Rejected`] for anything that fails verification,
    /// [`ProviderError::Unavailable`] when the provider cannot be reached.
    async fn complete(
        &self,
        callback: &CallbackParams,
        pending: &PendingLogin,
        redirect_uri: &str,
    ) -> Result<LoginResult, ProviderError>;

    /// Uses the refresh token of `tokens` to get fresh ones.
    ///
    /// # Errors
    /// [`ProviderError::Unsupported`] by default; [`ProviderError::Rejected`] when the
    /// provider refuses the refresh token (the session should end).
    async fn refresh(&self, session: &Session) -> Result<LoginResult, ProviderError> {
        let _ = session;
        Err(ProviderError::Unsupported("refresh"))
    }

    /// The URL that ends the session at the provider (RP-initiated logout), if it has one.
    ///
    /// # Errors
    /// [`ProviderError::Unavailable`] when the provider's metadata cannot be read.
    async fn end_session_url(
        &self,
        session: &Session,
        post_logout_redirect_uri: &str,
        state: &str,
    ) -> Result<Option<String>, ProviderError> {
        let _ = (session, post_logout_redirect_uri, state);
        Ok(None)
    }

    /// Revokes `session`'s tokens at the provider (RFC 7009) as it signs out: the refresh
    /// token, or the access token when the session has no refresh token. The layer calls it
    /// after the session has ended, in a task of its own, and only logs a failure, so an
    /// implementation may take as long as its bounded HTTP timeout. Answers whether a token
    /// was revoked: `Ok(false)` when there is nothing to do (no revocation endpoint, turned
    /// off, no token), which is the default.
    ///
    /// # Errors
    /// [`ProviderError::Unavailable`] when the provider cannot be reached,
    /// [`ProviderError::Rejected`] when it refuses the request.
    async fn revoke_tokens(&self, session: &Session) -> Result<bool, ProviderError> {
        let _ = session;
        Ok(false)
    }

    /// Verifies an OpenID Connect Back-Channel Logout 1.0 logout token (a signed JWT the
    /// provider POSTs to the app) and returns the sessions it names.
    ///
    /// An implementation must check the signature with the provider's keys (never `none`,
    /// never an HMAC keyed with public material), `iss`, `aud` (this client), `iat`, `exp`
    /// and `jti` (a short-lived token: the built-in provider allows 10 minutes), the
    /// `events` member naming `http://schemas.openid.net/event/backchannel-logout`, the
    /// absence of `nonce` (an ID token is not a logout token), and the presence of `sub` or
    /// `sid`; and return the `jti` and the token's end with
    /// [`LogoutClaims::with_token_id`], so that the layer refuses replays.
    ///
    /// # Errors
    /// [`ProviderError::Unsupported`] by default; [`ProviderError::Rejected`] for a token
    /// that fails any check; [`ProviderError::Unavailable`] when the keys cannot be fetched.
    async fn verify_logout_token(&self, token: &str) -> Result<LogoutClaims, ProviderError> {
        let _ = token;
        Err(ProviderError::Unsupported("back-channel logout"))
    }

    /// A fingerprint of who this provider admits (its admission rules, such as allowed
    /// domains, tenants or groups), or `None` when it admits whoever signs in. The layer
    /// keeps it with each session; when a session's differs from the current one (the
    /// config changed since the login), it asks [`readmit`](Self::readmit) before serving
    /// the session, so tightening a rule ends the sessions that no longer pass.
    fn admission(&self) -> Option<String> {
        None
    }

    /// Whether the identity of a stored session passes this provider's current admission
    /// rules ([`admission`](Self::admission) changed since it signed in).
    ///
    /// # Errors
    /// [`ProviderError::Denied`] when it no longer passes; the default admits everyone.
    fn readmit(&self, identity: &Identity) -> Result<(), ProviderError> {
        let _ = identity;
        Ok(())
    }

    /// How this provider's authorization responses come back: with
    /// [`ResponseMode::FormPost`](crate::ResponseMode::FormPost) (its authorization requests
    /// ask for `response_mode=form_post`) the layer accepts the callback as a `POST` for
    /// its logins, and only as one. The default is [`ResponseMode::Query`](crate::ResponseMode::Query).
    fn response_mode(&self) -> crate::ResponseMode {
        crate::ResponseMode::Query
    }

    /// Whether this provider verifies bearer access tokens at all (its config section sets
    /// `bearer_audience`). The layer reads `Authorization: Bearer` headers only when one
    /// of its providers does; otherwise they are the app's business. The default is no.
    fn accepts_bearer_tokens(&self) -> bool {
        false
    }

    /// Whether this provider verifies bearer access tokens whose (not yet verified) `iss`
    /// claim is `issuer`: the layer picks the provider of a bearer token this way. The
    /// default accepts none.
    fn accepts_bearer_from(&self, issuer: &str) -> bool {
        let _ = issuer;
        false
    }

    /// Whether this provider verifies opaque (non-JWT) bearer access tokens, by asking the
    /// provider about each one (RFC 7662 token introspection; its config section sets
    /// `introspection = true`). Such a token names no issuer, so the layer hands a bearer
    /// token that is not a JWT with an `iss` to the first provider that says yes here. The
    /// default is no.
    fn accepts_opaque_tokens(&self) -> bool {
        false
    }

    /// The public keys this client authenticates with (`private_key_jwt`), as JWKs with
    /// `kty`, `kid`, `use`, `alg` and the public members only, never a private part. The
    /// layer publishes the union of every provider's at `GET /auth/jwks` when
    /// `publish_client_jwks = true`, for providers that fetch a client's keys from its
    /// registered `jwks_uri`. The default is none.
    fn client_jwks(&self) -> Vec<serde_json::Value> {
        Vec::new()
    }

    /// Verifies an `Authorization: Bearer` access token (RFC 9068 JWT: signature with the
    /// provider's keys and algorithm allow-list, `iss`, `aud` among the configured
    /// audiences, `exp`/`nbf`/`iat` with leeway, `typ`) and returns who it names: the
    /// identity (claims from the token) and until when the answer may be trusted (Unix
    /// seconds: the token's expiry; for an opaque token checked by introspection, see
    /// [`accepts_opaque_tokens`](Self::accepts_opaque_tokens), a short time instead, so
    /// that a revoked token stops working soon).
    ///
    /// # Errors
    /// [`ProviderError::Unsupported`] by default; [`ProviderError::Rejected`] for a token
    /// that fails any check; [`ProviderError::Unavailable`] when the keys cannot be fetched
    /// or the introspection endpoint cannot be reached.
    async fn verify_access_token(&self, token: &str) -> Result<BearerIdentity, ProviderError> {
        let _ = token;
        Err(ProviderError::Unsupported("bearer tokens"))
    }
}

/// Who a verified bearer access token names, and until when.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct BearerIdentity {
    /// The token's subject, claims (`scp`/`scope`, `roles`, `groups`, ...) and provider.
    pub identity: Identity,
    /// When the token expires (its `exp`), in Unix seconds; for an introspected opaque token,
    /// when the introspection answer should be asked again (at most a minute away).
    pub expires_at: u64,
}

impl BearerIdentity {
    /// `identity`, valid until `expires_at`.
    pub fn new(identity: Identity, expires_at: u64) -> Self {
        Self { identity, expires_at }
    }
}
