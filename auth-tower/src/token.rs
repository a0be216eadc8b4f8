//! [`AccessToken`]: the signed-in person's current access token, for calling an API on
//! their behalf.
//!
//! `expose_tokens` decides what [`User::tokens`] shows, as Streamlit's `st.user.tokens`
//! does: a guard against printing or serializing tokens by accident. Calling an API is a
//! deliberate act, so it has its own, explicit way that does not depend on
//! `expose_tokens`: `AccessToken` (an axum extractor with feature `axum`, or
//! [`AccessToken::of`] anywhere else). The layer has already refreshed the token when it
//! was due, before your handler runs.
//!
//! A token the provider bound with DPoP (`dpop = true`) is useless without a proof of the
//! session's key on every call: [`AccessToken::authorization_header`] makes both headers.

use auth_core::{DpopKey, User, unix_now};
use http::{HeaderValue, Method};
use std::fmt;

/// The current access token of the signed-in user. `Debug` never shows the token.
///
/// In axum, extracting it rejects anonymous requests like [`RequireUser`](crate::RequireUser)
/// (a redirect to log in, or `401`), answers `503` when the token has expired and could not
/// be refreshed (the provider is down), and `500` when the session holds no access token
/// (the provider gave none, or `keep_tokens` drops it).
///
/// ```
/// # #[cfg(feature = "axum")] {
/// use auth_tower::AccessToken;
///
/// async fn calendar(token: AccessToken) -> String {
///     // e.g. reqwest::Client::new().get(url).bearer_auth(token.secret())
///     format!("calling the API with a token valid until {:?}", token.expires_at())
/// }
/// # }
/// ```
///
/// To call an API, let [`authorization_header`](Self::authorization_header) make the
/// headers: `Authorization: Bearer <token>`, or for a DPoP-bound token `Authorization: DPoP
/// <token>` and a `DPoP` proof for this method and URL:
///
/// ```no_run
/// # async fn call(token: auth_tower::AccessToken) -> Result<(), Box<dyn std::error::Error>> {
/// let url = "https://api.example/calendar?day=today";
/// let (authorization, proof) = token.authorization_header(&http::Method::GET, url)?;
/// let mut request = reqwest::Client::new().get(url).header(http::header::AUTHORIZATION, authorization);
/// if let Some(proof) = proof {
///     request = request.header("DPoP", proof);
/// }
/// let answer = request.send().await?;
/// # let _ = answer; Ok(()) }
/// ```
#[derive(Clone)]
pub struct AccessToken {
    token: String,
    expires_at: Option<u64>,
    /// The session's DPoP key ([`DpopKey::stored`]), when the token is bound to it.
    dpop_key: Option<String>,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("token_type", &self.token_type())
            .finish()
    }
}

/// Why [`AccessToken::authorization_header`] could not make the headers.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthorizationHeaderError {
    /// The token or the proof cannot be a header value (a provider's token with control
    /// characters).
    InvalidHeader,
    /// The session's DPoP key cannot be read, or the proof cannot be signed.
    Dpop(String),
}

impl fmt::Display for AuthorizationHeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidHeader => f.write_str("the access token cannot be sent in a header"),
            Self::Dpop(problem) => write!(f, "cannot make the DPoP proof: {problem}"),
        }
    }
}

impl std::error::Error for AuthorizationHeaderError {}

/// Why [`AccessToken::of`] has no token to give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoAccessToken {
    /// Nobody is signed in.
    Anonymous,
    /// The session holds no access token (the provider gave none, or `keep_tokens` drops it).
    Missing,
    /// The token has expired and could not be refreshed (the provider was unreachable, or
    /// the session has no refresh token).
    Expired,
}

impl fmt::Display for NoAccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Anonymous => "nobody is signed in",
            Self::Missing => "the session holds no access token (is \"access\" in keep_tokens?)",
            Self::Expired => "the access token has expired and could not be refreshed",
        })
    }
}

impl std::error::Error for NoAccessToken {}

impl AccessToken {
    /// The access token of `user` (as the layer put it in the request), when there is a
    /// live one.
    ///
    /// # Errors
    /// [`NoAccessToken`] says why there is none.
    pub fn of(user: &User) -> Result<Self, NoAccessToken> {
        let session = user.session().ok_or(NoAccessToken::Anonymous)?;
        let token = session.tokens.access_token.clone().ok_or(NoAccessToken::Missing)?;
        let expires_at = session.tokens.expires_at;
        if expires_at.is_some_and(|at| at <= unix_now()) {
            return Err(NoAccessToken::Expired);
        }
        Ok(Self { token, expires_at, dpop_key: session.tokens.dpop_key.clone() })
    }

