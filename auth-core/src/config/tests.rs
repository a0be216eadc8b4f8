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

fn with(extra: &str) -> Result<AuthConfig, ConfigError> {
    parse(&format!(
        "[auth]\nredirect_uri = \"https://app.example/oauth2callback\"\ncookie_secret = \"{SECRET}\"\n\
         client_id = \"id\"\nclient_secret = \"s\"\n\
         server_metadata_url = \"https://i.example/.well-known/openid-configuration\"\n{extra}\n"
    ))
}

fn invalid(extra: &str) -> (String, String) {
    match with(extra) {
        Err(err @ ConfigError::Invalid { .. }) => {
            let ConfigError::Invalid { ref key, .. } = err else { unreachable!() };
            (key.clone(), err.to_string())
        }
        other => panic!("expected an invalid key for {extra:?}, got {other:?}"),
    }
}

#[test]
fn session_keys_have_streamlit_like_defaults() {
    let config = with("").expect("valid");
    assert_eq!(config.idle_timeout_secs, None);
    assert!(!config.end_with_id_token);
    assert_eq!(config.cookie_path, "/");
    assert_eq!(config.cookie_domain, None);
    assert_eq!(config.refresh_margin_secs, DEFAULT_REFRESH_MARGIN_SECS);
    assert_eq!(config.cookie_budget_bytes, DEFAULT_COOKIE_BUDGET_BYTES);
    assert_eq!(config.keep_tokens, KeepTokens::ALL);
    assert!(matches!(config.session_store, SessionStoreConfig::Cookie));
    assert_eq!(config.cookie_prefix(), "__Host-", "https, Path=/, no Domain");
}

#[test]
fn session_keys_are_read() {
    let config = with(
        "idle_timeout_secs = 1800\nend_with_id_token = true\ncookie_path = \"/app\"\ncookie_domain = \".App.Example\"\n\
         refresh_margin_secs = 0\ncookie_budget_bytes = 8000\nkeep_tokens = [\"id\", \"refresh\"]\n\
         session_store = \"rediss://:pw@redis.example:6380/2\"",
    )
    .expect("valid");
    assert_eq!(config.idle_timeout_secs, Some(1800));
    assert!(config.end_with_id_token);
    assert_eq!(config.cookie_path, "/app");
    assert_eq!(config.cookie_domain.as_deref(), Some("app.example"));
    assert_eq!(config.refresh_margin_secs, 0);
    assert_eq!(config.cookie_budget_bytes, 8000);
    assert_eq!(config.keep_tokens, KeepTokens { id: true, access: false, refresh: true });
    let SessionStoreConfig::Redis(url) = &config.session_store else { panic!("a Redis store") };
    assert_eq!(url.expose(), "rediss://:pw@redis.example:6380/2");
    assert!(!format!("{config:?}").contains(":pw@"), "Debug hides the Redis password");
    assert_eq!(config.cookie_prefix(), "__Secure-", "a Domain or another path rules out __Host-");
    assert!(matches!(with("session_store = \"memory\"").map(|c| c.session_store), Ok(SessionStoreConfig::Memory)));
    assert!(matches!(with("session_store = \"cookie\"").map(|c| c.session_store), Ok(SessionStoreConfig::Cookie)));
    let plain = parse(&format!(
        "[auth]\nredirect_uri = \"http://localhost:3000/cb\"\ncookie_secret = \"{SECRET}\"\n[auth.google]\nclient_id = \"g\"\nclient_secret = \"s\"\n"
    ))
    .expect("valid");
    assert_eq!(plain.cookie_prefix(), "", "no prefix without https");
}

