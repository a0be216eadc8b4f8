//! `axum-basic` as a process, configured by a file, against an in-process `MockIdp`:
//! `/admin` admits the members of the group `ADMIN_GROUP` names, `/sensitive` sends an old
//! login to log in again, and `/me` answers an API client's bearer token like a browser's
//! session.

mod support;

use auth_testkit::{MockIdp, MockUser};
use serde_json::{Value, json};
use std::time::Duration;
use support::{Proc, TempDir, example_command, free_port, mock_idp_config};

const AUDIENCE: &str = "api://axum-basic";

struct Running {
    base: String,
    _app: Proc,
    _dir: TempDir,
}

/// Starts axum-basic with `ADMIN_GROUP=ops` against `idp`.
fn start(idp: &MockIdp) -> Running {
    let dir = TempDir::new("axum-basic-guards");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = mock_idp_config(idp, &base, "axum-basic-guards", &format!("bearer_audience = \"{AUDIENCE}\""));
    let path = dir.path.join("auth.toml");
    std::fs::write(&path, config).expect("write config");
    let mut cmd = example_command(env!("CARGO_BIN_EXE_axum-basic"), &path, port);
    cmd.env("ADMIN_GROUP", "ops");
    let (app, _) = Proc::spawn("axum-basic", cmd, "listening on http://");
    Running { base, _app: app, _dir: dir }
}

/// A browser that follows redirects and keeps cookies, signed in as `idp`'s current user.
async fn signed_in(app: &Running) -> reqwest::Client {
    let browser =
        reqwest::Client::builder().cookie_store(true).timeout(Duration::from_secs(20)).build().expect("client");
    let home = browser.get(format!("{}/auth/login", app.base)).send().await.expect("login");
    assert_eq!(home.status(), 200, "the login ends on the home page");
    browser
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_sensitive_and_bearer_me() {
    let idp = MockIdp::builder()
        .user(MockUser::new("alice").email("alice@example.test").claim("groups", json!(["ops"])))
        .user(MockUser::new("bob").email("bob@example.test").claim("groups", json!(["staff"])))
        .login_as(Some("alice"))
        .auth_age(Duration::from_secs(3600))
        .start()
        .await
        .expect("mock IdP");
    let app = tokio::task::block_in_place(|| start(&idp));

    let alice = signed_in(&app).await;
    let admin = alice.get(format!("{}/admin", app.base)).send().await.expect("/admin");
    assert_eq!(admin.status(), 200);
    assert!(admin.text().await.expect("text").contains("you may administer this app"));

    // The login is an hour old: /sensitive sends the browser to log in again (max_age=300),
    // the mock re-authenticates, and the page is served.
    idp.reset_hits();
    let sensitive = alice.get(format!("{}/sensitive", app.base)).send().await.expect("/sensitive");
    assert_eq!(sensitive.status(), 200);
    assert!(sensitive.text().await.expect("text").contains("signed in less than five minutes ago"));
    assert_eq!(idp.hits().authorize, 1, "one step-up login");
    assert_eq!(idp.last_authorize_params().and_then(|p| p.get("max_age").cloned()).as_deref(), Some("300"));

    idp.login_as(Some("bob"));
    let bob = signed_in(&app).await;
    let refused = bob.get(format!("{}/admin", app.base)).header("accept", "text/html").send().await.expect("/admin");
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.expect("text").contains("membership in group &quot;ops&quot;"));

    // An API client: the same /me, from a bearer token; no cookie.
    let token = idp.access_token_for("alice", AUDIENCE, "read");
    let api = reqwest::Client::new();
    let me = api.get(format!("{}/me", app.base)).bearer_auth(&token).send().await.expect("/me");
    assert_eq!(me.status(), 200);
    assert!(me.headers().get("set-cookie").is_none());
    let me: Value = me.json().await.expect("json");
    assert_eq!((me["is_logged_in"].clone(), me["email"].clone()), (json!(true), json!("alice@example.test")));
    let admin = api.get(format!("{}/admin", app.base)).bearer_auth(&token).header("accept", "application/json");
    assert_eq!(admin.send().await.expect("/admin").status(), 200, "guards work on bearer users");
    let forged = api.get(format!("{}/me", app.base)).bearer_auth(format!("{token}x")).send().await.expect("/me");
    assert_eq!(forged.status(), 401);
}