    /// `"DPoP"` for a token bound to the session's DPoP key, else `"Bearer"`: the scheme of
    /// the `Authorization` header.
    pub fn token_type(&self) -> &'static str {
        if self.dpop_key.is_some() { "DPoP" } else { "Bearer" }
    }

    /// The headers of a `method` request to `url` (an absolute URL; its query and fragment
    /// are not part of the proof): the `Authorization` value (`Bearer <token>` or `DPoP
    /// <token>`) and, for a DPoP-bound token, the `DPoP` proof (RFC 9449 §7: `htm`, `htu`,
    /// `ath`, a fresh `jti`). An API that asks for a nonce (`use_dpop_nonce`) is not
    /// answered here: send the request again with a proof from
    /// [`authorization_header_with_nonce`](Self::authorization_header_with_nonce).
    ///
    /// # Errors
    /// [`AuthorizationHeaderError`] when the token cannot be a header value or the session's
    /// key is unusable.
    pub fn authorization_header(
        &self,
        method: &Method,
        url: &str,
    ) -> Result<(HeaderValue, Option<HeaderValue>), AuthorizationHeaderError> {
        self.authorization_header_with_nonce(method, url, None)
    }

    /// [`authorization_header`](Self::authorization_header) with the resource server's
    /// `nonce` (its `DPoP-Nonce` header) in the proof.
    ///
    /// # Errors
    /// As [`authorization_header`](Self::authorization_header).
    pub fn authorization_header_with_nonce(
        &self,
        method: &Method,
        url: &str,
        nonce: Option<&str>,
    ) -> Result<(HeaderValue, Option<HeaderValue>), AuthorizationHeaderError> {
        let mut authorization = HeaderValue::from_str(&format!("{} {}", self.token_type(), self.token))
            .map_err(|_| AuthorizationHeaderError::InvalidHeader)?;
        authorization.set_sensitive(true);
        let Some(stored) = self.dpop_key.as_deref() else { return Ok((authorization, None)) };
        let key = DpopKey::from_stored(stored)
            .ok_or_else(|| AuthorizationHeaderError::Dpop("the session's DPoP key is unreadable".into()))?;
        let proof = key
            .proof(method.as_str(), url, nonce, Some(&self.token))
            .map_err(|e| AuthorizationHeaderError::Dpop(e.to_string()))?;
        let proof = HeaderValue::from_str(&proof).map_err(|_| AuthorizationHeaderError::InvalidHeader)?;
        Ok((authorization, Some(proof)))
    }

    /// The token, for an `Authorization: Bearer` header. Do not log it.
    pub fn secret(&self) -> &str {
        &self.token
    }

    /// When it expires (Unix seconds), if the provider said.
    pub fn expires_at(&self) -> Option<u64> {
        self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth_core::{ExposeTokens, Identity, Session, TokenSet};
    use std::sync::Arc;

    fn user(tokens: TokenSet) -> User {
        let session = Session::new(Identity::new("p", "alice", Default::default()), tokens, 60);
        User::from_session(Arc::new(session), ExposeTokens::NONE)
    }

    #[test]
    fn the_token_of_a_user_whatever_expose_tokens_says() {
        assert_eq!(AccessToken::of(&User::anonymous()).err(), Some(NoAccessToken::Anonymous));
        assert_eq!(AccessToken::of(&user(TokenSet::default())).err(), Some(NoAccessToken::Missing));
        let expired = TokenSet::new().with_access_token("at").with_expires_at(1);
        assert_eq!(AccessToken::of(&user(expired)).err(), Some(NoAccessToken::Expired));
        let live = TokenSet::new().with_access_token("at").with_expires_at(unix_now() + 60);
        let token = AccessToken::of(&user(live)).expect("a live token");
        assert_eq!(token.secret(), "at");
        assert!(!format!("{token:?}").contains("at\""), "Debug hides the token: {token:?}");
        let forever = TokenSet::new().with_access_token("at");
        assert!(AccessToken::of(&user(forever)).is_ok(), "no expiry given: taken as live");
    }

    #[test]
    fn a_bearer_token_makes_only_the_authorization_header() {
        let token = AccessToken::of(&user(TokenSet::new().with_access_token("at"))).expect("token");
        assert_eq!(token.token_type(), "Bearer");
        let (authorization, proof) =
            token.authorization_header(&Method::GET, "https://api.example/x").expect("headers");
        assert_eq!(authorization, "Bearer at");
        assert!(authorization.is_sensitive());
        assert_eq!(proof, None);
    }

    #[test]
    fn a_dpop_token_makes_a_proof_of_the_session_key() {
        use base64::Engine as _;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let key = DpopKey::generate(auth_core::DpopAlg::Es256).expect("key");
        let mut tokens = TokenSet::new().with_access_token("at");
        tokens.dpop_key = Some(key.stored().to_owned());
        let token = AccessToken::of(&user(tokens)).expect("token");
        assert_eq!(token.token_type(), "DPoP");
        assert!(!format!("{token:?}").contains(key.stored()), "Debug hides the key");
        let (authorization, proof) =
            token.authorization_header(&Method::POST, "https://api.example/items?page=2").expect("headers");
        assert_eq!(authorization, "DPoP at");
        let proof = proof.expect("a proof");
        let part = |i: usize| -> serde_json::Value {
            let segment = proof.to_str().expect("ascii").split('.').nth(i).expect("segment");
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).expect("base64")).expect("json")
        };
        let (header, claims) = (part(0), part(1));
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(auth_core::dpop::thumbprint(&header["jwk"]).as_deref(), Some(key.thumbprint()));
        assert_eq!(claims["htm"], "POST");
        assert_eq!(claims["htu"], "https://api.example/items");
        assert_eq!(claims["ath"], auth_core::dpop::ath("at"));
        assert!(claims.get("nonce").is_none());
        let (_, proof) =
            token.authorization_header_with_nonce(&Method::GET, "https://api.example/x", Some("n-1")).expect("headers");
        assert!(proof.is_some());
    }
}
