//! End-to-end: the `axum-basic` and `hyper-basic` examples, each configured only by its
//! config file, against a real, OpenID Certified provider (panva's `oidc-provider`,
//! `e2e/op/provider.mjs`). Every scenario runs against both.
//!
//! A plain HTTP client (cookie jar, redirects followed by hand so each hop is checked)
//! plays the browser: login form, consent form, callback, `/me`, RP-initiated logout.
//!
//! Needs Node.js and the provider's packages; without them these tests FAIL (never skip):
//!
//! ```text
//! apt-get install -y nodejs npm     # Node 20 or newer
//! npm ci --prefix e2e/op
//! cargo test -p auth-examples --test certified_op
//! ```
//!
//! On failure the message names the step, the request, the status, a snippet of the body,
//! the last hops, and the tail of both processes' logs. `CERTIFIED_OP_TRACE=1` prints
//! every hop as it happens (run with `--nocapture`).

mod support;

use std::fmt::Write as _;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderValue, LOCATION, ORIGIN};
use serde_json::Value;
use support::{CLIENT_ID, CLIENT_SECRET, Example, OpOptions, Stack, decode_entities, snippet};
use url::Url;

const MAX_HOPS: usize = 15;

// ---------------------------------------------------------------------------------------
// The scenarios
// ---------------------------------------------------------------------------------------

