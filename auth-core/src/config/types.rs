//! The config types: what `[auth]` means once read. Each is `#[non_exhaustive]`; build
//! one in code with its constructor, then [`AuthConfig::validate`] (the layer's builder
//! runs it) checks it exactly as a file would be checked.

use super::split_url;
use crate::Policy;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// A secret string: `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself; do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Which tokens handlers may read through [`User::tokens`](crate::User::tokens)
/// (`expose_tokens = "id"`, `"access"` or `["id", "access"]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExposeTokens {
    /// Expose the ID token.
    pub id: bool,
    /// Expose the access token.
    pub access: bool,
}

impl ExposeTokens {
    /// Expose nothing (the default).
    pub const NONE: Self = Self { id: false, access: false };
}

/// Which tokens a session keeps (`keep_tokens`, default all three). Tokens not kept are
/// dropped at login and after each refresh, which makes cookie sessions smaller: without
/// `"refresh"` nothing is refreshed, without `"id"` logout sends no `id_token_hint`,
/// without `"access"` handlers get no access token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeepTokens {
    /// Keep the ID token.
    pub id: bool,
    /// Keep the access token.
    pub access: bool,
    /// Keep the refresh token.
    pub refresh: bool,
}

impl KeepTokens {
    /// Keep every token (the default).
    pub const ALL: Self = Self { id: true, access: true, refresh: true };
    /// Keep no token: the session is the identity alone.
    pub const NONE: Self = Self { id: false, access: false, refresh: false };

    /// `tokens` without the tokens this setting drops.
    pub fn apply(self, mut tokens: crate::TokenSet) -> crate::TokenSet {
        if !self.id {
            tokens.id_token = None;
        }
        if !self.access {
            tokens.access_token = None;
            tokens.expires_at = None;
        }
        if !self.refresh {
            tokens.refresh_token = None;
        }
        // The DPoP key is of use only with a token it is bound to.
        if !self.access && !self.refresh {
            tokens.dpop_key = None;
        }
        tokens
    }
}

impl Default for KeepTokens {
    fn default() -> Self {
        Self::ALL
    }
}

/// Where sessions live (`session_store`).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum SessionStoreConfig {
    /// Absent or `"cookie"`: the session is sealed into the cookie (stateless, the default).
    #[default]
    Cookie,
    /// `"memory"`: in this process's memory (one instance; revocable).
    Memory,
    /// `"redis://..."`, `"rediss://..."`, `"redis+unix://..."`, `"unix://..."` or
    /// `"redis+cluster://..."`: in Redis, shared by every instance (needs `auth-tower`'s
    /// feature `redis`). The URL may hold a password, so it is a [`Secret`].
    Redis(Secret),
}

/// What the layer does with a cookie session larger than `cookie_budget_bytes`
/// (`cookie_overflow`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CookieOverflow {
    /// `"warn"` (the default): write it anyway, in as many cookies as it takes, and log a
    /// warning (at most once a minute).
    #[default]
    Warn,
    /// `"store"`: keep it in the server-side store given to the layer's builder
    /// (`with_overflow_store`), and put only a small ticket in the cookie. Sessions that fit
    /// stay in their cookie. Nothing to do when sessions already live on the server.
    Store,
}

/// The schemes `session_store` accepts for Redis.
pub const REDIS_SCHEMES: &[&str] = &["redis", "rediss", "redis+unix", "unix", "redis+cluster", "rediss+cluster"];

/// Which provider code serves a section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProviderKind {
    /// Any OpenID Connect issuer, by discovery.
    Oidc,
    /// Google's preset.
    Google,
    /// Microsoft Entra ID's preset.
    Microsoft,
}

/// How the client authenticates at the token endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenAuthMethod {
    /// HTTP Basic (the default, as in Streamlit).
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A public client: no secret, PKCE only.
    None,
    /// An RFC 7523 client assertion signed with the client's private key
    /// (`client_private_key_file`): no shared secret.
    PrivateKeyJwt,
    /// An RFC 7523 client assertion signed with HMAC-SHA256 keyed with `client_secret`.
    ClientSecretJwt,
}

