//! `POST {prefix}/backchannel-logout[?provider=NAME]`: OpenID Connect Back-Channel Logout.

use super::{Query, is_form, method_not_allowed, record_outcome, record_provider};
use crate::page::{Page, json};
use crate::state::Shared;
use auth_core::config::DEFAULT_PROVIDER;
use auth_core::{ProviderError, Revocation, metrics};
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Method, StatusCode};
use std::sync::Arc;
use tracing::Instrument;
use tracing::field::Empty;

/// The largest back-channel logout body read: a logout token is a JWT of a few kilobytes.
const MAX_LOGOUT_BODY: usize = 64 * 1024;

/// `POST {prefix}/backchannel-logout[?provider=NAME]`, OpenID Connect Back-Channel Logout
/// 1.0: the identity provider posts a logout token (form field `logout_token`) when a
/// person signs out there; the provider verifies it and the store ends the sessions it
/// names. Without `provider`, the default provider (keys directly in `[auth]`) or the only
/// one is meant.
///
/// Answers: `200` (whether or not a session matched), `400 {"error":"invalid_request"}`
/// for a missing or invalid token (nothing is revoked), `501` when the provider cannot
/// verify logout tokens or the store cannot revoke sessions (the cookie store), `503` when
/// the provider's keys or the store are unreachable (the provider may retry). Never cached.
pub(crate) async fn backchannel_logout<B>(shared: Arc<Shared>, parts: Parts, body: B) -> Page
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let span = tracing::info_span!("auth.backchannel_logout", provider = Empty, outcome = Empty);
    backchannel(&shared, &parts, body).instrument(span).await
}

async fn backchannel<B>(shared: &Shared, parts: &Parts, body: B) -> Page
where
    B: http_body::Body + Send,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use http_body_util::BodyExt as _;
    let refuse = |status: StatusCode, outcome: &'static str, error: &str, description: &str| {
        record_outcome(outcome);
        metrics::backchannel_logout(outcome);
        json(status, &serde_json::json!({ "error": error, "error_description": description }))
    };
    if parts.method != Method::POST {
        record_outcome("method_not_allowed");
        metrics::backchannel_logout("method_not_allowed");
        return method_not_allowed(&[Method::POST]);
    }
    if !is_form(&parts.headers) {
        let description = "send the logout token as application/x-www-form-urlencoded";
        return refuse(StatusCode::BAD_REQUEST, "malformed", "invalid_request", description);
    }
    let query = Query::parse(parts.uri.query());
    let provider = match query.provider.as_deref() {
        _ if query.repeated => None,
        Some(name) => shared.provider(name),
        None => shared.provider(DEFAULT_PROVIDER).or(match shared.providers.as_slice() {
            [only] => Some(only),
            _ => None,
        }),
    };
    let Some(provider) = provider else {
        let description = format!(
            "name a configured provider: register {}?provider=NAME at each provider",
            shared.routes.backchannel_logout_path()
        );
        return refuse(StatusCode::BAD_REQUEST, "unknown_provider", "invalid_request", &description);
    };
    record_provider(provider.name());
    let bytes = match http_body_util::Limited::new(body, MAX_LOGOUT_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            let description = "the body could not be read or is too large";
            return refuse(StatusCode::BAD_REQUEST, "malformed", "invalid_request", description);
        }
    };
    let mut tokens = url::form_urlencoded::parse(&bytes).filter(|(key, _)| key == "logout_token").map(|(_, v)| v);
    let (Some(token), None) = (tokens.next(), tokens.next()) else {
        let description = "send exactly one logout_token";
        return refuse(StatusCode::BAD_REQUEST, "malformed", "invalid_request", description);
    };
    let claims = match provider.verify_logout_token(&token).await {
        Ok(claims) => claims,
        Err(ProviderError::Unavailable(error)) => {
            tracing::warn!(%error, "the logout token cannot be verified now");
            let description = "the identity provider's keys cannot be fetched now; try again";
            return refuse(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "temporarily_unavailable", description);
        }
        Err(ProviderError::Unsupported(_)) => {
            tracing::error!("a back-channel logout arrived for a provider that cannot verify logout tokens");
            let description = "this provider does not support back-channel logout";
            return refuse(StatusCode::NOT_IMPLEMENTED, "unsupported_provider", "unsupported", description);
        }
        Err(error) => {
            // Anyone can post here: one line per refusal at most every few seconds (the rest
            // at debug), each cut short, so a flood of bad tokens cannot flood the log.
            let error: String = error.to_string().chars().filter(|c| !c.is_control()).take(300).collect();
            if let Some(held_back) = shared.refusal_log.due(auth_core::unix_now(), REFUSAL_LOG_SECS) {
                tracing::warn!(
                    %error,
                    more_since_last_warning = held_back,
                    "back-channel logout refused (further refusals in the next 10 s are logged at debug)"
                );
            } else {
                tracing::debug!(%error, "back-channel logout refused");
            }
            return refuse(
                StatusCode::BAD_REQUEST,
                "invalid_token",
                "invalid_request",
                "the logout token is not valid",
            );
        }
    };
    let token_id = claims.jti.clone().map(|jti| (jti, claims.expires_at.unwrap_or(0)));
    if let Some((jti, _)) = &token_id
        && shared.logout_tokens.seen(provider.name(), jti, auth_core::unix_now())
    {
        if shared.refusal_log.due(auth_core::unix_now(), REFUSAL_LOG_SECS).is_some() {
            tracing::warn!("a back-channel logout token was replayed (its jti was used before)");
        }
        return refuse(StatusCode::BAD_REQUEST, "replay", "invalid_request", "the logout token was already used");
    }
    let Some(revocation) = shared.store.revocation() else {
        tracing::error!(
            "a back-channel logout arrived, but sessions live in cookies, which cannot be revoked: \
             set session_store to \"memory\" or a Redis URL in [auth]"
        );
        let description =
            "this app keeps sessions in cookies, which cannot be revoked; it needs a server-side session_store";
        return refuse(StatusCode::NOT_IMPLEMENTED, "unsupported_store", "unsupported", description);
    };
    match revocation.revoke(&Revocation::of(provider.name(), claims)).await {
        Ok(sessions) => {
            // Remembered only now: a provider retrying after a store failure is not a replay.
            if let Some((jti, until)) = token_id {
                shared.logout_tokens.record(provider.name(), jti, until, auth_core::unix_now());
            }
            tracing::info!(sessions, "back-channel logout ended sessions");
            record_outcome("revoked");
            metrics::backchannel_logout("revoked");
            metrics::sessions_revoked("backchannel", sessions as u64);
            let mut response = http::Response::new(http_body_util::Full::new(Bytes::new()));
            response.headers_mut().insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => {
            tracing::error!(%error, "session store failed to revoke sessions");
            let description = "the session store is unavailable; try again";
            refuse(StatusCode::SERVICE_UNAVAILABLE, "store_error", "temporarily_unavailable", description)
        }
    }
}

