//! The Google and Microsoft presets, and the keys every provider takes, against `MockIdp`
//! emulating each provider's documents: Google's issuer spellings and `hd`, Entra ID's
//! multi-tenant issuer template and tenants, email domains, logout parameters.

mod support;

use auth_core::{IdentityProvider, ProviderKind, Session};
use auth_providers::OidcProvider;
use auth_testkit::{Fault, MockIdp, MockUser};
use serde_json::{Value, json};
use support::{REDIRECT_URI, denial, login, param, preset_config, rejection, settings};
use url::Url;

const TENANT_A: &str = "aaaaaaaa-0000-4000-8000-00000000000a";
const TENANT_B: &str = "bbbbbbbb-0000-4000-8000-00000000000b";

fn build(idp: &MockIdp, kind: ProviderKind, extra: Value) -> OidcProvider {
    let name = match kind {
        ProviderKind::Google => "google",
        ProviderKind::Microsoft => "microsoft",
        _ => "corp",
    };
    OidcProvider::new(&preset_config(idp, name, kind, extra), &settings()).expect("provider builds")
}

// ----------------------------------------------------------------------------- Google

/// A Google-shaped provider: Workspace users carry `hd`, consumer accounts do not.
async fn google_idp() -> MockIdp {
    MockIdp::builder()
        .user(MockUser::new("ada").email("ada@example.com").name("Ada").claim("hd", json!("example.com")))
        .user(MockUser::new("eve").email("eve@other.com").name("Eve").claim("hd", json!("other.com")))
        .user(MockUser::new("gmail").email("someone@gmail.com").name("Someone"))
        .login_as(Some("ada"))
        .start()
        .await
        .expect("mock idp")
}

#[tokio::test]
async fn google_hosted_domain_is_accepted_and_hinted() {
    let idp = google_idp().await;
    let google = build(&idp, ProviderKind::Google, json!({"hosted_domains": ["example.com"]}));
    let result = login(&google).await.expect("a Workspace account of the domain signs in");
    assert_eq!(result.identity.claims["hd"], "example.com");
    assert_eq!(result.identity.subject, "ada");
    let sent = idp.last_authorize_params().expect("authorize params");
    assert_eq!(sent.get("hd").map(String::as_str), Some("example.com"), "one domain: hd is sent as a hint");
}

#[tokio::test]
async fn google_other_or_missing_hosted_domain_is_denied() {
    let idp = google_idp().await;
    let google = build(&idp, ProviderKind::Google, json!({"hosted_domains": ["example.com", "example.org"]}));
    idp.login_as(Some("eve"));
    let message = denial(login(&google).await);
    assert!(message.contains("\"other.com\" is not in hosted_domains"), "{message}");
    assert!(!idp.last_authorize_params().expect("params").contains_key("hd"), "two domains: no single hint");
    idp.login_as(Some("gmail"));
    let message = denial(login(&google).await);
    assert!(message.contains("no hd claim"), "{message}");
}

#[tokio::test]
async fn google_hosted_domain_hint_alone_is_not_trusted() {
    // The `hd` parameter is only a hint: an IdP (or a user editing the URL) may ignore it,
    // and the token then names another domain, which the claim check refuses.
    let idp = google_idp().await;
    let google = build(&idp, ProviderKind::Google, json!({"hosted_domains": ["example.com"]}));
    idp.login_as(Some("eve"));
    denial(login(&google).await);
    assert_eq!(idp.last_authorize_params().expect("params")["hd"], "example.com");
}

#[tokio::test]
async fn google_issuer_without_scheme_is_accepted() {
    let idp = google_idp().await;
    let google = build(&idp, ProviderKind::Google, json!({}));
    let bare = format!("127.0.0.1:{}", idp.port());
    idp.set_fault(Fault::IdTokenClaims(json!({ "iss": bare })));
    let result = login(&google).await.expect("Google's second spelling of its issuer");
    assert_eq!(result.identity.claims["iss"], bare);
}

