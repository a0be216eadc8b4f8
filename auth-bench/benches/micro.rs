//! Micro-benchmarks of the pieces of the hot path and of a login:
//! `cargo bench -p auth-bench --bench micro`.
//!
//! - `cookie/*`: sealing and opening the session cookie (base64url, AES-256-GCM), and
//!   reading it (and its chunks) from the `Cookie` header;
//! - `session/*`: decoding the session (the sealed binary form, and the JSON of cookies
//!   sealed before it), and the whole `CookieStore::load`;
//! - `miss/*`: one request through the layer (in process, no socket) whose session cookie
//!   is in the session cache (a hit), or was never seen (a miss: read, open, decode,
//!   validate, cache); the difference is what a miss costs;
//! - `user/*`: building the request's `User`, putting it in the extensions, reading claims;
//! - `id_token/*`: verifying a MockIdp-signed RS256 ID token against a key set fetched
//!   once (no network in the loop). auth-providers keeps its verifier private, so this is
//!   a replica of `auth_providers::oidc::id_token::verify` (same openidconnect verifier
//!   and settings, same pre-decode of header and payload), plus the same verification
//!   with a verifier built once, to show what rebuilding it per token costs.

use auth_bench::fixtures;
use auth_core::{CookieStore, ExposeTokens, SESSION_PURPOSE, Session, SessionStore, User};
use auth_tower::bench;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{TimeDelta, Utc};
use criterion::{BatchSize, Criterion, black_box, criterion_group, criterion_main};
use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use openidconnect::core::{CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKey, CoreJwsSigningAlgorithm};
use openidconnect::{ClientId, IssuerUrl, JsonWebKeySet, Nonce};
use serde_json::{Value, json};
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// Polls a future that never waits (the cookie store's) to completion.
fn ready<T>(future: impl Future<Output = T>) -> T {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => panic!("tokio runtime: {error}"),
    }
}

fn headers(cookie: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(cookie) {
        headers.insert(COOKIE, value);
    }
    headers
}

fn cookie(c: &mut Criterion) {
    let sealer = fixtures::sealer();
    let session = fixtures::google_session();
    let json = serde_json::to_vec(&session).unwrap_or_default();
    let sealed = sealer.seal(SESSION_PURPOSE, &json);
    let big = serde_json::to_vec(&fixtures::google_session_with_tokens()).unwrap_or_default();
    let sealed_big = sealer.seal(SESSION_PURPOSE, &big);

    let mut group = c.benchmark_group("cookie");
    group.bench_function(format!("seal ({} B JSON)", json.len()), |b| {
        b.iter(|| sealer.seal(SESSION_PURPOSE, black_box(&json)))
    });
    group.bench_function(format!("open ({} B cookie)", sealed.len()), |b| {
        b.iter(|| sealer.open(SESSION_PURPOSE, black_box(&sealed)))
    });
    group.bench_function(format!("open ({} B chunked cookie)", sealed_big.len()), |b| {
        b.iter(|| sealer.open(SESSION_PURPOSE, black_box(&sealed_big)))
    });
    let plain = headers(&format!("_ga=GA1.1.123456789.1700000000; {}", fixtures::cookie_header(&sealed)));
    group.bench_function("read from Cookie header", |b| {
        b.iter(|| bench::read_cookie(black_box(&plain), "auth_session"))
    });
    let chunked = headers(&fixtures::cookie_header(&sealed_big));
    group.bench_function("read and join 2 chunks", |b| {
        b.iter(|| bench::read_cookie(black_box(&chunked), "auth_session"))
    });
    // What the layer does per request: one pass finding the session cookie's bytes and the
    // header without the layer's cookies (not validated, not joined: the cache compares bytes).
    group.bench_function("scan: find the cookie and strip the layer's cookies", |b| {
        b.iter(|| bench::scan(black_box(&plain), "auth_session", &["auth_pending"]))
    });
    group.bench_function("scan 2 chunks", |b| {
        b.iter(|| bench::scan(black_box(&chunked), "auth_session", &["auth_pending"]))
    });
    group.finish();
}

