//! Writes the seed corpora of `fuzz/corpus/<target>/` from real values: cookies sealed as
//! the layer seals them (with the tests' secret, which the targets use), the README's
//! configs, tokens signed by `MockIdp`'s committed test keys, and browser scripts.
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --example seeds` (stable is enough; it
//! rewrites the seeds it names and leaves other files alone).

use auth_core::seal::Sealer;
use auth_core::{Identity, PendingLogin, Session, TokenSet, unix_now};
use auth_testkit::{LogoutToken, MockIdp};
use serde_json::json;
use std::fs;
use std::path::{Path, PathBuf};

/// The targets' secrets (the tests' secret, and the previous one of `unseal`).
const SECRET: &[u8] = b"a-test-cookie-secret-of-at-least-32-bytes";
const PREVIOUS: &[u8] = b"0123456789abcdef0123456789abcdef-test";

type Seeds = Vec<(&'static str, Vec<u8>)>;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

fn write(target: &str, seeds: Seeds) -> std::io::Result<()> {
    let dir = corpus().join(target);
    fs::create_dir_all(&dir)?;
    for (name, bytes) in seeds {
        fs::write(dir.join(name), bytes)?;
    }
    Ok(())
}

fn claims(value: serde_json::Value) -> auth_core::Claims {
    match value {
        serde_json::Value::Object(map) => map,
        _ => auth_core::Claims::new(),
    }
}

/// Sessions as the providers make them: Google, Microsoft, and one with every field.
fn sessions() -> Vec<(&'static str, Session)> {
    let now = unix_now();
    let google = Identity::new(
        "google",
        "110169484474386276334",
        claims(json!({
            "sub": "110169484474386276334", "email": "alice@example.com", "email_verified": true,
            "name": "Alice Example", "picture": "https://lh3.googleusercontent.com/a/photo", "hd": "example.com",
            "auth_time": now - 30,
        })),
    );
    let microsoft = Identity::new(
        "microsoft",
        "72f988bf-86f1-41af-91ab-2d7cd011db47:00000000-0000-0000-66f3-3332eca7ea81",
        claims(json!({
            "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "oid": "00000000-0000-0000-66f3-3332eca7ea81", "preferred_username": "alice@contoso.com",
            "name": "Alice", "groups": ["admins", "readers"], "roles": ["reader"], "acr": "mfa",
        })),
    );
    let tokens = TokenSet::new()
        .with_id_token("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln")
        .with_access_token("ya29.a0AfH6SMC")
        .with_refresh_token("1//0gdrefresh")
        .with_expires_at(now + 3600)
        .with_scope("openid email profile");
    vec![
        ("google", Session::new(google, tokens.clone(), 30 * 86_400)),
        ("microsoft", Session::new(microsoft, TokenSet::new(), 3600).with_idle_expires_at(Some(now + 600))),
        ("empty-claims", Session::starting_at(Identity::new("default", "alice", claims(json!({}))), tokens, 0, 0)),
    ]
}

fn session_json() -> serde_json::Result<Seeds> {
    let mut seeds = Seeds::new();
    for (name, session) in sessions() {
        let file = match name {
            "google" => "session-google.json",
            "microsoft" => "session-microsoft.json",
            _ => "session-minimal.json",
        };
        seeds.push((file, serde_json::to_vec_pretty(&session)?));
    }
    seeds.push(("claims.json", serde_json::to_vec(&json!({"sub": "alice", "auth_time": 1.7e9, "acr": "mfa"}))?));
    Ok(seeds)
}

/// `0` + a sealed value opens it; `1` + bytes seals them and flips a bit.
fn unseal() -> serde_json::Result<Seeds> {
    let sealer = Sealer::new(SECRET, &[]);
    let old = Sealer::new(PREVIOUS, &[]);
    let (_, session) = sessions().swap_remove(0);
    let json = serde_json::to_vec(&session)?;
    let pending = serde_json::to_vec(&json!({
        "provider": "google", "login": PendingLogin::new("state-43-bytes-aaaaaaaaaaaaaaaaaaaaaaaaaaa")
            .with_nonce("nonce").with_pkce_verifier("verifier"),
        "return_to": "/private?x=1", "expires_at": unix_now() + 600,
    }))?;
    let open = |value: String| [b"0".as_slice(), value.as_bytes()].concat();
    Ok(vec![
        ("session", open(sealer.seal("session", &json))),
        ("session-previous-secret", open(old.seal("session", &json))),
        ("pending", open(sealer.seal("pending", &pending))),
        ("seal-session-json", [b"1".as_slice(), &json].concat()),
        ("seal-empty", b"1".to_vec()),
    ])
}

/// The `Cookie` headers of a browser that signed in with a large session (chunks), has a
/// login pending and cookies of the app.
fn cookie_scan() -> serde_json::Result<Seeds> {
    let sealer = Sealer::new(SECRET, &[]);
    let (_, mut session) = sessions().swap_remove(1);
    session.identity.claims.insert("blob".into(), "b".repeat(5000).into());
    let big = sealer.seal("session", &serde_json::to_vec(&session)?);
    let small = sealer.seal("session", b"{}");
    let pending = sealer.seal("pending", b"{}");
    let chunks = auth_tower::bench::split_cookie("auth_session", &big);
    let pairs: Vec<String> = chunks.iter().map(|(name, part)| format!("{name}={part}")).collect();
    Ok(vec![
        (
            "split",
            format!("7000 1 0\ntheme=dark; {}; _ga=GA1.2.3; auth_pending_abc={pending}", pairs.join("; ")).into(),
        ),
        ("split-two-headers", format!("100 2 1\n{}\nlang=en", pairs.join("; ")).into()),
        ("whole", format!("3800 3 0\nauth_session={small}; auth_pending={pending}\nauth_session.1=stale").into()),
        ("quoted", b"10 1 0\nauth_session=\"v1.abc\"; a=b;;  ;c\n auth_session.16=x; auth_session.01=y".to_vec()),
    ])
}

fn config_toml() -> std::io::Result<Seeds> {
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))?;
    let base = "[auth]\nredirect_uri = \"http://localhost:3000/oauth2callback\"\n\
                cookie_secret = \"a-test-cookie-secret-of-at-least-32-bytes\"\n";
    let names = ["readme-1", "readme-2", "readme-3", "readme-4", "readme-5", "readme-6", "readme-7", "readme-8"];
    let mut seeds = Seeds::new();
    for (block, name) in readme.split("```toml\n").skip(1).zip(names) {
        let text = block.split("```").next().unwrap_or_default();
        if text.contains("[dependencies]") {
            continue;
        }
        let text = if text.contains("[auth]\n") { text.to_owned() } else { format!("{base}{text}") };
        seeds.push((
            name,
            text.replace("cookie_secret = \"...\"", "cookie_secret = \"a-secret-of-at-least-32-bytes-xxxx\"").into(),
        ));
    }
    seeds.push((
        "every-key",
        format!(
            "{base}previous_cookie_secrets = [\"0123456789abcdef0123456789abcdef-old\"]\n\
             expose_tokens = [\"id\", \"access\"]\nsession_lifetime_secs = 86400\nidle_timeout_secs = 3600\n\
             end_with_id_token = true\nrefresh_margin_secs = 120\nkeep_tokens = [\"id\", \"access\", \"refresh\"]\n\
             session_store = \"memory\"\nleeway_secs = 30\nhttp_timeout_secs = 5\nmetadata_ttl_secs = 3600\n\
             post_logout_redirect_uri = \"http://localhost:3000/bye\"\ncookie_name = \"sid\"\ncookie_path = \"/\"\n\
             cookie_domain = \"localhost\"\ncookie_budget_bytes = 8192\n\
             [auth.corp]\nkind = \"oidc\"\ndisplay_name = \"Corp\"\nclient_id = \"app\"\nclient_secret = \"s3cret-value\"\n\
             server_metadata_url = \"https://idp.example/.well-known/openid-configuration\"\n\
             client_kwargs = {{ prompt = \"login\" }}\ntoken_endpoint_auth_method = \"client_secret_post\"\n\
             allowed_email_domains = [\"example.com\"]\nallowed_groups = [\"admins\"]\n\
             logout_params = {{ client_id = \"app\" }}\nend_session_endpoint = \"https://idp.example/logout\"\n\
             bearer_audience = [\"api://a\", \"api://b\"]\nintrospection = true\n"
        )
        .into(),
    ));
    Ok(seeds)
}

