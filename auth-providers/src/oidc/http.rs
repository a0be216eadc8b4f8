//! The one HTTP client of a provider, and the one place that turns what the network does
//! into [`Failure`]s.
//!
//! Every call to the identity provider goes through [`Http::send`], so every call is
//! bounded (connect and total timeout, body size), never follows redirects, reports
//! transport errors, timeouts, 5xx and 429 as `Unavailable` with a message that names the
//! provider and the host, never the URL's query, a token or a secret, and is counted and
//! timed in the metrics ([`auth_core::metrics::provider_request`]) by [`Endpoint`].

use crate::error::Failure;
use reqwest::{RequestBuilder, StatusCode, header};
use std::error::Error as _;
use std::fmt;
use std::time::{Duration, Instant};
use url::Url;

/// Larger answers are refused: discovery documents, key sets, token and userinfo
/// responses are a few kilobytes.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The provider endpoints called over HTTP: named in messages ("the token request") and in
/// the metrics' `endpoint` label (`token`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Discovery,
    Jwks,
    /// The code exchange and the refresh.
    Token,
    Userinfo,
    Introspection,
    /// RFC 9126 pushed authorization requests.
    Par,
    /// RFC 7009 token revocation.
    Revocation,
}

impl Endpoint {
    /// The `endpoint` label of the metrics.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Discovery => "discovery",
            Self::Jwks => "jwks",
            Self::Token => "token",
            Self::Userinfo => "userinfo",
            Self::Introspection => "introspection",
            Self::Par => "par",
            Self::Revocation => "revocation",
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Discovery => "the discovery request",
            Self::Jwks => "the key set (JWKS) request",
            Self::Token => "the token request",
            Self::Userinfo => "the userinfo request",
            Self::Introspection => "the introspection request",
            Self::Par => "the pushed authorization request",
            Self::Revocation => "the token revocation request",
        })
    }
}

/// An answer the provider gave, with any status the caller must interpret itself
/// (2xx, 3xx and 4xx other than 429).
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) content_type: Option<String>,
    /// The `DPoP-Nonce` header (RFC 9449 §8), when the provider sent one.
    pub(crate) dpop_nonce: Option<String>,
    /// Whether `WWW-Authenticate` says `use_dpop_nonce` (RFC 9449 §9).
    pub(crate) use_dpop_nonce: bool,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    /// The body as JSON of type `T`, or `Unavailable` naming `what`.
    pub(crate) fn json<T: serde::de::DeserializeOwned>(
        &self,
        http: &Http,
        what: Endpoint,
        url: &Url,
    ) -> Result<T, Failure> {
        serde_json::from_slice(&self.body)
            .map_err(|e| http.unavailable(what, url, &format!("answered with an unusable document ({e})")))
    }
}

/// A provider's HTTP client: no redirects, timeouts on everything.
#[derive(Debug)]
pub(crate) struct Http {
    client: reqwest::Client,
    provider: String,
    timeout: Duration,
}

impl Http {
    pub(crate) fn new(provider: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            .timeout(timeout)
            .user_agent(concat!("auth-providers/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, provider: provider.to_owned(), timeout })
    }

    pub(crate) fn get(&self, url: &Url) -> RequestBuilder {
        self.client.get(url.clone()).header(header::ACCEPT, "application/json")
    }

    pub(crate) fn post(&self, url: &Url) -> RequestBuilder {
        self.client.post(url.clone()).header(header::ACCEPT, "application/json")
    }

    /// Sends `request` to `what` and reads the whole body. Transport errors, timeouts, 5xx
    /// and 429 are `Unavailable`; every other status is returned for the caller to judge.
    /// Counted and timed in the metrics, by the answer's status class or the failure.
    pub(crate) async fn send(&self, what: Endpoint, url: &Url, request: RequestBuilder) -> Result<Answer, Failure> {
        let started = Instant::now();
        let (result, outcome) = self.exchange(what, url, request).await;
        auth_core::metrics::provider_request(&self.provider, what.label(), outcome, started.elapsed());
        result
    }

    /// [`Http::send`] without the metrics: the result, and its `outcome` label.
    async fn exchange(
        &self,
        what: Endpoint,
        url: &Url,
        request: RequestBuilder,
    ) -> (Result<Answer, Failure>, &'static str) {
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(e) => return (Err(self.transport(what, url, &e)), transport_outcome(&e)),
        };
        let status = response.status();
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return (Err(self.unavailable(what, url, &format!("answered HTTP {status}"))), status_outcome(status));
        }
        let content_type =
            response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(|v| v.to_ascii_lowercase());
        let dpop_nonce = response.headers().get("dpop-nonce").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let use_dpop_nonce = response
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.contains("use_dpop_nonce")));
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) if body.len() + chunk.len() > MAX_BODY_BYTES => {
                    let problem = format!("answered with more than {MAX_BODY_BYTES} bytes");
                    return (Err(self.unavailable(what, url, &problem)), "transport_error");
                }
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) => return (Err(self.transport(what, url, &e)), transport_outcome(&e)),
            }
        }
        (Ok(Answer { status, content_type, dpop_nonce, use_dpop_nonce, body }), status_outcome(status))
    }

    /// `Unavailable`: "`provider` (host): what problem".
    pub(crate) fn unavailable(&self, what: Endpoint, url: &Url, problem: &str) -> Failure {
        Failure::Unavailable(format!("{}: {what} to {} {problem}", self.provider, host(url)))
    }

    /// `Rejected`, in the same shape as [`Http::unavailable`].
    pub(crate) fn rejected(&self, message: &str) -> Failure {
        Failure::Rejected(format!("{}: {message}", self.provider))
    }

    fn transport(&self, what: Endpoint, url: &Url, error: &reqwest::Error) -> Failure {
        let problem = if error.is_timeout() {
            format!("timed out after {} s", self.timeout.as_secs_f32())
        } else {
            // reqwest's own Display names the full URL; keep only the causes.
            let mut causes = Vec::new();
            let mut source = error.source();
            while let Some(cause) = source {
                causes.push(cause.to_string());
                source = cause.source();
            }
            let kind = if error.is_connect() { "could not connect" } else { "failed" };
            if causes.is_empty() { kind.to_owned() } else { format!("{kind} ({})", causes.join(": ")) }
        };
        self.unavailable(what, url, &problem)
    }
}

