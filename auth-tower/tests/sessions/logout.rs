//! RP-initiated and back-channel logout.

use super::*;

// ------------------------------------------------------------------------- logout

#[tokio::test]
async fn rp_initiated_logout_sends_every_parameter() {
    let idp = idp().await;
    let app = Setup::new("expose_tokens = \"id\"").start(&idp).await;
    let mut browser = Browser::new(&app);
    browser.login().await;
    let tokens: Value = browser.get("/tokens").await.json().await.unwrap();
    let logout = browser.send(reqwest::Method::POST, "/auth/logout", &[("origin", app.base.as_str())]).await;
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    assert!(browser.session_cookie_deleted());
    let end_session = reqwest::Url::parse(&location(&logout)).unwrap();
    assert_eq!(end_session.as_str().split('?').next(), Some(format!("{}/end_session", idp.issuer()).as_str()));
    let params: BTreeMap<String, String> = end_session.query_pairs().into_owned().collect();
    assert_eq!(params.get("id_token_hint").map(String::as_str), tokens["id"].as_str());
    assert_eq!(params["client_id"], idp.client_id());
    assert_eq!(params["post_logout_redirect_uri"], format!("{}/", app.base));
    assert!(params["state"].len() >= 32, "a random state");
    let back = browser.http.get(end_session).send().await.unwrap();
    assert!(location(&back).starts_with(&format!("{}/?state=", app.base)));
    assert_eq!(idp.last_end_session_params().unwrap()["client_id"], idp.client_id());
    assert!(!browser.logged_in().await);
}

#[tokio::test]
async fn logout_is_local_when_the_provider_has_no_end_session_endpoint() {
    let idp = MockIdp::builder().login_as(Some("alice")).end_session(false).start().await.unwrap();
    let app = Setup::new("").start(&idp).await;
    let mut browser = Browser::new(&app);
    browser.login().await;
    let logout = browser.send(reqwest::Method::POST, "/auth/logout", &[]).await;
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&logout), "/");
    assert!(browser.session_cookie_deleted());
    assert!(!browser.logged_in().await);
    assert_eq!(idp.hits().end_session, 0);
}

// ---------------------------------------------------------------- back-channel logout

