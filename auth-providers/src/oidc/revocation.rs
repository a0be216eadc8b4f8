//! RFC 7009 token revocation at logout: the session's refresh token (or, when it has none,
//! its access token) is POSTed to the discovery document's `revocation_endpoint`,
//! authenticated as the token request is ([`ClientAuth::authenticate`]), so that a copy
//! of it cannot be used after the person signed out.
//!
//! The layer calls this after the session has ended, in a task of its own: a slow or
//! failing provider never delays or fails the logout (the call is bounded by
//! `http_timeout_secs`, and its failure is only logged).

use super::discovery::Metadata;
use super::http::{Endpoint, Http};
use super::token::{ClientAuth, clip};
use crate::error::Failure;
use url::Url;

/// Which token a logout revokes, and the `token_type_hint` to send with it.
pub(crate) fn pick<'t>(
    refresh_token: Option<&'t str>,
    access_token: Option<&'t str>,
) -> Option<(&'t str, &'static str)> {
    match (refresh_token, access_token) {
        (Some(token), _) if !token.is_empty() => Some((token, "refresh_token")),
        (_, Some(token)) if !token.is_empty() => Some((token, "access_token")),
        _ => None,
    }
}

/// Revokes `token` (a `hint`: `refresh_token` or `access_token`) at `endpoint`.
///
/// # Errors
/// `Unavailable` for transport errors, timeouts, 429 and 5xx (see [`Http::send`]);
/// `Rejected` for any other answer that is not `200` (RFC 7009 §2.2: the provider
/// answers `200` also for a token it does not know).
pub(crate) async fn revoke(
    http: &Http,
    metadata: &Metadata,
    endpoint: &Url,
    client: &ClientAuth,
    token: &str,
    hint: &str,
) -> Result<(), Failure> {
    const WHAT: Endpoint = Endpoint::Revocation;
    let form = [("token", token), ("token_type_hint", hint)];
    let request = client.authenticate(http, endpoint, &form, metadata)?;
    let answer = http.send(WHAT, endpoint, request).await?;
    if answer.status.is_success() {
        return Ok(());
    }
    let body = String::from_utf8_lossy(&answer.body);
    Err(http.rejected(&format!("the revocation endpoint answered HTTP {} ({})", answer.status, clip(&body))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refresh_token_goes_first() {
        assert_eq!(pick(Some("r"), Some("a")), Some(("r", "refresh_token")));
        assert_eq!(pick(None, Some("a")), Some(("a", "access_token")));
        assert_eq!(pick(Some(""), Some("a")), Some(("a", "access_token")));
        assert_eq!(pick(None, None), None);
    }
}
