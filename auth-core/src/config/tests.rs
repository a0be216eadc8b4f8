use super::*;

const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn parse(text: &str) -> Result<AuthConfig, ConfigError> {
    AuthConfig::from_toml_str(text, "test.toml")
}

fn invalid_key(text: &str) -> String {
    match parse(text) {
        Err(ConfigError::Invalid { key, .. }) => key,
        other => panic!("expected an invalid key, got {other:?}"),
    }
}

#[test]
fn streamlit_config_with_default_and_named_providers() {
    let config = parse(&format!(
        r#"
[auth]
redirect_uri = "http://localhost:3000/oauth2callback"
cookie_secret = "{SECRET}"
client_id = "id"
client_secret = "secret"
server_metadata_url = "https://issuer.example/.well-known/openid-configuration"
client_kwargs = {{ prompt = "login", scope = "openid email" }}
expose_tokens = ["id", "access"]

[auth.google]
client_id = "gid"
client_secret = "gsecret"
server_metadata_url = "https://accounts.google.com/.well-known/openid-configuration"

[auth.microsoft]
client_id = "mid"
client_secret = "msecret"
server_metadata_url = "https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration"
"#
    ))
    .expect("valid config");
    assert_eq!(config.callback_path(), "/oauth2callback");
    assert_eq!(config.app_origin(), "http://localhost:3000");
    assert!(!config.secure_cookies());
    assert_eq!(config.providers.len(), 3);
    let default = &config.providers["default"];
    assert_eq!(default.kind, ProviderKind::Oidc);
    assert_eq!(default.scope(), "openid email");
    assert_eq!(default.client_kwargs["prompt"], "login");
    assert_eq!(config.providers["google"].kind, ProviderKind::Google);
    assert_eq!(config.providers["microsoft"].kind, ProviderKind::Microsoft);
    assert_eq!(config.expose_tokens, ExposeTokens { id: true, access: true });
    assert_eq!(config.session_lifetime_secs, DEFAULT_SESSION_LIFETIME_SECS);
    assert_eq!(config.post_logout_redirect_uri, "http://localhost:3000/");
    assert!(!format!("{config:?}").contains(SECRET), "Debug hides the cookie secret");
    assert!(!format!("{config:?}").contains("gsecret"), "Debug hides client secrets");
}

#[test]
fn short_cookie_secret_says_how_to_generate_one() {
    let err = parse(
        r#"[auth]
redirect_uri = "http://localhost:3000/cb"
cookie_secret = "short"
client_id = "id"
client_secret = "s"
server_metadata_url = "https://i.example/.well-known/openid-configuration""#,
    )
    .expect_err("short secret");
    let message = err.to_string();
    assert!(message.contains("test.toml"), "{message}");
    assert!(message.contains("auth.cookie_secret"), "{message}");
    assert!(message.contains("openssl rand"), "{message}");
    assert!(!message.contains("short\""), "the secret is not echoed: {message}");
}

#[test]
fn errors_name_the_key() {
    let base = format!("[auth]\nredirect_uri = \"http://localhost:3000/cb\"\ncookie_secret = \"{SECRET}\"\n");
    assert_eq!(parse(&base).expect("an app may bring its own providers").providers.len(), 0);
    assert_eq!(invalid_key("[other]\nx = 1"), "auth");
    assert_eq!(invalid_key(&format!("{base}[auth.google]\nclient_secret = \"s\"\n")), "auth.google.client_id");
    assert_eq!(
        invalid_key(&format!("{base}[auth.okta]\nclient_id = \"i\"\nclient_secret = \"s\"\n")),
        "auth.okta.server_metadata_url"
    );
    assert_eq!(invalid_key(&format!("{base}[auth.google]\nclient_id = \"i\"\n")), "auth.google.client_secret");
    assert_eq!(
        invalid_key(&format!(
            "{base}[auth.google]\nclient_id = \"i\"\nclient_secret = \"s\"\nclient_kwargs = {{ state = \"x\" }}\n"
        )),
        "auth.google.client_kwargs.state"
    );
    assert_eq!(
        invalid_key(&format!(
            "{base}expose_tokens = \"refresh\"\n[auth.google]\nclient_id = \"i\"\nclient_secret = \"s\"\n"
        )),
        "auth.expose_tokens"
    );
    assert_eq!(
        invalid_key(&format!("[auth]\nredirect_uri = \"/cb\"\ncookie_secret = \"{SECRET}\"\n")),
        "auth.redirect_uri"
    );
    assert_eq!(
        invalid_key(&format!(
            "{base}session_lifetime_secs = \"long\"\n[auth.google]\nclient_id = \"i\"\nclient_secret = \"s\"\n"
        )),
        "auth.session_lifetime_secs"
    );
}

