//! Lifetime, `Max-Age`, path, domain and prefixes; secret rotation; the cookie budget; sizes.

use super::*;

// ------------------------------------------------------------------ lifetime, cookies

#[tokio::test]
async fn max_age_follows_the_lifetime_and_cookies_follow_path_and_domain() {
    let idp = idp().await;
    let app = Setup::new("session_lifetime_secs = 3600\ncookie_domain = \"127.0.0.1\"").start(&idp).await;
    let mut browser = Browser::new(&app);
    browser.login().await;
    let line = browser.set_cookie("auth_session").unwrap().to_owned();
    assert_eq!(max_age(&line), Some(3600), "{line}");
    for attribute in ["Path=/", "HttpOnly", "SameSite=Lax", "Domain=127.0.0.1"] {
        assert!(line.contains(attribute), "{attribute}: {line}");
    }
    assert!(!line.contains("Secure"), "http redirect_uri: {line}");
    assert!(browser.logged_in().await);

    // Default: Streamlit's 30 days.
    let app = Setup::new("").start(&idp).await;
    let mut browser = Browser::new(&app);
    browser.login().await;
    assert_eq!(max_age(browser.set_cookie("auth_session").unwrap()), Some(30 * 24 * 3600));
}

#[tokio::test]
async fn https_cookies_get_the_host_prefix_or_the_secure_one() {
    let idp = idp().await;
    let app = Setup::new("").origin("https://app.test").start(&idp).await;
    let mut browser = Browser::with_origin(&app, "https://app.test");
    let login = browser.get("/auth/login").await;
    assert_eq!(login.status(), StatusCode::FOUND);
    let pending = browser.set_cookie_starting("__Host-auth_pending_").unwrap().to_owned();
    assert!(pending.contains("Secure") && pending.contains("Path=/") && !pending.contains("Domain"), "{pending}");
    browser.jar.clear();
    browser.login().await;
    let session = browser.set_cookie("__Host-auth_session").unwrap();
    assert!(session.contains("; Secure") && session.contains("Path=/") && !session.contains("Domain="), "{session}");
    assert!(browser.jar.contains_key("__Host-auth_session") && !browser.jar.contains_key("auth_session"));
    assert!(browser.logged_in().await, "the prefixed cookie is the session cookie");

    // With a Domain, __Host- does not apply to the session cookie: __Secure- does. The
    // pending login stays __Host- (Path=/, no Domain), so a sibling subdomain cannot plant
    // one (login CSRF).
    let app = Setup::new("cookie_domain = \".App.Test\"").origin("https://www.app.test").start(&idp).await;
    let mut browser = Browser::with_origin(&app, "https://www.app.test");
    browser.get("/auth/login").await;
    let pending = browser.set_cookie_starting("__Host-auth_pending_").unwrap().to_owned();
    assert!(pending.contains("Path=/;") && !pending.contains("Domain"), "{pending}");
    browser.jar.clear();
    browser.login().await;
    let session = browser.set_cookie("__Secure-auth_session").unwrap();
    assert!(session.contains("Domain=app.test") && session.contains("; Secure"), "{session}");
    assert!(browser.logged_in().await);
}

#[tokio::test]
async fn cookie_path_must_hold_the_routes_and_is_used_when_it_does() {
    let idp = idp().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let message = Setup::new("cookie_path = \"/app\"").layer(&idp, &listener).err().map(|e| e.to_string());
    let message = message.unwrap_or_default();
    assert!(message.contains("auth.cookie_path") && message.contains("Fix:"), "{message}");

    // With the callback and the routes under /app, it works.
    let base = format!("http://{}", listener.local_addr().unwrap());
    let setup = Setup::new("cookie_path = \"/app\"").origin(&format!("{base}/app"));
    let config = setup.config(&idp, &base);
    let providers = auth_providers::from_config(&config).unwrap();
    let layer = AuthLayer::builder(config).with_providers(providers).with_prefix("/app/auth").build().unwrap();
    let app = serve(listener, layer, base, None).await;
    let login = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/app/auth/login", app.base))
        .send()
        .await
        .unwrap();
    let pending = login.headers()["set-cookie"].to_str().unwrap();
    assert!(
        pending.starts_with("auth_pending_") && pending.contains("Path=/;"),
        "the pending login is on /: {pending}"
    );
}

