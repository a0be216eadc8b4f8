//! [`AuthConfig`]: Streamlit's `[auth]` section, read unchanged, plus our own keys.
//!
//! ```toml
//! [auth]
//! redirect_uri = "http://localhost:3000/oauth2callback"
//! cookie_secret = "at least 32 random bytes"
//! client_id = "..."            # the default provider: keys directly in [auth]
//! client_secret = "..."
//! server_metadata_url = "https://issuer/.well-known/openid-configuration"
//!
//! [auth.google]                # a named provider: /auth/login?provider=google
//! client_id = "..."
//! client_secret = "..."
//! ```
//!
//! Every value may be overridden by an environment variable: `AUTH__COOKIE_SECRET`,
//! `AUTH__GOOGLE__CLIENT_SECRET`, ... (`AUTH__` then the keys joined by `__`).
//! Errors name the file, the key and the fix; secrets never appear in them.

use crate::ConfigError;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// The name of the provider whose keys sit directly in `[auth]`.
pub const DEFAULT_PROVIDER: &str = "default";
/// Streamlit's cookie lifetime: 30 days.
pub const DEFAULT_SESSION_LIFETIME_SECS: u64 = 30 * 24 * 3600;
/// The default of `cookie_budget_bytes`: one browser cookie's worth. Past it the session
/// needs several cookies, and the request's `Cookie` header nears the 8 KB many proxies and
/// servers allow for one header.
pub const DEFAULT_COOKIE_BUDGET_BYTES: u64 = 4096;
/// The default of `refresh_margin_secs`.
pub const DEFAULT_REFRESH_MARGIN_SECS: u64 = 60;
const GOOGLE_METADATA_URL: &str = "https://accounts.google.com/.well-known/openid-configuration";
const SECRET_FIX: &str = "generate one with `openssl rand -base64 32` (or `python3 -c \"import secrets; print(secrets.token_urlsafe(32))\"`) and set it as `cookie_secret` in [auth]";

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
}

/// One provider section.
#[derive(Clone, Debug)]
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
    /// Keys this crate does not interpret, for provider presets (`hosted_domains`, ...).
    pub extra: Map<String, Value>,
}

impl ProviderConfig {
    /// The `scope` to request: `client_kwargs.scope` or `openid email profile`.
    pub fn scope(&self) -> &str {
        self.client_kwargs.get("scope").map_or("openid email profile", String::as_str)
    }
}

/// The whole `[auth]` section, validated.
#[derive(Clone, Debug)]
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
    /// (`cookie_budget_bytes`, default 4096; 0 never warns).
    pub cookie_budget_bytes: u64,
    /// Which tokens sessions keep (`keep_tokens`, default all).
    pub keep_tokens: KeepTokens,
    /// Where sessions live (`session_store`, default the sealed cookie).
    pub session_store: SessionStoreConfig,
    /// Where this config came from, for messages.
    pub origin: String,
}

