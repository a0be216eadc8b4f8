//! Microsoft Entra ID (v2.0 endpoints): tenants, the multi-tenant issuer, and a stable
//! identity.
//!
//! # The multi-tenant issuer
//!
//! The metadata URL names a tenant: `https://login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration`
//! (any host and path prefix work the same, so a test can emulate it on loopback).
//!
//! - `common`, `organizations` and `consumers` serve one document for many tenants, so its
//!   `issuer` is a template: the metadata URL's issuer with `{tenantid}` in place of the
//!   tenant (`https://login.microsoftonline.com/{tenantid}/v2.0`). Discovery must say
//!   exactly that. Each ID token names its own tenant in `tid`, and its `iss` must be the
//!   template with that `tid` (a GUID) substituted; anything else is rejected.
//!   openidconnect's verifier compares `iss` with one exact string, so the provider reads
//!   `tid` from the not yet verified payload, builds that one string, and then verifies the
//!   whole token (signature included) against it. `tid` only chooses the string to compare
//!   with; a token whose `iss` and `tid` disagree fails the comparison, and nothing of the
//!   token is trusted before its signature is checked.
//! - A tenant id (GUID): discovery must name exactly that tenant, and tokens that issuer.
//! - A tenant domain (`contoso.onmicrosoft.com`): Entra answers with the tenant's id in
//!   the issuer, so discovery must name some GUID in the tenant's place; tokens must then
//!   name exactly that issuer.
//!
//! `allowed_tenants = ["GUID", ...]` further limits who may sign in, by `tid`: the usual
//! setting with `common` or `organizations`.
//!
//! # Identity
//!
//! - The subject is `TID:OID` (tenant id and object id): stable for the person across
//!   apps and never the mutable email; `sub` (per app) stays in the claims.
//! - Work accounts often have no `email` claim. `preferred_username` (the sign-in name,
//!   usually an address) stays under its own name: Microsoft does not verify it, and any
//!   tenant may give its users names in domains it does not own, so it is not an email.
//!   Only when the token also carries the optional claim `xms_edov` (email domain owner
//!   verified) as `true` (or `"1"`, `"true"`) is it copied into an absent `email`, with
//!   `"email_verified": true`. Microsoft sends no `email_verified` otherwise, so
//!   `allowed_email_domains` refuses every other Microsoft account; authorize with
//!   `allowed_tenants`, or enable `xms_edov` in the app registration's optional claims.
//! - A user in too many groups gets no `groups` claim but a pointer to Microsoft Graph
//!   (`_claim_names.groups`, or `hasgroups`); the claims then carry
//!   `"groups_overage": true` (the pointer stays too), so the app knows to ask Graph.
//! - Bearer access tokens (`bearer_audience`) follow the same issuer rule, so they must be
//!   v2.0 tokens: set `"requestedAccessTokenVersion": 2` in the API's app manifest (v1.0
//!   tokens name `https://sts.windows.net/{tid}/` and are refused). Their subject is
//!   `TID:OID` too.
//! - Logout sends `logout_hint` from the token's `login_hint` claim (an optional claim of
//!   Entra ID), so Entra signs out that account without asking which one.

use super::keys::{self, Keys};
use crate::error::BuildError;
use crate::oidc::discovery;
use auth_core::{Claims, ProviderError};
use serde_json::Value;
use url::Url;

/// Ends the denial of `allowed_email_domains` for an account without a verified email.
pub(crate) const EMAIL_HINT: &str = "; Microsoft vouches for an address only with the optional claim xms_edov \
    (email domain owner verified), so enable it in the app registration, or admit accounts with allowed_tenants";

/// What Entra's multi-tenant discovery documents say in place of the tenant.
const PLACEHOLDER: &str = "{tenantid}";
const MULTI_TENANT: [&str; 3] = ["common", "organizations", "consumers"];

/// Which kind of tenant the metadata URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tenant {
    /// `common`, `organizations` or `consumers`.
    Multi,
    /// A tenant id (GUID).
    Id,
    /// A tenant's domain name.
    Domain,
}

