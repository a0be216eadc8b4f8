//! `POST {prefix}/logout` (and a same-site `GET`): ends the session, clears its cookies,
//! and sends the browser to the provider's end-session endpoint when it has one.

use super::{record_outcome, record_provider};
use crate::cookies;
use crate::page::{Link, Page, page, redirect};
use crate::return_to;
use crate::state::Shared;
use auth_core::{IdentityProvider, Session, random_token};
use http::header::ORIGIN;
use http::request::Parts;
use http::{HeaderMap, StatusCode};

pub(super) async fn logout(shared: &Shared, parts: &Parts) -> Page {
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

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

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
}
