//! `axum-basic --metrics` as a process, configured by a file, against an in-process
//! `MockIdp`: after a login, two failed ones (the provider refusing, and a callback whose
//! `state` names no login) and a logout, `GET /metrics` (Prometheus' text format) shows each
//! counter moved, with its labels; without the flag there is no `/metrics`.

mod support;

use auth_testkit::MockIdp;
use reqwest::header::{LOCATION, ORIGIN};
use reqwest::redirect::Policy;
use std::collections::BTreeMap;
use std::time::Duration;
use support::{Proc, SUITE, TempDir, example_command, free_port, mock_idp_config};

struct Running {
    base: String,
    _app: Proc,
    _dir: TempDir,
}

/// Starts axum-basic against `idp`, with `--metrics` when `metrics`.
fn start(idp: &MockIdp, label: &str, metrics: bool) -> Running {
    let dir = TempDir::new(label);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let path = dir.path.join("auth.toml");
    std::fs::write(&path, mock_idp_config(idp, &base, label, "")).expect("write config");
    let mut cmd = example_command(env!("CARGO_BIN_EXE_axum-basic"), &path, port);
    if metrics {
        cmd.arg("--metrics");
    }
    let (app, _) = Proc::spawn("axum-basic", cmd, "listening on http://");
    Running { base, _app: app, _dir: dir }
}

async fn alice() -> MockIdp {
    let idp = MockIdp::builder().login_as(Some("alice")).start().await;
    idp.unwrap_or_else(|e| panic!("[{SUITE}] cannot start the MockIdp: {e}"))
}

/// A browser with a cookie jar; `follow` says whether it follows redirects.
fn browser(follow: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(if follow { Policy::limited(10) } else { Policy::none() })
        .timeout(Duration::from_secs(20))
        .no_proxy()
        .build()
        .expect("client")
}

/// A sample's identity: the metric's name and its labels.
type Series = (String, BTreeMap<String, String>);

/// The samples of a Prometheus text exposition, by name and labels. Label values here are
/// plain words (no quotes, commas or escapes), which is all this parser reads.
fn parse(text: &str) -> BTreeMap<Series, f64> {
    let mut samples = BTreeMap::new();
    for line in text.lines().filter(|line| !line.is_empty() && !line.starts_with('#')) {
        let (head, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("[{SUITE}] no value in {line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("[{SUITE}] bad value in {line:?}"));
        let (name, labels) = match head.split_once('{') {
            Some((name, rest)) => (name, rest.strip_suffix('}').unwrap_or_else(|| panic!("[{SUITE}] {line:?}"))),
            None => (head, ""),
        };
        let labels = labels
            .split(',')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or_else(|| panic!("[{SUITE}] bad label in {line:?}"));
                (key.to_owned(), value.trim_matches('"').to_owned())
            })
            .collect();
        samples.insert((name.to_owned(), labels), value);
    }
    samples
}

/// The value of `name` with exactly `labels`, 0 when it was never recorded.
fn value(samples: &BTreeMap<Series, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    let labels = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    samples.get(&(name.to_owned(), labels)).copied().unwrap_or(0.0)
}