/// The Microsoft preset's settings.
#[derive(Clone, Debug)]
pub(crate) struct Microsoft {
    tenant: Tenant,
    /// The metadata URL's issuer up to the tenant: `https://login.microsoftonline.com`.
    base: String,
    /// The tenant as the metadata URL names it, lower case.
    name: String,
    /// The issuer to show: the template for multi-tenant endpoints.
    issuer: String,
    /// `allowed_tenants`, lower case.
    allowed_tenants: Option<Vec<String>>,
}

impl Microsoft {
    pub(crate) fn new(keys: &Keys<'_>, metadata_url: &Url) -> Result<Self, BuildError> {
        let shape_fix = "use an Entra ID v2.0 discovery URL, https://login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration, or set kind = \"oidc\"";
        let (base, name) = discovery::issuer_of_metadata_url(metadata_url)
            .as_deref()
            .and_then(|issuer| issuer.strip_suffix("/v2.0"))
            .and_then(|rest| rest.rsplit_once('/'))
            .filter(|(base, name)| base.contains("://") && !name.is_empty())
            .map(|(base, name)| (base.to_owned(), name.to_ascii_lowercase()))
            .ok_or_else(|| keys.error("server_metadata_url", "does not name an Entra ID tenant", shape_fix))?;
        let tenant = if MULTI_TENANT.contains(&name.as_str()) {
            Tenant::Multi
        } else if keys::is_guid(&name) {
            Tenant::Id
        } else if keys::is_domain(&name) {
            Tenant::Domain
        } else {
            return Err(keys.error(
                "server_metadata_url",
                format!("names the tenant {name:?}, which is not a tenant id or domain"),
                shape_fix,
            ));
        };
        let tenant_fix = "write common, organizations, consumers, a tenant id or a tenant domain, the same as in server_metadata_url (or remove one of the two)";
        if let Some(configured) = keys.string("tenant", tenant_fix)?
            && !configured.eq_ignore_ascii_case(&name)
        {
            return Err(keys.error(
                "tenant",
                format!("is {configured:?}, but server_metadata_url names the tenant {name:?}"),
                tenant_fix,
            ));
        }
        let allowed_tenants = keys.list(
            "allowed_tenants",
            keys::is_guid,
            "list tenant ids (GUIDs, the Directory (tenant) ID in the Entra admin center), not domains",
        )?;
        let shown = if tenant == Tenant::Multi { PLACEHOLDER } else { name.as_str() };
        let issuer = format!("{base}/{shown}/v2.0");
        Ok(Self { tenant, base, name, issuer, allowed_tenants })
    }

