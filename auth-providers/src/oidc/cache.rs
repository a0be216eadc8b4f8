//! A lazily fetched, shared document (the discovery document, the key set) that survives
//! an identity provider being down, and is fetched again when it grows old.
//!
//! Nothing is fetched when the provider is built, so the app starts while the IdP is
//! unreachable. The first caller fetches; callers that arrive meanwhile wait for that one
//! fetch instead of starting their own. A failure is remembered for
//! [`RETRY_AFTER_FAILURE`], so a storm of logins against a dead IdP costs one request per
//! second, not one per login. A cached value can be replaced on demand
//! ([`Cache::refresh`]), at most once per interval the caller chooses.
//!
//! A value older than the cache's time to live (`metadata_ttl_secs`) is still answered at
//! once, and the first caller to see it old starts one refetch in the background (on the
//! Tokio runtime; inline without one). The refetch holds the same gate as every other
//! fetch, so there is only ever one; when it fails the old value stays, and the failure
//! is remembered as above, so the next attempt comes a second later at the earliest. Old
//! keys thus stop being trusted one refetch after the provider withdraws them, while an
//! outage of the provider costs nothing but the refetches.

use crate::error::Failure;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, OwnedMutexGuard, RwLock};
use tracing::Instrument as _;

/// How long a failed fetch is reported to later callers before the next attempt.
pub(crate) const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// A shared handle: clones are the same cache, so a background refetch can own one.
#[derive(Debug)]
pub(crate) struct Cache<T>(Arc<Shared<T>>);

#[derive(Debug)]
struct Shared<T> {
    /// How long a fetched value is used before it is fetched again.
    ttl: Duration,
    value: RwLock<Option<Fetched<T>>>,
    /// Held by whoever fetches, for the whole fetch.
    gate: Arc<Mutex<Gate>>,
}

#[derive(Debug)]
struct Fetched<T> {
    value: Arc<T>,
    at: Instant,
}

#[derive(Debug, Default)]
struct Gate {
    last_failure: Option<(Instant, Failure)>,
    last_refresh: Option<Instant>,
}

impl Gate {
    fn failed_recently(&self) -> Option<&Failure> {
        self.last_failure.as_ref().filter(|(at, _)| at.elapsed() < RETRY_AFTER_FAILURE).map(|(_, failure)| failure)
    }
}