/// The metrics' `outcome` of an answer with `status`: its class.
fn status_outcome(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200..=299 => "ok",
        300..=399 => "redirect",
        400..=499 => "client_error",
        _ => "server_error",
    }
}

/// The metrics' `outcome` of a request that got no (whole) answer.
fn transport_outcome(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() { "timeout" } else { "transport_error" }
}

/// `host[:port]` of `url`, the only part of a URL that messages show.
pub(crate) fn host(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => "(no host)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_show_the_host_only() {
        let http = Http::new("google", Duration::from_secs(3)).expect("client");
        let url = Url::parse("https://idp.example:8443/token?secret=x").expect("url");
        let failure = http.unavailable(Endpoint::Token, &url, "answered HTTP 503");
        assert_eq!(
            failure,
            Failure::Unavailable("google: the token request to idp.example:8443 answered HTTP 503".into())
        );
    }

    #[tokio::test]
    async fn nothing_listening_is_unavailable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let http = Http::new("p", Duration::from_secs(2)).expect("client");
        let url = Url::parse(&format!("http://127.0.0.1:{port}/x?code=secret")).expect("url");
        let Err(Failure::Unavailable(message)) = http.send(Endpoint::Discovery, &url, http.get(&url)).await else {
            panic!("expected Unavailable");
        };
        assert!(
            message.starts_with(&format!("p: the discovery request to 127.0.0.1:{port} could not connect")),
            "{message}"
        );
        assert!(!message.contains("secret"), "{message}");
    }

    #[tokio::test]
    async fn calls_are_counted_and_timed_by_endpoint_and_outcome() {
        use metrics_util::debugging::{DebugValue, DebuggingRecorder};
        // The test's runtime runs on its thread: a recorder local to it sees every call.
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let _local = metrics::set_default_local_recorder(&recorder);
        let http = Http::new("p", Duration::from_secs(2)).expect("client");

        // Nothing listening, then a server answering 503 once.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = Url::parse(&format!("http://{}/jwks", closed.local_addr().expect("addr"))).expect("url");
        drop(closed);
        assert!(http.send(Endpoint::Jwks, &url, http.get(&url)).await.is_err());
        let busy = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = Url::parse(&format!("http://{}/token", busy.local_addr().expect("addr"))).expect("url");
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
            if let Ok((mut socket, _)) = busy.accept().await {
                let _ = socket.read(&mut [0; 4096]).await;
                let _ = socket.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n").await;
            }
        });
        assert!(http.send(Endpoint::Token, &url, http.post(&url)).await.is_err());

        let mut counted = Vec::new();
        let mut timed = Vec::new();
        for (key, _, _, value) in snapshotter.snapshot().into_vec() {
            let labels: Vec<String> = key.key().labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
            match value {
                DebugValue::Counter(n) => counted.push((key.key().name().to_owned(), labels.join(","), n)),
                DebugValue::Histogram(values) => timed.push((labels.join(","), values.len())),
                DebugValue::Gauge(_) => {}
            }
        }
        counted.sort();
        timed.sort();
        let requests = auth_core::metrics::PROVIDER_REQUESTS.to_owned();
        assert_eq!(
            counted,
            [
                (requests.clone(), "provider=p,endpoint=jwks,outcome=transport_error".to_owned(), 1),
                (requests, "provider=p,endpoint=token,outcome=server_error".to_owned(), 1)
            ]
        );
        assert_eq!(timed, [("provider=p,endpoint=jwks".to_owned(), 1), ("provider=p,endpoint=token".to_owned(), 1)]);
    }
}
