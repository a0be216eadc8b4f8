//! A lazily fetched, shared document (the discovery document, the key set) that survives
//! an identity provider being down.
//!
//! Nothing is fetched when the provider is built, so the app starts while the IdP is
//! unreachable. The first caller fetches; callers that arrive meanwhile wait for that one
//! fetch instead of starting their own. A failure is remembered for
//! [`RETRY_AFTER_FAILURE`], so a storm of logins against a dead IdP costs one request per
//! second, not one per login. A cached value can be replaced on demand
//! ([`Cache::refresh`]), at most once per interval the caller chooses.

use crate::error::Failure;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, RwLock};

/// How long a failed fetch is reported to later callers before the next attempt.
pub(crate) const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(crate) struct Cache<T> {
    value: RwLock<Option<Arc<T>>>,
    gate: Mutex<Gate>,
}

#[derive(Debug, Default)]
struct Gate {
    last_failure: Option<(Instant, Failure)>,
    last_refresh: Option<Instant>,
}

impl<T> Default for Cache<T> {
    fn default() -> Self {
        Self { value: RwLock::new(None), gate: Mutex::new(Gate::default()) }
    }
}

impl<T> Cache<T> {
    /// The cached value, fetching it first when there is none (or the last attempt
    /// failed more than [`RETRY_AFTER_FAILURE`] ago).
    pub(crate) async fn get<F, Fut>(&self, fetch: F) -> Result<Arc<T>, Failure>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        if let Some(value) = self.value.read().await.as_ref() {
            return Ok(Arc::clone(value));
        }
        let mut gate = self.gate.lock().await;
        // Another caller may have fetched while this one waited for the gate.
        if let Some(value) = self.value.read().await.as_ref() {
            return Ok(Arc::clone(value));
        }
        if let Some((at, failure)) = &gate.last_failure {
            if at.elapsed() < RETRY_AFTER_FAILURE {
                return Err(failure.clone());
            }
        }
        self.fetch_into(&mut gate, fetch).await
    }

    /// Replaces `stale` with a fresh fetch, unless the value was already replaced (then
    /// the newer value is returned without fetching) or the last refresh happened less
    /// than `min_interval` ago (then `Ok(None)`: the caller must do without).
    pub(crate) async fn refresh<F, Fut>(
        &self,
        stale: &Arc<T>,
        min_interval: Duration,
        fetch: F,
    ) -> Result<Option<Arc<T>>, Failure>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut gate = self.gate.lock().await;
        if let Some(value) = self.value.read().await.as_ref() {
            if !Arc::ptr_eq(value, stale) {
                return Ok(Some(Arc::clone(value)));
            }
        }
        if gate.last_refresh.is_some_and(|at| at.elapsed() < min_interval) {
            return Ok(None);
        }
        // Counted before the fetch, so that failing refreshes are rate-limited too.
        gate.last_refresh = Some(Instant::now());
        self.fetch_into(&mut gate, fetch).await.map(Some)
    }

    async fn fetch_into<F, Fut>(&self, gate: &mut Gate, fetch: F) -> Result<Arc<T>, Failure>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        match fetch().await {
            Ok(value) => {
                let value = Arc::new(value);
                *self.value.write().await = Some(Arc::clone(&value));
                gate.last_failure = None;
                Ok(value)
            }
            Err(failure) => {
                gate.last_failure = Some((Instant::now(), failure.clone()));
                Err(failure)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn fetches_once_and_remembers_failures_briefly() {
        let cache = Cache::<u32>::default();
        let calls = AtomicUsize::new(0);
        let failing = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(Failure::Unavailable("down".into()))
        };
        assert_eq!(cache.get(failing).await, Err(Failure::Unavailable("down".into())));
        // Within the retry window the failure is answered from memory.
        assert_eq!(cache.get(failing).await, Err(Failure::Unavailable("down".into())));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        tokio::time::sleep(RETRY_AFTER_FAILURE + Duration::from_millis(50)).await;
        let working = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(7)
        };
        assert_eq!(cache.get(working).await.as_deref(), Ok(&7));
        assert_eq!(cache.get(working).await.as_deref(), Ok(&7));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn refresh_is_rate_limited_and_shared() {
        let cache = Cache::<u32>::default();
        let first = cache.get(|| async { Ok(1) }).await.expect("first");
        let second = cache.refresh(&first, Duration::from_secs(10), || async { Ok(2) }).await.expect("refresh");
        assert_eq!(second.as_deref(), Some(&2));
        // A caller still holding the old value gets the new one without a fetch.
        let shared = cache.refresh(&first, Duration::from_secs(10), || async { Ok(3) }).await.expect("shared");
        assert_eq!(shared.as_deref(), Some(&2));
        // A second refresh within the interval is refused.
        let second = second.expect("value");
        let limited = cache.refresh(&second, Duration::from_secs(10), || async { Ok(4) }).await.expect("limited");
        assert_eq!(limited, None);
        let allowed = cache.refresh(&second, Duration::ZERO, || async { Ok(5) }).await.expect("allowed");
        assert_eq!(allowed.as_deref(), Some(&5));
    }
}
