//! The vocabulary of Streamlit-style login for tower services.
//!
//! `auth-core` holds what every other crate of the workspace agrees on, and nothing that
//! needs an HTTP server or a concrete identity provider:
//!
//! - [`User`], the `st.user` of a request: anonymous, or the claims of a signed-in person;
//! - [`Identity`], [`TokenSet`] and [`Session`], what a login produces and a store keeps;
//! - the traits [`IdentityProvider`] (Google, Microsoft, any OIDC issuer, or your own) and
//!   [`SessionStore`] (sealed cookies by default, memory, or your own), with the
//!   capabilities a store may add: [`SessionLock`], [`SessionRevocation`] and
//!   [`SessionListing`];
//! - [`AuthConfig`], read from Streamlit's `[auth]` TOML section unchanged, or built in
//!   code and checked by [`AuthConfig::validate`];
//! - [`seal::Sealer`], the AES-256-GCM sealing of every cookie;
//! - [`metrics`], the name of every metric the layer records and the functions that
//!   record them (through the `metrics` facade; the app installs the exporter).
//!
//! The data types are `#[non_exhaustive]`: their fields are public to read, and each has
//! a constructor (`Identity::new`, `Session::new`, `TokenSet::new().with_access_token(..)`,
//! ...), so they can grow without breaking code that uses them.
//!
//! ```
//! use auth_core::{Identity, Session, TokenSet, User, ExposeTokens};
//! use std::sync::Arc;
//!
//! let mut claims = serde_json::Map::new();
//! claims.insert("sub".into(), "alice".into());
//! claims.insert("email".into(), "alice@example.test".into());
//! let identity = Identity::new("google", "alice", claims);
//! let session = Session::new(identity, TokenSet::default(), 3600);
//! let user = User::from_session(Arc::new(session), ExposeTokens::NONE);
//!
//! assert!(user.is_logged_in());
//! assert_eq!(user.email(), Some("alice@example.test"));
//! assert_eq!(user.to_json()["is_logged_in"], true);
//! assert_eq!(User::anonymous().to_json(), serde_json::json!({"is_logged_in": false}));
//! ```
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod codec;
pub mod config;
pub mod dpop;
mod error;
mod identity;
pub mod metrics;
mod policy;
mod provider;
pub mod seal;
mod session;
mod store;
mod user;

#[cfg(feature = "axum")]
mod extract;

/// Re-exported so providers and stores written outside this workspace use the same macro.
pub use async_trait::async_trait;
pub use config::{
    AuthConfig, ClientAssertionAudience, CookieOverflow, ExposeTokens, KeepTokens, Profile, ProviderConfig,
    ProviderKind, ResponseMode, Secret, SessionStoreConfig, TokenAuthMethod, UsePar,
};
pub use dpop::{DpopAlg, DpopKey, DpopMode};
pub use error::{BoxError, ConfigError, ProviderError, StoreError, report};
pub use identity::{Claims, Identity, LazyClaims, TokenSet};
pub use policy::{CustomPolicy, Decision, Forbidden, Policy, StepUp};
pub use provider::{
    Authorization, BearerIdentity, CallbackParams, IdentityProvider, LoginOptions, LoginResult, LogoutClaims,
    PendingLogin,
};
pub use session::{Session, unix_now};
pub use store::{
    CookieStore, MemoryStore, Revocation, SESSION_PURPOSE, SessionInfo, SessionListing, SessionLock, SessionRevocation,
    SessionStore, Ticket, random_token, session_handle,
};
pub use user::{AuthMethod, ExposedTokens, User};