#[tokio::test]
async fn backchannel_logout_ends_the_named_sessions() {
    let idp = MockIdp::builder().login_as(Some("alice")).start().await.unwrap();
    let app = Setup::new("").memory().start(&idp).await;
    let mut laptop = Browser::new(&app);
    laptop.login().await;
    let mut phone = Browser::new(&app);
    phone.login().await;
    idp.login_as(Some("bob"));
    let mut bob = Browser::new(&app);
    bob.login().await;
    assert_eq!(app.sessions(), 3);

    // One provider session (sid): only that browser.
    let sid = laptop.me().await["sid"].as_str().unwrap().to_owned();
    assert_ne!(Some(sid.as_str()), phone.me().await["sid"].as_str(), "one sid per login");
    let answer = idp.backchannel_logout(&app.backchannel_uri(), &LogoutToken::for_session(&sid)).await.unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(!laptop.logged_in().await, "the next request is anonymous");
    assert!(phone.logged_in().await);

    // A subject: every session of that person.
    let answer = idp.backchannel_logout(&app.backchannel_uri(), &LogoutToken::for_subject("alice")).await.unwrap();
    assert_eq!(answer.status, 200);
    assert!(!phone.logged_in().await);
    assert!(bob.logged_in().await);
    assert_eq!(app.sessions(), 1);

    // Nothing to end is still a success; the answer is never cached.
    let response = reqwest::Client::new()
        .post(app.backchannel_uri())
        .form(&[("logout_token", idp.logout_token(&LogoutToken::for_subject("nobody")))])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn invalid_logout_tokens_are_refused_and_revoke_nothing() {
    let idp = idp().await;
    let app = Setup::new("").memory().start(&idp).await;
    let mut browser = Browser::new(&app);
    browser.login().await;
    let sid = browser.me().await["sid"].as_str().unwrap().to_owned();
    let valid = || LogoutToken::for_subject("alice").sid(&sid);
    let invalid = [
        ("alg none", valid().alg_none()),
        ("HS256 keyed with the public key", valid().hs256_with_public_key()),
        ("no events", valid().without_events()),
        ("another event", valid().wrong_event()),
        ("a nonce", valid().with_nonce()),
        ("another audience", valid().wrong_audience()),
        ("another issuer", valid().wrong_issuer()),
        ("neither sub nor sid", valid().claim("sub", Value::Null).claim("sid", Value::Null)),
        ("expired", valid().claim("exp", json!(auth_core::unix_now() - 3600))),
        ("no iat", valid().claim("iat", Value::Null)),
    ];
    for (what, token) in invalid {
        let answer = idp.backchannel_logout(&app.backchannel_uri(), &token).await.unwrap();
        assert_eq!(answer.status, 400, "{what}: {}", answer.body);
        let body: Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(body["error"], "invalid_request", "{what}");
        assert_eq!(app.sessions(), 1, "{what}: nothing revoked");
        assert!(browser.logged_in().await, "{what}");
    }
    // An ID token (signed by the provider, no events) is not a logout token either.
    let id_token = idp.sign_id_token(json!({
        "iss": idp.issuer(), "aud": idp.client_id(), "sub": "alice", "sid": sid,
        "iat": auth_core::unix_now(), "exp": auth_core::unix_now() + 60, "nonce": "n",
    }));
    let answer = idp.send_logout_token(&app.backchannel_uri(), &id_token).await.unwrap();
    assert_eq!(answer.status, 400);
    for garbage in ["", "not.a.jwt", "a.b"] {
        assert_eq!(idp.send_logout_token(&app.backchannel_uri(), garbage).await.unwrap().status, 400);
    }
    assert!(browser.logged_in().await);

    // Malformed requests.
    let http = reqwest::Client::new();
    let get = http.get(app.backchannel_uri()).send().await.unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    let token = idp.logout_token(&valid());
    let json_body = http.post(app.backchannel_uri()).json(&json!({"logout_token": token})).send().await.unwrap();
    assert_eq!(json_body.status(), StatusCode::BAD_REQUEST);
    let twice = http.post(app.backchannel_uri()).form(&[("logout_token", &token), ("logout_token", &token)]);
    assert_eq!(twice.send().await.unwrap().status(), StatusCode::BAD_REQUEST);
    let unknown = http.post(format!("{}?provider=nope", app.backchannel_uri())).form(&[("logout_token", &token)]);
    assert_eq!(unknown.send().await.unwrap().status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.sessions(), 1);

    // The valid one, by provider name.
    let named = http.post(format!("{}?provider=default", app.backchannel_uri())).form(&[("logout_token", &token)]);
    assert_eq!(named.send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(app.sessions(), 0);
    assert!(!browser.logged_in().await);
}

#[tokio::test]
async fn backchannel_logout_with_the_cookie_store_is_not_implemented() {
    let idp = idp().await;
    let app = Setup::new("").start(&idp).await;
    let mut browser = Browser::new(&app);
    browser.login().await;
    let answer = idp.backchannel_logout(&app.backchannel_uri(), &LogoutToken::for_subject("alice")).await.unwrap();
    assert_eq!(answer.status, 501, "{}", answer.body);
    assert!(answer.body.contains("session_store"), "says what to configure: {}", answer.body);
    assert!(browser.logged_in().await);
}

/// A logout token that ended sessions is refused when replayed (it would end the sessions
/// its subject started since); a token whose revocation failed is not remembered, so the
/// provider's retry goes through.
#[tokio::test]
async fn a_replayed_logout_token_is_refused_but_a_retry_after_a_failure_is_not() {
    let idp = MockIdp::builder().login_as(Some("alice")).start().await.unwrap();
    let app = Setup::new("").memory().start(&idp).await;
    let mut first = Browser::new(&app);
    first.login().await;
    let token = idp.logout_token(&LogoutToken::for_subject("alice"));
    let post = |token: String| {
        let uri = app.backchannel_uri();
        async move { reqwest::Client::new().post(uri).form(&[("logout_token", token)]).send().await.unwrap() }
    };
    assert_eq!(post(token.clone()).await.status(), StatusCode::OK);
    assert!(!first.logged_in().await);

    // Alice signs in again; the captured token, replayed, must not end the new session.
    let mut again = Browser::new(&app);
    again.login().await;
    let replay = post(token).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert!(replay.text().await.unwrap().contains("already used"));
    assert!(again.logged_in().await, "the replay ended nothing");

    // The cookie store cannot revoke (501): the jti is not remembered, so the same token,
    // delivered to an app that can, still works.
    let cookie_app = Setup::new("").start(&idp).await;
    let token = idp.logout_token(&LogoutToken::for_subject("alice"));
    let refused = reqwest::Client::new()
        .post(cookie_app.backchannel_uri())
        .form(&[("logout_token", token.clone())])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::NOT_IMPLEMENTED);
    let again_refused = reqwest::Client::new()
        .post(cookie_app.backchannel_uri())
        .form(&[("logout_token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(again_refused.status(), StatusCode::NOT_IMPLEMENTED, "not taken for a replay");
}

/// Found by the soak: a refresh wrote a new cookie just before the logout, and the logout
/// came with the cookie before it (requests race). Every cookie of the signed-out login is
/// refused by this instance, also the newer one (before, it was served from the cache).
#[tokio::test]
async fn a_logout_ends_every_cookie_of_its_login() {
    let (_idp, app) = super::refresh::short_lived(Setup::new("refresh_margin_secs = 0")).await;
    let mut browser = Browser::new(&app);
    browser.login().await;
    let before = browser.jar.clone();
    super::refresh::until_expired().await;
    assert!(browser.logged_in().await);
    assert!(browser.session_cookie_set(), "a refresh wrote a new cookie");
    let refreshed = browser.jar.clone();
    assert_ne!(before, refreshed);
    assert!(Browser::with_jar(&app, &refreshed).logged_in().await, "the new cookie is served (and cached)");

    // The logout comes with the older cookie.
    browser.jar = before.clone();
    let logout = browser.send(reqwest::Method::POST, "/auth/logout", &[("origin", app.base.as_str())]).await;
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    for jar in [before, refreshed] {
        assert!(!Browser::with_jar(&app, &jar).logged_in().await, "a cookie of the signed-out login opened");
    }
    // A new login of the same person is a new login.
    let mut again = Browser::new(&app);
    again.login().await;
    assert!(again.logged_in().await);
}
