//! The errors of this crate: [`BuildError`] when a provider cannot be built from its
//! config, and the crate-internal [`Failure`] that every network step returns before it
//! becomes an `auth_core::ProviderError` (it is `Clone`, so a cached failure can be
//! handed to every caller that arrives while the provider is down).

use auth_core::config::DEFAULT_PROVIDER;
use auth_core::{ConfigError, ProviderError};

/// A provider section that cannot be turned into a working provider.
///
/// Built before any network call, so it only reports what the config itself gets wrong;
/// the message names the config key and says how to fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A key of the provider's section is missing or unusable.
    #[error("{}`{key}` {problem}. Fix: {fix}", origin.as_deref().map(|o| format!("{o}: ")).unwrap_or_default())]
    Invalid {
        /// The file the section came from (`None` for a section built in code).
        origin: Option<String>,
        /// The dotted key, such as `auth.google.server_metadata_url`.
        key: String,
        /// What is wrong.
        problem: String,
        /// How to fix it.
        fix: String,
    },
    /// The HTTP client of the provider could not be created (TLS backend setup).
    #[error("cannot create the HTTP client for provider `{provider}`: {message}")]
    HttpClient {
        /// The provider's name.
        provider: String,
        /// What the HTTP library reported.
        message: String,
    },
}

/// A provider section's common keys, checked by [`ProviderConfig::validate`](auth_core::ProviderConfig::validate).
impl From<ConfigError> for BuildError {
    fn from(error: ConfigError) -> Self {
        match error {
            ConfigError::Invalid { key, problem, fix, .. } => Self::Invalid { origin: None, key, problem, fix },
            other => Self::Invalid {
                origin: None,
                key: "auth".into(),
                problem: other.to_string(),
                fix: "see the message".into(),
            },
        }
    }
}

impl BuildError {
    pub(crate) fn invalid(provider: &str, key: &str, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::Invalid { origin: None, key: section_key(provider, key), problem: problem.into(), fix: fix.into() }
    }

    /// The same error, naming the file `origin` the section came from.
    #[must_use]
    pub fn in_file(self, origin: &str) -> Self {
        match self {
            Self::Invalid { key, problem, fix, .. } => {
                Self::Invalid { origin: Some(origin.to_owned()), key, problem, fix }
            }
            other => other,
        }
    }
}

/// The dotted config key of `key` in `provider`'s section: `auth.KEY` for the default
/// provider (whose keys sit directly in `[auth]`), `auth.NAME.KEY` otherwise.
pub(crate) fn section_key(provider: &str, key: &str) -> String {
    if provider == DEFAULT_PROVIDER { format!("auth.{key}") } else { format!("auth.{provider}.{key}") }
}

/// Why one step of a login failed. Messages already name the provider and never carry a
/// token, code or secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Transport error, timeout, 5xx or 429, or an answer that is not what the protocol
    /// promises: try again later.
    Unavailable(String),
    /// Something failed verification, or the provider refused the request.
    Rejected(String),
}

impl From<Failure> for ProviderError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Unavailable(message) => ProviderError::Unavailable(message),
            Failure::Rejected(message) => ProviderError::Rejected(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_the_section() {
        assert_eq!(section_key("default", "client_id"), "auth.client_id");
        assert_eq!(section_key("google", "client_id"), "auth.google.client_id");
        let err = BuildError::invalid("google", "server_metadata_url", "is not a URL", "write the full URL");
        assert_eq!(err.to_string(), "`auth.google.server_metadata_url` is not a URL. Fix: write the full URL");
    }

    #[test]
    fn failures_keep_their_kind() {
        assert!(
            matches!(ProviderError::from(Failure::Unavailable("x".into())), ProviderError::Unavailable(m) if m == "x")
        );
        assert!(matches!(ProviderError::from(Failure::Rejected("y".into())), ProviderError::Rejected(m) if m == "y"));
    }
}
