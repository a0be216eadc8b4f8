//! `GET /auth/jwks` (with `publish_client_jwks = true`): the public keys the app's
//! providers authenticate with (`private_key_jwt`), as a JWK Set, for providers that fetch
//! a client's keys from its registered `jwks_uri`. Public members only: the providers
//! never hand out a private part (see `IdentityProvider::client_jwks`).

use crate::page::{Page, json};
use crate::state::Shared;
use http::header::CACHE_CONTROL;
use http::{HeaderValue, StatusCode};
use serde_json::{Value, json};

/// How long a provider may keep the key set: a key added for rotation is seen within this
/// time, so add it (as a second `client_private_key_file`) at least this long before it
/// signs.
const MAX_AGE: &str = "max-age=300";

/// The union of every provider's client keys (a key shared by two providers once).
pub(super) fn jwks(shared: &Shared) -> Page {
    let mut keys: Vec<Value> = Vec::new();
    for key in shared.providers.iter().flat_map(|provider| provider.client_jwks()) {
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    let mut page = json(StatusCode::OK, &json!({ "keys": keys }));
    page.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static(MAX_AGE));
    page
}