async fn metrics(app: &Running) -> (String, BTreeMap<Series, f64>) {
    let response = browser(false).get(format!("{}/metrics", app.base)).send().await.expect("GET /metrics");
    assert_eq!(response.status(), 200, "[{SUITE}] /metrics");
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "[{SUITE}] {content_type}");
    let text = response.text().await.expect("body");
    let samples = parse(&text);
    (text, samples)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_with_logins_failures_and_logouts() {
    let idp = alice().await;
    let app = tokio::task::block_in_place(|| start(&idp, "axum-basic-metrics", true));
    let (_, before) = metrics(&app).await;
    assert_eq!(value(&before, "auth_logins_started_total", &[("provider", "default")]), 0.0);

    // A login, then two requests with its cookie.
    let alice = browser(true);
    let home = alice.get(format!("{}/auth/login", app.base)).send().await.expect("login");
    assert_eq!(home.status(), 200, "[{SUITE}] the login ends on the home page");
    for _ in 0..2 {
        let me: serde_json::Value =
            alice.get(format!("{}/me", app.base)).send().await.expect("/me").json().await.expect("json");
        assert_eq!(me["is_logged_in"], true, "[{SUITE}] {me}");
    }

    // A login the provider refuses: the callback carries its state and `error=access_denied`.
    let refused = browser(false);
    let to_idp = refused.get(format!("{}/auth/login", app.base)).send().await.expect("login");
    let location = to_idp.headers().get(LOCATION).and_then(|l| l.to_str().ok()).expect("redirect to the IdP");
    let state = url::Url::parse(location)
        .expect("authorization URL")
        .query_pairs()
        .find_map(|(k, v)| (k == "state").then(|| v.into_owned()))
        .expect("state");
    let callback = format!("{}/oauth2callback?error=access_denied&state={state}", app.base);
    assert_eq!(refused.get(callback).send().await.expect("callback").status(), 403);

    // A callback whose state names no login of this browser.
    let stray = browser(false).get(format!("{}/oauth2callback?code=x&state=wrong", app.base)).send().await;
    assert_eq!(stray.expect("callback").status(), 400);

    // The signed-in browser signs out (a same-site form).
    let logout = alice.post(format!("{}/auth/logout", app.base)).header(ORIGIN, &app.base).send().await;
    assert!(logout.expect("logout").status().is_success(), "[{SUITE}] the logout ends on a page");

    let (text, after) = metrics(&app).await;
    let provider = [("provider", "default")];
    let expect = |name: &str, labels: &[(&str, &str)], want: f64| {
        assert_eq!(value(&after, name, labels), want, "[{SUITE}] {name} {labels:?} in\n{text}");
    };
    expect("auth_logins_started_total", &provider, 2.0);
    expect("auth_logins_succeeded_total", &provider, 1.0);
    expect("auth_logins_failed_total", &[("provider", "default"), ("reason", "provider_error")], 1.0);
    expect("auth_callback_errors_total", &[("kind", "provider_error")], 1.0);
    expect("auth_callback_errors_total", &[("kind", "expired")], 1.0);
    expect("auth_logouts_total", &provider, 1.0);
    for endpoint in ["discovery", "jwks", "token"] {
        let labels = [("provider", "default"), ("endpoint", endpoint), ("outcome", "ok")];
        expect("auth_provider_requests_total", &labels, 1.0);
        let timed = [("provider", "default"), ("endpoint", endpoint)];
        expect("auth_provider_request_duration_seconds_count", &timed, 1.0);
    }
    // The logout revokes the refresh token in a task of its own, after answering.
    let revoked = [("provider", "default"), ("endpoint", "revocation"), ("outcome", "ok")];
    let started = std::time::Instant::now();
    let (mut text, mut samples) = (text, after.clone());
    while value(&samples, "auth_provider_requests_total", &revoked) < 1.0 && started.elapsed().as_secs() < 5 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        (text, samples) = metrics(&app).await;
    }
    assert_eq!(value(&samples, "auth_provider_requests_total", &revoked), 1.0, "[{SUITE}] revocation\n{text}");
    let hits = value(&after, "auth_session_cache_hits_total", &[("cache", "cookie")]);
    let misses = value(&after, "auth_session_cache_misses_total", &[("cache", "cookie")]);
    assert!(hits >= 1.0 && hits + misses >= 3.0, "[{SUITE}] home and /me twice: {hits} hits, {misses} misses\n{text}");
    assert!(text.contains("# TYPE auth_logins_started_total counter"), "[{SUITE}] {text}");
    assert!(text.contains("# TYPE auth_provider_request_duration_seconds histogram"), "[{SUITE}] {text}");
    // Counts only: nothing about the person.
    assert!(!text.contains("alice"), "[{SUITE}] user data in the metrics:\n{text}");
    idp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_metrics_route_without_the_flag() {
    let idp = alice().await;
    let app = tokio::task::block_in_place(|| start(&idp, "axum-basic-no-metrics", false));
    let response = browser(false).get(format!("{}/metrics", app.base)).send().await.expect("GET /metrics");
    assert_eq!(response.status(), 404, "[{SUITE}] /metrics without --metrics");
    idp.stop().await;
}
