//! What a finished login yields: who the person is, and the tokens the provider gave.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The claims of an identity: the ID token's claims merged with userinfo's.
pub type Claims = serde_json::Map<String, serde_json::Value>;

/// A person as one provider knows them.
///
/// Fields are public to read; build one with [`Identity::new`] (the struct may grow).
/// When a provider returns an identity from a login or a refresh, the layer sets
/// `provider` to that provider's [`name`](crate::IdentityProvider::name), so
/// [`User::provider`](crate::User::provider) never names another one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Identity {
    /// The name of the provider that signed the person in (`"google"`, `"default"`, ...).
    pub provider: String,
    /// The stable, provider-scoped identifier (`sub` for OpenID Connect).
    pub subject: String,
    /// Every claim the provider asserted, as JSON.
    pub claims: Claims,
}

impl Identity {
    /// An identity of `subject` at `provider` with `claims`.
    pub fn new(provider: impl Into<String>, subject: impl Into<String>, claims: Claims) -> Self {
        Self { provider: provider.into(), subject: subject.into(), claims }
    }
}

/// Tokens returned by the provider's token endpoint.
///
/// `Debug` never shows a token. Build one with [`TokenSet::new`] and the `with_*` methods
/// (the struct may grow):
///
/// ```
/// let tokens = auth_core::TokenSet::new().with_access_token("at").with_expires_at(1_900_000_000);
/// assert_eq!(tokens.access_token.as_deref(), Some("at"));
/// assert!(!format!("{tokens:?}").contains("\"at\""));
/// ```
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TokenSet {
    /// The OAuth 2.0 access token, for calling the provider's or another API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// The OpenID Connect ID token (a JWT), as received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// The refresh token, when the provider issued one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// When the access token expires, in seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// The scopes granted, space separated, when the provider said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl TokenSet {
    /// No tokens.
    pub fn new() -> Self {
        Self::default()
    }

    /// With the access token `token`.
    #[must_use]
    pub fn with_access_token(mut self, token: impl Into<String>) -> Self {
        self.access_token = Some(token.into());
        self
    }

    /// With the ID token `token` (the JWT as received).
    #[must_use]
    pub fn with_id_token(mut self, token: impl Into<String>) -> Self {
        self.id_token = Some(token.into());
        self
    }

    /// With the refresh token `token`.
    #[must_use]
    pub fn with_refresh_token(mut self, token: impl Into<String>) -> Self {
        self.refresh_token = Some(token.into());
        self
    }

    /// With the access token expiring at `at` (Unix seconds).
    #[must_use]
    pub fn with_expires_at(mut self, at: u64) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// With the granted scopes `scope` (space separated).
    #[must_use]
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |t: &Option<String>| if t.is_some() { "Some(<redacted>)" } else { "None" };
        f.debug_struct("TokenSet")
            .field("access_token", &format_args!("{}", shown(&self.access_token)))
            .field("id_token", &format_args!("{}", shown(&self.id_token)))
            .field("refresh_token", &format_args!("{}", shown(&self.refresh_token)))
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .finish()
    }
}
