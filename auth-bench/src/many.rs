//! The users of the many-session variants ((1c), (8), (9)): real sites have many, and a
//! layer that is fast for one repeated cookie may not be for a hundred thousand.
//!
//! User `i` is (3)'s Google login with its own subject, email and name
//! ([`fixtures::google_user_session`]), so every user's cookie is as long as (3)'s. Its
//! session is sealed by the cookie store, as a login writes it, or saved in Redis with the
//! store the Redis variants' servers use, and the cookie carries the ticket. `bench-run`
//! makes them once per run and shares them between the variants that send them: they
//! never go through a server's standard output. `n` users are users `0..n`, so the counts
//! of one run (`--sessions 1,1000,100000`) are the first `n` of the largest.

use crate::fixtures;
use crate::variants;
use auth_core::{CookieStore, SessionStore};
use http::HeaderValue;
use std::sync::Arc;
use tokio::task::JoinSet;

/// The number of distinct users when `--sessions` does not say.
pub const DEFAULT_SESSIONS: usize = 100_000;
/// The most `--sessions` allows: every cookie is kept in memory (about 1 KB each).
pub const MAX_SESSIONS: usize = 1_000_000;
/// How many Redis saves are in flight at once.
pub const SAVES_AT_ONCE: usize = 64;

/// The `Cookie` headers of users `0..n`, their sessions sealed by the cookie store of a
/// layer built from [`fixtures::config`], in user order.
///
/// # Errors
/// When a session cannot be sealed.
pub async fn sealed_cookies(n: usize) -> Result<Vec<HeaderValue>, String> {
    let store = CookieStore::new(Arc::new(fixtures::sealer()));
    let mut cookies = Vec::with_capacity(n);
    for user in 0..n {
        let sealed = store.save(&fixtures::google_user_session(user)).await;
        cookies.push(cookie(&sealed.map_err(|e| format!("cannot seal user {user}'s session: {e}"))?)?);
    }
    Ok(cookies)
}

/// Saves the sessions of users `0..n` in the Redis at `url`, through the store the Redis
/// variants' servers use ([`variants::REDIS_PREFIX`]), [`SAVES_AT_ONCE`] at a time; returns
/// the `Cookie` headers carrying their tickets, in user order.
///
/// # Errors
/// When Redis does not answer or a save fails, or `auth-bench` was built without feature
/// `redis`.
pub async fn redis_cookies(url: &str, n: usize) -> Result<Vec<HeaderValue>, String> {
    let store = variants::redis_store(url).await?;
    let mut cookies: Vec<Option<HeaderValue>> = vec![None; n];
    let mut users = 0..n;
    let mut saving = JoinSet::new();
    loop {
        while saving.len() < SAVES_AT_ONCE
            && let Some(user) = users.next()
        {
            let store = Arc::clone(&store);
            saving.spawn(async move { (user, store.save(&fixtures::google_user_session(user)).await) });
        }
        let Some(joined) = saving.join_next().await else { break };
        let (user, saved) = joined.map_err(|e| format!("a Redis save failed: {e}"))?;
        let ticket = saved.map_err(|e| format!("cannot save user {user}'s session in Redis at {url}: {e}"))?;
        cookies[user] = Some(cookie(&ticket)?);
    }
    Ok(cookies.into_iter().flatten().collect())
}

/// The `Cookie` header a browser sends for `ticket`.
fn cookie(ticket: &str) -> Result<HeaderValue, String> {
    HeaderValue::try_from(fixtures::cookie_header(ticket)).map_err(|e| format!("a session cookie: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// The subjects `cookies` open to with the bench's cookie store.
    async fn subjects(store: &dyn SessionStore, cookies: &[HeaderValue]) -> Vec<String> {
        let mut subjects = Vec::new();
        for cookie in cookies {
            let value = cookie.to_str().unwrap_or_default();
            let ticket = value.strip_prefix("auth_session=").unwrap_or_else(|| panic!("one cookie: {value}"));
            let session = store.load(ticket).await.unwrap_or_else(|e| panic!("{e}"));
            subjects.push(session.unwrap_or_else(|| panic!("{ticket} opens")).identity.subject);
        }
        subjects
    }

    #[tokio::test]
    async fn each_user_has_a_distinct_cookie_as_long_as_the_single_one() {
        let cookies = sealed_cookies(3).await.unwrap_or_else(|e| panic!("{e}"));
        let single = fixtures::cookie_header(&fixtures::sealed(&fixtures::google_session()).await);
        assert!(cookies.iter().all(|c| c.len() == single.len()), "{} bytes each", single.len());
        assert_eq!(cookies.iter().collect::<HashSet<_>>().len(), 3);
        let store = CookieStore::new(Arc::new(fixtures::sealer()));
        let subjects = subjects(&store, &cookies).await;
        assert_eq!(subjects, ["110169484474300000000", "110169484474300000001", "110169484474300000002"]);
    }

    /// Needs `redis-server` (skipped, saying so, when it is not installed).
    #[cfg(feature = "redis")]
    #[tokio::test]
    async fn users_saved_in_redis_load_through_the_servers_store() {
        let dir = std::env::temp_dir().join(format!("auth-bench-many-{}", std::process::id()));
        let redis = match crate::redis_server::RedisServer::start(&dir) {
            Ok(redis) => redis,
            Err(reason) => return eprintln!("skipped: {reason}"),
        };
        // More than SAVES_AT_ONCE, so that saves wait for a free slot.
        let cookies = redis_cookies(&redis.url(), 100).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cookies.len(), 100);
        let store = variants::redis_store(&redis.url()).await.unwrap_or_else(|e| panic!("{e}"));
        let subjects = subjects(&*store, &cookies).await;
        let expected: Vec<String> = (0..100).map(|u| format!("1101694844743{u:08}")).collect();
        assert_eq!(subjects, expected, "in user order");
        drop(redis);
        let _ = std::fs::remove_dir_all(dir);
    }
}
