//! The callback, at the path of `redirect_uri`: checks the pending login's `state`, lets
//! the provider verify the response, stores the session and redirects to `return_to`.
//!
//! The response comes as a `GET` (`response_mode = "query"`, the default), or as a `POST`
//! from the provider's page (`response_mode = "form_post"`, accepted only when a provider
//! is configured so, and only for its logins). Browsers do not send `SameSite=Lax` cookies
//! with a cross-site `POST`, so a posted response that arrives without its pending-login
//! cookie gets a small page of our own that posts the same fields again, now same-site,
//! with the cookie ([`bounce`]); a response that went through it once and still has no
//! cookie is an expired login like any other.

use super::login::PendingCookie;
use super::{
    Query, is_form, method_not_allowed, provider_failure, provider_outcome, record_outcome, record_provider, truncate,
};
use crate::cookies;
use crate::page::{Link, Page, page, redirect, repost_page};
use crate::return_to;
use crate::state::{PENDING_PURPOSE, Shared, append_cookie};
use auth_core::{CallbackParams, Identity, LoginOptions, LoginResult, ResponseMode, metrics, unix_now};
use http::request::Parts;
use http::{HeaderMap, Method, StatusCode};
use subtle::ConstantTimeEq;

/// The form field the layer's own page adds when it posts a response again: a response
/// that carries it and still finds no pending login is not posted again (no loop).
pub(super) const BOUNCED: &str = "auth_bounced";

/// The largest posted callback body read: `code`, `state`, `iss` and an error description
/// take a few hundred bytes; providers may add a few fields of their own.
const MAX_CALLBACK_BODY: usize = 16 * 1024;

/// The callback route: a `GET`, or a `POST` when a provider uses `response_mode =
/// "form_post"` (else `405`). A posted body must be a form of at most 16 KiB.
pub(super) async fn route<B>(shared: &Shared, parts: &Parts, body: B) -> Page
where
    B: http_body::Body + Send,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use http_body_util::BodyExt as _;
    let form_post = shared.providers.iter().any(|p| p.response_mode() == ResponseMode::FormPost);
    let allowed: &[Method] = if form_post { &[Method::GET, Method::POST] } else { &[Method::GET] };
    if parts.method == Method::GET {
        return callback(shared, parts, Query::parse(parts.uri.query()), false).await;
    }
    if !allowed.contains(&parts.method) {
        record_outcome("method_not_allowed");
        return method_not_allowed(allowed);
    }
    let start_again = shared.routes.login_url(None, return_to::HOME);
    let start_again = [Link { href: &start_again, text: "Start again" }];
    let refuse = |status: StatusCode, outcome: &'static str, message: &str| {
        record_outcome(outcome);
        metrics::callback_error(outcome);
        page(status, "Sign-in failed", message, &start_again)
    };
    if !is_form(&parts.headers) {
        let message = "The sign-in response was not posted as a form (application/x-www-form-urlencoded).";
        return refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, "malformed", message);
    }
    let form = match http_body_util::Limited::new(body, MAX_CALLBACK_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            let message = "The posted sign-in response could not be read or is too large.";
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, "malformed", message);
        }
    };
    callback(shared, parts, Query::parse_form(&form), true).await
}

