//! End-to-end in a real browser: headless Chromium (driven through chromedriver) signs in
//! to `axum-basic` and `hyper-basic`, each configured only by its config file, at a real,
//! OpenID Certified provider (panva's `oidc-provider`, `e2e/op/provider.mjs`).
//!
//! The scenario a person would follow: open `/private?x=1` anonymously, land on the
//! provider's login page, type a user and password, consent, come back to `/private?x=1`
//! greeted by name, see the provider's claims in `/me` (email comes from userinfo: the ID
//! token is minimal), log out through the provider's end-session page, and be anonymous
//! again. A second scenario gives access tokens a 5-second life and expects the session to
//! be refreshed with the refresh token, again and again, without the user noticing.
//!
//! Needs Node.js with the provider's packages, Chromium and chromedriver; without them these
//! tests FAIL (never skip) and say what to install:
//!
//! ```text
//! apt-get install -y --no-install-recommends chromium chromium-driver nodejs npm
//! npm ci --prefix e2e/op
//! cargo test -p auth-examples --test browser     # or: cargo xtask e2e
//! ```
//!
//! `CHROME` and `CHROMEDRIVER` override `/usr/bin/chromium` and `/usr/bin/chromedriver`.
//! When a step fails, its screenshot and page source are saved as
//! `target/e2e/<test>-<step>.png` and `.html`, and the panic message names them;
//! `E2E_SCREENSHOTS=1` saves them for every step, passed or not.

mod support;

use std::fmt::Write as _;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt as _;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use support::{Example, OpOptions, Proc, SUITE, Stack, TempDir, free_port, snippet, target_dir};
use url::Url;

/// The one command that installs what this suite needs from Debian.
const INSTALL: &str = "apt-get install -y --no-install-recommends chromium chromium-driver";
/// How long any one wait (an element, a URL, a text) may take.
const WAIT: Duration = Duration::from_secs(30);
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(100);
/// The access-token lifetime the refresh scenario gives the provider.
const SHORT_TTL_SECS: u32 = 5;
/// The app's `refresh_margin_secs` in the refresh scenario: the default (60 s) is longer
/// than the tokens live, which would refresh on every request.
const SHORT_MARGIN: &str = "refresh_margin_secs = 1";
/// How many refreshes the refresh scenario waits for: the second proves that the session
/// refreshed once is refreshed again when its new token is due (the provider hands the
/// same refresh token back: it does not rotate them for confidential clients).
const REFRESHES: usize = 2;
/// The app's logout button (a form POST).
const LOGOUT_BUTTON: &str = "form[action='/auth/logout'] button[type=submit]";
/// The provider's consent form, recognised by its hidden `prompt` field.
const CONSENT_FORM: &str = "form input[name=prompt][value=consent]";
/// "Yes, sign me out" on the provider's end-session page (a button outside its form).
const SIGN_ME_OUT: &str = "button[name=logout][value=yes]";
/// The grant the provider logs when the app refreshes a session.
const REFRESH_GRANT: &str = "grant.success: grant_type=refresh_token";

