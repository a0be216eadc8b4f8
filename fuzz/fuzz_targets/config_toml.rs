//! The config parser (`AuthConfig::from_toml_str`) and what an app does next with the
//! config: build the providers and the layer (`AuthLayer::from_config`, no network).
//!
//! No panic, whatever the text. Errors name a problem (never empty), and never repeat a
//! secret of the text (`cookie_secret`, `previous_cookie_secrets`, `client_secret`): startup
//! errors end up in logs. TOML syntax errors are exempt (the parser quotes the bad line).
#![no_main]

use auth_core::AuthConfig;
use auth_tower::AuthLayer;
use libfuzzer_sys::fuzz_target;

/// Shorter secrets would match unrelated text of the message.
const MIN_SECRET: usize = 8;

/// The string values of secret keys anywhere in `value`, as TOML decodes them.
fn secrets(value: &toml::Value, out: &mut Vec<String>) {
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                let secret = matches!(key.as_str(), "cookie_secret" | "previous_cookie_secrets" | "client_secret");
                match (secret, value) {
                    (true, toml::Value::String(s)) => out.push(s.clone()),
                    (true, toml::Value::Array(items)) => {
                        out.extend(items.iter().filter_map(|i| i.as_str().map(str::to_owned)));
                    }
                    _ => secrets(value, out),
                }
            }
        }
        toml::Value::Array(items) => items.iter().for_each(|i| secrets(i, out)),
        _ => {}
    }
}

/// The error the layer's start-up reports for `text`: the parser's, or building the layer's.
fn startup_error(text: &str) -> Option<String> {
    match AuthConfig::from_toml_str(text, "fuzz.toml") {
        Ok(config) => AuthLayer::from_config(config).err().map(|error| error.to_string()),
        Err(error) => Some(format!("{error:?}")),
    }
}

/// Panics when `message` holds one of `secrets` that `text` holds only once, as written
/// (so the message cannot have it from another key), and holds it because of that value:
/// the same text with the secret replaced by as many `Q`s must give a message without the
/// `Q`s, and a message that still holds the secret means the secret is part of the layer's
/// own words (a secret `"nfiguration"` and "openid-configuration" in the message, found
/// by this target), not a leak.
fn assert_no_secret(text: &str, secrets: &[String], message: &str) {
    assert!(!message.trim().is_empty(), "an empty error message");
    for secret in secrets.iter().filter(|s| s.len() >= MIN_SECRET && text.matches(s.as_str()).count() == 1) {
        if !message.contains(secret.as_str()) {
            continue;
        }
        let marker = "Q".repeat(secret.len());
        if text.contains(&marker) {
            continue;
        }
        let replaced = text.replacen(secret.as_str(), &marker, 1);
        let Some(other) = startup_error(&replaced) else { continue };
        assert!(
            !other.contains(&marker) && other.contains(secret.as_str()),
            "an error repeats the secret {secret:?}: {message}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut found = Vec::new();
    let syntax_ok = match text.parse::<toml::Table>() {
        Ok(table) => {
            secrets(&toml::Value::Table(table), &mut found);
            true
        }
        Err(_) => false,
    };
    let config = match AuthConfig::from_toml_str(text, "fuzz.toml") {
        Ok(config) => config,
        Err(error) => {
            if syntax_ok {
                assert_no_secret(text, &found, &format!("{error:?}"));
            }
            return;
        }
    };
    let _ = config.validate();
    let _ = (config.callback_path(), format!("{config:?}"));
    match AuthLayer::from_config(config) {
        Ok(layer) => {
            let _ = format!("{layer:?}");
        }
        Err(error) => assert_no_secret(text, &found, &error.to_string()),
    }
});