#[test]
fn session_key_errors_name_the_key_and_the_fix() {
    for (extra, key, hint) in [
        ("idle_timeout_secs = 0", "auth.idle_timeout_secs", "remove it"),
        ("idle_timeout_secs = \"soon\"", "auth.idle_timeout_secs", "whole number of seconds"),
        ("end_with_id_token = \"yes\"", "auth.end_with_id_token", "true"),
        ("cookie_path = \"app\"", "auth.cookie_path", "\"/\""),
        ("cookie_path = \"/a;b\"", "auth.cookie_path", "';'"),
        ("cookie_domain = \"other.example\"", "auth.cookie_domain", "parent domains"),
        ("cookie_domain = \"ple.example\"", "auth.cookie_domain", "parent domains"),
        ("cookie_domain = \"bad domain\"", "auth.cookie_domain", "example.com"),
        ("cookie_budget_bytes = -1", "auth.cookie_budget_bytes", "whole number of bytes"),
        ("keep_tokens = [\"id\", \"session\"]", "auth.keep_tokens", "\"refresh\""),
        ("expose_tokens = \"access\"\nkeep_tokens = [\"id\"]", "auth.keep_tokens", "expose_tokens"),
        ("session_store = \"postgres://db\"", "auth.session_store", "redis://"),
        ("session_store = \"disk\"", "auth.session_store", "\"memory\""),
        ("cookie_name = \"__Host-s\"\ncookie_domain = \"app.example\"", "auth.cookie_name", "remove the prefix"),
    ] {
        let (got, message) = invalid(extra);
        assert_eq!(got, key, "{extra}: {message}");
        assert!(message.contains(hint), "{extra}: {message}");
    }
    let (_, message) = invalid("session_store = \"mysql://root:hunter2@db\"");
    assert!(!message.contains("hunter2"), "the URL is never echoed: {message}");
    let http = parse(&format!(
        "[auth]\nredirect_uri = \"http://localhost:3000/cb\"\ncookie_secret = \"{SECRET}\"\ncookie_name = \"__Secure-s\"\n"
    ));
    assert!(
        matches!(&http, Err(ConfigError::Invalid { key, .. }) if key == "auth.cookie_name"),
        "__Secure- needs https: {http:?}"
    );
}

#[test]
fn cookie_overflow_is_warn_or_store_and_store_needs_a_budget() {
    assert_eq!(with("").map(|c| c.cookie_overflow).ok(), Some(CookieOverflow::Warn), "the default");
    assert_eq!(with("cookie_overflow = \"warn\"").map(|c| c.cookie_overflow).ok(), Some(CookieOverflow::Warn));
    assert_eq!(with("cookie_overflow = \"store\"").map(|c| c.cookie_overflow).ok(), Some(CookieOverflow::Store));
    // Sessions already on the server: nothing overflows, and nothing is wrong.
    let server = with("cookie_overflow = \"store\"\nsession_store = \"memory\"").expect("valid");
    assert_eq!(server.cookie_overflow, CookieOverflow::Store);

    for bad in ["cookie_overflow = \"redis\"", "cookie_overflow = \"Store \"", "cookie_overflow = true"] {
        let (key, message) = invalid(bad);
        assert_eq!(key, "auth.cookie_overflow", "{bad}: {message}");
        assert!(message.contains("\"warn\"") && message.contains("\"store\""), "names the values: {message}");
    }
    let (key, message) = invalid("cookie_overflow = \"store\"\ncookie_budget_bytes = 0");
    assert_eq!(key, "auth.cookie_overflow", "{message}");
    assert!(message.contains("auth.cookie_budget_bytes") && message.contains("is 0"), "names both keys: {message}");
    let in_code = validated(|c| {
        c.cookie_overflow = CookieOverflow::Store;
        c.cookie_budget_bytes = 0;
    });
    assert!(
        matches!(in_code, Err(ConfigError::Invalid { ref key, .. }) if key == "auth.cookie_overflow"),
        "{in_code:?}"
    );
    validated(|c| c.cookie_overflow = CookieOverflow::Store).expect("with the default budget");
}

#[test]
fn keep_tokens_drops_what_it_does_not_keep() {
    use crate::TokenSet;
    let tokens = TokenSet {
        access_token: Some("a".into()),
        id_token: Some("i".into()),
        refresh_token: Some("r".into()),
        expires_at: Some(1),
        scope: Some("openid".into()),
        dpop_key: Some("ES256.k".into()),
    };
    assert_eq!(KeepTokens::ALL.apply(tokens.clone()), tokens);
    assert_eq!(KeepTokens { id: true, access: false, refresh: true }.apply(tokens.clone()).dpop_key, tokens.dpop_key);
    let none = KeepTokens::NONE.apply(tokens.clone());
    assert_eq!((none.access_token, none.id_token, none.refresh_token, none.expires_at), (None, None, None, None));
    assert_eq!(none.scope.as_deref(), Some("openid"));
    assert_eq!(none.dpop_key, None, "a key without a token it binds is dropped");
    let id = KeepTokens { id: true, access: false, refresh: false }.apply(tokens);
    assert_eq!(id.id_token.as_deref(), Some("i"));
    assert_eq!(id.access_token, None);
}

