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

/// Log lines captured by [`capture_logs`].
#[derive(Clone, Default)]
pub(crate) struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    /// Everything logged so far.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What one thread captures: `(target prefix, level)` directives, and where the lines go.
type Capture = (Vec<(String, tracing::Level)>, Captured);

thread_local! {
    static CAPTURE: std::cell::RefCell<Option<Capture>> = const { std::cell::RefCell::new(None) };
}

/// Writes to the capture of the current thread, if any.
struct ThreadWriter;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for ThreadWriter {
    type Writer = Box<dyn std::io::Write>;
    fn make_writer(&'a self) -> Self::Writer {
        match CAPTURE.with(|c| c.borrow().as_ref().map(|(_, captured)| captured.clone())) {
            Some(captured) => Box::new(captured),
            None => Box::new(std::io::sink()),
        }
    }
}

/// Enables what the current thread captures, decided for every span and event and never
/// cached per callsite.
struct Capturing;

impl<S> tracing_subscriber::layer::Filter<S> for Capturing {
    fn enabled(&self, meta: &tracing::Metadata<'_>, _: &tracing_subscriber::layer::Context<'_, S>) -> bool {
        CAPTURE.with(|c| {
            c.borrow().as_ref().is_some_and(|(directives, _)| {
                directives
                    .iter()
                    .any(|(target, level)| meta.target().starts_with(target.as_str()) && meta.level() <= level)
            })
        })
    }

    fn callsite_enabled(&self, _: &'static tracing::Metadata<'static>) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }
}

/// Ends this thread's capture when dropped.
pub(crate) struct CaptureGuard;

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        CAPTURE.with(|c| c.borrow_mut().take());
    }
}

/// Captures the log lines of the current thread (the suites' `#[tokio::test]`s run the
/// provider and MockIdp on it) that `filter` lets through (`"target=level,..."` or a bare
/// level for every target), until the guard drops.
///
/// One global subscriber for the whole test binary, installed by the first capture, routes
/// each event to the capture of the thread it happens on. Not a scoped subscriber per test
/// (`set_default`): tracing caches whether a callsite is enabled across threads, so a callsite
/// another test's thread reached first could stay disabled here (a flaky test in CI).
pub(crate) fn capture_logs(filter: &str) -> (Captured, CaptureGuard) {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let layer = tracing_subscriber::fmt::layer().with_writer(ThreadWriter).with_ansi(false).with_filter(Capturing);
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
            .expect("no other global subscriber in this test binary");
    });
    let directives = filter
        .split(',')
        .map(|item| match item.split_once('=') {
            Some((target, level)) => (target.trim().to_owned(), level.trim().parse().expect("a level")),
            None => (String::new(), item.trim().parse().expect("a level")),
        })
        .collect();
    let captured = Captured::default();
    CAPTURE.with(|c| *c.borrow_mut() = Some((directives, captured.clone())));
    (captured, CaptureGuard)
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