    pub(crate) fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The tenant segment of `issuer` when it is this provider's base, a tenant, `/v2.0`.
    fn tenant_in<'i>(&self, issuer: &'i str) -> Option<&'i str> {
        let rest = issuer.strip_prefix(self.base.as_str())?.strip_prefix('/')?;
        rest.strip_suffix("/v2.0").or_else(|| rest.strip_suffix("/v2.0/"))
    }

    /// Checks the discovery document's `issuer` (see the module docs).
    pub(crate) fn check_discovered_issuer(&self, discovered: &str) -> Result<(), String> {
        let fits = match (self.tenant, self.tenant_in(discovered)) {
            (Tenant::Multi, Some(tenant)) => tenant == PLACEHOLDER,
            (Tenant::Id, Some(tenant)) => tenant.eq_ignore_ascii_case(&self.name),
            (Tenant::Domain, Some(tenant)) => keys::is_guid(tenant),
            (_, None) => false,
        };
        let expected = match self.tenant {
            Tenant::Domain => format!("{}/<tenant id>/v2.0", self.base),
            _ => self.issuer.clone(),
        };
        fits.then_some(()).ok_or(expected)
    }

    /// Whether a callback's RFC 9207 `iss` may come from this provider: the discovered
    /// issuer, or for multi-tenant endpoints, the template with a tenant id.
    pub(crate) fn callback_issuer_ok(&self, discovered: &str, iss: &str) -> bool {
        match self.tenant {
            Tenant::Multi => self.tenant_in(iss).is_some_and(keys::is_guid),
            _ => iss == discovered,
        }
    }

    /// Whether a token naming `iss` may come from this provider, without discovery: an
    /// issuer of this base whose tenant is the metadata URL's tenant id, or for the
    /// multi-tenant endpoints and tenant domains any tenant id (a GUID in place of
    /// `{tenantid}`: discovery alone would tell a domain's id); always within
    /// `allowed_tenants` when set. Verification holds the token to the exact issuer
    /// ([`token_issuer`](Self::token_issuer)), so this only picks the provider.
    pub(crate) fn trusts_issuer(&self, iss: &str) -> bool {
        let Some(tenant) = self.tenant_in(iss) else { return false };
        let fits = match self.tenant {
            Tenant::Id => tenant.eq_ignore_ascii_case(&self.name),
            Tenant::Multi | Tenant::Domain => keys::is_guid(tenant),
        };
        fits && self.allowed_tenants.as_ref().is_none_or(|allowed| allowed.contains(&tenant.to_ascii_lowercase()))
    }

    /// The issuer a token must name: for multi-tenant endpoints, the discovered template
    /// with the token's own `tid`.
    pub(crate) fn token_issuer(&self, discovered: &str, unverified: &Claims) -> Result<String, String> {
        if self.tenant != Tenant::Multi {
            return Ok(discovered.to_owned());
        }
        match unverified.get("tid").and_then(Value::as_str) {
            Some(tid) if keys::is_guid(tid) => Ok(discovered.replace(PLACEHOLDER, tid)),
            Some(_) => Err("the token's tid claim is not a tenant id (GUID)".into()),
            None => Err("the token has no tid claim, so its tenant's issuer cannot be told".into()),
        }
    }

    /// A verified `email` from `preferred_username` when `xms_edov` vouches for its domain,
    /// and `groups_overage` (see the module docs).
    pub(crate) fn complete_claims(claims: &mut Claims) {
        if !claims.contains_key("email") && domain_owner_verified(claims) {
            let username = claims.get("preferred_username").and_then(Value::as_str);
            if let Some(address) =
                username.filter(|u| u.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.')))
            {
                claims.insert("email".into(), address.into());
                claims.insert("email_verified".into(), Value::Bool(true));
            }
        }
        let overage = claims.get("_claim_names").and_then(|names| names.get("groups")).is_some()
            || claims.get("hasgroups") == Some(&Value::Bool(true));
        if overage {
            claims.insert("groups_overage".into(), Value::Bool(true));
        }
    }

    /// `TID:OID` when the token has both, else `sub`.
    pub(crate) fn subject(claims: &Claims) -> Option<String> {
        let text = |claim| claims.get(claim).and_then(Value::as_str).filter(|s| !s.is_empty());
        Some(format!("{}:{}", text("tid")?, text("oid")?))
    }

    /// Checks `tid` against `allowed_tenants`.
    pub(crate) fn admit(&self, claims: &Claims) -> Result<(), ProviderError> {
        let Some(allowed) = &self.allowed_tenants else { return Ok(()) };
        match claims.get("tid").and_then(Value::as_str) {
            Some(tid) if allowed.contains(&tid.to_ascii_lowercase()) => Ok(()),
            Some(tid) => Err(ProviderError::Denied(format!("the tenant {tid} is not in allowed_tenants"))),
            None => Err(ProviderError::Denied("the ID token has no tid claim, and allowed_tenants is set".into())),
        }
    }

    /// `logout_hint` from the `login_hint` claim.
    pub(crate) fn logout_params(claims: &Claims) -> Vec<(String, String)> {
        match claims.get("login_hint").and_then(Value::as_str) {
            Some(hint) => vec![("logout_hint".into(), hint.to_owned())],
            None => Vec::new(),
        }
    }
}

