//! The routes the layer serves itself: login, callback, logout (DESIGN.md "Flows") and
//! back-channel logout.
//!
//! Each ends on a redirect or a small page (JSON for the back-channel logout, which only
//! identity providers call), never a panic or a bare 500. Each runs in a `tracing` span
//! (`auth.login`, `auth.callback`, `auth.logout`, `auth.backchannel_logout`) recording the
//! provider and the outcome; codes, states, tokens and secrets are never recorded.

use crate::page::{Link, Page, json, page, redirect};
use crate::return_to;
use crate::state::{PENDING_PURPOSE, PENDING_TTL_SECS, Route, Shared, append_cookie};
use auth_core::config::DEFAULT_PROVIDER;
use auth_core::cookies;
use auth_core::{
    Authorization, CallbackParams, IdentityProvider, LoginResult, PendingLogin, ProviderError, Revocation, Session,
    StoreError, random_ticket, unix_now,
};
use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE, ORIGIN};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tracing::Instrument;
use tracing::field::Empty;

/// Serves `route` from the request head alone; the back-channel logout, which reads the
/// body, is served by [`backchannel_logout`] (here it gets an empty body).
pub(crate) async fn handle(shared: Arc<Shared>, route: Route, parts: Parts) -> Page {
    match route {
        Route::Login => {
            let span = tracing::info_span!("auth.login", provider = Empty, outcome = Empty);
            only(&parts, &[Method::GET], login(&shared, &parts).instrument(span)).await
        }
        Route::Callback => {
            let span = tracing::info_span!("auth.callback", provider = Empty, outcome = Empty);
            only(&parts, &[Method::GET], callback(&shared, &parts).instrument(span)).await
        }
        Route::Logout => {
            let span = tracing::info_span!("auth.logout", provider = Empty, outcome = Empty);
            only(&parts, &[Method::POST, Method::GET], logout(&shared, &parts).instrument(span)).await
        }
        Route::BackchannelLogout => backchannel_logout(shared, parts, http_body_util::Empty::<Bytes>::new()).await,
    }
}

/// `page` when the request's method is one of `allowed`, else a 405 naming them.
async fn only(parts: &Parts, allowed: &[Method], page: impl Future<Output = Page>) -> Page {
    if allowed.contains(&parts.method) { page.await } else { method_not_allowed(allowed) }
}

fn record_provider(name: &str) {
    tracing::Span::current().record("provider", name);
}

fn record_outcome(outcome: &str) {
    tracing::Span::current().record("outcome", outcome);
    tracing::info!(outcome, "auth route finished");
}

/// The query parameters the routes read. A parameter given twice is refused (`repeated`):
/// which copy a provider or a proxy would honour is anyone's guess.
#[derive(Default)]
struct Query {
    provider: Option<String>,
    return_to: Option<String>,
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    repeated: bool,
}