#[test]
fn misspelt_keys_are_named_with_a_suggestion() {
    let base = format!("[auth]\nredirect_uri = \"http://localhost:3000/cb\"\ncookie_secret = \"{SECRET}\"\n");
    let message = |text: &str| parse(text).err().map(|e| e.to_string()).unwrap_or_default();

    let m = message(&format!("{base}[auth.google]\nclient_id = \"g\"\nclient_secert = \"s\"\n"));
    assert!(m.contains("`auth.google.client_secert` is not a known key (did you mean `client_secret`?)"), "{m}");
    assert!(!m.contains("missing"), "not reported as the key it should have been: {m}");

    let m = message(&format!("{base}sesion_store = \"memory\"\n"));
    assert!(m.contains("`auth.sesion_store` is not a known key (did you mean `session_store`?)"), "{m}");
    let m = message(&format!("{base}client_id = \"i\"\nclient_secret = \"s\"\nsesion_store = \"memory\"\n"));
    assert!(m.contains("(did you mean `session_store`?)"), "also beside a default provider: {m}");

    let m = message(&format!("{base}frobnicate = true\n"));
    assert!(m.contains("`auth.frobnicate` is not a known key"), "nothing reads it, so it is refused: {m}");
    // Preset keys are the provider code's to judge: they pass here.
    assert!(
        parse(&format!(
            "{base}[auth.google]\nclient_id = \"g\"\nclient_secret = \"s\"\nhosted_domains = [\"a.example\"]\n"
        ))
        .is_ok()
    );
}

#[test]
fn named_policies_are_read_from_the_config() {
    let base = format!("[auth]\nredirect_uri = \"http://localhost:3000/cb\"\ncookie_secret = \"{SECRET}\"\n");
    let config = parse(&format!(
        "{base}[auth.policies]\nadmin = {{ claim_contains = {{ claim = \"groups\", value = \"admins\" }} }}\n\
         anyone = \"logged_in\"\nfresh = {{ all = [{{ max_age = 300 }}, {{ email_domain = [\"example.com\"] }}] }}\n"
    ))
    .expect("valid");
    assert_eq!(config.providers.len(), 0, "policies is not a provider section");
    assert_eq!(config.policy("admin").map(|p| p.describe()).as_deref(), Some("membership in group \"admins\""));
    assert!(config.policy("anyone").is_some() && config.policy("fresh").is_some() && config.policy("nope").is_none());
    let (key, message) = match parse(&format!("{base}[auth.policies]\nadmin = {{ group = \"admins\" }}\n")) {
        Err(err @ ConfigError::Invalid { .. }) => {
            let ConfigError::Invalid { ref key, .. } = err else { unreachable!() };
            (key.clone(), err.to_string())
        }
        other => panic!("expected an error, got {other:?}"),
    };
    assert_eq!(key, "auth.policies.admin");
    assert!(message.contains("claim_contains"), "{message}");
}

/// A valid config built in code, changed by `edit`, then validated.
fn validated(edit: impl FnOnce(&mut AuthConfig)) -> Result<(), ConfigError> {
    let mut config = AuthConfig::new("https://app.example/oauth2callback", Secret::new(SECRET));
    edit(&mut config);
    config.validate()
}

#[test]
fn absurd_numbers_are_errors_naming_the_key_and_the_range() {
    type Edit = fn(&mut AuthConfig, u64);
    let keys: [(&str, Edit, &[u64]); 8] = [
        ("auth.leeway_secs", |c, v| c.leeway_secs = v, &[3601, u64::MAX]),
        ("auth.http_timeout_secs", |c, v| c.http_timeout_secs = v, &[0, 301, u64::MAX]),
        ("auth.session_lifetime_secs", |c, v| c.session_lifetime_secs = v, &[0, 10 * 365 * 86400 + 1, u64::MAX]),
        ("auth.idle_timeout_secs", |c, v| c.idle_timeout_secs = Some(v), &[0, 10 * 365 * 86400 + 1, u64::MAX]),
        ("auth.refresh_margin_secs", |c, v| c.refresh_margin_secs = v, &[86401, u64::MAX]),
        ("auth.cookie_budget_bytes", |c, v| c.cookie_budget_bytes = v, &[1024 * 1024 + 1, u64::MAX]),
        ("auth.metadata_ttl_secs", |c, v| c.metadata_ttl_secs = v, &[0, 59, 30 * 86400 + 1, u64::MAX]),
        ("auth.session_cache_entries", |c, v| c.session_cache_entries = v, &[10_000_001, u64::MAX]),
    ];
    for (key, edit, absurd) in keys {
        for &value in absurd {
            match validated(|c| edit(c, value)) {
                Err(err @ ConfigError::Invalid { .. }) => {
                    let message = err.to_string();
                    let ConfigError::Invalid { key: got, .. } = err else { unreachable!() };
                    assert_eq!(got, key, "{value}: {message}");
                    if value != 0 || key != "auth.idle_timeout_secs" {
                        assert!(message.contains(&format!("is {value}, outside the allowed ")), "{message}");
                        assert!(message.contains("..="), "names the range: {message}");
                    }
                }
                other => panic!("{key} = {value} should be refused, got {other:?}"),
            }
        }
    }
    // Read from a file (TOML integers end at i64::MAX) the same checks apply.
    for key in ["leeway_secs", "http_timeout_secs", "session_lifetime_secs", "idle_timeout_secs", "metadata_ttl_secs"] {
        let (got, message) = invalid(&format!("{key} = {}", i64::MAX));
        assert_eq!(got, format!("auth.{key}"), "{message}");
    }
    let (got, message) = invalid("http_timeout_secs = 0");
    assert_eq!(got, "auth.http_timeout_secs", "0 is refused, not silently raised: {message}");
    let (got, message) = invalid("metadata_ttl_secs = 1");
    assert_eq!(got, "auth.metadata_ttl_secs", "{message}");
    assert!(message.contains("60..=2592000"), "{message}");
}

