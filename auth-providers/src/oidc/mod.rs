//! [`OidcProvider`]: one OpenID Connect relying party (authorization-code flow with PKCE)
//! for one provider section of the config.
//!
//! The provider talks to the network only when a login needs it: discovery and keys are
//! fetched lazily and cached ([`cache`]), so an app starts while its IdP is down and
//! recovers when it is back. openidconnect's types stay inside this module; the public
//! type is plain and can be stored anywhere (`Arc<dyn IdentityProvider>`).

pub(crate) mod bearer;
mod cache;
mod client_assertion;
pub(crate) mod discovery;
mod dpop;
mod http;
mod id_token;
pub(crate) mod introspection;
mod login;
mod logout_token;
mod par;
mod refresh;
mod revocation;
mod token;

use crate::ProviderSettings;
use crate::error::{BuildError, Failure};
use crate::profile::Profile;
use auth_core::{
    Authorization, BearerIdentity, CallbackParams, Claims, Identity, IdentityProvider, LoginOptions, LoginResult,
    LogoutClaims, PendingLogin, ProviderConfig, ProviderError, ResponseMode, Session, TokenAuthMethod, UsePar,
    unix_now,
};
use auth_core::{DpopKey, async_trait};
use bearer::AccessToken;
use cache::Cache;
use client_assertion::ClientKeys;
use discovery::Metadata;
use http::{Endpoint, Http};
use id_token::{Expected, Keys, Refusal};
use openidconnect::{CsrfToken, Nonce, PkceCodeChallenge};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use token::{ClientAuth, Grant};
use tracing::Instrument as _;
use url::Url;

/// The key set is fetched again for an unknown `kid` at most this often, so a flood of
/// forged tokens cannot make us hammer the provider.
const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(10);

/// A relying party of one OpenID Connect provider, found by discovery.
///
/// Build it with [`OidcProvider::new`] (no network) or all providers of a config with
/// [`from_config`](crate::from_config). `Debug` never shows the client secret.
pub struct OidcProvider {
    name: String,
    display_name: String,
    client: ClientAuth,
    scope: String,
    /// `client_kwargs` other than `scope`, appended to every authorization URL.
    extra_params: Vec<(String, String)>,
    metadata_url: Url,
    /// `use_par`, and its dotted key for messages.
    use_par: (UsePar, String),
    /// `revoke_on_logout`.
    revoke_on_logout: bool,
    /// `dpop`, `dpop_alg`, and the dotted key of `dpop` for messages.
    dpop: (auth_core::DpopMode, auth_core::DpopAlg, String),
    /// The provider's latest DPoP nonce.
    dpop_nonce: dpop::Nonce,
    /// `response_mode`, and its dotted key for messages.
    response_mode: (ResponseMode, String),
    /// `profile = "fapi2"`, and its dotted key for messages: every callback must carry
    /// `iss`, and ID tokens are PS256, ES256 or EdDSA only.
    fapi2: Option<String>,
    leeway: Duration,
    profile: Profile,
    /// The admission rules' fingerprint, computed once.
    admission: Option<String>,
    /// Shared with the background refetches of the caches.
    http: Arc<Http>,
    metadata: Cache<Metadata>,
    keys: Cache<Keys>,
}

impl fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcProvider")
            .field("name", &self.name)
            .field("kind", &self.profile.kind())
            .field("client_id", &self.client.client_id)
            .field("client_secret", &self.client.secret.as_ref().map(|_| "<redacted>"))
            .field("token_endpoint_auth_method", &self.client.method)
            .field("client_keys", &self.client.keys)
            .field("server_metadata_url", &self.metadata_url.as_str())
            .field("use_par", &self.use_par.0)
            .field("revoke_on_logout", &self.revoke_on_logout)
            .field("dpop", &self.dpop.0)
            .field("fapi2", &self.fapi2.is_some())
            .finish_non_exhaustive()
    }
}