impl<T> Clone for Cache<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T: Send + Sync + 'static> Cache<T> {
    /// An empty cache whose values are fetched again once they are `ttl` old.
    pub(crate) fn new(ttl: Duration) -> Self {
        Self(Arc::new(Shared { ttl, value: RwLock::new(None), gate: Arc::new(Mutex::new(Gate::default())) }))
    }

    /// The cached value, fetching it first when there is none (or the last attempt
    /// failed more than [`RETRY_AFTER_FAILURE`] ago). A value past its time to live is
    /// returned as it is, after starting its refetch (see the module docs).
    ///
    /// `fetch` is called only when a fetch is made; the future it returns must own what
    /// it needs, since it may run after this call has returned.
    pub(crate) async fn get<F, Fut>(&self, fetch: F) -> Result<Arc<T>, Failure>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Failure>> + Send + 'static,
    {
        if let Some((value, at)) = self.cached().await {
            if at.elapsed() < self.0.ttl {
                return Ok(value);
            }
            return Ok(self.renew(fetch).await.unwrap_or(value));
        }
        let mut gate = Arc::clone(&self.0.gate).lock_owned().await;
        // Another caller may have fetched while this one waited for the gate.
        if let Some((value, _)) = self.cached().await {
            return Ok(value);
        }
        if let Some(failure) = gate.failed_recently() {
            return Err(failure.clone());
        }
        self.store(&mut gate, fetch().await).await
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
        Fut: Future<Output = Result<T, Failure>> + Send + 'static,
    {
        let mut gate = Arc::clone(&self.0.gate).lock_owned().await;
        if let Some((value, _)) = self.cached().await
            && !Arc::ptr_eq(&value, stale)
        {
            return Ok(Some(value));
        }
        if gate.last_refresh.is_some_and(|at| at.elapsed() < min_interval) {
            return Ok(None);
        }
        // Counted before the fetch, so that failing refreshes are rate-limited too.
        gate.last_refresh = Some(Instant::now());
        self.store(&mut gate, fetch().await).await.map(Some)
    }

    async fn cached(&self) -> Option<(Arc<T>, Instant)> {
        self.0.value.read().await.as_ref().map(|fetched| (Arc::clone(&fetched.value), fetched.at))
    }

    /// Starts the one refetch of a value past its time to live: in the background on a
    /// Tokio runtime (`None`), else inline (the fresh value, `None` when it failed). Does
    /// nothing while another fetch is under way (it renews the value), when the value was
    /// renewed meanwhile, or when the last attempt failed less than
    /// [`RETRY_AFTER_FAILURE`] ago.
    async fn renew<F, Fut>(&self, fetch: F) -> Option<Arc<T>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Failure>> + Send + 'static,
    {
        let Ok(mut gate) = Arc::clone(&self.0.gate).try_lock_owned() else { return None };
        let renewed = self.cached().await.is_some_and(|(_, at)| at.elapsed() < self.0.ttl);
        if renewed || gate.failed_recently().is_some() {
            return None;
        }
        tracing::debug!(ttl_secs = self.0.ttl.as_secs(), "the cached copy is past its time to live; fetching it again");
        let (cache, fetching) = (self.clone(), fetch());
        let renewal = async move {
            match cache.store(&mut gate, fetching.await).await {
                Ok(value) => Some(value),
                Err(failure) => {
                    tracing::warn!(?failure, "refetch failed; the cached copy stays in use");
                    None
                }
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(renewal.in_current_span());
                None
            }
            Err(_) => renewal.await,
        }
    }

    /// Keeps the outcome of a fetch: a value replaces the cached one (and clears the
    /// failure memory), a failure is remembered and returned.
    async fn store(&self, gate: &mut OwnedMutexGuard<Gate>, fetched: Result<T, Failure>) -> Result<Arc<T>, Failure> {
        match fetched {
            Ok(value) => {
                let value = Arc::new(value);
                *self.0.value.write().await = Some(Fetched { value: Arc::clone(&value), at: Instant::now() });
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

    const DAY: Duration = Duration::from_secs(86400);

    #[tokio::test]
    async fn fetches_once_and_remembers_failures_briefly() {
        let cache = Cache::<u32>::new(DAY);
        let calls = Arc::new(AtomicUsize::new(0));
        let failing = || {
            let calls = Arc::clone(&calls);
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(Failure::Unavailable("down".into()))
            }
        };
        assert_eq!(cache.get(failing).await, Err(Failure::Unavailable("down".into())));
        // Within the retry window the failure is answered from memory.
        assert_eq!(cache.get(failing).await, Err(Failure::Unavailable("down".into())));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        tokio::time::sleep(RETRY_AFTER_FAILURE + Duration::from_millis(50)).await;
        let working = || {
            let calls = Arc::clone(&calls);
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok(7)
            }
        };
        assert_eq!(cache.get(working).await.as_deref(), Ok(&7));
        assert_eq!(cache.get(working).await.as_deref(), Ok(&7));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn refresh_is_rate_limited_and_shared() {
        let cache = Cache::<u32>::new(DAY);
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

    /// A fetch that counts its calls and answers `answer` after a short pause.
    fn counted(
        calls: &Arc<AtomicUsize>,
        answer: Result<u32, Failure>,
    ) -> impl FnOnce() -> std::pin::Pin<Box<dyn Future<Output = Result<u32, Failure>> + Send>> {
        let calls = Arc::clone(calls);
        move || {
            Box::pin(async move {
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                answer
            })
        }
    }

    #[tokio::test]
    async fn an_old_value_is_answered_at_once_and_refetched_once_in_the_background() {
        let ttl = Duration::from_millis(200);
        let cache = Cache::<u32>::new(ttl);
        let calls = Arc::new(AtomicUsize::new(0));
        assert_eq!(cache.get(counted(&calls, Ok(1))).await.as_deref(), Ok(&1));
        assert_eq!(cache.get(counted(&calls, Ok(9))).await.as_deref(), Ok(&1), "fresh: no fetch");
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        tokio::time::sleep(ttl).await;
        for _ in 0..5 {
            assert_eq!(cache.get(counted(&calls, Ok(2))).await.as_deref(), Ok(&1), "the old value, at once");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2, "one refetch for five callers");
        assert_eq!(cache.get(counted(&calls, Ok(3))).await.as_deref(), Ok(&2), "then the new value");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failed_refetch_keeps_the_old_value_and_is_retried_later() {
        let ttl = Duration::from_millis(100);
        let cache = Cache::<u32>::new(ttl);
        let calls = Arc::new(AtomicUsize::new(0));
        cache.get(counted(&calls, Ok(1))).await.expect("first");
        tokio::time::sleep(ttl).await;
        let down = || counted(&calls, Err(Failure::Unavailable("down".into())));
        assert_eq!(cache.get(down()).await.as_deref(), Ok(&1));
        tokio::time::sleep(Duration::from_millis(100)).await;
        for _ in 0..5 {
            assert_eq!(cache.get(down()).await.as_deref(), Ok(&1), "the old value stays");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2, "no retry within the failure memory");

        tokio::time::sleep(RETRY_AFTER_FAILURE).await;
        assert_eq!(cache.get(counted(&calls, Ok(2))).await.as_deref(), Ok(&1));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 3, "retried after it");
        assert_eq!(cache.get(counted(&calls, Ok(3))).await.as_deref(), Ok(&2));
    }

    /// Runs `future` to completion on this thread, outside any Tokio runtime.
    fn block_on<F: Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        loop {
            if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
                return output;
            }
            std::thread::yield_now();
        }
    }

    #[test]
    fn without_a_runtime_the_refetch_runs_inline() {
        let cache = Cache::<u32>::new(Duration::ZERO);
        assert_eq!(block_on(cache.get(|| async { Ok(1) })).as_deref(), Ok(&1));
        assert_eq!(block_on(cache.get(|| async { Ok(2) })).as_deref(), Ok(&2), "no runtime to spawn on");
    }
}
