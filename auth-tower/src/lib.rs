//! Streamlit-style login for any tower service: one config section, three routes, and a
//! [`User`] on every request.
//!
//! | Streamlit | `auth-tower` |
//! |---|---|
//! | `[auth]` in `secrets.toml` | the same TOML, read by [`AuthConfig::from_file`] |
//! | `st.login("google")` | a link to `/auth/login?provider=google&return_to=/page` |
//! | `st.logout()` | `POST /auth/logout` (a same-site `GET` works too) |
//! | `st.user` | the [`User`] extractor, or `request.extensions().get::<User>()` |
//!
//! # Quick start (axum)
//!
//! ```no_run
//! use auth_tower::{AuthConfig, AuthLayer, User};
//! use axum::{Router, routing::get};
//!
//! async fn home(user: User) -> String {
//!     if user.is_logged_in() {
//!         format!("Welcome back, {}!", user.name().unwrap_or("friend"))
//!     } else {
//!         "Not logged in: visit /auth/login".into()
//!     }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let auth = AuthLayer::from_config(AuthConfig::from_file(".streamlit/secrets.toml")?)?;
//! let app = Router::new().route("/", get(home)).layer(auth);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```
//!
//! The layer serves:
//!
//! - `GET /auth/login?provider=NAME&return_to=/path`: redirects to the provider (with
//!   `state`, `nonce` and PKCE kept in a short-lived sealed cookie), or shows a chooser
//!   page when several providers are configured and none is named. `return_to` must be a
//!   relative path on this site; anything else becomes `/`.
//! - the callback, at the path of `redirect_uri`: checks `state`, lets the provider
//!   verify the response, stores the session and redirects to `return_to`. Errors end on a
//!   small page saying what happened, never a bare 500.
//! - `POST /auth/logout` (and `GET`, refused when cross-site): ends the session, clears
//!   its cookies, and signs out at the provider when it supports RP-initiated logout.
//! - `POST /auth/backchannel-logout[?provider=NAME]`: OpenID Connect Back-Channel Logout;
//!   the provider posts a signed logout token and the sessions it names end (needs a
//!   server-side store).
//!
//! Every other request gets a [`User`] (anonymous unless a valid session cookie came
//! with it) and the [`AuthRoutes`] in its extensions, then goes to your service, without
//! the layer's own cookies in its `Cookie` header. When the session's access token
//! expires within `refresh_margin_secs`, it is refreshed first (once per session, however
//! many requests arrive together); handlers get it with the [`AccessToken`] extractor.
//!
//! # Requiring login
//!
//! With feature `axum` (on by default), [`RequireUser`] rejects anonymous requests:
//! browsers are redirected to log in and come back, API clients get a `401`.
//!
//! ```
//! # #[cfg(feature = "axum")] {
//! use auth_tower::RequireUser;
//!
//! async fn private(RequireUser(user): RequireUser) -> String {
//!     format!("Hello {}", user.email().unwrap_or("you"))
//! }
//! # }
//! ```
//!
//! # Your own provider, store or routes
//!
//! [`AuthLayer::builder`] takes any [`IdentityProvider`], any [`SessionStore`] (such as
//! [`MemoryStore`], for revocable server-side sessions) and a route prefix. The layer works
//! with any tower service; here with a plain `service_fn`:
//!
//! ```
//! use auth_tower::{AuthConfig, AuthLayer, Authorization, CallbackParams, IdentityProvider, LoginResult};
//! use auth_tower::{MemoryStore, PendingLogin, ProviderError, User, async_trait, random_token};
//! use std::sync::Arc;
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! #[derive(Debug)]
//! struct MyProvider;
//!
//! #[async_trait]
//! impl IdentityProvider for MyProvider {
//!     fn name(&self) -> &str { "mine" }
//!     async fn authorize(&self, redirect_uri: &str) -> Result<Authorization, ProviderError> {
//!         let state = random_token();
//!         let url = format!("https://idp.example/authorize?state={state}&redirect_uri={redirect_uri}");
//!         Ok(Authorization::new(url, PendingLogin::new(state)))
//!     }
//!     async fn complete(&self, _: &CallbackParams, _: &PendingLogin, _: &str) -> Result<LoginResult, ProviderError> {
//!         Err(ProviderError::Unsupported("this example"))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // With your own providers, `[auth]` needs no provider keys.
//! let config = AuthConfig::from_toml_str(r#"
//! [auth]
//! redirect_uri = "http://localhost:3000/oauth2callback"
//! cookie_secret = "a secret of at least thirty-two bytes"
//! "#, "example")?;
//! let auth = AuthLayer::builder(config)
//!     .with_provider(Arc::new(MyProvider))
//!     .with_store(Arc::new(MemoryStore::new()))
//!     .with_prefix("/account")
//!     .build()?;
//!
//! let app = auth.layer(service_fn(|request: http::Request<String>| async move {
//!     let user = request.extensions().get::<User>().cloned().unwrap_or_default();
//!     Ok::<_, std::convert::Infallible>(http::Response::new(user.to_json().to_string()))
//! }));
//!
//! let login = app.clone().oneshot(http::Request::get("/account/login").body(String::new())?).await?;
//! assert_eq!(login.status(), http::StatusCode::FOUND);
//! assert!(login.headers()["set-cookie"].to_str()?.starts_with("auth_pending_"));
//!
//! let home = app.oneshot(http::Request::get("/").body(String::new())?).await?;
//! assert_eq!(home.status(), http::StatusCode::OK);
//! # Ok(())
//! # }
//! ```
//!
//! # Sessions and cookies
//!
//! By default the session is sealed (AES-256-GCM, key derived from `cookie_secret`) into
//! the `auth_session` cookie, split into `auth_session.0`, `.1`, ... past ~3800 bytes, so
//! any instance with the same secret reads it and nothing is kept on the server; a session
//! sealed with one of `previous_cookie_secrets` still opens and is re-sealed with the current
//! secret. With `session_store = "memory"` (or a Redis URL, feature `redis`, or any
//! [`SessionStore`] given to the builder) the cookie carries a random 256-bit ticket and the
//! session lives on the server, where logout and back-channel logout end it.
//!
//! Such a store can also list a person's sessions ([`SessionListing`]): the layer then puts
//! [`Sessions`] in the extensions of each request signed in with a session cookie, to show
//! where the person is signed in (each session named by a handle, a hash of its ticket, with
//! when it started and was last written, and a summary of the browser) and to sign out
//! their other devices. The cookie store cannot: its sessions live only in browsers.
//!
//! Cookies are `HttpOnly`, `SameSite=Lax`, with `cookie_path` (default `/`) and
//! `cookie_domain` (default none); with an https `redirect_uri` they are `Secure` and named
//! `__Host-auth_session` (or `__Secure-...` with a domain or another path). `Max-Age` is
//! always what is left of the session: `session_lifetime_secs` (30 days), or less with
//! `idle_timeout_secs` (renewed as the person comes back) or `end_with_id_token`. A cookie
//! that does not open (tampered, sealed with an unknown secret, expired, revoked) makes the
//! request anonymous and is deleted.
//!
//! # Observability
//!
//! The routes run in `tracing` spans `auth.login`, `auth.callback`, `auth.logout` and
//! `auth.backchannel_logout`, refreshes in `auth.refresh`, with the fields `provider` and
//! `outcome`; codes, states, tokens and secrets are never logged. Session cookies larger
//! than `cookie_budget_bytes` are reported with a warning (at most once a minute), unless
//! `cookie_overflow = "store"` keeps such sessions on the server
//! ([`AuthLayerBuilder::with_overflow_store`]).
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod bearer;
mod body;
mod cache;
mod cookies;
mod error;
#[cfg(feature = "axum")]
mod extract;
mod layer;
mod overflow;
mod page;
mod refresh;
mod require;
mod return_to;
mod routes;
mod service;
mod sessions;
mod site;
mod state;
mod token;

