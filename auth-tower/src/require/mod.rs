//! Guards: [`RequireLayer`] puts a [`Policy`](auth_core::Policy) in front of any tower
//! service (axum routers, hyper services, tonic servers), and [`refusal`] renders what a
//! policy says for the client that asked, so custom guards answer the same way.
//!
//! A refusal depends on who asks ([`ClientKind::of`]):
//!
//! | decision | browser | API client | gRPC client |
//! |---|---|---|---|
//! | log in | `302` to the login route, back to the page | `401` `{"error":"login_required","login_url":...}` | `UNAUTHENTICATED` (16) |
//! | step up | `302` to the login route with `max_age`/`acr_values` | `401` with `WWW-Authenticate: Bearer error="insufficient_user_authentication"` (RFC 9470) | `UNAUTHENTICATED` (16) |
//! | forbidden | `403` page: "signed in as X, this page needs Y", a link to switch account | `403` `{"error":"forbidden","needs":...}` | `PERMISSION_DENIED` (7) |
//!
//! gRPC answers are trailers-only responses (HTTP 200, `grpc-status`, `grpc-message`).

mod future;
mod layer;

pub use future::ResponseFuture;
pub use layer::{Require, RequireLayer};

use crate::page::{Link, grpc, json, page, redirect};
use crate::routes::AuthRoutes;
use auth_core::{Decision, LoginOptions, User};
use http::header::{ACCEPT, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode};

/// Who sent a request, for how to answer it: [`ClientKind::of`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientKind {
    /// A browser navigating: redirects and HTML pages.
    Browser,
    /// An HTTP API client (a SPA's `fetch`, a mobile app, another service): JSON.
    Api,
    /// A gRPC client (`content-type: application/grpc...`): gRPC status codes.
    Grpc,
}

impl ClientKind {
    /// Decides from the request headers: gRPC by its `content-type`; a browser when
    /// `Accept` names `text/html` (or `application/xhtml+xml`), or is absent, or is `*/*`
    /// without naming JSON (as `curl` sends); an API client otherwise.
    pub fn of(headers: &HeaderMap) -> Self {
        let grpc = headers
            .get(CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().len() >= 16 && v.as_bytes()[..16].eq_ignore_ascii_case(b"application/grpc"));
        if grpc {
            return Self::Grpc;
        }
        let mut any = false;
        let (mut html, mut json, mut wildcard) = (false, false, false);
        for value in headers.get_all(ACCEPT).iter().filter_map(|v| v.to_str().ok()) {
            for media in value.split(',') {
                any = true;
                let media = media.split(';').next().unwrap_or_default().trim();
                html |= media.eq_ignore_ascii_case("text/html") || media.eq_ignore_ascii_case("application/xhtml+xml");
                json |= media.eq_ignore_ascii_case("application/json") || media.to_ascii_lowercase().ends_with("+json");
                wildcard |= media == "*/*";
            }
        }
        if html || !any || (wildcard && !json) { Self::Browser } else { Self::Api }
    }
}

