//! Back-channel logout from the provider's side (OpenID Connect Back-Channel Logout 1.0):
//! logout tokens, correct or deliberately broken, and the POST that delivers them to an
//! app's back-channel logout route.

use std::io;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use url::Url;

use crate::fault::{WRONG_AUDIENCE, WRONG_ISSUER};
use crate::jwt::{self, Alg, SignOptions};
use crate::server::Shared;

/// The member of a logout token's `events` claim that makes it a back-channel logout.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// How long [`MockIdp::backchannel_logout`](crate::MockIdp::backchannel_logout) waits for
/// the app's answer.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// A logout token to sign with [`MockIdp::logout_token`](crate::MockIdp::logout_token) or
/// deliver with [`MockIdp::backchannel_logout`](crate::MockIdp::backchannel_logout).
///
/// By default the token is correct: `typ` `logout+jwt`, RS256 with the provider's current
/// key, `iss` (the issuer), `aud` (the client id), `iat`, `exp` (two minutes later), a random
/// `jti`, the back-channel logout event, and the `sub` and/or `sid` it was built with. The
/// other methods break it on purpose, to test that an app refuses it.
///
/// ```
/// use auth_testkit::LogoutToken;
///
/// let good = LogoutToken::for_session("sid-1").subject("alice");
/// let forged = LogoutToken::for_subject("alice").alg_none();
/// let id_token_lookalike = LogoutToken::for_subject("alice").with_nonce();
/// # let _ = (good, forged, id_token_lookalike);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LogoutToken {
    sub: Option<String>,
    sid: Option<String>,
    alg: Alg,
    overrides: Map<String, Value>,
}

impl LogoutToken {
    /// Ends every session of `sub` (the username of a [`MockUser`](crate::MockUser)).
    pub fn for_subject(sub: impl Into<String>) -> Self {
        Self { sub: Some(sub.into()), sid: None, alg: Alg::Rs256, overrides: Map::new() }
    }

    /// Ends the provider session `sid` (the `sid` claim of the ID tokens of one login).
    pub fn for_session(sid: impl Into<String>) -> Self {
        Self { sub: None, sid: Some(sid.into()), alg: Alg::Rs256, overrides: Map::new() }
    }

    /// Adds (or replaces) the `sub` claim.
    pub fn subject(mut self, sub: impl Into<String>) -> Self {
        self.sub = Some(sub.into());
        self
    }

    /// Adds (or replaces) the `sid` claim.
    pub fn sid(mut self, sid: impl Into<String>) -> Self {
        self.sid = Some(sid.into());
        self
    }

    /// Sets any claim after the others, overriding them; a `null` value removes the claim.
    pub fn claim(mut self, key: impl Into<String>, value: Value) -> Self {
        self.overrides.insert(key.into(), value);
        self
    }

    /// Header `"alg": "none"` and an empty signature.
    pub fn alg_none(mut self) -> Self {
        self.alg = Alg::None;
        self
    }

    /// Header `"alg": "HS256"`, an HMAC keyed with the public key's PEM text (the
    /// key-confusion attack, as [`Fault::Hs256WithPublicKey`](crate::Fault::Hs256WithPublicKey)).
    pub fn hs256_with_public_key(mut self) -> Self {
        self.alg = Alg::Hs256WithPublicKey;
        self
    }

    /// No `events` claim.
    pub fn without_events(self) -> Self {
        self.claim("events", Value::Null)
    }

    /// An `events` claim naming another event than the back-channel logout.
    pub fn wrong_event(self) -> Self {
        self.claim("events", json!({ "http://schemas.openid.net/event/other": {} }))
    }

    /// A `nonce` claim, which logout tokens must not carry (it would let an ID token pass).
    pub fn with_nonce(self) -> Self {
        self.claim("nonce", Value::from("n-1"))
    }

    /// `aud` is [`WRONG_AUDIENCE`](crate::WRONG_AUDIENCE).
    pub fn wrong_audience(self) -> Self {
        self.claim("aud", Value::from(WRONG_AUDIENCE))
    }

    /// `iss` is [`WRONG_ISSUER`](crate::WRONG_ISSUER).
    pub fn wrong_issuer(self) -> Self {
        self.claim("iss", Value::from(WRONG_ISSUER))
    }

    pub(crate) fn sign(&self, shared: &Shared) -> String {
        let now = crate::server::unix_now();
        let mut claims = Map::new();
        let base = json!({
            "iss": shared.config.issuer,
            "aud": shared.config.client_id,
            "iat": now,
            "exp": now + 120,
            "jti": jwt::random_token(),
            "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
        });
        jwt::merge(&mut claims, &base);
        if let Some(sub) = &self.sub {
            claims.insert("sub".into(), sub.clone().into());
        }
        if let Some(sid) = &self.sid {
            claims.insert("sid".into(), sid.clone().into());
        }
        jwt::merge(&mut claims, &Value::Object(self.overrides.clone()));
        let opts = SignOptions { alg: self.alg, ..SignOptions::default() };
        jwt::sign_typed(shared.current_key(), &Value::Object(claims), opts, Some("logout+jwt"))
    }
}

/// What an app answered to a back-channel logout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutDelivery {
    /// The HTTP status (200 when the app ended the sessions).
    pub status: u16,
    /// The response body, as text.
    pub body: String,
}

/// POSTs `logout_token=TOKEN` (form-encoded) to the plain-`http` URL `uri`, as a provider
/// does, and reads the answer.
pub(crate) async fn deliver(uri: &str, token: &str) -> io::Result<LogoutDelivery> {
    let invalid = |message: &str| io::Error::new(io::ErrorKind::InvalidInput, message.to_owned());
    let url = Url::parse(uri).map_err(|e| invalid(&format!("not a URL ({e}): {uri}")))?;
    if url.scheme() != "http" {
        return Err(invalid("only http:// back-channel logout URIs are supported by the mock provider"));
    }
    let host = url.host_str().ok_or_else(|| invalid("the back-channel logout URI has no host"))?;
    let port = url.port_or_known_default().unwrap_or(80);
    let target = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    let body: String = url::form_urlencoded::Serializer::new(String::new()).append_pair("logout_token", token).finish();
    let request = format!(
        "POST {target} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect((host, port)).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, io::Error>(answer)
    };
    let answer = tokio::time::timeout(DELIVERY_TIMEOUT, exchange)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the app did not answer the back-channel logout"))??;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "the app's answer is not HTTP"))?;
    let chunked =
        head.lines().any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.contains("chunked"));
    Ok(LogoutDelivery { status, body: if chunked { unchunk(body) } else { body.to_owned() } })
}

/// The payload of a `Transfer-Encoding: chunked` body (extensions and trailers ignored).
fn unchunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.split(';').next().unwrap_or_default().trim(), 16) else { break };
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(unchunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), "hello world");
        assert_eq!(unchunk("zz\r\n"), "");
    }
}
