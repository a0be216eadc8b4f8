//! [`Shared`]: what every clone of the layer and its services reads, built once by
//! [`AuthLayerBuilder::build`](crate::AuthLayerBuilder::build), plus the cookie helpers
//! the service and the routes have in common.

use crate::cache::SessionCache;
use crate::layer::AuthRoutes;
use auth_core::cookies::{self, CookieAttrs};
use auth_core::seal::Sealer;
use auth_core::{AuthConfig, IdentityProvider, Session, SessionStore, User};
use http::header::SET_COOKIE;
use http::{HeaderMap, HeaderValue};
use std::sync::Arc;

/// The name of the pending-login cookie; distinct from the session cookie and from the
/// cookies identity providers set on their own origin (`_session`, `_interaction`, ...).
pub(crate) const PENDING_COOKIE: &str = "auth_pending";
/// The sealing purpose of the pending-login cookie: it cannot be replayed as a session.
pub(crate) const PENDING_PURPOSE: &str = "pending";
/// How long a login may take, from the redirect to the provider to the callback.
pub(crate) const PENDING_TTL_SECS: u64 = 600;

/// The routes the layer serves itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Login,
    Callback,
    Logout,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: AuthConfig,
    pub(crate) providers: Vec<Arc<dyn IdentityProvider>>,
    pub(crate) store: Arc<dyn SessionStore>,
    /// Present only for the default cookie store (see [`SessionCache`]).
    pub(crate) cache: Option<SessionCache>,
    pub(crate) sealer: Sealer,
    pub(crate) routes: AuthRoutes,
    pub(crate) callback_path: String,
    pub(crate) attrs: CookieAttrs,
}

impl Shared {
    pub(crate) fn route_of(&self, path: &str) -> Option<Route> {
        if path == self.routes.login_path() {
            Some(Route::Login)
        } else if path == self.callback_path {
            Some(Route::Callback)
        } else if path == self.routes.logout_path() {
            Some(Route::Logout)
        } else {
            None
        }
    }

    pub(crate) fn provider(&self, name: &str) -> Option<&Arc<dyn IdentityProvider>> {
        self.providers.iter().find(|p| p.name() == name)
    }

    pub(crate) fn user(&self, session: Arc<Session>) -> User {
        User::from_session(session, self.config.expose_tokens)
    }

    pub(crate) fn session_cookie(&self) -> &str {
        &self.config.cookie_name
    }

    /// `Set-Cookie` values deleting the session cookie and every chunk of it the request
    /// carries (at least the plain name).
    pub(crate) fn clear_session_cookies(&self, request: &HeaderMap) -> Vec<HeaderValue> {
        let name = self.session_cookie();
        let mut present = cookies::present_names(request, name);
        if present.is_empty() {
            present.push(name);
        }
        present.into_iter().filter_map(|n| header_value(self.attrs.delete_cookie(n))).collect()
    }
}

/// A `Set-Cookie` line as a header value; `None` (logged) if it is not a valid one, which
/// only a cookie name or path the builder did not check could cause.
pub(crate) fn header_value(line: String) -> Option<HeaderValue> {
    HeaderValue::try_from(line).map_err(|_| tracing::error!("a Set-Cookie value is not a valid header value")).ok()
}

/// Appends `Set-Cookie: line` to `headers`.
pub(crate) fn append_cookie(headers: &mut HeaderMap, line: String) {
    if let Some(value) = header_value(line) {
        headers.append(SET_COOKIE, value);
    }
}