/// Login (login form + consent form) -> claims from userinfo in `/me` -> RP-initiated
/// logout confirmed at the OP -> anonymous again, and the OP session is gone too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_basic_login_consent_userinfo_and_rp_initiated_logout() {
    login_consent_userinfo_and_rp_initiated_logout(Example::AxumBasic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hyper_basic_login_consent_userinfo_and_rp_initiated_logout() {
    login_consent_userinfo_and_rp_initiated_logout(Example::HyperBasic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_basic_replayed_callback_is_refused() {
    replayed_callback_is_refused(Example::AxumBasic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hyper_basic_replayed_callback_is_refused() {
    replayed_callback_is_refused(Example::HyperBasic).await;
}

async fn login_consent_userinfo_and_rp_initiated_logout(example: Example) {
    let mut h = Harness::start("login-logout", example).await;

    // Anonymous.
    let me = h.get_json("anonymous /me", h.app("/me")).await;
    h.check("anonymous /me", me["is_logged_in"] == Value::Bool(false), || {
        format!("expected is_logged_in false, got {me}")
    });

    // A page that needs a login sends an anonymous visitor to log in and come back.
    let page = h.get("anonymous /private", h.app("/private?x=1")).await;
    h.expect_status("anonymous /private", &page, StatusCode::FOUND);
    let login = h.location("anonymous /private", &page);
    let want = h.app("/auth/login?return_to=%2Fprivate%3Fx%3D1");
    h.check("anonymous /private", login == want, || format!("expected a redirect to {want}, got {login}"));

    // Full login; the app then sends us to return_to.
    let callback = h.login_at_op("alice", "/me").await;
    let page = h.get("callback", callback).await;
    let page = h.follow_app("callback", page).await;
    h.expect_status("after callback", &page, StatusCode::OK);
    let landed = page.url.path().to_owned();
    h.check("after callback", landed == "/me", || format!("expected to land on return_to /me, landed on {}", page.url));
    let me = h.parse_json("after callback", &page);
    h.check("logged-in /me", me["is_logged_in"] == Value::Bool(true), || format!("expected is_logged_in true: {me}"));
    h.check("logged-in /me", me["sub"] == "alice", || format!("expected sub \"alice\": {me}"));
    // Not in the (minimal) ID token: these prove the userinfo call.
    h.check("logged-in /me", me["email"] == "alice@example.test", || {
        format!("expected email \"alice@example.test\" (from userinfo): {me}")
    });
    h.check("logged-in /me", me["name"] == "Alice", || format!("expected name \"Alice\" (from userinfo): {me}"));

    let page = h.get("logged-in /private", h.app("/private?x=1")).await;
    h.expect_status("logged-in /private", &page, StatusCode::OK);
    h.check("logged-in /private", page.body.contains("Welcome back, Alice!"), || {
        "expected \"Welcome back, Alice!\" on /private when logged in".to_owned()
    });

    let page = h.get("home", h.app("/")).await;
    h.expect_status("home", &page, StatusCode::OK);
    h.check("home", page.body.contains("Welcome back") && page.body.contains("Alice"), || {
        "expected \"Welcome back, Alice!\" on / when logged in".to_owned()
    });

    // RP-initiated logout.
    let origin = h.app_origin();
    let page = h.post_form("logout", h.app("/auth/logout"), &[], Some(&origin)).await;
    h.expect_status("logout", &page, StatusCode::SEE_OTHER);
    let end_session = h.location("logout", &page);
    let endpoint = h.op_endpoint("end_session_endpoint");
    h.check("logout", without_query(&end_session) == endpoint, || {
        format!("expected a redirect to the OP's end_session_endpoint {endpoint}, got {end_session}")
    });
    let params = query(&end_session);
    for key in ["id_token_hint", "post_logout_redirect_uri"] {
        h.check("logout", params.iter().any(|(k, _)| k == key), || {
            format!("end_session URL lacks {key}: {end_session}")
        });
    }
    let page = h.get("end_session", end_session).await;
    let page = h.follow_op("end_session", page).await;
    h.expect_status("logout confirmation page", &page, StatusCode::OK);
    let form = h.form("logout confirmation page", &page, |f| f.has_field("xsrf"));
    // "Yes, sign me out" is a `<button form="op.logoutForm" name="logout" value="yes">`
    // outside the form; without an OP session the page auto-posts `logout=yes` itself.
    let yes = if form.has_field("logout") { None } else { Some(("logout", "yes")) };
    let page = h.submit("logout confirmation", &page, &form, &[], yes).await;
    h.expect_redirect("logout confirmation", &page);
    let back = h.location("logout confirmation", &page);
    let root = h.app("/");
    h.check("logout confirmation", without_query(&back) == root.as_str(), || {
        format!("expected the OP to send us to post_logout_redirect_uri {root}, got {back}")
    });
    let page = h.get("post logout landing", back).await;
    let page = h.follow_app("post logout landing", page).await;
    h.expect_status("post logout landing", &page, StatusCode::OK);

    let me = h.get_json("/me after logout", h.app("/me")).await;
    h.check("/me after logout", me["is_logged_in"] == Value::Bool(false), || {
        format!("expected anonymous after logout: {me}")
    });

    // The OP session ended too: a new login asks for credentials again.
    let page = h.get("login again", h.app("/auth/login")).await;
    h.expect_redirect("login again", &page);
    let page = h.get("authorize again", h.location("login again", &page)).await;
    let page = h.follow_op("authorize again", page).await;
    h.expect_status("authorize again", &page, StatusCode::OK);
    h.form("authorize again (expecting the OP login form)", &page, |f| f.has_field("login"));
}

/// `response_mode = "form_post"` against the certified provider: the login asks for it,
/// the OP answers the consent with its page that posts `code`, `state` and `iss` to the
/// callback; posted as a browser posts it cross-site (without the app's cookies), the app
/// answers with its bounce page, whose fields, posted again with the cookies, sign in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_basic_logs_in_with_form_post() {
    let options = OpOptions { app_config: "response_mode = \"form_post\"", ..OpOptions::default() };
    let mut h = Harness::start_with("form-post", Example::AxumBasic, options).await;
    let modes = h.discovery["response_modes_supported"].clone();
    h.check("OP discovery", modes.as_array().is_some_and(|m| m.iter().any(|m| m == "form_post")), || {
        format!("the OP does not list form_post: {modes}")
    });
    let page = h.get("login start", h.app("/auth/login?return_to=%2Fme")).await;
    let authorize = h.location("login start", &page);
    let asked = query(&authorize).into_iter().any(|(k, v)| k == "response_mode" && v == "form_post");
    h.check("login start", asked, || format!("the authorization URL lacks response_mode=form_post: {authorize}"));
    let page = h.sign_in_at_op(authorize, "alice").await;
    h.expect_status("OP form_post page", &page, StatusCode::OK);
    let posted = h.form("OP form_post page", &page, |f| f.has_field("code"));
    let callback = h.app("/oauth2callback");
    h.check(
        "OP form_post page",
        posted.action == callback.as_str() && posted.method.eq_ignore_ascii_case("post"),
        || format!("expected a form posting to {callback}: {posted:?}"),
    );
    let issuer = h.stack.issuer().to_owned();
    h.check("OP form_post page", posted.field("iss") == Some(issuer.as_str()) && posted.has_field("state"), || {
        format!("expected state and iss {issuer:?} (RFC 9207): {posted:?}")
    });

    // As a browser posts it from the OP's site: SameSite=Lax leaves the app's cookies out.
    h.new_jar();
    let page = h.post_form("cross-site POST to the callback", callback.clone(), &posted.fields, None).await;
    h.expect_status("bounce page", &page, StatusCode::OK);
    let bounce = h.form("bounce page", &page, |f| f.has_field("auth_bounced"));
    h.restore_first_jar();
    let target = h.app(&bounce.action);
    let origin = h.app_origin();
    let page = h.post_form("the bounce page's POST", target, &bounce.fields, Some(&origin)).await;
    let page = h.follow_app("the bounce page's POST", page).await;
    h.expect_status("after the callback", &page, StatusCode::OK);
    let me = h.parse_json("after the callback", &page);
    h.check("logged-in /me", me["sub"] == "alice", || format!("expected sub \"alice\": {me}"));
}

/// RFC 9126 and RFC 7009 against the certified provider, by config alone: the OP requires
/// pushed authorization requests (`--par required`), axum-basic's `use_par` is left at
/// `"auto"` and picks that up from discovery, so the browser goes to the OP with only
/// `client_id` and `request_uri`; the login (login and consent forms) and `/me` work; and
/// the logout revokes the refresh token at the OP's `revocation_endpoint` (its stderr says
/// the refresh token was destroyed) while the browser goes on to the end-session endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_basic_logs_in_with_par_and_logout_revokes_the_refresh_token() {
    let options = OpOptions { par: Some("required"), ..OpOptions::default() };
    let mut h = Harness::start_with("par-revocation", Example::AxumBasic, options).await;
    h.check("OP discovery", h.discovery["require_pushed_authorization_requests"] == Value::Bool(true), || {
        format!("the OP does not require PAR: {}", h.discovery)
    });

    let callback = h.login_at_op("alice", "/me").await;
    h.lands_on_me_as_alice(callback, "").await;
    let pushed = h.stack.app.count("authorization request pushed");
    h.check("logged-in /me", pushed == 1, || format!("expected the app to log one pushed request, got {pushed}"));

    const DESTROYED: &str = "oidc-provider refresh_token.destroyed: client_id=";
    h.check("before logout", !h.stack.op.printed(DESTROYED), || "a refresh token was destroyed early".to_owned());
    h.log_out_to_end_session().await;

    // The revocation runs after the logout answered: give it a moment. The OP prints its line
    // before it answers, the app logs its own once the answer is in: wait for both.
    let started = std::time::Instant::now();
    let revoked = || h.stack.op.printed(DESTROYED) && h.stack.app.printed("token revoked at logout");
    while !revoked() && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let want = format!("{DESTROYED}{CLIENT_ID}");
    h.check("revocation", h.stack.op.printed(&want), || format!("the OP never printed {want:?}"));
    h.check("revocation", !h.stack.op.printed("revocation.error"), || "the OP refused the revocation".to_owned());
    h.check("revocation", h.stack.app.printed("token revoked at logout"), || {
        "the app did not log the revocation".to_owned()
    });
}

/// RFC 7523 client authentication against the certified provider, by config alone: the OP
/// registers `e2e-client-pkjwt` with `token_endpoint_auth_method: "private_key_jwt"` and
/// the app's `GET /auth/jwks` as its `jwks_uri`; axum-basic has no client secret, only
/// `client_private_key_file` (an EC P-256 key) and `publish_client_jwks = true`. The code
/// exchange and a refresh (a 5 s access token, refreshed 4 s before it expires) each
/// authenticate with a fresh assertion the OP verifies with the keys it fetched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_basic_logs_in_and_refreshes_with_private_key_jwt() {
    let options = OpOptions {
        private_key_jwt: true,
        access_token_ttl: Some(5),
        app_config: "refresh_margin_secs = 4",
        ..OpOptions::default()
    };
    let mut h = Harness::start_with("private-key-jwt", Example::AxumBasic, options).await;
    let methods = h.discovery["token_endpoint_auth_methods_supported"].clone();
    h.check("OP discovery", methods.as_array().is_some_and(|m| m.iter().any(|m| m == "private_key_jwt")), || {
        format!("the OP does not offer private_key_jwt: {methods}")
    });
    let jwks = h.get_json("app /auth/jwks", h.app("/auth/jwks")).await;
    let key = &jwks["keys"][0];
    h.check("app /auth/jwks", key["kty"] == "EC" && key["alg"] == "ES256" && key.get("d").is_none(), || {
        format!("expected one public ES256 key: {jwks}")
    });

    let callback = h.login_at_op("alice", "/me").await;
    h.lands_on_me_as_alice(callback, "").await;
    let client = format!("{CLIENT_ID}-pkjwt");
    let code = format!("grant.success: grant_type=authorization_code client_id={client}");
    h.check("code exchange", h.stack.op.printed(&code), || format!("the OP never printed {code:?}"));
    // Past the refresh margin: the next request refreshes, authenticated by an assertion.
    h.refreshes_past_the_margin(&client).await;
    h.check("refresh", !h.stack.op.printed("grant.error"), || "the OP refused a client assertion".to_owned());
}

/// RFC 9449 against the certified provider, by config alone: the OP binds the client's
/// access tokens with DPoP (`dpop_bound_access_tokens`) and requires server nonces
/// (`--dpop required`); axum-basic has `dpop = true`. The login (code exchange with a proof
/// of the key named by `dpop_jkt`, after one `use_dpop_nonce` answer), `/me` (userinfo with
/// `Authorization: DPoP` and a proof with `ath`: the OP refuses a bound token as a bearer
/// token), a refresh with a proof of the same key (a 5 s access token, refreshed 4 s before
/// it expires) and the logout all work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_basic_logs_in_refreshes_and_logs_out_with_dpop() {
    let options = OpOptions {
        dpop: Some("required"),
        access_token_ttl: Some(5),
        app_config: "dpop = true\nrefresh_margin_secs = 4",
        ..OpOptions::default()
    };
    let mut h = Harness::start_with("dpop", Example::AxumBasic, options).await;
    let algs = h.discovery["dpop_signing_alg_values_supported"].clone();
    h.check("OP discovery", algs.as_array().is_some_and(|a| a.iter().any(|a| a == "ES256")), || {
        format!("the OP does not offer DPoP with ES256: {}", h.discovery)
    });

    let callback = h.login_at_op("alice", "/me").await;
    h.lands_on_me_as_alice(callback, " (read with a DPoP-bound token)").await;
    h.exchanged_the_code_after_a_dpop_nonce(CLIENT_ID);
    // Past the refresh margin: the next request refreshes, with a proof of the session key.
    h.refreshes_past_the_margin(CLIENT_ID).await;
    h.check("refresh", !h.stack.op.printed("userinfo.error"), || "the OP refused a userinfo request".to_owned());

    h.log_out_to_end_session().await;
}

/// The whole FAPI 2.0 Security Profile against the certified provider, by config alone: the
/// OP runs oidc-provider's FAPI 2.0 profile (`--fapi 2.0`: PKCE required, client assertions
/// whose `aud` is the issuer) and requires pushed authorization requests, DPoP-bound access
/// tokens with server nonces, and `private_key_jwt` (a client with no secret that fetches
/// the app's `/auth/jwks`), and signs its ID tokens with PS256. axum-basic has
/// `profile = "fapi2"` and `dpop = true` and nothing else of the kind: it pushes the request,
/// exchanges the code with an assertion and a DPoP proof, accepts the PS256 ID token (the
/// profile refuses RS256, the OP's default, so a login means the OP's PS256 passed), reads
/// userinfo with the bound token, refreshes with a new assertion and proof, and at logout
/// revokes the refresh token and sends the browser to the end-session endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_basic_signs_in_with_the_fapi2_profile_by_config_alone() {
    let options = OpOptions {
        fapi: true,
        par: Some("required"),
        dpop: Some("required"),
        private_key_jwt: true,
        access_token_ttl: Some(5),
        app_config: "profile = \"fapi2\"\ndpop = true\nrefresh_margin_secs = 4",
        ..OpOptions::default()
    };
    let mut h = Harness::start_with("fapi2", Example::AxumBasic, options).await;
    let discovery = h.discovery.clone();
    let lists = |key: &str, value: &str| discovery[key].as_array().is_some_and(|a| a.iter().any(|v| v == value));
    h.check("OP discovery", discovery["require_pushed_authorization_requests"] == Value::Bool(true), || {
        format!("the OP does not require PAR: {discovery}")
    });
    h.check(
        "OP discovery",
        lists("token_endpoint_auth_methods_supported", "private_key_jwt")
            && lists("dpop_signing_alg_values_supported", "ES256")
            && lists("id_token_signing_alg_values_supported", "PS256")
            && discovery["authorization_response_iss_parameter_supported"] == Value::Bool(true),
        || format!("the OP does not offer private_key_jwt, DPoP ES256, PS256 ID tokens and RFC 9207 iss: {discovery}"),
    );

    let callback = h.login_at_op("alice", "/me").await;
    let issuer = h.stack.issuer().to_owned();
    let iss = query(&callback).into_iter().find(|(k, _)| k == "iss").map(|(_, v)| v);
    h.check("OP redirect", iss.as_deref() == Some(issuer.as_str()), || {
        format!("the callback lacks iss={issuer} (RFC 9207): {callback}")
    });
    h.lands_on_me_as_alice(callback, " (read with a DPoP-bound token)").await;
    let client = format!("{CLIENT_ID}-pkjwt");
    let pushed = h.stack.app.count("authorization request pushed");
    h.check("login", pushed == 1, || format!("expected the app to log one pushed request, got {pushed}"));
    h.exchanged_the_code_after_a_dpop_nonce(&client);
    // Past the refresh margin: the next request refreshes (a new assertion, a new proof).
    h.refreshes_past_the_margin(&client).await;
    // The one refusal expected: the first token request's `use_dpop_nonce`.
    let other_grant_errors = h.stack.op.count("grant.error") - h.stack.op.count("grant.error: UseDpopNonce");
    h.check("refresh", other_grant_errors == 0, || "the OP refused a token request".to_owned());
    for refused in ["userinfo.error", "authorization.error", "server_error"] {
        h.check("refresh", !h.stack.op.printed(refused), || format!("the OP printed {refused}"));
    }

    h.log_out_to_end_session().await;
    let destroyed = format!("oidc-provider refresh_token.destroyed: client_id={client}");
    let started = std::time::Instant::now();
    let revoked = || h.stack.op.printed(&destroyed) && h.stack.app.printed("token revoked at logout");
    while !revoked() && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    h.check("revocation", revoked(), || format!("expected the OP to print {destroyed:?} and the app to log it"));
}

