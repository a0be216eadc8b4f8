//! Reading the keys of a provider section that `auth-core` leaves to presets
//! (`ProviderConfig::extra`), with errors that name `auth.NAME.KEY` and the fix.
//!
//! Every key is checked when the provider is built, and a key no preset reads is an
//! error rather than a silent no-op: a misspelt `hosted_domain` must not admit everyone.

use crate::error::BuildError;
use auth_core::config::did_you_mean;
use auth_core::{ProviderConfig, ProviderKind};
use serde_json::{Map, Value};
use std::cell::RefCell;
use url::Url;

/// The keys each kind reads, for the message about a key used on the wrong kind.
const KNOWN: &[(&str, Option<ProviderKind>)] = &[
    ("allowed_email_domains", None),
    ("logout_params", None),
    ("end_session_endpoint", None),
    ("allowed_groups", None),
    ("bearer_audience", None),
    ("introspection", None),
    ("hosted_domains", Some(ProviderKind::Google)),
    ("tenant", Some(ProviderKind::Microsoft)),
    ("allowed_tenants", Some(ProviderKind::Microsoft)),
];

/// The preset keys of one provider section.
#[derive(Debug)]
pub(crate) struct Keys<'a> {
    provider: &'a str,
    kind: ProviderKind,
    extra: &'a Map<String, Value>,
    read: RefCell<Vec<&'static str>>,
}

impl<'a> Keys<'a> {
    pub(crate) fn new(config: &'a ProviderConfig) -> Self {
        Self { provider: &config.name, kind: config.kind, extra: &config.extra, read: RefCell::default() }
    }

    /// A [`BuildError`] about `key` of this section.
    pub(crate) fn error(&self, key: &str, problem: impl Into<String>, fix: impl Into<String>) -> BuildError {
        BuildError::invalid(self.provider, key, problem, fix)
    }

    fn get(&self, key: &'static str) -> Option<&'a Value> {
        self.read.borrow_mut().push(key);
        self.extra.get(key)
    }

    /// A string key.
    pub(crate) fn string(&self, key: &'static str, fix: &str) -> Result<Option<String>, BuildError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_owned())),
            Some(_) => Err(self.error(key, "is not a non-empty string", fix)),
        }
    }

    /// A list of strings, also accepted as one comma-separated string (as environment
    /// overrides arrive): lower case, each checked by `valid`.
    pub(crate) fn list(
        &self,
        key: &'static str,
        valid: fn(&str) -> bool,
        fix: &str,
    ) -> Result<Option<Vec<String>>, BuildError> {
        let Some(items) = self.items(key, "so nobody could sign in", fix)? else { return Ok(None) };
        match items.iter().find(|item| !valid(item)) {
            Some(bad) => Err(self.error(key, format!("holds {bad:?}, which is not valid here"), fix)),
            None => Ok(Some(items.iter().map(|i| i.to_ascii_lowercase()).collect())),
        }
    }

    /// Like [`list`](Self::list), for values compared exactly (audiences, group names):
    /// trimmed, case kept, each non-empty. `empty` says what an empty list would mean
    /// ("so nobody could sign in").
    pub(crate) fn strings(&self, key: &'static str, empty: &str, fix: &str) -> Result<Option<Vec<String>>, BuildError> {
        let Some(items) = self.items(key, empty, fix)? else { return Ok(None) };
        if items.iter().any(|item| item.is_empty()) {
            return Err(self.error(key, "holds an empty string", fix));
        }
        Ok(Some(items.into_iter().map(str::to_owned).collect()))
    }

