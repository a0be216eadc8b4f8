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
    /// The providers, by name.
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
    /// The session cookie's name (`cookie_name`, default `auth_session`).
    pub cookie_name: String,
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

        let mut providers = BTreeMap::new();
        let has_default = PROVIDER_KEYS.iter().any(|k| auth.contains_key(*k));
        if has_default {
            providers.insert(DEFAULT_PROVIDER.to_owned(), v.provider(DEFAULT_PROVIDER, "auth", &auth)?);
        }
        for (key, value) in &auth {
            match value {
                Value::Object(section) if key != "client_kwargs" && key != "extra" => {
                    providers.insert(key.clone(), v.provider(key, &format!("auth.{key}"), section)?);
                }
                _ if TOP_KEYS.contains(&key.as_str()) || PROVIDER_KEYS.contains(&key.as_str()) => {}
                _ => tracing::warn!(origin, key = %format!("auth.{key}"), "unknown auth config key ignored"),
            }
        }
        if providers.is_empty() {
            return Err(v.err(
                "auth",
                "configures no provider",
                "add client_id, client_secret and server_metadata_url to [auth], or a section such as [auth.google]",
            ));
        }
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
        match table.get(key) {
            None => Ok(default),
            Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64().unwrap_or(default)),
            // Environment overrides arrive as strings.
            Some(Value::String(s)) if s.parse::<u64>().is_ok() => Ok(s.parse().unwrap_or(default)),
            Some(_) => Err(self.err(
                &format!("auth.{key}"),
                "is not a whole number of seconds",
                &format!("write {key} = {default}"),
            )),
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
                    && !matches!(table.get(*k), Some(Value::Object(_)) if at == "auth")
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
