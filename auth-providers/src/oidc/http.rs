//! The one HTTP client of a provider, and the one place that turns what the network does
//! into [`Failure`]s.
//!
//! Every call to the identity provider goes through [`Http::send`], so every call is
//! bounded (connect and total timeout, body size), never follows redirects, and reports
//! transport errors, timeouts, 5xx and 429 as `Unavailable` with a message that names the
//! provider and the host, never the URL's query, a token or a secret.

use crate::error::Failure;
use reqwest::{RequestBuilder, StatusCode, header};
use std::error::Error as _;
use std::time::Duration;
use url::Url;

/// Larger answers are refused: discovery documents, key sets, token and userinfo
/// responses are a few kilobytes.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// An answer the provider gave, with any status the caller must interpret itself
/// (2xx, 3xx and 4xx other than 429).
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) content_type: Option<String>,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    /// The body as JSON of type `T`, or `Unavailable` naming `what`.
    pub(crate) fn json<T: serde::de::DeserializeOwned>(
        &self,
        http: &Http,
        what: &str,
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

    /// Sends `request` (`what` names it in messages, such as "the token request") and
    /// reads the whole body. Transport errors, timeouts, 5xx and 429 are `Unavailable`;
    /// every other status is returned for the caller to judge.
    pub(crate) async fn send(&self, what: &str, url: &Url, request: RequestBuilder) -> Result<Answer, Failure> {
        let mut response = request.send().await.map_err(|e| self.transport(what, url, &e))?;
        let status = response.status();
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(self.unavailable(what, url, &format!("answered HTTP {status}")));
        }
        let content_type =
            response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(|v| v.to_ascii_lowercase());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport(what, url, &e))? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(self.unavailable(what, url, &format!("answered with more than {MAX_BODY_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer { status, content_type, body })
    }

    /// `Unavailable`: "`provider` (host): what problem".
    pub(crate) fn unavailable(&self, what: &str, url: &Url, problem: &str) -> Failure {
        Failure::Unavailable(format!("{}: {what} to {} {problem}", self.provider, host(url)))
    }

    /// `Rejected`, in the same shape as [`Http::unavailable`].
    pub(crate) fn rejected(&self, message: &str) -> Failure {
        Failure::Rejected(format!("{}: {message}", self.provider))
    }

    fn transport(&self, what: &str, url: &Url, error: &reqwest::Error) -> Failure {
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
        let failure = http.unavailable("the token request", &url, "answered HTTP 503");
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
        let Err(Failure::Unavailable(message)) = http.send("the discovery request", &url, http.get(&url)).await else {
            panic!("expected Unavailable");
        };
        assert!(
            message.starts_with(&format!("p: the discovery request to 127.0.0.1:{port} could not connect")),
            "{message}"
        );
        assert!(!message.contains("secret"), "{message}");
    }
}
