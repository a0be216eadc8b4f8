//! The token endpoint: authorization-code and refresh-token grants, client
//! authentication, and what the endpoint's errors mean for the login or the session.
//!
//! Written on reqwest directly rather than through openidconnect's `Client`, so that the
//! distinctions the auth layer needs survive. What a refusal means depends on the grant
//! ([`request`]): a refused code ends only that login attempt, so every refusal of it is
//! `Rejected`; a refused refresh ends the session (the layer ends it on `Rejected`), so only
//! the provider's word that the refresh token itself is dead (`invalid_grant`) is
//! `Rejected`, and anything else (a misconfigured client, a WAF, a redirect to a login page)
//! is `Unavailable`: the session is kept and the refresh retried later.

use super::client_assertion::{self, ASSERTION_TYPE, ClientKeys};
use super::discovery::Metadata;
use super::dpop::Proofs;
use super::http::{Endpoint, Http};
use crate::error::Failure;
use auth_core::{ClientAssertionAudience, Secret, TokenAuthMethod, TokenSet, unix_now};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use std::fmt;
use std::sync::Arc;
use url::Url;

/// Who the client is at the token endpoint (`Secret`'s and `ClientKeys`' `Debug` show no
/// secret or key).
#[derive(Clone, Debug)]
pub(crate) struct ClientAuth {
    pub(crate) client_id: String,
    pub(crate) secret: Option<Secret>,
    pub(crate) method: TokenAuthMethod,
    /// The signing keys of `private_key_jwt`.
    pub(crate) keys: Option<Arc<ClientKeys>>,
    /// The `aud` of client assertions.
    pub(crate) audience: ClientAssertionAudience,
}

impl ClientAuth {
    /// A POST of `form` to `endpoint` of `metadata`'s provider, authenticated the way
    /// `method` says: `client_secret_basic` (an `Authorization` header),
    /// `client_secret_post` (id and secret in the form), `private_key_jwt` or
    /// `client_secret_jwt` (a fresh RFC 7523 assertion in the form, whose `aud` is the
    /// issuer or the token endpoint, see `client_assertion_audience`), or `none`. Every
    /// method but `client_secret_basic` adds `client_id` unless `form` has it. The one place
    /// the client authenticates: the token request, introspection, PAR and revocation.
    ///
    /// # Errors
    /// `Rejected` when an assertion cannot be signed (no randomness), which does not happen
    /// with a key that loaded.
    pub(crate) fn authenticate(
        &self,
        http: &Http,
        endpoint: &Url,
        form: &[(&str, &str)],
        metadata: &Metadata,
    ) -> Result<reqwest::RequestBuilder, Failure> {
        let mut request = http.post(endpoint);
        let mut form = form.to_vec();
        let assertion = match (self.method, self.secret.as_ref().map(Secret::expose), self.keys.as_deref()) {
            (TokenAuthMethod::PrivateKeyJwt, _, Some(keys)) => Some(client_assertion::private_key_assertion(
                keys,
                &self.client_id,
                client_assertion::audience(self.audience, metadata),
            )),
            (TokenAuthMethod::ClientSecretJwt, Some(secret), _) => Some(client_assertion::secret_assertion(
                secret,
                &self.client_id,
                client_assertion::audience(self.audience, metadata),
            )),
            _ => None,
        }
        .transpose()
        .map_err(|problem| http.rejected(&format!("cannot sign the client assertion: {problem}")))?;
        let named = form.iter().any(|(key, _)| *key == "client_id");
        match (self.method, self.secret.as_ref().map(Secret::expose), assertion.as_deref()) {
            (_, _, Some(assertion)) => {
                form.push(("client_assertion_type", ASSERTION_TYPE));
                form.push(("client_assertion", assertion));
            }
            (TokenAuthMethod::ClientSecretPost, Some(secret), None) => {
                form.push(("client_secret", secret));
            }
            (TokenAuthMethod::ClientSecretBasic, Some(secret), None) => {
                request = request.header(reqwest::header::AUTHORIZATION, basic_auth(&self.client_id, secret));
                return Ok(request.form(&form));
            }
            _ => {}
        }
        if !named {
            form.push(("client_id", &self.client_id));
        }
        Ok(request.form(&form))
    }
}

/// What the client trades for tokens. `Debug` shows which grant, not its secrets.
pub(crate) enum Grant<'a> {
    Code { code: &'a str, pkce_verifier: &'a str, redirect_uri: &'a str },
    Refresh { refresh_token: &'a str },
}

impl fmt::Debug for Grant<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code { redirect_uri, .. } => {
                f.debug_struct("Code").field("redirect_uri", redirect_uri).finish_non_exhaustive()
            }
            Self::Refresh { .. } => f.write_str("Refresh { .. }"),
        }
    }
}

/// A successful token response (RFC 6749 §5.1, OpenID Connect Core §3.1.3.3).
#[derive(Deserialize)]
pub(crate) struct Tokens {
    pub(crate) access_token: String,
    #[serde(default)]
    pub(crate) id_token: Option<String>,
    #[serde(default)]
    pub(crate) refresh_token: Option<String>,
    /// A number per the RFC; some providers send a string.
    #[serde(default)]
    expires_in: Option<Value>,
    #[serde(default)]
    pub(crate) scope: Option<String>,
    /// `Bearer`, or `DPoP` for tokens bound to the request's DPoP key.
    #[serde(default)]
    pub(crate) token_type: Option<String>,
}

impl Tokens {
    /// When the access token expires, in Unix seconds, if the provider said.
    pub(crate) fn expires_at(&self) -> Option<u64> {
        let secs = match self.expires_in.as_ref()? {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }?;
        Some(unix_now().saturating_add(secs))
    }

