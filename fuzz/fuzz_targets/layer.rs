//! The whole layer (`AuthLayer` around a small app), driven by a browser with a cookie jar
//! through a sequence of requests: the routes' query parsing, the login and callback with
//! a fake provider (as `auth-tower/tests/flow.rs` has one), the session cookie (whole or
//! split, tampered with), logout, back-channel logout and bearer tokens.
//!
//! Properties, after every request: no panic; no 5xx (except the documented 501 of a
//! back-channel logout with the cookie store); every `Location` resolves to the app's
//! origin (or the provider's, for the login and logout redirects); every cookie the layer
//! sets fits a browser's 4096 bytes; the app never sees the layer's cookies (bearer requests
//! included: fuzz/README.md finding 1); and a session cookie with one bit flipped makes the
//! request anonymous (unless a later flip undoes it).
//!
//! A fresh layer per input (building one is cheap): inputs replay the same way.
#![no_main]

use auth_core::{
    AuthConfig, Authorization, BearerIdentity, CallbackParams, Claims, Identity, IdentityProvider, LoginResult,
    LogoutClaims, MemoryStore, PendingLogin, ProviderError, Session, TokenSet, User, async_trait, random_token,
    unix_now,
};
use auth_tower::AuthLayer;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{COOKIE, LOCATION, SET_COOKIE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use tower::{Layer as _, ServiceExt as _, service_fn};
use url::Url;

const APP: &str = "http://127.0.0.1:3000";
const IDP: &str = "https://idp.test";
const SECRET: &str = "a-test-cookie-secret-of-at-least-32-bytes";

// ----------------------------------------------------------------------- fake provider

/// A provider that needs no network: `code=good` (or `big`, with claims large enough to
/// split the session cookie) signs in alice, `deny` is refused, anything else rejected. Its
/// bearer tokens are "verified" by reading their payload (so any claims reach the layer);
/// its logout tokens are `sub:NAME`.
#[derive(Debug)]
struct FakeProvider;

#[async_trait]
impl IdentityProvider for FakeProvider {
    fn name(&self) -> &str {
        "fake"
    }

    async fn authorize(&self, redirect_uri: &str) -> Result<Authorization, ProviderError> {
        let state = random_token();
        let url = format!("{IDP}/authorize?state={state}&redirect_uri={redirect_uri}");
        Ok(Authorization::new(url, PendingLogin::new(state).with_nonce("nonce").with_pkce_verifier("verifier")))
    }

    async fn complete(
        &self,
        callback: &CallbackParams,
        _: &PendingLogin,
        _: &str,
    ) -> Result<LoginResult, ProviderError> {
        let blob = match callback.code.as_str() {
            "good" => 0,
            "big" => 5000,
            "deny" => return Err(ProviderError::Denied("not allowed".into())),
            _ => return Err(ProviderError::Rejected("bad code".into())),
        };
        let mut claims = Claims::new();
        claims.insert("sub".into(), "alice".into());
        claims.insert("email".into(), "alice@example.test".into());
        if blob > 0 {
            claims.insert("blob".into(), "b".repeat(blob).into());
        }
        let tokens = TokenSet::new().with_id_token("id.token").with_refresh_token("refresh");
        Ok(LoginResult::new(Identity::new("fake", "alice", claims), tokens))
    }

    async fn end_session_url(
        &self,
        _: &Session,
        post_logout: &str,
        state: &str,
    ) -> Result<Option<String>, ProviderError> {
        Ok(Some(format!("{IDP}/logout?post_logout_redirect_uri={post_logout}&state={state}")))
    }

    async fn verify_logout_token(&self, token: &str) -> Result<LogoutClaims, ProviderError> {
        match token.strip_prefix("sub:") {
            Some(sub) => Ok(LogoutClaims::new(Some(sub.to_owned()), None).with_token_id(token, unix_now() + 60)),
            None => Err(ProviderError::Rejected("not a logout token".into())),
        }
    }

    fn accepts_bearer_tokens(&self) -> bool {
        true
    }

    fn accepts_bearer_from(&self, issuer: &str) -> bool {
        issuer == IDP
    }

    async fn verify_access_token(&self, token: &str) -> Result<BearerIdentity, ProviderError> {
        let rejected = || ProviderError::Rejected("not a token".into());
        let payload = token.split('.').nth(1).ok_or_else(rejected)?;
        let json = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).map_err(|_| rejected())?;
        let claims: Claims = serde_json::from_slice(&json).map_err(|_| rejected())?;
        let sub = claims.get("sub").and_then(|s| s.as_str()).ok_or_else(rejected)?.to_owned();
        let exp = claims.get("exp").and_then(serde_json::Value::as_u64).ok_or_else(rejected)?;
        Ok(BearerIdentity::new(Identity::new("fake", sub, claims), exp))
    }
}

