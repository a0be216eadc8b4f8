//! The routes the layer serves itself, one file each: [`login`], [`callback`], [`logout`],
//! [`backchannel`] logout and the client's public keys ([`jwks`]); and [`AuthRoutes`],
//! where they are.
//!
//! Each ends on a redirect or a small page (JSON for the back-channel logout, which only
//! identity providers call), never a panic or a bare 500. Each runs in a `tracing` span
//! (`auth.login`, `auth.callback`, `auth.logout`, `auth.backchannel_logout`) recording the
//! provider and the outcome; codes, states, tokens and secrets are never recorded.

mod backchannel;
mod callback;
mod jwks;
mod login;
mod logout;
pub(crate) mod paths;

pub(crate) use backchannel::{SeenLogoutTokens, backchannel_logout};
pub use paths::AuthRoutes;
pub(crate) use paths::DEFAULT_PREFIX;

use crate::page::{Link, Page, page};
use crate::state::{Route, Shared};
use auth_core::{LoginOptions, ProviderError};
use http::header::ALLOW;
use http::request::Parts;
use http::{HeaderValue, Method, StatusCode};
use std::sync::Arc;
use tracing::Instrument;
use tracing::field::Empty;

/// Serves `route`. Only the back-channel logout and a posted callback
/// (`response_mode = "form_post"`) read `body`; the other routes answer from the head.
pub(crate) async fn handle<B>(shared: Arc<Shared>, route: Route, parts: Parts, body: B) -> Page
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match route {
        Route::Login => {
            let span = tracing::info_span!("auth.login", provider = Empty, outcome = Empty);
            only(&parts, &[Method::GET], login::login(&shared, &parts).instrument(span)).await
        }
        Route::Callback => {
            let span = tracing::info_span!("auth.callback", provider = Empty, outcome = Empty);
            callback::route(&shared, &parts, body).instrument(span).await
        }
        Route::Logout => {
            let span = tracing::info_span!("auth.logout", provider = Empty, outcome = Empty);
            only(&parts, &[Method::POST, Method::GET], logout::logout(&shared, &parts).instrument(span)).await
        }
        Route::BackchannelLogout => backchannel_logout(shared, parts, body).await,
        Route::Jwks => only(&parts, &[Method::GET], async { jwks::jwks(&shared) }).await,
    }
}

/// `page` when the request's method is one of `allowed`, else a 405 naming them.
async fn only(parts: &Parts, allowed: &[Method], page: impl Future<Output = Page>) -> Page {
    if allowed.contains(&parts.method) { page.await } else { method_not_allowed(allowed) }
}

pub(super) fn record_provider(name: &str) {
    tracing::Span::current().record("provider", name);
}

pub(super) fn record_outcome(outcome: &str) {
    tracing::Span::current().record("outcome", outcome);
    tracing::info!(outcome, "auth route finished");
}

/// The query parameters the routes read. A parameter given twice is refused (`repeated`):
/// which copy a provider or a proxy would honour is anyone's guess.
#[derive(Default)]
pub(super) struct Query {
    pub(super) provider: Option<String>,
    pub(super) return_to: Option<String>,
    pub(super) code: Option<String>,
    pub(super) state: Option<String>,
    pub(super) iss: Option<String>,
    pub(super) error: Option<String>,
    pub(super) error_description: Option<String>,
    pub(super) max_age: Option<String>,
    pub(super) acr_values: Option<String>,
    pub(super) prompt: Option<String>,
    pub(super) repeated: bool,
    /// A posted callback that the layer's own page posted again ([`callback::BOUNCED`]).
    pub(super) bounced: bool,
}

/// The `prompt` values a login link may ask for (`none` would end in an error page).
const PROMPTS: &[&str] = &["login", "consent", "select_account"];

impl Query {
    /// The step-up a login link asks for: `max_age` (whole seconds), `acr_values` (at most
    /// eight short values) and `prompt` (`login`, `consent` or `select_account`). Values
    /// that do not fit are left out: the guard that sent the browser asks again.
    pub(super) fn login_options(&self) -> LoginOptions {
        let mut options = LoginOptions::new();
        if let Some(max_age) = self.max_age.as_deref().and_then(|m| m.parse::<u64>().ok()) {
            options = options.with_max_age(max_age);
        }
        // Bounded so the sealed pending cookie stays under a browser cookie's 4 KB whatever
        // `return_to` is: at most 512 bytes, and nothing JSON would escape (`"`, `\`).
        if let Some(acr) = self.acr_values.as_deref().filter(|acr| acr.len() <= 512) {
            let values: Vec<&str> = acr.split(' ').filter(|v| !v.is_empty()).collect();
            let plain = |v: &&str| v.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
            if values.len() <= 8 && values.iter().all(plain) {
                options = options.with_acr_values(values);
            }
        }
        if let Some(prompt) = self.prompt.as_deref().filter(|p| PROMPTS.contains(p)) {
            options = options.with_prompt(prompt);
        }
        options
    }

