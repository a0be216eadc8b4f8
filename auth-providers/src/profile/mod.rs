//! What makes one provider differ from generic OpenID Connect: its preset (Google,
//! Microsoft) and the per-provider keys of its config section.
//!
//! A preset is mostly data plus a few hooks (as in Auth.js): which issuer discovery and
//! each ID token must name, extra authorization parameters, how claims become an
//! identity, and which verified identities to admit. [`OidcProvider`](crate::OidcProvider)
//! calls the hooks of its [`Profile`]; the presets live in [`google`] and [`microsoft`].
//!
//! Keys every kind understands:
//!
//! - `allowed_email_domains = ["example.com"]`: only identities whose `email` is in one
//!   of these domains (exactly; no subdomains) *and* whose `email_verified` is true (the
//!   string `"true"` counts) may sign in.
//! - `logout_params = { client_id = "...", logout_uri = "..." }`: parameters added to the
//!   end-session URL, replacing ones of the same name the provider sets (not `state` or
//!   `id_token_hint`).
//! - `end_session_endpoint = "https://..."`: the logout URL for providers whose discovery
//!   document has none (Amazon Cognito's `https://DOMAIN/logout`).

mod google;
pub(crate) mod keys;
mod microsoft;

use crate::error::BuildError;
use crate::oidc::discovery;
use auth_core::{Claims, ProviderConfig, ProviderError, ProviderKind};
use google::Google;
use keys::Keys;
use microsoft::Microsoft;
use serde_json::Value;
use url::Url;

/// End-session parameters the provider always sets itself.
const RESERVED_LOGOUT_PARAMS: &[&str] = &["state", "id_token_hint"];

/// The behaviour of one provider section.
#[derive(Clone, Debug)]
pub(crate) struct Profile {
    kind: ProviderKind,
    preset: Preset,
    /// `allowed_email_domains`, lower case.
    email_domains: Option<Vec<String>>,
    logout_params: Vec<(String, String)>,
    end_session_endpoint: Option<Url>,
}

#[derive(Clone, Debug)]
enum Preset {
    /// Generic OpenID Connect: the issuer is the metadata URL without the well-known suffix.
    Oidc {
        issuer: String,
    },
    Google {
        issuer: String,
        google: Google,
    },
    Microsoft(Microsoft),
}

impl Profile {
    /// The profile of `config`, whose discovery document is at `metadata_url`; reads and
    /// checks every preset key of the section.
    pub(crate) fn new(config: &ProviderConfig, metadata_url: &Url) -> Result<Self, BuildError> {
        let keys = Keys::new(config);
        let url_issuer = || {
            discovery::issuer_of_metadata_url(metadata_url).ok_or_else(|| {
                keys.error(
                    "server_metadata_url",
                    format!("does not end in {}, so the issuer cannot be told from it", discovery::WELL_KNOWN),
                    "use the provider's discovery URL: its issuer followed by /.well-known/openid-configuration",
                )
            })
        };
        let preset = match config.kind {
            ProviderKind::Google => Preset::Google { issuer: url_issuer()?, google: Google::new(&keys)? },
            ProviderKind::Microsoft => Preset::Microsoft(Microsoft::new(&keys, metadata_url)?),
            _ => Preset::Oidc { issuer: url_issuer()? },
        };
        let email_domains = keys.list(
            "allowed_email_domains",
            keys::is_domain,
            "list email domains, such as allowed_email_domains = [\"example.com\"]",
        )?;
        let logout_params = keys.table("logout_params", "write logout_params = { client_id = \"...\" }")?;
        if let Some((reserved, _)) = logout_params.iter().find(|(k, _)| RESERVED_LOGOUT_PARAMS.contains(&k.as_str())) {
            return Err(keys.error(
                &format!("logout_params.{reserved}"),
                "is set by the library for every logout",
                "remove it",
            ));
        }
        let end_session_endpoint = keys.url("end_session_endpoint")?;
        keys.finish()?;
        Ok(Self { kind: config.kind, preset, email_domains, logout_params, end_session_endpoint })
    }

    /// Which family this is.
    pub(crate) fn kind(&self) -> ProviderKind {
        self.kind
    }

    /// The issuer this provider trusts, as its metadata URL tells (for Microsoft's
    /// multi-tenant endpoints, the template with `{tenantid}`).
    pub(crate) fn issuer(&self) -> &str {
        match &self.preset {
            Preset::Oidc { issuer } | Preset::Google { issuer, .. } => issuer,
            Preset::Microsoft(microsoft) => microsoft.issuer(),
        }
    }