impl AuthConfig {
    /// Reads `[auth]` from a TOML file (such as `.streamlit/secrets.toml`), then applies
    /// `AUTH__...` environment overrides, then validates.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file, the key and the fix.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let read_err = |message: String| ConfigError::Read { path: path.to_owned(), message };
        if !path.exists() {
            return Err(read_err(
                "the file does not exist; create it with an [auth] section (see the README's config table)".into(),
            ));
        }
        let loaded = config::Config::builder()
            .add_source(config::File::from(path).format(config::FileFormat::Toml))
            .add_source(env_overrides())
            .build()
            .map_err(|e| read_err(e.to_string()))?;
        let value: Value = loaded.try_deserialize().map_err(|e| read_err(e.to_string()))?;
        Self::from_value(value, &path.display().to_string())
    }

    /// Reads `[auth]` from TOML text (no environment overrides); `origin` names it in errors.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key and the fix.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let loaded = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .map_err(|e| ConfigError::Read { path: origin.into(), message: e.to_string() })?;
        let value: Value =
            loaded.try_deserialize().map_err(|e| ConfigError::Read { path: origin.into(), message: e.to_string() })?;
        Self::from_value(value, origin)
    }

    fn from_value(root: Value, origin: &str) -> Result<Self, ConfigError> {
        let v = Validator { origin };
        let Some(Value::Object(auth)) = root.get("auth").cloned() else {
            return Err(v.err(
                "auth",
                "is missing",
                "add an [auth] section with redirect_uri, cookie_secret and a provider",
            ));
        };
        let redirect_uri = v.required_str(
            &auth,
            "auth",
            "redirect_uri",
            "set it to your app's callback URL, e.g. \"http://localhost:3000/oauth2callback\"",
        )?;
        let redirect = v.http_url("auth.redirect_uri", &redirect_uri)?;
        let cookie_secret = v.required_str(&auth, "auth", "cookie_secret", SECRET_FIX)?;
        if cookie_secret.len() < 32 {
            return Err(v.err(
                "auth.cookie_secret",
                &format!("is {} bytes, shorter than the 32 required", cookie_secret.len()),
                SECRET_FIX,
            ));
        }
        let previous_cookie_secrets = match auth.get("previous_cookie_secrets") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|s| match s.as_str() {
                    Some(s) if s.len() >= 32 => Ok(Secret::new(s)),
                    _ => Err(v.err(
                        "auth.previous_cookie_secrets",
                        "holds an entry that is not a string of at least 32 bytes",
                        "list only earlier cookie_secret values",
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(v.err(
                    "auth.previous_cookie_secrets",
                    "is not a list",
                    "write previous_cookie_secrets = [\"old secret\"]",
                ));
            }
        };
        let expose_tokens = v.expose_tokens(auth.get("expose_tokens"))?;
        let origin_root = format!("{}://{}/", redirect.0, redirect.1);
        let post_logout_redirect_uri = match auth.get("post_logout_redirect_uri") {
            None => origin_root,
            Some(_) => {
                let uri = v.required_str(&auth, "auth", "post_logout_redirect_uri", "set an absolute URL")?;
                v.http_url("auth.post_logout_redirect_uri", &uri)?;
                uri
            }
        };
        let cookie_name = v.optional_str(&auth, "auth", "cookie_name")?.unwrap_or_else(|| "auth_session".into());
        if cookie_name.is_empty() || !cookie_name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b)) {
            return Err(v.err(
                "auth.cookie_name",
                "is not a plain cookie name",
                "use letters, digits, '_' and '-' only",
            ));
        }
        let secure = redirect.0 == "https";
        let cookie_path = v.optional_str(&auth, "auth", "cookie_path")?.unwrap_or_else(|| "/".into());
        if !cookie_path.starts_with('/')
            || !cookie_path.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b','))
        {
            return Err(v.err(
                "auth.cookie_path",
                "is not a plain absolute path",
                "write a path such as \"/\" or \"/app\" (no spaces, ';' or ',')",
            ));
        }
        let cookie_domain = match v.optional_str(&auth, "auth", "cookie_domain")? {
            None => None,
            Some(domain) => Some(v.cookie_domain(&domain, redirect.1)?),
        };
        for (prefix, needs_host) in [("__Host-", true), ("__Secure-", false)] {
            let host_ok = cookie_path == "/" && cookie_domain.is_none();
            if cookie_name.starts_with(prefix) && (!secure || (needs_host && !host_ok)) {
                return Err(v.err(
                    "auth.cookie_name",
                    &format!(
                        "starts with {prefix}, which browsers accept only on Secure cookies{}",
                        if needs_host { " with Path=/ and no Domain" } else { "" }
                    ),
                    "remove the prefix: the layer adds __Host- or __Secure- itself whenever it applies",
                ));
            }
        }
        let idle_timeout_secs = match auth.get("idle_timeout_secs") {
            None => None,
            Some(_) => match v.secs(&auth, "idle_timeout_secs", 0)? {
                0 => {
                    return Err(v.err(
                        "auth.idle_timeout_secs",
                        "is 0",
                        "remove it to have no idle timeout, or give the seconds of inactivity that end a session, e.g. 1800",
                    ));
                }
                secs => Some(secs),
            },
        };
        let keep_tokens = v.keep_tokens(auth.get("keep_tokens"))?;
        for (exposed, kept, name) in
            [(expose_tokens.id, keep_tokens.id, "id"), (expose_tokens.access, keep_tokens.access, "access")]
        {
            if exposed && !kept {
                return Err(v.err(
                    "auth.keep_tokens",
                    &format!("lacks {name:?}, which expose_tokens reveals"),
                    &format!("add \"{name}\" to keep_tokens, or remove it from expose_tokens"),
                ));
            }
        }
        let session_store = v.session_store(&auth)?;

        let mut providers = BTreeMap::new();
        let has_default = PROVIDER_KEYS.iter().any(|k| auth.contains_key(*k));
        if has_default {
            providers.insert(DEFAULT_PROVIDER.to_owned(), v.provider(DEFAULT_PROVIDER, "auth", &auth)?);
        }
        for (key, value) in &auth {
            match value {
                Value::Object(section) if !PROVIDER_TABLES.contains(&key.as_str()) && key != "extra" => {
                    providers.insert(key.clone(), v.provider(key, &format!("auth.{key}"), section)?);
                }
                _ if TOP_KEYS.contains(&key.as_str()) || PROVIDER_KEYS.contains(&key.as_str()) => {}
                // The default provider's `extra`: its preset judges the key.
                _ if has_default => {}
                _ => tracing::warn!(origin, key = %format!("auth.{key}"), "unknown auth config key ignored"),
            }
        }
        // No provider is fine here: an app may bring its own (`AuthLayer::builder(..)
        // .with_provider(..)`); building providers from this config refuses it.
        Ok(Self {
            redirect_uri,
            cookie_secret: Secret::new(cookie_secret),
            previous_cookie_secrets,
            providers,
            expose_tokens,
            session_lifetime_secs: v.secs(&auth, "session_lifetime_secs", DEFAULT_SESSION_LIFETIME_SECS)?,
            leeway_secs: v.secs(&auth, "leeway_secs", 60)?,
            http_timeout_secs: v.secs(&auth, "http_timeout_secs", 10)?.max(1),
            post_logout_redirect_uri,
            cookie_name,
            cookie_path,
            cookie_domain,
            idle_timeout_secs,
            end_with_id_token: v.boolean(&auth, "end_with_id_token")?,
            refresh_margin_secs: v.secs(&auth, "refresh_margin_secs", DEFAULT_REFRESH_MARGIN_SECS)?,
            cookie_budget_bytes: v.whole(&auth, "cookie_budget_bytes", DEFAULT_COOKIE_BUDGET_BYTES, "bytes")?,
            keep_tokens,
            session_store,
            origin: origin.to_owned(),
        })
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

