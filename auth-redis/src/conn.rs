//! The connection: made on first use (so an app boots while Redis is down), every
//! command bounded in time, and replaced when it looks broken (so the store recovers by
//! itself when Redis is back).
//!
//! One server goes through redis' `ConnectionManager`, which reconnects after I/O errors.
//! It does not after a timeout (a hung server, a half-open TCP connection) nor after a
//! failed handshake (`AUTH`, `SELECT`, `LOADING`), so on those this module drops it and
//! makes a new one. A cluster connection is made once reachable and rebuilt after any
//! failure, which also picks up a changed topology.

use crate::target::{Target, redact};
use auth_core::StoreError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue, RedisError};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long connecting and answering may take.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeouts {
    pub(crate) connect: Duration,
    pub(crate) response: Duration,
}

impl Timeouts {
    /// The bound of one command, connecting included.
    fn command(self) -> Duration {
        self.connect + self.response
    }
}

#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// A connection made on demand; `generation` tells which one a failure came from.
pub(crate) struct Connector {
    target: Target,
    /// The URL, password redacted, for error messages.
    shown: String,
    timeouts: Timeouts,
    current: Mutex<Option<(u64, Conn)>>,
    generation: AtomicU64,
    tls: bool,
    /// One cluster connection attempt at a time.
    connecting: tokio::sync::Mutex<()>,
}

impl Connector {
    pub(crate) fn new(target: Target, url: &str, timeouts: Timeouts) -> Self {
        Self {
            target,
            shown: redact(url),
            timeouts,
            current: Mutex::new(None),
            generation: AtomicU64::new(0),
            tls: Target::is_tls(url),
            connecting: tokio::sync::Mutex::new(()),
        }
    }

    /// Runs `cmd` and converts its answer, within [`Timeouts::command`].
    ///
    /// A single server's command refused at connect time is tried once more: the
    /// `ConnectionManager` answers the first command after an outage with the outcome of
    /// its last attempt, made while Redis was down, and only then starts a new one; without
    /// the retry, the first request after Redis is back would fail. A refused connection
    /// sent nothing, so the retry cannot run a command twice.
    pub(crate) async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        let bound = self.timeouts.command();
        let started = tokio::time::Instant::now();
        let mut retried = false;
        loop {
            let (generation, mut conn) = self.conn().await?;
            let left = bound.saturating_sub(started.elapsed());
            let answer = tokio::time::timeout(left, async {
                match &mut conn {
                    Conn::Single(c) => cmd.query_async::<T>(c).await,
                    Conn::Cluster(c) => cmd.query_async::<T>(c).await,
                }
            })
            .await;
            return match answer {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(e)) if !retried && matches!(conn, Conn::Single(_)) && e.is_connection_refusal() => {
                    retried = true;
                    continue;
                }
                Ok(Err(e)) => {
                    let replace = match conn {
                        Conn::Single(_) => !e.is_io_error() || e.is_timeout(),
                        Conn::Cluster(_) => true,
                    };
                    if replace {
                        self.forget(generation);
                    }
                    Err(self.failed(&e))
                }
                Err(_) => {
                    self.forget(generation);
                    Err(self.timed_out(bound))
                }
            };
        }
    }

    /// The current connection, or a new one.
    async fn conn(&self) -> Result<(u64, Conn), StoreError> {
        if let Some(current) = self.current() {
            return Ok(current);
        }
        if self.tls {
            crate::tls::ensure_crypto_provider();
        }
        match &self.target {
            Target::Single(client) => {
                // Lazy: connects (once, no retry loop) when the first command needs it, and
                // again in the background after an I/O error.
                let config = ConnectionManagerConfig::new()
                    .set_number_of_retries(0)
                    .set_connection_timeout(Some(self.timeouts.connect))
                    .set_response_timeout(Some(self.timeouts.response));
                let manager =
                    ConnectionManager::new_lazy_with_config((**client).clone(), config).map_err(|e| self.failed(&e))?;
                Ok(self.install(Conn::Single(manager)))
            }
            Target::Cluster(nodes) => {
                let bound = self.timeouts.connect;
                let connect = async {
                    let _one_at_a_time = self.connecting.lock().await;
                    if let Some(current) = self.current() {
                        return Ok(current);
                    }
                    let client = Target::cluster_client(nodes, self.timeouts.connect, self.timeouts.response)
                        .map_err(|e| self.failed(&e))?;
                    let conn = client.get_async_connection().await.map_err(|e| self.failed(&e))?;
                    Ok(self.install(Conn::Cluster(conn)))
                };
                tokio::time::timeout(bound, connect).await.map_err(|_| self.timed_out(bound))?
            }
        }
    }

    fn current(&self) -> Option<(u64, Conn)> {
        self.current.lock().ok().and_then(|c| c.clone())
    }

    /// Makes `conn` the current connection unless another call already made one.
    fn install(&self, conn: Conn) -> (u64, Conn) {
        let Ok(mut current) = self.current.lock() else {
            return (u64::MAX, conn);
        };
        if let Some(existing) = current.as_ref() {
            return existing.clone();
        }
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        *current = Some((generation, conn.clone()));
        (generation, conn)
    }

    /// Drops the connection of `generation` (if still current): the next call makes anew.
    fn forget(&self, generation: u64) {
        if let Ok(mut current) = self.current.lock()
            && current.as_ref().is_some_and(|(g, _)| *g == generation)
        {
            tracing::debug!(redis = %self.shown, "dropping the Redis connection after a failure");
            *current = None;
        }
    }

    /// The error of a failed command or connection, counted in the metrics.
    fn failed(&self, e: &RedisError) -> StoreError {
        auth_core::metrics::redis_error("unavailable");
        StoreError::Unavailable(format!("Redis at {}: {e}", self.shown))
    }

    /// The error of a command or connection past its time, counted in the metrics.
    fn timed_out(&self, bound: Duration) -> StoreError {
        auth_core::metrics::redis_error("timeout");
        StoreError::Unavailable(format!("Redis at {} did not answer within {bound:?}", self.shown))
    }

    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }

    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(_))
    }
}
