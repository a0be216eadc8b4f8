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
    /// Every claim the provider asserted, as JSON: reads as a [`Claims`] map, decoded
    /// from the session cookie the first time something reads it.
    pub claims: LazyClaims,
}

impl Identity {
    /// An identity of `subject` at `provider` with `claims`.
    pub fn new(provider: impl Into<String>, subject: impl Into<String>, claims: Claims) -> Self {
        Self { provider: provider.into(), subject: subject.into(), claims: claims.into() }
    }
}

/// An identity's [`Claims`], decoded when first read.
///
/// A session opened from its cookie keeps its claims as the JSON text they were sealed as;
/// most requests only ask whether someone is signed in, who (the subject) and until when,
/// which needs none of them. The first read (through `Deref` to [`Claims`]: `claims.get("email")`,
/// `&*claims`) parses them once; later reads share the result. Writing (`DerefMut`) parses
/// them first. Equality, `Debug` and serialization are those of the map. Text that is not a
/// JSON object reads as no claims (the text was sealed by this library, so only a bug could
/// make it so).
#[derive(Default)]
pub struct LazyClaims {
    /// The claims as JSON text, until parsed (kept after: `&self` cannot drop it).
    raw: Option<Box<str>>,
    parsed: std::sync::OnceLock<Claims>,
}

impl LazyClaims {
    /// Claims to be parsed from the JSON object `json` when first read.
    pub fn from_json(json: impl Into<Box<str>>) -> Self {
        Self { raw: Some(json.into()), parsed: std::sync::OnceLock::new() }
    }

    /// The claims, parsed now if they were not yet.
    pub fn as_map(&self) -> &Claims {
        self.parsed.get_or_init(|| {
            let raw = self.raw.as_deref().unwrap_or("{}");
            serde_json::from_str(raw).unwrap_or_default()
        })
    }

    /// Whether the claims have been parsed (a read happened, or they were built as a map).
    pub fn is_parsed(&self) -> bool {
        self.parsed.get().is_some()
    }

    /// The claims as the map, parsed if needed.
    pub fn into_claims(mut self) -> Claims {
        self.as_map();
        self.parsed.take().unwrap_or_default()
    }

    /// The claims as JSON text: the text they were read from when not parsed since, else
    /// the map written out.
    pub fn to_json(&self) -> std::borrow::Cow<'_, str> {
        match (self.parsed.get(), &self.raw) {
            (None, Some(raw)) => std::borrow::Cow::Borrowed(raw),
            (parsed, _) => std::borrow::Cow::Owned(
                serde_json::to_string(parsed.unwrap_or(&Claims::new())).unwrap_or_else(|_| "{}".to_owned()),
            ),
        }
    }
}

impl From<Claims> for LazyClaims {
    fn from(claims: Claims) -> Self {
        Self { raw: None, parsed: std::sync::OnceLock::from(claims) }
    }
}

impl std::ops::Deref for LazyClaims {
    type Target = Claims;

    fn deref(&self) -> &Claims {
        self.as_map()
    }
}

impl std::ops::DerefMut for LazyClaims {
    fn deref_mut(&mut self) -> &mut Claims {
        self.as_map();
        // From now on the map is the truth.
        self.raw = None;
        self.parsed.get_mut().unwrap_or_else(|| unreachable!("parsed just above"))
    }
}

impl Clone for LazyClaims {
    fn clone(&self) -> Self {
        match self.parsed.get() {
            Some(claims) => claims.clone().into(),
            None => Self { raw: self.raw.clone(), parsed: std::sync::OnceLock::new() },
        }
    }
}

impl PartialEq for LazyClaims {
    fn eq(&self, other: &Self) -> bool {
        self.as_map() == other.as_map()
    }
}

impl fmt::Debug for LazyClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_map(), f)
    }
}

impl Serialize for LazyClaims {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.as_map().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for LazyClaims {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Claims::deserialize(deserializer).map(Self::from)
    }
}

impl<'a> IntoIterator for &'a LazyClaims {
    type Item = (&'a String, &'a serde_json::Value);
    type IntoIter = serde_json::map::Iter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.as_map().iter()
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
    /// The DPoP key the tokens are bound to ([`DpopKey::stored`](crate::DpopKey::stored)),
    /// when the provider bound them (`dpop`): their token type is then `DPoP`, not `Bearer`.
    /// A secret like the tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_key: Option<String>,
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
            .field("dpop_key", &format_args!("{}", shown(&self.dpop_key)))
            .finish()
    }
}
