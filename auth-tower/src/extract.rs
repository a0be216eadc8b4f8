//! The axum extractors of the layer (feature `axum`): [`RequireUser`] for handlers only
//! signed-in people may reach, [`Authorized`] for handlers behind a [`Policy`],
//! [`AccessToken`] for handlers that call an API on their behalf, and [`Sessions`] for a
//! "sign out other devices" page. The plain [`User`] extractor, which never fails, lives in
//! `auth-core`. Refusals to log in are rendered by [`refusal`](crate::refusal), as
//! [`RequireLayer`](crate::RequireLayer)'s are.

use crate::require::refusal;
use crate::routes::AuthRoutes;
use crate::sessions::Sessions;
use crate::token::{AccessToken, NoAccessToken};
use auth_core::{AuthMethod, Decision, Policy, User};
use axum_core::body::Body;
use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderValue, StatusCode};
use http_body_util::Full;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

/// The signed-in user; anyone else is sent to log in.
///
/// Browsers are redirected to `{prefix}/login?return_to=<this page>`; API clients get
/// `401` with the JSON body `{"error": "login_required", "login_url": "..."}`. A browser is
/// a client whose `Accept` names `text/html`, or is absent or `*/*` (as with `curl`)
/// without naming JSON; an `Accept` naming JSON (or only other types) gets the 401.
///
/// `return_to` is the path the handler sees: under `Router::nest`, that is the path
/// inside the nested router, so apply the layer (and use `RequireUser`) on the outer one.
#[derive(Clone, Debug)]
pub struct RequireUser(pub User);

impl Deref for RequireUser {
    type Target = User;

    fn deref(&self) -> &User {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequireUser {
    type Rejection = LoginRequired;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<User>().filter(|u| u.is_logged_in()) {
            Some(user) => Ok(Self(user.clone())),
            None => Err(login_required(parts)),
        }
    }
}

/// The rejection sending the client of `parts` to log in and come back.
fn login_required(parts: &Parts) -> LoginRequired {
    let return_to = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let login_url = match parts.extensions.get::<AuthRoutes>() {
        Some(routes) => routes.login_url(None, return_to),
        None => {
            tracing::warn!("an auth extractor without AuthLayer: is the layer applied to this route?");
            AuthRoutes::default().login_url(None, return_to)
        }
    };
    LoginRequired { login_url, response: refused(&Decision::LoginRequired, parts) }
}

/// The response refusing `parts` as `decision` says (never `Allow` here).
fn refused(decision: &Decision, parts: &Parts) -> http::Response<Full<Bytes>> {
    refusal(decision, parts).unwrap_or_else(|| {
        let mut response = http::Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::FORBIDDEN;
        response
    })
}

/// A policy an [`Authorized`] extractor names by its type.
///
/// `policy` is called for each request; build it once (a `static` `LazyLock`) when it is
/// costly or read from the environment.
pub trait StaticPolicy: Send + Sync + 'static {
    /// The policy requests must meet.
    fn policy() -> Policy;
}

/// The signed-in user, when [`StaticPolicy::policy`] of `P` allows them; anyone else gets
/// the refusal their client expects (a login redirect or `401`, a step-up login, a `403`
/// page or JSON, a gRPC status), as with [`RequireLayer`](crate::RequireLayer).
///
/// ```
/// use auth_tower::{Authorized, Policy, StaticPolicy};
///
/// struct Admins;
/// impl StaticPolicy for Admins {
///     fn policy() -> Policy {
///         Policy::group("admins")
///     }
/// }
///
/// async fn admin(Authorized(user, ..): Authorized<Admins>) -> String {
///     format!("Hello, admin {}", user.email().unwrap_or("?"))
/// }
/// ```
pub struct Authorized<P>(pub User, pub PhantomData<P>);

impl<P> fmt::Debug for Authorized<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Authorized").field(&self.0).finish()
    }
}

impl<P> Deref for Authorized<P> {
    type Target = User;

    fn deref(&self) -> &User {
        &self.0
    }
}

impl<S: Send + Sync, P: StaticPolicy> FromRequestParts<S> for Authorized<P> {
    type Rejection = Refused;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let user = parts.extensions.get::<User>().cloned().unwrap_or_else(|| {
            tracing::warn!("an auth extractor without AuthLayer: is the layer applied to this route?");
            User::anonymous()
        });
        match P::policy().evaluate(&user) {
            Decision::Allow => Ok(Self(user, PhantomData)),
            decision => Err(Refused { decision: decision.clone(), response: refused(&decision, parts) }),
        }
    }
}