/// The callback URL of a completed login, replayed: refused with a 4xx page (never a
/// 5xx), and it logs nobody in.
async fn replayed_callback_is_refused(example: Example) {
    let mut h = Harness::start("replay", example).await;

    let callback = h.login_at_op("bob", "/me").await;
    let page = h.get("callback", callback.clone()).await;
    let page = h.follow_app("callback", page).await;
    h.expect_status("after callback", &page, StatusCode::OK);
    let me = h.parse_json("after callback", &page);
    h.check("logged-in /me", me["sub"] == "bob", || format!("expected sub \"bob\": {me}"));

    // 1. Replayed in a fresh cookie jar (an attacker holding the URL).
    h.new_jar();
    let page = h.get("replay, fresh jar", callback.clone()).await;
    let page = h.follow_app("replay, fresh jar", page).await;
    h.expect_client_error("replay, fresh jar", &page);
    let me = h.get_json("/me after replay, fresh jar", h.app("/me")).await;
    h.check("/me after replay, fresh jar", me["is_logged_in"] == Value::Bool(false), || {
        format!("a replayed callback logged a fresh jar in: {me}")
    });

    // 2. Replayed while a new login is pending (stale state against a fresh pending cookie).
    let page = h.get("start a new login", h.app("/auth/login?return_to=/me")).await;
    h.expect_redirect("start a new login", &page);
    let page = h.get("replay, pending login", callback.clone()).await;
    let page = h.follow_app("replay, pending login", page).await;
    h.expect_client_error("replay, pending login", &page);
    let me = h.get_json("/me after replay, pending login", h.app("/me")).await;
    h.check("/me after replay, pending login", me["is_logged_in"] == Value::Bool(false), || {
        format!("a replayed callback logged a pending jar in: {me}")
    });

    // 3. Replayed in the jar that completed the login: refused too, and the session
    //    that login created is left alone.
    h.restore_first_jar();
    let page = h.get("replay, same jar", callback).await;
    let page = h.follow_app("replay, same jar", page).await;
    h.expect_client_error("replay, same jar", &page);
    let me = h.get_json("/me after replay, same jar", h.app("/me")).await;
    h.check("/me after replay, same jar", me["sub"] == "bob" && me["is_logged_in"] == Value::Bool(true), || {
        format!("a refused replay should leave the existing session alone: {me}")
    });
}