#[test]
fn defaults_and_typical_numbers_pass() {
    validated(|_| {}).expect("the defaults");
    let config = with("").expect("the defaults from a file");
    assert_eq!(config.metadata_ttl_secs, DEFAULT_METADATA_TTL_SECS);
    validated(|c| {
        c.leeway_secs = 0;
        c.http_timeout_secs = 1;
        c.session_lifetime_secs = 1;
        c.idle_timeout_secs = Some(1);
        c.refresh_margin_secs = 0;
        c.cookie_budget_bytes = 0;
        c.metadata_ttl_secs = 60;
        c.session_cache_entries = 0;
    })
    .expect("the lowest values");
    validated(|c| {
        c.leeway_secs = 3600;
        c.http_timeout_secs = 300;
        c.session_lifetime_secs = 10 * 365 * 86400;
        c.idle_timeout_secs = Some(10 * 365 * 86400);
        c.refresh_margin_secs = 86400;
        c.cookie_budget_bytes = 1024 * 1024;
        c.metadata_ttl_secs = 30 * 86400;
        c.session_cache_entries = 10_000_000;
    })
    .expect("the highest values");
    let config = with(
        "leeway_secs = 30\nhttp_timeout_secs = 15\nsession_lifetime_secs = 86400\nidle_timeout_secs = 1800\n\
         refresh_margin_secs = 120\ncookie_budget_bytes = 8192\nmetadata_ttl_secs = 3600",
    )
    .expect("typical values");
    assert_eq!(config.metadata_ttl_secs, 3600);
    let config = with("metadata_ttl_secs = \"600\"").expect("an environment override arrives as a string");
    assert_eq!(config.metadata_ttl_secs, 600);
}

#[test]
fn claim_lists_are_read_and_default_to_every_claim() {
    let config = with("").expect("the defaults");
    let default = &config.providers["default"];
    assert_eq!((&default.keep_claims, &default.drop_claims), (&None, &None));
    assert!(!default.filters_claims());
    assert!(default.keeps_claim("groups") && default.keeps_claim("anything"), "every claim by default");

    let config = with("drop_claims = [\"groups\", \"wids\"]").expect("valid");
    let default = &config.providers["default"];
    assert_eq!(default.drop_claims, Some(vec!["groups".into(), "wids".into()]));
    assert!(!default.keeps_claim("groups") && default.keeps_claim("email"));

    let config = with("keep_claims = \"email, name\"").expect("comma-separated, as from the environment");
    let default = &config.providers["default"];
    assert_eq!(default.keep_claims, Some(vec!["email".into(), "name".into()]));
    assert!(default.keeps_claim("email") && !default.keeps_claim("groups") && !default.keeps_claim("picture"));
    for needed in ["iss", "sub", "sid", "exp", "auth_time", "acr", "tid", "login_hint", "groups_overage"] {
        assert!(default.keeps_claim(needed), "the layer needs {needed}");
    }

    let config = with("keep_claims = []").expect("only what the layer needs");
    let default = &config.providers["default"];
    assert!(default.keeps_claim("sid") && !default.keeps_claim("email"));
    let mut claims = serde_json::Map::new();
    for claim in ["sub", "iss", "exp", "aud", "nonce", "email", "groups"] {
        claims.insert(claim.into(), Value::Bool(true));
    }
    default.retain_claims(&mut claims);
    assert_eq!(claims.keys().collect::<Vec<_>>(), ["exp", "iss", "sub"]);

    let config = parse(&format!(
        "[auth]\nredirect_uri = \"http://localhost:3000/cb\"\ncookie_secret = \"{SECRET}\"\n\
         [auth.work]\nkind = \"microsoft\"\nclient_id = \"m\"\nclient_secret = \"s\"\n\
         keep_claims = [\"email\", \"https://example.com/claims/roles\"]\n"
    ))
    .expect("unknown claim names are fine: providers vary");
    let work = &config.providers["work"];
    assert!(work.keeps_claim("https://example.com/claims/roles") && !work.extra.contains_key("keep_claims"));
}