/// The `aud` of the client assertions of `private_key_jwt` and `client_secret_jwt`
/// (`client_assertion_audience`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAssertionAudience {
    /// `"issuer"`: the provider's issuer identifier, as RFC 7523bis and FAPI 2.0 require
    /// (the default, except for Microsoft).
    #[default]
    Issuer,
    /// `"token_endpoint"`: the token endpoint's URL, for providers that insist on it
    /// (Microsoft Entra ID, whose default it is; Okta).
    TokenEndpoint,
}

/// When the login pushes its authorization request to the provider first (RFC 9126
/// pushed authorization requests, PAR): the section's `use_par`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum UsePar {
    /// `"auto"` (the default): when the discovery document says
    /// `require_pushed_authorization_requests = true`.
    #[default]
    Auto,
    /// `true`: always; a provider that advertises no `pushed_authorization_request_endpoint`
    /// fails each login with an error page saying so.
    Always,
    /// `false`: never, even when the provider requires it (its logins then fail there).
    Never,
}

/// How the provider returns the authorization response to the callback: the section's
/// `response_mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseMode {
    /// `"query"` (the default): a redirect whose address carries `code` and `state`.
    #[default]
    Query,
    /// `"form_post"` (OAuth 2.0 Form Post Response Mode): the provider's page POSTs them to
    /// the callback, so they never appear in an address, a log line or a `Referer`.
    FormPost,
}

/// A security profile a provider section follows: the section's `profile`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Profile {
    /// `"fapi2"` (FAPI 2.0 Security Profile): pushed authorization requests, PKCE S256,
    /// `private_key_jwt`, DPoP-bound tokens, `iss` on every authorization response, and ID
    /// tokens signed with PS256, ES256 or EdDSA only. A section that says otherwise is refused.
    Fapi2,
}

impl Profile {
    /// The value as written in the config.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fapi2 => "fapi2",
        }
    }
}

/// One provider section.
///
/// Read from a file by [`AuthConfig::from_file`], or built in code with
/// [`ProviderConfig::new`] and checked by [`ProviderConfig::validate`]:
///
/// ```
/// use auth_core::{ProviderConfig, ProviderKind, Secret};
///
/// let corp = ProviderConfig::new("corp", ProviderKind::Oidc, "my-app", "https://idp.example/.well-known/openid-configuration")
///     .with_client_secret(Secret::new("s3cret"));
/// assert!(corp.validate("in code").is_ok());
/// let error = corp.clone().with_client_kwarg("scope", "email").validate("in code").unwrap_err();
/// assert!(error.to_string().contains("`auth.corp.client_kwargs.scope` lacks \"openid\""));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ProviderConfig {
    /// The section name (`"default"` for keys directly in `[auth]`).
    pub name: String,
    /// The preset.
    pub kind: ProviderKind,
    /// The name shown on the chooser page.
    pub display_name: String,
    /// The OAuth client id.
    pub client_id: String,
    /// The OAuth client secret (absent only with `token_endpoint_auth_method = "none"`).
    pub client_secret: Option<Secret>,
    /// The OpenID discovery document URL.
    pub server_metadata_url: String,
    /// Extra authorization parameters; `scope` replaces the default `openid email profile`.
    pub client_kwargs: BTreeMap<String, String>,
    /// Token endpoint client authentication.
    pub token_endpoint_auth_method: TokenAuthMethod,
    /// PEM private keys of `private_key_jwt` (`client_private_key_file`, one path or a
    /// list for rotation): the first signs, all are published at `/auth/jwks`. Relative
    /// paths are relative to the working directory.
    pub client_private_key_files: Vec<std::path::PathBuf>,
    /// The `kid` of each key of `client_private_key_files`, in the same order
    /// (`client_key_id`); a key without one gets its RFC 7638 thumbprint.
    pub client_key_ids: Vec<String>,
    /// The PEM certificate of the signing key (`client_certificate_file`): assertions then
    /// carry its `x5t#S256`, which Microsoft Entra ID matches.
    pub client_certificate_file: Option<std::path::PathBuf>,
    /// The `aud` of client assertions (`client_assertion_audience`).
    pub client_assertion_audience: ClientAssertionAudience,
    /// The algorithm of `private_key_jwt` assertions (`token_endpoint_auth_signing_alg`):
    /// `"RS256"` or `"PS256"` for an RSA key, `"ES256"` for an EC key; `None` (the
    /// default): RS256 or ES256, as the key says.
    pub token_endpoint_auth_signing_alg: Option<String>,
    /// The only claims this provider's sessions keep, besides those the layer needs
    /// (`keep_claims`; see [`keeps_claim`](Self::keeps_claim)); `None` keeps every claim
    /// [`drop_claims`](Self::drop_claims) does not name. `Some(vec![])` keeps only what the
    /// layer needs.
    pub keep_claims: Option<Vec<String>>,
    /// Claims this provider's sessions drop (`drop_claims`); not together with
    /// [`keep_claims`](Self::keep_claims).
    pub drop_claims: Option<Vec<String>>,
    /// Whether logins push their authorization request first (`use_par`).
    pub use_par: UsePar,
    /// Whether logout revokes the session's refresh token at the provider's
    /// `revocation_endpoint` (`revoke_on_logout`, default `true`).
    pub revoke_on_logout: bool,
    /// Whether tokens are DPoP-bound (`dpop = true | false | "optional"`, default `false`).
    pub dpop: crate::DpopMode,
    /// The algorithm of each session's DPoP key (`dpop_alg = "ES256" | "EdDSA"`).
    pub dpop_alg: crate::DpopAlg,
    /// How the authorization response comes back (`response_mode`, default `"query"`).
    pub response_mode: ResponseMode,
    /// The security profile the section follows (`profile`, default none).
    pub profile: Option<Profile>,
    /// Keys this crate does not interpret, for provider presets (`hosted_domains`, ...).
    pub extra: Map<String, Value>,
}