/// An API client of the certified provider (RFC 8707 resource indicators, client
/// credentials) gets an RFC 9068 JWT access token; axum-basic's `/me` accepts it as a
/// bearer token (`bearer_audience`), and refuses it tampered.
#[tokio::test]
async fn axum_basic_accepts_the_certified_providers_jwt_access_tokens() {
    const RESOURCE: &str = "https://api.example.test/";
    let options = OpOptions {
        resource: Some(RESOURCE),
        app_config: "bearer_audience = \"https://api.example.test/\"",
        ..OpOptions::default()
    };
    let stack = Stack::start("bearer-axum-basic", Example::AxumBasic, options);
    let client = new_client();
    let discovery: Value = client
        .get(stack.issuer_url("/.well-known/openid-configuration"))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("json");
    let token_endpoint = discovery["token_endpoint"].as_str().expect("token_endpoint").to_owned();
    let api_client = format!("{CLIENT_ID}-api");
    let answer: Value = client
        .post(&token_endpoint)
        .basic_auth(&api_client, Some(CLIENT_SECRET))
        .form(&[("grant_type", "client_credentials"), ("scope", "api:read"), ("resource", RESOURCE)])
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token json");
    let token =
        answer["access_token"].as_str().unwrap_or_else(|| panic!("no access token: {answer}\n{}", stack.logs(20)));
    assert_eq!(token.split('.').count(), 3, "a JWT access token: {answer}");

    let me = client.get(stack.app("/me")).bearer_auth(token).send().await.expect("/me");
    assert_eq!(me.status(), StatusCode::OK, "{}", stack.logs(20));
    assert!(me.headers().get("set-cookie").is_none(), "no cookie for a bearer request");
    let me: Value = me.json().await.expect("json");
    assert_eq!(me["is_logged_in"], true, "{me}");
    assert_eq!(me["sub"], api_client.as_str(), "{me}");
    assert_eq!(me["aud"], RESOURCE, "{me}");

    let mut tampered = token.to_owned();
    tampered.push('A');
    let refused = client.get(stack.app("/me")).bearer_auth(&tampered).send().await.expect("/me");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.headers()["www-authenticate"].to_str().unwrap_or_default().contains("invalid_token"));
}

