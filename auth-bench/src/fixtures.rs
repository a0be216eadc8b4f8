//! Realistic inputs: the config, the session of a typical Google login, and tokens of the
//! size real providers issue.
//!
//! Sessions are turned into cookies with the library's own store API ([`CookieStore`]
//! sealing with the config's `cookie_secret`), so the bench measures the cookies a real
//! login would set, not hand-made ones.

use auth_core::seal::Sealer;
use auth_core::{AuthConfig, Claims, CookieStore, Identity, Session, SessionStore, TokenSet, unix_now};
use auth_testkit::MockIdp;
use auth_tower::bench as cookies;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::sync::Arc;

/// The `cookie_secret` of every bench config (64 hex characters, as `openssl rand -hex 32`).
pub const COOKIE_SECRET: &str = "9f3c1e7a5b2d4f6081a3c5e7092b4d6f8e1a3c5b7d9f0e2c4a6b8d0f1e3a5c7b";
/// The session cookie's name (the default).
pub const COOKIE_NAME: &str = "auth_session";
/// A Google-style OAuth client id.
pub const CLIENT_ID: &str = "1234987819200-okr3g6lq4bmc3vfhrp6d0l8j1rsrtp0g.apps.googleusercontent.com";

/// The `[auth]` config of the bench app: one Google provider (never contacted: providers
/// fetch discovery on the first login only), tokens exposed when `expose_tokens`.
pub fn config(expose_tokens: bool) -> AuthConfig {
    let expose = if expose_tokens { "expose_tokens = [\"id\", \"access\"]\n" } else { "" };
    let toml = format!(
        "[auth]\n\
         redirect_uri = \"http://127.0.0.1:3000/oauth2callback\"\n\
         cookie_secret = \"{COOKIE_SECRET}\"\n\
         {expose}\
         [auth.google]\n\
         client_id = \"{CLIENT_ID}\"\n\
         client_secret = \"GOCSPX-bench-not-a-real-secret\"\n\
         server_metadata_url = \"https://accounts.google.com/.well-known/openid-configuration\"\n"
    );
    match AuthConfig::from_toml_str(&toml, "auth-bench fixture") {
        Ok(config) => config,
        Err(error) => unreachable!("the fixed bench config is valid: {error}"),
    }
}

/// The `[auth]` config of an app whose one provider is `idp` (the quick start's
/// single-provider form), with `extra` lines (such as `bearer_audience = "..."`) appended.
///
/// # Errors
/// When the config does not parse (a mistake in `extra`).
pub fn mock_idp_config(idp: &MockIdp, redirect_uri: &str, extra: &str) -> Result<AuthConfig, String> {
    AuthConfig::from_toml_str(&mock_idp_toml(idp, redirect_uri, extra), "auth-bench MockIdp config")
        .map_err(|e| e.to_string())
}

/// The text of [`mock_idp_config`], for an app that reads its config from a file (the soak
/// runs `axum-basic` as a process). `extra` ends with a newline or is empty.
pub fn mock_idp_toml(idp: &MockIdp, redirect_uri: &str, extra: &str) -> String {
    format!(
        "[auth]\n\
         redirect_uri = \"{redirect_uri}\"\n\
         cookie_secret = \"{COOKIE_SECRET}\"\n\
         client_id = \"{}\"\n\
         client_secret = \"{}\"\n\
         server_metadata_url = \"{}\"\n\
         {extra}",
        idp.client_id(),
        idp.client_secret(),
        idp.metadata_url()
    )
}

/// The sealer a layer built from [`config`] uses (bound to its cookie name and
/// `redirect_uri`).
pub fn sealer() -> Sealer {
    config(false).sealer()
}

/// The claims of a typical Google ID token for a Workspace account (`hd`), as a login
/// keeps them in the session.
pub fn google_claims(now: u64) -> Claims {
    let claims = json!({
        "iss": "https://accounts.google.com",
        "azp": CLIENT_ID,
        "aud": CLIENT_ID,
        "sub": "110169484474386276334",
        "hd": "example.com",
        "email": "alice.example@example.com",
        "email_verified": true,
        "at_hash": "HK6E_P6Dh8Y93mRNtsDB1Q",
        "name": "Alice Example",
        "picture": "https://lh3.googleusercontent.com/a/ACg8ocKjRz3vY5wF8QmT2nPbX7dLh1uEsGoC4kAiVtNqWeJy=s96-c",
        "given_name": "Alice",
        "family_name": "Example",
        "iat": now,
        "exp": now + 3600,
    });
    match claims {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    }
}

/// A signed-in Google session without tokens: the cookie of variant (3).
pub fn google_session() -> Session {
    session_of(google_claims(unix_now()))
}

/// The session of user number `user` (below 100,000,000) of the many-session variants:
/// (3)'s login with the user's own subject, email and name, each as long as Alice's, so
/// that every user's sealed cookie is exactly as long as (3)'s.
pub fn google_user_session(user: usize) -> Session {
    let mut claims = google_claims(unix_now());
    claims.insert("sub".into(), format!("1101694844743{user:08}").into());
    claims.insert("email".into(), format!("user.{user:08}@example.com").into());
    claims.insert("name".into(), format!("User {user:08}").into());
    session_of(claims)
}

/// A 30-day Google session of `claims`, without tokens, as a login writes it: with the
/// provider's admission fingerprint (a session without it is checked against the rules
/// again each time its cookie is opened) and a login id.
fn session_of(claims: Claims) -> Session {
    let subject = claims["sub"].as_str().unwrap_or_default().to_owned();
    Session::new(Identity::new("google", subject, claims), TokenSet::default(), 30 * 24 * 3600)
        .with_admission(google_admission())
        .with_login_id(Some(auth_core::random_token()[..16].to_owned()))
}

