//! [`User`], the `st.user` of every request.

use crate::{ExposeTokens, Session};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;

/// The person behind a request, or nobody.
///
/// The auth layer puts one in every request's extensions; it is cheap to clone (one
/// reference count). The Streamlit mapping: `st.user.is_logged_in` is
/// [`is_logged_in`](Self::is_logged_in), `st.user.email` is [`email`](Self::email),
/// `st.user["claim"]` is [`get`](Self::get), `st.user.to_dict()` is
/// [`to_json`](Self::to_json) and `st.user.tokens` is [`tokens`](Self::tokens).
#[derive(Clone, Debug, Default)]
pub struct User {
    session: Option<Arc<Session>>,
    expose: ExposeTokens,
    method: AuthMethod,
}

/// How a request was authenticated: [`User::auth_method`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthMethod {
    /// Nobody: no session cookie and no bearer token.
    #[default]
    Anonymous,
    /// A session cookie (a browser that logged in).
    Session,
    /// An `Authorization: Bearer` access token (an API client); its claims are the token's.
    Bearer,
}

/// The tokens a handler may read, as allowed by `expose_tokens`. `Debug` says which are
/// there, never what they are.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExposedTokens<'a> {
    /// The ID token, when `expose_tokens` includes `"id"`.
    pub id: Option<&'a str>,
    /// The access token, when `expose_tokens` includes `"access"`.
    pub access: Option<&'a str>,
}

impl std::fmt::Debug for ExposedTokens<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |t: Option<&str>| if t.is_some() { "Some(<redacted>)" } else { "None" };
        f.debug_struct("ExposedTokens")
            .field("id", &format_args!("{}", shown(self.id)))
            .field("access", &format_args!("{}", shown(self.access)))
            .finish()
    }
}

impl User {
    /// Nobody is signed in.
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// The user of `session`; `expose` says which tokens [`tokens`](Self::tokens) reveals.
    pub fn from_session(session: Arc<Session>, expose: ExposeTokens) -> Self {
        Self { session: Some(session), expose, method: AuthMethod::Session }
    }

    /// The user an `Authorization: Bearer` access token names: `session` holds the
    /// token's verified claims (and no tokens: [`tokens`](Self::tokens) reveals none).
    pub fn from_bearer(session: Arc<Session>) -> Self {
        Self { session: Some(session), expose: ExposeTokens::NONE, method: AuthMethod::Bearer }
    }

    /// How this request was authenticated: a session cookie, a bearer token, or not at all.
    pub fn auth_method(&self) -> AuthMethod {
        self.method
    }

    /// When the person last authenticated at the provider (the ID token's `auth_time`,
    /// Unix seconds), when the provider said: what [`Policy::max_age`](crate::Policy::max_age)
    /// checks.
    pub fn auth_time(&self) -> Option<u64> {
        let at = self.get("auth_time")?;
        at.as_u64().or_else(|| at.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
    }

    /// The authentication context class reference (`acr`) of the login, when the provider
    /// said: what [`Policy::acr`](crate::Policy::acr) checks.
    pub fn acr(&self) -> Option<&str> {
        self.get_str("acr")
    }

    /// Whether someone is signed in.
    pub fn is_logged_in(&self) -> bool {
        self.session.is_some()
    }

    /// The whole session, for code that needs more than the claims.
    pub fn session(&self) -> Option<&Session> {
        self.session.as_deref()
    }

    /// One claim by name (`user.get("hd")`), `None` when anonymous or absent.
    pub fn get(&self, claim: &str) -> Option<&Value> {
        self.session.as_ref()?.identity.claims.get(claim)
    }

    fn get_str(&self, claim: &str) -> Option<&str> {
        self.get(claim)?.as_str()
    }

    /// The stable subject identifier.
    pub fn sub(&self) -> Option<&str> {
        self.session.as_ref().map(|s| s.identity.subject.as_str())
    }

    /// The `email` claim.
    pub fn email(&self) -> Option<&str> {
        self.get_str("email")
    }

    /// The `name` claim, else `preferred_username`.
    pub fn name(&self) -> Option<&str> {
        self.get_str("name").or_else(|| self.get_str("preferred_username"))
    }

    /// The `picture` claim (a URL).
    pub fn picture(&self) -> Option<&str> {
        self.get_str("picture")
    }

    /// The name of the provider the user signed in with.
    pub fn provider(&self) -> Option<&str> {
        self.session.as_ref().map(|s| s.identity.provider.as_str())
    }

    /// The claims as a JSON object with `"is_logged_in"`, like Streamlit's `st.user.to_dict()`.
    pub fn to_json(&self) -> Value {
        let mut map = match &self.session {
            Some(s) => s.identity.claims.as_map().clone(),
            None => serde_json::Map::new(),
        };
        map.insert("is_logged_in".into(), Value::Bool(self.is_logged_in()));
        Value::Object(map)
    }

    /// The claims decoded into your own type.
    ///
    /// # Errors
    /// When anonymous (a "user is not logged in" error) or when the claims do not fit `T`.
    pub fn claims<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        use serde::de::Error;
        let session = self.session.as_ref().ok_or_else(|| serde_json::Error::custom("user is not logged in"))?;
        T::deserialize(&Value::Object(session.identity.claims.as_map().clone()))
    }

