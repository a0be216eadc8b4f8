//! [`ProviderSettings`]: the knobs of `[auth]` that every provider shares, so a provider
//! can be built without a whole `AuthConfig`.

use auth_core::AuthConfig;

/// Settings shared by every provider of a config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProviderSettings {
    /// Clock leeway for ID token `exp` and `iat`, in seconds (`leeway_secs`, default 60).
    pub leeway_secs: u64,
    /// Connect and total timeout of every call to the provider, in seconds
    /// (`http_timeout_secs`, default 10; 0 counts as 1).
    pub http_timeout_secs: u64,
}

impl Default for ProviderSettings {
    fn default() -> Self {
        Self { leeway_secs: 60, http_timeout_secs: 10 }
    }
}

impl ProviderSettings {
    /// The settings of `config`'s `[auth]` section.
    pub fn from_config(config: &AuthConfig) -> Self {
        Self { leeway_secs: config.leeway_secs, http_timeout_secs: config.http_timeout_secs }
    }
}
