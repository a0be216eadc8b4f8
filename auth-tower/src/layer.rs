//! [`AuthLayer`] and its builder.
//!
//! Everything that can be wrong with a setup (no provider, two providers with one name,
//! routes that collide) is found by [`AuthLayerBuilder::build`], so that serving never has
//! to fail.

use crate::cache::{CachedStore, SessionCache};
use crate::cookies::CookieAttrs;
use crate::error::AuthError;
use crate::overflow::OverflowStore;
use crate::routes::{AuthRoutes, DEFAULT_PREFIX};
use crate::service::AuthService;
use crate::state::{PENDING_COOKIE, Shared};
use auth_core::config::DEFAULT_PROVIDER;
use auth_core::metrics::CacheCounters;
use auth_core::seal::Sealer;
use auth_core::{
    AuthConfig, ConfigError, CookieOverflow, CookieStore, IdentityProvider, MemoryStore, SessionStore,
    SessionStoreConfig,
};
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use tower_layer::Layer;

/// The tower layer of Streamlit-style login.
///
/// It serves `GET {prefix}/login`, the callback at the path of `redirect_uri`,
/// `POST`/`GET {prefix}/logout` and `POST {prefix}/backchannel-logout`; on every other
/// request it puts a [`User`](crate::User) (anonymous or signed in) and the [`AuthRoutes`]
/// into the request extensions (and [`Sessions`](crate::Sessions) for a session of a store
/// that lists them), after refreshing the session's tokens when they are due.
/// Cloning is cheap (one reference count).
#[derive(Clone)]
pub struct AuthLayer {
    shared: Arc<Shared>,
}

impl fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let providers: Vec<&str> = self.shared.providers.iter().map(|p| p.name()).collect();
        f.debug_struct("AuthLayer")
            .field("login", &self.shared.routes.login_path())
            .field("callback", &self.shared.callback_path)
            .field("logout", &self.shared.routes.logout_path())
            .field("providers", &providers)
            .field("store", &self.shared.store)
            .finish_non_exhaustive()
    }
}

impl AuthLayer {
    /// Builds the providers configured in `config`, the session store `session_store`
    /// names, and the layer. Synchronous: nothing touches the network (discovery happens on
    /// the first login), so an app starts while its identity provider is down. With
    /// `cookie_overflow = "store"`, use the [`builder`](Self::builder) to give it the store
    /// ([`AuthLayerBuilder::with_overflow_store`]).
    ///
    /// # Errors
    /// [`AuthError::Providers`] when a provider cannot be built, and any error of
    /// [`AuthLayerBuilder::build`].
    #[cfg(feature = "oidc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "oidc")))]
    pub fn from_config(config: AuthConfig) -> Result<Self, AuthError> {
        let providers = auth_providers::from_config(&config)?;
        Self::builder(config).with_providers(providers).build()
    }

    /// A builder for a layer with your own providers, store or prefix.
    pub fn builder(config: AuthConfig) -> AuthLayerBuilder {
        AuthLayerBuilder {
            config,
            providers: Vec::new(),
            config_providers: false,
            store: None,
            overflow: None,
            prefix: DEFAULT_PREFIX.to_owned(),
        }
    }

    /// The paths of the login and logout routes.
    pub fn routes(&self) -> &AuthRoutes {
        &self.shared.routes
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService::new(inner, Arc::clone(&self.shared))
    }
}

/// Configures an [`AuthLayer`]; from [`AuthLayer::builder`].
#[derive(Debug)]
#[must_use = "call .build() to get the layer"]
pub struct AuthLayerBuilder {
    config: AuthConfig,
    providers: Vec<Arc<dyn IdentityProvider>>,
    /// Whether [`with_config_providers`](AuthLayerBuilder::with_config_providers) was called.
    config_providers: bool,
    store: Option<Arc<dyn SessionStore>>,
    /// Where sessions past `cookie_budget_bytes` go with `cookie_overflow = "store"`.
    overflow: Option<Arc<dyn SessionStore>>,
    prefix: String,
}

