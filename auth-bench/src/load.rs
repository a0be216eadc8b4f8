//! The load generator: many keep-alive HTTP/1.1 connections, each sending the next request
//! as soon as the previous answer is read (closed loop), for a warm-up and then a fixed
//! measured window.
//!
//! It is meant to run on one current-thread Tokio runtime, so that it takes at most one of
//! the machine's cores and leaves the rest to the server. Every answer is checked (status
//! 200 and the expected body): a logged-in variant that answers "anonymous" is broken,
//! not fast.

use crate::cpu::{Snapshot, Usage};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http::header::HOST;
use http::{HeaderName, HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// The highest latency the histogram records, in microseconds (a minute).
pub(crate) const MAX_LATENCY_US: u64 = 60_000_000;

/// What to send, where, and for how long.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    /// The server.
    pub addr: SocketAddr,
    /// The header every request carries (the variant's `Cookie` or `Authorization`), if any.
    pub credential: Option<(HeaderName, HeaderValue)>,
    /// The body every answer must have.
    pub expected_body: Bytes,
    /// How many keep-alive connections send requests concurrently.
    pub connections: usize,
    /// How long to send before measuring.
    pub warmup: Duration,
    /// How long to measure.
    pub duration: Duration,
    /// The server's process ids (the app, and its Redis when it has one), to measure
    /// their CPU time over the window; empty: not measured.
    pub server_pids: Vec<u32>,
}

/// What one run measured.
#[derive(Debug)]
pub struct LoadResult {
    /// Requests answered correctly within the measured window.
    pub requests: u64,
    /// Wrong answers and failed requests, warm-up included.
    pub errors: u64,
    /// The first error, for the message.
    pub first_error: Option<String>,
    /// The measured window.
    pub window: Duration,
    /// Latency of the requests answered within the window, in microseconds.
    pub latency: Histogram<u64>,
    /// CPU used over the window, when the server's process id was given.
    pub cpu: Option<Usage>,
}

impl LoadResult {
    /// Requests per second within the window.
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.window.as_secs_f64()
    }

    /// The latency at `quantile` (0.5 for the median), in milliseconds.
    pub fn latency_ms(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }
}

/// An empty latency histogram, in microseconds, up to [`MAX_LATENCY_US`].
pub(crate) fn histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, MAX_LATENCY_US, 3) {
        Ok(histogram) => histogram,
        Err(error) => unreachable!("fixed histogram bounds are valid: {error}"),
    }
}

/// Opens the connections, then sends for `warmup + duration`.
///
/// # Errors
/// When a connection cannot be opened.
pub async fn run(spec: &LoadSpec) -> Result<LoadResult, String> {
    let mut senders = Vec::with_capacity(spec.connections);
    for _ in 0..spec.connections {
        senders.push(connect(spec.addr).await?);
    }
    let host = HeaderValue::try_from(spec.addr.to_string()).map_err(|e| e.to_string())?;
    let measure_from = Instant::now() + spec.warmup;
    let stop_at = measure_from + spec.duration;
    let mut workers = JoinSet::new();
    for sender in senders {
        let worker = Worker {
            sender,
            host: host.clone(),
            credential: spec.credential.clone(),
            expected: spec.expected_body.clone(),
            measure_from,
            stop_at,
        };
        workers.spawn(worker.run());
    }
    let pids = spec.server_pids.clone();
    let cpu = (!pids.is_empty()).then(|| {
        tokio::spawn(async move {
            tokio::time::sleep_until(measure_from.into()).await;
            let start = Snapshot::take(&pids);
            tokio::time::sleep_until(stop_at.into()).await;
            start.usage_until(&Snapshot::take(&pids))
        })
    });
    let mut result = LoadResult {
        requests: 0,
        errors: 0,
        first_error: None,
        window: spec.duration,
        latency: histogram(),
        cpu: None,
    };
    while let Some(joined) = workers.join_next().await {
        let tally = joined.map_err(|e| format!("a load worker failed: {e}"))?;
        result.requests += tally.requests;
        result.errors += tally.errors;
        if result.first_error.is_none() {
            result.first_error = tally.first_error;
        }
        result.latency.add(&tally.latency).map_err(|e| e.to_string())?;
    }
    if let Some(cpu) = cpu {
        result.cpu = cpu.await.ok();
    }
    Ok(result)
}

/// One keep-alive HTTP/1.1 connection to `addr` (`TCP_NODELAY`), its driver spawned.
pub(crate) async fn connect(addr: SocketAddr) -> Result<SendRequest<Empty<Bytes>>, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        // Ends when the sender is dropped or the server closes; errors show up at the sender.
        let _ = connection.await;
    });
    Ok(sender)
}

/// One connection's loop.
struct Worker {
    sender: SendRequest<Empty<Bytes>>,
    host: HeaderValue,
    credential: Option<(HeaderName, HeaderValue)>,
    expected: Bytes,
    measure_from: Instant,
    stop_at: Instant,
}

struct Tally {
    requests: u64,
    errors: u64,
    first_error: Option<String>,
    latency: Histogram<u64>,
}

impl Worker {
    async fn run(mut self) -> Tally {
        let mut tally = Tally { requests: 0, errors: 0, first_error: None, latency: histogram() };
        loop {
            let begin = Instant::now();
            if begin >= self.stop_at {
                break;
            }
            let outcome = self.send().await;
            let end = Instant::now();
            match outcome {
                Ok(()) if end >= self.measure_from && end < self.stop_at => {
                    tally.requests += 1;
                    let micros = u64::try_from(end.duration_since(begin).as_micros()).unwrap_or(MAX_LATENCY_US);
                    tally.latency.saturating_record(micros.clamp(1, MAX_LATENCY_US));
                }
                Ok(()) => {}
                Err(Failure::Answer(message)) => {
                    tally.errors += 1;
                    tally.first_error.get_or_insert(message);
                }
                Err(Failure::Connection(message)) => {
                    tally.errors += 1;
                    tally.first_error.get_or_insert(message);
                    break;
                }
            }
        }
        tally
    }

    async fn send(&mut self) -> Result<(), Failure> {
        std::future::poll_fn(|cx| self.sender.poll_ready(cx))
            .await
            .map_err(|e| Failure::Connection(format!("connection lost: {e}")))?;
        let mut request = Request::get("/").header(HOST, self.host.clone());
        if let Some((name, value)) = &self.credential {
            request = request.header(name.clone(), value.clone());
        }
        let request = request.body(Empty::new()).map_err(|e| Failure::Answer(e.to_string()))?;
        let response =
            self.sender.send_request(request).await.map_err(|e| Failure::Connection(format!("request failed: {e}")))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| Failure::Connection(format!("body failed: {e}")))?
            .to_bytes();
        if status != StatusCode::OK || body != self.expected {
            return Err(Failure::Answer(format!(
                "answer {status} {:?}, expected 200 {:?}",
                String::from_utf8_lossy(&body),
                String::from_utf8_lossy(&self.expected)
            )));
        }
        Ok(())
    }
}

enum Failure {
    /// A wrong answer; the connection goes on.
    Answer(String),
    /// The connection is gone.
    Connection(String),
}