    /// The trimmed entries of a list key, or of one comma-separated string; at least one.
    fn items(&self, key: &'static str, empty: &str, fix: &str) -> Result<Option<Vec<&'a str>>, BuildError> {
        let items: Vec<&str> = match self.get(key) {
            None => return Ok(None),
            Some(Value::String(s)) => s.split(',').map(str::trim).collect(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map(str::trim)
                        .ok_or_else(|| self.error(key, format!("holds {item}, which is not a string"), fix))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(self.error(key, "is not a list of strings", fix)),
        };
        if items.is_empty() {
            return Err(self.error(key, format!("is empty, {empty}"), fix));
        }
        Ok(Some(items))
    }

    /// A table of string values (numbers and booleans are written as text).
    pub(crate) fn table(&self, key: &'static str, fix: &str) -> Result<Vec<(String, String)>, BuildError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Object(table)) => table
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    Value::Number(_) | Value::Bool(_) => Ok((k.clone(), v.to_string())),
                    _ => Err(self.error(&format!("{key}.{k}"), "is not a string", "quote the value")),
                })
                .collect(),
            Some(_) => Err(self.error(key, "is not a table", fix)),
        }
    }

    /// A boolean key, also accepted as the string `"true"` or `"false"` (as environment
    /// overrides arrive); `false` when absent.
    pub(crate) fn flag(&self, key: &'static str, fix: &str) -> Result<bool, BuildError> {
        match self.get(key) {
            None => Ok(false),
            Some(Value::Bool(flag)) => Ok(*flag),
            Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("true") => Ok(true),
            Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("false") => Ok(false),
            Some(_) => Err(self.error(key, "is not true or false", fix)),
        }
    }

    /// An absolute http(s) URL.
    pub(crate) fn url(&self, key: &'static str) -> Result<Option<Url>, BuildError> {
        let fix = "write the full URL, such as \"https://idp.example/logout\"";
        match self.string(key, fix)? {
            None => Ok(None),
            Some(text) => match Url::parse(&text) {
                Ok(url) if matches!(url.scheme(), "https" | "http") => Ok(Some(url)),
                _ => Err(self.error(key, "is not an absolute http(s) URL", fix)),
            },
        }
    }

    /// Refuses every key that was not read: misspelt, or meant for another kind.
    pub(crate) fn finish(self) -> Result<(), BuildError> {
        let read = self.read.into_inner();
        let Some(key) = self.extra.keys().find(|k| !read.contains(&k.as_str())) else { return Ok(()) };
        let for_kind = KNOWN.iter().find(|(known, _)| known == key).and_then(|(_, kind)| *kind);
        Err(match for_kind {
            Some(kind) if kind != self.kind => {
                let name = if kind == ProviderKind::Google { "google" } else { "microsoft" };
                BuildError::invalid(
                    self.provider,
                    key,
                    format!("applies only to kind = \"{name}\" providers"),
                    "remove it, or set the provider's kind (see the README's config table)",
                )
            }
            _ => match did_you_mean(key, &KNOWN.iter().map(|(known, _)| *known).collect::<Vec<_>>()) {
                Some(near) => BuildError::invalid(
                    self.provider,
                    key,
                    format!("is not a key of a provider section (did you mean `{near}`?)"),
                    format!("rename it to {near}"),
                ),
                None => BuildError::invalid(
                    self.provider,
                    key,
                    "is not a key of a provider section",
                    "check its spelling against the README's config table, or remove it",
                ),
            },
        })
    }
}

