//! RFC 9126 pushed authorization requests (PAR): the login POSTs its authorization
//! parameters to the provider's `pushed_authorization_request_endpoint`, authenticated as
//! the token request is ([`ClientAuth::authenticate`]), and sends the browser to the
//! authorization endpoint with only `client_id` and the `request_uri` it got back. The
//! parameters never pass through the browser, and a provider that requires PAR
//! (`require_pushed_authorization_requests`) accepts nothing else.
//!
//! Every call is bounded by the provider's HTTP client (`http_timeout_secs`); a refusal
//! (4xx) is `Rejected` and an outage (5xx, 429, timeout) `Unavailable`: either way the
//! login ends on the layer's error page.

use super::discovery::Metadata;
use super::http::{Endpoint, Http};
use super::token::{ClientAuth, OAuthError, described};
use crate::error::Failure;
use auth_core::UsePar;
use serde::Deserialize;
use url::Url;

/// What the PAR endpoint answers on success (RFC 9126 §2.2).
#[derive(Deserialize)]
struct Pushed {
    request_uri: String,
    #[allow(dead_code)]
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

/// Whether a login pushes its request: `use_par` as configured, and for `"auto"` the
/// discovery document's `require_pushed_authorization_requests`.
///
/// # Errors
/// With `use_par = true`, when discovery advertises no endpoint: the message names
/// `key` (`auth.NAME.use_par`) and the fix.
pub(crate) fn endpoint<'m>(
    use_par: UsePar,
    advertised: Option<&'m Url>,
    required: bool,
    key: &str,
) -> Result<Option<&'m Url>, String> {
    match (use_par, advertised) {
        (UsePar::Always, Some(endpoint)) => Ok(Some(endpoint)),
        (UsePar::Always, None) => Err(format!(
            "{key} = true, but the provider's discovery document advertises no \
             pushed_authorization_request_endpoint; set {key} = \"auto\" or false"
        )),
        (UsePar::Auto, Some(endpoint)) if required => Ok(Some(endpoint)),
        _ => Ok(None),
    }
}

/// Pushes `params` (the authorization request's parameters) to `endpoint` of `metadata`'s
/// provider and returns the `request_uri` to send the browser with.
///
/// # Errors
/// `Unavailable` for transport errors, timeouts, 429 and 5xx (see [`Http::send`]) and a
/// success answer without a usable `request_uri`; `Rejected` for every other answer (the
/// provider refused the request: `invalid_request`, `invalid_client`, a 3xx).
pub(crate) async fn push(
    http: &Http,
    metadata: &Metadata,
    endpoint: &Url,
    client: &ClientAuth,
    params: &[(String, String)],
) -> Result<String, Failure> {
    const WHAT: Endpoint = Endpoint::Par;
    // An authorization request names its client, also when the client authenticates by a
    // header (client_secret_basic).
    let mut form: Vec<(&str, &str)> = vec![("client_id", &client.client_id)];
    form.extend(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let request = client.authenticate(http, endpoint, &form, metadata)?;
    let answer = http.send(WHAT, endpoint, request).await?;
    if answer.status.is_success() {
        let pushed: Pushed = answer.json(http, WHAT, endpoint)?;
        if pushed.request_uri.is_empty() {
            return Err(http.unavailable(WHAT, endpoint, "answered without a request_uri"));
        }
        tracing::debug!("authorization request pushed");
        return Ok(pushed.request_uri);
    }
    let problem = match serde_json::from_slice::<OAuthError>(&answer.body) {
        Ok(error) => format!("the pushed authorization request was refused ({})", described(&error)),
        Err(_) => format!("the pushed authorization request endpoint answered HTTP {}", answer.status),
    };
    tracing::debug!(status = answer.status.as_u16(), "pushed authorization request refused");
    Err(http.rejected(&problem))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_par_picks_the_endpoint() {
        let url = Url::parse("https://idp.example/par").expect("url");
        let key = "auth.corp.use_par";
        assert_eq!(endpoint(UsePar::Auto, Some(&url), false, key), Ok(None));
        assert_eq!(endpoint(UsePar::Auto, Some(&url), true, key), Ok(Some(&url)));
        assert_eq!(endpoint(UsePar::Auto, None, true, key), Ok(None));
        assert_eq!(endpoint(UsePar::Always, Some(&url), false, key), Ok(Some(&url)));
        assert_eq!(endpoint(UsePar::Never, Some(&url), true, key), Ok(None));
        let error = endpoint(UsePar::Always, None, false, key).expect_err("no endpoint");
        assert!(error.contains("auth.corp.use_par = true") && error.contains("pushed_authorization_request_endpoint"));
    }
}