impl OidcProvider {
    /// A provider for `config`. Makes no network call: discovery happens on the first
    /// login, so this succeeds while the provider is unreachable.
    ///
    /// # Errors
    /// [`BuildError`] naming the config key when the section cannot work: an empty
    /// `client_id`, a missing `client_secret` (unless `token_endpoint_auth_method =
    /// "none"` or `"private_key_jwt"`), a `client_private_key_file` or
    /// `client_certificate_file` that is missing, unreadable, encrypted or of an unusable
    /// kind (read here, once), a `server_metadata_url` that is not a discovery URL, a scope without
    /// `openid`, a `client_kwargs` entry this provider sets itself, or a preset key
    /// (`hosted_domains`, `allowed_tenants`, ...) that is unusable, misspelt or meant for
    /// another kind of provider, or a key that contradicts `profile = "fapi2"`.
    pub fn new(config: &ProviderConfig, settings: &ProviderSettings) -> Result<Self, BuildError> {
        let name = config.name.as_str();
        config.validate("auth config").map_err(BuildError::from)?;
        let secret = match config.token_endpoint_auth_method {
            TokenAuthMethod::None => None,
            _ => config.client_secret.clone(),
        };
        let metadata_url = Url::parse(&config.server_metadata_url).map_err(|_| {
            BuildError::invalid(
                name,
                "server_metadata_url",
                "is not an absolute http(s) URL",
                "write the provider's full discovery URL",
            )
        })?;
        let profile = Profile::new(config, &metadata_url)?;
        let client_keys = ClientKeys::load(config)?.map(Arc::new);
        let scope = config.scope().to_owned();
        let mut extra_params: Vec<(String, String)> = config
            .client_kwargs
            .iter()
            .filter(|(key, _)| *key != "scope")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (key, value) in profile.authorization_params() {
            if !config.client_kwargs.contains_key(key) {
                extra_params.push((key.to_owned(), value));
            }
        }
        let timeout = Duration::from_secs(settings.http_timeout_secs.max(1));
        let metadata_ttl = Duration::from_secs(settings.metadata_ttl_secs.max(1));
        let http = Http::new(name, timeout)
            .map_err(|e| BuildError::HttpClient { provider: name.to_owned(), message: e.to_string() })?;
        let admission = profile.admission();
        Ok(Self {
            name: name.to_owned(),
            display_name: config.display_name.clone(),
            client: ClientAuth {
                client_id: config.client_id.clone(),
                secret,
                method: config.token_endpoint_auth_method,
                keys: client_keys,
                audience: config.client_assertion_audience,
            },
            scope,
            extra_params,
            metadata_url,
            // FAPI 2.0 pushes every request, whatever discovery says.
            use_par: (
                match (config.profile, config.use_par) {
                    (Some(auth_core::Profile::Fapi2), UsePar::Auto) => UsePar::Always,
                    (_, use_par) => use_par,
                },
                config.key("use_par"),
            ),
            revoke_on_logout: config.revoke_on_logout,
            dpop: (config.dpop, config.dpop_alg, config.key("dpop")),
            dpop_nonce: dpop::Nonce::default(),
            response_mode: (config.response_mode, config.key("response_mode")),
            fapi2: (config.profile == Some(auth_core::Profile::Fapi2)).then(|| config.key("profile")),
            leeway: Duration::from_secs(settings.leeway_secs),
            profile,
            admission,
            http: Arc::new(http),
            metadata: Cache::new(metadata_ttl),
            keys: Cache::new(metadata_ttl),
        })
    }

    /// The issuer this provider trusts, as told by its `server_metadata_url` (for
    /// Microsoft's multi-tenant endpoints, a template with `{tenantid}`).
    pub fn issuer(&self) -> &str {
        self.profile.issuer()
    }

