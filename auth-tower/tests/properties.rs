//! Properties of the layer, checked on generated inputs (proptest) in the normal test run:
//! an accepted `return_to` keeps the browser on the site once it resolves the `Location`
//! as browsers do, and a session cookie with any one bit flipped (whole, split into
//! chunks, or a server-side ticket) makes the request anonymous. The fuzz targets of
//! `fuzz/` check the same and more, on inputs libFuzzer finds (`cargo xtask fuzz`).
//!
//! Requests go through the layer in process (`tower::ServiceExt::oneshot`), with a
//! provider that only starts logins and completes them.
#![allow(clippy::unwrap_used)]

use auth_tower::fuzz::sanitize_return_to;
use auth_tower::{
    AuthConfig, AuthLayer, Authorization, BearerIdentity, CallbackParams, Claims, Identity, IdentityProvider,
    LoginResult, MemoryStore, PendingLogin, ProviderError, TokenSet, User, async_trait, random_token, unix_now,
};
use http::header::{AUTHORIZATION, COOKIE, LOCATION, SET_COOKIE};
use http::{Request, Response, StatusCode};
use proptest::prelude::*;
use std::convert::Infallible;
use std::sync::{Arc, LazyLock};
use tower::{Layer, ServiceExt, service_fn};
use url::Url;

const SECRET: &str = "a-test-cookie-secret-of-at-least-32-bytes";
const CALLBACK: &str = "https://app.example/oauth2callback";

// ----------------------------------------------------------------------------- the app

/// Starts logins; completes `code=good` as alice, and `code=big` with claims large enough
/// to split the session cookie into chunks. Its bearer tokens (`iss` https://idp.test) are
/// all valid.
#[derive(Debug)]
struct Fake;

#[async_trait]
impl IdentityProvider for Fake {
    fn name(&self) -> &str {
        "fake"
    }

    async fn authorize(&self, redirect_uri: &str) -> Result<Authorization, ProviderError> {
        let state = random_token();
        let url = format!("https://idp.test/authorize?state={state}&redirect_uri={redirect_uri}");
        Ok(Authorization::new(url, PendingLogin::new(state)))
    }

    async fn complete(
        &self,
        callback: &CallbackParams,
        _: &PendingLogin,
        _: &str,
    ) -> Result<LoginResult, ProviderError> {
        let mut claims = Claims::new();
        claims.insert("sub".into(), "alice".into());
        if callback.code == "big" {
            claims.insert("blob".into(), "b".repeat(6000).into());
        }
        Ok(LoginResult::new(Identity::new("fake", "alice", claims), TokenSet::new()))
    }

    fn accepts_bearer_tokens(&self) -> bool {
        true
    }

    fn accepts_bearer_from(&self, issuer: &str) -> bool {
        issuer == "https://idp.test"
    }

    async fn verify_access_token(&self, _token: &str) -> Result<BearerIdentity, ProviderError> {
        let identity = Identity::new("fake", "api-client", Claims::new());
        Ok(BearerIdentity::new(identity, unix_now() + 300))
    }
}

fn layer(memory: bool) -> AuthLayer {
    let toml = format!("[auth]\nredirect_uri = \"{CALLBACK}\"\ncookie_secret = \"{SECRET}\"\n");
    let config = AuthConfig::from_toml_str(&toml, "properties.rs").unwrap();
    let builder = AuthLayer::builder(config).with_provider(Arc::new(Fake));
    let builder = if memory { builder.with_store(Arc::new(MemoryStore::new())) } else { builder };
    builder.build().unwrap()
}

/// The app answers who the layer says the request is from, and the `Cookie` header it got.
async fn handler(request: Request<String>) -> Result<Response<String>, Infallible> {
    let user = request.extensions().get::<User>().cloned().unwrap_or_default();
    let cookie = request.headers().get(COOKIE).map(|c| c.to_str().unwrap_or("?").to_owned()).unwrap_or_default();
    Ok(Response::new(format!("{}\n{cookie}", user.sub().unwrap_or("anonymous"))))
}

