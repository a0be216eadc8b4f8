//! OpenID Connect Discovery: which endpoints and keys an issuer uses, read from its
//! `/.well-known/openid-configuration` document.
//!
//! The document is held as a plain struct of the fields this crate uses (not
//! openidconnect's `ProviderMetadata`, which refuses documents that lack fields we never
//! read). Its `issuer` must be the one the metadata URL was built from (OpenID Connect
//! Discovery §4.3), which stops one provider's metadata from impersonating another.
//!
//! The provider keeps the document in its [`Cache`](super::cache::Cache) and fetches it
//! again once it is `metadata_ttl_secs` old; every fetch, the first or a refetch, passes
//! the same checks.

use super::http::{Endpoint, Http};
use crate::error::Failure;
use serde::Deserialize;
use url::Url;

/// The well-known suffix of every discovery URL (OpenID Connect Discovery §4).
pub(crate) const WELL_KNOWN: &str = "/.well-known/openid-configuration";

/// The fields of a discovery document this crate uses.
#[derive(Debug, Deserialize)]
pub(crate) struct Metadata {
    pub(crate) issuer: String,
    pub(crate) authorization_endpoint: Url,
    pub(crate) token_endpoint: Url,
    pub(crate) jwks_uri: Url,
    #[serde(default)]
    pub(crate) userinfo_endpoint: Option<Url>,
    #[serde(default)]
    pub(crate) end_session_endpoint: Option<Url>,
    /// RFC 7662 (advertised as in RFC 8414): where opaque access tokens are checked.
    #[serde(default)]
    pub(crate) introspection_endpoint: Option<Url>,
    /// RFC 9126: where authorization requests are pushed.
    #[serde(default)]
    pub(crate) pushed_authorization_request_endpoint: Option<Url>,
    /// RFC 9126: the provider accepts only pushed authorization requests.
    #[serde(default)]
    pub(crate) require_pushed_authorization_requests: bool,
    /// RFC 7009 (advertised as in RFC 8414): where tokens are revoked.
    #[serde(default)]
    pub(crate) revocation_endpoint: Option<Url>,
    /// RFC 9449: the DPoP proof algorithms the provider accepts; absent when it does not say.
    #[serde(default)]
    pub(crate) dpop_signing_alg_values_supported: Option<Vec<String>>,
    /// RFC 9207: the provider puts `iss` on every authorization response.
    #[serde(default)]
    pub(crate) authorization_response_iss_parameter_supported: bool,
    /// The `response_mode` values the provider supports; absent when it does not say.
    #[serde(default)]
    pub(crate) response_modes_supported: Option<Vec<String>>,
}

/// The issuer a discovery URL promises: the URL without its query and without the
/// well-known suffix; `None` when the URL does not end in that suffix.
pub(crate) fn issuer_of_metadata_url(url: &Url) -> Option<String> {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.as_str().strip_suffix(WELL_KNOWN).filter(|issuer| !issuer.is_empty()).map(str::to_owned)
}

/// Whether the document's `issuer` is the one `expected` (derived from the metadata URL)
/// promises. The comparison is exact, except for the one difference Discovery §4.1
/// creates itself: an issuer's terminating `/` is removed before the suffix is appended,
/// so `https://tenant.example/` is served at `https://tenant.example/.well-known/...`.
pub(crate) fn issuer_matches(discovered: &str, expected: &str) -> bool {
    discovered == expected || discovered.strip_suffix('/') == Some(expected)
}

/// Fetches the discovery document at `url`; `check_issuer` judges its `issuer` (the
/// error says what was expected, see [`Profile`](crate::profile::Profile)).
pub(crate) async fn fetch(
    http: &Http,
    url: &Url,
    check_issuer: impl Fn(&str) -> Result<(), String>,
) -> Result<Metadata, Failure> {
    let result = load(http, url, check_issuer).await;
    match &result {
        Ok(metadata) => {
            tracing::info!(issuer = %metadata.issuer, "discovery document loaded")
        }
        Err(failure) => tracing::warn!(?failure, "discovery failed"),
    }
    result
}

async fn load(http: &Http, url: &Url, check_issuer: impl Fn(&str) -> Result<(), String>) -> Result<Metadata, Failure> {
    const WHAT: Endpoint = Endpoint::Discovery;
    let answer = http.send(WHAT, url, http.get(url)).await?;
    if !answer.status.is_success() {
        return Err(http.unavailable(WHAT, url, &format!("answered HTTP {}", answer.status)));
    }
    let metadata: Metadata = answer.json(http, WHAT, url)?;
    check_issuer(&metadata.issuer).map_err(|message| http.rejected(&message))?;
    for (field, endpoint) in [
        ("authorization_endpoint", Some(&metadata.authorization_endpoint)),
        ("token_endpoint", Some(&metadata.token_endpoint)),
        ("jwks_uri", Some(&metadata.jwks_uri)),
        ("userinfo_endpoint", metadata.userinfo_endpoint.as_ref()),
        ("end_session_endpoint", metadata.end_session_endpoint.as_ref()),
        ("introspection_endpoint", metadata.introspection_endpoint.as_ref()),
        ("pushed_authorization_request_endpoint", metadata.pushed_authorization_request_endpoint.as_ref()),
        ("revocation_endpoint", metadata.revocation_endpoint.as_ref()),
    ] {
        if let Some(endpoint) = endpoint
            && !matches!(endpoint.scheme(), "https" | "http")
        {
            return Err(http.unavailable(WHAT, url, &format!("answered with a {field} that is not an http(s) URL")));
        }
    }
    Ok(metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("url")
    }

    #[test]
    fn the_issuer_is_the_metadata_url_prefix() {
        let google = url("https://accounts.google.com/.well-known/openid-configuration");
        assert_eq!(issuer_of_metadata_url(&google).as_deref(), Some("https://accounts.google.com"));
        let keycloak = url("http://127.0.0.1:8080/realms/demo/.well-known/openid-configuration?x=1");
        assert_eq!(issuer_of_metadata_url(&keycloak).as_deref(), Some("http://127.0.0.1:8080/realms/demo"));
        assert_eq!(issuer_of_metadata_url(&url("https://idp.example/metadata")), None);
    }

    #[test]
    fn issuer_comparison_is_exact_but_for_the_removed_slash() {
        assert!(issuer_matches("https://idp.example", "https://idp.example"));
        assert!(issuer_matches("https://tenant.example/", "https://tenant.example"));
        assert!(!issuer_matches("https://IDP.example", "https://idp.example"));
        assert!(!issuer_matches("https://idp.example/other", "https://idp.example"));
        assert!(!issuer_matches("https://idp.example//", "https://idp.example"));
        assert!(!issuer_matches("https://idp.example", "https://idp.example/realm"));
    }

    #[test]
    fn documents_need_the_endpoints_we_use() {
        let full = r#"{"issuer":"https://i","authorization_endpoint":"https://i/a","token_endpoint":"https://i/t",
                       "jwks_uri":"https://i/k","response_types_supported":["code"]}"#;
        let metadata: Metadata = serde_json::from_str(full).expect("parses");
        assert_eq!(metadata.userinfo_endpoint, None);
        assert_eq!(metadata.introspection_endpoint, None);
        assert!(serde_json::from_str::<Metadata>(r#"{"issuer":"https://i"}"#).is_err());
    }
}