#[test]
fn claim_list_errors_name_the_keys_and_the_fix() {
    for (extra, key, hints) in [
        (
            "keep_claims = [\"email\"]\ndrop_claims = [\"groups\"]",
            "auth.drop_claims",
            &["is set along with keep_claims", "remove drop_claims"][..],
        ),
        ("keep_claims = []\ndrop_claims = []", "auth.drop_claims", &["is set along with keep_claims"]),
        ("drop_claims = \"groups\"\nkeep_claims = \"email\"", "auth.drop_claims", &["remove keep_claims"]),
        ("keep_claims = [\"email\", 3]", "auth.keep_claims", &["holds 3, which is not a string"]),
        ("drop_claims = { groups = true }", "auth.drop_claims", &["is not a list of claim names"]),
        ("drop_claims = [\"\"]", "auth.drop_claims", &["holds \"\", which is not a claim name"]),
        ("keep_claims = [\" email\"]", "auth.keep_claims", &["holds \" email\""]),
        (
            "drop_claims = [\"groups\", \"sid\"]",
            "auth.drop_claims",
            &["lists \"sid\", which every session keeps: back-channel logout", "remove \"sid\" from drop_claims"],
        ),
        // A rule of the provider needs the claim: both keys are named.
        (
            "allowed_groups = [\"admins\"]\ndrop_claims = [\"groups\"]",
            "auth.drop_claims",
            &["lists \"groups\", which `auth.allowed_groups` reads", "or remove allowed_groups"],
        ),
        (
            "allowed_groups = [\"admins\"]\nkeep_claims = [\"email\", \"name\"]",
            "auth.keep_claims",
            &["lacks \"groups\", which `auth.allowed_groups` reads", "add \"groups\" to keep_claims"],
        ),
        (
            "allowed_email_domains = [\"example.com\"]\nkeep_claims = [\"email\"]",
            "auth.keep_claims",
            &["lacks \"email_verified\", which `auth.allowed_email_domains` reads"],
        ),
        // A named policy reads the claim.
        (
            "drop_claims = [\"groups\"]\n[auth.policies]\nadmin = { claim_contains = { claim = \"groups\", value = \"admins\" } }",
            "auth.drop_claims",
            &["lists \"groups\", which `auth.policies.admin` reads", "or change the policy"],
        ),
        (
            "keep_claims = [\"email\"]\n[auth.policies]\nstaff = { not = { claim_equals = { claim = \"hd\", value = \"x.example\" } } }",
            "auth.keep_claims",
            &["lacks \"hd\", which `auth.policies.staff` reads", "under `not`"],
        ),
    ] {
        let (got, message) = invalid(extra);
        assert_eq!(got, key, "{extra}: {message}");
        for hint in hints {
            assert!(message.contains(hint), "{extra}: {hint:?} in {message}");
        }
    }
    let (key, message) = invalid("drop_claim = [\"groups\"]");
    assert_eq!(key, "auth.drop_claim");
    assert!(message.contains("(did you mean `drop_claims`?)"), "{message}");
    // Rules and policies whose claims are kept pass.
    with("allowed_groups = [\"admins\"]\nkeep_claims = [\"groups\", \"email\"]").expect("groups is kept");
    with("allowed_groups = [\"admins\"]\ndrop_claims = [\"wids\"]").expect("groups is not dropped");
    with("keep_claims = [\"email\"]\n[auth.policies]\nfresh = { all = [{ max_age = 300 }, { acr = [\"mfa\"] }] }")
        .expect("auth_time and acr are always kept");
    let google = parse(&format!(
        "[auth]\nredirect_uri = \"http://localhost:3000/cb\"\ncookie_secret = \"{SECRET}\"\n\
         [auth.google]\nclient_id = \"g\"\nclient_secret = \"s\"\nhosted_domains = [\"example.com\"]\nkeep_claims = [\"email\"]\n"
    ));
    let message = google.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.contains("`auth.google.keep_claims` lacks \"hd\", which `auth.google.hosted_domains`"),
        "{message}"
    );
    // A config built in code meets the same rules.
    let corp =
        ProviderConfig::new("corp", ProviderKind::Oidc, "app", "https://idp.example/.well-known/openid-configuration")
            .with_client_secret(Secret::new("s"))
            .with_keep_claims(["email"]);
    assert!(corp.clone().validate("in code").is_ok());
    let both = corp.clone().with_drop_claims(["groups"]).validate("in code").expect_err("both set").to_string();
    assert!(both.contains("`auth.corp.drop_claims` is set along with keep_claims"), "{both}");
    let rule = corp
        .with_extra("allowed_groups", serde_json::json!(["admins"]))
        .validate("in code")
        .expect_err("groups not kept");
    assert!(rule.to_string().contains("`auth.corp.keep_claims` lacks \"groups\""), "{rule}");
}