impl AuthLayerBuilder {
    /// Adds an identity provider; its [`name`](IdentityProvider::name) selects it in
    /// `{prefix}/login?provider=NAME`.
    pub fn with_provider(mut self, provider: Arc<dyn IdentityProvider>) -> Self {
        self.providers.push(provider);
        self
    }

    /// Also serves the providers of the config's sections (`[auth.NAME]`, or the keys
    /// directly in `[auth]`), built as [`AuthLayer::from_config`] builds them, listed before
    /// the ones given with [`with_provider`](Self::with_provider). Without this call, a
    /// config section that no given provider is named after is an error: the builder never
    /// ignores the config.
    ///
    /// ```
    /// # use auth_tower::{AuthConfig, AuthLayer};
    /// let config = AuthConfig::from_toml_str(r#"
    /// [auth]
    /// redirect_uri = "http://localhost:3000/oauth2callback"
    /// cookie_secret = "a secret of at least thirty-two bytes"
    /// [auth.corp]
    /// client_id = "app"
    /// client_secret = "s3cret"
    /// server_metadata_url = "https://idp.example/.well-known/openid-configuration"
    /// "#, "auth.toml")?;
    /// let ignored = AuthLayer::builder(config.clone()).build().unwrap_err().to_string();
    /// assert!(ignored.contains("with_config_providers"), "{ignored}");
    /// let layer = AuthLayer::builder(config).with_config_providers().build()?;
    /// assert!(format!("{layer:?}").contains("providers: [\"corp\"]"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "oidc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "oidc")))]
    pub fn with_config_providers(mut self) -> Self {
        self.config_providers = true;
        self
    }

    /// Adds identity providers, in the order the chooser page lists them.
    pub fn with_providers(mut self, providers: impl IntoIterator<Item = Arc<dyn IdentityProvider>>) -> Self {
        self.providers.extend(providers);
        self
    }

    /// Keeps sessions in `store` instead of the one `session_store` names in the config
    /// (by default a [`CookieStore`] sealing with `cookie_secret` and opening with
    /// `previous_cookie_secrets`).
    pub fn with_store(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Keeps the sessions that would not fit `cookie_budget_bytes` in `store`, when the config
    /// says `cookie_overflow = "store"` and sessions live in cookies: such a session is saved
    /// in `store`, and its cookie carries a small ticket to it. Use a shared store such as
    /// `auth_redis::RedisStore` when several instances serve the app, or a [`MemoryStore`]
    /// for one process (its sessions end when the process does). Sessions that fit stay in
    /// their cookie. `cookie_overflow = "store"` without this call is an error of
    /// [`build`](Self::build); with `cookie_overflow = "warn"` (the default), or sessions
    /// already on the server (`session_store`, [`with_store`](Self::with_store)), `store` is
    /// not used.
    ///
    /// ```
    /// # use auth_tower::{AuthConfig, AuthLayer, MemoryStore};
    /// # use std::sync::Arc;
    /// let config = AuthConfig::from_toml_str(r#"
    /// [auth]
    /// redirect_uri = "http://localhost:3000/oauth2callback"
    /// cookie_secret = "a secret of at least thirty-two bytes"
    /// cookie_overflow = "store"
    /// [auth.corp]
    /// client_id = "app"
    /// client_secret = "s3cret"
    /// server_metadata_url = "https://idp.example/.well-known/openid-configuration"
    /// "#, "auth.toml")?;
    /// let missing = AuthLayer::builder(config.clone()).with_config_providers().build().unwrap_err();
    /// assert!(missing.to_string().contains("with_overflow_store"), "{missing}");
    /// let layer = AuthLayer::builder(config)
    ///     .with_config_providers()
    ///     .with_overflow_store(Arc::new(MemoryStore::new()))
    ///     .build()?;
    /// assert!(format!("{layer:?}").contains("OverflowStore"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_overflow_store(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.overflow = Some(store);
        self
    }

