//! The keys of client authentication without a shared secret (`private_key_jwt`):
//! `client_private_key_file`, `client_key_id`, `client_certificate_file`,
//! `client_assertion_audience` and `token_endpoint_auth_signing_alg`, read and checked here. The files themselves are read by
//! `auth-providers` when the provider is built, so an unreadable key is a startup error.

use super::parse::Reader;
use super::types::{ClientAssertionAudience, ProviderConfig, TokenAuthMethod};
use super::validate::Check;
use crate::ConfigError;
use serde_json::{Map, Value};
use std::path::PathBuf;

impl Reader<'_> {
    /// Reads the section's client-key keys into `config`.
    pub(super) fn client_keys(
        &self,
        table: &Map<String, Value>,
        at: &str,
        config: &mut ProviderConfig,
    ) -> Result<(), ConfigError> {
        config.client_private_key_files = self
            .strings(
                table,
                at,
                "client_private_key_file",
                "write client_private_key_file = \"/etc/app/client-key.pem\"",
            )?
            .into_iter()
            .map(PathBuf::from)
            .collect();
        config.client_key_ids =
            self.strings(table, at, "client_key_id", "write client_key_id = \"the kid registered at the provider\"")?;
        config.client_certificate_file = self.optional_str(table, at, "client_certificate_file")?.map(PathBuf::from);
        config.token_endpoint_auth_signing_alg = self.optional_str(table, at, "token_endpoint_auth_signing_alg")?;
        match self.optional_str(table, at, "client_assertion_audience")?.as_deref() {
            None => {}
            Some("issuer") => config.client_assertion_audience = ClientAssertionAudience::Issuer,
            Some("token_endpoint") => config.client_assertion_audience = ClientAssertionAudience::TokenEndpoint,
            Some(other) => {
                return Err(self.err(
                    &format!("{at}.client_assertion_audience"),
                    &format!("is {other:?}"),
                    "use \"issuer\" or \"token_endpoint\"",
                ));
            }
        }
        Ok(())
    }

    /// One string or a list of strings at `at.key` (empty when absent).
    fn strings(&self, table: &Map<String, Value>, at: &str, key: &str, fix: &str) -> Result<Vec<String>, ConfigError> {
        match table.get(key) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str().map(str::to_owned).ok_or_else(|| {
                        self.err(&format!("{at}.{key}"), &format!("holds {item}, which is not a string"), fix)
                    })
                })
                .collect(),
            Some(_) => Err(self.err(&format!("{at}.{key}"), "is not a string or a list of strings", fix)),
        }
    }
}

impl ProviderConfig {
    /// `private_key_jwt` has a key file; the key files, kids and certificate are set only
    /// with it; one kid at most per key; no empty path or kid.
    pub(super) fn validate_client_keys(&self, v: &Check<'_>) -> Result<(), ConfigError> {
        let private_key_jwt = self.token_endpoint_auth_method == TokenAuthMethod::PrivateKeyJwt;
        if private_key_jwt && self.client_private_key_files.is_empty() {
            return Err(v.err(
                &self.key("client_private_key_file"),
                "is missing (token_endpoint_auth_method = \"private_key_jwt\" signs with it)",
                "set it to the PEM file of the client's private key (RSA or EC P-256), whose public key is registered at the provider",
            ));
        }
        if !private_key_jwt {
            for (key, set) in [
                ("client_private_key_file", !self.client_private_key_files.is_empty()),
                ("client_key_id", !self.client_key_ids.is_empty()),
                ("client_certificate_file", self.client_certificate_file.is_some()),
                ("token_endpoint_auth_signing_alg", self.token_endpoint_auth_signing_alg.is_some()),
            ] {
                if set {
                    return Err(v.err(
                        &self.key(key),
                        "is set, but token_endpoint_auth_method is not \"private_key_jwt\", so it would not be used",
                        "set token_endpoint_auth_method = \"private_key_jwt\", or remove the key",
                    ));
                }
            }
        }
        if self.client_private_key_files.iter().any(|p| p.as_os_str().is_empty()) {
            return Err(v.err(
                &self.key("client_private_key_file"),
                "holds an empty path",
                "write the PEM file's path",
            ));
        }
        if self.client_key_ids.len() > self.client_private_key_files.len() {
            return Err(v.err(
                &self.key("client_key_id"),
                &format!(
                    "names {} kids for {} key files",
                    self.client_key_ids.len(),
                    self.client_private_key_files.len()
                ),
                "give at most one kid per key, in the order of client_private_key_file",
            ));
        }
        if self.client_key_ids.iter().any(|kid| kid.trim().is_empty()) {
            return Err(v.err(
                &self.key("client_key_id"),
                "is empty",
                "write the kid registered at the provider, or remove the key (the kid is then the key's RFC 7638 thumbprint)",
            ));
        }
        if let Some(alg) = self.token_endpoint_auth_signing_alg.as_deref()
            && !["RS256", "PS256", "ES256"].contains(&alg)
        {
            return Err(v.err(
                &self.key("token_endpoint_auth_signing_alg"),
                &format!("is {alg:?}"),
                "use \"RS256\" or \"PS256\" (RSA keys) or \"ES256\" (EC P-256 keys), or remove it (the key decides)",
            ));
        }
        if self.client_certificate_file.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            return Err(v.err(&self.key("client_certificate_file"), "is empty", "write the PEM certificate's path"));
        }
        Ok(())
    }
}
