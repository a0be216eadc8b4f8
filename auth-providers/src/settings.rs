//! [`ProviderSettings`]: the knobs of `[auth]` that every provider shares, so a provider
//! can be built without a whole `AuthConfig`.

use auth_core::AuthConfig;
use auth_core::config::{DEFAULT_HTTP_TIMEOUT_SECS, DEFAULT_LEEWAY_SECS, DEFAULT_METADATA_TTL_SECS};

/// Settings shared by every provider of a config.
///
/// ```
/// let settings = auth_providers::ProviderSettings::default().with_leeway_secs(5);
/// assert_eq!((settings.leeway_secs, settings.http_timeout_secs), (5, 10));
/// assert_eq!(settings.metadata_ttl_secs, 86400);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProviderSettings {
    /// Clock leeway for ID token `exp` and `iat`, in seconds (`leeway_secs`, default 60).
    pub leeway_secs: u64,
    /// Connect and total timeout of every call to the provider, in seconds
    /// (`http_timeout_secs`, default 10; 0 counts as 1).
    pub http_timeout_secs: u64,
    /// How long the discovery document and the key set are used before they are fetched
    /// again, in seconds (`metadata_ttl_secs`, default 86400; 0 counts as 1). Past it, the
    /// next request still gets the cached copy while one refetch runs in the background;
    /// when that fails the copy is kept and the refetch retried later.
    ///
    /// The config key takes 60 seconds to 30 days; set in code, any value is used as is,
    /// so a test can let the copies age in a second or two.
    pub metadata_ttl_secs: u64,
}

impl Default for ProviderSettings {
    fn default() -> Self {
        Self {
            leeway_secs: DEFAULT_LEEWAY_SECS,
            http_timeout_secs: DEFAULT_HTTP_TIMEOUT_SECS,
            metadata_ttl_secs: DEFAULT_METADATA_TTL_SECS,
        }
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

    /// With the discovery and key set lifetime `secs` (0 counts as 1); unlike the config
    /// key, not held to at least 60, so tests can use a second.
    #[must_use]
    pub fn with_metadata_ttl_secs(mut self, secs: u64) -> Self {
        self.metadata_ttl_secs = secs;
        self
    }

    /// The settings of `config`'s `[auth]` section.
    pub fn from_config(config: &AuthConfig) -> Self {
        Self {
            leeway_secs: config.leeway_secs,
            http_timeout_secs: config.http_timeout_secs,
            metadata_ttl_secs: config.metadata_ttl_secs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_ttl_comes_from_the_config() {
        let config = AuthConfig::from_toml_str(
            "[auth]\nredirect_uri = \"http://localhost:3000/cb\"\n\
             cookie_secret = \"0123456789abcdef0123456789abcdef\"\nmetadata_ttl_secs = 600\n",
            "test",
        )
        .expect("config");
        assert_eq!(ProviderSettings::from_config(&config), ProviderSettings::default().with_metadata_ttl_secs(600));
        assert_eq!(ProviderSettings::default().metadata_ttl_secs, DEFAULT_METADATA_TTL_SECS);
    }
}
