//! JWT access tokens (RFC 9068), so that an API's bearer-token verification can be tested
//! against the same issuer, keys and users as the login, without going through a login.

use serde_json::{Value, json};

use crate::jwt;
use crate::server::{Shared, unix_now};
use crate::user::MockUser;

/// The claims of an access token for `user`: the user's claims (profile and custom, as
/// in a full ID token), then the RFC 9068 claims, which win over a user claim of the
/// same name.
pub(crate) fn claims(shared: &Shared, user: &MockUser, audience: &str, scope: &str) -> Value {
    let now = unix_now();
    let mut claims = user.claims();
    let protocol = json!({
        "iss": shared.issuer_for(Some(user)),
        "sub": user.username(),
        "aud": audience,
        "client_id": shared.config.client_id,
        "iat": now,
        "exp": now + shared.access_token_ttl().as_secs(),
        "jti": jwt::random_token(),
        "scope": scope,
    });
    jwt::merge(&mut claims, &protocol);
    Value::Object(claims)
}