    /// Verifies a back-channel logout token (see [`logout_token`]) against the issuer the
    /// profile expects of it, as for ID tokens; on an unknown `kid`, fetches the key set once
    /// more (rate limited) and tries again. The result carries the token's `jti`: the layer
    /// refuses replays.
    async fn verify_logout(&self, raw: &str) -> Result<LogoutClaims, Failure> {
        let metadata = self.metadata().await?;
        let issuer = logout_token::unverified_claims(raw)
            .and_then(|claims| self.profile.token_issuer(&metadata.issuer, &claims))
            .map_err(|reason| self.http.rejected(&reason))?;
        let expected =
            logout_token::Expected { issuer: &issuer, client_id: &self.client.client_id, leeway: self.leeway };
        let outcome = self.with_keys(&metadata, |keys| logout_token::verify(raw, keys, &expected)).await?;
        outcome.map_err(|refusal| match refusal {
            Refusal::UnknownKey => {
                self.http.rejected("the logout token is signed with a key the provider does not publish")
            }
            Refusal::Invalid(reason) => self.http.rejected(&reason),
        })
    }

    /// Verifies a bearer access token (see [`bearer`]): only when `bearer_audience` is set,
    /// only from an issuer [`accepts_bearer_from`](IdentityProvider::accepts_bearer_from)
    /// names, and against the exact issuer the profile expects of it, as for ID tokens. With
    /// `introspection = true`, a token that is not a JWT is introspected instead.
    async fn verify_bearer(&self, raw: &str) -> Result<BearerIdentity, ProviderError> {
        let Some(audiences) = self.profile.bearer_audiences() else {
            return Err(ProviderError::Unsupported("verifying bearer tokens (no bearer_audience is set)"));
        };
        if self.profile.introspection() && !introspection::is_jwt(raw) {
            return self.introspect(raw, audiences).await;
        }
        let token = AccessToken::parse(raw).map_err(|reason| self.http.rejected(&reason))?;
        match token.issuer() {
            Some(iss) if self.profile.trusts_token_issuer(iss) => {}
            Some(iss) => {
                let reason = format!(
                    "the access token comes from issuer {:?}, which this provider does not trust",
                    token::clip(iss)
                );
                return Err(self.http.rejected(&reason).into());
            }
            None => return Err(self.http.rejected("the access token has no iss claim (a string is required)").into()),
        }
        let metadata = self.metadata().await?;
        let issuer = self
            .profile
            .token_issuer(&metadata.issuer, token.claims())
            .map_err(|reason| self.http.rejected(&reason))?;
        let expected = bearer::Expected { issuer: &issuer, audiences, leeway: self.leeway };
        let expires_at = token.check_claims(&expected).map_err(|reason| self.http.rejected(&reason))?;
        match self.with_keys(&metadata, |keys| token.check_signature(keys)).await? {
            Ok(()) => {}
            Err(Refusal::UnknownKey) => {
                let reason = format!(
                    "the access token is signed with a key the provider does not publish (kid {:?})",
                    token.key_id()
                );
                return Err(self.http.rejected(&reason).into());
            }
            Err(Refusal::Invalid(reason)) => return Err(self.http.rejected(&reason).into()),
        }
        let claims = token.into_claims();
        let subject = self.profile.subject(&claims);
        Ok(BearerIdentity::new(Identity::new(&self.name, subject, claims), expires_at))
    }

    /// Verifies an opaque access token at the provider's introspection endpoint (see
    /// [`introspection`]): `Rejected` when discovery advertises none.
    async fn introspect(&self, raw: &str, audiences: &[String]) -> Result<BearerIdentity, ProviderError> {
        let metadata = self.metadata().await?;
        let Some(endpoint) = metadata.introspection_endpoint.as_ref() else {
            let reason = "the access token is not a JWT, and the provider's discovery document advertises no \
                          introspection_endpoint to check it with";
            return Err(self.http.rejected(reason).into());
        };
        let answer = introspection::request(&self.http, &metadata, endpoint, &self.client, raw).await?;
        let issuer = match answer.get("iss") {
            Some(_) => {
                self.profile.token_issuer(&metadata.issuer, &answer).map_err(|reason| self.http.rejected(&reason))?
            }
            None => metadata.issuer.clone(),
        };
        let expected = introspection::Expected { issuer: &issuer, audiences, leeway: self.leeway };
        let expires_at =
            introspection::check(&answer, &expected, unix_now()).map_err(|reason| self.http.rejected(&reason))?;
        let subject = self.profile.subject(&answer);
        Ok(BearerIdentity::new(Identity::new(&self.name, subject, answer), expires_at))
    }