    /// The tokens as a session keeps them.
    pub(crate) fn into_token_set(self) -> TokenSet {
        let expires_at = self.expires_at();
        let mut set = TokenSet::new().with_access_token(self.access_token);
        set.expires_at = expires_at;
        set.id_token = self.id_token;
        set.refresh_token = self.refresh_token;
        set.scope = self.scope;
        set
    }
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tokens { .. }")
    }
}

/// An error response (RFC 6749 §5.2; also what the PAR endpoint answers, RFC 9126 §2.3).
#[derive(Deserialize)]
pub(crate) struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// Performs `grant` at `metadata`'s token endpoint.
///
/// # Errors
/// `Unavailable` for transport errors, timeouts, 429 and 5xx (see [`Http::send`]) and a
/// success answer that is not a token response. Other answers depend on the grant:
/// - code: `Rejected`, whatever the error (`invalid_grant`, `invalid_client`, a 3xx or a
///   403 page): the login fails and can be started again;
/// - refresh: `Rejected` only for a 4xx answer whose OAuth error is `invalid_grant` (the
///   refresh token is used up, expired or revoked: the session should end); `Unavailable`
///   for every other answer (`invalid_client`, `unauthorized_client`, other OAuth errors,
///   3xx, 401 or 403 without `invalid_grant`), so that a provider-side or configuration
///   problem does not end every session at once.
///
/// With `dpop`, every request carries a DPoP proof; a `use_dpop_nonce` answer is retried
/// once with the server's nonce, and every answer's nonce is remembered.
pub(crate) async fn request(
    http: &Http,
    metadata: &Metadata,
    client: &ClientAuth,
    grant: Grant<'_>,
    dpop: Option<Proofs<'_>>,
) -> Result<Tokens, Failure> {
    const WHAT: Endpoint = Endpoint::Token;
    let endpoint = &metadata.token_endpoint;
    let form: Vec<(&str, &str)> = match &grant {
        Grant::Code { code, pkce_verifier, redirect_uri } => vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", pkce_verifier),
        ],
        Grant::Refresh { refresh_token } => vec![("grant_type", "refresh_token"), ("refresh_token", refresh_token)],
    };
    // A fresh request each time: a client assertion is single use.
    let build = || client.authenticate(http, endpoint, &form, metadata);
    let answer = match dpop {
        Some(dpop) => dpop.send(http, WHAT, "POST", endpoint, None, build).await?,
        None => http.send(WHAT, endpoint, build()?).await?,
    };
    if answer.status.is_success() {
        return answer.json(http, WHAT, endpoint);
    }
    let error = serde_json::from_slice::<OAuthError>(&answer.body).ok();
    let invalid_grant = answer.status.is_client_error() && error.as_ref().is_some_and(|e| e.error == "invalid_grant");
    tracing::debug!(status = answer.status.as_u16(), invalid_grant, "token request refused");
    let refused = match (&grant, error) {
        (Grant::Code { .. }, _) if invalid_grant => {
            "the authorization code was refused (invalid_grant): it may have been used already or expired".to_owned()
        }
        (Grant::Refresh { .. }, _) if invalid_grant => {
            "the refresh token was refused (invalid_grant): it may have been used already, expired or been revoked"
                .to_owned()
        }
        (Grant::Code { .. }, Some(error)) => {
            format!("the token endpoint refused the request ({})", described(&error))
        }
        (Grant::Code { .. }, None) => format!("the token endpoint answered HTTP {}", answer.status),
        (Grant::Refresh { .. }, error) => {
            let error = error.map(|e| format!(" ({})", described(&e))).unwrap_or_default();
            let problem = format!("answered HTTP {}{error} to the refresh", answer.status);
            return Err(http.unavailable(WHAT, endpoint, &problem));
        }
    };
    Err(http.rejected(&refused))
}

/// `error: description` of an OAuth error, as messages show it.
pub(crate) fn described(error: &OAuthError) -> String {
    let description = error.error_description.as_deref().map(|d| format!(": {}", clip(d))).unwrap_or_default();
    format!("{}{description}", clip(&error.error))
}

/// `client_secret_basic` (RFC 6749 §2.3.1): id and secret are form-urlencoded first.
fn basic_auth(client_id: &str, secret: &str) -> String {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", encode(client_id), encode(secret));
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
}

/// Provider-supplied text, shortened and stripped of control characters for messages.
pub(crate) fn clip(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_encodes_both_parts() {
        // "a b:c" and "p@ss:w/rd" form-urlencoded, then base64.
        let header = basic_auth("a b:c", "p@ss:w/rd");
        let encoded = header.strip_prefix("Basic ").expect("scheme");
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).expect("base64");
        assert_eq!(String::from_utf8(decoded).expect("utf8"), "a+b%3Ac:p%40ss%3Aw%2Frd");
    }

    #[test]
    fn expires_in_may_be_a_string() {
        let tokens: Tokens =
            serde_json::from_str(r#"{"access_token":"a","token_type":"Bearer","expires_in":"60"}"#).expect("parses");
        let at = tokens.expires_at().expect("expiry");
        assert!(at >= unix_now() + 59 && at <= unix_now() + 61);
        let tokens: Tokens = serde_json::from_str(r#"{"access_token":"a","token_type":"Bearer"}"#).expect("parses");
        assert_eq!(tokens.expires_at(), None);
        assert_eq!(format!("{tokens:?}"), "Tokens { .. }");
    }

    #[test]
    fn clip_bounds_provider_text() {
        assert_eq!(clip("bad\r\nthing"), "badthing");
        assert_eq!(clip(&"x".repeat(500)).len(), 200);
    }
}
