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

mod client_keys;
mod parse;
mod provider;
mod types;
mod validate;

pub use types::{
    AuthConfig, ClientAssertionAudience, CookieOverflow, ExposeTokens, KeepTokens, Profile, ProviderConfig,
    ProviderKind, REDIS_SCHEMES, ResponseMode, Secret, SessionStoreConfig, TokenAuthMethod, UsePar,
};

use crate::ConfigError;
use parse::Reader;
use serde_json::Value;
use std::path::Path;
use validate::Check;

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
/// The default of `leeway_secs`.
pub const DEFAULT_LEEWAY_SECS: u64 = 60;
/// The default of `http_timeout_secs`.
pub const DEFAULT_HTTP_TIMEOUT_SECS: u64 = 10;
/// The default of `metadata_ttl_secs`: a provider's discovery document and key set are
/// fetched again after a day, so keys it has withdrawn stop being trusted.
pub const DEFAULT_METADATA_TTL_SECS: u64 = 24 * 3600;
/// The default of `session_cache_entries`: the sessions each process keeps opened in
/// memory, about 2 KB each for a typical login (~20 MB when full). Cookie values change
/// on refreshes and renewals, so a long-running process fills it whatever its traffic;
/// a miss costs about a microsecond.
pub const DEFAULT_SESSION_CACHE_ENTRIES: u64 = 10_000;
/// The default of `cookie_name`.
pub const DEFAULT_COOKIE_NAME: &str = "auth_session";
const GOOGLE_METADATA_URL: &str = "https://accounts.google.com/.well-known/openid-configuration";
const SECRET_FIX: &str = "generate one with `openssl rand -base64 32` (or `python3 -c \"import secrets; print(secrets.token_urlsafe(32))\"`) and set it as `cookie_secret` in [auth]";

/// The known name closest to `key`, when `key` looks like a misspelling of it (at most
/// two edits, and fewer than a third of its letters): for "did you mean" in messages.
///
/// ```
/// use auth_core::config::did_you_mean;
/// assert_eq!(did_you_mean("client_secert", &["client_id", "client_secret"]), Some("client_secret"));
/// assert_eq!(did_you_mean("hosted_domains", &["client_id", "client_secret"]), None);
/// ```
pub fn did_you_mean<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    let limit = (key.chars().count() / 3).clamp(1, 2);
    known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Optimal-string-alignment distance: insertions, deletions, substitutions and swaps of
/// two neighbours each cost one.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1).min(rows[i][j - 1] + 1).min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
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
        Self::from_value(&value, &path.display().to_string())
    }

    /// Reads `[auth]` from TOML text (no environment overrides); `origin` names it in errors.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key and the fix.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let read_err = |e: config::ConfigError| ConfigError::Read { path: origin.into(), message: e.to_string() };
        let loaded = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .map_err(read_err)?;
        let value: Value = loaded.try_deserialize().map_err(read_err)?;
        Self::from_value(&value, origin)
    }

    fn from_value(root: &Value, origin: &str) -> Result<Self, ConfigError> {
        Reader { check: Check { origin } }.auth(root)
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
    "metadata_ttl_secs",
    "post_logout_redirect_uri",
    "cookie_name",
    "cookie_path",
    "cookie_domain",
    "idle_timeout_secs",
    "end_with_id_token",
    "refresh_margin_secs",
    "cookie_budget_bytes",
    "cookie_overflow",
    "session_cache_entries",
    "keep_tokens",
    "session_store",
    "policies",
    "publish_client_jwks",
];
const PROVIDER_KEYS: &[&str] = &[
    "client_id",
    "client_secret",
    "server_metadata_url",
    "client_kwargs",
    "kind",
    "display_name",
    "token_endpoint_auth_method",
    "client_private_key_file",
    "client_key_id",
    "client_certificate_file",
    "client_assertion_audience",
    "token_endpoint_auth_signing_alg",
    "keep_claims",
    "drop_claims",
    "use_par",
    "revoke_on_logout",
    "dpop",
    "dpop_alg",
    "response_mode",
    "profile",
];
/// The claims every session keeps whatever `keep_claims` and `drop_claims` say, because the
/// layer reads them from stored sessions, with what reads each (for messages).
const LAYER_CLAIMS: &[(&str, &str)] = &[
    ("iss", "a refresh checks that the new ID token names the same issuer"),
    ("sub", "back-channel logout and session listing find a person's sessions by it"),
    ("sid", "back-channel logout ends the provider session it names"),
    ("exp", "end_with_id_token ends the session when the ID token expires"),
    ("auth_time", "max_age policies (step-up) check it"),
    ("acr", "acr policies (step-up) check it"),
    ("tid", "tenant policies and allowed_tenants check it"),
    ("login_hint", "Microsoft's logout sends it as logout_hint"),
    ("groups_overage", "the layer sets it when the provider could not list the groups, so guards can say why"),
];
/// The preset keys (read by `auth-providers`) whose admission rules read claims: at login,
/// at each refresh, and from the stored session when the rules change. (`allowed_tenants`
/// reads `tid`, which [`LAYER_CLAIMS`] keeps anyway.)
const RULE_CLAIMS: &[(&str, &[&str])] = &[
    ("allowed_groups", &["groups"]),
    ("allowed_email_domains", &["email", "email_verified"]),
    ("hosted_domains", &["hd"]),
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

#[cfg(test)]
mod tests;