// ---------------------------------------------------------------------------------------
// Harness: the two processes, the client, and failure reports
// ---------------------------------------------------------------------------------------

struct Harness {
    stack: Stack,
    /// The OP requires pushed authorization requests: the login URL carries only
    /// `client_id` and `request_uri`.
    par: bool,
    /// The client the app signs in as (`<client-id>-pkjwt` with `private_key_jwt`).
    client_id: String,
    discovery: Value,
    client: reqwest::Client,
    first_client: Option<reqwest::Client>,
    trail: Vec<String>,
}

impl Harness {
    async fn start(name: &str, example: Example) -> Self {
        Self::start_with(name, example, OpOptions::default()).await
    }

    async fn start_with(name: &str, example: Example, options: OpOptions) -> Self {
        let par = options.par == Some("required");
        let client_id = if options.private_key_jwt { format!("{CLIENT_ID}-pkjwt") } else { CLIENT_ID.to_owned() };
        let stack = Stack::start(&format!("{name}-{}", example.name()), example, options);
        let mut h = Self {
            stack,
            par,
            client_id,
            discovery: Value::Null,
            client: new_client(),
            first_client: None,
            trail: Vec::new(),
        };
        let url = h.stack.issuer_url("/.well-known/openid-configuration");
        h.discovery = h.get_json("OP discovery", url).await;
        let issuer = h.discovery["issuer"].as_str().unwrap_or_default().to_owned();
        let announced = h.stack.issuer().to_owned();
        h.check("OP discovery", issuer == announced, || format!("issuer {issuer:?} != {announced:?}"));
        h
    }

    fn app(&self, path_and_query: &str) -> Url {
        self.stack.app(path_and_query)
    }

    fn app_origin(&self) -> String {
        self.app("/").origin().ascii_serialization()
    }

    fn op_endpoint(&self, key: &str) -> String {
        match self.discovery[key].as_str() {
            Some(s) => s.to_owned(),
            None => self.fail(key, None, &format!("discovery has no {key}: {}", self.discovery)),
        }
    }

    fn new_jar(&mut self) {
        let fresh = new_client();
        let old = std::mem::replace(&mut self.client, fresh);
        self.first_client.get_or_insert(old);
        self.trail.push("-- new cookie jar --".into());
    }

    fn restore_first_jar(&mut self) {
        if let Some(first) = self.first_client.take() {
            self.client = first;
            self.trail.push("-- back to the first cookie jar --".into());
        }
    }

    /// Visits the `callback` of a login of alice that returns to `/me`, follows the app to
    /// `/me`, and checks it shows alice with the email only userinfo gives (`how` says how
    /// userinfo was read, for the failure message, such as `" (with DPoP)"`).
    async fn lands_on_me_as_alice(&mut self, callback: Url, how: &str) {
        let page = self.get("callback", callback).await;
        let page = self.follow_app("callback", page).await;
        self.expect_status("after callback", &page, StatusCode::OK);
        let me = self.parse_json("after callback", &page);
        self.check("logged-in /me", me["sub"] == "alice" && me["email"] == "alice@example.test", || {
            format!("expected alice with her userinfo email{how}: {me}")
        });
    }

    /// Checks that the OP exchanged a code for `client_id` and asked for a DPoP nonce first.
    fn exchanged_the_code_after_a_dpop_nonce(&mut self, client_id: &str) {
        let code = format!("grant.success: grant_type=authorization_code client_id={client_id}");
        self.check("code exchange", self.stack.op.printed(&code), || format!("the OP never printed {code:?}"));
        let asked = self.stack.op.printed("UseDpopNonce") || self.stack.op.printed("use_dpop_nonce");
        self.check("code exchange", asked, || "the OP never asked for a DPoP nonce".to_owned());
    }

    /// With 5-second access tokens refreshed 4 seconds early: waits past that margin, reads
    /// `/me` (still alice), and checks that the OP refreshed the tokens of `client_id`.
    async fn refreshes_past_the_margin(&mut self, client_id: &str) {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let me = self.get_json("/me after the margin", self.app("/me")).await;
        self.check("/me after the margin", me["sub"] == "alice", || format!("the session ended: {me}"));
        let refresh = format!("grant.success: grant_type=refresh_token client_id={client_id}");
        self.check("refresh", self.stack.op.printed(&refresh), || format!("the OP never printed {refresh:?}"));
    }

