//! [`ProviderSettings`]: the knobs of `[auth]` that every provider shares, so a provider
//! can be built without a whole `AuthConfig`.

use auth_core::AuthConfig;
use auth_core::config::{DEFAULT_HTTP_TIMEOUT_SECS, DEFAULT_LEEWAY_SECS};

/// Settings shared by every provider of a config.
///
/// ```
/// let settings = auth_providers::ProviderSettings::default().with_leeway_secs(5);
/// assert_eq!((settings.leeway_secs, settings.http_timeout_secs), (5, 10));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProviderSettings {
    /// Clock leeway for ID token `exp` and `iat`, in seconds (`leeway_secs`, default 60).
    pub leeway_secs: u64,
    /// Connect and total timeout of every call to the provider, in seconds
    /// (`http_timeout_secs`, default 10; 0 counts as 1).
    pub http_timeout_secs: u64,
}

impl Default for ProviderSettings {
    fn default() -> Self {
        Self { leeway_secs: DEFAULT_LEEWAY_SECS, http_timeout_secs: DEFAULT_HTTP_TIMEOUT_SECS }
    }
}

impl ProviderSettings {
    /// With the clock leeway `secs`.
    #[must_use]
    pub fn with_leeway_secs(mut self, secs: u64) -> Self {
        self.leeway_secs = secs;
        self
    }

    /// With the HTTP timeout `secs` (0 counts as 1).
    #[must_use]
    pub fn with_http_timeout_secs(mut self, secs: u64) -> Self {
        self.http_timeout_secs = secs;
        self
    }

    /// The settings of `config`'s `[auth]` section.
    pub fn from_config(config: &AuthConfig) -> Self {
        Self { leeway_secs: config.leeway_secs, http_timeout_secs: config.http_timeout_secs }
    }
}
