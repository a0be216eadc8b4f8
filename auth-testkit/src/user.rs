//! The accounts a [`MockIdp`](crate::MockIdp) can sign in.

use serde_json::{Map, Value};

/// An account of the mock provider; its username is the `sub` claim.
///
/// ```
/// use auth_testkit::MockUser;
/// use serde_json::json;
///
/// let carol = MockUser::new("carol")
///     .email("carol@example.test")
///     .name("Carol Example")
///     .picture("https://example.test/carol.png")
///     .claim("groups", json!(["admins"]))
///     .password("s3cret");
/// assert_eq!(carol.claims()["groups"], json!(["admins"]));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MockUser {
    username: String,
    email: Option<String>,
    email_verified: bool,
    name: Option<String>,
    picture: Option<String>,
    password: Option<String>,
    extra: Map<String, Value>,
}

impl MockUser {
    /// A user with this username (also its `sub`), no email, name or picture, and no
    /// password (any password, or none, is accepted on the login page).
    pub fn new(username: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            email: None,
            email_verified: true,
            name: None,
            picture: None,
            password: None,
            extra: Map::new(),
        }
    }

    /// Sets the `email` claim (reported with `email_verified: true` unless changed).
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// Sets the `email_verified` claim (default `true`; only sent with an email).
    pub fn email_verified(mut self, verified: bool) -> Self {
        self.email_verified = verified;
        self
    }

    /// Sets the `name` claim, also shown on the login page.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the `picture` claim (a URL).
    pub fn picture(mut self, url: impl Into<String>) -> Self {
        self.picture = Some(url.into());
        self
    }

    /// Adds a custom claim, sent in the ID token (unless minimal) and by `/userinfo`. It
    /// overrides a standard claim of the same name, except `sub`.
    pub fn claim(mut self, key: impl Into<String>, value: Value) -> Self {
        self.extra.insert(key.into(), value);
        self
    }

    /// Requires this password on the HTML login page. Auto-login ignores it.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// The username, which is also the `sub` claim.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The user's claims as `/userinfo` reports them: `sub`, `email`, `email_verified`,
    /// `name`, `picture` (those that are set) and the custom claims.
    pub fn claims(&self) -> Map<String, Value> {
        let mut claims = Map::new();
        claims.insert("sub".into(), self.username.clone().into());
        if let Some(email) = &self.email {
            claims.insert("email".into(), email.clone().into());
            claims.insert("email_verified".into(), self.email_verified.into());
        }
        if let Some(name) = &self.name {
            claims.insert("name".into(), name.clone().into());
        }
        if let Some(picture) = &self.picture {
            claims.insert("picture".into(), picture.clone().into());
        }
        for (k, v) in &self.extra {
            if k != "sub" {
                claims.insert(k.clone(), v.clone());
            }
        }
        claims
    }

    pub(crate) fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.username)
    }

    pub(crate) fn email_address(&self) -> Option<&str> {
        self.email.as_deref()
    }

    pub(crate) fn password_matches(&self, given: Option<&str>) -> bool {
        match &self.password {
            None => true,
            Some(expected) => given == Some(expected.as_str()),
        }
    }

    pub(crate) fn has_password(&self) -> bool {
        self.password.is_some()
    }

    pub(crate) fn defaults() -> Vec<Self> {
        vec![
            Self::new("alice").email("alice@example.test").name("Alice Example"),
            Self::new("bob").email("bob@example.test").name("Bob Example"),
        ]
    }
}