    /// Runs `check` with the provider's cached key set (fetched on first use); when it
    /// answers [`Refusal::UnknownKey`], fetches the set once more (at most every
    /// [`JWKS_REFETCH_INTERVAL`], shared by every kind of token) and runs it again. The one
    /// place ID, logout and access tokens get their keys.
    ///
    /// # Errors
    /// [`Failure`] when the key set cannot be fetched; the check's own outcome otherwise.
    async fn with_keys<T>(
        &self,
        metadata: &Metadata,
        check: impl Fn(&Keys) -> Result<T, Refusal>,
    ) -> Result<Result<T, Refusal>, Failure> {
        let fetch = || {
            let (http, jwks_uri) = (Arc::clone(&self.http), metadata.jwks_uri.clone());
            async move { id_token::fetch_keys(&http, &jwks_uri).await }
        };
        let keys = self.keys.get(fetch).await?;
        Ok(match check(&keys) {
            Err(Refusal::UnknownKey) => {
                // Called only when the refetch is made (not rate-limited, not already done).
                let refetch = || {
                    auth_core::metrics::jwks_refetch(&self.name);
                    fetch()
                };
                match self.keys.refresh(&keys, JWKS_REFETCH_INTERVAL, refetch).await? {
                    Some(fresh) => check(&fresh),
                    None => Err(Refusal::UnknownKey),
                }
            }
            outcome => outcome,
        })
    }

    /// The discovery document, fetched on first use and again after `metadata_ttl_secs`.
    async fn metadata(&self) -> Result<Arc<Metadata>, Failure> {
        self.metadata
            .get(|| {
                let (http, url, profile) = (Arc::clone(&self.http), self.metadata_url.clone(), self.profile.clone());
                async move {
                    discovery::fetch(&http, &url, |issuer: &str| profile.check_discovered_issuer(issuer)).await
                }
            })
            .await
    }

    /// Verifies an ID token against the issuer the profile expects of it (see
    /// [`Profile::token_issuer`]); on an unknown `kid`, fetches the key set once more
    /// (rate limited) and tries again.
    async fn verify_id_token(&self, metadata: &Metadata, raw: &str, nonce: Option<&str>) -> Result<Claims, Failure> {
        let issuer = id_token::unverified_claims(raw)
            .and_then(|claims| self.profile.token_issuer(&metadata.issuer, &claims))
            .map_err(|reason| self.http.rejected(&reason))?;
        let algs: &[_] = if self.fapi2.is_some() { &id_token::FAPI2_ALGS } else { &id_token::ALLOWED_ALGS };
        let expected =
            Expected { issuer: &issuer, client_id: &self.client.client_id, nonce, leeway: self.leeway, algs };
        match self.with_keys(metadata, |keys| id_token::verify(raw, keys, &expected)).await? {
            Ok(claims) => {
                tracing::debug!("ID token verified");
                Ok(claims)
            }
            Err(refusal) => {
                let reason = match refusal {
                    Refusal::UnknownKey => format!(
                        "the ID token is signed with a key the provider does not publish (kid {:?})",
                        id_token::key_id(raw).map(|kid| token::clip(&kid))
                    ),
                    Refusal::Invalid(reason) => reason,
                };
                tracing::debug!(%reason, "ID token rejected");
                Err(self.http.rejected(&reason))
            }
        }
    }

