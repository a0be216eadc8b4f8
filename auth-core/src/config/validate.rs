//! The one copy of every value check: [`AuthConfig::validate`] and
//! [`ProviderConfig::validate`]. Reading a file runs them; so does the layer's builder,
//! so a config built or edited in code meets the same rules as one read from a file.

use super::types::{
    AuthConfig, CookieOverflow, Profile, ProviderConfig, REDIS_SCHEMES, SessionStoreConfig, TokenAuthMethod, UsePar,
};
use super::{LAYER_CLAIMS, RESERVED_KWARGS, RULE_CLAIMS, SECRET_FIX, split_url};
use crate::{ConfigError, DpopMode, Policy};
use std::ops::RangeInclusive;

// Bounds of the numeric keys. Values past them are mistakes (a unit slip, an extra digit,
// `u64::MAX` from a script), and some would overflow time arithmetic later; each is
// refused at startup with the key and the range instead.

/// `leeway_secs`: a clock more than an hour off is broken, not skewed, and a larger leeway
/// accepts ID tokens that long after they expired.
const LEEWAY_SECS: RangeInclusive<u64> = 0..=3600;
/// `http_timeout_secs`: at least a second (0 would fail every call); five minutes is far
/// past any useful wait for a login, and a stuck provider would hold requests that long.
const HTTP_TIMEOUT_SECS: RangeInclusive<u64> = 1..=300;
/// `session_lifetime_secs` and `idle_timeout_secs`: ten years is beyond any session; more
/// only risks overflowing expiry times.
const SESSION_SECS: RangeInclusive<u64> = 1..=10 * 365 * 24 * 3600;
/// `refresh_margin_secs`: access tokens live minutes to hours; a margin over a day would
/// refresh on every request.
const REFRESH_MARGIN_SECS: RangeInclusive<u64> = 0..=24 * 3600;
/// `cookie_budget_bytes`: browsers keep about 4 KB per cookie and servers accept 8 to
/// 64 KB of headers, so a budget past 1 MiB can never warn; 0 (never warn) is allowed.
const COOKIE_BUDGET_BYTES: RangeInclusive<u64> = 0..=1024 * 1024;
/// `session_cache_entries`: 0 turns the cache off; ten million entries are over 10 GB.
const SESSION_CACHE_ENTRIES: RangeInclusive<u64> = 0..=10_000_000;
/// `metadata_ttl_secs`: at least a minute, so each instance asks the provider at most
/// that often; at most 30 days, so withdrawn keys stop being trusted within a month.
/// (`ProviderSettings` in code may set seconds, for tests.)
const METADATA_TTL_SECS: RangeInclusive<u64> = 60..=30 * 24 * 3600;

/// Builds [`ConfigError::Invalid`]s naming one origin.
pub(super) struct Check<'a> {
    pub(super) origin: &'a str,
}

impl Check<'_> {
    pub(super) fn err(&self, key: &str, problem: &str, fix: &str) -> ConfigError {
        ConfigError::Invalid { origin: self.origin.into(), key: key.into(), problem: problem.into(), fix: fix.into() }
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

    /// `value` of `key` within `range` (of `unit`), else an error naming both.
    fn within(&self, key: &str, value: u64, range: RangeInclusive<u64>, unit: &str) -> Result<(), ConfigError> {
        if range.contains(&value) {
            return Ok(());
        }
        let (min, max) = (range.start(), range.end());
        Err(self.err(
            key,
            &format!("is {value}, outside the allowed {min}..={max} {unit}"),
            &format!("write a value from {min} to {max}, or remove it for the default"),
        ))
    }
}