// -------------------------------------------------------------------------------- input

/// One step of the browser, one line of the input (a script; lines that are none of these
/// are skipped; at most 16 steps):
///
/// - `memory` (first line): sessions in a `MemoryStore`, tickets in the cookie;
/// - `login QUERY`: `GET /auth/login?QUERY` with the jar;
/// - `callback QUERY`: `GET /oauth2callback?QUERY` with the jar, `$state` replaced by the
///   `state` of the last login (`code=good` or `big` signs alice in, `deny` is refused);
/// - `tamper N`: flips bit `N` (modulo their size) of the session cookies in the jar;
/// - `probe`: `GET /me` with the jar: who the layer says it is must be what the steps
///   before imply (signed in after a callback redirect, anonymous after a tamper, unless
///   flips undid each other);
/// - `logout`: a same-origin `POST /auth/logout` with the jar;
/// - `send METHOD TARGET`: any request, with the jar; the lines after it add to it:
///   `h NAME: VALUE` a header, `b BODY` the body, `nojar` no jar.
///
/// Queries and targets may hold any byte: those a URI cannot hold are percent-encoded.
#[derive(Debug)]
enum Step<'a> {
    Login(&'a [u8]),
    Callback(&'a [u8]),
    Tamper(usize),
    Probe,
    Logout,
    Send { method: &'a [u8], target: &'a [u8], headers: Vec<(&'a [u8], &'a [u8])>, body: &'a [u8], jar: bool },
}

fn parse(data: &[u8]) -> (bool, Vec<Step<'_>>) {
    let mut lines = data.split(|b| *b == b'\n').peekable();
    let memory = lines.next_if(|l| *l == b"memory").is_some();
    let mut steps = Vec::new();
    for line in lines {
        let (verb, rest) = match line.iter().position(|b| *b == b' ') {
            Some(space) => (&line[..space], &line[space + 1..]),
            None => (line, &line[line.len()..]),
        };
        let step = match verb {
            b"login" => Step::Login(rest),
            b"callback" => Step::Callback(rest),
            b"tamper" => Step::Tamper(std::str::from_utf8(rest).ok().and_then(|n| n.parse().ok()).unwrap_or(0)),
            b"probe" => Step::Probe,
            b"logout" => Step::Logout,
            b"send" => {
                let (method, target) = match rest.iter().position(|b| *b == b' ') {
                    Some(space) => (&rest[..space], &rest[space + 1..]),
                    None => (rest, &b"/"[..]),
                };
                Step::Send { method, target, headers: Vec::new(), body: b"", jar: true }
            }
            b"h" | b"b" | b"nojar" => {
                if let Some(Step::Send { headers, body, jar, .. }) = steps.last_mut() {
                    match verb {
                        b"h" => {
                            let colon = rest.iter().position(|b| *b == b':').unwrap_or(rest.len());
                            let value = rest.get(colon + 1..).unwrap_or_default();
                            headers.push((&rest[..colon], value.trim_ascii_start()));
                        }
                        b"b" => *body = rest,
                        _ => *jar = false,
                    }
                }
                continue;
            }
            _ => continue,
        };
        if steps.len() == 16 {
            break;
        }
        steps.push(step);
    }
    (memory, steps)
}

// ---------------------------------------------------------------------------- the app

/// `LAYER_TRACE=1` prints each request and its answer (to check what a seed reaches).
fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("LAYER_TRACE").is_some())
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a current-thread runtime")
    })
}

fn config() -> &'static AuthConfig {
    static CONFIG: OnceLock<AuthConfig> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let toml = format!("[auth]\nredirect_uri = \"{APP}/oauth2callback\"\ncookie_secret = \"{SECRET}\"\n");
        AuthConfig::from_toml_str(&toml, "fuzz.toml").expect("the fuzz config is valid")
    })
}

/// The app: answers who the request's user is, after checking that the layer stripped its
/// own cookies from what the app sees.
async fn app(request: Request<String>) -> Result<Response<String>, Infallible> {
    for value in request.headers().get_all(COOKIE) {
        for pair in value.as_bytes().split(|b| *b == b';') {
            let Some(eq) = pair.iter().position(|b| *b == b'=') else { continue };
            let name = String::from_utf8_lossy(pair[..eq].trim_ascii());
            assert!(!is_layer_cookie(&name), "the app sees the layer's cookie {name:?}");
        }
    }
    let user = request.extensions().get::<User>().expect("the layer puts a User on every request");
    let body = match user.sub() {
        Some(sub) => format!("user:{sub}"),
        None => "anonymous".to_owned(),
    };
    Ok(Response::new(body))
}

