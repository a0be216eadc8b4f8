//! The callback, at the path of `redirect_uri`: checks the pending login's `state`, lets
//! the provider verify the response, stores the session and redirects to `return_to`.

use super::login::PendingCookie;
use super::{Query, provider_failure, provider_outcome, record_outcome, record_provider, truncate};
use crate::cookies;
use crate::page::{Link, Page, page, redirect};
use crate::return_to;
use crate::state::{PENDING_PURPOSE, Shared, append_cookie};
use auth_core::{CallbackParams, Identity, LoginOptions, LoginResult, metrics, unix_now};
use http::request::Parts;
use http::{HeaderMap, StatusCode};
use subtle::ConstantTimeEq;

pub(super) async fn callback(shared: &Shared, parts: &Parts) -> Page {
    let query = Query::parse(parts.uri.query());
    // The pending login this callback names by its `state`: logins of other tabs are left
    // alone, whatever this callback says.
    let found = query.state.as_deref().and_then(|state| open_pending(shared, &parts.headers, state));
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
