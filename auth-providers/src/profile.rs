//! What makes one family of providers differ from generic OpenID Connect: the seam for
//! the Google and Microsoft presets.
//!
//! A preset is mostly data plus a couple of hooks (as in Auth.js): how to tell which
//! issuer a discovery document must name, and which verified identities to admit
//! (Google's hosted domain, Microsoft's tenant). Every [`ProviderKind`] uses the generic
//! behaviour for now; a preset changes only this file.

use crate::oidc::discovery;
use auth_core::{Claims, ProviderConfig, ProviderError, ProviderKind};
use url::Url;

/// The behaviour of one provider family.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Profile {
    kind: ProviderKind,
}

impl Profile {
    /// The profile for `config`'s kind.
    pub(crate) fn of(config: &ProviderConfig) -> Self {
        Self { kind: config.kind }
    }

    /// Which family this is.
    pub(crate) fn kind(&self) -> ProviderKind {
        self.kind
    }

    /// The issuer the discovery document at `metadata_url` must name; `None` when it
    /// cannot be told from the URL. Generic OpenID Connect: the URL without the
    /// well-known suffix. (Microsoft's multi-tenant `common` endpoint will need its own.)
    pub(crate) fn expected_issuer(&self, metadata_url: &Url) -> Option<String> {
        discovery::issuer_of_metadata_url(metadata_url)
    }

    /// Whether a verified identity may sign in here: `Err(ProviderError::Denied)` to
    /// refuse. Generic OpenID Connect admits everyone the provider vouches for.
    pub(crate) fn admit(&self, claims: &Claims) -> Result<(), ProviderError> {
        let _ = claims;
        Ok(())
    }
}