impl Query {
    fn parse(query: Option<&str>) -> Self {
        let mut q = Self::default();
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            let slot = match &*key {
                "provider" => &mut q.provider,
                "return_to" => &mut q.return_to,
                "code" => &mut q.code,
                "state" => &mut q.state,
                "iss" => &mut q.iss,
                "error" => &mut q.error,
                "error_description" => &mut q.error_description,
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

/// What the pending-login cookie holds between the redirect to the provider and the callback.
#[derive(Serialize, Deserialize)]
struct PendingCookie {
    provider: String,
    login: PendingLogin,
    return_to: String,
    expires_at: u64,
}

// ---------------------------------------------------------------------------------- login

async fn login(shared: &Shared, parts: &Parts) -> Page {
    let query = Query::parse(parts.uri.query());
    let return_to = return_to::sanitize(query.return_to.as_deref());
    let provider = match query.provider.as_deref().filter(|p| !p.is_empty()) {
        Some(name) => match shared.provider(name) {
            Some(provider) => provider,
            None => {
                record_outcome("unknown_provider");
                return unknown_provider(shared, name, &return_to);
            }
        },
        None => match shared.providers.as_slice() {
            [only] => only,
            _ => {
                record_outcome("chooser");
                return chooser(shared, &return_to);
            }
        },
    };
    record_provider(provider.name());
    let retry = shared.routes.login_url(Some(provider.name()), &return_to);
    let retry = [Link { href: &retry, text: "Try again" }];

    let Authorization { url, pending } = match provider.authorize(&shared.config.redirect_uri).await {
        Ok(authorization) => authorization,
        Err(error) => {
            tracing::warn!(%error, "identity provider could not start a login");
            return provider_failure(&error, &retry);
        }
    };
    let cookie = PendingCookie {
        provider: provider.name().to_owned(),
        login: pending,
        return_to,
        expires_at: unix_now().saturating_add(PENDING_TTL_SECS),
    };
    let Ok(json) = serde_json::to_vec(&cookie) else {
        record_outcome("error");
        return page(StatusCode::INTERNAL_SERVER_ERROR, "Sign-in failed", "The login could not be started.", &retry);
    };
    let sealed = shared.sealer.seal(PENDING_PURPOSE, &json);
    let mut response = redirect(StatusCode::FOUND, &url);
    if response.status() == StatusCode::FOUND {
        append_cookie(
            response.headers_mut(),
            shared.attrs.set_cookie(&shared.pending_cookie, &sealed, PENDING_TTL_SECS),
        );
        record_outcome("redirect");
    } else {
        record_outcome("bad_authorization_url");
    }
    response
}

fn chooser(shared: &Shared, return_to: &str) -> Page {
    let hrefs: Vec<String> =
        shared.providers.iter().map(|p| shared.routes.login_url(Some(p.name()), return_to)).collect();
    let links: Vec<Link<'_>> =
        shared.providers.iter().zip(&hrefs).map(|(p, href)| Link { href, text: p.display_name() }).collect();
    page(StatusCode::OK, "Sign in", "Choose how to sign in:", &links)
}

fn unknown_provider(shared: &Shared, name: &str, return_to: &str) -> Page {
    let valid: Vec<&str> = shared.providers.iter().map(|p| p.name()).collect();
    let message = format!(
        "There is no sign-in provider named \"{}\". The valid names are: {}.",
        truncate(name, 64),
        valid.join(", ")
    );
    let hrefs: Vec<String> = valid.iter().map(|n| shared.routes.login_url(Some(n), return_to)).collect();
    let links: Vec<Link<'_>> =
        shared.providers.iter().zip(&hrefs).map(|(p, href)| Link { href, text: p.display_name() }).collect();
    page(StatusCode::BAD_REQUEST, "Unknown sign-in provider", &message, &links)
}

// ------------------------------------------------------------------------------- callback

async fn callback(shared: &Shared, parts: &Parts) -> Page {
    let query = Query::parse(parts.uri.query());
    let pending = open_pending(shared, &parts.headers);
    if let Some(pending) = &pending {
        record_provider(&pending.provider);
    }
    let start_again_href = match &pending {
        Some(p) => shared.routes.login_url(Some(&p.provider), &p.return_to),
        None => shared.routes.login_url(None, return_to::HOME),
    };
    let start_again = [Link { href: &start_again_href, text: "Start again" }];
    let fail = |status: StatusCode, outcome: &str, title: &str, message: &str, links: &[Link<'_>]| {
        record_outcome(outcome);
        let mut response = page(status, title, message, links);
        clear_pending(shared, response.headers_mut());
        response
    };

    let state_matches = |pending: &PendingCookie| {
        query.state.as_deref().is_some_and(|s| bool::from(s.as_bytes().ct_eq(pending.login.state.as_bytes())))
    };
    if let Some(error) = &query.error {
        let status = if error == "access_denied" { StatusCode::FORBIDDEN } else { StatusCode::BAD_REQUEST };
        // The error code is a short token; the free-text description is echoed only when the
        // response belongs to this browser's login, so a crafted link cannot put words on our page.
        let code: String = error.chars().filter(|c| c.is_ascii_graphic()).take(64).collect();
        let mut message = format!("The sign-in service reported an error: {code}");
        match (&query.error_description, &pending) {
            (Some(description), Some(pending)) if state_matches(pending) => {
                message.push_str(" (");
                message.push_str(&truncate(description, 300));
                message.push(')');
            }
            _ => {}
        }
        message.push('.');
        let try_again = [Link { href: &start_again_href, text: "Try again" }];
        return fail(status, "provider_error", "Sign-in was not completed", &message, &try_again);
    }
    let Some(pending) = pending else {
        return expired(shared, &start_again);
    };
    if query.repeated {
        let message = "The sign-in response repeats a parameter, so it cannot be trusted. Start again.";
        return fail(StatusCode::BAD_REQUEST, "malformed", "Sign-in failed", message, &start_again);
    }
    if !state_matches(&pending) {
        let message = "The sign-in response does not belong to the login this browser started. Start again.";
        return fail(StatusCode::BAD_REQUEST, "state_mismatch", "Sign-in failed", message, &start_again);
    }
    let Some(code) = query.code else {
        let message = "The sign-in service sent no authorization code. Start again.";
        return fail(StatusCode::BAD_REQUEST, "missing_code", "Sign-in failed", message, &start_again);
    };
    let Some(provider) = shared.provider(&pending.provider) else {
        return expired(shared, &start_again);
    };

    let params = CallbackParams { code, iss: query.iss };
    let LoginResult { identity, tokens } =
        match provider.complete(&params, &pending.login, &shared.config.redirect_uri).await {
            Ok(result) => result,
            Err(error) => {
                tracing::warn!(%error, "login not completed");
                let mut response = provider_failure(&error, &start_again);
                clear_pending(shared, response.headers_mut());
                return response;
            }
        };

    let now = unix_now();
    let session = shared.new_session(identity, tokens, now);
    if session.is_expired_at(now) {
        let message = "The sign-in service issued an ID token that has already expired. Start again.";
        return fail(StatusCode::BAD_REQUEST, "expired_id_token", "Sign-in failed", message, &start_again);
    }
    let ticket = match shared.store.save(&session).await {
        Ok(ticket) => ticket,
        Err(error) => {
            tracing::error!(%error, "session store failed to save a session");
            let message = "Signing in is unavailable right now, try again shortly.";
            return fail(StatusCode::SERVICE_UNAVAILABLE, "store_error", "Sign-in unavailable", message, &start_again);
        }
    };
    forget_previous_session(shared, &parts.headers, &ticket).await;

    let mut response = redirect(StatusCode::FOUND, &pending.return_to);
    let headers = response.headers_mut();
    let present = shared.present_session_cookies(&parts.headers);
    for value in shared.session_cookies(&ticket, &session, &present, now) {
        headers.append(http::header::SET_COOKIE, value);
    }
    clear_pending(shared, headers);
    record_outcome("signed_in");
    response
}

/// The pending login of this browser, unless absent, tampered, foreign or expired.
fn open_pending(shared: &Shared, headers: &HeaderMap) -> Option<PendingCookie> {
    let sealed = cookies::read(headers, &shared.pending_cookie)?;
    let (json, _) = shared.sealer.open(PENDING_PURPOSE, &sealed)?;
    let pending: PendingCookie = serde_json::from_slice(&json).ok()?;
    (pending.expires_at > unix_now()).then_some(pending)
}

/// The page for a provider's error, at the start or the end of a login: `Rejected` 400,
/// `Denied` 403, `Unavailable` 503, anything else 502. The provider's detail stays in the
/// logs (it may say more about the setup than a visitor should read).
fn provider_failure(error: &ProviderError, links: &[Link<'_>]) -> Page {
    let (status, outcome, title, message) = match error {
        ProviderError::Rejected(_) => (
            StatusCode::BAD_REQUEST,
            "rejected",
            "Sign-in failed",
            "The sign-in service's answer could not be verified, so nobody was signed in.",
        ),
        ProviderError::Denied(_) => {
            (StatusCode::FORBIDDEN, "denied", "Sign-in refused", "Your account is not allowed to sign in to this app.")
        }
        ProviderError::Unavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Sign-in unavailable",
            "The sign-in service is unavailable, try again shortly.",
        ),
        _ => (
            StatusCode::BAD_GATEWAY,
            "error",
            "Sign-in failed",
            "The sign-in service failed, so nobody was signed in. Try again later.",
        ),
    };
    record_outcome(outcome);
    page(status, title, message, links)
}

fn expired(shared: &Shared, start_again: &[Link<'_>]) -> Page {
    record_outcome("expired");
    let mut response = page(
        StatusCode::BAD_REQUEST,
        "Sign-in expired",
        "This sign-in link has expired or was already used. Start again.",
        start_again,
    );
    clear_pending(shared, response.headers_mut());
    response
}

fn clear_pending(shared: &Shared, headers: &mut HeaderMap) {
    append_cookie(headers, shared.attrs.delete_cookie(&shared.pending_cookie));
}

/// A browser signing in again leaves its previous session behind: end it in the store
/// (server-side stores would otherwise keep it until it expires).
async fn forget_previous_session(shared: &Shared, headers: &HeaderMap, new_ticket: &str) {
    let Some(old) = cookies::read(headers, shared.session_cookie()) else { return };
    if old == new_ticket {
        return;
    }
    if let Some(cache) = &shared.cache {
        cache.remove(&old);
    }
    if let Err(error) = shared.store.delete(&old).await {
        tracing::warn!(%error, "could not delete the previous session");
    }
}

// --------------------------------------------------------------------------------- logout

async fn logout(shared: &Shared, parts: &Parts) -> Page {
    if !is_same_origin_request(&parts.headers, &shared.config.app_origin()) {
        record_outcome("refused_cross_site");
        let sign_out = [Link { href: shared.routes.logout_path(), text: "Sign out" }];
        return page(
            StatusCode::FORBIDDEN,
            "Sign-out refused",
            "This sign-out request came from another site, so it was refused. To sign out, use the link below.",
            &sign_out,
        );
    }
    let mut location = None;
    if let Some(ticket) = cookies::read(&parts.headers, shared.session_cookie()) {
        if let Some(cache) = &shared.cache {
            cache.remove(&ticket);
        }
        let session = shared.store.load(&ticket).await.unwrap_or_else(|error| {
            tracing::error!(%error, "session store failed to load the session being signed out");
            None
        });
        if let Err(error) = shared.store.delete(&ticket).await {
            tracing::error!(%error, "session store failed to delete the session; cookies are cleared anyway");
        }
        if let Some(session) = session {
            record_provider(&session.identity.provider);
            if let Some(provider) = shared.provider(&session.identity.provider) {
                location = end_session_url(shared, provider.as_ref(), &session).await;
            }
        }
    }
    let mut response = match location {
        Some(url) => {
            let response = redirect(StatusCode::SEE_OTHER, &url);
            if response.status() == StatusCode::SEE_OTHER { response } else { redirect(StatusCode::SEE_OTHER, "/") }
        }
        None => redirect(StatusCode::SEE_OTHER, return_to::HOME),
    };
    for value in shared.clear_session_cookies(&parts.headers) {
        response.headers_mut().append(http::header::SET_COOKIE, value);
    }
    record_outcome(if response.headers().get(http::header::LOCATION).is_some_and(|l| l != "/") {
        "signed_out_at_provider"
    } else {
        "signed_out"
    });
    response
}

// ------------------------------------------------------------------- back-channel logout

/// The largest back-channel logout body read: a logout token is a JWT of a few kilobytes.
const MAX_LOGOUT_BODY: usize = 64 * 1024;

/// `POST {prefix}/backchannel-logout[?provider=NAME]`, OpenID Connect Back-Channel Logout
/// 1.0: the identity provider posts a logout token (form field `logout_token`) when a
/// person signs out there; the provider verifies it and the store ends the sessions it
/// names. Without `provider`, the default provider (keys directly in `[auth]`) or the only
/// one is meant.
///
/// Answers: `200` (whether or not a session matched), `400 {"error":"invalid_request"}`
/// for a missing or invalid token (nothing is revoked), `501` when the provider cannot
/// verify logout tokens or the store cannot revoke sessions (the cookie store), `503` when
/// the provider's keys or the store are unreachable (the provider may retry). Never cached.
pub(crate) async fn backchannel_logout<B>(shared: Arc<Shared>, parts: Parts, body: B) -> Page
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let span = tracing::info_span!("auth.backchannel_logout", provider = Empty, outcome = Empty);
    backchannel(&shared, &parts, body).instrument(span).await
}

async fn backchannel<B>(shared: &Shared, parts: &Parts, body: B) -> Page
where
    B: http_body::Body + Send,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use http_body_util::BodyExt as _;
    let refuse = |status: StatusCode, outcome: &str, error: &str, description: &str| {
        record_outcome(outcome);
        json(status, &serde_json::json!({ "error": error, "error_description": description }))
    };
    if parts.method != Method::POST {
        record_outcome("method_not_allowed");
        return method_not_allowed(&[Method::POST]);
    }
    let form = parts.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|value| {
        value.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case("application/x-www-form-urlencoded")
    });
    if !form {
        let description = "send the logout token as application/x-www-form-urlencoded";
        return refuse(StatusCode::BAD_REQUEST, "malformed", "invalid_request", description);
    }
    let query = Query::parse(parts.uri.query());
    let provider = match query.provider.as_deref() {
        _ if query.repeated => None,
        Some(name) => shared.provider(name),
        None => shared.provider(DEFAULT_PROVIDER).or(match shared.providers.as_slice() {
            [only] => Some(only),
            _ => None,
        }),
    };
    let Some(provider) = provider else {
        let description = format!(
            "name a configured provider: register {}?provider=NAME at each provider",
            shared.routes.backchannel_logout_path()
        );
        return refuse(StatusCode::BAD_REQUEST, "unknown_provider", "invalid_request", &description);
    };
    record_provider(provider.name());
    let bytes = match http_body_util::Limited::new(body, MAX_LOGOUT_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            let description = "the body could not be read or is too large";
            return refuse(StatusCode::BAD_REQUEST, "malformed", "invalid_request", description);
        }
    };
    let mut tokens = url::form_urlencoded::parse(&bytes).filter(|(key, _)| key == "logout_token").map(|(_, v)| v);
    let (Some(token), None) = (tokens.next(), tokens.next()) else {
        let description = "send exactly one logout_token";
        return refuse(StatusCode::BAD_REQUEST, "malformed", "invalid_request", description);
    };
    let claims = match provider.verify_logout_token(&token).await {
        Ok(claims) => claims,
        Err(ProviderError::Unavailable(error)) => {
            tracing::warn!(%error, "the logout token cannot be verified now");
            let description = "the identity provider's keys cannot be fetched now; try again";
            return refuse(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "temporarily_unavailable", description);
        }
        Err(ProviderError::Unsupported(_)) => {
            tracing::error!("a back-channel logout arrived for a provider that cannot verify logout tokens");
            let description = "this provider does not support back-channel logout";
            return refuse(StatusCode::NOT_IMPLEMENTED, "unsupported_provider", "unsupported", description);
        }
        Err(error) => {
            tracing::warn!(%error, "back-channel logout refused");
            return refuse(
                StatusCode::BAD_REQUEST,
                "invalid_token",
                "invalid_request",
                "the logout token is not valid",
            );
        }
    };
    match shared.store.revoke(&Revocation::of(provider.name(), claims)).await {
        Ok(sessions) => {
            tracing::info!(sessions, "back-channel logout ended sessions");
            record_outcome("revoked");
            let mut response = http::Response::new(http_body_util::Full::new(Bytes::new()));
            response.headers_mut().insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(StoreError::Unsupported(_)) => {
            tracing::error!(
                "a back-channel logout arrived, but sessions live in cookies, which cannot be revoked: \
                 set session_store to \"memory\" or a Redis URL in [auth]"
            );
            let description =
                "this app keeps sessions in cookies, which cannot be revoked; it needs a server-side session_store";
            refuse(StatusCode::NOT_IMPLEMENTED, "unsupported_store", "unsupported", description)
        }
        Err(error) => {
            tracing::error!(%error, "session store failed to revoke sessions");
            let description = "the session store is unavailable; try again";
            refuse(StatusCode::SERVICE_UNAVAILABLE, "store_error", "temporarily_unavailable", description)
        }
    }
}

async fn end_session_url(shared: &Shared, provider: &dyn IdentityProvider, session: &Session) -> Option<String> {
    let state = random_ticket();
    match provider.end_session_url(session, &shared.config.post_logout_redirect_uri, &state).await {
        Ok(url) => url,
        Err(error) => {
            tracing::warn!(%error, "no logout at the identity provider");
            None
        }
    }
}

/// Whether a logout request may come from this site. Browsers send `Sec-Fetch-Site`
/// (trusted when present) or at least `Origin` on cross-site requests; a request with
/// neither comes from a non-browser client, which cannot be tricked into logging out.
pub(crate) fn is_same_origin_request(headers: &HeaderMap, app_origin: &str) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return site.as_bytes().eq_ignore_ascii_case(b"same-origin") || site.as_bytes().eq_ignore_ascii_case(b"none");
    }
    if let Some(origin) = headers.get(ORIGIN) {
        return origin.to_str().is_ok_and(|origin| normalize_origin(origin) == normalize_origin(app_origin));
    }
    true
}