#[tokio::test]
async fn end_with_id_token_ends_the_session_when_the_id_token_expires() {
    let idp = MockIdp::builder().login_as(Some("alice")).id_token_ttl(Duration::from_secs(2)).start().await.unwrap();
    let app = Setup::new("end_with_id_token = true\nrefresh_margin_secs = 0").start(&idp).await;
    let mut browser = Browser::new(&app);
    browser.login().await;
    let age = max_age(browser.set_cookie("auth_session").unwrap()).unwrap();
    assert!((1..=2).contains(&age), "Max-Age is the ID token's remaining life: {age}");
    assert!(browser.logged_in().await);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let response = browser.get("/me").await;
    assert!(browser.session_cookie_deleted(), "the ended session's cookie is cleared");
    assert_eq!(response.json::<Value>().await.unwrap()["is_logged_in"], false);

    // Without the option, the same ID token leaves the 30-day lifetime alone.
    let app = Setup::new("").start(&idp).await;
    let mut browser = Browser::new(&app);
    browser.login().await;
    assert_eq!(max_age(browser.set_cookie("auth_session").unwrap()), Some(30 * 24 * 3600));
}

// ------------------------------------------------------------------ rotation, budget

#[tokio::test]
async fn sessions_sealed_with_a_previous_secret_open_and_are_resealed() {
    let idp = idp().await;
    let extra = format!("previous_cookie_secrets = [\"{OLD_SECRET}\"]");
    let app = Setup::new(&extra).start(&idp).await;
    let old = sealer(&app, OLD_SECRET, &[]).save(&alice_session(3600)).await.unwrap();
    let mut browser = Browser::new(&app);
    browser.jar.insert("auth_session".into(), old.clone());
    assert!(browser.logged_in().await, "the old secret still opens");
    let resealed = browser.jar["auth_session"].clone();
    assert_ne!(resealed, old, "re-issued");
    let max = max_age(browser.set_cookie("auth_session").unwrap()).unwrap();
    assert!((3598..=3600).contains(&max), "Max-Age is the remaining lifetime: {max}");
    assert!(sealer(&app, SECRET, &[]).load(&resealed).await.unwrap().is_some(), "sealed with the current secret");
    assert!(sealer(&app, OLD_SECRET, &[]).load(&resealed).await.unwrap().is_none());
    assert!(browser.logged_in().await);
    assert!(browser.set_cookies.is_empty(), "a current cookie is not re-issued");
}

#[tokio::test]
async fn oversized_session_cookies_are_logged_once_a_minute() {
    const WARNING: &str = "the session cookies exceed cookie_budget_bytes";
    let (logs, _guard) = capture_logs(tracing::Level::WARN);
    let idp = idp().await;
    let small = Setup::new("").start(&idp).await;
    Browser::new(&small).login().await;
    assert_eq!(logs.count(WARNING), 0, "a typical session fits the default budget");

    let tight = Setup::new("cookie_budget_bytes = 300").start(&idp).await;
    Browser::new(&tight).login().await;
    assert_eq!(logs.count(WARNING), 1);
    assert_eq!(logs.count("cookie_budget_bytes=300"), 1, "the warning names the budget");
    Browser::new(&tight).login().await;
    assert_eq!(logs.count(WARNING), 1, "rate-limited");

    let off = Setup::new("cookie_budget_bytes = 0").start(&idp).await;
    Browser::new(&off).login().await;
    assert_eq!(logs.count(WARNING), 1, "0 disables the warning");
}

