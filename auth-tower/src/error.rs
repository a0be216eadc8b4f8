//! [`AuthError`]: why an [`AuthLayer`](crate::AuthLayer) could not be built.
//!
//! Only building fails. Once built, the layer answers every problem of a request (a stale
//! callback, an unreachable provider, a failing store) with a page or a redirect.

use auth_core::ConfigError;

/// Why an [`AuthLayer`](crate::AuthLayer) could not be built. Each message says what to do.
///
/// `Debug` reads like `Display`, so a `main` that returns it with `?` prints
/// `Error: auth.toml: `auth.display_nme` is not a known key (did you mean ...)`, not a struct dump.
#[derive(thiserror::Error)]
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

impl std::fmt::Debug for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        auth_core::report(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_reads_like_display() {
        let error = AuthError::from(ConfigError::Invalid {
            origin: "auth.toml".into(),
            key: "auth.display_nme".into(),
            problem: "is not a known key (did you mean `display_name`?)".into(),
            fix: "rename it to display_name".into(),
        });
        let expected = "auth.toml: `auth.display_nme` is not a known key (did you mean `display_name`?). Fix: rename it to display_name";
        assert_eq!(format!("{error:?}"), expected);
        assert_eq!(error.to_string(), expected);
    }
}
