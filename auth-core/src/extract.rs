//! The axum extractor for [`User`] (feature `axum`).
//!
//! It lives here, beside `User`, because Rust lets only the crate that defines a type
//! implement a foreign trait for it.

use crate::User;
use axum_core::extract::FromRequestParts;
use http::request::Parts;
use std::convert::Infallible;

/// Always succeeds: the signed-in user, or anonymous when nobody is (or when the auth
/// layer is missing, which is logged once per request at debug level).
impl<S: Send + Sync> FromRequestParts<S> for User {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<User>().cloned().unwrap_or_else(|| {
            tracing::debug!("no User in request extensions: is AuthLayer applied to this route?");
            User::anonymous()
        }))
    }
}