impl AuthConfig {
    /// Checks every value, and every provider section, as reading a file does.
    ///
    /// # Errors
    /// The first [`ConfigError::Invalid`], naming [`origin`](Self::origin), the key and the fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let v = Check { origin: &self.origin };
        let redirect = v.http_url("auth.redirect_uri", &self.redirect_uri)?;
        let secret = self.cookie_secret.expose().len();
        if secret < 32 {
            return Err(v.err(
                "auth.cookie_secret",
                &format!("is {secret} bytes, shorter than the 32 required"),
                SECRET_FIX,
            ));
        }
        if self.previous_cookie_secrets.iter().any(|s| s.expose().len() < 32) {
            return Err(v.err(
                "auth.previous_cookie_secrets",
                "holds an entry that is not a string of at least 32 bytes",
                "list only earlier cookie_secret values",
            ));
        }
        v.http_url("auth.post_logout_redirect_uri", &self.post_logout_redirect_uri)?;
        let name = &self.cookie_name;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b)) {
            return Err(v.err(
                "auth.cookie_name",
                "is not a plain cookie name",
                "use letters, digits, '_' and '-' only",
            ));
        }
        let path = &self.cookie_path;
        if !path.starts_with('/') || !path.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b',')) {
            return Err(v.err(
                "auth.cookie_path",
                "is not a plain absolute path",
                "write a path such as \"/\" or \"/app\" (no spaces, ';' or ',')",
            ));
        }
        if let Some(domain) = &self.cookie_domain {
            check_cookie_domain(&v, domain, redirect.1)?;
        }
        let secure = redirect.0 == "https";
        for (prefix, needs_host) in [("__Host-", true), ("__Secure-", false)] {
            let host_ok = self.cookie_path == "/" && self.cookie_domain.is_none();
            if name.starts_with(prefix) && (!secure || (needs_host && !host_ok)) {
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
        v.within("auth.session_lifetime_secs", self.session_lifetime_secs, SESSION_SECS, "seconds")?;
        if let Some(idle) = self.idle_timeout_secs {
            if idle == 0 {
                return Err(v.err(
                    "auth.idle_timeout_secs",
                    "is 0",
                    "remove it to have no idle timeout, or give the seconds of inactivity that end a session, e.g. 1800",
                ));
            }
            v.within("auth.idle_timeout_secs", idle, SESSION_SECS, "seconds")?;
        }
        v.within("auth.leeway_secs", self.leeway_secs, LEEWAY_SECS, "seconds")?;
        v.within("auth.http_timeout_secs", self.http_timeout_secs, HTTP_TIMEOUT_SECS, "seconds")?;
        v.within("auth.refresh_margin_secs", self.refresh_margin_secs, REFRESH_MARGIN_SECS, "seconds")?;
        v.within("auth.cookie_budget_bytes", self.cookie_budget_bytes, COOKIE_BUDGET_BYTES, "bytes")?;
        if self.cookie_overflow == CookieOverflow::Store && self.cookie_budget_bytes == 0 {
            return Err(v.err(
                "auth.cookie_overflow",
                "is \"store\" while auth.cookie_budget_bytes is 0 (no budget), so no session would ever overflow",
                "give cookie_budget_bytes a size, such as 4096 (the default), or remove cookie_overflow",
            ));
        }
        v.within("auth.session_cache_entries", self.session_cache_entries, SESSION_CACHE_ENTRIES, "entries")?;
        // Providers built in code (an empty `providers`) may publish keys of their own.
        if self.publish_client_jwks
            && !self.providers.is_empty()
            && !self.providers.values().any(|p| p.token_endpoint_auth_method == TokenAuthMethod::PrivateKeyJwt)
        {
            return Err(v.err(
                "auth.publish_client_jwks",
                "is true, but no provider uses token_endpoint_auth_method = \"private_key_jwt\", so /auth/jwks would be empty",
                "remove publish_client_jwks, or set up private_key_jwt (client_private_key_file) for a provider",
            ));
        }
        v.within("auth.metadata_ttl_secs", self.metadata_ttl_secs, METADATA_TTL_SECS, "seconds")?;
        let (expose, keep) = (self.expose_tokens, self.keep_tokens);
        for (exposed, kept, token) in [(expose.id, keep.id, "id"), (expose.access, keep.access, "access")] {
            if exposed && !kept {
                return Err(v.err(
                    "auth.keep_tokens",
                    &format!("lacks {token:?}, which expose_tokens reveals"),
                    &format!("add \"{token}\" to keep_tokens, or remove it from expose_tokens"),
                ));
            }
        }
        if let SessionStoreConfig::Redis(url) = &self.session_store {
            check_redis_url(&v, url.expose())?;
        }
        for (key, provider) in &self.providers {
            if *key != provider.name {
                return Err(v.err(
                    &provider.key("name"),
                    &format!("is {:?} but the section is {key:?}", provider.name),
                    "add providers with AuthConfig::with_provider, which files them under their name",
                ));
            }
            provider.validate(&self.origin)?;
            for (name, policy) in &self.policies {
                let mut read = Vec::new();
                policy_claims(policy, &mut read);
                if let Some(claim) = read.into_iter().find(|claim| !provider.keeps_claim(claim)) {
                    let reader = format!("auth.policies.{name}");
                    let consequence = "a guard using it would refuse every user of this provider, or let everyone \
                                       through under `not`";
                    return Err(not_kept(&v, provider, claim, (&reader, "change the policy"), consequence));
                }
            }
        }
        Ok(())
    }
}

