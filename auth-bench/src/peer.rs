//! Variant (6), the peer users would pick instead: axum-login 0.18 on tower-sessions 0.14
//! with its memory store, set up as axum-login's own example does.
//!
//! Its user is what an app would keep in its database (id, email, name, picture, a
//! password hash that validates the session); the client logs in once through the peer's
//! login handler and sends the session id cookie it got.

use crate::variants::{ANONYMOUS, LOGGED_IN};
use axum::Form;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::{get, post};
use axum_login::tower_sessions::{MemoryStore, SessionManagerLayer};
use axum_login::{AuthManagerLayerBuilder, AuthSession, AuthUser, AuthnBackend, UserId};
use serde::Deserialize;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use tower::ServiceExt;

/// The email the bench logs in with.
const EMAIL: &str = "alice.example@example.com";

/// A user as an app keeps it.
#[derive(Clone, Debug)]
pub struct PeerUser {
    id: u64,
    email: String,
    name: String,
    picture: String,
    password_hash: Vec<u8>,
}

impl AuthUser for PeerUser {
    type Id = u64;

    fn id(&self) -> u64 {
        self.id
    }

    fn session_auth_hash(&self) -> &[u8] {
        &self.password_hash
    }
}

/// Users by id, in memory (as a database stand-in).
#[derive(Clone, Debug)]
pub struct Backend {
    users: Arc<HashMap<u64, PeerUser>>,
}

/// The login form.
#[derive(Clone, Debug, Deserialize)]
pub struct Credentials {
    email: String,
}

impl AuthnBackend for Backend {
    type User = PeerUser;
    type Credentials = Credentials;
    type Error = Infallible;

    async fn authenticate(&self, creds: Credentials) -> Result<Option<PeerUser>, Infallible> {
        Ok(self.users.values().find(|u| u.email == creds.email).cloned())
    }

    async fn get_user(&self, id: &UserId<Self>) -> Result<Option<PeerUser>, Infallible> {
        Ok(self.users.get(id).cloned())
    }
}

async fn home(auth: AuthSession<Backend>) -> &'static str {
    match &auth.user {
        Some(user) if !user.name.is_empty() && !user.picture.is_empty() => LOGGED_IN,
        _ => ANONYMOUS,
    }
}

async fn login(mut auth: AuthSession<Backend>, Form(creds): Form<Credentials>) -> StatusCode {
    match auth.authenticate(creds).await {
        Ok(Some(user)) if auth.login(&user).await.is_ok() => StatusCode::NO_CONTENT,
        _ => StatusCode::UNAUTHORIZED,
    }
}

/// The peer's app: the bench handler and a login route behind axum-login's layer.
pub fn app() -> Router {
    let user = PeerUser {
        id: 1,
        email: EMAIL.into(),
        name: "Alice Example".into(),
        picture: "https://lh3.googleusercontent.com/a/ACg8ocKjRz3vY5wF8QmT2nPbX7dLh1uEsGoC4kAiVtNqWeJy=s96-c".into(),
        password_hash: b"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$6Gx2YlG1cV8wY0Xz".to_vec(),
    };
    let backend = Backend { users: Arc::new(HashMap::from([(user.id, user)])) };
    let sessions = SessionManagerLayer::new(MemoryStore::default()).with_secure(false);
    let auth = AuthManagerLayerBuilder::new(backend, sessions).build();
    Router::new().route("/", get(home)).route("/login", post(login)).layer(auth)
}

/// Logs in through the peer's login handler; returns the `Cookie` header to send.
///
/// # Errors
/// When the login is refused or sets no cookie.
pub async fn log_in(app: &Router) -> Result<String, String> {
    let form = format!("email={}", EMAIL.replace('@', "%40"));
    let request = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form))
        .map_err(|e| e.to_string())?;
    let response = app.clone().oneshot(request).await.map_err(|e| e.to_string())?;
    if response.status() != StatusCode::NO_CONTENT {
        return Err(format!("axum-login refused the bench login ({})", response.status()));
    }
    let set_cookie = response
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .ok_or("axum-login set no session cookie")?;
    Ok(set_cookie.split(';').next().unwrap_or_default().to_owned())
}