impl ProviderConfig {
    /// A section `name` of `kind` for the client `client_id`, whose discovery document is at
    /// `server_metadata_url`; no secret yet, the default display name of its kind.
    pub fn new(
        name: impl Into<String>,
        kind: ProviderKind,
        client_id: impl Into<String>,
        server_metadata_url: impl Into<String>,
    ) -> Self {
        let name = name.into();
        Self {
            display_name: default_display_name(&name, kind),
            name,
            kind,
            client_id: client_id.into(),
            client_secret: None,
            server_metadata_url: server_metadata_url.into(),
            client_kwargs: BTreeMap::new(),
            token_endpoint_auth_method: TokenAuthMethod::default(),
            client_private_key_files: Vec::new(),
            client_key_ids: Vec::new(),
            client_certificate_file: None,
            token_endpoint_auth_signing_alg: None,
            client_assertion_audience: match kind {
                ProviderKind::Microsoft => ClientAssertionAudience::TokenEndpoint,
                _ => ClientAssertionAudience::Issuer,
            },
            keep_claims: None,
            drop_claims: None,
            use_par: UsePar::default(),
            revoke_on_logout: true,
            dpop: crate::DpopMode::Off,
            dpop_alg: crate::DpopAlg::Es256,
            response_mode: ResponseMode::default(),
            profile: None,
            extra: Map::new(),
        }
    }

    /// With the client secret `secret`.
    #[must_use]
    pub fn with_client_secret(mut self, secret: Secret) -> Self {
        self.client_secret = Some(secret);
        self
    }