#[tokio::test]
async fn google_issuer_without_scheme_is_still_fully_verified() {
    let idp = google_idp().await;
    let google = build(&idp, ProviderKind::Google, json!({}));
    let bare = json!({ "iss": format!("127.0.0.1:{}", idp.port()) });
    for (fault, expected) in [
        (Fault::BadSignature, "signature is not valid"),
        (Fault::WrongNonce, "nonce"),
        (Fault::AlgNone, "not signed"),
        (Fault::WrongAudience, "audience"),
    ] {
        idp.set_fault(fault.clone());
        idp.add_fault(Fault::IdTokenClaims(bare.clone()));
        let message = rejection(login(&google).await);
        assert!(message.contains(expected), "{fault:?}: {message}");
    }
    let future = auth_core::unix_now() + 3600;
    idp.set_fault(Fault::IdTokenClaims(json!({ "iss": bare["iss"], "iat": future })));
    let message = rejection(login(&google).await);
    assert!(message.contains("issued in the future"), "{message}");
    // A token signed with a key the cached set lacks: the set is fetched again.
    idp.set_fault(Fault::IdTokenClaims(bare));
    idp.rotate_keys();
    let result = login(&google).await.expect("the rotated key is fetched");
    assert_eq!(result.identity.subject, "ada");
    assert_eq!(idp.hits().jwks, 2);
}

#[tokio::test]
async fn an_issuer_without_scheme_is_refused_outside_the_google_preset() {
    let idp = google_idp().await;
    let generic = build(&idp, ProviderKind::Oidc, json!({}));
    idp.set_fault(Fault::IdTokenClaims(json!({ "iss": format!("127.0.0.1:{}", idp.port()) })));
    let message = rejection(login(&generic).await);
    assert!(message.contains("issuer"), "{message}");
}

// -------------------------------------------------------------------------- Microsoft

/// An Entra ID-shaped provider on its `common` endpoint: discovery's issuer is the
/// `{tenantid}` template; each token names its user's tenant in `iss` and `tid`.
async fn entra_idp() -> MockIdp {
    MockIdp::builder()
        .path("/common/v2.0")
        .issuer_template("/{tenantid}/v2.0", "tid")
        .user(
            MockUser::new("ada-sub")
                .name("Ada Lovelace")
                .claim("tid", json!(TENANT_A))
                .claim("oid", json!("oid-ada"))
                .claim("preferred_username", json!("ada@contoso.example"))
                .claim("login_hint", json!("hint-ada")),
        )
        .user(
            MockUser::new("bob-sub")
                .name("Bob")
                .claim("tid", json!(TENANT_B))
                .claim("oid", json!("oid-bob"))
                .claim("preferred_username", json!("bob@fabrikam.example"))
                .claim("_claim_names", json!({"groups": "src1"}))
                .claim(
                    "_claim_sources",
                    json!({"src1": {"endpoint": "https://graph.microsoft.com/v1.0/users/oid-bob/getMemberObjects"}}),
                ),
        )
        .login_as(Some("ada-sub"))
        .start()
        .await
        .expect("mock idp")
}

fn tenant_issuer(idp: &MockIdp, tenant: &str) -> String {
    format!("http://127.0.0.1:{}/{tenant}/v2.0", idp.port())
}

#[tokio::test]
async fn microsoft_multi_tenant_token_is_accepted() {
    let idp = entra_idp().await;
    let microsoft = build(&idp, ProviderKind::Microsoft, json!({}));
    assert_eq!(microsoft.issuer(), tenant_issuer(&idp, "{tenantid}"));
    let result = login(&microsoft).await.expect("the token's issuer is the template with its tid");
    let identity = &result.identity;
    assert_eq!(identity.subject, format!("{TENANT_A}:oid-ada"), "tid:oid, not sub");
    assert_eq!(identity.claims["sub"], "ada-sub");
    assert_eq!(identity.claims["iss"], tenant_issuer(&idp, TENANT_A));
    assert_eq!(identity.claims["preferred_username"], "ada@contoso.example");
    assert!(!identity.claims.contains_key("email"), "an unverified preferred_username is not an email");
    assert!(!identity.claims.contains_key("email_verified"));
    assert!(!identity.claims.contains_key("groups_overage"));

    idp.login_as(Some("bob-sub"));
    let bob = login(&microsoft).await.expect("another tenant on the same endpoint");
    assert_eq!(bob.identity.subject, format!("{TENANT_B}:oid-bob"));
    assert_eq!(bob.identity.claims["groups_overage"], true, "the overage is exposed, not dropped");
    assert_eq!(bob.identity.claims["_claim_names"]["groups"], "src1");
}

