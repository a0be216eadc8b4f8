//! A GitHub-shaped OAuth 2.0 provider on loopback: `/login/oauth/authorize` (signs the one
//! user in at once), `/login/oauth/access_token` (credentials in the form body, PKCE S256,
//! and GitHub's habit of answering a bad code with HTTP 200 and `{"error": ...}`), and the
//! API's `/user` and `/user/emails`.

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

pub(crate) const CLIENT_ID: &str = "gh-client";
pub(crate) const CLIENT_SECRET: &str = "gh-secret";
pub(crate) const USER_ID: u64 = 583_231;

#[derive(Default)]
struct Shared {
    /// code -> (redirect_uri, code_challenge)
    codes: Mutex<HashMap<String, (String, String)>>,
    tokens: Mutex<Vec<String>>,
    counter: AtomicUsize,
    /// The API answers 503 while set.
    api_down: AtomicBool,
    last_authorize: Mutex<HashMap<String, String>>,
}

/// The running mock; stops when dropped.
pub(crate) struct GitHubMock {
    pub(crate) base: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for GitHubMock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl GitHubMock {
    pub(crate) async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/login/oauth/authorize", get(authorize))
            .route("/login/oauth/access_token", post(access_token))
            .route("/api/user", get(user))
            .route("/api/user/emails", get(emails))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind mock");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base, shared, task }
    }

    pub(crate) fn set_api_down(&self, down: bool) {
        self.shared.api_down.store(down, Ordering::SeqCst);
    }

    pub(crate) fn last_authorize(&self) -> HashMap<String, String> {
        self.shared.last_authorize.lock().expect("lock").clone()
    }
}

async fn authorize(State(s): State<Arc<Shared>>, Query(params): Query<HashMap<String, String>>) -> Response {
    *s.last_authorize.lock().expect("lock") = params.clone();
    let (Some(redirect_uri), Some(state), Some(challenge)) =
        (params.get("redirect_uri"), params.get("state"), params.get("code_challenge"))
    else {
        return (StatusCode::BAD_REQUEST, "redirect_uri, state and code_challenge are required").into_response();
    };
    if params.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || params.get("code_challenge_method").map(String::as_str) != Some("S256")
    {
        return (StatusCode::BAD_REQUEST, "unknown client or PKCE method").into_response();
    }
    let code = format!("code-{}", s.counter.fetch_add(1, Ordering::SeqCst));
    s.codes.lock().expect("lock").insert(code.clone(), (redirect_uri.clone(), challenge.clone()));
    let mut back = url::Url::parse(redirect_uri).expect("absolute redirect_uri");
    back.query_pairs_mut().append_pair("code", &code).append_pair("state", state);
    Redirect::to(back.as_str()).into_response()
}

async fn access_token(State(s): State<Arc<Shared>>, Form(form): Form<HashMap<String, String>>) -> Response {
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if field("client_id") != CLIENT_ID || field("client_secret") != CLIENT_SECRET {
        return Json(json!({"error": "incorrect_client_credentials"})).into_response();
    }
    let grant = s.codes.lock().expect("lock").remove(field("code"));
    let Some((redirect_uri, challenge)) = grant else {
        return Json(json!({"error": "bad_verification_code"})).into_response();
    };
    let pkce = URL_SAFE_NO_PAD.encode(Sha256::digest(field("code_verifier").as_bytes()));
    if redirect_uri != field("redirect_uri") || pkce != challenge {
        return Json(json!({"error": "bad_verification_code"})).into_response();
    }
    let token = format!("gho_{}", s.counter.fetch_add(1, Ordering::SeqCst));
    s.tokens.lock().expect("lock").push(token.clone());
    Json(json!({"access_token": token, "token_type": "bearer", "scope": "read:user,user:email"})).into_response()
}

/// Checks what GitHub's API checks: a User-Agent and a token it issued.
fn api_guard(s: &Shared, headers: &HeaderMap) -> Option<Response> {
    if s.api_down.load(Ordering::SeqCst) {
        return Some(StatusCode::SERVICE_UNAVAILABLE.into_response());
    }
    if !headers.contains_key(header::USER_AGENT) {
        return Some((StatusCode::FORBIDDEN, "a User-Agent is required").into_response());
    }
    let token =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let known = token.is_some_and(|t| s.tokens.lock().expect("lock").iter().any(|issued| issued == t));
    (!known).then(|| (StatusCode::UNAUTHORIZED, Json(json!({"message": "Bad credentials"}))).into_response())
}

async fn user(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(refused) = api_guard(&s, &headers) {
        return refused;
    }
    Json(json!({
        "id": USER_ID,
        "login": "octocat",
        "name": "The Octocat",
        "avatar_url": "https://avatars.example/u/583231",
        "html_url": "https://github.example/octocat",
        "email": null,
    }))
    .into_response()
}

async fn emails(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(refused) = api_guard(&s, &headers) {
        return refused;
    }
    Json(json!([
        {"email": "old@octocat.example", "primary": false, "verified": true, "visibility": null},
        {"email": "unverified@octocat.example", "primary": false, "verified": false, "visibility": null},
        {"email": "octocat@github.example", "primary": true, "verified": true, "visibility": "public"},
    ]))
    .into_response()
}