    /// Signs out with a same-origin `POST /auth/logout`: the app answers with a redirect to
    /// the OP's end-session endpoint, and `/me` is anonymous after it.
    async fn log_out_to_end_session(&mut self) {
        let origin = self.app_origin();
        let page = self.post_form("logout", self.app("/auth/logout"), &[], Some(&origin)).await;
        self.expect_status("logout", &page, StatusCode::SEE_OTHER);
        let end_session = self.location("logout", &page);
        let endpoint = self.op_endpoint("end_session_endpoint");
        self.check("logout", without_query(&end_session) == endpoint, || {
            format!("expected a redirect to the OP's end_session_endpoint {endpoint}, got {end_session}")
        });
        let me = self.get_json("/me after logout", self.app("/me")).await;
        self.check("/me after logout", me["is_logged_in"] == Value::Bool(false), || format!("still logged in: {me}"));
    }

    /// From `/auth/login` through the OP's login and consent forms to the redirect back to
    /// the app; returns that callback URL (not yet visited).
    async fn login_at_op(&mut self, login: &str, return_to: &str) -> Url {
        let start = self.app(&format!("/auth/login?return_to={}", encode(return_to)));
        let page = self.get("login start", start).await;
        self.expect_redirect("login start", &page);
        let authorize = self.location("login start", &page);
        let endpoint = self.op_endpoint("authorization_endpoint");
        self.check("login start", without_query(&authorize) == endpoint, || {
            format!("expected a redirect to the OP's authorization_endpoint {endpoint}, got {authorize}")
        });
        let params = query(&authorize);
        let param = |k: &str| params.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        let redirect_uri = self.app("/oauth2callback");
        if self.par {
            let names: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
            let request_uri = param("request_uri").unwrap_or_default();
            self.check("login start", names == ["client_id", "request_uri"], || {
                format!("a pushed request sends only client_id and request_uri, got {authorize}")
            });
            self.check("login start", request_uri.starts_with("urn:ietf:params:oauth:request_uri:"), || {
                format!("request_uri {request_uri:?} is not one the OP handed out")
            });
        }
        let expectations: [(&str, Option<&str>); 7] = [
            ("client_id", Some(self.client_id.as_str())),
            ("response_type", Some("code")),
            ("redirect_uri", Some(redirect_uri.as_str())),
            ("state", None),
            ("nonce", None),
            ("code_challenge", None),
            ("code_challenge_method", Some("S256")),
        ];
        for (key, want) in expectations.into_iter().filter(|_| !self.par) {
            let got = param(key);
            let ok = match (want, &got) {
                (_, None) => false,
                (None, Some(v)) => !v.is_empty(),
                (Some(w), Some(v)) => v == w,
            };
            self.check("login start", ok, || {
                format!("authorization URL parameter {key}: expected {want:?}, got {got:?} in {authorize}")
            });
        }
        let scope = param("scope").unwrap_or_default();
        self.check("login start", self.par || scope.split(' ').any(|s| s == "openid"), || {
            format!("scope {scope:?} lacks openid in {authorize}")
        });

        let page = self.sign_in_at_op(authorize, login).await;
        self.expect_redirect("back to the app", &page);
        let callback = self.location("back to the app", &page);
        self.check("back to the app", without_query(&callback) == redirect_uri.as_str(), || {
            format!("expected the OP to redirect to {redirect_uri}, got {callback}")
        });
        let params = query(&callback);
        let has = |k: &str| params.iter().any(|(key, v)| key == k && !v.is_empty());
        self.check("back to the app", has("code") && has("state"), || format!("callback lacks code/state: {callback}"));
        let iss = params.iter().find(|(k, _)| k == "iss").map(|(_, v)| v.as_str());
        let issuer_text = self.stack.issuer().to_owned();
        self.check("back to the app", iss == Some(issuer_text.as_str()), || {
            format!("callback iss {iss:?}, expected {issuer_text:?} (RFC 9207): {callback}")
        });
        callback
    }

    /// From the OP's `authorize` URL through its login and consent forms: the OP's answer
    /// after them (a redirect back to the app, or its `form_post` page).
    async fn sign_in_at_op(&mut self, authorize: Url, login: &str) -> Page {
        let page = self.get("authorize", authorize).await;
        let page = self.follow_op("authorize", page).await;
        self.expect_status("OP login page", &page, StatusCode::OK);
        let form = self.form("OP login page", &page, |f| f.has_field("login"));
        let page = self.submit("OP login", &page, &form, &[("login", login), ("password", "any password")], None).await;
        let mut page = self.follow_op("OP login", page).await;
        if page.status == StatusCode::OK && forms(&page.body).iter().any(|f| f.field("prompt") == Some("consent")) {
            let form = self.form("OP consent page", &page, |f| f.field("prompt") == Some("consent"));
            let submitted = self.submit("OP consent", &page, &form, &[], None).await;
            page = self.follow_op("OP consent", submitted).await;
        }
        page
    }

    // -- requests ---------------------------------------------------------------------

    async fn get(&mut self, step: &str, url: Url) -> Page {
        let request = self.client.get(url.clone());
        self.send(step, "GET", url, request).await
    }

    async fn post_form(&mut self, step: &str, url: Url, fields: &[(String, String)], origin: Option<&str>) -> Page {
        let mut request = self.client.post(url.clone()).form(fields);
        if let Some(origin) = origin {
            request = request.header(ORIGIN, HeaderValue::from_str(origin).expect("origin header"));
        }
        self.send(step, "POST", url, request).await
    }

    async fn send(&mut self, step: &str, method: &'static str, url: Url, request: reqwest::RequestBuilder) -> Page {
        let response = match request.timeout(Duration::from_secs(30)).send().await {
            Ok(r) => r,
            Err(e) => {
                self.trail.push(format!("{method} {url} -> error: {e}"));
                self.fail(step, None, &format!("{method} {url} failed: {e:#}"));
            }
        };
        let status = response.status();
        let location = response.headers().get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = response.text().await.unwrap_or_else(|e| format!("<unreadable body: {e}>"));
        let location = location.map(|l| url.join(&l).unwrap_or_else(|e| panic!("{step}: bad Location {l:?}: {e}")));
        let mut hop = format!("{method} {url} -> {}", status.as_u16());
        if let Some(l) = &location {
            let _ = write!(hop, " -> {l}");
        }
        if std::env::var_os("CERTIFIED_OP_TRACE").is_some() {
            let shown = if location.is_none() { format!("  {}", snippet(&body, 160)) } else { String::new() };
            eprintln!("[certified_op] {step}: {hop}{shown}");
        }
        self.trail.push(hop);
        Page { method, url, status, location, body }
    }