/// A DNS name such as `example.com`: letters, digits, `-` and at least one inner `.`.
pub(crate) fn is_domain(text: &str) -> bool {
    !text.starts_with(['.', '-'])
        && !text.ends_with(['.', '-'])
        && text.contains('.')
        && !text.contains("..")
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// A GUID, as Entra ID writes tenant ids: `8-4-4-4-12` hexadecimal digits.
pub(crate) fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shapes() {
        assert!(is_domain("example.com") && is_domain("a-b.example.co.uk"));
        for bad in ["example", "@example.com", ".example.com", "example.com.", "a..b", "https://x.com", "a b.c"] {
            assert!(!is_domain(bad), "{bad}");
        }
        assert!(is_guid("72f988bf-86f1-41af-91ab-2d7cd011db47"));
        assert!(is_guid("9188040D-6C67-4C5B-B112-36A304B66DAD"));
        for bad in ["common", "72f988bf86f141af91ab2d7cd011db47", "72f988bf-86f1-41af-91ab-2d7cd011db4g", ""] {
            assert!(!is_guid(bad), "{bad}");
        }
    }

    fn section(kind: ProviderKind, extra: Value) -> ProviderConfig {
        let Value::Object(extra) = extra else { panic!("an object") };
        let mut config =
            ProviderConfig::new("work", kind, "id", "https://idp.example/.well-known/openid-configuration");
        config.extra = extra;
        config
    }

    #[test]
    fn lists_accept_arrays_and_comma_strings() {
        let config =
            section(ProviderKind::Google, json!({"a": ["Example.COM", " b.example "], "b": "x.example, y.example"}));
        let keys = Keys::new(&config);
        assert_eq!(
            keys.list("a", is_domain, "fix").ok().flatten(),
            Some(vec!["example.com".into(), "b.example".into()])
        );
        assert_eq!(keys.list("b", is_domain, "fix").ok().flatten(), Some(vec!["x.example".into(), "y.example".into()]));
        assert_eq!(keys.list("c", is_domain, "fix").ok().flatten(), None);
        assert!(keys.finish().is_ok());

        let config = section(ProviderKind::Google, json!({"a": [], "b": ["example.com", "@bad"], "c": 3}));
        let keys = Keys::new(&config);
        let message = |r: Result<Option<Vec<String>>, BuildError>| r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message(keys.list("a", is_domain, "fix")).starts_with("`auth.work.a` is empty"));
        assert!(message(keys.list("b", is_domain, "fix")).contains("holds \"@bad\""));
        assert!(message(keys.list("c", is_domain, "fix")).contains("is not a list"));
    }

    #[test]
    fn exact_strings_keep_their_case() {
        let config = section(
            ProviderKind::Oidc,
            json!({"one": " api://My-API ", "two": ["api://a", "https://api.example/"], "env": "a, B", "c": 3,
                   "empty": [], "blank": ["api://a", " "], "blank_text": "", "number": ["api://a", 3]}),
        );
        let keys = Keys::new(&config);
        let strings = |key| keys.strings(key, "so nothing passes", "fix").map_err(|e| e.to_string());
        assert_eq!(strings("one"), Ok(Some(vec!["api://My-API".into()])));
        assert_eq!(strings("two"), Ok(Some(vec!["api://a".into(), "https://api.example/".into()])));
        assert_eq!(strings("env"), Ok(Some(vec!["a".into(), "B".into()])), "comma-separated, as from the environment");
        assert_eq!(strings("absent"), Ok(None));
        let message = |key| strings(key).err().unwrap_or_default();
        assert!(message("c").starts_with("`auth.work.c` is not a list of strings. Fix: fix"), "{}", message("c"));
        assert!(message("empty").starts_with("`auth.work.empty` is empty, so nothing passes"), "{}", message("empty"));
        assert!(message("blank").starts_with("`auth.work.blank` holds an empty string"), "{}", message("blank"));
        assert!(message("blank_text").starts_with("`auth.work.blank_text` holds an empty string"));
        assert!(message("number").starts_with("`auth.work.number` holds 3, which is not a string"));
    }

    #[test]
    fn flags_are_booleans() {
        let config = section(ProviderKind::Oidc, json!({"yes": true, "no": false, "env": " TRUE ", "bad": "yes"}));
        let keys = Keys::new(&config);
        let flag = |key| keys.flag(key, "fix").map_err(|e| e.to_string());
        assert_eq!(flag("yes"), Ok(true));
        assert_eq!(flag("no"), Ok(false));
        assert_eq!(flag("env"), Ok(true), "as from the environment");
        assert_eq!(flag("absent"), Ok(false));
        assert!(flag("bad").err().unwrap_or_default().starts_with("`auth.work.bad` is not true or false"));
    }

    #[test]
    fn unread_keys_are_refused_with_a_reason() {
        let finish = |kind, extra| Keys::new(&section(kind, extra)).finish().err().map(|e| e.to_string());
        let message = finish(ProviderKind::Microsoft, json!({"hosted_domains": ["example.com"]})).unwrap_or_default();
        assert!(message.starts_with("`auth.work.hosted_domains` applies only to kind = \"google\""), "{message}");
        let message = finish(ProviderKind::Oidc, json!({"tenant": "common"})).unwrap_or_default();
        assert!(message.contains("kind = \"microsoft\""), "{message}");
        let message = finish(ProviderKind::Google, json!({"hosted_domain": "example.com"})).unwrap_or_default();
        assert!(message.starts_with("`auth.work.hosted_domain` is not a key of a provider section"), "{message}");
        assert!(message.contains("did you mean `hosted_domains`?)"), "{message}");
        let message = finish(ProviderKind::Oidc, json!({"bearer_audiences": "api://x"})).unwrap_or_default();
        assert!(message.contains("did you mean `bearer_audience`?)"), "{message}");
        let message = finish(ProviderKind::Microsoft, json!({"allowed_group": ["admins"]})).unwrap_or_default();
        assert!(message.contains("did you mean `allowed_groups`?)"), "{message}");
        let message = finish(ProviderKind::Google, json!({"frobnicate": 1})).unwrap_or_default();
        assert!(message.ends_with("check its spelling against the README's config table, or remove it"), "{message}");
        assert_eq!(finish(ProviderKind::Google, json!({})), None);
    }
}
