//! OpenID Connect identity providers for `auth-core`: the code that talks to Google,
//! Microsoft or any OpenID Connect issuer, so that the auth layer only sees
//! `Arc<dyn IdentityProvider>`.
//!
//! [`from_config`] builds one provider per section of `[auth]`; nothing touches the
//! network until the first login, so an app starts while its identity provider is down.
//!
//! ```
//! use auth_core::{AuthConfig, IdentityProvider};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = AuthConfig::from_toml_str(r#"
//!     [auth]
//!     redirect_uri = "http://localhost:3000/oauth2callback"
//!     cookie_secret = "an example secret of at least 32 bytes"
//!     client_id = "my-app"
//!     client_secret = "my-secret"
//!     server_metadata_url = "https://idp.example/.well-known/openid-configuration"
//! "#, "example")?;
//!
//! let providers = auth_providers::from_config(&config)?;
//! assert_eq!(providers[0].name(), "default");
//! // Debug output never shows the secret.
//! assert!(!format!("{:?}", providers[0]).contains("my-secret"));
//! # Ok(()) }
//! ```
//!
//! # What a login checks
//!
//! [`OidcProvider`] runs the authorization-code flow with PKCE (S256), `state` and
//! `nonce`. On the callback it checks the RFC 9207 `iss` parameter, exchanges the code
//! (`client_secret_basic` by default, `client_secret_post`, none, or an RFC 7523 client
//! assertion: `private_key_jwt` signed with the section's `client_private_key_file`, or
//! `client_secret_jwt`), and verifies the ID
//! token: signature with a key of the provider's cached key set (fetched again once for
//! an unknown `kid`, at most every 10 seconds), an asymmetric algorithm (never `none`,
//! never `HS*`), `iss`, `aud` and `azp`, `exp` and `iat` within `leeway_secs`, and the
//! `nonce`. When the ID token lacks `email` or `name`, the userinfo endpoint fills them
//! in, if its `sub` matches. Then the preset completes the claims and decides whether the
//! identity is admitted (`ProviderError::Denied` when not).
//!
//! # Presets
//!
//! A section's `kind` (from `kind = "..."`, the section name `google` or `microsoft`, or
//! the metadata URL's host) picks a preset; each is generic OpenID Connect plus a few
//! hooks and keys, all checked when the provider is built:
//!
//! - **Google**: tokens may name the issuer with or without `https://`;
//!   `hosted_domains = ["example.com"]` admits only Google Workspace accounts of those
//!   domains (the `hd` claim; with one domain, `hd` is also sent as a hint).
//! - **Microsoft** (Entra ID v2.0): `tenant` (`common` by default, `organizations`,
//!   `consumers`, a tenant id or domain); on the multi-tenant endpoints each token's `iss`
//!   must be discovery's `{tenantid}` template filled with the token's own `tid`;
//!   `allowed_tenants = ["GUID"]`; the subject is `TID:OID`; `preferred_username` becomes
//!   a verified `email` only when the optional claim `xms_edov` says Microsoft verified its
//!   domain; a groups overage shows as `"groups_overage": true`.
//! - **Every kind**: `allowed_email_domains = ["example.com"]` (requires `email_verified`),
//!   `allowed_groups = ["admins"]` (the `groups` claim must hold one of them; a Microsoft
//!   groups overage is denied with that reason), `logout_params = { ... }` for the
//!   end-session URL, `end_session_endpoint` for providers whose discovery lacks one, and
//!   `bearer_audience = "api://my-api"` (or a list) to accept bearer access tokens for
//!   that audience, with `introspection = true` to accept opaque ones too (see below).
//!
//! ```
//! use auth_core::{AuthConfig, IdentityProvider};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = AuthConfig::from_toml_str(r#"
//!     [auth]
//!     redirect_uri = "http://localhost:3000/oauth2callback"
//!     cookie_secret = "an example secret of at least 32 bytes"
//!     [auth.google]
//!     client_id = "g"
//!     client_secret = "gs"
//!     hosted_domains = ["example.com"]
//!     [auth.microsoft]
//!     client_id = "m"
//!     client_secret = "ms"
//!     allowed_tenants = ["72f988bf-86f1-41af-91ab-2d7cd011db47"]
//! "#, "example")?;
//! let providers = auth_providers::from_config(&config)?;
//! assert_eq!(providers.iter().map(|p| p.display_name()).collect::<Vec<_>>(), ["Google", "Microsoft"]);
//!
//! // Keys are checked before any login: this one belongs to Google providers.
//! let wrong = AuthConfig::from_toml_str(r#"
//!     [auth]
//!     redirect_uri = "http://localhost:3000/oauth2callback"
//!     cookie_secret = "an example secret of at least 32 bytes"
//!     [auth.microsoft]
//!     client_id = "m"
//!     client_secret = "ms"
//!     hosted_domains = ["example.com"]
//! "#, "example")?;
//! let error = auth_providers::from_config(&wrong).unwrap_err().to_string();
//! assert!(error.starts_with("example: `auth.microsoft.hosted_domains` applies only to kind = \"google\""));
//! # Ok(()) }
//! ```
//!
//! # Step-up and bearer tokens
//!
//! [`IdentityProvider::authorize_with`] sends `max_age`, `acr_values` and `prompt` with
//! the authorization request (the layer checks the ID token's `auth_time` and `acr`).
//!
//! With `bearer_audience` set, [`IdentityProvider::verify_access_token`] verifies RFC 9068
//! JWT access tokens: at most 16 KiB, the same key set (refetched once for an unknown
//! `kid`, rate-limited) and algorithm allow-list as ID tokens, `typ` `at+jwt` or `JWT`
//! (or none), the preset's issuer, `aud` naming a bearer audience (at most 64 entries are
//! read), `exp`, `nbf` and `iat` within `leeway_secs`, and `sub`. The identity's subject
//! follows the preset (Microsoft: `TID:OID`) and its claims are the token's.
//! [`IdentityProvider::accepts_bearer_from`] tells, without any network call, whether a
//! token naming an issuer belongs to this provider. Login admission keys
//! (`allowed_email_domains`, `allowed_groups`, `hosted_domains`) do not apply to access
//! tokens; `allowed_tenants` does, through the issuer.
//!
//! With `introspection = true` as well (an error without `bearer_audience`), a token that is
//! not a JWT (not three dot-separated parts) is checked by RFC 7662 token introspection:
//! POSTed to the discovery document's `introspection_endpoint` (a token is refused when
//! none is advertised), authenticated as the token request is. The answer must be `active`,
//! name a `sub`, name the provider's issuer when it has an `iss`, and name a bearer audience
//! when it has an `aud`; an answer without `aud` is accepted, as the provider vouches for a
//! token it issued. The identity's claims are the answer's members, and
//! [`BearerIdentity::expires_at`](auth_core::BearerIdentity::expires_at) is at most 60
//! seconds away, so the layer's cache keeps a revoked token working for a minute at most.
//! [`IdentityProvider::accepts_opaque_tokens`] tells the layer which provider to ask.
//!
//! ```
//! use auth_core::{IdentityProvider, ProviderConfig, ProviderKind, Secret};
//! use auth_providers::{OidcProvider, ProviderSettings};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let metadata_url = "https://idp.example/.well-known/openid-configuration";
//! let config = ProviderConfig::new("corp", ProviderKind::Oidc, "app", metadata_url)
//!     .with_client_secret(Secret::new("s"))
//!     .with_extra("bearer_audience", serde_json::json!(["api://my-api"]));
//! let provider = OidcProvider::new(&config, &ProviderSettings::default())?;
//! // Known from the metadata URL: no discovery yet.
//! assert!(provider.accepts_bearer_from("https://idp.example"));
//! assert!(!provider.accepts_bearer_from("https://other.example"));
//! # Ok(()) }
//! ```
//!
//! Errors are [`auth_core::ProviderError`]s: `Unavailable` when the provider cannot be
//! reached in `http_timeout_secs` or answers with a server error, `Rejected` when
//! anything fails verification. Messages name the provider and never hold a token, code
//! or secret.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
mod oidc;
mod profile;
mod settings;