    async fn get_json(&mut self, step: &str, url: Url) -> Value {
        let page = self.get(step, url).await;
        self.expect_status(step, &page, StatusCode::OK);
        self.parse_json(step, &page)
    }

    /// Submits `form` with its own fields, `fill` overriding or adding, and the named
    /// submit button (a `<button name value>` belonging to the form, or given explicitly).
    async fn submit(
        &mut self,
        step: &str,
        page: &Page,
        form: &Form,
        fill: &[(&str, &str)],
        button: Option<(&str, &str)>,
    ) -> Page {
        if !form.method.eq_ignore_ascii_case("post") {
            self.fail(step, Some(page), &format!("expected a POST form, found method {:?}", form.method));
        }
        let action = if form.action.is_empty() { Ok(page.url.clone()) } else { page.url.join(&form.action) };
        let action = action.unwrap_or_else(|e| self.fail(step, Some(page), &format!("bad form action: {e}")));
        let mut fields = form.fields.clone();
        for (name, value) in fill {
            match fields.iter_mut().find(|(n, _)| n == name) {
                Some(slot) => slot.1 = (*value).to_owned(),
                None => fields.push(((*name).to_owned(), (*value).to_owned())),
            }
        }
        if let Some((name, value)) = button {
            if !form.buttons.iter().any(|(n, v)| n == name && v == value) {
                self.fail(step, Some(page), &format!("no submit button {name}={value} for the form: {form:?}"));
            }
            fields.push((name.to_owned(), value.to_owned()));
        }
        self.post_form(step, action, &fields, None).await
    }

    /// Follows redirects within the OP; stops at a page or at a redirect leaving the OP.
    async fn follow_op(&mut self, step: &str, page: Page) -> Page {
        let op = self.stack.issuer_url("/").origin();
        self.follow(step, page, |url| url.origin() == op).await
    }

    /// Follows redirects within the app; stops at a page or at a redirect leaving the app.
    async fn follow_app(&mut self, step: &str, page: Page) -> Page {
        let app = self.app("/").origin();
        self.follow(step, page, |url| url.origin() == app).await
    }

    async fn follow(&mut self, step: &str, mut page: Page, within: impl Fn(&Url) -> bool) -> Page {
        for _ in 0..MAX_HOPS {
            match &page.location {
                Some(next) if page.status.is_redirection() && within(next) => {
                    let next = next.clone();
                    page = self.get(step, next).await;
                }
                _ => return page,
            }
        }
        self.fail(step, Some(&page), &format!("more than {MAX_HOPS} redirects"))
    }

    // -- expectations -----------------------------------------------------------------

    fn expect_status(&self, step: &str, page: &Page, want: StatusCode) {
        if page.status != want {
            self.fail(step, Some(page), &format!("expected status {want}"));
        }
    }

    fn expect_redirect(&self, step: &str, page: &Page) {
        if !page.status.is_redirection() || page.location.is_none() {
            self.fail(step, Some(page), "expected a redirect with a Location");
        }
    }

    fn expect_client_error(&self, step: &str, page: &Page) {
        if !page.status.is_client_error() {
            self.fail(step, Some(page), "expected a 4xx page (and never a 5xx)");
        }
    }

    fn location(&self, step: &str, page: &Page) -> Url {
        match &page.location {
            Some(l) => l.clone(),
            None => self.fail(step, Some(page), "expected a Location header"),
        }
    }

    fn parse_json(&self, step: &str, page: &Page) -> Value {
        serde_json::from_str(&page.body)
            .unwrap_or_else(|e| self.fail(step, Some(page), &format!("body is not JSON: {e}")))
    }

    fn form(&self, step: &str, page: &Page, pick: impl Fn(&Form) -> bool) -> Form {
        let all = forms(&page.body);
        match all.iter().find(|f| pick(f)) {
            Some(f) => f.clone(),
            None => self.fail(step, Some(page), &format!("expected form not found; forms on the page: {all:?}")),
        }
    }

    fn check(&self, step: &str, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.fail(step, None, &what());
        }
    }

    fn fail(&self, step: &str, page: Option<&Page>, what: &str) -> ! {
        let mut msg = format!("\n[certified_op] step \"{step}\" failed: {what}\n");
        if let Some(p) = page {
            let _ = writeln!(msg, "  request:  {} {}", p.method, p.url);
            let _ = writeln!(msg, "  status:   {}", p.status);
            if let Some(l) = &p.location {
                let _ = writeln!(msg, "  location: {l}");
            }
            let _ = writeln!(msg, "  body:     {}", snippet(&p.body, 600));
        }
        let _ = writeln!(msg, "  last hops:");
        for hop in &self.trail[self.trail.len().saturating_sub(12)..] {
            let _ = writeln!(msg, "    {hop}");
        }
        msg.push_str(&self.stack.logs(25));
        panic!("{msg}");
    }
}

#[derive(Debug)]
struct Page {
    method: &'static str,
    url: Url,
    status: StatusCode,
    location: Option<Url>,
    body: String,
}

fn new_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("http client")
}

// ---------------------------------------------------------------------------------------
// Small helpers: URLs, snippets, and just enough HTML form parsing
// ---------------------------------------------------------------------------------------

