//! Revocation latency with `RedisStore`'s local copies: instance A logs a session out,
//! how long until instance B stops serving it from its copy.
//!
//! Two stores on the bench's Redis stand for two app instances. Each trial saves a session
//! through A, has B load it (B keeps a copy: tracking is live), then starts the clock, has
//! A delete the session (what logout does) and polls B's copy ([`SessionStore::cached`](auth_core::SessionStore::cached),
//! what B's next request asks first) until it is gone. The latency is from the start of A's
//! `DEL` to B's copy being gone: one Redis round trip plus the push reaching B's tracking
//! task. A Redis `PING` round trip is measured beside it for scale.

use serde::Serialize;
#[cfg(any(feature = "redis", test))]
use std::time::Duration;

/// What one run measured, as written to `results.json` under `revocation`.
#[derive(Clone, Debug, Serialize)]
pub struct RevocationReport {
    /// Trials made (each a logout on A seen by B).
    pub trials: usize,
    /// Median latency, in milliseconds.
    pub median_ms: f64,
    /// 99th percentile, in milliseconds.
    pub p99_ms: f64,
    /// Longest, in milliseconds.
    pub max_ms: f64,
    /// Median of a `PING` round trip to the same Redis, in milliseconds.
    pub ping_median_ms: f64,
    /// Trials whose copy was still served after 1 s (a failure of the mechanism).
    pub stale_after_1s: usize,
}

impl RevocationReport {
    /// A short Markdown paragraph.
    pub fn markdown(&self) -> String {
        format!(
            "Revocation latency with RedisStore's local copies ({} trials, two stores on one Redis): instance A \
             logs out, instance B stops serving its copy after **{:.3} ms** median, {:.3} ms p99, {:.3} ms max \
             (a Redis PING round trip: {:.3} ms median){}.",
            self.trials,
            self.median_ms,
            self.p99_ms,
            self.max_ms,
            self.ping_median_ms,
            if self.stale_after_1s > 0 {
                format!("; {} copies outlived 1 s", self.stale_after_1s)
            } else {
                String::new()
            }
        )
    }
}

/// Runs `trials` trials against the Redis at `url` (call from a multi-thread runtime: B's
/// tracking task must run while the trial polls).
///
/// # Errors
/// When Redis does not answer, or tracking does not start within 5 s.
#[cfg(feature = "redis")]
pub async fn measure(url: &str, trials: usize) -> Result<RevocationReport, String> {
    use auth_core::SessionStore;
    use std::time::Instant;
    let store =
        || auth_redis::RedisStore::new(url).map(|s| s.with_prefix("auth-bench-revocation:")).map_err(|e| e.to_string());
    let (a, b) = (store()?, store()?);
    let session = crate::fixtures::google_session();
    let mut pings = Vec::with_capacity(trials);
    let mut latencies = Vec::with_capacity(trials);
    let mut stale = 0;
    let started = Instant::now();
    for _ in 0..trials {
        let ticket = a.save(&session).await.map_err(|e| format!("save: {e}"))?;
        b.load(&ticket).await.map_err(|e| format!("load: {e}"))?;
        while b.cached(&ticket).is_none() {
            if started.elapsed() > Duration::from_secs(5) && !b.local_cache_live() {
                return Err("RedisStore's tracking did not start within 5 s".into());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
            b.load(&ticket).await.map_err(|e| format!("load: {e}"))?;
        }
        let ping = Instant::now();
        a.ping().await.map_err(|e| format!("ping: {e}"))?;
        pings.push(ping.elapsed());

        let logout = Instant::now();
        a.delete(&ticket).await.map_err(|e| format!("delete: {e}"))?;
        while b.cached(&ticket).is_some() {
            if logout.elapsed() > Duration::from_secs(1) {
                stale += 1;
                break;
            }
            tokio::task::yield_now().await;
        }
        latencies.push(logout.elapsed());
    }
    Ok(RevocationReport {
        trials,
        median_ms: ms(percentile(&mut latencies, 0.5)),
        p99_ms: ms(percentile(&mut latencies, 0.99)),
        max_ms: ms(percentile(&mut latencies, 1.0)),
        ping_median_ms: ms(percentile(&mut pings, 0.5)),
        stale_after_1s: stale,
    })
}

/// Without the `redis` feature there is nothing to measure.
///
/// # Errors
/// Always.
#[cfg(not(feature = "redis"))]
pub async fn measure(_url: &str, _trials: usize) -> Result<RevocationReport, String> {
    Err(crate::variants::REDIS_NOT_BUILT.into())
}

/// The `q` quantile of `values` (sorts them); zero when empty.
#[cfg(any(feature = "redis", test))]
fn percentile(values: &mut [Duration], q: f64) -> Duration {
    values.sort_unstable();
    let last = values.len().saturating_sub(1);
    let index = ((last as f64) * q).round() as usize;
    values.get(index.min(last)).copied().unwrap_or_default()
}

#[cfg(feature = "redis")]
fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_few_values() {
        let mut values: Vec<Duration> = [5, 1, 3, 2, 4].into_iter().map(Duration::from_millis).collect();
        assert_eq!(percentile(&mut values, 0.5), Duration::from_millis(3));
        assert_eq!(percentile(&mut values, 1.0), Duration::from_millis(5));
        assert_eq!(percentile(&mut values, 0.0), Duration::from_millis(1));
        assert_eq!(percentile(&mut [], 0.5), Duration::ZERO);
    }
}