    /// Checks the discovery document's `issuer`; the error says what it must be.
    pub(crate) fn check_discovered_issuer(&self, discovered: &str) -> Result<(), String> {
        let fits = match &self.preset {
            Preset::Oidc { issuer } | Preset::Google { issuer, .. } => {
                discovery::issuer_matches(discovered, issuer).then_some(()).ok_or_else(|| issuer.clone())
            }
            Preset::Microsoft(microsoft) => microsoft.check_discovered_issuer(discovered),
        };
        fits.map_err(|expected| {
            format!(
                "the discovery issuer {discovered:?} does not match {expected:?}, the issuer its metadata URL names; \
                 check server_metadata_url"
            )
        })
    }

    /// Whether the RFC 9207 `iss` of a callback names this provider's issuer.
    pub(crate) fn callback_issuer_ok(&self, discovered: &str, iss: &str) -> bool {
        match &self.preset {
            Preset::Microsoft(microsoft) => microsoft.callback_issuer_ok(discovered, iss),
            _ => iss == discovered,
        }
    }

    /// The issuer an ID token must name, from the discovered issuer and the token's own
    /// claims (not yet verified: they only choose the string `iss` is compared with).
    pub(crate) fn token_issuer(&self, discovered: &str, unverified: &Claims) -> Result<String, String> {
        match &self.preset {
            Preset::Oidc { .. } => Ok(discovered.to_owned()),
            Preset::Google { .. } => Ok(Google::token_issuer(discovered, unverified)),
            Preset::Microsoft(microsoft) => microsoft.token_issuer(discovered, unverified),
        }
    }

    /// Authorization parameters of the preset (Google's `hd` hint).
    pub(crate) fn authorization_params(&self) -> Vec<(&'static str, String)> {
        match &self.preset {
            Preset::Google { google, .. } => google.authorization_params(),
            _ => Vec::new(),
        }
    }

    /// Completes verified claims as the preset promises (Microsoft's `email` and
    /// `groups_overage`).
    pub(crate) fn complete_claims(&self, claims: &mut Claims) {
        if let Preset::Microsoft(_) = self.preset {
            Microsoft::complete_claims(claims);
        }
    }

    /// The stable identifier of verified claims: `sub`, or Microsoft's `TID:OID`.
    pub(crate) fn subject(&self, claims: &Claims) -> String {
        let preset = match self.preset {
            Preset::Microsoft(_) => Microsoft::subject(claims),
            _ => None,
        };
        preset.unwrap_or_else(|| claims.get("sub").and_then(Value::as_str).unwrap_or_default().to_owned())
    }

    /// Whether a verified identity may sign in here: `Err(ProviderError::Denied)` to refuse.
    pub(crate) fn admit(&self, claims: &Claims) -> Result<(), ProviderError> {
        match &self.preset {
            Preset::Google { google, .. } => google.admit(claims)?,
            Preset::Microsoft(microsoft) => microsoft.admit(claims)?,
            Preset::Oidc { .. } => {}
        }
        match &self.email_domains {
            Some(domains) => admit_email(domains, claims),
            None => Ok(()),
        }
    }

    /// The end-session endpoint configured for a provider whose discovery has none.
    pub(crate) fn end_session_endpoint(&self) -> Option<&Url> {
        self.end_session_endpoint.as_ref()
    }

    /// Parameters added to the end-session URL: the preset's, then `logout_params`.
    pub(crate) fn logout_params(&self, claims: &Claims) -> Vec<(String, String)> {
        let mut params = match self.preset {
            Preset::Microsoft(_) => Microsoft::logout_params(claims),
            _ => Vec::new(),
        };
        params.extend(self.logout_params.iter().cloned());
        params
    }
}

