//! The `custom-provider` example, run as a program: it signs in with a GitHub-shaped
//! OAuth 2.0 mock on loopback through its own `IdentityProvider`, configured only by its
//! config file.

mod github_mock;

use github_mock::{CLIENT_ID, CLIENT_SECRET, GitHubMock, USER_ID};
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The example, serving until dropped.
struct Example {
    base: String,
    _child: Child,
    config: PathBuf,
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.config);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn write_config(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("custom-provider-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, text).expect("write config");
    path
}

/// Runs the binary with `config`; returns its output when it exits before listening.
async fn run(config: PathBuf, port: u16) -> Result<Example, String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_custom-provider"))
        .args(["--config", &config.display().to_string(), "--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the custom-provider binary starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await.expect("starts in time");
    match first {
        Ok(Some(line)) if line.starts_with("listening on ") => {
            Ok(Example { base: line["listening on ".len()..].to_owned(), _child: child, config })
        }
        _ => {
            let output = child.wait_with_output().await.expect("exit");
            let _ = std::fs::remove_file(&config);
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }
}

async fn example(mock: &GitHubMock) -> Example {
    let port = free_port();
    let text = format!(
        "[auth]\nredirect_uri = \"http://127.0.0.1:{port}/oauth2callback\"\n\
         cookie_secret = \"a-test-cookie-secret-of-at-least-32-bytes\"\n\n\
         [github]\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n\
         authorize_url = \"{base}/login/oauth/authorize\"\ntoken_url = \"{base}/login/oauth/access_token\"\n\
         api_base_url = \"{base}/api\"\n",
        base = mock.base
    );
    run(write_config(&port.to_string(), &text), port).await.expect("the example serves")
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_provider(Arc::new(reqwest::cookie::Jar::default()))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// Follows redirects from `url`; returns the last response and its URL.
async fn follow(browser: &reqwest::Client, url: &str) -> (reqwest::Response, String) {
    let mut url = reqwest::Url::parse(url).expect("url");
    for _ in 0..10 {
        let response = browser.get(url.clone()).send().await.expect("request");
        if !response.status().is_redirection() {
            return (response, url.to_string());
        }
        url = url.join(response.headers()[LOCATION].to_str().expect("location")).expect("redirect");
    }
    panic!("too many redirects");
}

#[tokio::test]
async fn the_github_example_logs_in_against_its_mock() {
    let mock = GitHubMock::start().await;
    let app = example(&mock).await;
    let browser = browser();
    let anonymous: Value =
        browser.get(format!("{}/me", app.base)).send().await.expect("me").json().await.expect("json");
    assert_eq!(anonymous, serde_json::json!({"is_logged_in": false}));

    let (page, url) = follow(&browser, &format!("{}/private", app.base)).await;
    assert_eq!(url, format!("{}/private", app.base), "back where the login started");
    assert_eq!(page.text().await.expect("body"), "Welcome back, The Octocat!");

    let sent = mock.last_authorize();
    assert_eq!(sent.get("code_challenge_method").map(String::as_str), Some("S256"));
    assert_eq!(sent.get("scope").map(String::as_str), Some("read:user user:email"));
    assert!(!sent.contains_key("nonce"), "OAuth 2.0 only: no nonce");

    let me: Value = browser.get(format!("{}/me", app.base)).send().await.expect("me").json().await.expect("json");
    assert_eq!(me["is_logged_in"], true);
    assert_eq!(me["sub"], USER_ID.to_string());
    assert_eq!(me["login"], "octocat");
    assert_eq!(me["email"], "octocat@github.example", "the primary verified address");
    assert_eq!(me["picture"], "https://avatars.example/u/583231");
    let home = browser.get(format!("{}/", app.base)).send().await.expect("home").text().await.expect("body");
    assert!(home.contains("Signed in with GitHub as <code>octocat</code>"), "{home}");

    let logout = browser.post(format!("{}/auth/logout", app.base)).send().await.expect("logout");
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    assert_eq!(logout.headers()[LOCATION], "/", "GitHub has no end-session endpoint");
    let me: Value = browser.get(format!("{}/me", app.base)).send().await.expect("me").json().await.expect("json");
    assert_eq!(me["is_logged_in"], false);
}

#[tokio::test]
async fn a_github_api_outage_ends_on_a_503_page() {
    let mock = GitHubMock::start().await;
    let app = example(&mock).await;
    mock.set_api_down(true);
    let browser = browser();
    let (page, _) = follow(&browser, &format!("{}/auth/login", app.base)).await;
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.text().await.expect("body").contains("unavailable"));
}

#[tokio::test]
async fn a_config_without_client_id_names_the_key() {
    let port = free_port();
    let text = format!(
        "[auth]\nredirect_uri = \"http://127.0.0.1:{port}/oauth2callback\"\n\
         cookie_secret = \"a-test-cookie-secret-of-at-least-32-bytes\"\n[github]\nclient_id = \"\"\nclient_secret = \"x\"\n"
    );
    let error = run(write_config("empty-id", &text), port).await.err().expect("refused");
    assert!(error.contains("`github.client_id` is empty"), "{error}");
}
