//! "Sign out other devices" with `axum-basic` as a process, configured by a file, against an
//! in-process `MockIdp`: one person signs in from three browsers (three cookie jars), lists
//! the sessions from one of them (`GET /sessions`) and ends the two others
//! (`POST /sessions/end-others`); those are anonymous on their next request, the caller
//! stays signed in. Once with `session_store = "memory"`, once with a real `redis-server`;
//! and with the default cookie store, both routes say that a server-side store is needed.
//!
//! Needs `redis-server`; without it the Redis test FAILS with the install command.

mod support;

use auth_redis::testing::RedisServer;
use auth_testkit::MockIdp;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, ORIGIN};
use serde_json::{Value, json};
use std::time::Duration;
use support::{Proc, SUITE, TempDir, example_command, free_port, mock_idp_config};

const FIREFOX_ON_LINUX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const CHROME_ON_ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36";

struct Running {
    base: String,
    // Dropped in order: the app, then Redis, then the config's directory.
    app: Proc,
    _redis: Option<RedisServer>,
    _dir: TempDir,
}

/// Starts axum-basic against `idp` with the `session_store` line `store` (none: cookies).
fn start(idp: &MockIdp, label: &str, store: Option<&str>, redis: Option<RedisServer>) -> Running {
    let dir = TempDir::new(label);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let extra = store.map(|store| format!("session_store = \"{store}\"")).unwrap_or_default();
    let config = mock_idp_config(idp, &base, label, &extra);
    let path = dir.path.join("auth.toml");
    std::fs::write(&path, config).expect("write config");
    let cmd = example_command(env!("CARGO_BIN_EXE_axum-basic"), &path, port);
    let (app, _) = Proc::spawn("axum-basic", cmd, "listening on http://");
    Running { base, app, _redis: redis, _dir: dir }
}

async fn alice() -> MockIdp {
    let idp = MockIdp::builder().login_as(Some("alice")).start().await;
    idp.unwrap_or_else(|e| panic!("[{SUITE}] cannot start the MockIdp: {e}"))
}

/// A browser (its own cookie jar, following redirects) signed in as the provider's user.
async fn signed_in(app: &Running, user_agent: &str) -> reqwest::Client {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .user_agent(user_agent)
        .timeout(Duration::from_secs(20))
        .no_proxy()
        .build()
        .expect("client");
    let home = browser.get(format!("{}/auth/login", app.base)).send().await.expect("login");
    assert_eq!(home.status(), 200, "[{SUITE}] the login ends on the home page");
    browser
}

/// `GET path` as an API client: the status and the JSON body.
async fn get_json(app: &Running, browser: &reqwest::Client, path: &str) -> (StatusCode, Value) {
    let response = browser.get(format!("{}{path}", app.base)).header(ACCEPT, "application/json").send().await;
    let response = response.unwrap_or_else(|e| panic!("[{SUITE}] GET {path}: {e}"));
    (response.status(), response.json().await.unwrap_or(Value::Null))
}

/// `POST /sessions/end-others` sent from `origin`: the status and the JSON body.
async fn end_others(app: &Running, browser: &reqwest::Client, origin: &str) -> (StatusCode, Value) {
    let response = browser
        .post(format!("{}/sessions/end-others", app.base))
        .header(ORIGIN, origin)
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap_or_else(|e| panic!("[{SUITE}] POST /sessions/end-others: {e}"));
    (response.status(), response.json().await.unwrap_or(Value::Null))
}

async fn logged_in(app: &Running, browser: &reqwest::Client) -> bool {
    let (status, me) = get_json(app, browser, "/me").await;
    assert_eq!(status, StatusCode::OK, "[{SUITE}] /me: {me}");
    me["is_logged_in"] == true
}