/// `allowed_email_domains`: a verified `email` in one of `domains`.
fn admit_email(domains: &[String], claims: &Claims) -> Result<(), ProviderError> {
    let Some(email) = claims.get("email").and_then(Value::as_str) else {
        return Err(ProviderError::Denied("the identity has no email, and allowed_email_domains is set".into()));
    };
    let domain = email.rsplit_once('@').map(|(_, domain)| domain.to_ascii_lowercase()).unwrap_or_default();
    let verified = match claims.get("email_verified") {
        Some(Value::Bool(verified)) => *verified,
        Some(Value::String(text)) => text.eq_ignore_ascii_case("true"),
        _ => false,
    };
    if !verified {
        return Err(ProviderError::Denied(format!(
            "the email address (domain {domain:?}) is not verified by the provider, and allowed_email_domains is set"
        )));
    }
    if !domains.contains(&domain) {
        return Err(ProviderError::Denied(format!("the email domain {domain:?} is not in allowed_email_domains")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth_core::Secret;
    use serde_json::json;

    fn config(kind: ProviderKind, extra: Value) -> ProviderConfig {
        let Value::Object(extra) = extra else { panic!("an object") };
        let mut config =
            ProviderConfig::new("corp", kind, "id", "https://idp.example/.well-known/openid-configuration")
                .with_client_secret(Secret::new("s"));
        config.extra = extra;
        config
    }

    fn profile(kind: ProviderKind, extra: Value) -> Result<Profile, String> {
        let config = config(kind, extra);
        let url = Url::parse(&config.server_metadata_url).map_err(|e| e.to_string())?;
        Profile::new(&config, &url).map_err(|e| e.to_string())
    }

    fn claims(value: Value) -> Claims {
        let Value::Object(map) = value else { panic!("an object") };
        map
    }

    #[test]
    fn email_domains_need_a_verified_email() {
        let p = profile(ProviderKind::Oidc, json!({"allowed_email_domains": ["example.com"]})).expect("builds");
        let denied = |c: Value| matches!(p.admit(&claims(c)), Err(ProviderError::Denied(_)));
        assert!(p.admit(&claims(json!({"email": "a@Example.com", "email_verified": true}))).is_ok());
        assert!(p.admit(&claims(json!({"email": "a@example.com", "email_verified": "true"}))).is_ok());
        assert!(denied(json!({"email": "a@example.com", "email_verified": false})));
        assert!(denied(json!({"email": "a@example.com", "email_verified": "false"})));
        assert!(denied(json!({"email": "a@example.com"})), "no email_verified is not verified");
        assert!(denied(json!({"email": "a@sub.example.com", "email_verified": true})), "no subdomains");
        assert!(denied(json!({"email": "a@evil.com", "email_verified": true})));
        assert!(denied(json!({"email_verified": true})));
        let open = profile(ProviderKind::Oidc, json!({})).expect("builds");
        assert!(open.admit(&claims(json!({}))).is_ok());
    }

    #[test]
    fn logout_params_and_endpoint() {
        let p = profile(
            ProviderKind::Oidc,
            json!({"logout_params": {"client_id": "c", "logout_uri": "http://localhost:3000/"},
                   "end_session_endpoint": "https://auth.example/logout"}),
        )
        .expect("builds");
        assert_eq!(
            p.logout_params(&Claims::new()),
            [("client_id".to_owned(), "c".to_owned()), ("logout_uri".to_owned(), "http://localhost:3000/".to_owned())]
        );
        assert_eq!(p.end_session_endpoint().map(Url::as_str), Some("https://auth.example/logout"));
        let error = profile(ProviderKind::Oidc, json!({"logout_params": {"state": "x"}})).err().unwrap_or_default();
        assert!(error.starts_with("`auth.corp.logout_params.state` is set by the library"), "{error}");
        let error = profile(ProviderKind::Oidc, json!({"logout_params": "x"})).err().unwrap_or_default();
        assert!(error.starts_with("`auth.corp.logout_params` is not a table"), "{error}");
        let error = profile(ProviderKind::Oidc, json!({"end_session_endpoint": "/logout"})).err().unwrap_or_default();
        assert!(error.starts_with("`auth.corp.end_session_endpoint` is not an absolute"), "{error}");
    }

    #[test]
    fn generic_issuers_are_exact() {
        let p = profile(ProviderKind::Oidc, json!({})).expect("builds");
        assert_eq!(p.issuer(), "https://idp.example");
        assert!(p.check_discovered_issuer("https://idp.example").is_ok());
        let message = p.check_discovered_issuer("https://other.example").err().unwrap_or_default();
        assert!(message.contains("does not match \"https://idp.example\""), "{message}");
        let bare = claims(json!({"iss": "idp.example"}));
        assert_eq!(p.token_issuer("https://idp.example", &bare).as_deref(), Ok("https://idp.example"));
        assert!(p.callback_issuer_ok("https://idp.example", "https://idp.example"));
        assert!(!p.callback_issuer_ok("https://idp.example", "https://evil.example"));
    }
}