    /// Serves the routes under `prefix` (default `/auth`): `{prefix}/login`,
    /// `{prefix}/logout` and `{prefix}/backchannel-logout`. The callback's path is always
    /// the path of `redirect_uri`.
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        prefix.clone_into(&mut self.prefix);
        self
    }

    /// Checks the setup (the config with [`AuthConfig::validate`], then how the parts fit
    /// together) and builds the layer.
    ///
    /// An app that exports the layer's metrics ([`auth_core::metrics`]) installs its
    /// recorder before this call: the per-request counters bind to the recorder installed
    /// when the layer is built.
    ///
    /// # Errors
    /// [`AuthError::Config`] for any value [`AuthConfig::validate`] refuses,
    /// [`AuthError::NoProviders`], [`AuthError::DuplicateProvider`],
    /// [`AuthError::InvalidPrefix`], or [`AuthError::Config`] when the callback path
    /// collides with another route, the session cookie is named like the pending-login one,
    /// the callback or logout route lies outside `cookie_path`, `session_store` names
    /// Redis without the `redis` feature, or `cookie_overflow = "store"` has no store to
    /// overflow into ([`with_overflow_store`](Self::with_overflow_store)).
    pub fn build(self) -> Result<AuthLayer, AuthError> {
        let Self { config, providers, config_providers, store, overflow, prefix } = self;
        // A config read from a file was checked as it was read; one built or edited in code
        // meets the same rules here.
        config.validate()?;
        // `with_config_providers` exists only with `oidc`: without it the flag stays false.
        #[cfg(feature = "oidc")]
        let providers = match config_providers {
            true => auth_providers::from_config_sections(&config)?.into_iter().chain(providers).collect(),
            false => providers,
        };
        let unused = config.providers.keys().find(|name| !providers.iter().any(|p| p.name() == *name));
        if let Some(unused) = unused.filter(|_| !config_providers) {
            let section = if unused == DEFAULT_PROVIDER { "auth".to_owned() } else { format!("auth.{unused}") };
            return Err(AuthError::Config(ConfigError::Invalid {
                origin: config.origin.clone(),
                key: section,
                problem: "configures a provider that this layer would not serve".into(),
                fix: if cfg!(feature = "oidc") {
                    "call .with_config_providers() on the builder to serve the config's providers beside yours, \
                     or remove the section (its client_id, client_secret, server_metadata_url)"
                } else {
                    "enable auth-tower's `oidc` feature and call .with_config_providers(), or remove the section"
                }
                .into(),
            }));
        }
        if providers.is_empty() {
            return Err(AuthError::NoProviders);
        }
        let mut names = BTreeSet::new();
        if let Some(dup) = providers.iter().find(|p| !names.insert(p.name())) {
            return Err(AuthError::DuplicateProvider { name: dup.name().to_owned() });
        }
        let prefix = normalize_prefix(&prefix)?;
        let routes = AuthRoutes::new(&prefix);
        let invalid = |key: &str, problem: String, fix: &str| {
            AuthError::Config(ConfigError::Invalid {
                origin: config.origin.clone(),
                key: key.to_owned(),
                problem,
                fix: fix.to_owned(),
            })
        };
        let callback_path = config.callback_path().to_owned();
        if callback_path == "/" {
            return Err(invalid(
                "auth.redirect_uri",
                "has no path, so the callback would take over the home page".into(),
                "add a path, such as \"http://localhost:3000/oauth2callback\"",
            ));
        }
        if [routes.login_path(), routes.logout_path(), routes.backchannel_logout_path()]
            .contains(&callback_path.as_str())
        {
            return Err(invalid(
                "auth.redirect_uri",
                format!("has the path {callback_path}, which is also a login or logout route"),
                "use another path, such as /oauth2callback, or another prefix with AuthLayerBuilder::with_prefix",
            ));
        }
        if config.cookie_name == PENDING_COOKIE {
            return Err(invalid(
                "auth.cookie_name",
                format!("is {PENDING_COOKIE:?}, the name of the pending-login cookie"),
                "choose another name, such as \"auth_session\"",
            ));
        }

        // The browser sends cookies only under their path: the callback needs the pending
        // login and the logout route the session.
        for (what, path) in
            [("callback (redirect_uri's path)", callback_path.as_str()), ("logout route", routes.logout_path())]
        {
            if !path_matches(path, &config.cookie_path) {
                return Err(invalid(
                    "auth.cookie_path",
                    format!(
                        "is {:?}, but the {what} {path} lies outside it, so the browser would not send the cookies there",
                        config.cookie_path
                    ),
                    "use a cookie_path that contains the callback and the routes, such as \"/\"",
                ));
            }
        }

        // Bound to this app (cookie name, redirect_uri): another app sharing the secret
        // cannot open its cookies.
        let sealer = config.sealer();
        // Only the configured cookie store is cached: its tickets open to the same session
        // forever, while a store given to `with_store` may change a session behind its ticket.
        let (store, cache, resealer) = match store {
            Some(store) => (store, None, None),
            None => match configured_store(&config, &sealer)? {
                // `session_cache_entries = 0`: every request opens its cookie.
                Configured::Cookie(cookie) if config.session_cache_entries == 0 => {
                    (Arc::clone(&cookie) as Arc<dyn SessionStore>, None, Some(cookie))
                }
                Configured::Cookie(cookie) => {
                    let entries = usize::try_from(config.session_cache_entries).unwrap_or(usize::MAX);
                    let cache = Arc::new(SessionCache::new(entries));
                    let store = CachedStore::new(Arc::clone(&cookie) as Arc<dyn SessionStore>, Arc::clone(&cache));
                    (Arc::new(store) as Arc<dyn SessionStore>, Some(cache), Some(cookie))
                }
                Configured::Server(store) => (store, None, None),
            },
        };
        let attrs = CookieAttrs {
            path: config.cookie_path.clone(),
            secure: config.secure_cookies(),
            domain: config.cookie_domain.clone(),
        };
        let prefix = config.cookie_prefix();
        let session_cookie = format!("{prefix}{}", config.cookie_name);
        // Only sessions that live in cookies can overflow: with a server-side store there is
        // nothing to do.
        let overflows = resealer.is_some() && config.cookie_overflow == CookieOverflow::Store;
        let store = match overflow {
            _ if !overflows => store,
            Some(server) => {
                let budget = config.cookie_budget_bytes;
                Arc::new(OverflowStore::new(store, server, session_cookie.clone(), budget)) as Arc<dyn SessionStore>
            }
            None => {
                return Err(invalid(
                    "auth.cookie_overflow",
                    "is \"store\", but the layer has no store to keep the sessions that overflow".into(),
                    "build the layer with AuthLayer::builder(config).with_config_providers() and call \
                     .with_overflow_store(Arc::new(store)) with a RedisStore (auth-redis) when several instances \
                     serve the app, or a MemoryStore for one process; or set cookie_overflow = \"warn\"",
                ));
            }
        };
        // The pending login is always a host-only cookie on `/`, whatever the session cookie
        // uses: on https it is `__Host-`, so a sibling subdomain cannot plant one (login CSRF).
        let pending_attrs = CookieAttrs { path: "/".into(), secure: config.secure_cookies(), domain: None };
        let pending_cookie = format!("{}{PENDING_COOKIE}", if config.secure_cookies() { "__Host-" } else { "" });
        let pending_prefix = format!("{pending_cookie}_*");
        let providers_accept_bearer = providers.iter().any(|p| p.accepts_bearer_tokens());
        let listing = store.listing().is_some();
        // The per-request counters bind to the recorder installed now (the app installs it
        // first); describing the metrics lets exporters show their help text.
        auth_core::metrics::describe();
        let counts = |used: bool, cache| if used { CacheCounters::new(cache) } else { CacheCounters::noop() };
        let (cookie_cache_counts, bearer_cache_counts) =
            (counts(cache.is_some(), "cookie"), counts(providers_accept_bearer, "bearer"));
        let store_cache_counts = counts(resealer.is_none(), "store");
        let shared = Shared {
            config,
            providers,
            store,
            cache,
            resealer,
            listing,
            overflow: overflows,
            sealer,
            routes,
            callback_path,
            attrs,
            session_cookie,
            pending_cookie,
            pending_attrs,
            pending_prefix,
            bearer: providers_accept_bearer,
            bearer_cache: SessionCache::new(crate::cache::BEARER_CAPACITY),
            bearer_refusals: Default::default(),
            logout_tokens: Default::default(),
            refusal_log: Default::default(),
            store_error_log: Default::default(),
            refresh_error_log: Default::default(),
            ended: Default::default(),
            flights: Default::default(),
            budget: Default::default(),
            cookie_cache_counts,
            bearer_cache_counts,
            store_cache_counts,
        };
        Ok(AuthLayer { shared: Arc::new(shared) })
    }
}

