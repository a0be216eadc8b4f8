//! The load generator: many keep-alive HTTP/1.1 connections, each sending the next request
//! as soon as the previous answer is read (closed loop), for a warm-up and then a fixed
//! measured window.
//!
//! It is meant to run on one current-thread Tokio runtime, so that it takes at most one of
//! the machine's cores and leaves the rest to the server. Every answer is checked (status
//! 200 and the expected body): a logged-in variant that answers "anonymous" is broken,
//! not fast.
//!
//! The requests of a variant carry its [`Credentials`] in turn: one cookie for (3), a
//! hundred thousand for (8), none for an anonymous client. Every variant goes through the
//! same `Rotation`, so that they all pay the same per-request cost for it.

use crate::cpu::{Snapshot, Usage};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http::header::{COOKIE, HOST};
use http::{HeaderName, HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
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
    /// What signs the requests in (the variant's `Cookie`s or `Authorization`), if anything.
    pub credentials: Credentials,
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

/// The header that signs requests in, with one value per simulated client, sent in turn.
/// Cheap to clone (the values are shared).
#[derive(Clone, Debug)]
pub struct Credentials {
    name: HeaderName,
    /// `None`: the request carries no such header (an anonymous client).
    values: Arc<[Option<HeaderValue>]>,
}

impl Credentials {
    /// One anonymous client: requests without credential, through the same rotation (of
    /// one element) as the others.
    pub fn anonymous() -> Self {
        Self { name: COOKIE, values: Arc::new([None]) }
    }

    /// Clients sending header `name` with each of `values` in turn; [anonymous] when
    /// `values` is empty.
    ///
    /// [anonymous]: Self::anonymous
    pub fn new(name: HeaderName, values: impl IntoIterator<Item = HeaderValue>) -> Self {
        let values: Arc<[Option<HeaderValue>]> = values.into_iter().map(Some).collect();
        if values.is_empty() { Self::anonymous() } else { Self { name, values } }
    }

    /// How many clients (values) take turns: 1 for an anonymous client.
    pub fn clients(&self) -> usize {
        self.values.len()
    }

    /// The header's name; `None` for an anonymous client.
    pub fn name(&self) -> Option<&HeaderName> {
        self.values.first().and_then(Option::as_ref).map(|_| &self.name)
    }

    /// The header of client `index` (below [`clients`](Self::clients)); `None` for an
    /// anonymous client.
    pub fn header(&self, index: usize) -> Option<(&HeaderName, &HeaderValue)> {
        self.values.get(index)?.as_ref().map(|value| (&self.name, value))
    }

    /// The length of the first client's header value, bytes; `None` for an anonymous client.
    pub fn value_bytes(&self) -> Option<usize> {
        self.values.first().and_then(Option::as_ref).map(HeaderValue::len)
    }
}

/// The order in which a connection sends the values of [`Credentials`]: worker `w` of `n`
/// starts at value `w` and steps by `n`, so that together the workers send every value in
/// turn. The same few instructions per request whether there are one or many values.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rotation {
    next: usize,
    step: usize,
    len: usize,
}

impl Rotation {
    /// Worker `worker` of `workers`, over `len` values (at least one).
    pub(crate) fn new(worker: usize, workers: usize, len: usize) -> Self {
        let len = len.max(1);
        Self { next: worker % len, step: workers % len, len }
    }