/// Whether Microsoft says the user's email domain is verified by its owner: the optional
/// claim `xms_edov` as `true`, `1`, `"1"` or `"true"`.
fn domain_owner_verified(claims: &Claims) -> bool {
    match claims.get("xms_edov") {
        Some(Value::Bool(verified)) => *verified,
        Some(Value::Number(number)) => number.as_u64() == Some(1),
        Some(Value::String(text)) => text == "1" || text.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth_core::{ProviderConfig, ProviderKind};
    use serde_json::json;

    const TENANT_A: &str = "11111111-1111-1111-1111-111111111111";
    const TENANT_B: &str = "22222222-2222-2222-2222-222222222222";

    fn build(url: &str, extra: Value) -> Result<Microsoft, String> {
        let Value::Object(extra) = extra else { panic!("an object") };
        let mut config = ProviderConfig::new("microsoft", ProviderKind::Microsoft, "id", url);
        config.extra = extra;
        let keys = Keys::new(&config);
        let url = Url::parse(url).map_err(|e| e.to_string())?;
        Microsoft::new(&keys, &url).map_err(|e| e.to_string())
    }

    fn url(tenant: &str) -> String {
        format!("https://login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration")
    }

    fn claims(value: Value) -> Claims {
        let Value::Object(map) = value else { panic!("an object") };
        map
    }

    #[test]
    fn the_multi_tenant_template_follows_each_tokens_tid() {
        let ms = build(&url("common"), json!({})).expect("builds");
        let template = "https://login.microsoftonline.com/{tenantid}/v2.0";
        assert_eq!(ms.issuer(), template);
        assert_eq!(ms.check_discovered_issuer(template), Ok(()));
        assert!(ms.check_discovered_issuer("https://login.microsoftonline.com/common/v2.0").is_err());
        assert!(ms.check_discovered_issuer("https://evil.example/{tenantid}/v2.0").is_err());
        let token = claims(json!({"tid": TENANT_A, "iss": "anything"}));
        assert_eq!(
            ms.token_issuer(template, &token).as_deref(),
            Ok(format!("https://login.microsoftonline.com/{TENANT_A}/v2.0").as_str())
        );
        assert!(ms.token_issuer(template, &claims(json!({"tid": "../x"}))).is_err());
        assert!(ms.token_issuer(template, &claims(json!({}))).is_err());
        let callback = format!("https://login.microsoftonline.com/{TENANT_B}/v2.0");
        assert!(ms.callback_issuer_ok(template, &callback));
        assert!(!ms.callback_issuer_ok(template, "https://login.microsoftonline.com/common/v2.0"));
    }

    #[test]
    fn trusted_issuers_follow_the_tenant_and_allowed_tenants() {
        let issuer = |tenant: &str| format!("https://login.microsoftonline.com/{tenant}/v2.0");
        let common = build(&url("common"), json!({})).expect("builds");
        assert!(common.trusts_issuer(&issuer(TENANT_A)));
        assert!(common.trusts_issuer(&issuer(TENANT_B)));
        for bad in [
            issuer("{tenantid}"),
            issuer("common"),
            issuer("contoso.onmicrosoft.com"),
            format!("https://sts.windows.net/{TENANT_A}/"),
            format!("https://evil.example/{TENANT_A}/v2.0"),
            format!("https://login.microsoftonline.com/{TENANT_A}/v2.0/x"),
        ] {
            assert!(!common.trusts_issuer(&bad), "{bad}");
        }
        let allowed =
            build(&url("organizations"), json!({"allowed_tenants": [TENANT_A.to_uppercase()]})).expect("builds");
        assert!(allowed.trusts_issuer(&issuer(TENANT_A)));
        assert!(!allowed.trusts_issuer(&issuer(TENANT_B)), "allowed_tenants narrows the template");
        let one = build(&url(TENANT_A), json!({})).expect("builds");
        assert!(one.trusts_issuer(&issuer(TENANT_A)) && !one.trusts_issuer(&issuer(TENANT_B)));
        let domain = build(&url("contoso.onmicrosoft.com"), json!({})).expect("builds");
        assert!(domain.trusts_issuer(&issuer(TENANT_B)), "a domain's tenant id is known only after discovery");
        assert!(!domain.trusts_issuer(&issuer("contoso.onmicrosoft.com")));
    }

    #[test]
    fn specific_tenants_are_exact() {
        let ms = build(&url(TENANT_A), json!({"tenant": TENANT_A})).expect("builds");
        let issuer = format!("https://login.microsoftonline.com/{TENANT_A}/v2.0");
        assert_eq!(ms.check_discovered_issuer(&issuer), Ok(()));
        assert!(ms.check_discovered_issuer(&issuer.replace(TENANT_A, TENANT_B)).is_err());
        assert_eq!(ms.token_issuer(&issuer, &claims(json!({"tid": TENANT_B}))), Ok(issuer.clone()));

        let ms = build(&url("contoso.onmicrosoft.com"), json!({})).expect("builds");
        assert_eq!(ms.check_discovered_issuer(&issuer), Ok(()), "a domain's discovery names its tenant id");
        let message = ms.check_discovered_issuer("https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0");
        assert_eq!(message, Err("https://login.microsoftonline.com/<tenant id>/v2.0".into()));
    }

    #[test]
    fn config_problems_name_the_key() {
        let error = build("https://login.microsoftonline.com/.well-known/openid-configuration", json!({}));
        assert!(error.err().unwrap_or_default().starts_with("`auth.microsoft.server_metadata_url` does not name"));
        let error = build(&url("common"), json!({"tenant": "contoso.example"})).err().unwrap_or_default();
        assert!(error.starts_with("`auth.microsoft.tenant` is \"contoso.example\", but"), "{error}");
        let error = build(&url("common"), json!({"allowed_tenants": ["contoso.example"]})).err().unwrap_or_default();
        assert!(error.starts_with("`auth.microsoft.allowed_tenants` holds \"contoso.example\""), "{error}");
        assert!(error.contains("GUIDs"), "{error}");
    }

    #[test]
    fn identity_allow_list_and_overage() {
        let ms = build(&url("organizations"), json!({"allowed_tenants": [TENANT_A.to_uppercase()]})).expect("builds");
        assert!(ms.admit(&claims(json!({"tid": TENANT_A}))).is_ok());
        assert!(matches!(ms.admit(&claims(json!({"tid": TENANT_B}))), Err(ProviderError::Denied(_))));
        assert!(matches!(ms.admit(&claims(json!({}))), Err(ProviderError::Denied(_))));

        let mut c =
            claims(json!({"tid": TENANT_A, "oid": "o-1", "sub": "s", "preferred_username": "ada@contoso.example",
                                  "_claim_names": {"groups": "src1"}, "login_hint": "hint"}));
        Microsoft::complete_claims(&mut c);
        assert_eq!(c["groups_overage"], true);
        assert_eq!(Microsoft::subject(&c), Some(format!("{TENANT_A}:o-1")));
        assert_eq!(Microsoft::logout_params(&c), [("logout_hint".to_owned(), "hint".to_owned())]);

        let mut c = claims(json!({"email": "real@x.example", "preferred_username": "other@x.example", "sub": "s"}));
        Microsoft::complete_claims(&mut c);
        assert_eq!(c["email"], "real@x.example", "an email claim is kept");
        assert!(!c.contains_key("groups_overage"));
        assert_eq!(Microsoft::subject(&c), None, "no tid and oid: the caller uses sub");
        let mut c = claims(json!({"preferred_username": "+15550100", "xms_edov": true}));
        Microsoft::complete_claims(&mut c);
        assert!(!c.contains_key("email"), "a phone number is not an address");
        assert!(!c.contains_key("email_verified"));
    }

    #[test]
    fn preferred_username_is_no_email_unless_its_domain_is_verified() {
        let username = json!("ada@contoso.example");
        for unverified in [None, Some(json!(false)), Some(json!("0")), Some(json!("false")), Some(json!("yes"))] {
            let mut c = claims(json!({"sub": "s", "preferred_username": username}));
            if let Some(value) = &unverified {
                c.insert("xms_edov".into(), value.clone());
            }
            Microsoft::complete_claims(&mut c);
            assert!(!c.contains_key("email"), "xms_edov = {unverified:?}: {c:?}");
            assert!(!c.contains_key("email_verified"), "xms_edov = {unverified:?}: {c:?}");
            assert_eq!(c["preferred_username"], username, "kept under its own name");
        }
        for verified in [json!(true), json!("1"), json!("true"), json!("True"), json!(1)] {
            let mut c = claims(json!({"sub": "s", "preferred_username": username, "xms_edov": verified}));
            Microsoft::complete_claims(&mut c);
            assert_eq!(c["email"], username, "xms_edov = {verified}");
            assert_eq!(c["email_verified"], true, "xms_edov = {verified}");
            assert_eq!(c["preferred_username"], username);
        }
        // A real email claim is never replaced, nor marked verified on Microsoft's word
        // about preferred_username.
        let mut c = claims(json!({"email": "real@x.example", "preferred_username": "ada@x.example", "xms_edov": true}));
        Microsoft::complete_claims(&mut c);
        assert_eq!(c["email"], "real@x.example");
        assert!(!c.contains_key("email_verified"));
    }
}