#[tokio::test]
async fn microsoft_token_whose_iss_tenant_differs_from_its_tid_is_rejected() {
    let idp = entra_idp().await;
    let microsoft = build(&idp, ProviderKind::Microsoft, json!({}));
    // iss names tenant B, tid says A.
    idp.set_fault(Fault::IdTokenClaims(json!({ "iss": tenant_issuer(&idp, TENANT_B) })));
    let message = rejection(login(&microsoft).await);
    assert!(message.contains(&format!("is not \"{}\"", tenant_issuer(&idp, TENANT_A))), "{message}");
    // tid says B, iss names A.
    idp.set_fault(Fault::IdTokenClaims(json!({ "tid": TENANT_B })));
    let message = rejection(login(&microsoft).await);
    assert!(message.contains("issuer"), "{message}");
    // The template itself, or no tid at all.
    idp.set_fault(Fault::IdTokenClaims(json!({ "iss": tenant_issuer(&idp, "{tenantid}") })));
    rejection(login(&microsoft).await);
    idp.set_fault(Fault::IdTokenClaims(json!({ "tid": null })));
    let message = rejection(login(&microsoft).await);
    assert!(message.contains("no tid claim"), "{message}");
    idp.set_fault(Fault::IdTokenClaims(json!({ "tid": "common", "iss": tenant_issuer(&idp, "common") })));
    let message = rejection(login(&microsoft).await);
    assert!(message.contains("not a tenant id"), "{message}");
}

#[tokio::test]
async fn microsoft_tenant_not_in_the_allow_list_is_denied() {
    let idp = entra_idp().await;
    let microsoft = build(&idp, ProviderKind::Microsoft, json!({"allowed_tenants": [TENANT_B]}));
    let message = denial(login(&microsoft).await);
    assert!(message.contains(&format!("tenant {TENANT_A} is not in allowed_tenants")), "{message}");
    idp.login_as(Some("bob-sub"));
    login(&microsoft).await.expect("a tenant of the list signs in");
}

#[tokio::test]
async fn microsoft_discovery_must_be_the_template_of_its_endpoint() {
    let idp = entra_idp().await;
    let microsoft = build(&idp, ProviderKind::Microsoft, json!({}));
    // A multi-tenant endpoint whose discovery names one tenant is not Entra's shape.
    idp.set_fault(Fault::DiscoveryExtra(json!({ "issuer": tenant_issuer(&idp, TENANT_A) })));
    let message = match microsoft.authorize(REDIRECT_URI).await {
        Err(auth_core::ProviderError::Rejected(message)) => message,
        other => panic!("expected Rejected, got {other:?}"),
    };
    assert!(message.contains("{tenantid}"), "{message}");
}

#[tokio::test]
async fn microsoft_callback_from_another_issuer_is_rejected() {
    let idp = entra_idp().await;
    let microsoft = build(&idp, ProviderKind::Microsoft, json!({}));
    idp.set_fault(Fault::CallbackIssuer("https://evil.example/{tenantid}/v2.0".into()));
    let message = rejection(login(&microsoft).await);
    assert!(message.contains("RFC 9207"), "{message}");
    assert_eq!(idp.hits().token, 0, "the code is not exchanged");
}

#[tokio::test]
async fn microsoft_refresh_keeps_the_tenant_identity() {
    let idp = entra_idp().await;
    let microsoft = build(&idp, ProviderKind::Microsoft, json!({}));
    let first = login(&microsoft).await.expect("login");
    let session = Session::new(first.identity, first.tokens, 3600);
    let refreshed = microsoft.refresh(&session).await.expect("refresh");
    assert_eq!(refreshed.identity.subject, format!("{TENANT_A}:oid-ada"));
    // A refreshed token about another object of the tenant is another person.
    idp.set_fault(Fault::IdTokenClaims(json!({ "oid": "oid-mallory" })));
    let session = Session::new(refreshed.identity, refreshed.tokens, 3600);
    let message = rejection(microsoft.refresh(&session).await);
    assert!(message.contains("another subject"), "{message}");
}

#[tokio::test]
async fn microsoft_logout_sends_the_login_hint() {
    let idp = entra_idp().await;
    let microsoft = build(&idp, ProviderKind::Microsoft, json!({}));
    let result = login(&microsoft).await.expect("login");
    let session = Session::new(result.identity, result.tokens, 3600);
    let url = microsoft.end_session_url(&session, "http://localhost:3000/", "s").await.expect("metadata");
    let url = Url::parse(&url.expect("end session")).expect("url");
    assert_eq!(param(&url, "logout_hint").as_deref(), Some("hint-ada"));
}