const TOP_KEYS: &[&str] = &[
    "redirect_uri",
    "cookie_secret",
    "previous_cookie_secrets",
    "expose_tokens",
    "session_lifetime_secs",
    "leeway_secs",
    "http_timeout_secs",
    "post_logout_redirect_uri",
    "cookie_name",
    "cookie_path",
    "cookie_domain",
    "idle_timeout_secs",
    "end_with_id_token",
    "refresh_margin_secs",
    "cookie_budget_bytes",
    "keep_tokens",
    "session_store",
];
const PROVIDER_KEYS: &[&str] = &[
    "client_id",
    "client_secret",
    "server_metadata_url",
    "client_kwargs",
    "kind",
    "display_name",
    "token_endpoint_auth_method",
];
/// Tables that belong to a provider's keys, not provider sections of their own.
const PROVIDER_TABLES: &[&str] = &["client_kwargs", "logout_params"];
/// Authorization parameters the provider sets itself; `client_kwargs` may not override them.
const RESERVED_KWARGS: &[&str] =
    &["state", "nonce", "code_challenge", "code_challenge_method", "redirect_uri", "response_type", "client_id"];

fn env_overrides() -> config::Environment {
    config::Environment::with_prefix("AUTH").prefix_separator("__").separator("__").keep_prefix(true)
}