    /// With the chooser page's name `name`.
    #[must_use]
    pub fn with_display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = name.into();
        self
    }

    /// With the token endpoint client authentication `method`.
    #[must_use]
    pub fn with_token_endpoint_auth_method(mut self, method: TokenAuthMethod) -> Self {
        self.token_endpoint_auth_method = method;
        self
    }

    /// With `use_par`: when logins push their authorization request first.
    #[must_use]
    pub fn with_use_par(mut self, use_par: UsePar) -> Self {
        self.use_par = use_par;
        self
    }

    /// With `response_mode`: how the authorization response comes back.
    #[must_use]
    pub fn with_response_mode(mut self, mode: ResponseMode) -> Self {
        self.response_mode = mode;
        self
    }

    /// With `profile = "fapi2"` (or none): under [`Profile::Fapi2`], `use_par = "auto"`
    /// becomes `true`; the other keys the profile requires must be set to match
    /// ([`validate`](Self::validate) says which).
    #[must_use]
    pub fn with_profile(mut self, profile: Option<Profile>) -> Self {
        self.profile = profile;
        if profile == Some(Profile::Fapi2) && self.use_par == UsePar::Auto {
            self.use_par = UsePar::Always;
        }
        self
    }

    /// With `revoke_on_logout`: whether logout revokes the refresh token at the provider.
    #[must_use]
    pub fn with_revoke_on_logout(mut self, revoke: bool) -> Self {
        self.revoke_on_logout = revoke;
        self
    }

    /// With `private_key_jwt` client authentication signed by the PEM key at `path`
    /// (`client_private_key_file`; call again to add a key for rotation).
    #[must_use]
    pub fn with_client_private_key_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.token_endpoint_auth_method = TokenAuthMethod::PrivateKeyJwt;
        self.client_private_key_files.push(path.into());
        self
    }

    /// With the authorization parameter `key = value` (`client_kwargs`).
    #[must_use]
    pub fn with_client_kwarg(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.client_kwargs.insert(key.into(), value.into());
        self
    }

    /// With sessions keeping only `claims` and those the layer needs (`keep_claims`).
    #[must_use]
    pub fn with_keep_claims<S: Into<String>>(mut self, claims: impl IntoIterator<Item = S>) -> Self {
        self.keep_claims = Some(claims.into_iter().map(Into::into).collect());
        self
    }

    /// With sessions leaving out `claims` (`drop_claims`).
    #[must_use]
    pub fn with_drop_claims<S: Into<String>>(mut self, claims: impl IntoIterator<Item = S>) -> Self {
        self.drop_claims = Some(claims.into_iter().map(Into::into).collect());
        self
    }

    /// With the preset key `key` (`hosted_domains`, `tenant`, ...), as its TOML value.
    #[must_use]
    pub fn with_extra(mut self, key: impl Into<String>, value: Value) -> Self {
        self.extra.insert(key.into(), value);
        self
    }

    /// The `scope` to request: `client_kwargs.scope` or `openid email profile`.
    pub fn scope(&self) -> &str {
        self.client_kwargs.get("scope").map_or("openid email profile", String::as_str)
    }

    /// Whether this provider's sessions keep the claim `claim`: always for the claims the
    /// layer reads from sessions (`sub`, `iss`, `sid`, `exp`, `auth_time`, `acr`, `tid`,
    /// `login_hint`, `groups_overage`; see the README's `keep_claims` row), else as
    /// `keep_claims` or `drop_claims` say (every claim when neither is set).
    pub fn keeps_claim(&self, claim: &str) -> bool {
        super::LAYER_CLAIMS.iter().any(|(needed, _)| *needed == claim)
            || match (&self.keep_claims, &self.drop_claims) {
                (Some(keep), _) => keep.iter().any(|k| k == claim),
                (None, Some(drop)) => !drop.iter().any(|d| d == claim),
                (None, None) => true,
            }
    }

    /// Whether `keep_claims` or `drop_claims` is set, so sessions may keep fewer claims
    /// than the provider sent.
    pub fn filters_claims(&self) -> bool {
        self.keep_claims.is_some() || self.drop_claims.as_ref().is_some_and(|drop| !drop.is_empty())
    }

    /// Removes from `claims` those this provider's sessions do not keep
    /// ([`keeps_claim`](Self::keeps_claim)). The layer runs it on every login and refresh,
    /// before the session is stored (or sealed into the cookie).
    pub fn retain_claims(&self, claims: &mut crate::Claims) {
        if self.filters_claims() {
            claims.retain(|claim, _| self.keeps_claim(claim));
        }
    }

    /// The dotted config key of `key` in this section: `auth.KEY` for the default
    /// provider (whose keys sit directly in `[auth]`), `auth.NAME.KEY` otherwise.
    pub fn key(&self, key: &str) -> String {
        if self.name == super::DEFAULT_PROVIDER { format!("auth.{key}") } else { format!("auth.{}.{key}", self.name) }
    }
}

/// The chooser page's name of a section without `display_name`.
pub(super) fn default_display_name(name: &str, kind: ProviderKind) -> String {
    match kind {
        ProviderKind::Google => "Google".into(),
        ProviderKind::Microsoft => "Microsoft".into(),
        _ if name == super::DEFAULT_PROVIDER => "Sign in".into(),
        _ => name.to_owned(),
    }
}