#[tokio::test]
async fn the_app_never_sees_the_layers_cookies() {
    let groups: Vec<String> = (0..400).map(|i| format!("group-number-{i:04}")).collect();
    let idp = MockIdp::builder()
        .user(MockUser::new("carol").email("carol@example.test").claim("groups", json!(groups)))
        .login_as(Some("carol"))
        .start()
        .await
        .unwrap();
    let app = Setup::new("").start(&idp).await;
    let mut browser = Browser::new(&app);
    browser.get("/auth/login").await;
    assert!(browser.jar.keys().any(|k| k.starts_with("auth_pending_")));
    browser.jar.insert("theme".into(), "dark".into());
    assert_eq!(browser.text("/cookies").await, "theme=dark", "the pending cookie is removed");

    browser.jar.clear();
    browser.login().await;
    let chunks = browser.jar.keys().filter(|n| n.starts_with("auth_session.")).count();
    assert!(chunks >= 3, "a big session is chunked: {:?}", browser.jar.keys());
    assert_eq!(browser.text("/cookies").await, "<none>", "nothing left: the header is removed");
    assert_eq!(browser.me().await["email"], "carol@example.test");

    // Other cookies pass byte for byte, in order, around ours.
    let cookie = format!("a=1;{};b=\"x y\";  c=%20", browser.cookie_header());
    let response = browser.http.get(format!("{}/cookies", app.base)).header("cookie", cookie).send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "a=1; b=\"x y\"; c=%20");
}

// ------------------------------------------------------------------ cookie sizes

/// The sizes the README's "Sessions" section quotes: a sealed session cookie for a
/// typical login, with and without tokens (token lengths as Google and Microsoft issue
/// them), and a server-side ticket.
#[tokio::test]
async fn typical_cookie_sizes() {
    let store = CookieStore::new(Arc::new(Sealer::new(SECRET.as_bytes(), &[])));
    let mut claims = serde_json::Map::new();
    for (claim, value) in [
        ("iss", json!("https://accounts.google.com")),
        ("azp", json!("123456789012-abcdefghijklmnopqrstuvwxyz012345.apps.googleusercontent.com")),
        ("aud", json!("123456789012-abcdefghijklmnopqrstuvwxyz012345.apps.googleusercontent.com")),
        ("sub", json!("110169484474386276334")),
        ("email", json!("alice.example@gmail.com")),
        ("email_verified", json!(true)),
        ("at_hash", json!("HK6E_P6Dh8Y93mRNtsDB1Q")),
        ("name", json!("Alice Example")),
        (
            "picture",
            json!("https://lh3.googleusercontent.com/a/ACg8ocJ-0123456789abcdefghijklmnopqrstuvwxyz_ABCDEFGH=s96-c"),
        ),
        ("given_name", json!("Alice")),
        ("family_name", json!("Example")),
        ("iat", json!(1_700_000_000)),
        ("exp", json!(1_700_003_600)),
    ] {
        claims.insert(claim.into(), value);
    }
    let identity = Identity::new("google", "110169484474386276334", claims);
    let size = |tokens: TokenSet| {
        let session = Session::new(identity.clone(), tokens, 3600);
        let store = store.clone();
        async move { store.save(&session).await.unwrap().len() + "auth_session=".len() }
    };
    let bare = size(TokenSet::default()).await;
    let google = TokenSet::new()
        .with_access_token("a".repeat(220))
        .with_id_token("i".repeat(1150))
        .with_refresh_token("r".repeat(103))
        .with_expires_at(1_700_003_600)
        .with_scope("openid email profile");
    let google = size(google).await;
    let microsoft = TokenSet::new()
        .with_access_token("a".repeat(2300))
        .with_id_token("i".repeat(1500))
        .with_refresh_token("r".repeat(1400))
        .with_expires_at(1_700_003_600)
        .with_scope("openid email profile User.Read");
    let microsoft = size(microsoft).await;
    println!(
        "cookie sizes: identity only {bare} B, with Google-sized tokens {google} B, with Microsoft-sized tokens {microsoft} B"
    );
    assert!((600..=1000).contains(&bare), "{bare}");
    assert!((2400..=3400).contains(&google), "{google}");
    assert!((7500..=8500).contains(&microsoft), "{microsoft}");
    assert_eq!(auth_core::random_token().len() + "auth_session=".len(), 56, "a server-side ticket");
}

/// The bytes of the session cookies in the `Cookie` header `browser` sends (`auth_session`
/// or its chunks, joined by `"; "`).
fn session_cookie_bytes(browser: &Browser) -> usize {
    let pairs: Vec<usize> = browser
        .jar
        .iter()
        .filter(|(name, _)| name.starts_with("auth_session"))
        .map(|(n, v)| n.len() + 1 + v.len())
        .collect();
    pairs.iter().sum::<usize>() + 2 * pairs.len().saturating_sub(1)
}

