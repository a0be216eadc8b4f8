//! The `mock-idp` binary: start-up line, flags, users file, clean exit on SIGTERM.

#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_mock-idp");

#[tokio::test]
async fn serves_until_sigterm() {
    let dir = std::env::temp_dir().join(format!("mock-idp-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let users_file = dir.join("users.json");
    std::fs::write(
        &users_file,
        r#"[{"username": "dora", "email": "dora@example.test", "name": "Dora", "groups": ["admins"]}]"#,
    )
    .unwrap();

    let mut child = Command::new(BIN)
        .args(["--port", "0", "--client-id=cli", "--user", "carol:carol@example.test:Carol Example"])
        .arg("--users-file")
        .arg(&users_file)
        .args(["--login-as", "dora", "--auth-age=3600"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await.unwrap().unwrap().unwrap();
    let issuer = first.strip_prefix("mock-idp listening on ").unwrap().to_owned();
    assert!(issuer.starts_with("http://127.0.0.1:"), "{first}");
    let mut rest = String::new();
    while let Ok(Ok(Some(line))) = tokio::time::timeout(Duration::from_millis(200), lines.next_line()).await {
        rest.push_str(&line);
        rest.push('\n');
    }
    assert!(rest.contains("user: carol  email: carol@example.test  name: Carol Example"), "{rest}");
    assert!(rest.contains("user: dora"), "{rest}");
    assert!(rest.contains("client_id:     cli"), "{rest}");

    let doc: Value =
        reqwest::get(format!("{issuer}/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
    assert_eq!(doc["issuer"], issuer.as_str());
    assert!(doc["claims_supported"].as_array().unwrap().contains(&Value::from("groups")));
    assert_auth_age_applies(&issuer).await;

    let status = std::process::Command::new("kill").args(["-TERM", &child.id().unwrap().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.unwrap().unwrap();
    assert!(exit.success(), "{exit:?}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Logs dora in: `--auth-age=3600` puts `auth_time` an hour back.
async fn assert_auth_age_applies(issuer: &str) {
    let redirect = "http://localhost:3000/cb";
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let back = http
        .get(format!("{issuer}/authorize"))
        .query(&[("client_id", "cli"), ("redirect_uri", redirect), ("response_type", "code"), ("scope", "openid")])
        .send()
        .await
        .unwrap();
    let location = url::Url::parse(back.headers()["location"].to_str().unwrap()).unwrap();
    let code = location.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let tokens: Value = http
        .post(format!("{issuer}/token"))
        .basic_auth("cli", Some("mock-secret"))
        .form(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", redirect)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let payload = tokens["id_token"].as_str().unwrap().split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    let age = claims["iat"].as_u64().unwrap() - claims["auth_time"].as_u64().unwrap();
    assert!((3600..3605).contains(&age), "{claims}");
}

#[tokio::test]
async fn bad_flags_name_the_flag_and_the_fix() {
    for (args, expected) in [
        (vec!["--port", "http"], "--port http: expected a port number"),
        (vec!["--port"], "--port needs a value"),
        (vec!["--host", "localhost"], "--host localhost: expected an IP address"),
        (vec!["--auth-age", "1h"], "--auth-age 1h: expected a whole number of seconds"),
        (vec!["--frobnicate"], "unknown flag --frobnicate: run mock-idp --help"),
        (vec!["--users-file", "/nonexistent/users.json"], "--users-file /nonexistent/users.json: cannot read it"),
        (vec!["--login-as", "zed"], "no user named \"zed\""),
    ] {
        let output = Command::new(BIN).args(&args).output().await.unwrap();
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let help = Command::new(BIN).arg("--help").output().await.unwrap();
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--users-file PATH"), "{help}");
    assert!(help.contains("--auth-age SECS"), "{help}");
}