fn return_to() -> Seeds {
    let paths: [(&str, &str); 10] = [
        ("path", "/private?x=1"),
        ("fragment", "/a/b#c"),
        ("unicode", "/café?q=ü"),
        ("encoded", "/caf%C3%A9"),
        ("quotes", "/a\"b?q=\"c\""),
        ("scheme-relative", "//evil.test"),
        ("backslash", "/\\evil.test"),
        ("double-encoded", "/%252F%252Fevil.test"),
        ("tab", "/\t/evil"),
        ("absolute", "https://evil.test/"),
    ];
    paths.iter().map(|(name, path)| (*name, path.as_bytes().to_vec())).collect()
}

fn query() -> Seeds {
    vec![
        ("callback", b"code=4%2F0AX4XfWh&state=Zm9vYmFyYmF6cXV4&iss=https%3A%2F%2Faccounts.google.com".to_vec()),
        ("callback-error", b"error=access_denied&error_description=The+user+cancelled&state=abc".to_vec()),
        ("login", b"provider=google&return_to=%2Fprivate%3Fx%3D1".to_vec()),
        ("step-up", b"provider=corp&max_age=300&acr_values=mfa%20phr&prompt=login".to_vec()),
        ("repeated", b"state=a&state=b&code=c".to_vec()),
    ]
}