/// Whether a cookie name is one of the layer's, as it strips them: `auth_session`,
/// `auth_session.0` to `.15`, `auth_pending` and `auth_pending_*` (`auth_session.16` or
/// `auth_sessionX` are the app's).
fn is_layer_cookie(name: &str) -> bool {
    if name == "auth_session" || name == "auth_pending" || name.starts_with("auth_pending_") {
        return true;
    }
    name.strip_prefix("auth_session.").is_some_and(|i| i.parse::<usize>().is_ok_and(|n| n < 16 && n.to_string() == i))
}

// ------------------------------------------------------------------------------ browser

/// Characters left as they are in a fuzzed query; the rest is percent-encoded so that
/// the URI parses (`%` stays, so escapes of any byte reach the layer).
fn encode_query(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    for &byte in raw {
        if byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

struct Browser<S> {
    app: S,
    jar: BTreeMap<String, String>,
    memory_store: bool,
    /// The `state` of the last login started.
    state: Option<String>,
    /// Whether the jar's session cookie signs someone in, when known.
    signed_in: Option<bool>,
    /// The session cookies of the jar when they last signed someone in.
    valid: Option<Vec<(String, String)>>,
}

/// What a request was, for the checks on its response.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Login,
    Callback,
    Logout,
    Backchannel,
    Other,
}

impl<S> Browser<S>
where
    S: tower::Service<Request<String>, Response = Response<auth_tower::AuthBody<String>>, Error = Infallible> + Clone,
{
    /// The session cookies (whole or chunks) in the jar.
    fn session_cookies(&self) -> Vec<(String, String)> {
        self.jar.iter().filter(|(n, _)| n.starts_with("auth_session")).map(|(n, v)| (n.clone(), v.clone())).collect()
    }

    fn jar_header(&self) -> Option<HeaderValue> {
        if self.jar.is_empty() {
            return None;
        }
        let text = self.jar.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ");
        HeaderValue::from_str(&text).ok()
    }

    /// Sends `request`, checks the response, updates the jar; returns status, `Location`
    /// and body.
    async fn send(&mut self, request: Request<String>, kind: Kind) -> (StatusCode, Option<Url>, String) {
        let uri = request.uri().clone();
        let response = self.app.clone().oneshot(request).await.unwrap_or_else(|e| match e {});
        let status = response.status();
        if trace() {
            eprintln!("{uri} -> {status} {:?}", response.headers().get(LOCATION));
        }
        let cookie_store_501 = kind == Kind::Backchannel && !self.memory_store && status == StatusCode::NOT_IMPLEMENTED;
        assert!(!status.is_server_error() || cookie_store_501, "{status} for {uri}");

        let location = response.headers().get(LOCATION).map(|value| {
            let text = value.to_str().expect("an ASCII Location");
            let base = Url::parse(&format!("{APP}{uri}")).expect("the request URL parses");
            let resolved = base.join(text).unwrap_or_else(|e| panic!("Location {text:?} does not resolve: {e}"));
            let app = Url::parse(APP).expect("the app URL").origin();
            let idp = Url::parse(IDP).expect("the IdP URL").origin();
            let offsite_ok = matches!(kind, Kind::Login | Kind::Logout) && resolved.origin() == idp;
            assert!(resolved.origin() == app || offsite_ok, "Location {text:?} leaves the site for {uri}");
            resolved
        });

        let set_cookies: Vec<String> = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().expect("an ASCII Set-Cookie").to_owned())
            .collect();
        assert!(set_cookies.len() <= 24, "{} Set-Cookie headers", set_cookies.len());
        for cookie in &set_cookies {
            let pair = cookie.split(';').next().unwrap_or_default();
            assert!(pair.len() <= 4096, "a cookie of {} bytes: browsers drop it", pair.len());
            let (name, value) = pair.split_once('=').expect("name=value");
            assert!(is_layer_cookie(name), "the layer set someone else's cookie {name:?}");
            if cookie.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
        let renewed = set_cookies.iter().any(|c| c.starts_with("auth_session") && !c.contains("Max-Age=0"));
        if renewed && self.signed_in == Some(true) && kind == Kind::Other {
            self.valid = Some(self.session_cookies());
        }
        let body = response.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
        assert!(body.len() <= 64 * 1024, "a body of {} bytes", body.len());
        (status, location, String::from_utf8_lossy(&body).into_owned())
    }

    fn request(&self, method: Method, uri: &str, jar: bool) -> Option<http::request::Builder> {
        let uri = http::Uri::try_from(uri).ok()?;
        let mut builder = Request::builder().method(method).uri(uri);
        if jar && let Some(cookies) = self.jar_header() {
            builder = builder.header(COOKIE, cookies);
        }
        Some(builder)
    }

    async fn get(&mut self, uri: &str, kind: Kind) -> Option<(StatusCode, Option<Url>, String)> {
        let request = self.request(Method::GET, uri, true)?.body(String::new()).ok()?;
        Some(self.send(request, kind).await)
    }

    async fn step(&mut self, step: Step<'_>) {
        match step {
            Step::Login(query) => {
                let Some((status, location, _)) =
                    self.get(&format!("/auth/login?{}", encode_query(query)), Kind::Login).await
                else {
                    return;
                };
                if status == StatusCode::FOUND
                    && let Some(location) = location
                {
                    self.state = location.query_pairs().find(|(k, _)| k == "state").map(|(_, v)| v.into_owned());
                }
            }
            Step::Callback(query) => {
                let query = encode_query(query).replace("$state", self.state.as_deref().unwrap_or_default());
                let Some((status, _, _)) = self.get(&format!("/oauth2callback?{query}"), Kind::Callback).await else {
                    return;
                };
                if status == StatusCode::FOUND {
                    // Signed in: the session cookie was just set.
                    assert!(self.jar.keys().any(|n| n.starts_with("auth_session")), "signed in without a cookie");
                    self.signed_in = Some(true);
                    self.valid = Some(self.session_cookies());
                }
            }
            Step::Tamper(bit) => {
                let names: Vec<String> = self.jar.keys().filter(|n| n.starts_with("auth_session")).cloned().collect();
                let total: usize = names.iter().map(|n| self.jar[n].len()).sum();
                if total == 0 {
                    return;
                }
                let mut at = bit % (total * 8);
                for name in names {
                    let value = &self.jar[&name];
                    if at < value.len() * 8 {
                        let mut bytes = value.clone().into_bytes();
                        bytes[at / 8] ^= 1 << (at % 8);
                        // Only flips a browser could send: no control character, no
                        // non-ASCII byte (the jar would be left unsendable).
                        let Ok(tampered) = String::from_utf8(bytes) else { return };
                        if trace() {
                            eprintln!(
                                "tamper: {name} byte {} of {}: {:?}",
                                at / 8,
                                value.len(),
                                tampered.get(at / 8..at / 8 + 1)
                            );
                        }
                        let original = self.jar.insert(name.clone(), tampered);
                        if self.jar_header().is_some() {
                            // Signed in only when the flips so far undid each other.
                            if self.signed_in.is_some() {
                                self.signed_in = Some(self.valid.as_ref() == Some(&self.session_cookies()));
                            }
                        } else if let Some(original) = original {
                            self.jar.insert(name, original);
                        }
                        return;
                    }
                    at -= value.len() * 8;
                }
            }
            Step::Probe => {
                let Some((status, _, body)) = self.get("/me", Kind::Other).await else { return };
                assert_eq!(status, StatusCode::OK);
                let actual = body.starts_with("user:");
                if trace() {
                    eprintln!("probe: {body}");
                }
                match self.signed_in {
                    Some(expected) => assert_eq!(actual, expected, "signed in: {actual}, expected {expected}"),
                    None => {
                        self.signed_in = Some(actual);
                        self.valid = actual.then(|| self.session_cookies());
                    }
                }
            }
            Step::Logout => {
                let Some(request) = self.request(Method::POST, "/auth/logout", true) else { return };
                let Ok(request) = request.header("origin", APP).body(String::new()) else { return };
                let (status, _, _) = self.send(request, Kind::Logout).await;
                if status.is_redirection() {
                    self.signed_in = Some(false);
                    self.valid = None;
                }
            }
            Step::Send { method, target, headers, body, jar } => {
                let Ok(method) = Method::from_bytes(method) else { return };
                let target = encode_query(target);
                let path = target.split('?').next().unwrap_or_default();
                let kind = match path {
                    "/auth/login" => Kind::Login,
                    "/oauth2callback" => Kind::Callback,
                    "/auth/logout" => Kind::Logout,
                    "/auth/backchannel-logout" => Kind::Backchannel,
                    _ => Kind::Other,
                };
                let Some(mut request) = self.request(method, &target, jar) else { return };
                for (name, value) in headers {
                    if let (Ok(name), Ok(value)) = (http::HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
                    {
                        request = request.header(name, value);
                    }
                }
                let Ok(request) = request.body(String::from_utf8_lossy(body).into_owned()) else { return };
                self.send(request, kind).await;
                // Anything may have happened to the session (a logout, a back-channel logout).
                self.signed_in = None;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (memory_store, steps) = parse(data);
    let mut builder = AuthLayer::builder(config().clone()).with_provider(Arc::new(FakeProvider));
    if memory_store {
        builder = builder.with_store(Arc::new(MemoryStore::new()));
    }
    let layer = builder.build().expect("the fuzz layer builds");
    let mut browser = Browser {
        app: layer.layer(service_fn(app)),
        jar: BTreeMap::new(),
        memory_store,
        state: None,
        signed_in: Some(false),
        valid: None,
    };
    runtime().block_on(async {
        for step in steps {
            browser.step(step).await;
        }
    });
});
