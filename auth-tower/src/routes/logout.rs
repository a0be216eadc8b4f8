//! `POST {prefix}/logout` (and a same-site `GET`): ends the session, clears its cookies,
//! and sends the browser to the provider's end-session endpoint when it has one. A `GET`
//! that does not say where it comes from gets a page whose button POSTs here.

use super::{record_outcome, record_provider};
use crate::cookies;
use crate::page::{Link, Page, form_page, page, redirect};
use crate::return_to;
use crate::site::Site;
use crate::state::Shared;
use auth_core::{IdentityProvider, Session, random_token};
use http::request::Parts;
use http::{Method, StatusCode};
use std::sync::Arc;

pub(super) async fn logout(shared: &Arc<Shared>, parts: &Parts) -> Page {
    match Site::of(&parts.headers, &shared.config.app_origin()) {
        Site::Same => {}
        Site::Cross => {
            record_outcome("refused_cross_site");
            let sign_out = [Link { href: shared.routes.logout_path(), text: "Sign out" }];
            return page(
                StatusCode::FORBIDDEN,
                "Sign-out refused",
                "This sign-out request came from another site, so it was refused. To sign out, use the link below.",
                &sign_out,
            );
        }
        // A browser too old to send `Sec-Fetch-Site` sends no `Origin` with a `GET`, whoever
        // made it (an `<img>` on another site): ask. It sends `Origin` with the form's `POST`.
        Site::Unknown if parts.method == Method::GET => {
            record_outcome("confirm");
            return form_page(
                StatusCode::OK,
                "Sign out",
                "Do you want to sign out?",
                shared.routes.logout_path(),
                "Sign out",
            );
        }
        // A `POST` without either header: a client that is not a browser, which no other
        // site can make send it.
        Site::Unknown => {}
    }
    let mut location = None;
    if let Some(ticket) = cookies::read(&parts.headers, shared.session_cookie()) {
        let session = shared.store.load(&ticket).await;
        let deleted = shared.store.delete(&ticket).await;
        if let Err(error) = &deleted {
            tracing::error!(%error, "session store failed to delete the session; cookies are cleared anyway");
        }
        let session = session.unwrap_or_else(|error| {
            tracing::error!(%error, "session store failed to load the session being signed out");
            None
        });
        if deleted.is_err() {
            // The session may still be in the store: refused here from now on, deleted once
            // the store is back.
            shared.ended.undeleted(&ticket, crate::state::unix_millis());
            delete_later(Arc::clone(shared), ticket.clone().into_owned());
        }
        if let Some(session) = session {
            // Requests of this login still in flight must not write its cookie back.
            shared.ended.end(&session, &ticket, crate::state::unix_millis());
            // Every cookie of this login, also one a refresh wrote just before: none is
            // served from the cache any more.
            if let Some(cache) = &shared.cache {
                cache.forget(|cached| crate::state::EndedLogins::same_login(cached, &session));
            }
            record_provider(&session.identity.provider);
            auth_core::metrics::logout(&session.identity.provider);
            if let Some(provider) = shared.provider(&session.identity.provider) {
                location = end_session_url(shared, provider.as_ref(), &session).await;
                revoke_later(shared, Arc::clone(provider), session);
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

/// Deletes the session behind `ticket` once the store is back: tries again after 1 s,
/// doubling the wait up to a minute, for as long as this process refuses the ticket (see
/// [`EndedLogins::undeleted`](crate::state::EndedLogins::undeleted)). Not on a Tokio
/// runtime, there is no timer: the ticket is only refused by this process (documented).
fn delete_later(shared: Arc<Shared>, ticket: String) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
    runtime.spawn(async move {
        let started = std::time::Instant::now();
        let mut wait = std::time::Duration::from_secs(1);
        while started.elapsed() < crate::state::ENDED_MEMORY {
            tokio::time::sleep(wait).await;
            match shared.store.delete(&ticket).await {
                Ok(()) => {
                    tracing::info!("session store is back: the session signed out meanwhile is deleted");
                    shared.ended.deleted(&ticket);
                    return;
                }
                Err(error) => tracing::debug!(%error, "session store still failing; will delete the session later"),
            }
            wait = (wait * 2).min(std::time::Duration::from_secs(60));
        }
        tracing::error!("a session signed out while the store failed could not be deleted");
    });
}

/// Revokes the ended session's refresh token at the provider (RFC 7009,
/// [`IdentityProvider::revoke_tokens`]) in a task of its own, so that the browser's redirect
/// never waits for it; a failure is logged by the provider and changes nothing here. The
/// task gives up after twice `http_timeout_secs` (the discovery document and the revocation
/// request), whatever the provider does. Not on a Tokio runtime, nothing is revoked.
fn revoke_later(shared: &Shared, provider: Arc<dyn IdentityProvider>, session: Session) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
    let limit = std::time::Duration::from_secs(shared.config.http_timeout_secs.max(1).saturating_mul(2));
    runtime.spawn(async move {
        if tokio::time::timeout(limit, provider.revoke_tokens(&session)).await.is_err() {
            tracing::warn!(provider = provider.name(), "token revocation at logout timed out");
        }
    });
}

async fn end_session_url(shared: &Shared, provider: &dyn IdentityProvider, session: &Session) -> Option<String> {
    let state = random_token();
    match provider.end_session_url(session, &shared.config.post_logout_redirect_uri, &state).await {
        Ok(url) => url,
        Err(error) => {
            tracing::warn!(%error, "no logout at the identity provider");
            None
        }
    }
}