/// The whole `[auth]` section.
///
/// Read from a file by [`AuthConfig::from_file`] (checked as it is read), or built in
/// code with [`AuthConfig::new`]; fields may then be changed, and
/// [`AuthConfig::validate`] (which the layer's builder runs) checks the result the same way:
///
/// ```
/// use auth_core::{AuthConfig, Secret};
///
/// let mut config = AuthConfig::new("https://app.example/oauth2callback", Secret::new("a secret of at least thirty-two bytes"));
/// config.idle_timeout_secs = Some(1800);
/// assert!(config.validate().is_ok());
/// assert_eq!(config.post_logout_redirect_uri, "https://app.example/");
///
/// config.cookie_secret = Secret::new("short");
/// let error = config.validate().unwrap_err().to_string();
/// assert!(error.contains("`auth.cookie_secret` is 5 bytes, shorter than the 32 required"), "{error}");
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AuthConfig {
    /// Where providers send the browser back; its path is the callback route.
    pub redirect_uri: String,
    /// Seals every cookie (at least 32 bytes).
    pub cookie_secret: Secret,
    /// Earlier secrets: cookies sealed with them still open (`previous_cookie_secrets`).
    pub previous_cookie_secrets: Vec<Secret>,
    /// The providers, by name; empty when the app brings its own providers.
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Tokens handlers may read.
    pub expose_tokens: ExposeTokens,
    /// Absolute session lifetime in seconds (`session_lifetime_secs`, default 30 days).
    pub session_lifetime_secs: u64,
    /// Clock leeway for token times in seconds (`leeway_secs`, default 60).
    pub leeway_secs: u64,
    /// Timeout of every call to a provider in seconds (`http_timeout_secs`, default 10).
    pub http_timeout_secs: u64,
    /// How long a provider's discovery document and key set are trusted before they are
    /// fetched again, in seconds (`metadata_ttl_secs`, default a day).
    pub metadata_ttl_secs: u64,
    /// Where the provider sends the browser after logout (`post_logout_redirect_uri`,
    /// default: the root of `redirect_uri`'s origin).
    pub post_logout_redirect_uri: String,
    /// The session cookie's name (`cookie_name`, default `auth_session`), before the
    /// `__Host-`/`__Secure-` prefix (see [`cookie_prefix`](Self::cookie_prefix)).
    pub cookie_name: String,
    /// The cookies' `Path` (`cookie_path`, default `/`).
    pub cookie_path: String,
    /// The cookies' `Domain` (`cookie_domain`), lower case without a leading dot; `None`
    /// (the default) makes host-only cookies.
    pub cookie_domain: Option<String>,
    /// End a session after this many seconds without a request (`idle_timeout_secs`);
    /// `None` (the default): only the absolute lifetime counts.
    pub idle_timeout_secs: Option<u64>,
    /// End the session when the ID token expires (`end_with_id_token`, default `false`).
    pub end_with_id_token: bool,
    /// Refresh the access token when it expires within this many seconds
    /// (`refresh_margin_secs`, default 60).
    pub refresh_margin_secs: u64,
    /// Log a warning when the session cookies of a response exceed this many bytes
    /// (`cookie_budget_bytes`, default 4096; 0 never warns), or keep such sessions on the
    /// server (see [`cookie_overflow`](Self::cookie_overflow)).
    pub cookie_budget_bytes: u64,
    /// What happens to a cookie session past `cookie_budget_bytes` (`cookie_overflow`,
    /// default [`CookieOverflow::Warn`]).
    pub cookie_overflow: CookieOverflow,
    /// How many opened session cookies each process keeps in memory, so that a request
    /// whose cookie was seen before skips opening it (`session_cache_entries`, default
    /// 10,000, about 20 MB when full; 0: no cache). Past it, each new entry evicts one.
    /// With `session_store = "redis://..."` it sizes the Redis store's local copies of
    /// sessions, which Redis keeps current.
    pub session_cache_entries: u64,
    /// Which tokens sessions keep (`keep_tokens`, default all).
    pub keep_tokens: KeepTokens,
    /// Where sessions live (`session_store`, default the sealed cookie).
    pub session_store: SessionStoreConfig,
    /// Serve `GET /auth/jwks`, the public keys of every `private_key_jwt` provider
    /// (`publish_client_jwks`, default `false`).
    pub publish_client_jwks: bool,
    /// Named guards (`[auth.policies]`), for the app to look up with
    /// [`policy`](Self::policy): `admin = { claim_contains = { claim = "groups", value = "admins" } }`.
    pub policies: BTreeMap<String, Policy>,
    /// Where this config came from, for messages (the file, or `"auth config"`).
    pub origin: String,
}