pub use error::BuildError;
pub use oidc::OidcProvider;
pub use settings::ProviderSettings;

use auth_core::{AuthConfig, IdentityProvider, ProviderConfig};
use std::sync::Arc;

/// One provider per entry of `config.providers`, in name order.
///
/// # Errors
/// The first [`BuildError`], naming the config key to fix; also when the config has no
/// provider at all (an app that brings its own providers does not call this).
pub fn from_config(config: &AuthConfig) -> Result<Vec<Arc<dyn IdentityProvider>>, BuildError> {
    if config.providers.is_empty() {
        return Err(BuildError::Invalid {
            origin: Some(config.origin.clone()),
            key: "auth".into(),
            problem: "configures no provider".into(),
            fix: "add client_id, client_secret and server_metadata_url to [auth], or a section such as [auth.google] \
                  (or add your own provider with AuthLayer::builder(config).with_provider(...))"
                .into(),
        });
    }
    from_config_sections(config)
}

/// One provider per entry of `config.providers`, in name order; none when the config has
/// no provider section (for apps that add their own providers beside these).
///
/// # Errors
/// The first [`BuildError`], naming the config key to fix.
pub fn from_config_sections(config: &AuthConfig) -> Result<Vec<Arc<dyn IdentityProvider>>, BuildError> {
    let settings = ProviderSettings::from_config(config);
    config
        .providers
        .values()
        .map(|provider| build(provider, &settings).map_err(|e| e.in_file(&config.origin)))
        .collect()
}

