//! Google: the issuer's two spellings and Google Workspace hosted domains.
//!
//! - Google's discovery document says `https://accounts.google.com`, and its ID tokens say
//!   that or `accounts.google.com`: a token naming the issuer without its scheme is
//!   verified against exactly that spelling (and nothing else).
//! - `hosted_domains = ["example.com"]` admits only Google Workspace accounts whose ID
//!   token carries an `hd` claim in the list. The `hd` authorization parameter, sent when
//!   the list has one entry, only preselects the account on Google's page: anyone can
//!   remove it from the URL, so the claim is what is checked.

use super::keys::{self, Keys};
use crate::error::BuildError;
use auth_core::{Claims, ProviderError};
use serde_json::Value;

/// The Google preset's settings.
#[derive(Clone, Debug)]
pub(crate) struct Google {
    /// `hosted_domains`, lower case.
    hosted_domains: Option<Vec<String>>,
}

impl Google {
    pub(crate) fn new(keys: &Keys<'_>) -> Result<Self, BuildError> {
        let fix = "list Google Workspace domains, such as hosted_domains = [\"example.com\"]";
        Ok(Self { hosted_domains: keys.list("hosted_domains", keys::is_domain, fix)? })
    }

    /// The issuer `iss` of a token must be: `discovered`, or the same without its scheme
    /// when that is how the token spells it.
    pub(crate) fn token_issuer(discovered: &str, unverified: &Claims) -> String {
        let bare = discovered.split_once("://").map(|(_, rest)| rest);
        match unverified.get("iss").and_then(Value::as_str) {
            Some(iss) if Some(iss) == bare => iss.to_owned(),
            _ => discovered.to_owned(),
        }
    }

    /// Whether `iss` names Google's issuer `issuer` (from the metadata URL), in either
    /// spelling.
    pub(crate) fn trusts_issuer(issuer: &str, iss: &str) -> bool {
        iss == issuer || issuer.split_once("://").is_some_and(|(_, bare)| iss == bare)
    }

    /// `hd`, the account chooser's hint, when exactly one domain is allowed.
    pub(crate) fn authorization_params(&self) -> Vec<(&'static str, String)> {
        match self.hosted_domains.as_deref() {
            Some([only]) => vec![("hd", only.clone())],
            _ => Vec::new(),
        }
    }

    /// Checks the `hd` claim against `hosted_domains`.
    pub(crate) fn admit(&self, claims: &Claims) -> Result<(), ProviderError> {
        let Some(allowed) = &self.hosted_domains else { return Ok(()) };
        match claims.get("hd").and_then(Value::as_str) {
            Some(hd) if allowed.contains(&hd.to_ascii_lowercase()) => Ok(()),
            Some(hd) => {
                Err(ProviderError::Denied(format!("the Google Workspace domain {hd:?} is not in hosted_domains")))
            }
            None => Err(ProviderError::Denied(
                "the account is not a Google Workspace account (no hd claim), and hosted_domains is set".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Claims {
        let Value::Object(map) = value else { panic!("an object") };
        map
    }

    #[test]
    fn both_issuer_spellings() {
        let discovered = "https://accounts.google.com";
        let with_scheme = claims(json!({"iss": "https://accounts.google.com"}));
        assert_eq!(Google::token_issuer(discovered, &with_scheme), discovered);
        let bare = claims(json!({"iss": "accounts.google.com"}));
        assert_eq!(Google::token_issuer(discovered, &bare), "accounts.google.com");
        let other = claims(json!({"iss": "evil.example"}));
        assert_eq!(Google::token_issuer(discovered, &other), discovered, "anything else is held to the real issuer");
        assert!(Google::trusts_issuer(discovered, "https://accounts.google.com"));
        assert!(Google::trusts_issuer(discovered, "accounts.google.com"));
        assert!(!Google::trusts_issuer(discovered, "http://accounts.google.com"));
        assert!(!Google::trusts_issuer(discovered, "evil.example"));
    }

    #[test]
    fn hosted_domain_claim_is_checked_and_hinted() {
        let google = Google { hosted_domains: Some(vec!["example.com".into()]) };
        assert_eq!(google.authorization_params(), [("hd", "example.com".to_owned())]);
        assert!(google.admit(&claims(json!({"hd": "Example.com"}))).is_ok());
        assert!(matches!(google.admit(&claims(json!({"hd": "other.com"}))), Err(ProviderError::Denied(_))));
        assert!(matches!(google.admit(&claims(json!({}))), Err(ProviderError::Denied(_))));
        let two = Google { hosted_domains: Some(vec!["a.example".into(), "b.example".into()]) };
        assert!(two.authorization_params().is_empty(), "no single hint for two domains");
        let anyone = Google { hosted_domains: None };
        assert!(anyone.admit(&claims(json!({}))).is_ok());
    }
}