/// The sizes the README's "Keeping fewer claims" quotes: a Microsoft-like user in 200 groups
/// (ids as GUIDs, in the ID token and in userinfo, as Entra ID sends them), with and without
/// `drop_claims`/`keep_claims`. The ID token carries the groups too, so the cookie shrinks
/// several times only without it (`keep_tokens`); dropping the claims alone removes one copy.
#[tokio::test]
async fn dropped_claims_make_small_cookies() {
    let groups: Vec<String> = (0..200).map(|i| format!("{i:08x}-6c67-4c5b-b112-36a304b66dad")).collect();
    let idp = MockIdp::builder()
        .user(MockUser::new("dana").email("dana@example.test").name("Dana Example").claim("groups", json!(groups)))
        .login_as(Some("dana"))
        .start()
        .await
        .unwrap();
    const NO_ID_TOKEN: &str = "keep_tokens = [\"access\", \"refresh\"]\n";
    let mut sizes = BTreeMap::new();
    for (name, extra) in [
        ("every claim", String::new()),
        ("drop_claims = [\"groups\"]", "drop_claims = [\"groups\"]".to_owned()),
        ("keep_claims = [\"email\", \"name\"]", "keep_claims = [\"email\", \"name\"]".to_owned()),
        ("every claim, no ID token", NO_ID_TOKEN.to_owned()),
        ("drop_claims, no ID token", format!("{NO_ID_TOKEN}drop_claims = [\"groups\"]")),
        ("keep_claims, no ID token", format!("{NO_ID_TOKEN}keep_claims = [\"email\", \"name\"]")),
    ] {
        let app = Setup::new(&extra).start(&idp).await;
        let mut browser = Browser::new(&app);
        browser.login().await;
        let cookies = browser.jar.keys().filter(|n| n.starts_with("auth_session")).count();
        sizes.insert(name, (session_cookie_bytes(&browser), cookies));
        let me = browser.me().await;
        assert_eq!(me["email"], "dana@example.test", "{name}: {me}");
        assert_eq!(me["name"], "Dana Example", "{name}: {me}");
        assert_eq!(me["sub"], "dana", "the layer always keeps sub: {me}");
        let dropped = name.contains("_claims");
        assert_eq!(me["groups"].is_null(), dropped, "{name}: {me}");
        assert_eq!(me["aud"].is_null(), name.starts_with("keep_claims"), "keep_claims drops unlisted claims: {name}");
    }
    for (name, (bytes, cookies)) in &sizes {
        println!("session cookie of a user in 200 groups, {name}: {bytes} B in {cookies} cookie(s)");
    }
    let size = |name: &str| sizes[name].0;
    assert!(size("drop_claims = [\"groups\"]") * 3 < size("every claim") * 2, "one copy of the groups less: {sizes:?}");
    assert!(size("keep_claims = [\"email\", \"name\"]") <= size("drop_claims = [\"groups\"]"), "{sizes:?}");
    for small in ["drop_claims, no ID token", "keep_claims, no ID token"] {
        assert!(size(small) * 5 <= size("every claim, no ID token"), "{small}: {sizes:?}");
        assert!(size(small) * 5 <= size("every claim"), "{small}: {sizes:?}");
        assert!(size(small) <= 1500, "one small cookie: {sizes:?}");
    }

    // A refresh brings a new ID token with every group: the refreshed session drops them too.
    let app = Setup::new("drop_claims = [\"groups\"]\nrefresh_margin_secs = 86400").start(&idp).await;
    let mut browser = Browser::new(&app);
    browser.login().await;
    let at_login = session_cookie_bytes(&browser);
    idp.reset_hits();
    let me = browser.me().await;
    assert_eq!(idp.hits().token, 1, "the access token (1 h) is due within the margin (1 day): refreshed");
    assert!(browser.session_cookie_set(), "the refreshed session is written");
    assert!(me["groups"].is_null() && me["email"] == "dana@example.test", "{me}");
    let refreshed = session_cookie_bytes(&browser);
    assert!(refreshed <= at_login + 64, "as small as at login: {at_login} B, then {refreshed} B");
    assert!(refreshed * 3 < size("every claim") * 2, "{refreshed} B");
}