// ---------------------------------------------------------------------------------------
// The scenarios, each against both examples
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_basic_login_consent_userinfo_logout() {
    run("axum_basic_login_logout", Example::AxumBasic, OpOptions::default(), login_consent_userinfo_logout).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hyper_basic_login_consent_userinfo_logout() {
    run("hyper_basic_login_logout", Example::HyperBasic, OpOptions::default(), login_consent_userinfo_logout).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_basic_session_refreshes_silently() {
    run("axum_basic_refresh", Example::AxumBasic, short_tokens(), session_refreshes_silently).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hyper_basic_session_refreshes_silently() {
    run("hyper_basic_refresh", Example::HyperBasic, short_tokens(), session_refreshes_silently).await;
}

/// `response_mode = "form_post"` with the provider on another site (`127.0.0.2`) than the
/// app (`127.0.0.1`): the provider's page posts the response cross-site, so Chromium leaves
/// the `SameSite=Lax` pending-login cookie out; the app's bounce page posts it again, and
/// the person ends signed in without seeing anything of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_basic_form_post_login_across_sites() {
    let options = OpOptions { op_host: Some("127.0.0.2"), app_config: FORM_POST, ..OpOptions::default() };
    run("axum_basic_form_post", Example::AxumBasic, options, form_post_login_across_sites).await;
}

const FORM_POST: &str = "response_mode = \"form_post\"";

async fn form_post_login_across_sites(b: &Browser) {
    log_in(b, "alice", "/private?x=1").await;
    b.step("the posted response went through the bounce page once", async {
        let bounced = b.stack.app.count("outcome=\"bounced\"");
        let signed_in = b.stack.app.count("outcome=\"signed_in\"");
        expect(bounced == 1 && signed_in == 1, || {
            format!("expected one bounce and one sign-in in the app's log, saw {bounced} and {signed_in}")
        })
    })
    .await;
    b.step("/me after a form_post login", async {
        let me = b.open_json(&b.app("/me")).await?;
        expect(me["sub"] == "alice" && me["email"] == "alice@example.test", || format!("expected alice: {me}"))
    })
    .await;
}

fn short_tokens() -> OpOptions {
    OpOptions { access_token_ttl: Some(SHORT_TTL_SECS), app_config: SHORT_MARGIN, ..OpOptions::default() }
}

/// Anonymous visitor -> provider login -> consent -> back where they started -> claims ->
/// logout at the provider -> anonymous, and the provider asks for a password again.
async fn login_consent_userinfo_logout(b: &Browser) {
    log_in(b, "alice", "/private?x=1").await;

    b.step("/me has the provider's claims", async {
        let me = b.open_json(&b.app("/me")).await?;
        expect(me["is_logged_in"] == true, || format!("expected is_logged_in true: {me}"))?;
        expect(me["sub"] == "alice", || format!("expected sub \"alice\": {me}"))?;
        // Not in the (minimal) ID token: these prove the userinfo call.
        expect(me["email"] == "alice@example.test", || {
            format!("expected email \"alice@example.test\" (from userinfo): {me}")
        })?;
        expect(me["name"] == "Alice", || format!("expected name \"Alice\" (from userinfo): {me}"))
    })
    .await;

    b.step("home page greets the user", async {
        b.goto(&b.app("/")).await?;
        b.wait_for_text("Welcome back, Alice!").await?;
        b.wait_for(LOGOUT_BUTTON).await.map(drop)
    })
    .await;

    b.step("log out, to the provider's end-session page", async {
        b.wait_for(LOGOUT_BUTTON).await?.click().await.map_err(cmd("click Log out"))?;
        b.wait_for_url("the provider's end-session page", |u| b.is_op(u) && u.path().starts_with("/session/end"))
            .await?;
        b.wait_for(SIGN_ME_OUT).await.map(drop)
    })
    .await;

    b.step("sign out at the provider, back on the app, anonymous", async {
        b.wait_for(SIGN_ME_OUT).await?.click().await.map_err(cmd("click \"Yes, sign me out\""))?;
        // The post_logout_redirect_uri, with the `state` the app sent to the provider.
        let home = b.app("/");
        b.wait_for_url(&format!("the app's home {home}"), |u| u.origin() == home.origin() && u.path() == "/").await?;
        b.wait_for_text("Not logged in").await.map(drop)
    })
    .await;

    b.step("/me after logout", async {
        let me = b.open_json(&b.app("/me")).await?;
        expect(me["is_logged_in"] == false, || format!("expected anonymous after logout: {me}"))
    })
    .await;

    // The provider's session ended too: the private page leads to its login form again.
    b.step("private page after logout asks for a password", async {
        b.goto(&b.app("/private?x=1")).await?;
        b.wait_for_url("the provider's login page", |u| b.is_op(u) && u.path().starts_with("/interaction/")).await?;
        b.wait_for("input[name=password]").await.map(drop)
    })
    .await;
}

/// With access tokens living a few seconds, the session outlives them: the app uses the
/// refresh token (the provider logs a refresh_token grant) each time the access token is
/// about to expire, and the user stays on the page, signed in, never sent to the provider.
/// The tokens the session carries are never older than one lifetime: `/me` shows the `iat`
/// of the latest ID token, which the provider issues with each access token.
async fn session_refreshes_silently(b: &Browser) {
    log_in(b, "carol", "/private").await;
    let me_url = b.app("/me");
    let lifetime = u64::from(SHORT_TTL_SECS);
    let started = Instant::now();

    b.step("the session refreshes without the user noticing", async {
        let deadline = started + Duration::from_secs(lifetime * REFRESHES as u64) + WAIT;
        loop {
            let me = b.open_json(&me_url).await?;
            let at = b.current_url().await?;
            expect(at == me_url, || format!("the browser left the app for {at}: the user noticed"))?;
            expect(me["is_logged_in"] == true && me["sub"] == "carol", || {
                format!("expected carol still signed in: {me}")
            })?;
            expect(me["email"] == "carol@example.test", || format!("claims lost in a refresh: {me}"))?;
            // Whole seconds on both sides, and the refresh is due a second before expiry.
            let age = unix_now().saturating_sub(me["iat"].as_u64().unwrap_or(0));
            expect(age <= lifetime + 1, || {
                format!(
                    "the session's tokens were issued {age}s ago, past their {lifetime}s life, and not refreshed: {me}"
                )
            })?;
            let refreshes = b.stack.op.count(REFRESH_GRANT);
            if refreshes >= REFRESHES {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{}s after the login the provider saw {refreshes} refresh_token grant(s), expected {REFRESHES}",
                    started.elapsed().as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await;
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// From an anonymous visit of `path` (a page that needs a login: `/private...`) through
/// the provider's login and consent pages back to `path`, greeted as `login` (capitalised).
async fn log_in(b: &Browser, login: &str, path: &str) {
    b.step("anonymous visit lands on the provider's login page", async {
        b.goto(&b.app(path)).await?;
        b.wait_for_url("the provider's login page", |u| b.is_op(u) && u.path().starts_with("/interaction/")).await?;
        b.wait_for("input[name=login]").await.map(drop)
    })
    .await;

    b.step("sign in at the provider, to its consent page", async {
        b.wait_for("input[name=login]").await?.send_keys(login).await.map_err(cmd("type the login"))?;
        let password = b.wait_for("input[name=password]").await?;
        password.send_keys("correct horse").await.map_err(cmd("type the password"))?;
        submit(&password).await.map_err(cmd("submit the login form"))?;
        b.wait_for(CONSENT_FORM).await.map(drop)
    })
    .await;

    let name = capitalise(login);
    b.step("consent, back on the page asked for", async {
        let consent = b.wait_for(CONSENT_FORM).await?;
        submit(&consent).await.map_err(cmd("submit the consent form"))?;
        let back = b.app(path);
        b.wait_for_url(&format!("{back}, where the visit started"), |u| *u == back).await?;
        b.wait_for_text(&format!("Welcome back, {name}!")).await.map(drop)
    })
    .await;
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

fn expect(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what()) }
}

/// Names a failed WebDriver command.
fn cmd(what: &str) -> impl FnOnce(fantoccini::error::CmdError) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Submits the form `field` belongs to by clicking its submit button, as a person would.
async fn submit(field: &Element) -> Result<(), fantoccini::error::CmdError> {
    let form = field.find(Locator::XPath("ancestor::form")).await?;
    form.find(Locator::Css("button[type=submit]")).await?.click().await
}

// ---------------------------------------------------------------------------------------
// The browser: chromedriver and Chromium, steps, waits, failure artifacts
// ---------------------------------------------------------------------------------------

/// Starts the provider, the app and a browser, runs `scenario`, and always ends the
/// browser session before the processes are killed (also when the scenario panics).
async fn run<F>(test: &str, example: Example, options: OpOptions, scenario: F)
where
    F: AsyncFnOnce(&Browser),
{
    let (chrome, chromedriver) = preflight_browser();
    let stack = Stack::start(test, example, options);
    let browser = Browser::start(test, stack, &chrome, &chromedriver).await;
    let started = Instant::now();
    let outcome = AssertUnwindSafe(scenario(&browser)).catch_unwind().await;
    eprintln!("[{SUITE}] {test}: scenario took {:.1}s", started.elapsed().as_secs_f64());
    browser.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Chromium and chromedriver must be there: fail with the install command, never skip.
fn preflight_browser() -> (PathBuf, PathBuf) {
    let chrome = std::env::var_os("CHROME").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    let driver = std::env::var_os("CHROMEDRIVER").map_or_else(|| PathBuf::from("/usr/bin/chromedriver"), PathBuf::from);
    for (what, path) in [("Chromium", &chrome), ("chromedriver", &driver)] {
        if !path.is_file() {
            panic!(
                "\n[{SUITE}] {what} is required for the browser suite and {} is missing.\n\
                 Fix: {INSTALL}\n(or point CHROME / CHROMEDRIVER at other binaries)\n",
                path.display()
            );
        }
    }
    (chrome, driver)
}

struct Browser {
    client: Client,
    test: String,
    stack: Stack,
    // Dropped after the client is closed: chromedriver (and any Chromium left), then the profile.
    driver: Proc,
    _profile: TempDir,
    passed: Mutex<Vec<String>>,
}

impl Browser {
    async fn start(test: &str, stack: Stack, chrome: &Path, chromedriver: &Path) -> Self {
        let profile = TempDir::new(&format!("{test}-chromium"));
        let port = free_port();
        let mut cmd = Command::new(chromedriver);
        cmd.arg(format!("--port={port}"));
        let (driver, _) = Proc::spawn("chromedriver", cmd, "ChromeDriver was started successfully");

        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-breakpad",
            "--disable-crash-reporter",
            "--disable-dev-shm-usage",
            "--password-store=basic",
            "--window-size=1280,900",
        ]
        .map(str::to_owned)
        .into_iter()
        .chain([format!("--user-data-dir={}", profile.path.display())])
        .collect::<Vec<_>>();
        let capabilities = json!({
            "browserName": "chrome",
            // Navigation returns at DOMContentLoaded: the provider's web fonts fail offline,
            // and every step waits for what it needs anyway.
            "pageLoadStrategy": "eager",
            "timeouts": { "pageLoad": WAIT.as_millis() as u64, "script": WAIT.as_millis() as u64 },
            "goog:chromeOptions": { "binary": chrome, "args": args },
        });
        let Value::Object(capabilities) = capabilities else { unreachable!("a JSON object") };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(Capabilities::from_iter(capabilities))
            .connect(&format!("http://127.0.0.1:{port}"))
            .await;
        let client = match client {
            Ok(client) => client,
            Err(e) => {
                let mut msg = format!("\n[{SUITE}] {test}: could not start Chromium through chromedriver: {e}\n");
                for line in driver.tail(40) {
                    let _ = writeln!(msg, "    | {line}");
                }
                let _ = writeln!(msg, "If Chromium is broken or missing, reinstall it: {INSTALL}");
                panic!("{msg}");
            }
        };
        Self { client, test: test.to_owned(), stack, driver, _profile: profile, passed: Mutex::new(Vec::new()) }
    }

    /// Ends the WebDriver session (chromedriver quits Chromium), then the processes stop.
    async fn close(self) {
        let _ = tokio::time::timeout(WAIT, self.client.close()).await;
    }

    /// Runs one step of a scenario; on failure saves the page's screenshot and source and
    /// panics with the step, the reason, the artifacts and the processes' logs.
    async fn step<T>(&self, step: &str, work: impl Future<Output = Result<T, String>>) -> T {
        match work.await {
            Ok(value) => {
                if std::env::var_os("E2E_SCREENSHOTS").is_some() {
                    let saved = self.save_artifacts(step).await;
                    eprintln!("[{SUITE}] {}: {step}: saved {}", self.test, saved.join(", "));
                }
                self.passed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(step.to_owned());
                value
            }
            Err(what) => panic!("{}", self.failure_report(step, &what).await),
        }
    }

    async fn failure_report(&self, step: &str, what: &str) -> String {
        let mut msg = format!("\n[{SUITE}] {}: step \"{step}\" failed: {what}\n", self.test);
        match self.client.current_url().await {
            Ok(url) => _ = writeln!(msg, "  page:     {url}"),
            Err(e) => _ = writeln!(msg, "  page:     (unknown: {e})"),
        }
        if let Ok(source) = self.client.source().await {
            let _ = writeln!(msg, "  text:     {}", snippet(&source, 600));
        }
        let saved = self.save_artifacts(step).await;
        let _ = writeln!(msg, "  saved:    {}", saved.join("\n            "));
        let passed = self.passed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = writeln!(msg, "  passed:   {}", if passed.is_empty() { "(none)".into() } else { passed.join(" / ") });
        msg.push_str(&self.stack.logs(25));
        let _ = writeln!(msg, "  chromedriver log (tail):");
        for line in self.driver.tail(10) {
            let _ = writeln!(msg, "    | {line}");
        }
        msg
    }

    /// Saves `target/e2e/<test>-<step>.png` and `.html`; returns their paths (or why not).
    async fn save_artifacts(&self, step: &str) -> Vec<String> {
        let dir = target_dir().join("e2e");
        if let Err(e) = std::fs::create_dir_all(&dir) {
            return vec![format!("(cannot create {}: {e})", dir.display())];
        }
        let slug: String = step
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
            .collect::<String>()
            .split('-')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("-");
        let base = dir.join(format!("{}-{slug}", self.test));
        let mut saved = Vec::new();
        let png = base.with_extension("png");
        match self.client.screenshot().await.map_err(|e| e.to_string()).and_then(|bytes| write(&png, &bytes)) {
            Ok(()) => saved.push(png.display().to_string()),
            Err(e) => saved.push(format!("(no screenshot: {e})")),
        }
        let html = base.with_extension("html");
        match self.client.source().await.map_err(|e| e.to_string()).and_then(|s| write(&html, s.as_bytes())) {
            Ok(()) => saved.push(html.display().to_string()),
            Err(e) => saved.push(format!("(no page source: {e})")),
        }
        saved
    }

    // -- actions and waits ---------------------------------------------------------------

    fn app(&self, path_and_query: &str) -> Url {
        self.stack.app(path_and_query)
    }

    fn is_op(&self, url: &Url) -> bool {
        url.origin() == self.stack.issuer_url("/").origin()
    }

    async fn goto(&self, url: &Url) -> Result<(), String> {
        self.client.goto(url.as_str()).await.map_err(|e| format!("open {url}: {e}"))
    }

    async fn current_url(&self) -> Result<Url, String> {
        self.client.current_url().await.map_err(|e| format!("read the current URL: {e}"))
    }

    async fn wait_for(&self, css: &str) -> Result<Element, String> {
        self.client
            .wait()
            .at_most(WAIT)
            .every(POLL)
            .for_element(Locator::Css(css))
            .await
            .map_err(|e| format!("waited {}s for an element `{css}`: {e}", WAIT.as_secs()))
    }

    /// Waits until the current URL satisfies `ok`; `what` describes it for the failure.
    async fn wait_for_url(&self, what: &str, ok: impl Fn(&Url) -> bool) -> Result<Url, String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let url = self.current_url().await?;
            if ok(&url) {
                return Ok(url);
            }
            if Instant::now() > deadline {
                return Err(format!("waited {}s to be on {what}, still on {url}", WAIT.as_secs()));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the page's visible text contains `needle`; returns that text.
    async fn wait_for_text(&self, needle: &str) -> Result<String, String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = match self.client.find(Locator::Css("body")).await {
                Ok(body) => body.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if text.contains(needle) {
                return Ok(text);
            }
            if Instant::now() > deadline {
                return Err(format!("waited {}s for the text {needle:?} on the page", WAIT.as_secs()));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Opens `url` (a JSON endpoint) and parses what the browser shows.
    async fn open_json(&self, url: &Url) -> Result<Value, String> {
        self.goto(url).await?;
        // Chromium shows JSON in a <pre> (newer versions add a pretty-print toggle beside it).
        let pre = self.wait_for("body pre").await?;
        let text = pre.text().await.map_err(cmd("read the JSON"))?;
        serde_json::from_str(&text).map_err(|e| format!("{url} did not show JSON ({e}): {text:?}"))
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("write {}: {e}", path.display()))
}