fn query(url: &Url) -> Vec<(String, String)> {
    url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

fn without_query(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A `<form>` as a browser would submit it.
#[derive(Debug, Clone, Default)]
struct Form {
    id: Option<String>,
    action: String,
    method: String,
    /// Named `<input>`s (not submit buttons, not unchecked boxes) with their values.
    fields: Vec<(String, String)>,
    /// Named submit buttons (`<button>` or `<input type=submit>`), inside the form or
    /// pointing at it with `form="id"`.
    buttons: Vec<(String, String)>,
}

impl Form {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn has_field(&self, name: &str) -> bool {
        self.field(name).is_some()
    }
}

/// Finds the forms of an HTML page, with their inputs and submit buttons.
fn forms(html: &str) -> Vec<Form> {
    let mut forms: Vec<Form> = Vec::new();
    let mut current: Option<usize> = None;
    // (form id, is button, name, value) for controls with a `form=` attribute.
    let mut detached: Vec<(String, bool, String, String)> = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        if rest.starts_with("!--") {
            rest = rest.find("-->").map_or("", |i| &rest[i + 3..]);
            continue;
        }
        let Some(end) = tag_end(rest) else { break };
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        let (name, attrs) = parse_tag(tag);
        let attr = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        match name.as_str() {
            "script" | "style" => {
                let close = format!("</{name}");
                rest = rest.to_ascii_lowercase().find(&close).map_or("", |i| &rest[i..]);
            }
            "form" => {
                forms.push(Form {
                    id: attr("id"),
                    action: attr("action").unwrap_or_default(),
                    method: attr("method").unwrap_or_else(|| "get".into()),
                    ..Form::default()
                });
                current = Some(forms.len() - 1);
            }
            "/form" => current = None,
            "input" | "button" => {
                let Some(control) = attr("name") else { continue };
                let kind =
                    attr("type").unwrap_or_else(|| if name == "button" { "submit".into() } else { "text".into() });
                let kind = kind.to_ascii_lowercase();
                let is_button = kind == "submit" || kind == "image";
                if kind == "button" || kind == "reset" {
                    continue;
                }
                if (kind == "checkbox" || kind == "radio") && attr("checked").is_none() {
                    continue;
                }
                let value =
                    attr("value").unwrap_or_else(|| if kind == "checkbox" { "on".into() } else { String::new() });
                if let Some(owner) = attr("form") {
                    detached.push((owner, is_button, control, value));
                } else if let Some(i) = current {
                    let list = if is_button { &mut forms[i].buttons } else { &mut forms[i].fields };
                    list.push((control, value));
                }
            }
            _ => {}
        }
    }
    for (owner, is_button, control, value) in detached {
        if let Some(form) = forms.iter_mut().find(|f| f.id.as_deref() == Some(owner.as_str())) {
            let list = if is_button { &mut form.buttons } else { &mut form.fields };
            list.push((control, value));
        }
    }
    forms
}

/// Index of the `>` closing a tag, skipping quoted attribute values.
fn tag_end(s: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return Some(i),
            _ => {}
        }
    }
    None
}

/// Splits `name attr="v" attr='v' attr=v attr` (the text between `<` and `>`).
fn parse_tag(tag: &str) -> (String, Vec<(String, String)>) {
    let tag = tag.trim_end_matches('/');
    let name_end = tag.find(|c: char| c.is_whitespace()).unwrap_or(tag.len());
    let name = tag[..name_end].to_ascii_lowercase();
    let mut attrs = Vec::new();
    let mut rest = tag[name_end..].trim_start();
    while !rest.is_empty() {
        let key_end = rest.find(|c: char| c.is_whitespace() || c == '=' || c == '/').unwrap_or(rest.len());
        let key = rest[..key_end].to_ascii_lowercase();
        rest = rest[key_end..].trim_start();
        let mut value = String::new();
        if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start();
            let (v, remaining) = match after.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let inner = &after[1..];
                    let close = inner.find(q).unwrap_or(inner.len());
                    (&inner[..close], inner.get(close + 1..).unwrap_or(""))
                }
                _ => {
                    let close = after.find(char::is_whitespace).unwrap_or(after.len());
                    (&after[..close], &after[close..])
                }
            };
            value = decode_entities(v);
            rest = remaining;
        } else if rest.starts_with('/') {
            rest = &rest[1..];
        }
        if !key.is_empty() {
            attrs.push((key, value));
        }
        rest = rest.trim_start();
    }
    (name, attrs)
}

#[test]
fn form_parser_reads_the_op_pages() {
    let login = r#"<form autocomplete="off" action="http://127.0.0.1:1/interaction/abc" method="post">
  <input type="hidden" name="prompt" value="login"/>
  <input required type="text" name="login" placeholder="Enter any login" autofocus="on">
  <input required type="password" name="password" placeholder="and password" >
  <button type="submit" class="login login-submit">Sign-in</button>
</form>"#;
    let f = forms(login);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].action, "http://127.0.0.1:1/interaction/abc");
    assert_eq!(
        f[0].fields,
        [("prompt".into(), "login".into()), ("login".into(), String::new()), ("password".into(), String::new())]
    );

    let logout = r#"<style>a>b{}</style><form id="op.logoutForm" method="post" action="http://x/session/end/confirm"><input type="hidden" name="xsrf" value="a&amp;b"/></form>
        <button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
        <button type="submit" form="op.logoutForm">No, stay signed in</button>"#;
    let f = forms(logout);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].id.as_deref(), Some("op.logoutForm"));
    assert_eq!(f[0].fields, [("xsrf".into(), "a&b".into())]);
    assert_eq!(f[0].buttons, [("logout".into(), "yes".into())]);

    assert_eq!(snippet("<html><style>x{}</style><h1>Hi &amp; bye</h1>\n  <p>there</p></html>", 100), "Hi & bye there");
}