/// `(scheme, authority, path)` of an absolute http(s) URL.
fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    (!authority.is_empty()).then_some((scheme, authority, path))
}

struct Validator<'a> {
    origin: &'a str,
}

impl Validator<'_> {
    fn err(&self, key: &str, problem: &str, fix: &str) -> ConfigError {
        ConfigError::Invalid { origin: self.origin.into(), key: key.into(), problem: problem.into(), fix: fix.into() }
    }

    fn optional_str(&self, table: &Map<String, Value>, at: &str, key: &str) -> Result<Option<String>, ConfigError> {
        match table.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.err(&format!("{at}.{key}"), "is not a string", "quote the value")),
        }
    }

    fn required_str(&self, table: &Map<String, Value>, at: &str, key: &str, fix: &str) -> Result<String, ConfigError> {
        match self.optional_str(table, at, key)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(self.err(&format!("{at}.{key}"), "is missing or empty", fix)),
        }
    }

    fn http_url<'u>(&self, key: &str, url: &'u str) -> Result<(&'u str, &'u str, &'u str), ConfigError> {
        split_url(url).ok_or_else(|| {
            self.err(
                key,
                &format!("is not an absolute http(s) URL ({url:?})"),
                "write the full URL, such as \"https://app.example.com/oauth2callback\"",
            )
        })
    }

    fn secs(&self, table: &Map<String, Value>, key: &str, default: u64) -> Result<u64, ConfigError> {
        self.whole(table, key, default, "seconds")
    }

    /// A whole number of `unit`; environment overrides (strings) are accepted too.
    fn whole(&self, table: &Map<String, Value>, key: &str, default: u64, unit: &str) -> Result<u64, ConfigError> {
        match table.get(key) {
            None => Ok(default),
            Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64().unwrap_or(default)),
            // Environment overrides arrive as strings.
            Some(Value::String(s)) if s.parse::<u64>().is_ok() => Ok(s.parse().unwrap_or(default)),
            Some(_) => Err(self.err(
                &format!("auth.{key}"),
                &format!("is not a whole number of {unit}"),
                &format!("write {key} = {default}"),
            )),
        }
    }

    fn boolean(&self, table: &Map<String, Value>, key: &str) -> Result<bool, ConfigError> {
        match table.get(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            // Environment overrides arrive as strings.
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
            Some(_) => Err(self.err(&format!("auth.{key}"), "is not true or false", &format!("write {key} = true"))),
        }
    }

    /// A `cookie_domain`: lower case, without a leading dot, and one the browser accepts
    /// from `redirect_uri`'s host (the host itself or a parent domain of it).
    fn cookie_domain(&self, domain: &str, authority: &str) -> Result<String, ConfigError> {
        let key = "auth.cookie_domain";
        let domain = domain.trim().trim_start_matches('.').to_ascii_lowercase();
        if domain.is_empty() || !domain.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') {
            return Err(self.err(
                key,
                "is not a domain name",
                "write a domain such as \"example.com\", or remove it for host-only cookies",
            ));
        }
        let host = authority.rsplit('@').next().unwrap_or(authority);
        let host = match host.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => host,
        }
        .to_ascii_lowercase();
        if host != domain && !host.ends_with(&format!(".{domain}")) {
            return Err(self.err(
                key,
                &format!("is {domain:?}, which does not contain redirect_uri's host {host:?}, so browsers would refuse the cookies"),
                "use redirect_uri's host or one of its parent domains, or remove cookie_domain",
            ));
        }
        Ok(domain)
    }

    fn keep_tokens(&self, value: Option<&Value>) -> Result<KeepTokens, ConfigError> {
        let names: Vec<&str> = match value {
            None => return Ok(KeepTokens::ALL),
            Some(Value::String(s)) => s.split(',').map(str::trim).filter(|s| !s.is_empty()).collect(),
            Some(Value::Array(items)) => items.iter().map(|i| i.as_str().unwrap_or("?")).collect(),
            Some(_) => vec!["?"],
        };
        let mut keep = KeepTokens::NONE;
        for name in names {
            match name {
                "id" => keep.id = true,
                "access" => keep.access = true,
                "refresh" => keep.refresh = true,
                _ => {
                    return Err(self.err(
                        "auth.keep_tokens",
                        &format!("has {name:?}, which is not a token kind"),
                        "list some of \"id\", \"access\" and \"refresh\", e.g. keep_tokens = [\"id\", \"access\", \"refresh\"]",
                    ));
                }
            }
        }
        Ok(keep)
    }

    fn session_store(&self, table: &Map<String, Value>) -> Result<SessionStoreConfig, ConfigError> {
        const FIX: &str = "use \"cookie\" (the default), \"memory\", or a Redis URL such as \"redis://127.0.0.1:6379\"";
        let Some(url) = self.optional_str(table, "auth", "session_store")? else {
            return Ok(SessionStoreConfig::Cookie);
        };
        let url = url.trim();
        match url {
            "" | "cookie" => return Ok(SessionStoreConfig::Cookie),
            "memory" => return Ok(SessionStoreConfig::Memory),
            _ => {}
        }
        // Never echo the URL: it may hold a password.
        match url.split_once("://") {
            Some((scheme, rest))
                if REDIS_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) && !rest.is_empty() =>
            {
                Ok(SessionStoreConfig::Redis(Secret::new(url)))
            }
            Some((scheme, _)) => Err(self.err(
                "auth.session_store",
                &format!(
                    "has the scheme {:?}, which is not a session store",
                    scheme.chars().take(20).collect::<String>()
                ),
                FIX,
            )),
            None => Err(self.err("auth.session_store", "is neither \"cookie\", \"memory\" nor a URL", FIX)),
        }
    }

    fn expose_tokens(&self, value: Option<&Value>) -> Result<ExposeTokens, ConfigError> {
        let names: Vec<&str> = match value {
            None => return Ok(ExposeTokens::NONE),
            Some(Value::String(s)) => s.split(',').map(str::trim).filter(|s| !s.is_empty()).collect(),
            Some(Value::Array(items)) => items.iter().map(|i| i.as_str().unwrap_or("?")).collect(),
            Some(_) => vec!["?"],
        };
        let mut expose = ExposeTokens::NONE;
        for name in names {
            match name {
                "id" => expose.id = true,
                "access" => expose.access = true,
                _ => {
                    return Err(self.err(
                        "auth.expose_tokens",
                        &format!("has {name:?}, which is not a token kind"),
                        "use \"id\", \"access\" or [\"id\", \"access\"]",
                    ));
                }
            }
        }
        Ok(expose)
    }

    fn provider(&self, name: &str, at: &str, table: &Map<String, Value>) -> Result<ProviderConfig, ConfigError> {
        let key = |k: &str| format!("{at}.{k}");
        let kind = match self.optional_str(table, at, "kind")?.as_deref() {
            Some("oidc") => Some(ProviderKind::Oidc),
            Some("google") => Some(ProviderKind::Google),
            Some("microsoft") => Some(ProviderKind::Microsoft),
            Some(other) => {
                return Err(self.err(
                    &key("kind"),
                    &format!("is {other:?}"),
                    "use \"oidc\", \"google\" or \"microsoft\"",
                ));
            }
            None => None,
        };
        let metadata = self.optional_str(table, at, "server_metadata_url")?;
        let kind = kind.unwrap_or_else(|| match (name, metadata.as_deref().and_then(split_url)) {
            ("google", _) => ProviderKind::Google,
            ("microsoft", _) => ProviderKind::Microsoft,
            (_, Some((_, "accounts.google.com", _))) => ProviderKind::Google,
            (_, Some((_, "login.microsoftonline.com", _))) => ProviderKind::Microsoft,
            _ => ProviderKind::Oidc,
        });
        let server_metadata_url = match (metadata, kind) {
            (Some(url), _) => url,
            (None, ProviderKind::Google) => GOOGLE_METADATA_URL.to_owned(),
            (None, ProviderKind::Microsoft) => {
                let tenant = self.optional_str(table, at, "tenant")?.unwrap_or_else(|| "common".into());
                format!("https://login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration")
            }
            (None, _) => {
                return Err(self.err(
                    &key("server_metadata_url"),
                    "is missing",
                    "set it to the provider's discovery URL, ending in /.well-known/openid-configuration",
                ));
            }
        };
        self.http_url(&key("server_metadata_url"), &server_metadata_url)?;
        let client_id =
            self.required_str(table, at, "client_id", "copy the client id from the provider's app registration")?;
        let token_endpoint_auth_method = match self.optional_str(table, at, "token_endpoint_auth_method")?.as_deref() {
            None | Some("client_secret_basic") => TokenAuthMethod::ClientSecretBasic,
            Some("client_secret_post") => TokenAuthMethod::ClientSecretPost,
            Some("none") => TokenAuthMethod::None,
            Some(other) => {
                return Err(self.err(
                    &key("token_endpoint_auth_method"),
                    &format!("is {other:?}"),
                    "use \"client_secret_basic\", \"client_secret_post\" or \"none\"",
                ));
            }
        };
        let client_secret = match token_endpoint_auth_method {
            TokenAuthMethod::None => None,
            _ => Some(Secret::new(self.required_str(table, at, "client_secret", "copy the client secret from the provider's app registration (or set token_endpoint_auth_method = \"none\" for a public client)")?)),
        };
        let mut client_kwargs = BTreeMap::new();
        match table.get("client_kwargs") {
            None => {}
            Some(Value::Object(kwargs)) => {
                for (k, v) in kwargs {
                    if RESERVED_KWARGS.contains(&k.as_str()) {
                        return Err(self.err(
                            &key(&format!("client_kwargs.{k}")),
                            "is set by the library for every login",
                            "remove it",
                        ));
                    }
                    let v = match v {
                        Value::String(s) => s.clone(),
                        Value::Number(_) | Value::Bool(_) => v.to_string(),
                        _ => {
                            return Err(self.err(
                                &key(&format!("client_kwargs.{k}")),
                                "is not a string",
                                "quote the value",
                            ));
                        }
                    };
                    client_kwargs.insert(k.clone(), v);
                }
            }
            Some(_) => {
                return Err(self.err(
                    &key("client_kwargs"),
                    "is not a table",
                    "write client_kwargs = { prompt = \"login\" }",
                ));
            }
        }
        if client_kwargs.get("scope").is_some_and(|s| !s.split_whitespace().any(|s| s == "openid")) {
            return Err(self.err(
                &key("client_kwargs.scope"),
                "lacks \"openid\"",
                "include openid, e.g. scope = \"openid email profile\"",
            ));
        }
        let display_name = self.optional_str(table, at, "display_name")?.unwrap_or_else(|| match kind {
            ProviderKind::Google => "Google".into(),
            ProviderKind::Microsoft => "Microsoft".into(),
            _ if name == DEFAULT_PROVIDER => "Sign in".into(),
            _ => name.to_owned(),
        });
        let extra = table
            .iter()
            .filter(|(k, _)| {
                !PROVIDER_KEYS.contains(&k.as_str())
                    && (at != "auth" || !TOP_KEYS.contains(&k.as_str()))
                    && (at != "auth"
                        || !matches!(table.get(*k), Some(Value::Object(_)))
                        || PROVIDER_TABLES.contains(&k.as_str()))
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(ProviderConfig {
            name: name.to_owned(),
            kind,
            display_name,
            client_id,
            client_secret,
            server_metadata_url,
            client_kwargs,
            token_endpoint_auth_method,
            extra,
        })
    }
}

#[cfg(test)]
mod tests;