/// The cookie scanner, for this workspace's benchmarks (`auth-bench`) only: not part of
/// the API, and may change in any release.
#[doc(hidden)]
pub mod bench {
    use std::borrow::Cow;

    /// The largest value the layer puts in one cookie before it splits it into chunks.
    pub const CHUNK_SIZE: usize = crate::cookies::CHUNK_SIZE;

    /// The value of cookie `name` in `headers`, joined from its chunks.
    pub fn read_cookie<'h>(headers: &'h http::HeaderMap, name: &str) -> Option<Cow<'h, str>> {
        crate::cookies::read(headers, name)
    }

    /// What the layer does to each request's `Cookie` header: finds cookie `name` and
    /// computes the header without it and the cookies in `also`. Returns whether the
    /// cookie was found, and the removal (to keep it from being optimized away).
    pub fn scan(headers: &http::HeaderMap, name: &str, also: &[&str]) -> (bool, impl Sized) {
        let found = crate::cookies::scan(headers, name, also);
        (found.parts().is_some(), found.into_strip())
    }

    /// `value` as the `(name, value)` cookies the layer writes: one, or numbered chunks.
    pub fn split_cookie<'v>(name: &str, value: &'v str) -> Vec<(String, &'v str)> {
        crate::cookies::split(name, value)
    }
}