async fn callback(shared: &Shared, parts: &Parts, query: Query, posted: bool) -> Page {
    // The pending login this callback names by its `state`: logins of other tabs are left
    // alone, whatever this callback says.
    let found = query.state.as_deref().and_then(|state| open_pending(shared, &parts.headers, state));
    if posted && found.is_none() && !query.bounced && !query.repeated && query.state.is_some() {
        // A cross-site POST carries no SameSite=Lax cookie: post it again from our origin.
        let same_site = parts.headers.get("sec-fetch-site").is_some_and(|v| v == "same-origin" || v == "same-site");
        if !same_site {
            return bounce(parts, &query);
        }
    }
    let cookie_name = found.as_ref().map(|(name, _)| name.clone());
    let pending = found.map(|(_, pending)| pending);
    if let Some(pending) = &pending {
        record_provider(&pending.provider);
    }
    let start_again_href = match &pending {
        Some(p) => shared.routes.login_url(Some(&p.provider), &p.return_to),
        None => shared.routes.login_url(None, return_to::HOME),
    };
    let start_again = [Link { href: &start_again_href, text: "Start again" }];
    // The pending cookie is single use: any answer to its login clears it (and only it).
    let clear = |headers: &mut HeaderMap| {
        if let Some(name) = &cookie_name {
            clear_pending(shared, name, headers);
        }
    };
    // Every error answer is a callback error; one that belongs to a login of this browser
    // is that login's failure too (its provider comes from the sealed pending cookie).
    let login_provider = pending.as_ref().map(|p| p.provider.clone());
    let failed = |reason: &'static str| {
        metrics::callback_error(reason);
        if let Some(provider) = &login_provider {
            metrics::login_failed(provider, reason);
        }
    };
    let fail = |status: StatusCode, outcome: &'static str, title: &str, message: &str, links: &[Link<'_>]| {
        record_outcome(outcome);
        failed(outcome);
        let mut response = page(status, title, message, links);
        clear(response.headers_mut());
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
        failed("expired");
        return expired(&start_again);
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
        failed("expired");
        let mut response = expired(&start_again);
        clear(response.headers_mut());
        return response;
    };
    // A login's response comes back the way its provider asked for: a posted response to
    // a query-mode login (or the reverse) is refused, which keeps each mode's surface small.
    if posted != (provider.response_mode() == ResponseMode::FormPost) {
        let message = if posted {
            "The sign-in response was posted, but this login expects it in the address. Start again."
        } else {
            "The sign-in response came in the address, but this login expects it to be posted. Start again."
        };
        return fail(StatusCode::BAD_REQUEST, "wrong_response_mode", "Sign-in failed", message, &start_again);
    }

    let params = CallbackParams::new(code, query.iss);
    let LoginResult { identity, tokens, .. } =
        match provider.complete(&params, &pending.login, &shared.config.redirect_uri).await {
            Ok(result) => result,
            Err(error) => {
                tracing::warn!(%error, "login not completed");
                failed(provider_outcome(&error));
                let mut response = provider_failure(&error, &start_again);
                clear(response.headers_mut());
                return response;
            }
        };

    // The session belongs to the provider that completed the login, whatever name the
    // provider wrote into the identity.
    let mut identity = identity;
    provider.name().clone_into(&mut identity.provider);
    let now = unix_now();
    if let Some(unmet) = unmet_step_up(&pending.options, &identity, now, shared.config.leeway_secs) {
        tracing::warn!(unmet, "the provider did not perform the step-up login that was asked for");
        let message = format!(
            "The sign-in service did not confirm {unmet}, which this page needs, so the login was not \
             accepted. Try again; if it keeps happening, the sign-in service may not support it."
        );
        return fail(StatusCode::FORBIDDEN, "step_up_not_met", "Sign-in not strong enough", &message, &start_again);
    }
    let session = shared.new_session(identity, tokens, now, &parts.headers).with_admission(provider.admission());
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
    clear(headers);
    record_outcome("signed_in");
    metrics::login_succeeded(provider.name());
    response
}

/// The page that posts a posted response again, from our own origin, so that the browser
/// sends the pending-login cookie with it: only the fields the callback reads, plus
/// [`BOUNCED`]. It runs one script (allowed by a nonce), posts only to this origin, and
/// says nothing to the next page (`Referrer-Policy: no-referrer`); without JavaScript a
/// button does the same.
fn bounce(parts: &Parts, query: &Query) -> Page {
    record_outcome("bounced");
    let action = parts.uri.path_and_query().map_or_else(|| parts.uri.path(), |pq| pq.as_str());
    let fields = [
        ("code", &query.code),
        ("state", &query.state),
        ("iss", &query.iss),
        ("error", &query.error),
        ("error_description", &query.error_description),
    ];
    let mut form: Vec<(&str, &str)> =
        fields.iter().filter_map(|(name, value)| value.as_deref().map(|value| (*name, value))).collect();
    form.push((BOUNCED, "1"));
    repost_page(action, &form)
}