    pub(super) fn parse(query: Option<&str>) -> Self {
        Self::parse_form(query.unwrap_or_default().as_bytes())
    }

    /// As [`parse`](Self::parse), from an `application/x-www-form-urlencoded` body.
    pub(super) fn parse_form(form: &[u8]) -> Self {
        let mut q = Self::default();
        for (key, value) in url::form_urlencoded::parse(form) {
            let slot = match &*key {
                "provider" => &mut q.provider,
                "return_to" => &mut q.return_to,
                "code" => &mut q.code,
                "state" => &mut q.state,
                "iss" => &mut q.iss,
                "error" => &mut q.error,
                "error_description" => &mut q.error_description,
                "max_age" => &mut q.max_age,
                "acr_values" => &mut q.acr_values,
                "prompt" => &mut q.prompt,
                callback::BOUNCED => {
                    q.bounced = true;
                    continue;
                }
                _ => continue,
            };
            if slot.is_some() {
                q.repeated = true;
            } else {
                *slot = Some(value.into_owned());
            }
        }
        q
    }
}

/// The page for a provider's error, at the start or the end of a login: `Rejected` 400,
/// `Denied` 403, `Unavailable` 503, anything else 502. The provider's detail stays in the
/// logs (it may say more about the setup than a visitor should read).
pub(super) fn provider_failure(error: &ProviderError, links: &[Link<'_>]) -> Page {
    let (status, title, message) = match error {
        ProviderError::Rejected(_) => (
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            "The sign-in service's answer could not be verified, so nobody was signed in.",
        ),
        ProviderError::Denied(_) => {
            (StatusCode::FORBIDDEN, "Sign-in refused", "Your account is not allowed to sign in to this app.")
        }
        ProviderError::Unavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in unavailable",
            "The sign-in service is unavailable, try again shortly.",
        ),
        _ => (
            StatusCode::BAD_GATEWAY,
            "Sign-in failed",
            "The sign-in service failed, so nobody was signed in. Try again later.",
        ),
    };
    record_outcome(provider_outcome(error));
    page(status, title, message, links)
}

/// The outcome a provider's error gives a login, in the span and in the metrics:
/// `rejected`, `denied`, `unavailable` or `error`.
pub(super) fn provider_outcome(error: &ProviderError) -> &'static str {
    match error {
        ProviderError::Rejected(_) => "rejected",
        ProviderError::Denied(_) => "denied",
        ProviderError::Unavailable(_) => "unavailable",
        _ => "error",
    }
}

pub(super) fn method_not_allowed(allowed: &[Method]) -> Page {
    let list = allowed.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
    let mut response = page(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed",
        &format!("This address accepts {list} requests only."),
        &[],
    );
    if let Ok(value) = HeaderValue::from_str(&list) {
        response.headers_mut().insert(ALLOW, value);
    }
    response
}

/// Whether the request's body is `application/x-www-form-urlencoded` (parameters allowed).
pub(super) fn is_form(headers: &http::HeaderMap) -> bool {
    headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|value| {
        value.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case("application/x-www-form-urlencoded")
    })
}

/// At most `max` characters of `text`, for echoing values from the network on a page.
pub(super) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_refuses_repeats() {
        let q = Query::parse(Some("code=a&state=b&iss=https%3A%2F%2Fidp&other=1"));
        assert_eq!(
            (q.code.as_deref(), q.state.as_deref(), q.iss.as_deref()),
            (Some("a"), Some("b"), Some("https://idp"))
        );
        assert!(!q.repeated);
        assert!(Query::parse(Some("state=a&state=b")).repeated);
        assert!(Query::parse(None).code.is_none());
    }

    #[test]
    fn step_up_options_from_a_login_link_are_bounded() {
        let options = Query::parse(Some("max_age=300&acr_values=mfa%20phr&prompt=login")).login_options();
        assert_eq!(
            (options.max_age, options.acr_values.len(), options.prompt.as_deref()),
            (Some(300), 2, Some("login"))
        );
        let long = format!("acr_values={}", "a".repeat(513));
        assert!(Query::parse(Some(&long)).login_options().acr_values.is_empty(), "over 512 bytes");
        assert!(Query::parse(Some("acr_values=a%22b")).login_options().acr_values.is_empty(), "a quote");
        assert!(Query::parse(Some("prompt=none&max_age=soon")).login_options().is_empty(), "unknown prompt, bad age");
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("hi", 5), "hi");
    }
}
