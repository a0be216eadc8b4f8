//! Scale-out with real processes: two `axum-basic` instances, started from the SAME config
//! file (only `--listen` differs), keep their sessions in one real `redis-server`
//! (`session_store = "redis://..."`), and sign people in at an in-process `MockIdp`.
//!
//! A load balancer is emulated by sending each request to the instance a scenario picks:
//! `redirect_uri` names instance A, and the callback is sent to B. Scenarios:
//!
//! - a login started on A finishes on B, and both see the session;
//! - a logout on A ends the session on B too, by B's next request, though B served it from its
//!   local copy just before (Redis invalidates the copy: `auth-redis`'s local copies);
//! - fifty concurrent requests carrying one expired access token, split over A and B, make
//!   exactly one refresh call (the store's lock spans the instances);
//! - Redis goes down: pages are served as anonymous with a logged error, finishing a login
//!   is a clear 503, nothing panics; Redis comes back on its port and the instances recover
//!   by themselves (a fresh login works, no restart).
//!
//! Every process (the apps, `redis-server`) is stopped by its pid when its guard drops.
//! Needs `redis-server`; without it these tests FAIL with the install command:
//!
//! ```text
//! apt-get install -y redis-server
//! cargo test -p auth-examples --test two_instances_one_redis
//! ```

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use auth_redis::testing::RedisServer;
use auth_testkit::{Fault, MockIdp};
use reqwest::StatusCode;
use reqwest::header::{LOCATION, ORIGIN, SET_COOKIE};
use serde_json::Value;
use support::{Proc, SUITE, TempDir, example_command, free_port, mock_idp_config};

/// No scenario may take longer than this, processes included.
const BUDGET: Duration = Duration::from_secs(20);
/// Any one request; a hung instance fails the scenario instead of stalling it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// What an instance may take to answer while Redis is down: the store fails fast (a refused
/// connection at once, at worst its connect and response timeouts, 1.5 s).
const DOWN_ANSWER: Duration = Duration::from_secs(3);
const SESSION_COOKIE: &str = "auth_session";
/// Written by the layer when the store fails; the "logged error" of an outage.
const STORE_ERROR: &str = "session store failed";

