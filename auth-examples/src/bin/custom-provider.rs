//! Sign in with GitHub: a provider written outside the auth crates, through the
//! `IdentityProvider` trait alone, with the `oauth2` crate.
//!
//! GitHub speaks OAuth 2.0, not OpenID Connect: there is no discovery document and no ID
//! token. So [`GitHub::authorize`] builds the authorization URL (state and PKCE, no
//! nonce), and [`GitHub::complete`] exchanges the code for an access token, then asks
//! GitHub's API who it belongs to: `/user`, and `/user/emails` for the primary verified
//! address. The layer does the rest (the pending-login cookie, the `state` check, the
//! session, `return_to`), exactly as for the built-in providers.
//!
//! ```text
//! cargo run -p auth-examples --bin custom-provider -- --config github.toml --listen 127.0.0.1:3000
//! ```
//!
//! `github.toml` (the base URLs default to GitHub's; a test points them at a mock):
//!
//! ```toml
//! [auth]
//! redirect_uri = "http://localhost:3000/oauth2callback"
//! cookie_secret = "paste the output of: openssl rand -base64 32"
//!
//! [github]
//! client_id = "..."        # an OAuth app: https://github.com/settings/developers
//! client_secret = "..."    # or the environment variable GITHUB__CLIENT_SECRET
//! # authorize_url = "https://github.com/login/oauth/authorize"
//! # token_url = "https://github.com/login/oauth/access_token"
//! # api_base_url = "https://api.github.com"
//! ```

use auth_examples::{Args, escape, init_tracing};
use auth_tower::async_trait;
use auth_tower::{
    AuthConfig, AuthLayer, Authorization, CallbackParams, Claims, Identity, IdentityProvider, LoginResult,
    PendingLogin, ProviderError, RequireUser, TokenSet, User,
};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// The `[github]` section of the config file.
#[derive(Deserialize)]
struct GitHubConfig {
    client_id: String,
    client_secret: String,
    #[serde(default = "defaults::authorize_url")]
    authorize_url: String,
    #[serde(default = "defaults::token_url")]
    token_url: String,
    #[serde(default = "defaults::api_base_url")]
    api_base_url: String,
}

mod defaults {
    pub(super) fn authorize_url() -> String {
        "https://github.com/login/oauth/authorize".into()
    }
    pub(super) fn token_url() -> String {
        "https://github.com/login/oauth/access_token".into()
    }
    pub(super) fn api_base_url() -> String {
        "https://api.github.com".into()
    }
}

/// `oauth2`'s client with its authorization and token endpoints set.
type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// GitHub as an [`IdentityProvider`]. `Debug` shows no secret.
struct GitHub {
    client: Client,
    /// `api_base_url`, ending in `/` so that `user` and `user/emails` join below it.
    api: Url,
    /// For the token request and the API: no redirects, bounded time.
    http: reqwest::Client,
}

impl fmt::Debug for GitHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHub").field("client_id", self.client.client_id()).field("api", &self.api.as_str()).finish()
    }
}

/// `/user`: the fields this example keeps.
#[derive(Deserialize)]
struct GitHubUser {
    id: u64,
    login: String,
    name: Option<String>,
    avatar_url: Option<String>,
    html_url: Option<String>,
}

/// One entry of `/user/emails`.
#[derive(Deserialize)]
struct GitHubEmail {
    email: String,
    primary: bool,
    verified: bool,
}