fn session(c: &mut Criterion) {
    let json = serde_json::to_vec(&fixtures::google_session()).unwrap_or_default();
    let json_big = serde_json::to_vec(&fixtures::google_session_with_tokens()).unwrap_or_default();
    let store = CookieStore::new(Arc::new(fixtures::sealer()));
    let ticket = ready(store.save(&fixtures::google_session())).unwrap_or_default();

    let mut group = c.benchmark_group("session");
    group.bench_function(format!("decode JSON ({} B)", json.len()), |b| {
        b.iter(|| serde_json::from_slice::<Session>(black_box(&json)).ok())
    });
    group.bench_function(format!("decode JSON with tokens ({} B)", json_big.len()), |b| {
        b.iter(|| serde_json::from_slice::<Session>(black_box(&json_big)).ok())
    });
    group.bench_function("CookieStore::load (open + decode + expiry)", |b| {
        b.iter(|| ready(store.load(black_box(&ticket))).ok().flatten())
    });
    // The same session sealed as JSON, as cookies were before the binary form.
    let json_ticket = fixtures::sealer().seal(SESSION_PURPOSE, &json);
    group.bench_function(format!("CookieStore::load of a JSON-sealed cookie ({} B)", json_ticket.len()), |b| {
        b.iter(|| ready(store.load(black_box(&json_ticket))).ok().flatten())
    });
    group.bench_function(format!("CookieStore::open, binary ({} B)", ticket.len()), |b| {
        b.iter(|| store.open(black_box(&ticket)))
    });
    group.finish();
}

/// The layer as the bench's servers run it, with a session cache of `entries`.
fn layer_app(entries: u64) -> axum::Router {
    let mut config = fixtures::config(false);
    config.session_cache_entries = entries;
    let providers = auth_providers::from_config(&config).unwrap_or_default();
    let layer = match auth_tower::AuthLayer::builder(config).with_providers(providers).build() {
        Ok(layer) => layer,
        Err(error) => panic!("the bench layer: {error}"),
    };
    axum::Router::new().route("/", axum::routing::get(auth_bench::variants::home)).layer(layer).with_state(())
}

async fn one_request(app: &axum::Router, cookie: &HeaderValue) -> bool {
    use tower::ServiceExt as _;
    let request = http::Request::get("/").header(COOKIE, cookie.clone()).body(axum::body::Body::empty());
    let Ok(request) = request else { return false };
    match app.clone().oneshot(request).await {
        Ok(response) => response.status() == http::StatusCode::OK,
        Err(never) => match never {},
    }
}

fn miss(c: &mut Criterion) {
    // 20,000 users' cookies, each sealed as a login would; a cache of 16 entries never
    // holds the next one in turn.
    let runtime = runtime();
    let cookies = match runtime.block_on(auth_bench::many::sealed_cookies(20_000)) {
        Ok(cookies) => cookies,
        Err(error) => panic!("{error}"),
    };
    let hits = layer_app(100_000);
    let misses = layer_app(16);
    let mut group = c.benchmark_group("miss");
    group.bench_function("layer request, cookie in the cache (hit)", |b| {
        b.iter(|| runtime.block_on(one_request(&hits, &cookies[0])))
    });
    let mut next = 0;
    group.bench_function("layer request, cookie never seen (miss)", |b| {
        b.iter(|| {
            next = (next + 1) % cookies.len();
            runtime.block_on(one_request(&misses, &cookies[next]))
        })
    });
    group.finish();
}