/// The admission fingerprint of [`config`]'s Google provider.
fn google_admission() -> Option<String> {
    static ADMISSION: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    ADMISSION
        .get_or_init(|| {
            let providers = auth_providers::from_config(&config(false)).unwrap_or_default();
            providers.iter().find(|p| p.name() == "google").and_then(|p| p.admission())
        })
        .clone()
}

/// The same session keeping an ID token, a JWT access token (the size Microsoft Entra
/// issues) and a refresh token: the chunked cookie of variant (4). The access token
/// expires in an hour, so nothing refreshes during a run.
pub fn google_session_with_tokens() -> Session {
    let now = unix_now();
    let mut session = google_session();
    let mut id_claims = google_claims(now);
    id_claims.insert("nonce".into(), "q1Xn3pVt7Lr0sKw5Yb8Zc2Dg4Fh6Jm9N".into());
    session.tokens = TokenSet::new()
        .with_id_token(jwt(&Value::Object(id_claims), 1))
        .with_access_token(jwt(&entra_access_claims(now), 2))
        .with_refresh_token(format!("1//0g{}", pseudo_base64(99, 3)))
        .with_expires_at(now + 3600)
        .with_scope(
            "openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile",
        );
    session
}

/// The claims of a typical Microsoft Entra ID (v1, Graph) access token.
fn entra_access_claims(now: u64) -> Value {
    json!({
        "aud": "00000003-0000-0000-c000-000000000000",
        "iss": "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/",
        "iat": now, "nbf": now, "exp": now + 3600,
        "acct": 0, "acr": "1",
        "aio": "AVQAq/8XAAAA3mT6vYb2Qk9sL0pR4wZ1cN7hE5jF8gH2iK3lM4nO5pQ6rS7tU8vW9xY0zA1bC2dE3fG4hI5jK6lM=",
        "amr": ["pwd", "mfa"],
        "app_displayname": "Bench App",
        "appid": "5b7e2c1a-9d3f-4e8b-a6c0-1f2e3d4c5b6a",
        "appidacr": "1",
        "family_name": "Example", "given_name": "Alice",
        "idtyp": "user", "ipaddr": "203.0.113.42",
        "name": "Alice Example",
        "oid": "8c2f1e4d-7b6a-4c3e-9f1d-2a5b8c7e6d4f",
        "platf": "3",
        "puid": "10032002F3A1B2C4",
        "rh": "0.AXEAv4j5cvGGr0GRqy180BHbRwMAAAAAAAAAwAAAAAAAAABxAA4.",
        "scp": "email openid profile User.Read",
        "signin_state": ["kmsi"],
        "sub": "Yq3cF7wL1mN9pR2sT5vX8zB0dG4hJ6kA_eC3iO7uQ1w",
        "tenant_region_scope": "EU",
        "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "unique_name": "alice.example@example.com",
        "upn": "alice.example@example.com",
        "uti": "Xk4hT9pQ2EaW7mN1bV5cRg",
        "ver": "1.0",
        "wids": ["b79fbf4d-3ef9-4689-8143-76b194e85509"],
        "xms_st": {"sub": "Zr8bN2kW5qT1vY4xC7fH0jM3pS6uA9dG2lE5oI8rU1w"},
        "xms_tcdt": 1600000000
    })
}

/// A compact JWS of `payload` with an RS256 header and a signature of the size a
/// 2048-bit RSA key makes (256 bytes). Not a valid signature: nothing on the hot path
/// verifies it.
pub fn jwt(payload: &Value, seed: u64) -> String {
    let header = json!({"alg": "RS256", "kid": "c7e04465649ffa606557650c7e65f0a87ae00fe8", "typ": "JWT"});
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        pseudo_base64(342, seed)
    )
}

/// `len` base64url characters from a fixed pseudo-random sequence (reproducible runs).
fn pseudo_base64(len: usize, seed: u64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(ALPHABET[(state % 64) as usize])
        })
        .collect()
}

/// `session` sealed by the cookie store of a layer built from [`config`]: the ticket.
pub async fn sealed(session: &Session) -> String {
    let store = CookieStore::new(Arc::new(sealer()));
    match store.save(session).await {
        Ok(ticket) => ticket,
        Err(error) => unreachable!("sealing an in-memory session cannot fail: {error}"),
    }
}

/// The `Cookie` request header a browser sends for `ticket`: one cookie, or its chunks.
pub fn cookie_header(ticket: &str) -> String {
    cookies::split_cookie(COOKIE_NAME, ticket)
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready<T>(future: impl std::future::Future<Output = T>) -> T {
        match tokio::runtime::Builder::new_current_thread().build() {
            Ok(runtime) => runtime.block_on(future),
            Err(error) => panic!("runtime: {error}"),
        }
    }

    #[test]
    fn cookies_have_realistic_sizes() {
        let plain = ready(sealed(&google_session()));
        assert!((600..1100).contains(&plain.len()), "a Google login's cookie: {} bytes", plain.len());
        assert!(!cookie_header(&plain).contains(".0="), "fits one cookie");

        let chunked = ready(sealed(&google_session_with_tokens()));
        assert!(chunked.len() > cookies::CHUNK_SIZE, "{} bytes", chunked.len());
        assert!(cookie_header(&chunked).contains("auth_session.1="), "split into chunks");
    }

    #[test]
    fn the_config_opens_what_the_fixtures_seal() {
        let config = config(true);
        assert!(config.expose_tokens.id && config.expose_tokens.access);
        let ticket = ready(sealed(&google_session()));
        let opened = ready(CookieStore::new(Arc::new(sealer())).load(&ticket));
        assert!(matches!(opened, Ok(Some(_))));
    }
}
