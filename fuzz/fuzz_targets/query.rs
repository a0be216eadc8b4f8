//! The routes' query parsing (`auth-tower`'s `Query::parse` and `login_options`), as the
//! login, callback and back-channel logout routes read `?provider=..&code=..&state=..`.
//!
//! Each parameter keeps its first value as `application/x-www-form-urlencoded` decodes
//! it; any of them given twice sets `repeated` (the callback then refuses the response);
//! the step-up options stay within their bounds (at most eight `acr_values` of printable
//! ASCII without `"` or `\`, a known `prompt`), so the pending-login cookie stays small.
#![no_main]

use auth_tower::fuzz::parse_query;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let parsed = parse_query(Some(text));
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(text.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let mut repeated = false;
    for (name, value) in &parsed.params {
        let mut given = pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
        assert_eq!(value.as_ref(), given.next(), "{name}: not the first value");
        repeated |= given.next().is_some();
    }
    assert_eq!(parsed.repeated, repeated, "repeated");

    let options = &parsed.options;
    assert!(options.acr_values.len() <= 8, "{} acr_values", options.acr_values.len());
    for value in &options.acr_values {
        assert!(!value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\'));
    }
    let json = serde_json::to_string(&options.acr_values).unwrap_or_default();
    assert!(json.len() <= 512 + 3 * 8, "acr_values take {} bytes of JSON", json.len());
    if let Some(prompt) = &options.prompt {
        assert!(["login", "consent", "select_account"].contains(&prompt.as_str()), "prompt {prompt:?}");
    }
    let max_age = parsed.params.iter().find(|(n, _)| *n == "max_age").and_then(|(_, v)| v.as_deref());
    assert_eq!(options.max_age, max_age.and_then(|m| m.parse::<u64>().ok()));
    assert!(parse_query(None).params.iter().all(|(_, v)| v.is_none()));
});