    /// See [`IdentityProvider::revoke_tokens`] and [`revocation`].
    async fn revoke(&self, session: &Session) -> Result<bool, ProviderError> {
        if !self.revoke_on_logout || session.identity.provider != self.name {
            return Ok(false);
        }
        let tokens = &session.tokens;
        let Some((token, hint)) = revocation::pick(tokens.refresh_token.as_deref(), tokens.access_token.as_deref())
        else {
            return Ok(false);
        };
        let metadata = self.metadata().await?;
        let Some(endpoint) = metadata.revocation_endpoint.as_ref() else { return Ok(false) };
        revocation::revoke(&self.http, &metadata, endpoint, &self.client, token, hint).await?;
        Ok(true)
    }

    /// RP-initiated logout: the provider's `end_session_endpoint` (or the configured one)
    /// with the session's ID token as `id_token_hint`, then the profile's parameters
    /// (`logout_params`, Microsoft's `logout_hint`), which replace ours of the same name;
    /// `None` when the provider has no such endpoint.
    async fn logout_url(
        &self,
        session: &Session,
        post_logout_redirect_uri: &str,
        state: &str,
    ) -> Result<Option<String>, ProviderError> {
        let metadata = self.metadata().await?;
        let Some(endpoint) = metadata.end_session_endpoint.as_ref().or(self.profile.end_session_endpoint()) else {
            return Ok(None);
        };
        let mut params: Vec<(String, String)> = Vec::new();
        if let Some(id_token) = session.tokens.id_token.as_deref() {
            params.push(("id_token_hint".into(), id_token.into()));
        }
        params.push(("client_id".into(), self.client.client_id.clone()));
        params.push(("post_logout_redirect_uri".into(), post_logout_redirect_uri.into()));
        params.push(("state".into(), state.into()));
        for (key, value) in self.profile.logout_params(&session.identity.claims) {
            params.retain(|(k, _)| *k != key);
            params.push((key, value));
        }
        let mut url = endpoint.clone();
        url.query_pairs_mut().extend_pairs(params);
        Ok(Some(url.into()))
    }
}

/// Logs the outcome of `operation` in `span`: the one event per login or refresh that
/// says whether it worked (messages hold no token, code or secret).
fn logged(
    operation: &str,
    result: Result<LoginResult, ProviderError>,
    span: &tracing::Span,
) -> Result<LoginResult, ProviderError> {
    let _entered = span.enter();
    match &result {
        Ok(_) => tracing::info!(operation, "succeeded"),
        // A refresh the provider could not answer: its caller keeps the session and reports
        // it (the layer once every few seconds, however many sessions were due).
        Err(error @ ProviderError::Unavailable(_)) if operation == "refresh" => {
            tracing::debug!(operation, %error, "failed");
        }
        Err(error) => tracing::warn!(operation, %error, "failed"),
    }
    result
}