/// A config with one provider section `corp` (client secret `s`) ending with `extra`.
fn corp_section(extra: &str) -> String {
    format!(
        "[auth]\nredirect_uri = \"http://localhost:3000/oauth2callback\"\ncookie_secret = \"{SECRET}\"\n\
         [auth.corp]\nclient_id = \"id\"\nclient_secret = \"s\"\n\
         server_metadata_url = \"https://idp.example/.well-known/openid-configuration\"\n{extra}"
    )
}

/// The section `corp` of [`corp_section`]`(extra)`, which must parse.
fn corp(extra: &str) -> ProviderConfig {
    parse(&corp_section(extra)).expect("valid config").providers.remove("corp").expect("corp")
}

#[test]
fn use_par_and_revoke_on_logout_are_typed_and_checked() {
    let section = corp_section;
    let defaults = corp("");
    assert_eq!((defaults.use_par, defaults.revoke_on_logout), (UsePar::Auto, true));
    assert_eq!(corp("use_par = \"auto\"").use_par, UsePar::Auto);
    assert_eq!(corp("use_par = true").use_par, UsePar::Always);
    assert_eq!(corp("use_par = false").use_par, UsePar::Never);
    assert!(!corp("revoke_on_logout = false").revoke_on_logout);
    match parse(&section("use_par = \"always\"")) {
        Err(ConfigError::Invalid { key, problem, fix, .. }) => {
            assert_eq!(key, "auth.corp.use_par");
            assert!(
                problem.contains("\"always\"") && fix.contains("\"auto\"") && fix.contains("true or false"),
                "{fix}"
            );
        }
        other => panic!("expected an invalid key, got {other:?}"),
    }
    assert_eq!(invalid_key(&section("revoke_on_logout = \"yes\"")), "auth.corp.revoke_on_logout");
}

#[test]
fn client_keys_are_read_and_checked() {
    let publishing = |extra: &str| {
        format!(
            "[auth]\nredirect_uri = \"http://localhost:3000/oauth2callback\"\ncookie_secret = \"{SECRET}\"\n\
             publish_client_jwks = true\n\
             [auth.corp]\nclient_id = \"id\"\n\
             server_metadata_url = \"https://idp.example/.well-known/openid-configuration\"\n{extra}"
        )
    };
    let section = |extra: &str| {
        format!(
            "[auth]\nredirect_uri = \"http://localhost:3000/oauth2callback\"\ncookie_secret = \"{SECRET}\"\n\
             [auth.corp]\nclient_id = \"id\"\n\
             server_metadata_url = \"https://idp.example/.well-known/openid-configuration\"\n{extra}"
        )
    };
    let config = parse(&publishing(
        "token_endpoint_auth_method = \"private_key_jwt\"\n\
         client_private_key_file = [\"new.pem\", \"old.pem\"]\nclient_key_id = \"k1\"\n\
         client_certificate_file = \"cert.pem\"\nclient_assertion_audience = \"token_endpoint\"",
    ))
    .expect("private_key_jwt needs no client_secret");
    assert!(config.publish_client_jwks);
    let corp = &config.providers["corp"];
    assert_eq!(corp.token_endpoint_auth_method, TokenAuthMethod::PrivateKeyJwt);
    assert_eq!(corp.client_private_key_files, [std::path::PathBuf::from("new.pem"), "old.pem".into()]);
    assert_eq!(corp.client_key_ids, ["k1"]);
    assert_eq!(corp.client_certificate_file.as_deref(), Some(std::path::Path::new("cert.pem")));
    assert_eq!(corp.client_assertion_audience, ClientAssertionAudience::TokenEndpoint);
    let one = parse(&section("token_endpoint_auth_method = \"private_key_jwt\"\nclient_private_key_file = \"k.pem\""))
        .expect("one key");
    assert_eq!(one.providers["corp"].client_assertion_audience, ClientAssertionAudience::Issuer);
    assert!(!with("").expect("valid").publish_client_jwks, "off by default");
    let (key, empty) = invalid("publish_client_jwks = true");
    assert_eq!(key, "auth.publish_client_jwks");
    assert!(empty.contains("no provider uses token_endpoint_auth_method = \"private_key_jwt\""), "{empty}");
    let microsoft = ProviderConfig::new("m", ProviderKind::Microsoft, "id", "https://login.microsoftonline.com/x");
    assert_eq!(microsoft.client_assertion_audience, ClientAssertionAudience::TokenEndpoint);

    let secret_jwt = parse(&section("token_endpoint_auth_method = \"client_secret_jwt\"\nclient_secret = \"s\""))
        .expect("client_secret_jwt");
    assert_eq!(secret_jwt.providers["corp"].token_endpoint_auth_method, TokenAuthMethod::ClientSecretJwt);

    let error = |extra: &str| match parse(&section(extra)) {
        Err(err @ ConfigError::Invalid { .. }) => err.to_string(),
        other => panic!("expected an invalid key for {extra:?}, got {other:?}"),
    };
    let missing = error("token_endpoint_auth_method = \"private_key_jwt\"");
    assert!(missing.contains("`auth.corp.client_private_key_file` is missing") && missing.contains("PEM"), "{missing}");
    let unused = error("client_secret = \"s\"\nclient_private_key_file = \"k.pem\"");
    assert!(unused.contains("`auth.corp.client_private_key_file`") && unused.contains("private_key_jwt"), "{unused}");
    let no_secret = error("token_endpoint_auth_method = \"client_secret_jwt\"");
    assert!(no_secret.contains("`auth.corp.client_secret`"), "{no_secret}");
    let kids = error(
        "token_endpoint_auth_method = \"private_key_jwt\"\nclient_private_key_file = \"k.pem\"\nclient_key_id = [\"a\", \"b\"]",
    );
    assert!(kids.contains("`auth.corp.client_key_id` names 2 kids for 1 key files"), "{kids}");
    let audience = error(
        "token_endpoint_auth_method = \"private_key_jwt\"\nclient_private_key_file = \"k.pem\"\nclient_assertion_audience = \"aud\"",
    );
    assert!(audience.contains("\"issuer\" or \"token_endpoint\""), "{audience}");
    let alg = error(
        "token_endpoint_auth_method = \"private_key_jwt\"\nclient_private_key_file = \"k.pem\"\ntoken_endpoint_auth_signing_alg = \"HS256\"",
    );
    assert!(alg.contains("`auth.corp.token_endpoint_auth_signing_alg` is \"HS256\"") && alg.contains("PS256"), "{alg}");
    let method = error("token_endpoint_auth_method = \"tls_client_auth\"\nclient_secret = \"s\"");
    assert!(method.contains("\"private_key_jwt\"") && method.contains("\"client_secret_jwt\""), "{method}");
}

