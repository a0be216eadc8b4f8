//! `GET {prefix}/login[?provider=NAME&return_to=/path]`: starts a login at the named
//! provider (or the only one), or shows the chooser page. `max_age`, `acr_values` and
//! `prompt` ask for a step-up login (guards send browsers here with them); the callback
//! checks the ID token against them.

use super::{Query, provider_failure, provider_outcome, record_outcome, record_provider, truncate};
use crate::page::{Link, Page, page, redirect};
use crate::return_to;
use crate::state::{PENDING_PURPOSE, PENDING_TTL_SECS, Shared, append_cookie};
use auth_core::{Authorization, LoginOptions, PendingLogin, metrics, unix_now};
use http::request::Parts;
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};

/// What the pending-login cookie holds between the redirect to the provider and the callback.
#[derive(Serialize, Deserialize)]
pub(super) struct PendingCookie {
    pub(super) provider: String,
    pub(super) login: PendingLogin,
    pub(super) return_to: String,
    pub(super) expires_at: u64,
    /// The step-up asked for, which the callback checks the ID token against.
    #[serde(default, skip_serializing_if = "LoginOptions::is_empty")]
    pub(super) options: LoginOptions,
}

pub(super) async fn login(shared: &Shared, parts: &Parts) -> Page {
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
    // Started here: it ends signed in or failed at the callback, failed below, or abandoned.
    metrics::login_started(provider.name());
    let options = query.login_options();
    let retry = shared.routes.login_url_with(Some(provider.name()), &return_to, &options);
    let retry = [Link { href: &retry, text: "Try again" }];

    let Authorization { url, pending, .. } = match provider.authorize_with(&shared.config.redirect_uri, &options).await
    {
        Ok(authorization) => authorization,
        Err(error) => {
            tracing::warn!(%error, "identity provider could not start a login");
            metrics::login_failed(provider.name(), provider_outcome(&error));
            return provider_failure(&error, &retry);
        }
    };
    let cookie = PendingCookie {
        provider: provider.name().to_owned(),
        login: pending,
        return_to,
        expires_at: unix_now().saturating_add(PENDING_TTL_SECS),
        options,
    };
    let Ok(json) = serde_json::to_vec(&cookie) else {
        record_outcome("error");
        metrics::login_failed(provider.name(), "error");
        return page(StatusCode::INTERNAL_SERVER_ERROR, "Sign-in failed", "The login could not be started.", &retry);
    };
    let sealed = shared.sealer.seal(PENDING_PURPOSE, &json);
    let name = shared.pending_cookie_for(&cookie.login.state);
    let mut response = redirect(StatusCode::FOUND, &url);
    if response.status() == StatusCode::FOUND {
        for stale in logins_to_drop(shared, &parts.headers) {
            append_cookie(response.headers_mut(), shared.pending_attrs.delete_cookie(stale));
        }
        append_cookie(response.headers_mut(), shared.pending_attrs.set_cookie(&name, &sealed, PENDING_TTL_SECS));
        record_outcome("redirect");
    } else {
        record_outcome("bad_authorization_url");
        metrics::login_failed(provider.name(), "bad_authorization_url");
    }
    response
}

/// How many logins a browser may have pending at once (tabs): past it the oldest go.
pub(super) const MAX_PENDING: usize = 3;

/// The pending-login cookies to delete before one more is set: those that do not open or
/// have expired, and the oldest beyond [`MAX_PENDING`]` - 1`.
fn logins_to_drop<'h>(shared: &Shared, headers: &'h HeaderMap) -> Vec<&'h str> {
    let now = unix_now();
    let mut live = Vec::new();
    let mut drop = Vec::new();
    for (name, value) in shared.pending_cookies(headers) {
        let opened = shared.sealer.open(PENDING_PURPOSE, value);
        let pending = opened.and_then(|(json, _)| serde_json::from_slice::<PendingCookie>(&json).ok());
        match pending {
            Some(p) if p.expires_at > now => live.push((p.expires_at, name)),
            _ => drop.push(name),
        }
    }
    live.sort_unstable();
    let excess = live.len().saturating_sub(MAX_PENDING - 1);
    drop.extend(live.into_iter().take(excess).map(|(_, name)| name));
    drop
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
