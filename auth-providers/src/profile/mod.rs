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
//!   string `"true"` counts) may sign in. Microsoft sends no `email_verified`: its
//!   accounts pass only when the preset vouches for the address (see [`microsoft`]).
//! - `allowed_groups = ["admins", ...]`: only identities whose `groups` claim (a list of
//!   strings) holds one of these may sign in. Names are compared exactly, except that
//!   group ids written as GUIDs (Entra ID) match in any case. When the provider could not
//!   list the groups (Microsoft's `"groups_overage": true`), the login is denied with that
//!   reason: membership cannot be checked.
//! - `bearer_audience = "api://my-api"` (or a list): accept `Authorization: Bearer` access
//!   tokens (RFC 9068 JWTs) whose `aud` names one of these, signed by this provider
//!   ([`bearer`](crate::oidc::bearer) checks them). Without it the provider accepts no
//!   bearer token. The admission keys above (and `hosted_domains`) apply to logins only;
//!   an access token is judged by the layer's policies (scopes, roles, groups), since
//!   service clients' tokens carry no email or groups. Which issuers a bearer token may
//!   name is the preset's issuer rule, told without discovery (see
//!   [`Profile::trusts_token_issuer`]), so `allowed_tenants` applies to them too.
//! - `introspection = true` (with `bearer_audience`): also accept opaque (non-JWT) bearer
//!   access tokens, by asking the provider's RFC 7662 introspection endpoint about each
//!   ([`introspection`](crate::oidc::introspection) checks the answers).
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
use std::borrow::Cow;
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
    /// `allowed_groups`, GUIDs in lower case.
    groups: Option<Vec<String>>,
    /// `bearer_audience`: bearer access tokens are verified only when set.
    bearer_audiences: Option<Vec<String>>,
    /// `introspection`: opaque bearer tokens are checked at the introspection endpoint.
    introspection: bool,
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
        let groups = keys
            .strings(
                "allowed_groups",
                "so nobody could sign in",
                "list group names or ids, such as allowed_groups = [\"admins\"]",
            )?
            .map(|groups| groups.iter().map(|group| group_key(group).into_owned()).collect());
        let bearer_audiences = keys.strings(
            "bearer_audience",
            "so no access token could be accepted",
            "write the audience (aud) your API's access tokens carry, such as bearer_audience = \"api://my-api\", \
             or remove the key to accept no bearer token",
        )?;
        let introspection =
            keys.flag("introspection", "write introspection = true to accept opaque access tokens, or remove the key")?;
        if introspection && bearer_audiences.is_none() {
            return Err(keys.error(
                "introspection",
                "needs bearer_audience: introspected tokens are held to its audiences",
                "add bearer_audience = \"api://my-api\" (the audience your API's access tokens carry), \
                 or remove introspection",
            ));
        }
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
        Ok(Self {
            kind: config.kind,
            preset,
            email_domains,
            groups,
            bearer_audiences,
            introspection,
            logout_params,
            end_session_endpoint,
        })
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

    /// Whether a token naming `iss` may come from this provider, told without discovery
    /// (the layer asks before any network call): the metadata URL's issuer (with or
    /// without a trailing `/`); for Google also its spelling without `https://`; for
    /// Microsoft an issuer whose tenant segment fits the metadata URL's tenant (for the
    /// multi-tenant endpoints and tenant domains: any tenant id, i.e. a GUID, within
    /// `allowed_tenants` when set). Verification then holds the token to the exact
    /// [`token_issuer`](Self::token_issuer).
    pub(crate) fn trusts_token_issuer(&self, iss: &str) -> bool {
        match &self.preset {
            Preset::Oidc { issuer } => discovery::issuer_matches(iss, issuer),
            Preset::Google { issuer, .. } => Google::trusts_issuer(issuer, iss),
            Preset::Microsoft(microsoft) => microsoft.trusts_issuer(iss),
        }
    }

    /// The audiences of `bearer_audience`; `None` when bearer tokens are not accepted.
    pub(crate) fn bearer_audiences(&self) -> Option<&[String]> {
        self.bearer_audiences.as_deref()
    }

    /// Whether opaque bearer tokens are checked by introspection (`introspection = true`,
    /// which requires `bearer_audience`).
    pub(crate) fn introspection(&self) -> bool {
        self.introspection
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

    /// The claims of `old` (a session's, from an earlier token) that [`complete_claims`]
    /// derived from that token rather than the provider sent: a refreshed identity derives
    /// them again from the new token, never keeps the old ones. For Microsoft, the
    /// `email` made from `preferred_username` (marked by `email_verified: true`, which
    /// Microsoft never sends itself) and `groups_overage`; for the others none.
    ///
    /// [`complete_claims`]: Self::complete_claims
    pub(crate) fn derived_claims(&self, old: &Claims) -> &'static [&'static str] {
        match self.preset {
            Preset::Microsoft(_) if old.get("email_verified") == Some(&Value::Bool(true)) => {
                &["email", "email_verified", "groups_overage"]
            }
            Preset::Microsoft(_) => &["groups_overage"],
            _ => &[],
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
    /// A fingerprint of the admission rules (the preset's, `allowed_email_domains`,
    /// `allowed_groups`), the same on every instance with the same config; `None` without
    /// any rule.
    pub(crate) fn admission(&self) -> Option<String> {
        let preset_rules = match &self.preset {
            Preset::Oidc { .. } => String::new(),
            preset => format!("{preset:?}"),
        };
        if preset_rules.is_empty() && self.email_domains.is_none() && self.groups.is_none() {
            return None;
        }
        let text = format!("{preset_rules}|{:?}|{:?}", self.email_domains, self.groups);
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in text.bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        Some(format!("{hash:016x}"))
    }

    pub(crate) fn admit(&self, claims: &Claims) -> Result<(), ProviderError> {
        match &self.preset {
            Preset::Google { google, .. } => google.admit(claims)?,
            Preset::Microsoft(microsoft) => microsoft.admit(claims)?,
            Preset::Oidc { .. } => {}
        }
        if let Some(domains) = &self.email_domains {
            let hint = match self.preset {
                Preset::Microsoft(_) => microsoft::EMAIL_HINT,
                _ => "",
            };
            admit_email(domains, claims, hint)?;
        }
        match &self.groups {
            Some(groups) => admit_groups(groups, claims),
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

/// `allowed_email_domains`: a verified `email` in one of `domains`; `hint` ends the
/// message of a missing or unverified email (the preset's advice).
fn admit_email(domains: &[String], claims: &Claims, hint: &str) -> Result<(), ProviderError> {
    let Some(email) = claims.get("email").and_then(Value::as_str) else {
        return Err(ProviderError::Denied(format!(
            "the identity has no email, and allowed_email_domains is set{hint}"
        )));
    };
    let domain = email.rsplit_once('@').map(|(_, domain)| domain.to_ascii_lowercase()).unwrap_or_default();
    let verified = match claims.get("email_verified") {
        Some(Value::Bool(verified)) => *verified,
        Some(Value::String(text)) => text.eq_ignore_ascii_case("true"),
        _ => false,
    };
    if !verified {
        return Err(ProviderError::Denied(format!(
            "the email address (domain {domain:?}) is not verified by the provider, and allowed_email_domains is set{hint}"
        )));
    }
    if !domains.contains(&domain) {
        return Err(ProviderError::Denied(format!("the email domain {domain:?} is not in allowed_email_domains")));
    }
    Ok(())
}

/// `allowed_groups`: a `groups` claim holding one of `allowed` (see the module docs).
fn admit_groups(allowed: &[String], claims: &Claims) -> Result<(), ProviderError> {
    if claims.get("groups_overage") == Some(&Value::Bool(true)) {
        return Err(ProviderError::Denied(
            "the account is in too many groups for the ID token to list them (groups overage), so membership of \
             allowed_groups cannot be checked; configure the app registration to emit group claims only for the \
             groups assigned to the application"
                .into(),
        ));
    }
    let needed = || allowed.join(", ");
    let Some(Value::Array(groups)) = claims.get("groups") else {
        return Err(ProviderError::Denied(format!(
            "the identity has no groups claim, and allowed_groups requires one of: {}; configure the provider to \
             send a groups claim",
            needed()
        )));
    };
    let member = groups.iter().filter_map(Value::as_str).any(|group| allowed.iter().any(|a| *a == group_key(group)));
    if member {
        Ok(())
    } else {
        Err(ProviderError::Denied(format!(
            "the identity is in none of the groups allowed_groups requires: {}",
            needed()
        )))
    }
}

/// A group as compared: GUIDs (Entra ID group ids) in lower case, names as written.
fn group_key(group: &str) -> Cow<'_, str> {
    if keys::is_guid(group) { Cow::Owned(group.to_ascii_lowercase()) } else { Cow::Borrowed(group) }
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
    fn groups_must_hold_an_allowed_one() {
        let guid = "6A4B1B8C-0000-4000-8000-0000000000AB";
        let p = profile(ProviderKind::Oidc, json!({"allowed_groups": ["admins", "ops", guid]})).expect("builds");
        let denial = |c: Value| match p.admit(&claims(c)) {
            Err(ProviderError::Denied(message)) => message,
            other => panic!("expected a denial, got {other:?}"),
        };
        assert!(p.admit(&claims(json!({"groups": ["users", "ops"]}))).is_ok());
        assert!(p.admit(&claims(json!({"groups": [guid.to_lowercase()]}))).is_ok(), "GUIDs match in any case");
        let message = denial(json!({"groups": ["Admins", "users", 7]}));
        assert_eq!(
            message,
            "the identity is in none of the groups allowed_groups requires: admins, ops, 6a4b1b8c-0000-4000-8000-0000000000ab"
        );
        assert!(denial(json!({})).starts_with("the identity has no groups claim"));
        assert!(denial(json!({"groups": "admins"})).starts_with("the identity has no groups claim"), "not a list");
        let message = denial(json!({"groups_overage": true, "_claim_names": {"groups": "src1"}}));
        assert!(message.contains("too many groups") && message.contains("assigned to the application"), "{message}");
        // Both policies apply.
        let both = profile(
            ProviderKind::Oidc,
            json!({"allowed_groups": ["admins"], "allowed_email_domains": ["example.com"]}),
        )
        .expect("builds");
        assert!(
            both.admit(&claims(json!({"groups": ["admins"], "email": "a@example.com", "email_verified": true})))
                .is_ok()
        );
        assert!(
            both.admit(&claims(json!({"groups": ["admins"], "email": "a@evil.com", "email_verified": true}))).is_err()
        );
        assert!(both.admit(&claims(json!({"groups": [], "email": "a@example.com", "email_verified": true}))).is_err());
    }

    #[test]
    fn group_and_audience_keys_are_checked() {
        let error = |extra| profile(ProviderKind::Oidc, extra).err().unwrap_or_default();
        assert!(error(json!({"allowed_groups": []})).starts_with("`auth.corp.allowed_groups` is empty, so nobody"));
        assert!(
            error(json!({"allowed_groups": [1]}))
                .starts_with("`auth.corp.allowed_groups` holds 1, which is not a string")
        );
        assert!(
            error(json!({"bearer_audience": []}))
                .starts_with("`auth.corp.bearer_audience` is empty, so no access token")
        );
        assert!(
            error(json!({"bearer_audience": 5})).starts_with("`auth.corp.bearer_audience` is not a list of strings")
        );
        assert!(
            error(json!({"bearer_audience": ["api://x", ""]}))
                .starts_with("`auth.corp.bearer_audience` holds an empty string")
        );
        assert!(error(json!({"bearer_audience": [true]})).starts_with("`auth.corp.bearer_audience` holds true"));
        let p = profile(ProviderKind::Oidc, json!({"bearer_audience": "api://X"})).expect("builds");
        assert_eq!(p.bearer_audiences(), Some(&["api://X".to_owned()][..]), "audiences keep their case");
        let p = profile(ProviderKind::Oidc, json!({"bearer_audience": ["api://a", "https://api.example/"]}))
            .expect("builds");
        assert_eq!(p.bearer_audiences().map(<[String]>::len), Some(2));
        assert_eq!(profile(ProviderKind::Oidc, json!({})).expect("builds").bearer_audiences(), None);
        for kind in [ProviderKind::Google, ProviderKind::Microsoft] {
            let mut config = config(kind, json!({"bearer_audience": "api://x", "allowed_groups": ["g"]}));
            config.server_metadata_url =
                "https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration".into();
            let url = Url::parse(&config.server_metadata_url).expect("url");
            assert!(Profile::new(&config, &url).is_ok(), "{kind:?} takes both keys");
        }
    }

    #[test]
    fn introspection_needs_an_audience() {
        let p =
            profile(ProviderKind::Oidc, json!({"bearer_audience": "api://x", "introspection": true})).expect("builds");
        assert!(p.introspection());
        assert!(!profile(ProviderKind::Oidc, json!({"bearer_audience": "api://x"})).expect("builds").introspection());
        let error = profile(ProviderKind::Oidc, json!({"introspection": true})).err().unwrap_or_default();
        assert!(error.starts_with("`auth.corp.introspection` needs bearer_audience"), "{error}");
        let error = profile(ProviderKind::Oidc, json!({"bearer_audience": "api://x", "introspection": 1}))
            .err()
            .unwrap_or_default();
        assert!(error.starts_with("`auth.corp.introspection` is not true or false"), "{error}");
        assert!(profile(ProviderKind::Oidc, json!({"introspection": false})).is_ok(), "false needs no audience");
    }

    #[test]
    fn trusted_token_issuers_need_no_discovery() {
        let p = profile(ProviderKind::Oidc, json!({})).expect("builds");
        assert!(p.trusts_token_issuer("https://idp.example"));
        assert!(p.trusts_token_issuer("https://idp.example/"));
        assert!(!p.trusts_token_issuer("https://idp.example/other"));
        assert!(!p.trusts_token_issuer("https://evil.example"));
        assert!(!p.trusts_token_issuer("idp.example"), "only Google tokens may drop the scheme");
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
