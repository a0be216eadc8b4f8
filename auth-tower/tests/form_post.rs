//! `response_mode = "form_post"` through the whole layer: an axum app with
//! `AuthLayer::from_config`, the real `OidcProvider`, `MockIdp` on loopback (which answers
//! with a page that posts the response), and HTTP clients playing the browser.
//!
//! A browser posts the IdP's form cross-site, without the `SameSite=Lax` pending-login
//! cookie: the callback answers with a page of its own that posts the same fields again,
//! now with the cookie (the tests post it as a browser would). Every refusal is a clear
//! 4xx page, never a 500.

mod support;

use auth_testkit::{Fault, MockIdp, MockIdpBuilder};
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use serde_json::json;
use support::{App, Browser};

async fn app_with(idp: &MockIdp, extra: &str) -> App {
    support::serve_for(idp, extra).await
}

async fn idp(builder: MockIdpBuilder) -> MockIdp {
    support::idp_for_alice(builder).await
}

const FORM_POST: &str = "response_mode = \"form_post\"\n";

/// A page's one form: its `action` and its hidden fields, unescaped.
#[derive(Debug)]
struct Form {
    action: String,
    fields: Vec<(String, String)>,
}

impl Form {
    fn parse(html: &str) -> Self {
        let attr = |tag: &str, name: &str| {
            let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
            tag[start..].split('"').next().map(unescape)
        };
        let form_tag = html.split("<form").nth(1).and_then(|t| t.split('>').next()).expect("a form");
        let action = attr(form_tag, "action").expect("an action");
        let fields = html
            .split("<input")
            .skip(1)
            .filter_map(|t| t.split('>').next())
            .filter_map(|tag| Some((attr(tag, "name")?, attr(tag, "value")?)))
            .collect();
        Self { action, fields }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn without(mut self, name: &str) -> Self {
        self.fields.retain(|(n, _)| n != name);
        self
    }

    fn with(mut self, name: &str, value: &str) -> Self {
        self.fields.retain(|(n, _)| n != name);
        self.fields.push((name.into(), value.into()));
        self
    }
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// Starts a login and returns the IdP's auto-submitting form (the response to post).
async fn idp_form(browser: &Browser, app: &App) -> Form {
    let login = browser.http.get(format!("{}/auth/login?return_to=/private", app.base)).send().await.expect("login");
    assert_eq!(login.status(), StatusCode::FOUND);
    let authorize = login.headers()[LOCATION].to_str().expect("location").to_owned();
    let page = browser.http.get(&authorize).send().await.expect("authorize");
    assert_eq!(page.status(), StatusCode::OK, "the IdP answers with a page that posts the response");
    Form::parse(&page.text().await.expect("body"))
}

/// POSTs `form` to `url` as a browser does: `cross_site` from the IdP's page (a client
/// without the app's cookies, as `SameSite=Lax` leaves them out), else from the app's own
/// page with the browser's cookies.
async fn post(browser: &Browser, url: &str, form: &Form, cross_site: bool) -> reqwest::Response {
    let client = if cross_site { reqwest::Client::new() } else { browser.http.clone() };
    let fetch_site = if cross_site { "cross-site" } else { "same-origin" };
    client.post(url).header("sec-fetch-site", fetch_site).form(&form.fields).send().await.expect("post")
}

/// The bounce: the cross-site POST's answer, a page of the app that posts the same fields.
async fn bounce(browser: &Browser, app: &App, form: &Form) -> Form {
    let page = post(browser, &form.action, form, true).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()[CACHE_CONTROL], "no-store");
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    let csp = page.headers()["content-security-policy"].to_str().expect("csp").to_owned();
    assert!(csp.contains("form-action 'self'") && csp.contains("script-src 'nonce-"), "{csp}");
    assert!(page.headers().get("set-cookie").is_none(), "the bounce touches no cookie");
    let again = Form::parse(&page.text().await.expect("body"));
    assert_eq!(again.action, "/oauth2callback");
    assert_eq!(again.get("auth_bounced"), Some("1"));
    Form { action: format!("{}{}", app.base, again.action), fields: again.fields }
}

async fn text(response: reqwest::Response) -> (StatusCode, String) {
    (response.status(), response.text().await.expect("body"))
}

#[tokio::test]
async fn a_posted_response_bounces_once_and_signs_in() {
    let idp = idp(MockIdp::builder()).await;
    let app = app_with(&idp, FORM_POST).await;
    let browser = Browser::new();
    let form = idp_form(&browser, &app).await;
    assert_eq!(idp.last_authorize_params().expect("authorize")["response_mode"], "form_post");
    assert_eq!(form.action, format!("{}/oauth2callback", app.base));
    assert!(form.get("code").is_some() && form.get("state").is_some() && form.get("iss").is_some(), "{form:?}");

    let again = bounce(&browser, &app, &form).await;
    let signed_in = post(&browser, &again.action, &again, false).await;
    assert_eq!(signed_in.status(), StatusCode::FOUND);
    assert_eq!(signed_in.headers()[LOCATION], "/private");
    assert_eq!(browser.me(&app).await["sub"], "alice");

    // The pending login was single use: the same response again is an expired login.
    let (status, html) = text(post(&browser, &again.action, &again, false).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("Sign-in expired"), "{html}");
}

#[tokio::test]
async fn a_same_site_post_with_the_cookie_needs_no_bounce_and_par_carries_the_mode() {
    let idp = idp(MockIdp::builder()).await;
    let app = app_with(&idp, &format!("{FORM_POST}use_par = true\n")).await;
    let browser = Browser::new();
    let form = idp_form(&browser, &app).await;
    assert_eq!(idp.last_par_params().expect("pushed")["response_mode"], "form_post");
    let signed_in = post(&browser, &form.action, &form, false).await;
    assert_eq!(signed_in.status(), StatusCode::FOUND);
    assert_eq!(browser.me(&app).await["sub"], "alice");
}

#[tokio::test]
async fn posted_responses_that_do_not_verify_end_on_clear_pages() {
    let idp = idp(MockIdp::builder()).await;
    let app = app_with(&idp, FORM_POST).await;
    let callback = format!("{}/oauth2callback", app.base);

    // Another state than the login's: no pending login matches, after one bounce.
    let browser = Browser::new();
    let form = idp_form(&browser, &app).await.with("state", "forged");
    let again = bounce(&browser, &app, &form).await;
    let (status, html) = text(post(&browser, &again.action, &again, false).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("Sign-in expired"), "{html}");

    // Without the iss this provider promises (RFC 9207).
    let browser = Browser::new();
    let form = idp_form(&browser, &app).await.without("iss");
    let (status, html) = text(post(&browser, &callback, &form, false).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert_eq!(browser.me(&app).await["is_logged_in"], false);

    // Another issuer's iss (a mix-up).
    let browser = Browser::new();
    let form = idp_form(&browser, &app).await.with("iss", "https://evil.example");
    assert_eq!(post(&browser, &callback, &form, false).await.status(), StatusCode::BAD_REQUEST);

    // A repeated parameter: refused before any bounce.
    let browser = Browser::new();
    let mut form = idp_form(&browser, &app).await;
    form.fields.push(("code".into(), "other".into()));
    let (status, html) = text(post(&browser, &callback, &form, true).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!html.contains("<form"), "no bounce: {html}");
    let (status, html) = text(post(&browser, &callback, &form, false).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("repeats a parameter"), "{html}");

    // A loop: a response that went through the bounce and still has no cookie.
    let form = form.without("code").with("code", "c").with("auth_bounced", "1");
    let (status, html) = text(post(&browser, &callback, &form, true).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("Sign-in expired"), "{html}");
}

#[tokio::test]
async fn an_error_posted_by_the_provider_is_shown_after_the_bounce() {
    let idp = idp(MockIdp::builder()).await;
    let app = app_with(&idp, FORM_POST).await;
    let browser = Browser::new();
    idp.set_fault(Fault::AccessDenied);
    let form = idp_form(&browser, &app).await;
    assert_eq!(form.get("error"), Some("access_denied"));
    let again = bounce(&browser, &app, &form).await;
    let response = post(&browser, &again.action, &again, false).await;
    let cleared = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().is_ok_and(|c| c.starts_with("auth_pending_") && c.contains("Max-Age=0")));
    let (status, html) = text(response).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("access_denied") && html.contains("The user denied access"), "{html}");
    assert!(cleared, "the login's pending cookie is cleared");
}