// ------------------------------------------------------------------- every provider

#[tokio::test]
async fn unverified_email_is_denied_where_a_domain_allow_list_is_set() {
    let idp = MockIdp::builder()
        .user(MockUser::new("ada").email("ada@example.com").email_verified(false))
        .user(MockUser::new("bob").email("bob@example.com").claim("email_verified", json!("true")))
        .user(MockUser::new("eve").email("eve@evil.example"))
        .login_as(Some("ada"))
        .start()
        .await
        .expect("mock idp");
    for kind in [ProviderKind::Oidc, ProviderKind::Google] {
        let provider = build(&idp, kind, json!({"allowed_email_domains": ["example.com"]}));
        idp.login_as(Some("ada"));
        let message = denial(login(&provider).await);
        assert!(message.contains("not verified"), "{kind:?}: {message}");
        idp.login_as(Some("bob"));
        login(&provider).await.expect("email_verified = \"true\" (a string) counts");
        idp.login_as(Some("eve"));
        let message = denial(login(&provider).await);
        assert!(message.contains("\"evil.example\" is not in allowed_email_domains"), "{kind:?}: {message}");
    }
}

#[tokio::test]
async fn only_members_of_an_allowed_group_sign_in() {
    let idp = MockIdp::builder()
        .user(MockUser::new("ada").claim("groups", json!(["users", "admins"])))
        .user(MockUser::new("bob").claim("groups", json!(["users"])))
        .user(MockUser::new("eve"))
        .login_as(Some("ada"))
        .start()
        .await
        .expect("mock idp");
    for kind in [ProviderKind::Oidc, ProviderKind::Google] {
        let provider = build(&idp, kind, json!({"allowed_groups": ["admins", "ops"]}));
        idp.login_as(Some("ada"));
        let result = login(&provider).await.expect("a member of admins signs in");
        assert_eq!(result.identity.claims["groups"], json!(["users", "admins"]));
        idp.login_as(Some("bob"));
        let message = denial(login(&provider).await);
        assert!(message.contains("in none of the groups allowed_groups requires: admins, ops"), "{kind:?}: {message}");
        idp.login_as(Some("eve"));
        let message = denial(login(&provider).await);
        assert!(message.contains("no groups claim"), "{kind:?}: {message}");
    }
    let open = build(&idp, ProviderKind::Oidc, json!({}));
    login(&open).await.expect("without allowed_groups, anyone signs in");
}

/// The email Microsoft's `xms_edov` verified at login is derived again at each refresh, not
/// kept: once the new ID token stops vouching for the domain, the session has no verified
/// email, and with `allowed_email_domains` the refresh ends it.
#[tokio::test]
async fn a_microsoft_email_verified_at_login_is_not_kept_by_a_refresh_that_no_longer_says_so() {
    let idp = MockIdp::builder()
        .path("/common/v2.0")
        .issuer_template("/{tenantid}/v2.0", "tid")
        .user(
            MockUser::new("edov")
                .claim("tid", json!(TENANT_A))
                .claim("oid", json!("oid-edov"))
                .claim("preferred_username", json!("ada@example.com"))
                .claim("xms_edov", json!(true)),
        )
        .login_as(Some("edov"))
        .start()
        .await
        .expect("mock idp");
    for (extra, admitted) in [(json!({}), true), (json!({"allowed_email_domains": ["example.com"]}), false)] {
        idp.clear_faults();
        let microsoft = build(&idp, ProviderKind::Microsoft, extra);
        let result = login(&microsoft).await.expect("a verified domain's address signs in");
        assert_eq!(result.identity.claims["email_verified"], true);
        let session = Session::new(result.identity, result.tokens, 3600);

        // Still vouched for: the email stays. (The mock rotates refresh tokens.)
        let refreshed = microsoft.refresh(&session).await.expect("refresh");
        assert_eq!(refreshed.identity.claims["email"], "ada@example.com");
        let session = Session::new(refreshed.identity, refreshed.tokens, 3600);

        idp.set_fault(Fault::IdTokenClaims(json!({ "xms_edov": null })));
        let refreshed = microsoft.refresh(&session).await;
        if admitted {
            let identity = refreshed.expect("refresh without allowed_email_domains").identity;
            assert!(!identity.claims.contains_key("email"), "{:?}", identity.claims);
            assert!(!identity.claims.contains_key("email_verified"), "{:?}", identity.claims);
        } else {
            let message = denial(refreshed);
            assert!(message.contains("xms_edov"), "{message}");
        }
    }
}