/// The parsers behind the routes, for this workspace's fuzz targets (`fuzz/`) and property
/// tests only: not part of the API, and may change in any release.
#[doc(hidden)]
pub mod fuzz {
    use auth_core::LoginOptions;

    /// The most chunks a cookie value is read from (`NAME.0` to `NAME.15`).
    pub const MAX_CHUNKS: usize = crate::cookies::MAX_CHUNKS;

    /// What the login route keeps of a `return_to` parameter: a same-origin relative path,
    /// percent-encoded for a header, or `/`.
    pub fn sanitize_return_to(raw: Option<&str>) -> String {
        crate::return_to::sanitize(raw)
    }

    /// Removes cookie `name`, its chunks and the cookies in `also` (an entry ending in `*`
    /// is a prefix) from the `Cookie` headers, as the layer does before calling the app;
    /// returns whether anything was removed.
    pub fn strip_cookies(headers: &mut http::HeaderMap, name: &str, also: &[&str]) -> bool {
        crate::cookies::scan(headers, name, also).into_strip().apply(headers)
    }

    /// The query parameters the routes read, as the routes parse them.
    #[derive(Debug)]
    pub struct ParsedQuery {
        /// Each parameter the routes read, by name, with the value kept (the first one).
        pub params: Vec<(&'static str, Option<String>)>,
        /// Whether one of them was given more than once.
        pub repeated: bool,
        /// The step-up a login link asks for.
        pub options: LoginOptions,
    }

    /// `query` (a URL's query, without `?`) as the routes parse it.
    pub fn parse_query(query: Option<&str>) -> ParsedQuery {
        let q = crate::routes::Query::parse(query);
        let options = q.login_options();
        let params = vec![
            ("provider", q.provider),
            ("return_to", q.return_to),
            ("code", q.code),
            ("state", q.state),
            ("iss", q.iss),
            ("error", q.error),
            ("error_description", q.error_description),
            ("max_age", q.max_age),
            ("acr_values", q.acr_values),
            ("prompt", q.prompt),
        ];
        ParsedQuery { params, repeated: q.repeated, options }
    }
}

pub use body::AuthBody;
pub use error::AuthError;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use extract::{
    AccessTokenRejection, Authorized, LoginRequired, Refused, RequireUser, SessionsRejection, StaticPolicy,
};
pub use layer::{AuthLayer, AuthLayerBuilder};
pub use require::{ClientKind, Require, RequireLayer, ResponseFuture as RequireFuture, refusal};
pub use routes::AuthRoutes;
pub use service::{AuthService, ResponseFuture};
pub use sessions::Sessions;
pub use site::Site;
pub use token::{AccessToken, AuthorizationHeaderError, NoAccessToken};

/// Re-exported so that providers and stores written with this crate alone use the same
/// macro: `use auth_tower::async_trait;` then `#[async_trait]` on the `impl`.
pub use auth_core::async_trait;
pub use auth_core::{
    AuthConfig, AuthMethod, Authorization, BearerIdentity, BoxError, CallbackParams, Claims, ConfigError,
    CookieOverflow, CookieStore, Decision, ExposeTokens, ExposedTokens, Forbidden, Identity, IdentityProvider,
    KeepTokens, LoginOptions, LoginResult, LogoutClaims, MemoryStore, PendingLogin, Policy, ProviderConfig,
    ProviderError, ProviderKind, Revocation, Secret, Session, SessionInfo, SessionListing, SessionLock,
    SessionRevocation, SessionStore, SessionStoreConfig, StepUp, StoreError, Ticket, TokenSet, User, random_token,
    session_handle, unix_now,
};