#[async_trait]
impl IdentityProvider for OidcProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn display_name(&self) -> &str {
        &self.display_name
    }

    async fn authorize(&self, redirect_uri: &str) -> Result<Authorization, ProviderError> {
        self.authorize_with(redirect_uri, &LoginOptions::default()).await
    }

    /// Adds `options` to the authorization request: `max_age`, `acr_values` (joined by
    /// spaces) and `prompt`, each replacing a `client_kwargs` entry of the same name.
    async fn authorize_with(&self, redirect_uri: &str, options: &LoginOptions) -> Result<Authorization, ProviderError> {
        let span = tracing::info_span!("oidc_authorize", provider = %self.name);
        self.start_login(redirect_uri, options).instrument(span).await
    }

    async fn complete(
        &self,
        callback: &CallbackParams,
        pending: &PendingLogin,
        redirect_uri: &str,
    ) -> Result<LoginResult, ProviderError> {
        let span = tracing::info_span!("oidc_complete", provider = %self.name);
        logged("login", self.complete_login(callback, pending, redirect_uri).instrument(span.clone()).await, &span)
    }

    async fn refresh(&self, session: &Session) -> Result<LoginResult, ProviderError> {
        let span = tracing::info_span!("oidc_refresh", provider = %self.name);
        logged("refresh", self.refresh_session(session).instrument(span.clone()).await, &span)
    }

    async fn end_session_url(
        &self,
        session: &Session,
        post_logout_redirect_uri: &str,
        state: &str,
    ) -> Result<Option<String>, ProviderError> {
        let span = tracing::info_span!("oidc_end_session", provider = %self.name);
        self.logout_url(session, post_logout_redirect_uri, state).instrument(span).await
    }

    /// Revokes the refresh token (or, without one, the access token) at the discovery
    /// document's `revocation_endpoint`, unless `revoke_on_logout = false`; `Ok(false)`
    /// when the provider advertises none or the session holds no token.
    async fn revoke_tokens(&self, session: &Session) -> Result<bool, ProviderError> {
        let span = tracing::info_span!("oidc_revoke", provider = %self.name);
        let outcome = self.revoke(session).instrument(span.clone()).await;
        let _entered = span.enter();
        match &outcome {
            Ok(true) => tracing::info!("token revoked at logout"),
            Ok(false) => tracing::debug!("no token revoked at logout"),
            Err(error) => tracing::warn!(%error, "token revocation at logout failed"),
        }
        outcome
    }

    async fn verify_logout_token(&self, token: &str) -> Result<LogoutClaims, ProviderError> {
        let span = tracing::info_span!("oidc_backchannel_logout", provider = %self.name);
        let outcome = self.verify_logout(token).instrument(span.clone()).await;
        let _entered = span.enter();
        match &outcome {
            Ok(claims) => {
                tracing::info!(sid = claims.sid.is_some(), sub = claims.subject.is_some(), "logout token verified")
            }
            Err(failure) => tracing::warn!(?failure, "logout token refused"),
        }
        outcome.map_err(ProviderError::from)
    }

    /// True when `bearer_audience` is set and `issuer` is one this provider's tokens may
    /// name, told from the metadata URL without any network call: its issuer (Google:
    /// with or without `https://`; Microsoft: with a tenant id in the tenant's place, one
    /// of `allowed_tenants` when set).
    fn admission(&self) -> Option<String> {
        self.admission.clone()
    }

    fn readmit(&self, identity: &auth_core::Identity) -> Result<(), ProviderError> {
        self.profile.admit(&identity.claims)
    }

    fn response_mode(&self) -> ResponseMode {
        self.response_mode.0
    }

    fn accepts_bearer_tokens(&self) -> bool {
        self.profile.bearer_audiences().is_some()
    }

    fn accepts_bearer_from(&self, issuer: &str) -> bool {
        self.profile.bearer_audiences().is_some() && self.profile.trusts_token_issuer(issuer)
    }

    /// True when the section sets `introspection = true` (which requires `bearer_audience`).
    fn accepts_opaque_tokens(&self) -> bool {
        self.profile.introspection()
    }

    /// The public keys of `client_private_key_file` with `private_key_jwt` (every key,
    /// the signing one first); none otherwise.
    fn client_jwks(&self) -> Vec<serde_json::Value> {
        self.client.keys.as_ref().map(|keys| keys.public_jwks()).unwrap_or_default()
    }

    async fn verify_access_token(&self, token: &str) -> Result<BearerIdentity, ProviderError> {
        let span = tracing::info_span!("oidc_bearer", provider = %self.name);
        let outcome = self.verify_bearer(token).instrument(span.clone()).await;
        let _entered = span.enter();
        match &outcome {
            Ok(bearer) => tracing::debug!(subject = %bearer.identity.subject, "access token verified"),
            Err(error @ ProviderError::Unavailable(_)) => tracing::warn!(%error, "access token not verified"),
            Err(error) => tracing::debug!(%error, "access token refused"),
        }
        outcome
    }
}