/// The provider for one section: every kind is an [`OidcProvider`]; the presets differ
/// through its [`profile::Profile`].
fn build(config: &ProviderConfig, settings: &ProviderSettings) -> Result<Arc<dyn IdentityProvider>, BuildError> {
    Ok(Arc::new(OidcProvider::new(config, settings)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth_core::{ProviderKind, Secret, TokenAuthMethod};

    fn config() -> ProviderConfig {
        ProviderConfig::new(
            "corp",
            ProviderKind::Oidc,
            "app",
            "https://idp.example/realms/x/.well-known/openid-configuration",
        )
        .with_client_secret(Secret::new("hunter2-secret"))
        .with_display_name("Corp")
    }

    fn build_error(config: &ProviderConfig) -> String {
        match OidcProvider::new(config, &ProviderSettings::default()) {
            Err(e) => e.to_string(),
            Ok(p) => panic!("expected a build error, got {p:?}"),
        }
    }

    #[test]
    fn builds_without_network_and_hides_the_secret() {
        let provider = OidcProvider::new(&config(), &ProviderSettings::default()).expect("builds");
        assert_eq!(provider.name(), "corp");
        assert_eq!(provider.display_name(), "Corp");
        assert_eq!(provider.issuer(), "https://idp.example/realms/x");
        let debug = format!("{provider:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("<redacted>") && debug.contains("corp"), "{debug}");
    }

    #[test]
    fn config_problems_name_the_key() {
        let mut c = config();
        c.server_metadata_url = "https://idp.example/metadata".into();
        assert!(
            build_error(&c)
                .starts_with("`auth.corp.server_metadata_url` does not end in /.well-known/openid-configuration")
        );

        let mut c = config();
        c.server_metadata_url = "idp.example".into();
        assert!(build_error(&c).starts_with("`auth.corp.server_metadata_url` is not an absolute http(s) URL"));

        let mut c = config();
        c.client_secret = None;
        assert!(build_error(&c).starts_with("`auth.corp.client_secret` is missing"));

        let mut c = config();
        c.name = "default".into();
        c.client_id = " ".into();
        assert!(build_error(&c).starts_with("`auth.client_id` is empty"));

        let mut c = config();
        c.client_kwargs.insert("nonce".into(), "fixed".into());
        assert!(build_error(&c).starts_with("`auth.corp.client_kwargs.nonce` is set by the library"));

        let mut c = config();
        c.client_kwargs.insert("scope".into(), "email".into());
        assert!(build_error(&c).starts_with("`auth.corp.client_kwargs.scope` lacks \"openid\""));
    }

    #[test]
    fn public_clients_need_no_secret() {
        let mut c = config();
        c.client_secret = None;
        c.token_endpoint_auth_method = TokenAuthMethod::None;
        assert!(OidcProvider::new(&c, &ProviderSettings::default()).is_ok());
    }

    #[test]
    fn from_config_builds_every_section() {
        let config = AuthConfig::from_toml_str(
            r#"
            [auth]
            redirect_uri = "http://localhost:3000/oauth2callback"
            cookie_secret = "0123456789abcdef0123456789abcdef"
            leeway_secs = 5
            http_timeout_secs = 3
            [auth.google]
            client_id = "g"
            client_secret = "gs"
            [auth.corp]
            client_id = "c"
            client_secret = "cs"
            server_metadata_url = "https://idp.example/.well-known/openid-configuration"
            "#,
            "test",
        )
        .expect("config");
        assert_eq!(
            ProviderSettings::from_config(&config),
            ProviderSettings::default().with_leeway_secs(5).with_http_timeout_secs(3)
        );
        let providers = from_config(&config).expect("providers");
        let names: Vec<&str> = providers.iter().map(|p| p.name()).collect();
        assert_eq!(names, ["corp", "google"]);
    }

    #[test]
    fn errors_of_a_section_read_from_a_file_name_the_file() {
        let config = AuthConfig::from_toml_str(
            "[auth]\nredirect_uri = \"http://localhost:3000/cb\"\ncookie_secret = \"0123456789abcdef0123456789abcdef\"\n\
             [auth.microsoft]\nclient_id = \"m\"\nclient_secret = \"s\"\nhosted_domains = [\"example.com\"]\n",
            "secrets.toml",
        )
        .expect("config");
        let message = from_config(&config).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.starts_with("secrets.toml: `auth.microsoft.hosted_domains` applies only to"), "{message}");
    }

    #[test]
    fn a_config_without_providers_is_refused_here() {
        // AuthConfig accepts it (an app may bring its own providers); building from it cannot.
        let config = AuthConfig::from_toml_str(
            "[auth]\nredirect_uri = \"http://localhost:3000/cb\"\ncookie_secret = \"0123456789abcdef0123456789abcdef\"\n",
            "app.toml",
        )
        .expect("config");
        let message = from_config(&config).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.starts_with("app.toml: `auth` configures no provider. Fix: add client_id"), "{message}");
    }
}
