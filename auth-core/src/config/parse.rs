//! Reading `[auth]` from TOML (after `AUTH__...` environment overrides) into the config
//! types: the shape of each value (a string, a table, a whole number) and the defaults.
//! What a value may be is [`validate`](super::validate)'s, run on the result.

use super::types::{AuthConfig, CookieOverflow, ExposeTokens, KeepTokens, Secret, SessionStoreConfig};
use super::validate::Check;
use super::{DEFAULT_PROVIDER, PROVIDER_KEYS, PROVIDER_TABLES, SECRET_FIX, TOP_KEYS, did_you_mean};
use crate::{ConfigError, Policy};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// What a [`Reader::switch`] key says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Switch {
    /// The key is absent.
    Unset,
    On,
    Off,
    /// The one string it accepts besides `true` and `false`.
    Word,
}

/// Reads values out of one table, with errors naming `origin`.
pub(super) struct Reader<'a> {
    pub(super) check: Check<'a>,
}

impl Reader<'_> {
    pub(super) fn err(&self, key: &str, problem: &str, fix: &str) -> ConfigError {
        self.check.err(key, problem, fix)
    }

    pub(super) fn optional_str(
        &self,
        table: &Map<String, Value>,
        at: &str,
        key: &str,
    ) -> Result<Option<String>, ConfigError> {
        match table.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.err(&format!("{at}.{key}"), "is not a string", "quote the value")),
        }
    }

    /// A key that must be present (its value is judged by `validate`).
    pub(super) fn required_str(
        &self,
        table: &Map<String, Value>,
        at: &str,
        key: &str,
        fix: &str,
    ) -> Result<String, ConfigError> {
        self.optional_str(table, at, key)?.ok_or_else(|| self.err(&format!("{at}.{key}"), "is missing", fix))
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

    /// `true` or `false` at `at.key` (`default` when absent); environment overrides
    /// (strings) are accepted too.
    pub(super) fn boolean(
        &self,
        table: &Map<String, Value>,
        at: &str,
        key: &str,
        default: bool,
    ) -> Result<bool, ConfigError> {
        match table.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            // Environment overrides arrive as strings.
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
            Some(_) => Err(self.err(&format!("{at}.{key}"), "is not true or false", &format!("write {key} = true"))),
        }
    }

    /// A key at `at.key` that is `true`, `false` or the one string `word` (`use_par =
    /// "auto"`, `dpop = "optional"`); environment overrides arrive as strings. Anything else
    /// is an error whose fix is `fix`.
    pub(super) fn switch(
        &self,
        table: &Map<String, Value>,
        at: &str,
        key: &str,
        word: &str,
        fix: &str,
    ) -> Result<Switch, ConfigError> {
        match table.get(key) {
            None => Ok(Switch::Unset),
            Some(Value::Bool(true)) => Ok(Switch::On),
            Some(Value::Bool(false)) => Ok(Switch::Off),
            Some(Value::String(s)) if s == "true" => Ok(Switch::On),
            Some(Value::String(s)) if s == "false" => Ok(Switch::Off),
            Some(Value::String(s)) if s == word => Ok(Switch::Word),
            Some(other) => Err(self.err(&format!("{at}.{key}"), &format!("is {other}"), fix)),
        }
    }

    /// The names in a string (comma separated) or a list of strings.
    fn names(value: &Value) -> Vec<&str> {
        match value {
            Value::String(s) => s.split(',').map(str::trim).filter(|s| !s.is_empty()).collect(),
            Value::Array(items) => items.iter().map(|i| i.as_str().unwrap_or("?")).collect(),
            _ => vec!["?"],
        }
    }

    /// A list of claim names at `at.key` (`keep_claims`, `drop_claims`): a list of strings,
    /// or one comma-separated string (as environment overrides arrive).
    pub(super) fn claim_names(
        &self,
        table: &Map<String, Value>,
        at: &str,
        key: &str,
    ) -> Result<Option<Vec<String>>, ConfigError> {
        let fix = format!("write a list of claim names, such as {key} = [\"groups\"]");
        match table.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => {
                Ok(Some(s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()))
            }
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str().map(str::to_owned).ok_or_else(|| {
                        self.err(&format!("{at}.{key}"), &format!("holds {item}, which is not a string"), &fix)
                    })
                })
                .collect::<Result<_, _>>()
                .map(Some),
            Some(_) => Err(self.err(&format!("{at}.{key}"), "is not a list of claim names", &fix)),
        }
    }

    fn keep_tokens(&self, value: Option<&Value>) -> Result<KeepTokens, ConfigError> {
        let Some(value) = value else { return Ok(KeepTokens::ALL) };
        let mut keep = KeepTokens::NONE;
        for name in Self::names(value) {
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

    fn expose_tokens(&self, value: Option<&Value>) -> Result<ExposeTokens, ConfigError> {
        let Some(value) = value else { return Ok(ExposeTokens::NONE) };
        let mut expose = ExposeTokens::NONE;
        for name in Self::names(value) {
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

    fn session_store(&self, table: &Map<String, Value>) -> Result<SessionStoreConfig, ConfigError> {
        let Some(url) = self.optional_str(table, "auth", "session_store")? else {
            return Ok(SessionStoreConfig::Cookie);
        };
        Ok(match url.trim() {
            "" | "cookie" => SessionStoreConfig::Cookie,
            "memory" => SessionStoreConfig::Memory,
            url => SessionStoreConfig::Redis(Secret::new(url)),
        })
    }

    fn cookie_overflow(&self, table: &Map<String, Value>) -> Result<CookieOverflow, ConfigError> {
        let fix = "write cookie_overflow = \"warn\" (log a warning, the default) or cookie_overflow = \"store\" \
                   (keep such sessions in the server-side store given to with_overflow_store)";
        let Some(value) = table.get("cookie_overflow") else { return Ok(CookieOverflow::Warn) };
        match value.as_str().map(str::trim) {
            Some("warn") => Ok(CookieOverflow::Warn),
            Some("store") => Ok(CookieOverflow::Store),
            Some(other) => {
                let shown: String = other.chars().take(40).collect();
                Err(self.err("auth.cookie_overflow", &format!("is {shown:?}, not \"warn\" or \"store\""), fix))
            }
            None => Err(self.err("auth.cookie_overflow", "is not a string (\"warn\" or \"store\")", fix)),
        }
    }

    fn secrets(&self, value: Option<&Value>) -> Result<Vec<Secret>, ConfigError> {
        let key = "auth.previous_cookie_secrets";
        match value {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|s| {
                    s.as_str().map(Secret::new).ok_or_else(|| {
                        self.err(key, "holds an entry that is not a string", "list only earlier cookie_secret values")
                    })
                })
                .collect(),
            Some(_) => Err(self.err(key, "is not a list", "write previous_cookie_secrets = [\"old secret\"]")),
        }
    }

    /// Refuses `key` of the table at `at` when it is a misspelling of a key this crate
    /// reads (with "did you mean"), or when nothing else could read it (`extra_allowed`
    /// false: no provider preset will judge it).
    pub(super) fn unknown_key(&self, at: &str, key: &str, extra_allowed: bool) -> Result<(), ConfigError> {
        let known: Vec<&str> =
            if at == "auth" { TOP_KEYS.iter().chain(PROVIDER_KEYS).copied().collect() } else { PROVIDER_KEYS.to_vec() };
        let fix = "check its spelling against the README's config table, or remove it";
        match did_you_mean(key, &known) {
            Some(near) => Err(self.err(
                &format!("{at}.{key}"),
                &format!("is not a known key (did you mean `{near}`?)"),
                &format!("rename it to {near}"),
            )),
            None if !extra_allowed => Err(self.err(&format!("{at}.{key}"), "is not a known key", fix)),
            None => Ok(()),
        }
    }

    /// `[auth.policies]`: named [`Policy`]s, each written as serde reads it.
    fn policies(&self, value: Option<&Value>) -> Result<BTreeMap<String, Policy>, ConfigError> {
        const FIX: &str = "write a policy such as admin = { claim_contains = { claim = \"groups\", value = \"admins\" } } (see the README's \"Who may do what\")";
        match value {
            None => Ok(BTreeMap::new()),
            Some(Value::Object(table)) => table
                .iter()
                .map(|(name, policy)| {
                    serde_json::from_value::<Policy>(policy.clone())
                        .map(|policy| (name.clone(), policy))
                        .map_err(|e| self.err(&format!("auth.policies.{name}"), &format!("is not a policy ({e})"), FIX))
                })
                .collect(),
            Some(_) => Err(self.err("auth.policies", "is not a table", FIX)),
        }
    }

    /// The whole config from the parsed document `root`, validated.
    pub(super) fn auth(&self, root: &Value) -> Result<AuthConfig, ConfigError> {
        let Some(Value::Object(auth)) = root.get("auth") else {
            return Err(self.err(
                "auth",
                "is missing",
                "add an [auth] section with redirect_uri, cookie_secret and a provider",
            ));
        };
        let redirect_uri = self.required_str(
            auth,
            "auth",
            "redirect_uri",
            "set it to your app's callback URL, e.g. \"http://localhost:3000/oauth2callback\"",
        )?;
        let cookie_secret = self.required_str(auth, "auth", "cookie_secret", SECRET_FIX)?;
        let mut config = AuthConfig::new(redirect_uri, Secret::new(cookie_secret));
        config.origin = self.check.origin.to_owned();
        config.previous_cookie_secrets = self.secrets(auth.get("previous_cookie_secrets"))?;
        config.expose_tokens = self.expose_tokens(auth.get("expose_tokens"))?;
        config.keep_tokens = self.keep_tokens(auth.get("keep_tokens"))?;
        if let Some(uri) = self.optional_str(auth, "auth", "post_logout_redirect_uri")? {
            config.post_logout_redirect_uri = uri;
        }
        if let Some(name) = self.optional_str(auth, "auth", "cookie_name")? {
            config.cookie_name = name;
        }
        if let Some(path) = self.optional_str(auth, "auth", "cookie_path")? {
            config.cookie_path = path;
        }
        config.cookie_domain = self
            .optional_str(auth, "auth", "cookie_domain")?
            .map(|domain| domain.trim().trim_start_matches('.').to_ascii_lowercase());
        if auth.contains_key("idle_timeout_secs") {
            config.idle_timeout_secs = Some(self.secs(auth, "idle_timeout_secs", 0)?);
        }
        config.session_store = self.session_store(auth)?;
        config.policies = self.policies(auth.get("policies"))?;
        config.session_lifetime_secs = self.secs(auth, "session_lifetime_secs", config.session_lifetime_secs)?;
        config.leeway_secs = self.secs(auth, "leeway_secs", config.leeway_secs)?;
        config.http_timeout_secs = self.secs(auth, "http_timeout_secs", config.http_timeout_secs)?;
        config.metadata_ttl_secs = self.secs(auth, "metadata_ttl_secs", config.metadata_ttl_secs)?;
        config.end_with_id_token = self.boolean(auth, "auth", "end_with_id_token", false)?;
        config.publish_client_jwks = self.boolean(auth, "auth", "publish_client_jwks", false)?;
        config.refresh_margin_secs = self.secs(auth, "refresh_margin_secs", config.refresh_margin_secs)?;
        config.cookie_budget_bytes = self.whole(auth, "cookie_budget_bytes", config.cookie_budget_bytes, "bytes")?;
        config.cookie_overflow = self.cookie_overflow(auth)?;
        config.session_cache_entries =
            self.whole(auth, "session_cache_entries", config.session_cache_entries, "entries")?;

        let has_default = PROVIDER_KEYS.iter().any(|k| auth.contains_key(*k));
        let is_section = |key: &str, value: &Value| {
            value.is_object() && !PROVIDER_TABLES.contains(&key) && !matches!(key, "extra" | "policies")
        };
        for (key, value) in auth {
            if !is_section(key, value) && !TOP_KEYS.contains(&key.as_str()) && !PROVIDER_KEYS.contains(&key.as_str()) {
                // The default provider's `extra`, unless it is a near miss of a known key:
                // its preset judges the key.
                self.unknown_key("auth", key, has_default)?;
            }
        }
        let mut providers = BTreeMap::new();
        if has_default {
            providers.insert(DEFAULT_PROVIDER.to_owned(), self.provider(DEFAULT_PROVIDER, "auth", auth)?);
        }
        for (key, value) in auth.iter().filter(|(key, value)| is_section(key, value)) {
            if let Value::Object(section) = value {
                providers.insert(key.clone(), self.provider(key, &format!("auth.{key}"), section)?);
            }
        }
        // No provider is fine here: an app may bring its own (`AuthLayer::builder(..)
        // .with_provider(..)`); building providers from this config refuses it.
        config.providers = providers;
        config.validate()?;
        Ok(config)
    }
}