#[tokio::test]
async fn microsoft_email_domains_need_a_domain_microsoft_verified() {
    let member = |sub: &str, oid: &str, username: &str| {
        MockUser::new(sub)
            .claim("tid", json!(TENANT_A))
            .claim("oid", json!(oid))
            .claim("preferred_username", json!(username))
    };
    let idp = MockIdp::builder()
        .path("/common/v2.0")
        .issuer_template("/{tenantid}/v2.0", "tid")
        // A sign-in name in the allowed domain, which nothing verifies.
        .user(member("plain", "oid-1", "ada@example.com"))
        .user(member("false", "oid-2", "ada@example.com").claim("xms_edov", json!(false)))
        // Microsoft's own email claim, unverified as always.
        .user(member("mail", "oid-3", "ada@example.com").email("ada@example.com").claim("email_verified", json!(null)))
        // The domain owner is verified: the sign-in name becomes a verified email.
        .user(member("edov", "oid-4", "ada@example.com").claim("xms_edov", json!(true)))
        .user(member("edov-string", "oid-5", "ada@example.com").claim("xms_edov", json!("1")))
        .user(member("elsewhere", "oid-6", "eve@evil.example").claim("xms_edov", json!(true)))
        .login_as(Some("plain"))
        .start()
        .await
        .expect("mock idp");
    let microsoft = build(&idp, ProviderKind::Microsoft, json!({"allowed_email_domains": ["example.com"]}));
    for (user, reason) in [("plain", "has no email"), ("false", "has no email"), ("mail", "not verified")] {
        idp.login_as(Some(user));
        let message = denial(login(&microsoft).await);
        assert!(message.contains(reason) && message.contains("xms_edov"), "{user}: {message}");
    }
    for user in ["edov", "edov-string"] {
        idp.login_as(Some(user));
        let result = login(&microsoft).await.expect("a verified domain's address signs in");
        assert_eq!(result.identity.claims["email"], "ada@example.com", "{user}");
        assert_eq!(result.identity.claims["email_verified"], true, "{user}");
    }
    idp.login_as(Some("elsewhere"));
    let message = denial(login(&microsoft).await);
    assert!(message.contains("\"evil.example\" is not in allowed_email_domains"), "{message}");
}

#[tokio::test]
async fn microsoft_groups_overage_is_denied_with_the_reason() {
    // bob-sub is in too many groups: Entra sends a Graph pointer instead of `groups`.
    let idp = entra_idp().await;
    let microsoft = build(&idp, ProviderKind::Microsoft, json!({"allowed_groups": ["admins"]}));
    idp.login_as(Some("bob-sub"));
    let message = denial(login(&microsoft).await);
    assert!(message.contains("too many groups") && message.contains("cannot be checked"), "{message}");
    assert!(message.contains("groups assigned to the application"), "says the fix: {message}");
}

#[tokio::test]
async fn logout_params_reach_the_end_session_url() {
    let idp = MockIdp::builder().end_session(false).login_as(Some("alice")).start().await.expect("mock idp");
    // A Cognito-like provider: no end_session_endpoint in discovery, a logout URL that
    // wants client_id and logout_uri.
    let logout = format!("{}/logout", idp.issuer());
    let cognito = build(
        &idp,
        ProviderKind::Oidc,
        json!({"end_session_endpoint": logout,
               "logout_params": {"client_id": "cognito-app", "logout_uri": "http://localhost:3000/"}}),
    );
    let result = login(&cognito).await.expect("login");
    let session = Session::new(result.identity, result.tokens, 3600);
    let url = cognito.end_session_url(&session, "http://localhost:3000/", "s").await.expect("metadata");
    let url = Url::parse(&url.expect("the configured endpoint")).expect("url");
    assert!(url.as_str().starts_with(&format!("{logout}?")), "{url}");
    assert_eq!(param(&url, "logout_uri").as_deref(), Some("http://localhost:3000/"));
    assert_eq!(param(&url, "state").as_deref(), Some("s"));
    let client_ids: Vec<_> = url.query_pairs().filter(|(k, _)| k == "client_id").map(|(_, v)| v.into_owned()).collect();
    assert_eq!(client_ids, ["cognito-app"], "logout_params replace the parameter of the same name");
}
