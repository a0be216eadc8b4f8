//! What the provider suites share: a provider section pointing at a `MockIdp`, and the
//! login as a browser drives it (authorize -> follow the redirect -> complete).
#![allow(dead_code)] // each suite uses its own part

use auth_core::{
    CallbackParams, IdentityProvider, LoginResult, PendingLogin, ProviderConfig, ProviderError, ProviderKind, Secret,
};
use auth_providers::{OidcProvider, ProviderSettings};
use auth_testkit::MockIdp;
use std::path::{Path, PathBuf};
use url::Url;

pub(crate) const REDIRECT_URI: &str = "http://localhost:3000/oauth2callback";

pub(crate) fn settings() -> ProviderSettings {
    ProviderSettings::default().with_leeway_secs(60).with_http_timeout_secs(5)
}

/// A generic section named `mock` for `idp`'s client.
pub(crate) fn config(idp: &MockIdp) -> ProviderConfig {
    ProviderConfig::new("mock", ProviderKind::Oidc, idp.client_id(), idp.metadata_url())
        .with_client_secret(Secret::new(idp.client_secret()))
        .with_display_name("Mock")
}

/// A section of `kind` for `idp`, with preset keys `extra` (a JSON object).
pub(crate) fn preset_config(idp: &MockIdp, name: &str, kind: ProviderKind, extra: serde_json::Value) -> ProviderConfig {
    let serde_json::Value::Object(extra) = extra else { panic!("extra keys are a JSON object") };
    let mut config = config(idp);
    config.name = name.into();
    config.kind = kind;
    config.display_name = name.into();
    config.extra = extra;
    config
}

/// A browser's visit to the authorization URL: the auto-login answers with a redirect
/// to `REDIRECT_URI?code=..&state=..&iss=..`.
pub(crate) async fn visit(authorization_url: &str) -> Url {
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let response = browser.get(authorization_url).send().await.expect("authorize answers");
    assert_eq!(response.status(), reqwest::StatusCode::FOUND, "authorize redirects back");
    let location = response.headers()["location"].to_str().expect("ascii location");
    let callback = Url::parse(location).expect("absolute callback URL");
    assert!(callback.as_str().starts_with(REDIRECT_URI), "{callback}");
    callback
}

pub(crate) fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// What the auth layer does between the redirect back and `complete`: check `state`,
/// take `code` and `iss`.
pub(crate) fn callback_params(callback: &Url, pending: &PendingLogin) -> CallbackParams {
    assert_eq!(param(callback, "state").as_deref(), Some(pending.state.as_str()), "state comes back");
    CallbackParams::new(param(callback, "code").expect("code"), param(callback, "iss"))
}

pub(crate) async fn login(provider: &OidcProvider) -> Result<LoginResult, ProviderError> {
    let authorization = provider.authorize(REDIRECT_URI).await?;
    let callback = visit(&authorization.url).await;
    let params = callback_params(&callback, &authorization.pending);
    provider.complete(&params, &authorization.pending, REDIRECT_URI).await
}

pub(crate) fn rejection(result: Result<LoginResult, ProviderError>) -> String {
    match result {
        Err(ProviderError::Rejected(message)) => message,
        other => panic!("expected Rejected, got {other:?}"),
    }
}

pub(crate) fn denial(result: Result<LoginResult, ProviderError>) -> String {
    match result {
        Err(ProviderError::Denied(message)) => message,
        other => panic!("expected Denied, got {other:?}"),
    }
}

/// A fresh directory for this test's key files.
pub(crate) fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("auth-client-keys-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Runs `openssl` with `args` in `dir`.
pub(crate) fn openssl(dir: &Path, args: &[&str]) {
    let output = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|error| panic!("openssl cannot run ({error}); install it: apt-get install -y openssl"));
    assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

/// An EC P-256 private key (PKCS#8 PEM) made by `openssl` in `dir` as `name`.
pub(crate) fn ec_key(dir: &Path, name: &str) -> PathBuf {
    openssl(dir, &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", name]);
    dir.join(name)
}