/// `cases` cases; a failing input is kept in `tests/properties.regressions` and tried first.
fn cases(cases: u32) -> ProptestConfig {
    let persistence = proptest::test_runner::FileFailurePersistence::WithSource("regressions");
    ProptestConfig { cases, failure_persistence: Some(Box::new(persistence)), ..ProptestConfig::default() }
}

static RUNTIME: LazyLock<tokio::runtime::Runtime> =
    LazyLock::new(|| tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap());

/// A browser's cookies, as `(name, value)`.
type Jar = Vec<(String, String)>;

/// GETs `uri` from `layer`'s app with `jar`; returns the response and the body.
async fn get(layer: &AuthLayer, uri: &str, jar: &Jar, headers: &[(&str, &str)]) -> (Response<()>, String) {
    let mut request = Request::get(uri);
    if !jar.is_empty() {
        let cookies: Vec<String> = jar.iter().map(|(n, v)| format!("{n}={v}")).collect();
        request = request.header(COOKIE, cookies.join("; "));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = layer.layer(service_fn(handler)).oneshot(request.body(String::new()).unwrap()).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = http_body_util::BodyExt::collect(body).await.map(|c| c.to_bytes()).unwrap_or_default();
    (Response::from_parts(parts, ()), String::from_utf8_lossy(&body).into_owned())
}

/// The `(name, value, deleted)` of each `Set-Cookie`.
fn set_cookies(response: &Response<()>) -> Vec<(String, String, bool)> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|c| {
            let (name, value) = c.split(';').next()?.split_once('=')?;
            Some((name.to_owned(), value.to_owned(), c.contains("Max-Age=0")))
        })
        .collect()
}

/// Logs in with `return_to` and `code`; returns the callback's response and the session
/// cookies it set.
async fn sign_in(layer: &AuthLayer, return_to: Option<&str>, code: &str) -> (Response<()>, Jar) {
    let query = match return_to {
        Some(r) => url::form_urlencoded::Serializer::new(String::new()).append_pair("return_to", r).finish(),
        None => String::new(),
    };
    let (login, _) = get(layer, &format!("/auth/login?{query}"), &Jar::new(), &[]).await;
    assert_eq!(login.status(), StatusCode::FOUND);
    let authorize = Url::parse(login.headers()[LOCATION].to_str().unwrap()).unwrap();
    let state = authorize.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let pending: Jar = set_cookies(&login).into_iter().map(|(n, v, _)| (n, v)).collect();
    let (callback, _) = get(layer, &format!("/oauth2callback?state={state}&code={code}"), &pending, &[]).await;
    let jar = set_cookies(&callback)
        .into_iter()
        .filter(|(n, _, deleted)| n.contains("auth_session") && !deleted)
        .map(|(n, v, _)| (n, v))
        .collect();
    (callback, jar)
}

// ------------------------------------------------------------------------- return_to

/// Paths built from what open redirects are made of: slashes, backslashes, `%2F`, `%5C`,
/// `%25`, schemes, whitespace and controls, non-ASCII; and any text at all.
fn return_to() -> impl Strategy<Value = String> {
    prop_oneof![
        "/[/\\\\%25FfCc.:@?#ab \\t\\n\\r\\x00\\x7f\\u{a0}\\u{3000}é]{0,24}",
        "[/\\\\%2F5Cc:a.]{0,16}",
        ".{0,32}",
    ]
}

/// Where a browser goes with `location` on `base`: WHATWG URL parsing, as the `url` crate
/// implements it (backslashes as slashes, tabs and newlines removed, ...).
fn resolve(base: &str, location: &str) -> Url {
    Url::parse(base).unwrap().join(location).unwrap()
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn an_accepted_return_to_stays_on_the_site(raw in return_to()) {
        let kept = sanitize_return_to(Some(&raw));
        prop_assert!(http::HeaderValue::from_str(&kept).is_ok(), "{:?}", kept);
        for base in [format!("{CALLBACK}?code=c&state=s"), "https://app.example/a/b?x=1".to_owned()] {
            let resolved = resolve(&base, &kept);
            prop_assert_eq!(resolved.origin(), Url::parse(CALLBACK).unwrap().origin(), "{:?} -> {:?}", raw, kept);
        }
    }
}