/// The store `session_store` names.
enum Configured {
    /// The cookie store (cached, and re-sealing cookies of previous secrets).
    Cookie(Arc<CookieStore>),
    /// A server-side store.
    Server(Arc<dyn SessionStore>),
}

/// The store `session_store` names: the cookie store sealing with `sealer`, a fresh
/// [`MemoryStore`], or Redis (feature `redis`).
fn configured_store(config: &AuthConfig, sealer: &Sealer) -> Result<Configured, AuthError> {
    match &config.session_store {
        SessionStoreConfig::Memory => Ok(Configured::Server(Arc::new(MemoryStore::new()))),
        #[cfg(feature = "redis")]
        SessionStoreConfig::Redis(url) => {
            // The store's local copies are the layer's session cache for Redis.
            let entries = usize::try_from(config.session_cache_entries).unwrap_or(usize::MAX);
            let store = auth_redis::RedisStore::new(url.expose())?.with_local_cache(entries);
            Ok(Configured::Server(Arc::new(store)))
        }
        #[cfg(not(feature = "redis"))]
        SessionStoreConfig::Redis(_) => Err(AuthError::Config(ConfigError::Invalid {
            origin: config.origin.clone(),
            key: "auth.session_store".into(),
            problem: "is a Redis URL, but auth-tower was built without its `redis` feature".into(),
            fix: "enable it: auth-tower = { version = \"0.1\", features = [\"redis\"] }".into(),
        })),
        _ => Ok(Configured::Cookie(Arc::new(CookieStore::new(Arc::new(sealer.clone()))))),
    }
}