impl ProviderConfig {
    /// Checks the keys every provider kind shares: a client id, a client secret unless the
    /// client is public or uses `private_key_jwt` (which needs `client_private_key_file`,
    /// and the client-key keys only with it), an http(s) `server_metadata_url`, a scope with `openid` and no
    /// `client_kwargs` the login sets itself, and `keep_claims` or `drop_claims` (not both)
    /// keeping what the section's admission rules read. Preset keys (`extra`) are the
    /// provider code's to judge. `origin` names the file (or `"auth config"`) in the error.
    ///
    /// # Errors
    /// The first [`ConfigError::Invalid`], naming the key and the fix.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let v = Check { origin };
        if self.name.trim().is_empty() {
            return Err(v.err("auth", "has a provider without a name", "give every provider section a name"));
        }
        if self.client_id.trim().is_empty() {
            return Err(v.err(
                &self.key("client_id"),
                "is empty",
                "copy the client id from the provider's app registration",
            ));
        }
        self.validate_profile(&v)?;
        let has_secret = self.client_secret.as_ref().is_some_and(|s| !s.expose().is_empty());
        if !matches!(self.token_endpoint_auth_method, TokenAuthMethod::None | TokenAuthMethod::PrivateKeyJwt)
            && !has_secret
        {
            return Err(v.err(
                &self.key("client_secret"),
                "is missing or empty",
                "copy the client secret from the provider's app registration (or set token_endpoint_auth_method = \"none\" for a public client)",
            ));
        }
        self.validate_client_keys(&v)?;
        v.http_url(&self.key("server_metadata_url"), &self.server_metadata_url)?;
        if let Some(reserved) = self.client_kwargs.keys().find(|k| RESERVED_KWARGS.contains(&k.as_str())) {
            return Err(v.err(
                &self.key(&format!("client_kwargs.{reserved}")),
                "is set by the library for every login",
                "remove it",
            ));
        }
        if self.client_kwargs.contains_key("response_mode") {
            return Err(v.err(
                &self.key("client_kwargs.response_mode"),
                "is set, but the callback must know how the response comes back",
                &format!("remove it and set {} = \"form_post\" (or \"query\") instead", self.key("response_mode")),
            ));
        }
        if !self.scope().split_whitespace().any(|s| s == "openid") {
            return Err(v.err(
                &self.key("client_kwargs.scope"),
                "lacks \"openid\"",
                "include openid, e.g. scope = \"openid email profile\"",
            ));
        }
        self.validate_claim_lists(&v)
    }

    /// `profile = "fapi2"`: `private_key_jwt`, no `client_secret`, `use_par` not false,
    /// `dpop = true`. (PKCE is always S256 and `client_kwargs` cannot change it; `iss` on the
    /// callback and the ID token algorithms are enforced by the provider at login.)
    fn validate_profile(&self, v: &Check<'_>) -> Result<(), ConfigError> {
        let Some(profile @ Profile::Fapi2) = self.profile else {
            return Ok(());
        };
        let requires = |key: &str, what: &str| {
            v.err(
                &self.key(key),
                &format!("is {what}, but profile = \"{}\" (FAPI 2.0) forbids it", profile.as_str()),
                &self.fapi2_fix(key),
            )
        };
        if self.token_endpoint_auth_method != TokenAuthMethod::PrivateKeyJwt {
            let method = match self.token_endpoint_auth_method {
                TokenAuthMethod::ClientSecretBasic => "\"client_secret_basic\"",
                TokenAuthMethod::ClientSecretPost => "\"client_secret_post\"",
                TokenAuthMethod::ClientSecretJwt => "\"client_secret_jwt\"",
                TokenAuthMethod::None => "\"none\"",
                _ => "not \"private_key_jwt\"",
            };
            return Err(requires("token_endpoint_auth_method", method));
        }
        if self.client_secret.is_some() {
            return Err(requires("client_secret", "set (a shared secret)"));
        }
        if self.use_par == UsePar::Never {
            return Err(requires("use_par", "false"));
        }
        match self.dpop {
            DpopMode::Required => Ok(()),
            DpopMode::Off => Err(requires("dpop", "false")),
            DpopMode::Optional => Err(requires("dpop", "\"optional\"")),
        }
    }

    /// The fix for `key`, which contradicts `profile = "fapi2"`.
    fn fapi2_fix(&self, key: &str) -> String {
        match key {
            "token_endpoint_auth_method" => {
                "fapi2 requires token_endpoint_auth_method = \"private_key_jwt\" with client_private_key_file".into()
            }
            "client_secret" => "remove client_secret: fapi2 authenticates the client with private_key_jwt".into(),
            "use_par" => "remove use_par (fapi2 requires pushed authorization requests) or set it to true".into(),
            _ => "set dpop = true: fapi2 requires DPoP-bound tokens".into(),
        }
    }

    /// `keep_claims` and `drop_claims`: not both; names without surrounding spaces; no
    /// claim the layer always keeps dropped; and every claim the section's admission rules
    /// read kept. (Claims named policies read are checked by [`AuthConfig::validate`].)
    fn validate_claim_lists(&self, v: &Check<'_>) -> Result<(), ConfigError> {
        if self.keep_claims.is_some() && self.drop_claims.is_some() {
            return Err(v.err(
                &self.key("drop_claims"),
                "is set along with keep_claims: a provider either keeps the claims it lists or drops them",
                "remove drop_claims (keep_claims already leaves out every claim it does not list), or remove keep_claims",
            ));
        }
        for (key, names) in [("keep_claims", &self.keep_claims), ("drop_claims", &self.drop_claims)] {
            if let Some(bad) = names.iter().flatten().find(|n| n.is_empty() || n.trim() != n.as_str()) {
                return Err(v.err(
                    &self.key(key),
                    &format!("holds {bad:?}, which is not a claim name"),
                    "write each claim name exactly as the provider sends it, such as \"groups\"",
                ));
            }
        }
        if let Some((claim, why)) =
            self.drop_claims.iter().flatten().find_map(|name| LAYER_CLAIMS.iter().find(|(claim, _)| claim == name))
        {
            return Err(v.err(
                &self.key("drop_claims"),
                &format!("lists {claim:?}, which every session keeps: {why}"),
                &format!("remove \"{claim}\" from drop_claims"),
            ));
        }
        for (rule, claims) in RULE_CLAIMS.iter().filter(|(rule, _)| self.extra.contains_key(*rule)) {
            if let Some(claim) = claims.iter().find(|claim| !self.keeps_claim(claim)) {
                let consequence = "once the rules change, sessions without it are refused, and so are refreshes \
                                   whose ID token lacks it";
                return Err(not_kept(v, self, claim, (&self.key(rule), &format!("remove {rule}")), consequence));
            }
        }
        Ok(())
    }
}