impl GitHub {
    /// Checks the section and builds the provider (no network).
    fn new(config: GitHubConfig) -> Result<Self, String> {
        let fix = "create an OAuth app at https://github.com/settings/developers and copy it";
        if config.client_id.trim().is_empty() {
            return Err(format!("`github.client_id` is empty. Fix: {fix}"));
        }
        if config.client_secret.trim().is_empty() {
            return Err(format!("`github.client_secret` is empty. Fix: {fix}, or set GITHUB__CLIENT_SECRET"));
        }
        let url_error = |key: &str| format!("`github.{key}` is not an absolute http(s) URL. Fix: write the full URL");
        let authorize_url = AuthUrl::new(config.authorize_url).map_err(|_| url_error("authorize_url"))?;
        let token_url = TokenUrl::new(config.token_url).map_err(|_| url_error("token_url"))?;
        let mut api = Url::parse(&config.api_base_url)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https"))
            .ok_or_else(|| url_error("api_base_url"))?;
        if !api.path().ends_with('/') {
            api.set_path(&format!("{}/", api.path()));
        }
        let client = BasicClient::new(ClientId::new(config.client_id))
            .set_client_secret(ClientSecret::new(config.client_secret))
            .set_auth_uri(authorize_url)
            .set_token_uri(token_url)
            // GitHub documents client_id and client_secret in the form body.
            .set_auth_type(AuthType::RequestBody);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .user_agent("tower-auth-custom-provider-example")
            .build()
            .map_err(|e| format!("cannot create the HTTP client: {e}"))?;
        Ok(Self { client, api, http })
    }

    fn redirect_url(redirect_uri: &str) -> Result<RedirectUrl, ProviderError> {
        RedirectUrl::new(redirect_uri.to_owned()).map_err(|e| ProviderError::Other(Box::new(e)))
    }

    /// GETs `path` of GitHub's API with the user's access token.
    async fn api<T: DeserializeOwned>(&self, access_token: &str, path: &str) -> Result<T, ProviderError> {
        let url = self.api.join(path).map_err(|e| ProviderError::Other(Box::new(e)))?;
        let response = self
            .http
            .get(url)
            .bearer_auth(access_token)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .send()
            .await
            .map_err(|e| ProviderError::Unavailable(format!("github: GET /{path} failed ({e})")))?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(ProviderError::Rejected(format!("github: GET /{path} refused the access token ({status})")));
        }
        if !status.is_success() {
            return Err(ProviderError::Unavailable(format!("github: GET /{path} answered {status}")));
        }
        response.json().await.map_err(|e| ProviderError::Unavailable(format!("github: GET /{path}: {e}")))
    }
}

/// What a failed token request means for the login.
fn token_error<RE: std::error::Error + 'static, TE: oauth2::ErrorResponse + 'static>(
    error: RequestTokenError<RE, TE>,
) -> ProviderError {
    match error {
        // GitHub answers a bad or used code with HTTP 200 and {"error": ...}: no token to parse.
        RequestTokenError::ServerResponse(e) => ProviderError::Rejected(format!("github: the code was refused ({e})")),
        RequestTokenError::Parse(_, body) => {
            let body: Value = serde_json::from_slice(&body).unwrap_or_default();
            let error = body.get("error").and_then(Value::as_str).unwrap_or("an unreadable answer");
            ProviderError::Rejected(format!("github: the code was refused ({error})"))
        }
        RequestTokenError::Request(e) => ProviderError::Unavailable(format!("github: the token request failed ({e})")),
        RequestTokenError::Other(e) => ProviderError::Unavailable(format!("github: the token request failed ({e})")),
    }
}

#[async_trait]
impl IdentityProvider for GitHub {
    fn name(&self) -> &str {
        "github"
    }

    fn display_name(&self) -> &str {
        "GitHub"
    }