fn user(c: &mut Criterion) {
    let session = Arc::new(fixtures::google_session());
    let expose = ExposeTokens { id: true, access: true };
    let user = User::from_session(Arc::clone(&session), expose);

    let mut group = c.benchmark_group("user");
    group.bench_function("User::from_session", |b| {
        b.iter(|| User::from_session(Arc::clone(black_box(&session)), expose))
    });
    group.bench_function("User::anonymous", |b| b.iter(User::anonymous));
    group.bench_function("into request extensions", |b| {
        b.iter_batched(
            http::Extensions::new,
            |mut extensions| {
                extensions.insert(User::from_session(Arc::clone(&session), expose));
                extensions
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("email() + name()", |b| b.iter(|| (black_box(&user).email(), black_box(&user).name())));
    group.bench_function("to_json()", |b| b.iter(|| black_box(&user).to_json()));
    group.finish();
}

/// What auth-providers checks before openidconnect: header and payload decoded as JSON.
fn decode_parts(raw: &str) -> Option<(Value, Value)> {
    let mut parts = raw.split('.');
    let header = URL_SAFE_NO_PAD.decode(parts.next()?).ok()?;
    let payload = URL_SAFE_NO_PAD.decode(parts.next()?).ok()?;
    Some((serde_json::from_slice(&header).ok()?, serde_json::from_slice(&payload).ok()?))
}

const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 9] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// The verifier as auth-providers configures it.
fn verifier(keys: &[CoreJsonWebKey], issuer: &str, client_id: &str) -> Option<CoreIdTokenVerifier<'static>> {
    let leeway = TimeDelta::seconds(60);
    let verifier = CoreIdTokenVerifier::new_public_client(
        ClientId::new(client_id.to_owned()),
        IssuerUrl::new(issuer.to_owned()).ok()?,
        JsonWebKeySet::new(keys.to_vec()),
    )
    .set_allowed_algs(ALLOWED_ALGS)
    .set_other_audience_verifier_fn(|_| true)
    .set_time_fn(move || Utc::now() - leeway)
    .set_issue_time_verifier_fn(move |iat| if iat > Utc::now() + leeway { Err("future".into()) } else { Ok(()) });
    Some(verifier)
}

fn id_token(c: &mut Criterion) {
    let runtime = runtime();
    let setup = runtime.block_on(async {
        let idp = auth_testkit::MockIdp::start().await.ok()?;
        let client_id = idp.client_id().to_owned();
        let issuer = idp.issuer();
        let now = Utc::now().timestamp();
        let mut claims = json!({
            "iss": issuer, "aud": client_id, "azp": client_id, "nonce": "n-0S6_WzA2Mj",
            "iat": now, "exp": now + 3600,
        });
        if let (Some(claims), Value::Object(google)) =
            (claims.as_object_mut(), Value::Object(fixtures::google_claims(now as u64)))
        {
            for (k, v) in google {
                claims.entry(k).or_insert(v);
            }
        }
        let raw = idp.sign_id_token(claims);
        let jwks = reqwest::get(format!("{issuer}/jwks")).await.ok()?.text().await.ok()?;
        let set: JsonWebKeySet<CoreJsonWebKey> = serde_json::from_str(&jwks).ok()?;
        Some((raw, set.keys().clone(), issuer, client_id, idp))
    });
    let Some((raw, keys, issuer, client_id, _idp)) = setup else {
        eprintln!("id_token benchmarks skipped: MockIdp could not be started or its JWKS read");
        return;
    };
    let nonce = Nonce::new("n-0S6_WzA2Mj".into());
    let prebuilt = verifier(&keys, &issuer, &client_id);
    // Check the bench verified something: a broken setup would measure early failures.
    let token = CoreIdToken::from_str(&raw).ok();
    let verified = token.zip(prebuilt.as_ref()).is_some_and(|(t, v)| t.claims(v, &nonce).is_ok());
    assert!(verified, "the ID token did not verify: the id_token numbers are meaningless");
    let mut group = c.benchmark_group("id_token");
    group.bench_function(format!("verify RS256 as auth-providers does ({} B token)", raw.len()), |b| {
        b.iter(|| {
            let (_header, _claims) = decode_parts(black_box(&raw))?;
            let token = CoreIdToken::from_str(&raw).ok()?;
            let verifier = verifier(&keys, &issuer, &client_id)?;
            token.claims(&verifier, &nonce).ok().map(drop)
        })
    });
    if let Some(prebuilt) = &prebuilt {
        group.bench_function("verify RS256, verifier built once, no pre-decode", |b| {
            b.iter(|| {
                let token = CoreIdToken::from_str(black_box(&raw)).ok()?;
                token.claims(prebuilt, &nonce).ok().map(drop)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, cookie, session, miss, user, id_token);
criterion_main!(benches);