// ---------------------------------------------------------------------------------------
// The scenarios
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_started_on_one_instance_finishes_on_the_other() {
    let pair = Pair::start("login-across", idp(Duration::from_secs(3600)).await).await;
    let mut browser = Browser::new();

    let callback = browser.login(&pair.a, &pair.b).await;
    pair.check(callback.status == StatusCode::FOUND, "B's callback signs in", &callback);
    let ticket = browser.session().unwrap_or_else(|| pair.fail("the callback set no session cookie"));
    pair.check(ticket.len() < 64, "a server-side session's cookie is a short ticket", &callback);
    pair.check_eq(pair.redis_exists(&ticket), 1, "the session is in Redis");

    for app in [&pair.a, &pair.b] {
        let me = browser.me(app).await;
        pair.check(me["is_logged_in"] == true && me["sub"] == "alice", &format!("/me on {}", app.name), &me);
    }
    pair.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_on_one_instance_ends_the_session_on_the_other() {
    let pair = Pair::start("logout-across", idp(Duration::from_secs(3600)).await).await;
    let mut browser = Browser::new();
    browser.login(&pair.a, &pair.b).await;
    let ticket = browser.session().unwrap_or_else(|| pair.fail("no session cookie after the login"));
    // B serves the session several times first: nothing it keeps may outlive the logout.
    for _ in 0..3 {
        let me = browser.me(&pair.b).await;
        pair.check(me["is_logged_in"] == true, "/me on B before the logout", &me);
    }

    let logout = browser.send(reqwest::Method::POST, &pair.a, "/auth/logout", &[(ORIGIN, &pair.a.base)]).await;
    pair.check(logout.status == StatusCode::SEE_OTHER, "POST /auth/logout on A", &logout);
    pair.check(
        logout.location.as_deref().is_some_and(|l| l.starts_with(&pair.idp.issuer())),
        "A sends the browser on to the provider's end-session endpoint",
        &logout,
    );
    pair.check(browser.session().is_none(), "A clears the session cookie", &logout);
    pair.check_eq(pair.redis_exists(&ticket), 0, "the session is gone from Redis");

    // A copy of the cookie taken before the logout (another tab, a thief) opens nothing.
    let mut copy = Browser::new();
    copy.jar.insert(SESSION_COOKIE.into(), ticket);
    for app in [&pair.b, &pair.a] {
        let me = copy.me(app).await;
        pair.check(
            me == serde_json::json!({"is_logged_in": false}),
            &format!("/me on {} after the logout", app.name),
            &me,
        );
    }
    pair.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_requests_on_two_instances_refresh_once() {
    // Short access tokens for the login; the refreshed one lives long, so that only the
    // expired one is refreshed.
    let idp = idp(Duration::from_secs(1)).await;
    let pair = Pair::start("refresh-once", idp).await;
    let mut browser = Browser::new();
    browser.login(&pair.a, &pair.b).await;
    let ticket = browser.session().unwrap_or_else(|| pair.fail("no session cookie after the login"));
    let expired_at = pair.stored_expires_at(&ticket);
    pair.idp.set_access_token_ttl(Duration::from_secs(3600));
    // Expiry is in whole seconds, and refresh_margin_secs = 0.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    pair.idp.reset_hits();
    // Slow answers make sure the requests overlap the refresh on both instances.
    pair.idp.set_fault(Fault::Delay(Duration::from_millis(300)));

    let cookie = format!("{SESSION_COOKIE}={ticket}");
    let requests = (0..50).map(|i| {
        let app = if i % 2 == 0 { &pair.a } else { &pair.b };
        let (http, url, cookie, name) = (browser.http.clone(), format!("{}/me", app.base), cookie.clone(), app.name);
        tokio::spawn(async move {
            let response = http.get(url).header("cookie", cookie).send().await;
            match response {
                Ok(response) => (name, response.status(), response.json::<Value>().await.unwrap_or(Value::Null)),
                Err(e) => (name, StatusCode::BAD_GATEWAY, Value::String(e.to_string())),
            }
        })
    });
    let answers = futures_util::future::join_all(requests).await;
    pair.idp.clear_faults();
    for answer in answers {
        let (name, status, me) = answer.unwrap_or_else(|e| pair.fail(&format!("a request task failed: {e}")));
        pair.check(
            status == StatusCode::OK && me["is_logged_in"] == true && me["sub"] == "alice",
            &format!("every request on {name} is served signed in"),
            &(status, &me),
        );
    }
    pair.check_eq(pair.idp.hits().token, 1, "exactly one refresh call for fifty requests on two instances");
    let refreshed_at = pair.stored_expires_at(&ticket);
    pair.check(refreshed_at > expired_at + 3000, "Redis holds the refreshed tokens", &(expired_at, refreshed_at));

    // Both instances now serve the refreshed session without asking again.
    for app in [&pair.a, &pair.b] {
        let me = browser.me(app).await;
        pair.check(me["is_logged_in"] == true, &format!("/me on {} after the refresh", app.name), &me);
    }
    pair.check_eq(pair.idp.hits().token, 1, "no further refresh");
    pair.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_ride_out_a_redis_outage_and_recover_by_themselves() {
    let mut pair = Pair::start("redis-outage", idp(Duration::from_secs(3600)).await).await;
    let mut browser = Browser::new();
    browser.login(&pair.a, &pair.b).await;
    let me = browser.me(&pair.b).await;
    pair.check(me["is_logged_in"] == true, "signed in before the outage", &me);

    pair.stop_redis();

    for app in [&pair.a, &pair.b] {
        let started = Instant::now();
        let me = browser.get(app, "/me").await;
        pair.check(me.status == StatusCode::OK, &format!("/me on {} is served while Redis is down", app.name), &me);
        pair.check(me.json()["is_logged_in"] == false, &format!("/me on {} is anonymous", app.name), &me);
        pair.check(started.elapsed() < DOWN_ANSWER, &format!("{} answers at once", app.name), &started.elapsed());
        let home = browser.get(app, "/").await;
        pair.check(home.status == StatusCode::OK && home.body.contains("Not logged in"), "/ is served", &home);
    }
    for app in [&pair.a, &pair.b] {
        let logged = printed_soon(&app.proc, STORE_ERROR).await;
        pair.check(logged, &format!("{} logged the store's failure", app.name), &app.name);
    }

    // Starting a login needs no store (the pending login is a sealed cookie); finishing it
    // must save the session: a clear 503 page, on a plain GET, nothing half signed in.
    let callback = browser.login(&pair.a, &pair.b).await;
    pair.check(callback.status == StatusCode::SERVICE_UNAVAILABLE, "finishing a login without Redis", &callback);
    pair.check(callback.body.contains("Signing in is unavailable right now"), "the 503 page says why", &callback);

    // Logging out still works: the cookies are cleared, the provider's logout follows later.
    let logout = browser.send(reqwest::Method::POST, &pair.a, "/auth/logout", &[(ORIGIN, &pair.a.base)]).await;
    pair.check(logout.status == StatusCode::SEE_OTHER, "a logout while Redis is down", &logout);
    pair.check(browser.session().is_none(), "the logout clears the session cookie", &logout);

    // Redis is back on the same port; the instances reconnect by themselves.
    pair.restart_redis();
    let callback = browser.login(&pair.a, &pair.b).await;
    pair.check(callback.status == StatusCode::FOUND, "a fresh login once Redis is back", &callback);
    for app in [&pair.a, &pair.b] {
        let me = browser.me(app).await;
        pair.check(me["is_logged_in"] == true, &format!("/me on {} after the recovery", app.name), &me);
    }
    pair.finish();
}

// ---------------------------------------------------------------------------------------
// Two instances, one Redis, one provider
// ---------------------------------------------------------------------------------------

/// Whether `proc` printed `needle`, waiting a moment for its log to be read from the pipe.
async fn printed_soon(proc: &Proc, needle: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    while !proc.printed(needle) {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// A provider that signs `alice` in at once, issuing access tokens living `ttl`.
async fn idp(ttl: Duration) -> MockIdp {
    let idp = MockIdp::builder().login_as(Some("alice")).access_token_ttl(ttl).start().await;
    idp.unwrap_or_else(|e| panic!("[{SUITE}] cannot start the MockIdp: {e}"))
}

struct App {
    name: &'static str,
    /// `http://127.0.0.1:PORT`, no trailing slash.
    base: String,
    proc: Proc,
}

/// Instances A and B of `axum-basic`, Redis and the provider. Fields drop in order: the
/// apps, then Redis, then the provider, then the config's directory.
struct Pair {
    a: App,
    b: App,
    redis: Option<RedisServer>,
    redis_port: u16,
    idp: MockIdp,
    _dir: TempDir,
    test: &'static str,
    started: Instant,
}

impl Pair {
    async fn start(test: &'static str, idp: MockIdp) -> Self {
        let started = Instant::now();
        let redis = tokio::task::block_in_place(RedisServer::start)
            .unwrap_or_else(|e| panic!("\n[{SUITE}] {test}: cannot start redis-server: {e}\n"));
        let redis_port = redis.port();
        let dir = TempDir::new(test);
        let port_a = free_port();
        let port_b = std::iter::repeat_with(free_port).find(|p| *p != port_a).unwrap_or_default();

        // One config for both instances: the callback names A, the load balancer may send
        // it anywhere.
        let extra = format!("session_store = \"redis://127.0.0.1:{redis_port}\"\nrefresh_margin_secs = 0");
        let config =
            mock_idp_config(&idp, &format!("http://127.0.0.1:{port_a}"), &format!("two-instances-{test}"), &extra);
        let config_path = dir.path.join("auth.toml");
        std::fs::write(&config_path, config).expect("write the config");

        let spawn = |name: &'static str, port: u16| {
            let cmd = example_command(env!("CARGO_BIN_EXE_axum-basic"), &config_path, port);
            let (proc, _) = tokio::task::block_in_place(|| Proc::spawn(name, cmd, "listening on http://"));
            App { name, base: format!("http://127.0.0.1:{port}"), proc }
        };
        let a = spawn("axum-basic A", port_a);
        let b = spawn("axum-basic B", port_b);
        Self { a, b, redis: Some(redis), redis_port, idp, _dir: dir, test, started }
    }

    /// Stops `redis-server` (SIGTERM to its pid, waiting until it has exited).
    fn stop_redis(&mut self) {
        if let Some(redis) = self.redis.take() {
            tokio::task::block_in_place(|| redis.stop());
        }
    }

    /// Starts `redis-server` again on the port of the one stopped (empty: it kept nothing).
    fn restart_redis(&mut self) {
        let redis = tokio::task::block_in_place(|| RedisServer::start_on(self.redis_port));
        let redis = redis.unwrap_or_else(|e| self.fail(&format!("cannot restart redis-server: {e}")));
        self.redis = Some(redis);
    }

    fn redis(&self) -> &RedisServer {
        self.redis.as_ref().unwrap_or_else(|| self.fail("Redis is stopped"))
    }

    /// `EXISTS auth:session:TICKET`.
    fn redis_exists(&self, ticket: &str) -> u64 {
        let answer = self.redis().command(&format!("EXISTS auth:session:{ticket}"));
        answer.ok().and_then(|n| n.parse().ok()).unwrap_or_else(|| self.fail("EXISTS failed"))
    }

    /// The access token's expiry of the session stored behind `ticket`, in Unix seconds.
    fn stored_expires_at(&self, ticket: &str) -> u64 {
        let json = self.redis().command(&format!("GET auth:session:{ticket}")).unwrap_or_default();
        let session: Value = serde_json::from_str(&json).unwrap_or(Value::Null);
        session["tokens"]["expires_at"].as_u64().unwrap_or_else(|| self.fail(&format!("no stored session: {json}")))
    }

    /// The scenario's end: within the budget, and no instance panicked.
    fn finish(self) {
        let took = self.started.elapsed();
        eprintln!("[{SUITE}] {}: took {} ms", self.test, took.as_millis());
        for app in [&self.a, &self.b] {
            self.check(!app.proc.printed("panicked"), &format!("{} never panics", app.name), &app.name);
        }
        self.check(took < BUDGET, &format!("the scenario ends within {}s", BUDGET.as_secs()), &took);
    }

    fn check(&self, ok: bool, what: &str, seen: &dyn std::fmt::Debug) {
        if !ok {
            self.fail(&format!("{what}: failed, seen {seen:#?}"));
        }
    }

    fn check_eq<T: PartialEq + std::fmt::Debug>(&self, seen: T, expected: T, what: &str) {
        if seen != expected {
            self.fail(&format!("{what}: expected {expected:?}, seen {seen:?}"));
        }
    }

    /// Panics with `what` and the tail of both instances' logs.
    fn fail(&self, what: &str) -> ! {
        let mut msg = format!("\n[{SUITE}] {}: {what}\n", self.test);
        for app in [&self.a, &self.b] {
            let _ = writeln!(msg, "  {} log (tail):", app.name);
            for line in app.proc.tail(25) {
                let _ = writeln!(msg, "    | {line}");
            }
        }
        panic!("{msg}");
    }
}

// ---------------------------------------------------------------------------------------
// The browser: a cookie jar shared by both instances (cookies ignore ports), no redirects
// ---------------------------------------------------------------------------------------

struct Browser {
    http: reqwest::Client,
    jar: BTreeMap<String, String>,
}

#[derive(Debug)]
struct Answer {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

impl Browser {
    fn new() -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .no_proxy()
            .build()
            .expect("an HTTP client");
        Self { http, jar: BTreeMap::new() }
    }

    fn session(&self) -> Option<String> {
        self.jar.get(SESSION_COOKIE).cloned()
    }

    /// `method path` on `app` (or an absolute URL as `path`) with the jar's cookies; keeps
    /// the cookies the answer sets or deletes.
    async fn send(
        &mut self,
        method: reqwest::Method,
        app: &App,
        path: &str,
        headers: &[(reqwest::header::HeaderName, &str)],
    ) -> Answer {
        let url = if path.starts_with("http") { path.to_owned() } else { format!("{}{path}", app.base) };
        let mut request = self.http.request(method.clone(), &url);
        for (name, value) in headers {
            request = request.header(name, *value);
        }
        if !self.jar.is_empty() {
            let cookies: Vec<String> = self.jar.iter().map(|(n, v)| format!("{n}={v}")).collect();
            request = request.header("cookie", cookies.join("; "));
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("[{SUITE}] {method} {url}: {e}"));
        for line in response.headers().get_all(SET_COOKIE) {
            let line = line.to_str().unwrap_or_default();
            let (pair, attributes) = line.split_once(';').unwrap_or((line, ""));
            let Some((name, value)) = pair.split_once('=') else { continue };
            if attributes.split(';').any(|a| a.trim() == "Max-Age=0") {
                self.jar.remove(name.trim());
            } else {
                self.jar.insert(name.trim().to_owned(), value.to_owned());
            }
        }
        let status = response.status();
        let location = response.headers().get(LOCATION).and_then(|l| l.to_str().ok()).map(str::to_owned);
        let body = response.text().await.unwrap_or_default();
        Answer { status, location, body }
    }

    async fn get(&mut self, app: &App, path: &str) -> Answer {
        self.send(reqwest::Method::GET, app, path, &[]).await
    }

    async fn me(&mut self, app: &App) -> Value {
        let answer = self.get(app, "/me").await;
        assert_eq!(answer.status, StatusCode::OK, "[{SUITE}] /me on {}: {answer:?}", app.name);
        answer.json()
    }

    /// `/auth/login` on `start`, the provider (which signs in at once), and the callback
    /// (addressed to A by `redirect_uri`) sent to `finish`; returns the callback's answer.
    async fn login(&mut self, start: &App, finish: &App) -> Answer {
        let login = self.get(start, "/auth/login").await;
        assert_eq!(login.status, StatusCode::FOUND, "[{SUITE}] /auth/login on {}: {login:?}", start.name);
        let authorize = login.location.unwrap_or_default();
        // The provider is another origin: the app's cookies are not its business.
        let back = self.http.get(&authorize).send().await.unwrap_or_else(|e| panic!("[{SUITE}] {authorize}: {e}"));
        assert_eq!(back.status(), StatusCode::FOUND, "[{SUITE}] the provider signs in at once");
        let callback = back.headers().get(LOCATION).and_then(|l| l.to_str().ok()).unwrap_or_default().to_owned();
        let (_, path) = callback.split_once("/oauth2callback").unwrap_or_else(|| panic!("callback {callback:?}"));
        self.get(finish, &format!("/oauth2callback{path}")).await
    }
}