    async fn authorize(&self, redirect_uri: &str) -> Result<Authorization, ProviderError> {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state) = self
            .client
            .authorize_url(CsrfToken::new_random)
            .set_redirect_uri(std::borrow::Cow::Owned(Self::redirect_url(redirect_uri)?))
            .add_scope(Scope::new("read:user".into()))
            .add_scope(Scope::new("user:email".into()))
            .set_pkce_challenge(challenge)
            .url();
        // No nonce: without an ID token there is nothing to bind it to.
        let pending = PendingLogin::new(state.into_secret()).with_pkce_verifier(verifier.into_secret());
        Ok(Authorization::new(url, pending))
    }

    async fn complete(
        &self,
        callback: &CallbackParams,
        pending: &PendingLogin,
        redirect_uri: &str,
    ) -> Result<LoginResult, ProviderError> {
        // The layer has checked `state` already; the PKCE verifier proves this browser
        // started the login.
        let verifier = pending.pkce_verifier.clone().ok_or_else(|| {
            ProviderError::Rejected("github: the pending login lacks its PKCE verifier; start again".into())
        })?;
        let token = self
            .client
            .exchange_code(AuthorizationCode::new(callback.code.clone()))
            .set_redirect_uri(std::borrow::Cow::Owned(Self::redirect_url(redirect_uri)?))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier))
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        let access_token = token.access_token().secret();
        let user: GitHubUser = self.api(access_token, "user").await?;
        let emails: Vec<GitHubEmail> = self.api(access_token, "user/emails").await?;

        let mut claims = Claims::new();
        claims.insert("sub".into(), user.id.to_string().into());
        claims.insert("login".into(), user.login.clone().into());
        claims.insert("name".into(), user.name.unwrap_or(user.login).into());
        if let Some(email) = emails.into_iter().find(|e| e.primary && e.verified) {
            claims.insert("email".into(), email.email.into());
            claims.insert("email_verified".into(), true.into());
        }
        if let Some(picture) = user.avatar_url {
            claims.insert("picture".into(), picture.into());
        }
        if let Some(profile) = user.html_url {
            claims.insert("profile".into(), profile.into());
        }
        let mut tokens = TokenSet::new().with_access_token(access_token.clone());
        tokens.expires_at = token.expires_in().map(|d| auth_core::unix_now() + d.as_secs());
        tokens.scope = token.scopes().map(|s| s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "));
        // GitHub's numeric id is stable; the login name can be changed.
        Ok(LoginResult::new(Identity::new("github", user.id.to_string(), claims), tokens))
    }
}

/// Reads `[auth]` and `[github]` from `path` (with `AUTH__...` and `GITHUB__...`
/// environment overrides).
fn load(path: &Path) -> Result<(AuthConfig, GitHub), Box<dyn std::error::Error>> {
    let auth = AuthConfig::from_file(path)?;
    #[derive(Deserialize)]
    struct File {
        github: GitHubConfig,
    }
    let file: File = config::Config::builder()
        .add_source(config::File::from(path).format(config::FileFormat::Toml))
        .add_source(config::Environment::with_prefix("GITHUB").prefix_separator("__").separator("__").keep_prefix(true))
        .build()
        .and_then(config::Config::try_deserialize)
        .map_err(|e| format!("{}: the [github] section: {e}", path.display()))?;
    Ok((auth, GitHub::new(file.github).map_err(|e| format!("{}: {e}", path.display()))?))
}

async fn home(user: User) -> Html<String> {
    let body = match user.get("login").and_then(Value::as_str) {
        Some(login) => format!(
            "<h1>Hello, {}!</h1><p>Signed in with GitHub as <code>{}</code>.</p>\
             <p><a href=\"/me\">Your claims as JSON</a></p>\
             <form method=\"post\" action=\"/auth/logout\"><button type=\"submit\">Log out</button></form>",
            escape(user.name().unwrap_or(login)),
            escape(login)
        ),
        None => "<h1>Not logged in</h1><p><a href=\"/auth/login\">Sign in with GitHub</a></p>".into(),
    };
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>custom-provider</title></head><body>{body}</body></html>"
    ))
}

async fn me(user: User) -> impl IntoResponse {
    Json(user.to_json())
}

async fn private(RequireUser(user): RequireUser) -> String {
    format!("Welcome back, {}!", user.name().unwrap_or("friend"))
}

#[tokio::main]
async fn main() {
    init_tracing();
    let args = Args::from_env("custom-provider");
    if let Err(error) = run(args).await {
        eprintln!("custom-provider: {error}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let (config, github) = load(&args.config)?;
    // `[auth]` configures no provider of its own: the layer gets ours.
    let auth = AuthLayer::builder(config).with_provider(Arc::new(github)).build()?;
    let app = Router::new().route("/", get(home)).route("/me", get(me)).route("/private", get(private)).layer(auth);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