impl AuthConfig {
    /// A config with every default (Streamlit's where it has one), no provider, and
    /// `post_logout_redirect_uri` the root of `redirect_uri`'s origin.
    pub fn new(redirect_uri: impl Into<String>, cookie_secret: Secret) -> Self {
        let redirect_uri = redirect_uri.into();
        let post_logout_redirect_uri = split_url(&redirect_uri)
            .map_or_else(String::new, |(scheme, authority, _)| format!("{scheme}://{authority}/"));
        Self {
            redirect_uri,
            cookie_secret,
            previous_cookie_secrets: Vec::new(),
            providers: BTreeMap::new(),
            expose_tokens: ExposeTokens::NONE,
            session_lifetime_secs: super::DEFAULT_SESSION_LIFETIME_SECS,
            leeway_secs: super::DEFAULT_LEEWAY_SECS,
            http_timeout_secs: super::DEFAULT_HTTP_TIMEOUT_SECS,
            metadata_ttl_secs: super::DEFAULT_METADATA_TTL_SECS,
            post_logout_redirect_uri,
            cookie_name: super::DEFAULT_COOKIE_NAME.into(),
            cookie_path: "/".into(),
            cookie_domain: None,
            idle_timeout_secs: None,
            end_with_id_token: false,
            refresh_margin_secs: super::DEFAULT_REFRESH_MARGIN_SECS,
            cookie_budget_bytes: super::DEFAULT_COOKIE_BUDGET_BYTES,
            cookie_overflow: CookieOverflow::Warn,
            session_cache_entries: super::DEFAULT_SESSION_CACHE_ENTRIES,
            keep_tokens: KeepTokens::ALL,
            session_store: SessionStoreConfig::Cookie,
            publish_client_jwks: false,
            policies: BTreeMap::new(),
            origin: "auth config".into(),
        }
    }

    /// With `provider` added (replacing one of the same name).
    #[must_use]
    pub fn with_provider(mut self, provider: ProviderConfig) -> Self {
        self.providers.insert(provider.name.clone(), provider);
        self
    }

    /// The policy named `name` in `[auth.policies]`.
    pub fn policy(&self, name: &str) -> Option<&Policy> {
        self.policies.get(name)
    }

    /// The sealer of this app's cookies: keyed by `cookie_secret` (opening values of
    /// `previous_cookie_secrets` too) and bound to `cookie_name` and `redirect_uri`, so
    /// another app sharing the secret cannot open them.
    pub fn sealer(&self) -> crate::seal::Sealer {
        let previous: Vec<&[u8]> = self.previous_cookie_secrets.iter().map(|s| s.expose().as_bytes()).collect();
        let binding = crate::seal::app_binding(&self.cookie_name, &self.redirect_uri);
        crate::seal::Sealer::new(self.cookie_secret.expose().as_bytes(), &previous).with_context(binding.as_bytes())
    }

    /// The path of `redirect_uri`: the callback route.
    pub fn callback_path(&self) -> &str {
        split_url(&self.redirect_uri).map_or("/", |(_, _, path)| path)
    }

    /// Whether cookies get `Secure` (`redirect_uri` is https).
    pub fn secure_cookies(&self) -> bool {
        self.redirect_uri.starts_with("https://")
    }

    /// The prefix of every cookie name: `__Host-` for `Secure` cookies with `Path=/` and no
    /// `Domain` (the browser then refuses the cookie from a subdomain or over http),
    /// `__Secure-` for other `Secure` cookies, none without https. A `cookie_name` that
    /// already carries a prefix gets none.
    pub fn cookie_prefix(&self) -> &'static str {
        if !self.secure_cookies()
            || self.cookie_name.starts_with("__Host-")
            || self.cookie_name.starts_with("__Secure-")
        {
            ""
        } else if self.cookie_path == "/" && self.cookie_domain.is_none() {
            "__Host-"
        } else {
            "__Secure-"
        }
    }

    /// `scheme://host[:port]` of `redirect_uri`, the app's origin.
    pub fn app_origin(&self) -> String {
        split_url(&self.redirect_uri)
            .map_or_else(String::new, |(scheme, authority, _)| format!("{scheme}://{authority}"))
    }
}