/// Lower case, without the default port (`https://app.test:443` is `https://app.test`).
fn normalize_origin(origin: &str) -> String {
    let lower = origin.trim_end_matches('/').to_ascii_lowercase();
    for (scheme, port) in [("https://", ":443"), ("http://", ":80")] {
        if lower.starts_with(scheme) && lower.ends_with(port) {
            return lower[..lower.len() - port.len()].to_owned();
        }
    }
    lower
}

fn method_not_allowed(allowed: &[Method]) -> Page {
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

/// At most `max` characters of `text`, for echoing values from the network on a page.
fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn cross_site_logout_is_refused() {
        let app = "http://localhost:3000";
        let allowed = [
            headers(&[]),
            headers(&[("sec-fetch-site", "same-origin")]),
            headers(&[("sec-fetch-site", "none")]),
            headers(&[("origin", "http://localhost:3000")]),
            headers(&[("origin", "HTTP://LOCALHOST:3000")]),
            headers(&[("sec-fetch-site", "same-origin"), ("origin", "http://localhost:3000")]),
        ];
        for h in &allowed {
            assert!(is_same_origin_request(h, app), "{h:?}");
        }
        let refused = [
            headers(&[("sec-fetch-site", "cross-site")]),
            headers(&[("sec-fetch-site", "same-site")]),
            headers(&[("sec-fetch-site", "cross-site"), ("origin", "http://localhost:3000")]),
            headers(&[("origin", "https://evil.test")]),
            headers(&[("origin", "null")]),
            headers(&[("origin", "http://localhost:3001")]),
        ];
        for h in &refused {
            assert!(!is_same_origin_request(h, app), "{h:?}");
        }
        assert!(is_same_origin_request(&headers(&[("origin", "https://app.test")]), "https://app.test:443"));
    }

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
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("hi", 5), "hi");
    }
}