#[test]
fn response_mode_is_typed_and_not_a_client_kwarg() {
    let section = corp_section;
    assert_eq!(corp("").response_mode, crate::ResponseMode::Query);
    assert_eq!(corp("response_mode = \"query\"").response_mode, crate::ResponseMode::Query);
    assert_eq!(corp("response_mode = \"form_post\"").response_mode, crate::ResponseMode::FormPost);
    assert_eq!(invalid_key(&section("response_mode = \"fragment\"")), "auth.corp.response_mode");
    match parse(&section("client_kwargs = { response_mode = \"form_post\" }")) {
        Err(ConfigError::Invalid { key, fix, .. }) => {
            assert_eq!(key, "auth.corp.client_kwargs.response_mode");
            assert!(fix.contains("auth.corp.response_mode = \"form_post\""), "{fix}");
        }
        other => panic!("expected an invalid key, got {other:?}"),
    }
}

#[test]
fn dpop_keys_are_read_and_refused_by_name() {
    use crate::{DpopAlg, DpopMode};
    let base = format!("[auth]\nredirect_uri = \"http://localhost:3000/cb\"\ncookie_secret = \"{SECRET}\"\n");
    let section = "[auth.idp]\nclient_id = \"c\"\nclient_secret = \"s\"\nserver_metadata_url = \"https://idp.example/.well-known/openid-configuration\"\n";
    let provider = |extra: &str| parse(&format!("{base}{section}{extra}")).map(|c| c.providers["idp"].clone());
    let off = provider("").expect("parses");
    assert_eq!((off.dpop, off.dpop_alg), (DpopMode::Off, DpopAlg::Es256));
    assert_eq!(provider("dpop = true\n").expect("parses").dpop, DpopMode::Required);
    assert_eq!(provider("dpop = \"optional\"\n").expect("parses").dpop, DpopMode::Optional);
    assert_eq!(provider("dpop = true\ndpop_alg = \"EdDSA\"\n").expect("parses").dpop_alg, DpopAlg::EdDsa);
    let message = provider("dpop = \"yes\"\n").err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("auth.idp.dpop") && message.contains("optional"), "{message}");
    let message = provider("dpop_alg = \"RS256\"\n").err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("auth.idp.dpop_alg") && message.contains("ES256"), "{message}");
}