/// How often a refused back-channel request is logged at warn.
const REFUSAL_LOG_SECS: u64 = 10;

/// How many logout-token `jti`s are remembered at most.
const MAX_SEEN: usize = 10_000;

/// The `jti`s of the logout tokens that ended sessions, each until its token stops being
/// accepted, so that a replay (which would end sessions started after the real logout) is
/// refused. Per process: app instances do not share it, so a token replayed to another
/// instance passes there until it expires (at most 10 minutes after it was issued). At most
/// [`MAX_SEEN`] entries: expired ones go first, then the one closest to expiry.
#[derive(Debug, Default)]
pub(crate) struct SeenLogoutTokens {
    /// `(provider, jti)` to the Unix second until which the token is accepted.
    entries: std::sync::Mutex<std::collections::HashMap<(String, String), u64>>,
}

impl SeenLogoutTokens {
    /// Whether `jti` of `provider` ended sessions before and its token is still accepted.
    pub(crate) fn seen(&self, provider: &str, jti: &str, now: u64) -> bool {
        let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.get(&(provider.to_owned(), jti.to_owned())).is_some_and(|until| *until >= now)
    }

    /// Remembers `jti` of `provider` until `until`.
    pub(crate) fn record(&self, provider: &str, jti: String, until: u64, now: u64) {
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (provider.to_owned(), jti);
        if entries.len() >= MAX_SEEN && !entries.contains_key(&key) {
            entries.retain(|_, seen_until| *seen_until >= now);
            if entries.len() >= MAX_SEEN {
                let soonest = entries.iter().min_by_key(|(_, until)| **until).map(|(k, _)| k.clone());
                if let Some(soonest) = soonest {
                    entries.remove(&soonest);
                }
            }
        }
        entries.insert(key, until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jti_is_seen_until_its_token_expires_and_the_memory_stays_bounded() {
        let seen = SeenLogoutTokens::default();
        assert!(!seen.seen("p", "j1", 1_000));
        seen.record("p", "j1".into(), 1_100, 1_000);
        assert!(seen.seen("p", "j1", 1_050));
        assert!(!seen.seen("q", "j1", 1_050), "per provider");
        assert!(!seen.seen("p", "j1", 1_101), "forgotten once the token expired");

        let full = SeenLogoutTokens::default();
        for i in 0..MAX_SEEN {
            let until = if i % 2 == 0 { 1_500 } else { 2_000 + i as u64 };
            full.record("p", format!("j{i}"), until, 1_000);
        }
        full.record("p", "new".into(), 3_000, 1_600);
        assert_eq!(full.entries.lock().map(|e| e.len()).ok(), Some(MAX_SEEN / 2 + 1), "the expired half went");
        assert!(full.seen("p", "j1", 1_600), "live entries stay");
    }
}
