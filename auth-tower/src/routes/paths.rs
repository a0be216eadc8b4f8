//! [`AuthRoutes`]: where the layer's routes are, for links and redirects in handlers.

use auth_core::LoginOptions;
use std::sync::Arc;

/// The route prefix used unless [`AuthLayerBuilder::with_prefix`](crate::AuthLayerBuilder::with_prefix) says otherwise.
pub(crate) const DEFAULT_PREFIX: &str = "/auth";

/// Where the login and logout routes are, for links and redirects in your handlers.
///
/// The layer puts one in every request's extensions (axum: `Extension<AuthRoutes>`).
#[derive(Clone, Debug)]
pub struct AuthRoutes {
    paths: Arc<RoutePaths>,
}

#[derive(Debug)]
struct RoutePaths {
    login: String,
    logout: String,
    backchannel_logout: String,
    jwks: String,
}

impl Default for AuthRoutes {
    /// The routes of a layer with the default prefix: `/auth/login` and `/auth/logout`.
    fn default() -> Self {
        Self::new(DEFAULT_PREFIX)
    }
}

impl AuthRoutes {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            paths: Arc::new(RoutePaths {
                login: format!("{prefix}/login"),
                logout: format!("{prefix}/logout"),
                backchannel_logout: format!("{prefix}/backchannel-logout"),
                jwks: format!("{prefix}/jwks"),
            }),
        }
    }

    /// The login route, such as `/auth/login`.
    pub fn login_path(&self) -> &str {
        &self.paths.login
    }

    /// The logout route, such as `/auth/logout`.
    pub fn logout_path(&self) -> &str {
        &self.paths.logout
    }

    /// The back-channel logout route, such as `/auth/backchannel-logout`. Register the
    /// app's origin followed by this path (and `?provider=NAME` when several providers are
    /// configured) as the `backchannel_logout_uri` of the client at the provider.
    pub fn backchannel_logout_path(&self) -> &str {
        &self.paths.backchannel_logout
    }

    /// The client's public keys, such as `/auth/jwks`, served with `publish_client_jwks =
    /// true`: register the app's origin followed by this path as the client's `jwks_uri` at
    /// providers that fetch the keys of `private_key_jwt` clients.
    pub fn jwks_path(&self) -> &str {
        &self.paths.jwks
    }

    /// A login link: `{login}?provider=NAME&return_to=PATH`, query-encoded. Without a
    /// provider, the login route picks the only one or shows the chooser.
    pub fn login_url(&self, provider: Option<&str>, return_to: &str) -> String {
        self.login_url_with(provider, return_to, &LoginOptions::default())
    }

    /// A login link that also asks for `options` (step-up: `max_age`, `acr_values`,
    /// `prompt`), which the login route passes to the provider and the callback checks.
    pub fn login_url_with(&self, provider: Option<&str>, return_to: &str, options: &LoginOptions) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(provider) = provider {
            query.append_pair("provider", provider);
        }
        query.append_pair("return_to", return_to);
        if let Some(max_age) = options.max_age {
            query.append_pair("max_age", &max_age.to_string());
        }
        if !options.acr_values.is_empty() {
            query.append_pair("acr_values", &options.acr_values.join(" "));
        }
        if let Some(prompt) = &options.prompt {
            query.append_pair("prompt", prompt);
        }
        format!("{}?{}", self.paths.login, query.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_urls_are_encoded() {
        let routes = AuthRoutes::new("/auth");
        assert_eq!(routes.login_url(None, "/"), "/auth/login?return_to=%2F");
        assert_eq!(
            routes.login_url(Some("my idp"), "/p?x=1&y=2"),
            "/auth/login?provider=my+idp&return_to=%2Fp%3Fx%3D1%26y%3D2"
        );
        assert_eq!(AuthRoutes::new("").logout_path(), "/logout");
        let step_up = LoginOptions::new().with_max_age(300).with_acr_values(["mfa", "phr"]);
        assert_eq!(
            routes.login_url_with(Some("corp"), "/admin", &step_up),
            "/auth/login?provider=corp&return_to=%2Fadmin&max_age=300&acr_values=mfa+phr&prompt=login"
        );
    }
}
