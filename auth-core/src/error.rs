//! The errors of the core vocabulary: config, providers, stores.

use std::path::PathBuf;

/// Any error, boxed: what a custom provider or store wraps in its `Other` variant.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Writes `error` and the chain of its sources, one per line, as anyhow reports: what a
/// `main` returning `Result<(), Box<dyn Error>>` prints through `Debug`.
pub fn report(error: &(dyn std::error::Error + 'static), f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    write!(f, "{error}")?;
    let mut source = error.source();
    if source.is_some() {
        f.write_str("\n\nCaused by:")?;
    }
    while let Some(cause) = source {
        write!(f, "\n    {cause}")?;
        source = cause.source();
    }
    Ok(())
}

/// A configuration that cannot be used. The message names the file, the key and the fix.
///
/// `Debug` reads like `Display` (a `main` that returns it with `?` prints the message).
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read or parsed.
    #[error("cannot read auth config {}: {message}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong, from the parser.
        message: String,
    },
    /// A key is missing or has a value that cannot work.
    #[error("{origin}: `{key}` {problem}. Fix: {fix}")]
    Invalid {
        /// The file, or "auth config" when built in code.
        origin: String,
        /// The dotted key, such as `auth.google.client_id`.
        key: String,
        /// What is wrong.
        problem: String,
        /// How to fix it.
        fix: String,
    },
}

impl std::fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        report(self, f)
    }
}

/// Why a provider could not start or finish a login.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The provider cannot be reached, timed out, or answered with a server error.
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
    /// What the provider or the browser sent failed verification.
    #[error("the login was rejected: {0}")]
    Rejected(String),
    /// The person authenticated but is not allowed in (domain, tenant, ...).
    #[error("access denied: {0}")]
    Denied(String),
    /// The provider does not support this operation.
    #[error("{0} is not supported by this provider")]
    Unsupported(&'static str),
    /// Anything else, from a custom provider.
    #[error("identity provider error: {0}")]
    Other(#[source] BoxError),
}

impl ProviderError {
    /// Wraps any error of a custom provider (an HTTP client's, a URL parser's, ...):
    /// `RedirectUrl::new(uri).map_err(ProviderError::other)?`.
    pub fn other(error: impl Into<BoxError>) -> Self {
        Self::Other(error.into())
    }
}

/// A session store failed (not "no such session", which is `Ok(None)`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend (Redis, ...) cannot be reached.
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    /// The session could not be encoded.
    #[error("cannot encode session: {0}")]
    Encode(String),
    /// The store cannot do this.
    #[error("this session store does not support {0}")]
    Unsupported(&'static str),
    /// Anything else, from a custom store.
    #[error("session store error: {0}")]
    Other(#[source] BoxError),
}

impl StoreError {
    /// Wraps any error of a custom store's backend: `client.get(key).map_err(StoreError::other)?`.
    pub fn other(error: impl Into<BoxError>) -> Self {
        Self::Other(error.into())
    }
}