proptest! {
    #![proptest_config(cases(48))]

    #[test]
    fn after_login_the_browser_lands_on_the_site(raw in return_to()) {
        static LAYER: LazyLock<AuthLayer> = LazyLock::new(|| layer(false));
        let (callback, _) = RUNTIME.block_on(sign_in(&LAYER, Some(&raw), "good"));
        prop_assert_eq!(callback.status(), StatusCode::FOUND);
        let location = callback.headers()[LOCATION].to_str().unwrap();
        let resolved = resolve(&format!("{CALLBACK}?code=good&state=s"), location);
        prop_assert_eq!(resolved.origin(), Url::parse(CALLBACK).unwrap().origin(), "{:?} -> {:?}", raw, location);
    }
}

// --------------------------------------------------------------------- flipped bits

/// A signed-in browser's session cookies: small (one cookie), big (chunks), and a ticket of
/// the memory store; with the layer that set them.
static SIGNED_IN: LazyLock<Vec<(&'static str, AuthLayer, Jar)>> = LazyLock::new(|| {
    RUNTIME.block_on(async {
        let mut out = Vec::new();
        for (name, memory, code) in [("cookie", false, "good"), ("chunks", false, "big"), ("ticket", true, "good")] {
            let layer = layer(memory);
            let (_, jar) = sign_in(&layer, None, code).await;
            assert_eq!(jar.len() > 1, code == "big", "{name}: {jar:?}");
            let (_, body) = get(&layer, "/me", &jar, &[]).await;
            assert!(body.starts_with("alice\n"), "{name}: the untouched cookie signs alice in");
            out.push((name, layer, jar));
        }
        out
    })
});

proptest! {
    #![proptest_config(cases(192))]

    #[test]
    fn a_session_cookie_with_one_bit_flipped_signs_nobody_in(which in 0..3usize, bit in any::<usize>()) {
        let (name, layer, jar) = &SIGNED_IN[which];
        let total: usize = jar.iter().map(|(_, v)| v.len()).sum();
        let mut at = bit % (total * 8);
        let mut tampered = jar.clone();
        for (_, value) in &mut tampered {
            if at < value.len() * 8 {
                let mut bytes = value.clone().into_bytes();
                bytes[at / 8] ^= 1 << (at % 8);
                // Bytes a browser cannot send in a cookie (controls, non-ASCII) never arrive.
                let Ok(text) = String::from_utf8(bytes) else { return Ok(()) };
                if text.bytes().any(|b| b.is_ascii_control()) {
                    return Ok(());
                }
                *value = text;
                break;
            }
            at -= value.len() * 8;
        }
        let (response, body) = RUNTIME.block_on(get(layer, "/me", &tampered, &[]));
        prop_assert!(body.starts_with("anonymous\n"), "{}: bit {} flipped, still {:?}", name, bit, body.lines().next());
        // The cookie that did not open is deleted.
        let deleted = set_cookies(&response).into_iter().any(|(n, _, deleted)| n.contains("auth_session") && deleted);
        prop_assert!(deleted, "{}: bit {} flipped, the cookie is kept", name, bit);
    }
}

// -------------------------------------------------------------------------- regressions

/// Found while writing the fuzz target `layer`: a request with a bearer token went to the
/// app with its `Cookie` header untouched, so the app saw the layer's session cookie,
/// which the crate docs say it never does.
#[test]
fn a_bearer_request_does_not_show_the_session_cookie_to_the_app() {
    let (_, layer, jar) = &SIGNED_IN[0];
    // A JWT-shaped token naming the fake provider's issuer.
    let token = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkcC50ZXN0In0.c2ln";
    let (response, body) =
        RUNTIME.block_on(get(layer, "/me", jar, &[(AUTHORIZATION.as_str(), &format!("Bearer {token}"))]));
    assert_eq!(response.status(), StatusCode::OK);
    let (user, cookie) = body.split_once('\n').unwrap();
    assert_eq!(user, "api-client", "the bearer token's user");
    assert!(!cookie.contains("auth_session"), "the app sees the session cookie: {cookie:.60}");
}
