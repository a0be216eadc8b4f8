//! Reading one provider section (`[auth.NAME]`, or the keys directly in `[auth]`): its
//! kind, the metadata URL its preset implies, and the keys left for the preset.

use super::parse::{Reader, Switch};
use super::types::{
    Profile, ProviderConfig, ProviderKind, ResponseMode, Secret, TokenAuthMethod, UsePar, default_display_name,
};
use super::{GOOGLE_METADATA_URL, PROVIDER_KEYS, PROVIDER_TABLES, TOP_KEYS, split_url};
use crate::{ConfigError, DpopAlg, DpopMode};
use serde_json::{Map, Value};

impl Reader<'_> {
    /// The section `name` at dotted key `at`, read from `table` (not yet validated).
    pub(super) fn provider(
        &self,
        name: &str,
        at: &str,
        table: &Map<String, Value>,
    ) -> Result<ProviderConfig, ConfigError> {
        let key = |k: &str| format!("{at}.{k}");
        // A misspelt common key (`client_secert`) is named as such before anything reports
        // the key it should have been as missing. In `[auth]` itself the caller checks.
        if at != "auth" {
            for k in table.keys().filter(|k| !PROVIDER_KEYS.contains(&k.as_str())) {
                self.unknown_key(at, k, true)?;
            }
        }
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
        let client_id =
            self.required_str(table, at, "client_id", "copy the client id from the provider's app registration")?;
        let mut config = ProviderConfig::new(name, kind, client_id, server_metadata_url);
        config.token_endpoint_auth_method = match self.optional_str(table, at, "token_endpoint_auth_method")?.as_deref()
        {
            None | Some("client_secret_basic") => TokenAuthMethod::ClientSecretBasic,
            Some("client_secret_post") => TokenAuthMethod::ClientSecretPost,
            Some("none") => TokenAuthMethod::None,
            Some("private_key_jwt") => TokenAuthMethod::PrivateKeyJwt,
            Some("client_secret_jwt") => TokenAuthMethod::ClientSecretJwt,
            Some(other) => {
                return Err(self.err(
                    &key("token_endpoint_auth_method"),
                    &format!("is {other:?}"),
                    "use \"client_secret_basic\", \"client_secret_post\", \"private_key_jwt\", \"client_secret_jwt\" or \"none\"",
                ));
            }
        };
        config.client_secret = self.optional_str(table, at, "client_secret")?.map(Secret::new);
        self.client_keys(table, at, &mut config)?;
        match table.get("client_kwargs") {
            None => {}
            Some(Value::Object(kwargs)) => {
                for (k, v) in kwargs {
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
                    config.client_kwargs.insert(k.clone(), v);
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
        let fix = "use \"auto\" (push when the provider requires it), true or false";
        config.use_par = match self.switch(table, at, "use_par", "auto", fix)? {
            Switch::Unset | Switch::Word => UsePar::Auto,
            Switch::On => UsePar::Always,
            Switch::Off => UsePar::Never,
        };
        config.revoke_on_logout = self.boolean(table, at, "revoke_on_logout", true)?;
        let fix = "use true (tokens must be DPoP-bound), \"optional\" (an unbound token is accepted) or false";
        config.dpop = match self.switch(table, at, "dpop", "optional", fix)? {
            Switch::Unset | Switch::Off => DpopMode::Off,
            Switch::On => DpopMode::Required,
            Switch::Word => DpopMode::Optional,
        };
        config.dpop_alg = match self.optional_str(table, at, "dpop_alg")?.as_deref() {
            None | Some("ES256") => DpopAlg::Es256,
            Some("EdDSA") => DpopAlg::EdDsa,
            Some(other) => {
                return Err(self.err(&key("dpop_alg"), &format!("is {other:?}"), "use \"ES256\" or \"EdDSA\""));
            }
        };
        config.response_mode = match self.optional_str(table, at, "response_mode")?.as_deref() {
            None | Some("query") => ResponseMode::Query,
            Some("form_post") => ResponseMode::FormPost,
            Some(other) => {
                return Err(self.err(
                    &key("response_mode"),
                    &format!("is {other:?}"),
                    "use \"query\" or \"form_post\"",
                ));
            }
        };
        config.profile = match self.optional_str(table, at, "profile")?.as_deref() {
            None => None,
            Some("fapi2") => Some(Profile::Fapi2),
            Some(other) => {
                return Err(self.err(
                    &key("profile"),
                    &format!("is {other:?}"),
                    "use \"fapi2\" (FAPI 2.0 Security Profile), or remove the key",
                ));
            }
        };
        // FAPI 2.0 pushes every authorization request; an explicit `use_par` is kept for
        // `validate` to judge.
        if config.profile == Some(Profile::Fapi2) && !table.contains_key("use_par") {
            config.use_par = UsePar::Always;
        }
        config.keep_claims = self.claim_names(table, at, "keep_claims")?;
        config.drop_claims = self.claim_names(table, at, "drop_claims")?;
        config.display_name =
            self.optional_str(table, at, "display_name")?.unwrap_or_else(|| default_display_name(name, kind));
        config.extra = table
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
        Ok(config)
    }
}
