//! Several providers at once through the whole stack: a Streamlit config with
//! `[auth.google]`, `[auth.microsoft]` and a generic section, each pointing at a `MockIdp`
//! shaped like that provider; the chooser page; per-provider admission and logout.

mod support;

use auth_core::ProviderKind;
use auth_testkit::{Fault, MockIdp, MockUser};
use auth_tower::{AuthConfig, AuthLayer};
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::json;
use support::{App, Browser, SECRET, bind, port_of, serve};

const CONTOSO: &str = "c0c0c0c0-1111-4222-8333-444444444444";
const FABRIKAM: &str = "fafafafa-1111-4222-8333-444444444444";

/// Google-shaped: users of a Workspace domain carry `hd`.
async fn google_idp() -> MockIdp {
    MockIdp::builder()
        .user(MockUser::new("g-grace").email("grace@example.com").name("Grace").claim("hd", json!("example.com")))
        .user(MockUser::new("g-mallory").email("mallory@elsewhere.example").name("Mallory"))
        .login_as(Some("g-grace"))
        .start()
        .await
        .expect("google mock")
}

/// Entra ID-shaped, on the `common` endpoint: discovery names `{tenantid}`.
async fn entra_idp() -> MockIdp {
    let member = |sub: &str, tenant: &str, oid: &str, upn: &str| {
        MockUser::new(sub)
            .name(upn)
            .claim("tid", json!(tenant))
            .claim("oid", json!(oid))
            .claim("preferred_username", json!(upn))
    };
    MockIdp::builder()
        .path("/common/v2.0")
        .issuer_template("/{tenantid}/v2.0", "tid")
        .user(member("m-kim", CONTOSO, "oid-kim", "kim@contoso.example"))
        .user(member("m-lee", FABRIKAM, "oid-lee", "lee@fabrikam.example"))
        .login_as(Some("m-kim"))
        .start()
        .await
        .expect("entra mock")
}

struct Setup {
    app: App,
    google: MockIdp,
    entra: MockIdp,
    corp: MockIdp,
}

/// The app with three providers: `google` and `microsoft` (kinds from the section names,
/// metadata URLs pointing at the mocks) and `corp`, generic with a display name.
async fn setup(google_keys: &str, microsoft_keys: &str) -> Setup {
    let (google, entra) = (google_idp().await, entra_idp().await);
    let corp = MockIdp::builder().login_as(Some("alice")).start().await.expect("corp mock");
    let listener = bind().await;
    let port = port_of(&listener);
    let section = |name: &str, idp: &MockIdp, keys: &str| {
        format!(
            "[auth.{name}]\nclient_id = \"{}\"\nclient_secret = \"{}\"\nserver_metadata_url = \"{}\"\n{keys}\n",
            idp.client_id(),
            idp.client_secret(),
            idp.metadata_url()
        )
    };
    let text = format!(
        "[auth]\nredirect_uri = \"http://127.0.0.1:{port}/oauth2callback\"\ncookie_secret = \"{SECRET}\"\n{}{}{}",
        section("google", &google, google_keys),
        section("microsoft", &entra, microsoft_keys),
        section("corp", &corp, "display_name = \"Corp SSO\"\nlogout_params = { audience = \"corp-app\" }"),
    );
    Setup { app: serve(listener, &text).await, google, entra, corp }
}

/// The `href`s of a page's links, unescaped.
fn links(html: &str) -> Vec<String> {
    html.split("href=\"").skip(1).filter_map(|rest| rest.split('"').next()).map(|h| h.replace("&amp;", "&")).collect()
}

#[tokio::test]
async fn streamlit_config_with_google_and_microsoft_builds_without_network() {
    // Exactly what Streamlit's docs show, with the real metadata URLs: building the layer
    // reaches no network (discovery waits for the first login).
    let text = format!(
        r#"
[auth]
redirect_uri = "http://localhost:8501/oauth2callback"
cookie_secret = "{SECRET}"

[auth.google]
client_id = "1234.apps.googleusercontent.com"
client_secret = "google-secret"
server_metadata_url = "https://accounts.google.com/.well-known/openid-configuration"

[auth.microsoft]
client_id = "00000000-0000-0000-0000-000000000000"
client_secret = "microsoft-secret"
server_metadata_url = "https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration"
"#
    );
    let config = AuthConfig::from_toml_str(&text, "secrets.toml").expect("Streamlit's config reads unchanged");
    assert_eq!(config.providers["google"].kind, ProviderKind::Google);
    assert_eq!(config.providers["microsoft"].kind, ProviderKind::Microsoft);
    let providers = auth_providers::from_config(&config).expect("providers");
    let described: Vec<String> = providers.iter().map(|p| format!("{p:?}")).collect();
    assert!(described[0].contains("kind: Google") && described[1].contains("kind: Microsoft"), "{described:?}");
    // `from_config` is synchronous: it cannot touch the network at startup.
    let layer = AuthLayer::from_config(config).expect("the layer builds");
    assert!(format!("{layer:?}").contains("providers: [\"google\", \"microsoft\"]"), "{layer:?}");
}