    /// The index of the value to send now; moves on to the next one.
    pub(crate) fn advance(&mut self) -> usize {
        let now = self.next;
        // Both are below `len`, so one subtraction wraps (no division per request).
        self.next += self.step;
        if self.next >= self.len {
            self.next -= self.len;
        }
        now
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
    let connected = connect_workers(spec).await?;
    let measure_from = Instant::now() + spec.warmup;
    let stop_at = measure_from + spec.duration;
    let mut workers = JoinSet::new();
    for mut worker in connected {
        (worker.measure_from, worker.stop_at) = (measure_from, stop_at);
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

/// Sends one request per client of `spec.credentials` (the connections taking turns as in
/// [`run`]), each answer checked, without measuring; `warmup` and `duration` are not used.
/// `bench-run` sweeps each many-session server once before its first round, so that the
/// rounds measure users who were all seen before (a site's steady state), not their first
/// requests.
///
/// # Errors
/// When a connection cannot be opened or fails, or an answer is wrong.
pub async fn sweep(spec: &LoadSpec) -> Result<(), String> {
    let clients = spec.credentials.clients();
    let mut workers = JoinSet::new();
    for (index, mut worker) in connect_workers(spec).await?.into_iter().enumerate() {
        // Worker `index` sends values index, index + n, ... below `clients`: each once.
        let share = clients.saturating_sub(index).div_ceil(spec.connections);
        workers.spawn(async move {
            for _ in 0..share {
                worker.send().await.map_err(Failure::into_message)?;
            }
            Ok::<(), String>(())
        });
    }
    while let Some(joined) = workers.join_next().await {
        joined.map_err(|e| format!("a load worker failed: {e}"))??;
    }
    Ok(())
}

/// The connections of `spec`, each with its place in the rotation; they send nothing
/// until their window is set.
async fn connect_workers(spec: &LoadSpec) -> Result<Vec<Worker>, String> {
    let host = HeaderValue::try_from(spec.addr.to_string()).map_err(|e| e.to_string())?;
    let now = Instant::now();
    let mut workers = Vec::with_capacity(spec.connections);
    for index in 0..spec.connections {
        workers.push(Worker {
            sender: connect(spec.addr).await?,
            host: host.clone(),
            credentials: spec.credentials.clone(),
            rotation: Rotation::new(index, spec.connections, spec.credentials.clients()),
            expected: spec.expected_body.clone(),
            measure_from: now,
            stop_at: now,
        });
    }
    Ok(workers)
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
    credentials: Credentials,
    rotation: Rotation,
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
        if let Some((name, value)) = self.credentials.header(self.rotation.advance()) {
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

impl Failure {
    fn into_message(self) -> String {
        match self {
            Failure::Answer(message) | Failure::Connection(message) => message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Mutex;

    #[test]
    fn the_workers_together_send_every_value_in_turn() {
        for (workers, len) in [(64, 100_000), (64, 1000), (64, 64), (64, 3), (64, 1), (1, 5), (4, 6), (7, 64)] {
            let mut rotations: Vec<Rotation> = (0..workers).map(|w| Rotation::new(w, workers, len)).collect();
            let mut sent = vec![0u32; len];
            // One sweep: each worker sends its share, the workers taking turns.
            for _ in 0..len.div_ceil(workers) {
                for rotation in &mut rotations {
                    sent[rotation.advance()] += 1;
                }
            }
            assert!(sent.iter().all(|&n| n > 0), "{workers} workers, {len} values: each sent in one sweep");
            if len % workers == 0 {
                assert!(sent.iter().all(|&n| n == 1), "{workers} workers, {len} values: each sent once");
            }
        }
    }

    #[test]
    fn workers_start_at_different_offsets() {
        let first = |workers: usize, len: usize| -> HashSet<usize> {
            (0..workers).map(|w| Rotation::new(w, workers, len).advance()).collect()
        };
        assert_eq!(first(64, 100_000), (0..64).collect(), "64 workers, 64 different first values");
        assert_eq!(first(64, 3), (0..3).collect(), "fewer values than workers: all of them at once");
        let mut single = Rotation::new(5, 64, 1);
        assert_eq!([single.advance(), single.advance(), single.advance()], [0, 0, 0], "one value: always it");
    }

    type Seen = Arc<Mutex<Vec<Option<String>>>>;

    /// A server that answers `ok` and records the `Cookie` header of every request.
    async fn recording_server() -> (SocketAddr, Seen) {
        let seen: Seen = Arc::default();
        let record = Arc::clone(&seen);
        let app = axum::Router::new().route(
            "/",
            axum::routing::get(move |headers: http::HeaderMap| async move {
                let cookie = headers.get(COOKIE).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
                if let Ok(mut seen) = record.lock() {
                    seen.push(cookie);
                }
                "ok"
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("address: {e}"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (addr, seen)
    }

    #[tokio::test]
    async fn a_sweep_sends_each_credential_once() {
        let (addr, seen) = recording_server().await;
        let values = (0..100).map(|i| HeaderValue::try_from(format!("c={i}")).unwrap_or_else(|e| panic!("{e}")));
        let spec = LoadSpec {
            addr,
            credentials: Credentials::new(COOKIE, values),
            expected_body: Bytes::from_static(b"ok"),
            connections: 8,
            warmup: Duration::ZERO,
            duration: Duration::ZERO,
            server_pids: Vec::new(),
        };
        sweep(&spec).await.unwrap_or_else(|e| panic!("sweep: {e}"));
        let mut seen = seen.lock().map(|seen| seen.clone()).unwrap_or_default();
        seen.sort_by_key(|c| c.as_deref().and_then(|c| c.strip_prefix("c=")).and_then(|n| n.parse::<u32>().ok()));
        assert_eq!(seen, (0..100).map(|i| Some(format!("c={i}"))).collect::<Vec<_>>(), "each once");
        let wrong = LoadSpec { expected_body: Bytes::from_static(b"no"), ..spec };
        assert!(sweep(&wrong).await.is_err_and(|e| e.contains("expected 200")), "answers are checked");
    }

    async fn seen_with(credentials: Credentials) -> HashSet<Option<String>> {
        let (addr, seen) = recording_server().await;
        let spec = LoadSpec {
            addr,
            credentials,
            expected_body: Bytes::from_static(b"ok"),
            connections: 4,
            warmup: Duration::ZERO,
            duration: Duration::from_millis(200),
            server_pids: Vec::new(),
        };
        let result = run(&spec).await.unwrap_or_else(|e| panic!("load: {e}"));
        assert_eq!((result.errors, result.first_error), (0, None));
        assert!(result.requests > 10, "{} requests", result.requests);
        seen.lock().map(|seen| seen.iter().cloned().collect()).unwrap_or_default()
    }

    #[tokio::test]
    async fn requests_carry_every_credential() {
        let values = (0..10).map(|i| HeaderValue::try_from(format!("c={i}")).unwrap_or_else(|e| panic!("{e}")));
        let credentials = Credentials::new(COOKIE, values);
        assert_eq!((credentials.clients(), credentials.value_bytes()), (10, Some(3)));
        let expected: HashSet<Option<String>> = (0..10).map(|i| Some(format!("c={i}"))).collect();
        assert_eq!(seen_with(credentials).await, expected);

        let anonymous = Credentials::anonymous();
        assert_eq!((anonymous.clients(), anonymous.name(), anonymous.value_bytes()), (1, None, None));
        assert_eq!(seen_with(anonymous).await, HashSet::from([None]));
    }
}