/// The error for the claim `claim`, which `provider`'s sessions do not keep although the
/// config key `reader.0` reads it from them: it names `keep_claims` or `drop_claims`, the
/// reader, and both fixes (`reader.1` is the one on the reader's side); `consequence` says
/// what would go wrong.
fn not_kept(
    v: &Check<'_>,
    provider: &ProviderConfig,
    claim: &str,
    (reader, reader_fix): (&str, &str),
    consequence: &str,
) -> ConfigError {
    let reads = format!("which `{reader}` reads from sessions ({consequence})");
    if provider.keep_claims.is_some() {
        v.err(
            &provider.key("keep_claims"),
            &format!("lacks {claim:?}, {reads}"),
            &format!("add \"{claim}\" to keep_claims, or {reader_fix}"),
        )
    } else {
        v.err(
            &provider.key("drop_claims"),
            &format!("lists {claim:?}, {reads}"),
            &format!("remove \"{claim}\" from drop_claims, or {reader_fix}"),
        )
    }
}

/// Adds to `read` the claims `policy` reads from a user's session (under `not` too: a
/// missing claim would turn its refusal into a pass).
fn policy_claims<'p>(policy: &'p Policy, read: &mut Vec<&'p str>) {
    match policy {
        Policy::LoggedIn | Policy::Provider(_) | Policy::Custom(_) => {}
        Policy::ClaimEquals { claim, .. } | Policy::ClaimContains { claim, .. } => read.push(claim),
        Policy::EmailDomain(_) => read.extend(["email", "email_verified"]),
        Policy::Tenant(_) => read.push("tid"),
        Policy::MaxAge(_) => read.push("auth_time"),
        Policy::Acr(_) => read.push("acr"),
        Policy::All(policies) | Policy::Any(policies) => policies.iter().for_each(|p| policy_claims(p, read)),
        Policy::Not(policy) => policy_claims(policy, read),
    }
}