#[tokio::test]
async fn chooser_lists_every_provider_and_each_link_signs_in_with_it() {
    let s = setup("", "").await;
    let chooser = reqwest::get(format!("{}/auth/login?return_to=/who", s.app.base)).await.expect("chooser");
    assert_eq!(chooser.status(), StatusCode::OK);
    let html = chooser.text().await.expect("body");
    assert!(html.contains("<html lang=\"en\">") && html.contains("<h1>Sign in</h1>"), "{html}");
    for name in ["Google", "Microsoft", "Corp SSO"] {
        assert!(html.contains(&format!("\">{name}</a></li>")), "{name} is listed: {html}");
    }
    let hrefs = links(&html);
    assert_eq!(hrefs.len(), 3, "{hrefs:?}");

    for (href, provider, sub) in [
        (&hrefs[0], "corp", "alice".to_owned()),
        (&hrefs[1], "google", "g-grace".to_owned()),
        (&hrefs[2], "microsoft", format!("{CONTOSO}:oid-kim")),
    ] {
        assert!(href.starts_with(&format!("/auth/login?provider={provider}&")), "{href}");
        let browser = Browser::new();
        let (page, url) = browser.follow(&format!("{}{href}", s.app.base)).await;
        assert_eq!(page.status(), StatusCode::OK, "{provider}");
        assert_eq!(url, format!("{}/who", s.app.base), "back to return_to");
        assert_eq!(browser.who(&s.app).await, json!({"provider": provider, "sub": sub}));
    }
    for idp in [&s.google, &s.entra, &s.corp] {
        assert_eq!(idp.hits().token, 1, "each link started its own provider's flow");
    }
    let microsoft = Browser::new();
    microsoft.log_in(&s.app, "?provider=microsoft").await;
    let me = microsoft.me(&s.app).await;
    assert_eq!(me["preferred_username"], "kim@contoso.example");
    assert_eq!(me["email"], serde_json::Value::Null, "preferred_username is no verified email (no xms_edov)");
    assert_eq!(me["iss"], format!("http://127.0.0.1:{}/{CONTOSO}/v2.0", s.entra.port()));
}

#[tokio::test]
async fn unknown_provider_is_a_400_page_linking_the_real_ones() {
    let s = setup("", "").await;
    let response = reqwest::get(format!("{}/auth/login?provider=github", s.app.base)).await.expect("login");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let html = response.text().await.expect("body");
    assert!(html.contains("no sign-in provider named &quot;github&quot;"), "{html}");
    assert!(html.contains("corp, google, microsoft"), "{html}");
    assert_eq!(links(&html).len(), 3);
}

#[tokio::test]
async fn admission_rules_end_on_a_403_page_and_leave_nobody_signed_in() {
    let s = setup("hosted_domains = [\"example.com\"]", &format!("allowed_tenants = [\"{CONTOSO}\"]")).await;
    let grace = Browser::new();
    grace.log_in(&s.app, "?provider=google").await;
    assert_eq!(grace.who(&s.app).await["provider"], "google", "a Workspace account of the domain");
    assert_eq!(s.google.last_authorize_params().expect("params")["hd"], "example.com");

    s.google.login_as(Some("g-mallory"));
    s.entra.login_as(Some("m-lee"));
    for provider in ["google", "microsoft"] {
        let browser = Browser::new();
        let (page, _) = browser.log_in(&s.app, &format!("?provider={provider}")).await;
        assert_eq!(page.status(), StatusCode::FORBIDDEN, "{provider}");
        assert!(page.text().await.expect("body").contains("not allowed to sign in"), "{provider}");
        assert_eq!(browser.me(&s.app).await["is_logged_in"], false, "{provider}");
    }
}

#[tokio::test]
async fn microsoft_token_from_another_tenant_than_its_tid_is_refused() {
    let s = setup("", "").await;
    let forged_iss = format!("http://127.0.0.1:{}/{FABRIKAM}/v2.0", s.entra.port());
    s.entra.set_fault(Fault::IdTokenClaims(json!({ "iss": forged_iss })));
    let browser = Browser::new();
    let (page, _) = browser.log_in(&s.app, "?provider=microsoft").await;
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    assert_eq!(browser.me(&s.app).await["is_logged_in"], false);
}

#[tokio::test]
async fn logout_goes_to_the_provider_of_the_session_with_its_parameters() {
    let s = setup("", "").await;
    let browser = Browser::new();
    browser.log_in(&s.app, "?provider=corp").await;
    let logout = browser.http.post(format!("{}/auth/logout", s.app.base)).send().await.expect("logout");
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    let location = logout.headers()[LOCATION].to_str().expect("location").to_owned();
    assert!(location.starts_with(&format!("{}/end_session?", s.corp.issuer())), "{location}");
    assert!(location.contains("audience=corp-app"), "logout_params are sent: {location}");
}
