//! [`AccessToken`]: the signed-in person's current access token, for calling an API on
//! their behalf.
//!
//! `expose_tokens` decides what [`User::tokens`] shows, as Streamlit's `st.user.tokens`
//! does: a guard against printing or serializing tokens by accident. Calling an API is a
//! deliberate act, so it has its own, explicit way that does not depend on
//! `expose_tokens`: `AccessToken` (an axum extractor with feature `axum`, or
//! [`AccessToken::of`] anywhere else). The layer has already refreshed the token when it
//! was due, before your handler runs.

use auth_core::{User, unix_now};
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
#[derive(Clone)]
pub struct AccessToken {
    token: String,
    expires_at: Option<u64>,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken").field("token", &"<redacted>").field("expires_at", &self.expires_at).finish()
    }
}

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
        Ok(Self { token, expires_at })
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
}