#[test]
fn fapi2_profile_requires_what_it_names() {
    let base = format!("[auth]\nredirect_uri = \"http://localhost:3000/cb\"\ncookie_secret = \"{SECRET}\"\n");
    let fapi = "[auth.bank]\nclient_id = \"c\"\nprofile = \"fapi2\"\n\
                server_metadata_url = \"https://bank.example/.well-known/openid-configuration\"\n\
                token_endpoint_auth_method = \"private_key_jwt\"\nclient_private_key_file = \"k.pem\"\ndpop = true\n";
    let provider = |extra: &str| parse(&format!("{base}{fapi}{extra}")).map(|c| c.providers["bank"].clone());
    let bank = provider("").expect("a FAPI 2.0 section");
    assert_eq!(bank.profile, Some(crate::Profile::Fapi2));
    assert_eq!(bank.use_par, UsePar::Always, "fapi2 pushes every request by default");
    assert_eq!(provider("use_par = true\n").expect("explicit true").use_par, UsePar::Always);
    assert_eq!(provider("use_par = \"auto\"\n").expect("auto is kept").use_par, UsePar::Auto);
    assert_eq!(
        provider("response_mode = \"form_post\"\n").expect("any response mode").response_mode,
        crate::ResponseMode::FormPost
    );
    let plain = "[auth.plain]\nclient_id = \"c\"\nclient_secret = \"s\"\n\
                 server_metadata_url = \"https://idp.example/.well-known/openid-configuration\"\n";
    assert_eq!(parse(&format!("{base}{plain}")).expect("no profile").providers["plain"].profile, None);

    let refused = |text: String| match parse(&text) {
        Err(ConfigError::Invalid { key, problem, fix, .. }) => (key, format!("{problem} / {fix}")),
        other => panic!("expected an invalid key, got {other:?}"),
    };
    let (key, message) = refused(format!("{base}{plain}profile = \"fapi1\"\n"));
    assert_eq!(key, "auth.plain.profile");
    assert!(message.contains("\"fapi1\"") && message.contains("\"fapi2\""), "{message}");

    let without = |drop: &str, add: &str| {
        let section: String = fapi.lines().filter(|line| !line.starts_with(drop)).map(|l| format!("{l}\n")).collect();
        refused(format!("{base}{section}{add}"))
    };
    let (key, message) = without("token_endpoint_auth_method", "client_secret = \"s\"\n");
    assert_eq!(key, "auth.bank.token_endpoint_auth_method");
    assert!(message.contains("\"client_secret_basic\"") && message.contains("fapi2 requires"), "{message}");
    let (key, message) = without(
        "token_endpoint_auth_method",
        "token_endpoint_auth_method = \"client_secret_jwt\"\nclient_secret = \"s\"\n",
    );
    assert_eq!(key, "auth.bank.token_endpoint_auth_method", "{message}");
    let (key, message) = without("\n", "client_secret = \"s\"\n");
    assert_eq!(key, "auth.bank.client_secret");
    assert!(message.contains("shared secret") && message.contains("fapi2"), "{message}");
    let (key, message) = without("\n", "use_par = false\n");
    assert_eq!(key, "auth.bank.use_par");
    assert!(message.contains("fapi2 requires pushed authorization requests"), "{message}");
    let (key, message) = without("dpop", "dpop = false\n");
    assert_eq!(key, "auth.bank.dpop");
    assert!(message.contains("is false") && message.contains("dpop = true"), "{message}");
    let (key, message) = without("dpop", "");
    assert_eq!(key, "auth.bank.dpop", "dpop defaults to false: {message}");
    let (key, message) = without("dpop", "dpop = \"optional\"\n");
    assert_eq!(key, "auth.bank.dpop");
    assert!(message.contains("\"optional\""), "{message}");
    // PKCE is S256 for every login; no key can ask for plain.
    let (key, _) = without("\n", "client_kwargs = { code_challenge_method = \"plain\" }\n");
    assert_eq!(key, "auth.bank.client_kwargs.code_challenge_method");

    // Built in code: with_profile turns use_par "auto" into true; validate judges the rest.
    let code =
        ProviderConfig::new("bank", ProviderKind::Oidc, "c", "https://bank.example/.well-known/openid-configuration")
            .with_client_private_key_file("k.pem")
            .with_profile(Some(crate::Profile::Fapi2));
    assert_eq!(code.use_par, UsePar::Always);
    let error = code.clone().validate("in code").expect_err("dpop is off");
    assert!(error.to_string().contains("`auth.bank.dpop`"), "{error}");
    let mut ok = code;
    ok.dpop = crate::DpopMode::Required;
    ok.validate("in code").expect("a FAPI 2.0 section built in code");
}