/// Whether request path `path` lies under cookie path `cookie_path` (RFC 6265 §5.1.4).
fn path_matches(path: &str, cookie_path: &str) -> bool {
    path == cookie_path
        || (path.starts_with(cookie_path) && (cookie_path.ends_with('/') || path[cookie_path.len()..].starts_with('/')))
}

/// `prefix` without its trailing `/` (`"/"` becomes `""`), when it is a plain absolute path.
fn normalize_prefix(prefix: &str) -> Result<String, AuthError> {
    let invalid = |problem| AuthError::InvalidPrefix { prefix: prefix.to_owned(), problem };
    if !prefix.starts_with('/') {
        return Err(invalid("does not start with '/'"));
    }
    if prefix.chars().any(|c| c.is_control() || c.is_whitespace() || matches!(c, '?' | '#' | '\\' | '%')) {
        return Err(invalid("holds a character that does not belong in a plain path"));
    }
    let trimmed = prefix.trim_end_matches('/');
    if trimmed.contains("//") {
        return Err(invalid("holds an empty segment"));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(normalize_prefix("/auth").ok().as_deref(), Some("/auth"));
        assert_eq!(normalize_prefix("/auth/").ok().as_deref(), Some("/auth"));
        assert_eq!(normalize_prefix("/").ok().as_deref(), Some(""));
        assert_eq!(normalize_prefix("/a/b").ok().as_deref(), Some("/a/b"));
        for bad in ["auth", "", "/a b", "/a?x", "//auth", "/a//b", "/a\\b"] {
            assert!(matches!(normalize_prefix(bad), Err(AuthError::InvalidPrefix { .. })), "{bad:?}");
        }
    }

    #[test]
    fn cookie_paths_match_as_browsers_do() {
        assert!(path_matches("/oauth2callback", "/"));
        assert!(path_matches("/app", "/app"));
        assert!(path_matches("/app/auth/logout", "/app"));
        assert!(path_matches("/app/auth/logout", "/app/"));
        assert!(!path_matches("/application", "/app"));
        assert!(!path_matches("/auth/logout", "/app"));
    }
}