/// A `cookie_domain`: lower case, without a leading dot, and one the browser accepts
/// from `redirect_uri`'s host (the host itself or a parent domain of it).
fn check_cookie_domain(v: &Check<'_>, domain: &str, authority: &str) -> Result<(), ConfigError> {
    let key = "auth.cookie_domain";
    if domain.is_empty()
        || domain.starts_with('.')
        || !domain.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return Err(v.err(
            key,
            "is not a domain name in lower case without a leading dot",
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
        return Err(v.err(
            key,
            &format!("is {domain:?}, which does not contain redirect_uri's host {host:?}, so browsers would refuse the cookies"),
            "use redirect_uri's host or one of its parent domains, or remove cookie_domain",
        ));
    }
    Ok(())
}

/// A Redis `session_store` URL: one of [`REDIS_SCHEMES`] and something after it. Never
/// echoes the URL, which may hold a password.
pub(super) fn check_redis_url(v: &Check<'_>, url: &str) -> Result<(), ConfigError> {
    const FIX: &str = "use \"cookie\" (the default), \"memory\", or a Redis URL such as \"redis://127.0.0.1:6379\"";
    match url.split_once("://") {
        Some((scheme, rest)) if REDIS_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) && !rest.is_empty() => {
            Ok(())
        }
        Some((scheme, _)) => Err(v.err(
            "auth.session_store",
            &format!("has the scheme {:?}, which is not a session store", scheme.chars().take(20).collect::<String>()),
            FIX,
        )),
        None => Err(v.err("auth.session_store", "is neither \"cookie\", \"memory\" nor a URL", FIX)),
    }
}
