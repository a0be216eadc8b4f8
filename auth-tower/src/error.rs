//! [`AuthError`]: why an [`AuthLayer`](crate::AuthLayer) could not be built.
//!
//! Only building fails. Once built, the layer answers every problem of a request (a stale
//! callback, an unreachable provider, a failing store) with a page or a redirect.

use auth_core::ConfigError;

/// Why an [`AuthLayer`](crate::AuthLayer) could not be built. Each message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The configuration cannot work (read errors, or a setting the layer cannot serve).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The identity providers of the configuration could not be built.
    #[cfg(feature = "oidc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "oidc")))]
    #[error("cannot build the identity providers: {0}")]
    Providers(#[from] auth_providers::BuildError),
    /// The builder was given no identity provider.
    #[error(
        "no identity provider: add one with AuthLayerBuilder::with_provider, or configure one in [auth] and use AuthLayer::from_config"
    )]
    NoProviders,
    /// Two providers share a name, so `/auth/login?provider=NAME` would be ambiguous.
    #[error("two identity providers are named {name:?}: give each provider a unique name")]
    DuplicateProvider {
        /// The shared name.
        name: String,
    },
    /// The route prefix given to [`with_prefix`](crate::AuthLayerBuilder::with_prefix) is unusable.
    #[error("the route prefix {prefix:?} {problem}: use an absolute path such as \"/auth\"")]
    InvalidPrefix {
        /// The prefix as given.
        prefix: String,
        /// What is wrong with it.
        problem: &'static str,
    },
}
