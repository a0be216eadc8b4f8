//! DPoP at the provider (RFC 9449): the proofs on token and userinfo requests, the server
//! nonce each provider remembers, and whether the provider bound the tokens it issued.
//!
//! The key and the proof format are [`auth_core::DpopKey`]'s (the layer's `AccessToken`
//! signs with the same key); this module adds what only the provider calls need.

use super::http::{Answer, Endpoint, Http};
use crate::error::Failure;
use auth_core::{DpopKey, DpopMode};
use reqwest::RequestBuilder;
use std::sync::Mutex;
use url::Url;

/// The latest `DPoP-Nonce` a provider sent (RFC 9449 §8), shared by its sessions.
#[derive(Debug, Default)]
pub(crate) struct Nonce(Mutex<Option<String>>);

impl Nonce {
    fn get(&self) -> Option<String> {
        self.0.lock().map_or(None, |nonce| nonce.clone())
    }

    /// Remembers the nonce `answer` carries, if any.
    pub(crate) fn remember(&self, answer: &Answer) {
        if let (Some(fresh), Ok(mut nonce)) = (answer.dpop_nonce.as_ref(), self.0.lock()) {
            *nonce = Some(fresh.clone());
        }
    }
}

/// A session's key and its provider's nonce: what signs the proofs of one request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Proofs<'a> {
    pub(crate) key: &'a DpopKey,
    pub(crate) nonce: &'a Nonce,
}

impl Proofs<'_> {
    /// The `DPoP` header of a `method` request to `url`, with the remembered nonce and, for
    /// a resource request, the access token's hash.
    pub(crate) fn proof(
        &self,
        http: &Http,
        method: &str,
        url: &Url,
        access_token: Option<&str>,
    ) -> Result<String, Failure> {
        self.key
            .proof(method, url.as_str(), self.nonce.get().as_deref(), access_token)
            .map_err(|e| http.rejected(&e.to_string()))
    }

    /// Sends the request `build` makes to `endpoint` (`what`), with a proof for `method` and,
    /// at a resource, `access_token`; remembers the answer's nonce, and answers a
    /// `use_dpop_nonce` refusal with one retry (a fresh request from `build`, a fresh proof
    /// with the new nonce). The one loop for the token and userinfo requests.
    pub(crate) async fn send(
        &self,
        http: &Http,
        what: Endpoint,
        method: &str,
        endpoint: &Url,
        access_token: Option<&str>,
        build: impl Fn() -> Result<RequestBuilder, Failure>,
    ) -> Result<Answer, Failure> {
        let mut retried = false;
        loop {
            let request = build()?.header("DPoP", self.proof(http, method, endpoint, access_token)?);
            let answer = http.send(what, endpoint, request).await?;
            self.nonce.remember(&answer);
            if retried || !Self::wants_retry(&answer) {
                return Ok(answer);
            }
            tracing::debug!("{} request retried with the provider's DPoP nonce", what.label());
            retried = true;
        }
    }

    /// Whether `answer` asks for a retry with the nonce it carries (RFC 9449 §8, §9): a
    /// `use_dpop_nonce` error (in the body at the token endpoint, in `WWW-Authenticate` at
    /// a resource) with a `DPoP-Nonce` header.
    pub(crate) fn wants_retry(answer: &Answer) -> bool {
        #[derive(serde::Deserialize)]
        struct Error {
            error: String,
        }
        answer.dpop_nonce.is_some()
            && (answer.use_dpop_nonce
                || serde_json::from_slice::<Error>(&answer.body).is_ok_and(|e| e.error == "use_dpop_nonce"))
    }
}

/// Whether tokens of `token_type` answered to a DPoP request are bound, per `mode`
/// (`key` names the config key in messages).
///
/// # Errors
/// `Rejected` for unbound (`Bearer`) tokens when `dpop = true`.
pub(crate) fn bound(http: &Http, mode: DpopMode, key: &str, token_type: Option<&str>) -> Result<bool, Failure> {
    if token_type.is_some_and(|t| t.eq_ignore_ascii_case("DPoP")) {
        return Ok(true);
    }
    match mode {
        DpopMode::Optional => Ok(false),
        _ => Err(http.rejected(&format!(
            "{key} = true, but the token endpoint returned a token that is not DPoP-bound (token_type {:?}); \
             enable DPoP for this client at the provider, or set {key} = \"optional\"",
            super::token::clip(token_type.unwrap_or("none"))
        ))),
    }
}