#[test]
fn presets_fill_metadata_urls_and_public_clients_need_no_secret() {
    let config = parse(&format!(
        "[auth]\nredirect_uri = \"https://app.example/auth/cb\"\ncookie_secret = \"{SECRET}\"\n\
         [auth.google]\nclient_id = \"g\"\nclient_secret = \"s\"\n\
         [auth.work]\nkind = \"microsoft\"\ntenant = \"contoso.example\"\nclient_id = \"m\"\ntoken_endpoint_auth_method = \"none\"\n"
    ))
    .expect("valid");
    assert!(config.secure_cookies());
    assert_eq!(config.providers["google"].server_metadata_url, GOOGLE_METADATA_URL);
    let work = &config.providers["work"];
    assert_eq!(
        work.server_metadata_url,
        "https://login.microsoftonline.com/contoso.example/v2.0/.well-known/openid-configuration"
    );
    assert!(work.client_secret.is_none());
    assert_eq!(work.extra.get("tenant").and_then(Value::as_str), Some("contoso.example"));
}

#[test]
#[allow(unsafe_code)]
fn file_and_environment_overrides() {
    let dir = std::env::temp_dir().join(format!("auth-core-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("auth.toml");
    std::fs::write(
        &path,
        "[auth]\nredirect_uri = \"http://localhost:3000/cb\"\ncookie_secret = \"too short\"\n[auth.google]\nclient_id = \"g\"\nclient_secret = \"s\"\n",
    )
    .expect("write");
    let err = AuthConfig::from_file(&path).expect_err("short secret in the file");
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    // SAFETY of the test: no other test in this crate reads these variables.
    unsafe {
        std::env::set_var("AUTH__COOKIE_SECRET", SECRET);
        std::env::set_var("AUTH__GOOGLE__CLIENT_ID", "from-env");
    }
    let config = AuthConfig::from_file(&path);
    unsafe {
        std::env::remove_var("AUTH__COOKIE_SECRET");
        std::env::remove_var("AUTH__GOOGLE__CLIENT_ID");
    }
    let config = config.expect("env fixes the secret");
    assert_eq!(config.providers["google"].client_id, "from-env");
    let missing = AuthConfig::from_file(dir.join("nope.toml")).expect_err("missing file");
    assert!(missing.to_string().contains("does not exist"), "{missing}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn provider_tables_in_auth_belong_to_the_default_provider() {
    let config = parse(&format!(
        "[auth]\nredirect_uri = \"http://localhost:3000/cb\"\ncookie_secret = \"{SECRET}\"\n\
         client_id = \"id\"\nclient_secret = \"s\"\n\
         server_metadata_url = \"https://cognito-idp.eu-west-1.amazonaws.com/pool/.well-known/openid-configuration\"\n\
         logout_params = {{ logout_uri = \"http://localhost:3000/\" }}\nallowed_email_domains = [\"example.com\"]\n"
    ))
    .expect("valid");
    assert_eq!(config.providers.keys().collect::<Vec<_>>(), ["default"], "logout_params is not a provider section");
    let extra = &config.providers["default"].extra;
    assert_eq!(extra["logout_params"]["logout_uri"], "http://localhost:3000/");
    assert_eq!(extra["allowed_email_domains"][0], "example.com");
}