    /// The tokens `expose_tokens` allows handlers to see; `None` when anonymous.
    pub fn tokens(&self) -> Option<ExposedTokens<'_>> {
        let tokens = &self.session.as_ref()?.tokens;
        Some(ExposedTokens {
            id: tokens.id_token.as_deref().filter(|_| self.expose.id),
            access: tokens.access_token.as_deref().filter(|_| self.expose.access),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Identity, TokenSet};
    use serde::Deserialize;
    use serde_json::json;

    fn alice(expose: ExposeTokens) -> User {
        let claims = json!({"sub": "alice", "email": "a@example.test", "preferred_username": "al"});
        let Value::Object(claims) = claims else { unreachable!() };
        let tokens =
            TokenSet { id_token: Some("id.jwt".into()), access_token: Some("at".into()), ..Default::default() };
        User::from_session(Arc::new(Session::new(Identity::new("default", "alice", claims), tokens, 60)), expose)
    }

    #[test]
    fn anonymous_user_has_nothing() {
        let user = User::anonymous();
        assert!(!user.is_logged_in());
        assert_eq!(user.email(), None);
        assert_eq!(user.tokens(), None);
        assert_eq!(user.to_json(), json!({"is_logged_in": false}));
        assert!(user.claims::<serde_json::Map<String, Value>>().is_err());
    }

    #[test]
    fn logged_in_user_reads_claims() {
        let user = alice(ExposeTokens::NONE);
        assert_eq!(user.sub(), Some("alice"));
        assert_eq!(user.name(), Some("al"), "falls back to preferred_username");
        assert_eq!(user.provider(), Some("default"));
        assert_eq!(user.to_json()["is_logged_in"], true);
        assert_eq!(user.to_json()["email"], "a@example.test");
        #[derive(Deserialize)]
        struct Mine {
            email: String,
        }
        assert_eq!(user.claims::<Mine>().map(|m| m.email).ok().as_deref(), Some("a@example.test"));
    }

    #[test]
    fn tokens_follow_expose_tokens() {
        assert_eq!(alice(ExposeTokens::NONE).tokens(), Some(ExposedTokens::default()));
        let both = alice(ExposeTokens { id: true, access: true });
        assert_eq!(both.tokens(), Some(ExposedTokens { id: Some("id.jwt"), access: Some("at") }));
        let id_only = alice(ExposeTokens { id: true, access: false });
        assert_eq!(id_only.tokens().and_then(|t| t.access), None);
        let debug = format!("{:?}", both.tokens());
        assert!(!debug.contains("id.jwt") && !debug.contains("\"at\""), "Debug hides the tokens: {debug}");
    }
}