fn layer() -> Seeds {
    let scripts: [(&str, &str); 7] = [
        (
            "sign-in-tamper",
            "login provider=fake&return_to=/private%3Fx%3D1\ncallback state=$state&code=good\nprobe\ntamper 1234\nprobe",
        ),
        ("split-cookie-tamper", "login\ncallback state=$state&code=big\nprobe\ntamper 40000\nprobe\nlogout\nprobe"),
        (
            "memory-store",
            "memory\nlogin return_to=%2Fa\ncallback state=$state&code=good&iss=https://idp.test\nprobe\ntamper 8\nprobe",
        ),
        (
            "step-up",
            "login max_age=300&acr_values=mfa&prompt=login&return_to=/x\ncallback state=$state&code=good\nprobe",
        ),
        (
            "callback-errors",
            "login\ncallback state=$state&error=access_denied&error_description=no\ncallback state=x&code=deny",
        ),
        (
            "backchannel",
            "memory\nlogin\ncallback state=$state&code=good\nsend POST /auth/backchannel-logout?provider=fake\n\
             h content-type: application/x-www-form-urlencoded\nb logout_token=sub:alice\nprobe",
        ),
        (
            "bearer",
            "send GET /me\nh authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkcC50ZXN0Iiwic3ViIjoiYm9iIiwiZXhwIjo0MTAyNDQ0ODAwfQ.c2ln\n\
             h cookie: auth_session=v1.abc; theme=dark",
        ),
    ];
    scripts.iter().map(|(name, script)| (*name, script.as_bytes().to_vec())).collect()
}

/// `0` + a token verifies it; `1` (`5`) + claims signs them as an access (logout) token;
/// `2`/`3` + bytes replace the header or the signature of a real token.
async fn tokens() -> std::io::Result<Seeds> {
    let idp = MockIdp::start().await?;
    let now = unix_now();
    let access = idp.access_token_for("alice", "api://fuzz", "read write");
    let logout = idp.logout_token(&LogoutToken::for_subject("alice"));
    let id = idp.sign_id_token(json!({
        "iss": idp.issuer(), "sub": "alice", "aud": idp.client_id(), "iat": now, "exp": now + 300, "nonce": "n",
    }));
    // `$iss`, `$now` and `$later` are filled in by the target.
    let claims = r#"{"iss": "$iss", "sub": "alice", "aud": ["api://fuzz", "mock-client"], "iat": $now,
        "exp": $later, "jti": "j1", "events": {"http://schemas.openid.net/event/backchannel-logout": {}}}"#;
    let with = |mode: &str, text: &str| [mode.as_bytes(), text.as_bytes()].concat();
    Ok(vec![
        ("access-token", with("0", &access)),
        ("logout-token", with("0", &logout)),
        ("id-token", with("0", &id)),
        ("claims-access", with("1", claims)),
        ("claims-logout", with("5", claims)),
        ("header", with("2", &json!({"alg": "HS256", "typ": "at+jwt", "kid": "mock-key-1"}).to_string())),
        ("signature", with("3", "\0AAAA")),
    ])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    write("session_json", session_json()?)?;
    write("unseal", unseal()?)?;
    write("cookie_scan", cookie_scan()?)?;
    write("config_toml", config_toml()?)?;
    write("return_to", return_to())?;
    write("query", query())?;
    write("layer", layer())?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    write("tokens", runtime.block_on(tokens())?)?;
    println!("seeds written to {}", corpus().display());
    Ok(())
}