/// Three logins of one person; the first ends the other two.
async fn the_first_of_three_browsers_signs_out_the_others(app: &Running) {
    let first = signed_in(app, FIREFOX_ON_LINUX).await;
    let second = signed_in(app, CHROME_ON_ANDROID).await;
    let third = signed_in(app, "an unknown client").await;

    let (status, listed) = get_json(app, &first, "/sessions").await;
    assert_eq!(status, StatusCode::OK, "[{SUITE}] /sessions: {listed}");
    let sessions = listed["sessions"].as_array().cloned().unwrap_or_default();
    assert_eq!(sessions.len(), 3, "[{SUITE}] three logins of alice: {listed}");
    let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1, "[{SUITE}] exactly one is this browser's: {listed}");
    assert_eq!(current[0]["device"], "Firefox on Linux", "[{SUITE}] {listed}");
    let devices: Vec<&Value> = sessions.iter().map(|s| &s["device"]).collect();
    assert!(devices.contains(&&json!("Chrome on Android")) && devices.contains(&&Value::Null), "{listed}");
    for session in &sessions {
        assert_eq!(session["provider"], "default", "{listed}");
        assert_eq!(session["handle"].as_str().map(str::len), Some(22), "{listed}");
        assert!(session["created_at"].as_u64().is_some_and(|at| at > 0), "{listed}");
        assert!(session["last_seen"].as_u64() >= session["created_at"].as_u64(), "{listed}");
    }
    let (_, from_second) = get_json(app, &second, "/sessions").await;
    let second_current: Vec<&Value> =
        from_second["sessions"].as_array().into_iter().flatten().filter(|s| s["current"] == true).collect();
    assert_eq!(second_current.len(), 1, "{from_second}");
    assert_ne!(second_current[0]["handle"], current[0]["handle"], "each browser sees its own as current");

    // A form on another site ends nothing.
    let (status, refused) = end_others(app, &first, "https://evil.test").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "[{SUITE}] a cross-site POST: {refused}");
    assert!(logged_in(app, &second).await && logged_in(app, &third).await, "[{SUITE}] nothing ended");

    let (status, ended) = end_others(app, &first, &app.base).await;
    assert_eq!((status, ended.clone()), (StatusCode::OK, json!({"ended": 2})), "[{SUITE}] {ended}");
    assert!(!logged_in(app, &second).await, "[{SUITE}] the second browser is signed out");
    assert!(!logged_in(app, &third).await, "[{SUITE}] the third browser is signed out");
    let (status, _) = get_json(app, &second, "/sessions").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "[{SUITE}] an ended browser must log in again");

    assert!(logged_in(app, &first).await, "[{SUITE}] the caller stays signed in");
    let (status, listed) = get_json(app, &first, "/sessions").await;
    assert_eq!(status, StatusCode::OK);
    let sessions = listed["sessions"].as_array().cloned().unwrap_or_default();
    assert_eq!(sessions.len(), 1, "[{SUITE}] only the caller's session is left: {listed}");
    assert_eq!(sessions[0]["current"], true);
    assert_eq!(sessions[0]["handle"], current[0]["handle"]);

    let (status, ended) = end_others(app, &first, &app.base).await;
    assert_eq!((status, ended), (StatusCode::OK, json!({"ended": 0})), "[{SUITE}] nothing else to end");
    let anonymous = reqwest::Client::builder().no_proxy().build().expect("client");
    let (status, _) = get_json(app, &anonymous, "/sessions").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "[{SUITE}] nobody signed in");
    assert!(!app.app.printed("panicked"), "[{SUITE}] axum-basic never panics");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_other_devices_with_the_memory_store() {
    let idp = alice().await;
    let app = tokio::task::block_in_place(|| start(&idp, "sessions-memory", Some("memory"), None));
    the_first_of_three_browsers_signs_out_the_others(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_other_devices_with_redis() {
    let idp = alice().await;
    let redis = tokio::task::block_in_place(RedisServer::start)
        .unwrap_or_else(|e| panic!("\n[{SUITE}] cannot start redis-server: {e}\n"));
    let url = format!("redis://127.0.0.1:{}", redis.port());
    let app = tokio::task::block_in_place(|| start(&idp, "sessions-redis", Some(&url), Some(redis)));
    the_first_of_three_browsers_signs_out_the_others(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cookie_store_says_a_server_side_store_is_needed() {
    let idp = alice().await;
    let app = tokio::task::block_in_place(|| start(&idp, "sessions-cookie", None, None));
    let browser = signed_in(&app, FIREFOX_ON_LINUX).await;
    let (status, answer) = get_json(&app, &browser, "/sessions").await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "[{SUITE}] /sessions with cookies: {answer}");
    assert_eq!(answer["error"], "unsupported");
    let description = answer["error_description"].as_str().unwrap_or_default();
    assert!(description.contains("server-side session store") && description.contains("session_store"), "{answer}");
    let (status, answer) = end_others(&app, &browser, &app.base).await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "[{SUITE}] end-others with cookies: {answer}");
    assert!(logged_in(&app, &browser).await, "[{SUITE}] the refusal ends nothing");
}