/// The response refusing the request of `head` as `decision` says, for the kind of client
/// that sent it (see the module docs); `None` when the decision allows it. The user is
/// read from the request's extensions (anonymous when the auth layer did not run), and
/// the login route from its [`AuthRoutes`].
///
/// ```
/// use auth_tower::{Policy, User, refusal};
///
/// let (head, _) = http::Request::get("/admin").header("accept", "application/json").body(()).unwrap().into_parts();
/// let decision = Policy::group("admins").evaluate(&User::anonymous());
/// let response = refusal(&decision, &head).expect("refused");
/// assert_eq!(response.status(), 401);
/// ```
pub fn refusal(decision: &Decision, head: &Parts) -> Option<http::Response<http_body_util::Full<bytes::Bytes>>> {
    let user = head.extensions.get::<User>().cloned().unwrap_or_default();
    let default_routes;
    let routes = match head.extensions.get::<AuthRoutes>() {
        Some(routes) => routes,
        None => {
            default_routes = AuthRoutes::default();
            &default_routes
        }
    };
    let return_to = head.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let kind = ClientKind::of(&head.headers);
    Some(match decision {
        Decision::Allow => return None,
        Decision::LoginRequired => {
            let login_url = routes.login_url(None, return_to);
            match kind {
                ClientKind::Browser => redirect(StatusCode::FOUND, &login_url),
                ClientKind::Api => json(
                    StatusCode::UNAUTHORIZED,
                    &serde_json::json!({ "error": "login_required", "login_url": login_url }),
                ),
                ClientKind::Grpc => grpc(16, "login required"),
            }
        }
        Decision::StepUp(step_up) => {
            let mut options = LoginOptions::new().with_acr_values(step_up.acr_values.iter().cloned());
            if let Some(max_age) = step_up.max_age {
                options = options.with_max_age(max_age);
            }
            let login_url = routes.login_url_with(user.provider(), return_to, &options);
            let description = "a more recent or stronger login is required";
            match kind {
                ClientKind::Browser => redirect(StatusCode::FOUND, &login_url),
                ClientKind::Api => {
                    let mut challenge = format!(
                        "Bearer error=\"insufficient_user_authentication\", error_description=\"{description}\""
                    );
                    if let Some(max_age) = step_up.max_age {
                        challenge.push_str(&format!(", max_age={max_age}"));
                    }
                    if !step_up.acr_values.is_empty() {
                        // Only token characters: `acr_values` are URIs or short names.
                        let values: Vec<String> = step_up
                            .acr_values
                            .iter()
                            .map(|v| v.chars().filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\').collect())
                            .collect();
                        challenge.push_str(&format!(", acr_values=\"{}\"", values.join(" ")));
                    }
                    let mut response = json(
                        StatusCode::UNAUTHORIZED,
                        &serde_json::json!({
                            "error": "insufficient_user_authentication",
                            "error_description": description,
                            "max_age": step_up.max_age,
                            "acr_values": step_up.acr_values,
                            "login_url": login_url,
                        }),
                    );
                    if let Ok(value) = HeaderValue::from_str(&challenge) {
                        response.headers_mut().insert(WWW_AUTHENTICATE, value);
                    }
                    response
                }
                ClientKind::Grpc => grpc(16, description),
            }
        }
        Decision::Forbidden(forbidden) => {
            let who = user.email().or(user.name()).or(user.sub()).unwrap_or("someone");
            match kind {
                ClientKind::Browser => {
                    let mut message = format!("You are signed in as {who}. This page needs {}.", forbidden.needs);
                    if let Some(reason) = &forbidden.reason {
                        message.push_str(" It cannot be checked: ");
                        message.push_str(reason);
                        message.push('.');
                    }
                    let switch = LoginOptions::new().with_prompt("select_account");
                    let switch = routes.login_url_with(None, return_to, &switch);
                    let links = [
                        Link { href: &switch, text: "Sign in with another account" },
                        Link { href: "/", text: "Home" },
                    ];
                    page(StatusCode::FORBIDDEN, "Not allowed", &message, &links)
                }
                ClientKind::Api => json(
                    StatusCode::FORBIDDEN,
                    &serde_json::json!({
                        "error": "forbidden",
                        "error_description": format!("this needs {}", forbidden.needs),
                        "needs": forbidden.needs,
                        "reason": forbidden.reason,
                    }),
                ),
                ClientKind::Grpc => {
                    let mut message = format!("this needs {}", forbidden.needs);
                    if let Some(reason) = &forbidden.reason {
                        message.push_str(": ");
                        message.push_str(reason);
                    }
                    grpc(7, &message)
                }
            }
        }
        // A decision this version does not know: refuse as forbidden, never allow.
        _ => match kind {
            ClientKind::Grpc => grpc(7, "not allowed"),
            _ => json(StatusCode::FORBIDDEN, &serde_json::json!({ "error": "forbidden" })),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn who_is_asking() {
        for browser in [
            headers(&[]),
            headers(&[("accept", "text/html,application/xhtml+xml,*/*;q=0.8")]),
            headers(&[("accept", "*/*")]),
        ] {
            assert_eq!(ClientKind::of(&browser), ClientKind::Browser, "{browser:?}");
        }
        for api in [
            headers(&[("accept", "application/json")]),
            headers(&[("accept", "*/*, application/problem+json")]),
            headers(&[("accept", "image/png")]),
        ] {
            assert_eq!(ClientKind::of(&api), ClientKind::Api, "{api:?}");
        }
        for grpc in [
            headers(&[("content-type", "application/grpc")]),
            headers(&[("content-type", "application/grpc+proto"), ("accept", "text/html")]),
        ] {
            assert_eq!(ClientKind::of(&grpc), ClientKind::Grpc, "{grpc:?}");
        }
    }
}