/// The pending login of this browser for `state` (its cookie's name, and what it holds),
/// unless absent, tampered, foreign or expired.
fn open_pending(shared: &Shared, headers: &HeaderMap, state: &str) -> Option<(String, PendingCookie)> {
    let name = shared.pending_cookie_for(state);
    let sealed = cookies::read(headers, &name)?;
    let (json, _) = shared.sealer.open(PENDING_PURPOSE, &sealed)?;
    let pending: PendingCookie = serde_json::from_slice(&json).ok()?;
    (pending.expires_at > unix_now()).then_some((name, pending))
}

/// The page for a callback whose login this browser does not have (expired, used, or never
/// started here). It clears nothing: other tabs' logins stay pending.
fn expired(start_again: &[Link<'_>]) -> Page {
    record_outcome("expired");
    page(
        StatusCode::BAD_REQUEST,
        "Sign-in expired",
        "This sign-in link has expired or was already used. Start again.",
        start_again,
    )
}

fn clear_pending(shared: &Shared, name: &str, headers: &mut HeaderMap) {
    append_cookie(headers, shared.pending_attrs.delete_cookie(name));
}

/// A browser signing in again leaves its previous session behind: end it in the store
/// (server-side stores would otherwise keep it until it expires).
async fn forget_previous_session(shared: &Shared, headers: &HeaderMap, new_ticket: &str) {
    let Some(old) = cookies::read(headers, shared.session_cookie()) else { return };
    if old == new_ticket {
        return;
    }
    if let Err(error) = shared.store.delete(&old).await {
        tracing::warn!(%error, "could not delete the previous session");
    }
}

/// What of the step-up `asked` the new login's ID token does not show, in words; `None`
/// when it shows everything (or nothing was asked). A provider that ignores `max_age` or
/// `acr_values` must not pass a guard that asked for them.
fn unmet_step_up(asked: &LoginOptions, identity: &Identity, now: u64, leeway: u64) -> Option<String> {
    if let Some(max_age) = asked.max_age {
        let auth_time =
            identity.claims.get("auth_time").and_then(|t| t.as_u64().or_else(|| t.as_f64().map(|f| f as u64)));
        if auth_time.is_none_or(|at| at.saturating_add(max_age).saturating_add(leeway) < now) {
            return Some(format!("a login at most {max_age} seconds old"));
        }
    }
    if !asked.acr_values.is_empty() {
        let acr = identity.claims.get("acr").and_then(|a| a.as_str());
        if !acr.is_some_and(|acr| asked.acr_values.iter().any(|v| v == acr)) {
            return Some(format!("a sign-in of level {}", asked.acr_values.join(" or ")));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_up_is_checked_against_the_id_token() {
        let claims = |v: serde_json::Value| match v {
            serde_json::Value::Object(m) => Identity::new("p", "s", m),
            _ => Identity::new("p", "s", Default::default()),
        };
        let now = 1_000_000;
        let fresh = claims(serde_json::json!({"auth_time": now - 10, "acr": "mfa"}));
        let stale = claims(serde_json::json!({"auth_time": now - 1000}));
        let age = LoginOptions::new().with_max_age(300);
        let level = LoginOptions::new().with_acr_values(["mfa"]);
        assert_eq!(unmet_step_up(&LoginOptions::new(), &stale, now, 60), None, "nothing asked");
        assert_eq!(unmet_step_up(&age, &fresh, now, 60), None);
        assert!(unmet_step_up(&age, &stale, now, 60).is_some_and(|u| u.contains("300 seconds")));
        assert!(unmet_step_up(&age, &claims(serde_json::json!({})), now, 60).is_some(), "no auth_time: not shown");
        assert_eq!(unmet_step_up(&level, &fresh, now, 60), None);
        assert!(unmet_step_up(&level, &stale, now, 60).is_some_and(|u| u.contains("mfa")));
    }
}
