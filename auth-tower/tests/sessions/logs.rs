//! Log hygiene: a whole login, refresh and logout logged at `trace` level shows no secret.

use super::*;

/// Everything the layer and its provider log at every level, through a login, a refresh and
/// a logout, holds none of: the client secret, the cookie secret, the authorization code,
/// the access tokens (before and after the refresh), the sealed session and pending cookies.
#[tokio::test]
async fn a_trace_level_log_of_a_whole_session_holds_no_secret() {
    let (logs, _guard) = capture_logs(tracing::Level::TRACE);
    let (idp, app) = refresh::short_lived(Setup::new("refresh_margin_secs = 0")).await;
    let mut browser = Browser::new(&app);

    let login = browser.get("/auth/login").await;
    let pending =
        browser.jar.iter().find(|(k, _)| k.starts_with("auth_pending_")).map(|(_, v)| v.clone()).unwrap_or_default();
    let back = browser.http.get(location(&login)).send().await.unwrap();
    let callback = location(&back);
    let code = reqwest::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let response = browser.get(&callback.replacen(&browser.origin.clone(), &browser.base.clone(), 1)).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let session = browser.jar.get("auth_session").cloned().unwrap_or_default();
    let first_token = browser.text("/token").await;
    idp.set_access_token_ttl(Duration::from_secs(3600));
    refresh::until_expired().await;
    let second_token = browser.text("/token").await;
    assert_ne!(first_token, second_token, "refreshed");
    let refreshed = browser.jar.get("auth_session").cloned().unwrap_or_default();
    browser.send(reqwest::Method::POST, "/auth/logout", &[]).await;
    assert!(!browser.logged_in().await);

    let text = logs.text();
    assert!(text.contains("auth.callback") && text.contains("auth.refresh"), "the log was captured: {}", text.len());
    for (what, secret) in [
        ("client secret", idp.client_secret().to_owned()),
        ("cookie secret", SECRET.to_owned()),
        ("authorization code", code),
        ("pending cookie", pending),
        ("access token", first_token),
        ("refreshed access token", second_token),
        ("session cookie", session),
        ("refreshed session cookie", refreshed),
    ] {
        assert!(secret.len() >= 8, "{what} was seen by the test: {secret:?}");
        assert!(!text.contains(&secret), "the log shows the {what}");
    }
}