/// The rejection of [`Authorized`]: what the policy decided, rendered for the client.
#[derive(Debug)]
pub struct Refused {
    decision: Decision,
    response: http::Response<Full<Bytes>>,
}

impl Refused {
    /// What the policy decided.
    pub fn decision(&self) -> &Decision {
        &self.decision
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        self.response.map(Body::new)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AccessToken {
    type Rejection = AccessTokenRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let user = parts.extensions.get::<User>().cloned().unwrap_or_default();
        AccessToken::of(&user).map_err(|reason| match reason {
            NoAccessToken::Anonymous => AccessTokenRejection::LoginRequired(login_required(parts)),
            other => {
                tracing::warn!(reason = %other, "a handler asked for the access token");
                AccessTokenRejection::Unavailable(other)
            }
        })
    }
}

/// The rejection of [`AccessToken`]: log in first (as [`RequireUser`]), or `503` with
/// `{"error": "access_token_expired"}` when the token expired and could not be refreshed,
/// or `500` with `{"error": "no_access_token"}` when the session holds none.
#[derive(Debug)]
#[non_exhaustive]
pub enum AccessTokenRejection {
    /// Nobody is signed in.
    LoginRequired(LoginRequired),
    /// Someone is, but there is no live access token.
    Unavailable(NoAccessToken),
}

impl IntoResponse for AccessTokenRejection {
    fn into_response(self) -> Response {
        let (status, error, reason) = match self {
            Self::LoginRequired(login) => return login.into_response(),
            Self::Unavailable(reason @ NoAccessToken::Expired) => {
                (StatusCode::SERVICE_UNAVAILABLE, "access_token_expired", reason)
            }
            Self::Unavailable(reason) => (StatusCode::INTERNAL_SERVER_ERROR, "no_access_token", reason),
        };
        json_error(status, error, &reason.to_string())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Sessions {
    type Rejection = SessionsRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(sessions) = parts.extensions.get::<Sessions>() {
            return Ok(sessions.clone());
        }
        match parts.extensions.get::<User>().map(User::auth_method) {
            // Signed in, but the layer put no `Sessions`: the store cannot list them.
            Some(AuthMethod::Session) => {
                tracing::warn!("a handler asked for the user's sessions, but the session store cannot list them");
                Err(SessionsRejection::Unsupported)
            }
            Some(AuthMethod::Bearer) => Err(SessionsRejection::BearerToken),
            _ => Err(SessionsRejection::LoginRequired(login_required(parts))),
        }
    }
}

/// The rejection of [`Sessions`]: log in first (as [`RequireUser`]); `501` with
/// `{"error": "unsupported"}` when the session store cannot list sessions (the cookie
/// store: set `session_store = "memory"` or a Redis URL); `403` with
/// `{"error": "session_required"}` for a request signed in by a bearer token, which
/// belongs to no session.
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionsRejection {
    /// Nobody is signed in.
    LoginRequired(LoginRequired),
    /// The store keeps no sessions it could list (the cookie store).
    Unsupported,
    /// The request carries a bearer token, not a session cookie.
    BearerToken,
}

impl IntoResponse for SessionsRejection {
    fn into_response(self) -> Response {
        let (status, error, description) = match self {
            Self::LoginRequired(login) => return login.into_response(),
            Self::Unsupported => (
                StatusCode::NOT_IMPLEMENTED,
                "unsupported",
                "sessions live in browser cookies here, which the server can neither list nor end: this needs a \
                 server-side session store (session_store = \"memory\" or a Redis URL)",
            ),
            Self::BearerToken => (
                StatusCode::FORBIDDEN,
                "session_required",
                "this request is signed in by a bearer token, which belongs to no session: use the browser's session",
            ),
        };
        json_error(status, error, description)
    }
}

/// A JSON refusal, never cached: `{"error": error, "error_description": description}`.
fn json_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = serde_json::json!({ "error": error, "error_description": description });
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The rejection of [`RequireUser`]: a redirect to the login route, or a `401`.
#[derive(Debug)]
pub struct LoginRequired {
    login_url: String,
    response: http::Response<Full<Bytes>>,
}

impl LoginRequired {
    /// Where to log in, returning to the requested page afterwards.
    pub fn login_url(&self) -> &str {
        &self.login_url
    }
}

impl IntoResponse for LoginRequired {
    fn into_response(self) -> Response {
        self.response.map(Body::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClientKind;
    use http::header::{ACCEPT, LOCATION};
    use http::{HeaderMap, Request};

    async fn extract(request: Request<()>) -> Result<RequireUser, LoginRequired> {
        let (mut parts, ()) = request.into_parts();
        RequireUser::from_request_parts(&mut parts, &()).await
    }

    #[tokio::test]
    async fn anonymous_browsers_are_redirected_and_apis_get_401() {
        let browser = Request::get("/private?x=1").header(ACCEPT, "text/html,*/*").body(()).unwrap_or_default();
        let rejection = extract(browser).await.err();
        let response = rejection.map(IntoResponse::into_response);
        assert_eq!(response.as_ref().map(|r| r.status()), Some(StatusCode::FOUND));
        assert_eq!(
            response.as_ref().and_then(|r| r.headers().get(LOCATION)).and_then(|l| l.to_str().ok()),
            Some("/auth/login?return_to=%2Fprivate%3Fx%3D1")
        );

        let api = Request::get("/api").header(ACCEPT, "application/json").body(()).unwrap_or_default();
        let response = extract(api).await.err().map(IntoResponse::into_response);
        assert_eq!(response.as_ref().map(|r| r.status()), Some(StatusCode::UNAUTHORIZED));
        assert!(response.as_ref().is_some_and(|r| !r.headers().contains_key(http::header::WWW_AUTHENTICATE)));
    }

    #[tokio::test]
    async fn sessions_need_a_signed_in_session_of_a_store_that_lists_them() {
        use auth_core::{ExposeTokens, Identity, MemoryStore, Session, SessionStore, TokenSet};
        use std::sync::Arc;
        async fn extract(user: Option<User>, sessions: Option<Sessions>) -> Result<Sessions, Response> {
            let request = Request::get("/sessions").header(ACCEPT, "application/json").body(()).unwrap_or_default();
            let (mut parts, ()) = request.into_parts();
            parts.extensions.insert(AuthRoutes::default());
            if let Some(user) = user {
                parts.extensions.insert(user);
            }
            if let Some(sessions) = sessions {
                parts.extensions.insert(sessions);
            }
            Sessions::from_request_parts(&mut parts, &()).await.map_err(IntoResponse::into_response)
        }
        async fn body(response: Response) -> String {
            use http_body_util::BodyExt as _;
            let bytes = response.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        let session = Arc::new(Session::new(Identity::new("p", "alice", Default::default()), TokenSet::default(), 60));

        let anonymous = extract(Some(User::anonymous()), None).await.err();
        assert_eq!(anonymous.map(|r| r.status()), Some(StatusCode::UNAUTHORIZED));
        assert_eq!(extract(None, None).await.err().map(|r| r.status()), Some(StatusCode::UNAUTHORIZED), "no layer");

        let cookie_user = User::from_session(Arc::clone(&session), ExposeTokens::NONE);
        let unsupported = extract(Some(cookie_user), None).await.expect_err("refused");
        assert_eq!(unsupported.status(), StatusCode::NOT_IMPLEMENTED);
        let text = body(unsupported).await;
        assert!(text.contains("\"unsupported\"") && text.contains("session_store"), "{text}");

        let bearer = extract(Some(User::from_bearer(Arc::clone(&session))), None).await.expect_err("refused");
        assert_eq!(bearer.status(), StatusCode::FORBIDDEN);
        assert!(body(bearer).await.contains("session_required"));

        let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
        let ticket = store.save(&session).await.expect("save");
        let sessions = Sessions::new(Arc::clone(&store), Arc::clone(&session), &ticket);
        let user = User::from_session(session, ExposeTokens::NONE);
        let found = extract(Some(user), Some(sessions)).await.expect("the layer's sessions");
        assert_eq!(found.current(), auth_core::session_handle(&ticket));
        assert!(!format!("{found:?}").contains(&ticket), "Debug shows no ticket");
        let listed = found.list().await.expect("list");
        assert_eq!(listed.iter().map(|s| s.handle.as_str()).collect::<Vec<_>>(), [found.current()]);
        assert_eq!(found.end_others().await.expect("end others"), 0);
    }

    #[test]
    fn browsers_are_told_from_api_clients() {
        let accept = |values: &[&'static str]| {
            let mut headers = HeaderMap::new();
            for v in values {
                headers.append(ACCEPT, HeaderValue::from_static(v));
            }
            ClientKind::of(&headers) == ClientKind::Browser
        };
        assert!(accept(&["text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"]));
        assert!(accept(&[]));
        assert!(accept(&["*/*"]));
        assert!(accept(&["application/json", "text/html"]));
        assert!(!accept(&["application/json"]));
        assert!(!accept(&["application/json, */*;q=0.1"]));
        assert!(!accept(&["application/problem+json"]));
        assert!(!accept(&["text/plain"]));
    }
}