#[tokio::test]
async fn bodies_that_are_not_small_forms_are_refused() {
    let idp = idp(MockIdp::builder()).await;
    let app = app_with(&idp, FORM_POST).await;
    let callback = format!("{}/oauth2callback", app.base);
    let client = reqwest::Client::new();
    let json = client.post(&callback).header(CONTENT_TYPE, "application/json").body("{\"code\":\"c\"}");
    let (status, html) = text(json.send().await.expect("post")).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(html.contains("application/x-www-form-urlencoded"), "{html}");
    let big = format!("state=s&code={}", "a".repeat(64 * 1024));
    let oversized = client.post(&callback).header(CONTENT_TYPE, "application/x-www-form-urlencoded").body(big);
    assert_eq!(oversized.send().await.expect("post").status(), StatusCode::PAYLOAD_TOO_LARGE);
    let put = client.put(&callback).send().await.expect("put");
    assert_eq!(put.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(put.headers()["allow"], "GET, POST");
}

#[tokio::test]
async fn each_login_takes_its_response_only_the_way_it_asked_for() {
    let idp = idp(MockIdp::builder()).await;
    // Only query-mode providers: the callback is GET only, as before.
    let app = app_with(&idp, "").await;
    let browser = Browser::new();
    let posted = browser.http.post(format!("{}/oauth2callback", app.base)).form(&[("state", "s")]).send().await;
    let posted = posted.expect("post");
    assert_eq!(posted.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(posted.headers()["allow"], "GET");
    // The query response of a form_post login (a provider that ignored the mode) is refused.
    let section = format!(
        "[auth.posted]\n{FORM_POST}client_id = \"mock-client\"\nclient_secret = \"mock-secret\"\n\
         server_metadata_url = \"{}\"\n",
        idp.metadata_url()
    );
    let form_app = app_with(&idp, &section).await;
    let browser = Browser::new();
    let form = idp_form_for(&browser, &form_app, "posted").await;
    let query: Vec<String> = form.fields.iter().map(|(k, v)| format!("{k}={}", urlencode(v))).collect();
    let (status, html) =
        text(browser.http.get(format!("{}?{}", form.action, query.join("&"))).send().await.expect("get")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("expects it to be posted"), "{html}");
    // A query-mode login (the default section) whose response is posted is refused too.
    let browser = Browser::new();
    let url = browser.callback_url(&form_app, "?provider=default").await;
    let fields: Vec<(String, String)> =
        reqwest::Url::parse(&url).expect("url").query_pairs().map(|(k, v)| (k.into(), v.into())).collect();
    let form = Form { action: format!("{}/oauth2callback", form_app.base), fields };
    let (status, html) = text(post(&browser, &form.action, &form, false).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("expects it in the address"), "{html}");
}

async fn idp_form_for(browser: &Browser, app: &App, provider: &str) -> Form {
    let login = browser.http.get(format!("{}/auth/login?provider={provider}", app.base)).send().await.expect("login");
    let authorize = login.headers()[LOCATION].to_str().expect("location").to_owned();
    let page = browser.http.get(&authorize).send().await.expect("authorize");
    Form::parse(&page.text().await.expect("body"))
}

fn urlencode(value: &str) -> String {
    reqwest::Url::parse_with_params("http://x/", &[("v", value)])
        .expect("url")
        .query()
        .unwrap_or_default()
        .trim_start_matches("v=")
        .to_owned()
}

#[tokio::test]
async fn a_provider_that_does_not_list_form_post_fails_the_login_with_a_page() {
    let idp = idp(MockIdp::builder()).await;
    idp.set_fault(Fault::DiscoveryExtra(json!({"response_modes_supported": ["query"]})));
    let app = app_with(&idp, FORM_POST).await;
    let browser = Browser::new();
    let (status, html) = text(browser.http.get(format!("{}/auth/login", app.base)).send().await.expect("login")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{html}");
    assert_eq!(idp.hits().authorize, 0);
}
