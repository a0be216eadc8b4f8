//! [`Policy`]: who may do what, as plain data evaluated on a [`User`].
//!
//! A policy answers with a [`Decision`]: allow; log in first (anonymous); log in again
//! more strongly ([`StepUp`]: a fresh login or an authentication level); or forbidden
//! (signed in, but not allowed). Rendering the answer is the transport's job (a redirect
//! or a page for browsers, JSON for HTTP APIs, a status code for gRPC): see `auth-tower`.
//!
//! Policies are `serde` data, so a config file can hold them, plus
//! [`Policy::custom`] for anything else:
//!
//! ```
//! use auth_core::{Decision, Policy, User};
//!
//! let admins = Policy::group("admins");
//! assert!(matches!(admins.evaluate(&User::anonymous()), Decision::LoginRequired));
//!
//! // The same policy, read from TOML as a config would hold it.
//! let from_toml: Policy = serde_json::from_value(serde_json::json!({
//!     "all": [{ "claim_contains": { "claim": "groups", "value": "admins" } }, { "max_age": 300 }]
//! })).unwrap();
//! assert_eq!(from_toml.describe(), "membership in group \"admins\" and a login at most 300 seconds old");
//! ```

use crate::{User, unix_now};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::sync::Arc;

/// What a guard requires of the user. Every policy but [`Policy::LoggedIn`] also needs
/// someone signed in: an anonymous user gets [`Decision::LoginRequired`] from all of them.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Policy {
    /// Anyone signed in.
    LoggedIn,
    /// The claim `claim` is the string `value` (or, for an array claim, holds it as its
    /// only element).
    ClaimEquals {
        /// The claim's name, such as `"hd"` or `"tid"`.
        claim: String,
        /// The value it must have.
        value: String,
    },
    /// The claim `claim` contains `value`: an array claim (such as `groups` or `roles`)
    /// with it as an element, or a string claim (such as `scope` or `scp`) with it among
    /// its space-separated words.
    ClaimContains {
        /// The claim's name.
        claim: String,
        /// The element or word it must contain.
        value: String,
    },
    /// A verified email (`email_verified` true) in one of these domains (exactly, no
    /// subdomains; case-insensitive).
    EmailDomain(Vec<String>),
    /// Signed in with one of these providers (by name).
    Provider(Vec<String>),
    /// A Microsoft Entra ID account of one of these tenants (the `tid` claim).
    Tenant(Vec<String>),
    /// A login at most this many seconds old (the ID token's `auth_time`); otherwise a
    /// [`StepUp`] with OpenID Connect's `max_age`.
    MaxAge(u64),
    /// An authentication context class (`acr`) among these; otherwise a [`StepUp`] with
    /// `acr_values`.
    Acr(Vec<String>),
    /// Every one of these.
    All(Vec<Policy>),
    /// At least one of these.
    Any(Vec<Policy>),
    /// Not this one (for a signed-in user).
    Not(Box<Policy>),
    /// A check of your own: [`Policy::custom`]. Not readable from a config.
    #[serde(skip)]
    Custom(CustomPolicy),
}

/// A closure policy with a description for the "this page needs ..." message.
#[derive(Clone)]
pub struct CustomPolicy {
    description: String,
    check: Arc<dyn Fn(&User) -> bool + Send + Sync>,
}

impl fmt::Debug for CustomPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomPolicy").field("description", &self.description).finish_non_exhaustive()
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Policy({})", self.describe())
    }
}

/// What a policy says about a user.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Nobody is signed in: log in first.
    LoginRequired,
    /// Signed in, but not recently or strongly enough: log in again as [`StepUp`] says.
    StepUp(StepUp),
    /// Signed in, and not allowed.
    Forbidden(Forbidden),
}

/// How to log in again: the authorization request's `max_age` and `acr_values`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StepUp {
    /// The login must be at most this many seconds old.
    pub max_age: Option<u64>,
    /// The login must reach one of these authentication context classes.
    pub acr_values: Vec<String>,
}

/// Why a signed-in user is not allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Forbidden {
    /// What the policy needs, in words ("membership in group \"admins\"").
    pub needs: String,
    /// Why the user cannot show it, when there is more to say than "does not have it"
    /// (Microsoft left the groups out of the token: too many groups).
    pub reason: Option<String>,
}

impl Policy {
    /// Anyone signed in.
    pub fn logged_in() -> Self {
        Self::LoggedIn
    }

    /// The claim `claim` is `value`.
    pub fn claim_equals(claim: impl Into<String>, value: impl Into<String>) -> Self {
        Self::ClaimEquals { claim: claim.into(), value: value.into() }
    }

    /// The claim `claim` contains `value` (array element, or space-separated word).
    pub fn claim_contains(claim: impl Into<String>, value: impl Into<String>) -> Self {
        Self::ClaimContains { claim: claim.into(), value: value.into() }
    }

    /// Membership in `group`: the `groups` claim contains it.
    pub fn group(group: impl Into<String>) -> Self {
        Self::claim_contains("groups", group)
    }

    /// The role `role`: the `roles` claim contains it.
    pub fn role(role: impl Into<String>) -> Self {
        Self::claim_contains("roles", role)
    }

    /// The OAuth scope `scope` was granted: in `scp` (Microsoft) or `scope` (RFC 9068).
    pub fn scope(scope: impl Into<String>) -> Self {
        let scope = scope.into();
        Self::Any(vec![Self::claim_contains("scp", scope.clone()), Self::claim_contains("scope", scope)])
    }

    /// A verified email in one of `domains`.
    pub fn email_domain<S: Into<String>>(domains: impl IntoIterator<Item = S>) -> Self {
        Self::EmailDomain(domains.into_iter().map(|d| d.into().to_ascii_lowercase()).collect())
    }

    /// Signed in with one of `providers`.
    pub fn provider<S: Into<String>>(providers: impl IntoIterator<Item = S>) -> Self {
        Self::Provider(providers.into_iter().map(Into::into).collect())
    }

    /// A Microsoft account of one of `tenants` (tenant ids).
    pub fn tenant<S: Into<String>>(tenants: impl IntoIterator<Item = S>) -> Self {
        Self::Tenant(tenants.into_iter().map(|t| t.into().to_ascii_lowercase()).collect())
    }

    /// A login at most `secs` seconds old.
    pub fn max_age(secs: u64) -> Self {
        Self::MaxAge(secs)
    }

    /// An authentication context class among `values`.
    pub fn acr<S: Into<String>>(values: impl IntoIterator<Item = S>) -> Self {
        Self::Acr(values.into_iter().map(Into::into).collect())
    }

    /// Every one of `policies`.
    pub fn all(policies: impl IntoIterator<Item = Policy>) -> Self {
        Self::All(policies.into_iter().collect())
    }

    /// At least one of `policies`.
    pub fn any(policies: impl IntoIterator<Item = Policy>) -> Self {
        Self::Any(policies.into_iter().collect())
    }

    /// Not `policy`.
    #[allow(clippy::should_implement_trait)]
    pub fn not(policy: Policy) -> Self {
        Self::Not(Box::new(policy))
    }

    /// This policy and `other`.
    #[must_use]
    pub fn and(self, other: Policy) -> Self {
        Self::all([self, other])
    }

    /// This policy or `other`.
    #[must_use]
    pub fn or(self, other: Policy) -> Self {
        Self::any([self, other])
    }

    /// Your own check; `description` completes "this page needs ..." when it fails.
    pub fn custom(description: impl Into<String>, check: impl Fn(&User) -> bool + Send + Sync + 'static) -> Self {
        Self::Custom(CustomPolicy { description: description.into(), check: Arc::new(check) })
    }

    /// What `user` may do, now.
    pub fn evaluate(&self, user: &User) -> Decision {
        self.evaluate_at(user, unix_now())
    }

    /// What `user` may do at `now` (Unix seconds).
    pub fn evaluate_at(&self, user: &User, now: u64) -> Decision {
        if !user.is_logged_in() {
            return Decision::LoginRequired;
        }
        let allow_if = |ok: bool| if ok { Decision::Allow } else { self.forbidden(None) };
        match self {
            Self::LoggedIn => Decision::Allow,
            Self::ClaimEquals { claim, value } => allow_if(match user.get(claim) {
                Some(Value::String(s)) => s == value,
                Some(Value::Array(items)) => matches!(items.as_slice(), [Value::String(s)] if s == value),
                Some(Value::Bool(b)) => b.to_string() == *value,
                Some(Value::Number(n)) => n.to_string() == *value,
                _ => false,
            }),
            Self::ClaimContains { claim, value } => {
                let found = match user.get(claim) {
                    Some(Value::Array(items)) => items.iter().any(|i| i.as_str() == Some(value)),
                    Some(Value::String(s)) => s.split_whitespace().any(|w| w == value),
                    _ => false,
                };
                if found {
                    Decision::Allow
                } else if claim == "groups" && user.get("groups_overage").and_then(Value::as_bool) == Some(true) {
                    self.forbidden(Some(
                        "your account is in too many groups for Microsoft to list them in the sign-in token, \
                         so membership cannot be checked; ask the app's administrator to assign the group to \
                         the app (group claims limited to groups assigned to the application)"
                            .into(),
                    ))
                } else {
                    self.forbidden(None)
                }
            }
            Self::EmailDomain(domains) => allow_if(verified_email(user).is_some_and(|email| {
                email.rsplit_once('@').is_some_and(|(_, domain)| domains.iter().any(|d| d.eq_ignore_ascii_case(domain)))
            })),
            Self::Provider(providers) => allow_if(user.provider().is_some_and(|p| providers.iter().any(|n| n == p))),
            Self::Tenant(tenants) => allow_if(
                user.get("tid")
                    .and_then(Value::as_str)
                    .is_some_and(|t| tenants.iter().any(|n| n.eq_ignore_ascii_case(t))),
            ),
            Self::MaxAge(secs) => match user.auth_time() {
                Some(at) if at.saturating_add(*secs) >= now => Decision::Allow,
                _ => Decision::StepUp(StepUp { max_age: Some(*secs), acr_values: Vec::new() }),
            },
            Self::Acr(values) => match user.acr() {
                Some(acr) if values.iter().any(|v| v == acr) => Decision::Allow,
                _ => Decision::StepUp(StepUp { max_age: None, acr_values: values.clone() }),
            },
            Self::All(policies) => {
                let mut step_up: Option<StepUp> = None;
                for policy in policies {
                    match policy.evaluate_at(user, now) {
                        Decision::Allow => {}
                        Decision::StepUp(more) => step_up = Some(merge(step_up, more)),
                        refused => return refused,
                    }
                }
                step_up.map_or(Decision::Allow, Decision::StepUp)
            }
            Self::Any(policies) => {
                let mut step_up = None;
                let mut forbidden = None;
                for policy in policies {
                    match policy.evaluate_at(user, now) {
                        Decision::Allow => return Decision::Allow,
                        Decision::StepUp(s) => step_up = step_up.or(Some(s)),
                        Decision::Forbidden(f) => forbidden = forbidden.or(f.reason),
                        Decision::LoginRequired => {}
                    }
                }
                match step_up {
                    Some(s) => Decision::StepUp(s),
                    None => self.forbidden(forbidden),
                }
            }
            Self::Not(policy) => match policy.evaluate_at(user, now) {
                Decision::Allow => self.forbidden(None),
                Decision::LoginRequired => Decision::LoginRequired,
                _ => Decision::Allow,
            },
            Self::Custom(custom) => allow_if((custom.check)(user)),
        }
    }

    fn forbidden(&self, reason: Option<String>) -> Decision {
        Decision::Forbidden(Forbidden { needs: self.describe(), reason })
    }

    /// What the policy needs, in words, for messages ("membership in group \"admins\"").
    pub fn describe(&self) -> String {
        let list = |items: &[String]| items.iter().map(|i| format!("{i:?}")).collect::<Vec<_>>().join(", ");
        let join = |policies: &[Policy], word: &str| {
            policies.iter().map(Policy::describe).collect::<Vec<_>>().join(&format!(" {word} "))
        };
        match self {
            Self::LoggedIn => "a signed-in user".into(),
            Self::ClaimEquals { claim, value } => format!("the claim {claim:?} to be {value:?}"),
            Self::ClaimContains { claim, value } if claim == "groups" => format!("membership in group {value:?}"),
            Self::ClaimContains { claim, value } if claim == "roles" => format!("the role {value:?}"),
            Self::ClaimContains { claim, value } if claim == "scp" || claim == "scope" => {
                format!("the scope {value:?}")
            }
            Self::ClaimContains { claim, value } => format!("{value:?} in the claim {claim:?}"),
            Self::EmailDomain(domains) => format!("a verified email address at {}", list(domains)),
            Self::Provider(providers) => format!("a sign-in with {}", list(providers)),
            Self::Tenant(tenants) => format!("an account of the Microsoft tenant {}", list(tenants)),
            Self::MaxAge(secs) => format!("a login at most {secs} seconds old"),
            Self::Acr(values) => format!("a sign-in of level {}", list(values)),
            Self::All(policies) if policies.is_empty() => "nothing".into(),
            Self::All(policies) => join(policies, "and"),
            Self::Any(policies)
                if policies
                    .iter()
                    .all(|p| matches!(p, Self::ClaimContains { claim, .. } if claim == "scp" || claim == "scope"))
                    && policies.len() == 2 =>
            {
                policies[0].describe()
            }
            Self::Any(policies) => format!("one of: {}", join(policies, "or")),
            Self::Not(policy) => format!("not {}", policy.describe()),
            Self::Custom(custom) => custom.description.clone(),
        }
    }
}

/// Two step-ups at once: the stricter age, and the classes both accept (or either's when
/// one has none).
fn merge(a: Option<StepUp>, b: StepUp) -> StepUp {
    let Some(a) = a else { return b };
    let max_age = match (a.max_age, b.max_age) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    };
    let acr_values = match (a.acr_values.is_empty(), b.acr_values.is_empty()) {
        (true, _) => b.acr_values,
        (_, true) => a.acr_values,
        _ => a.acr_values.into_iter().filter(|v| b.acr_values.contains(v)).collect(),
    };
    StepUp { max_age, acr_values }
}

/// The user's email when the provider says it is verified (`email_verified` true, or the
/// string `"true"`).
fn verified_email(user: &User) -> Option<&str> {
    let verified = match user.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    };
    user.email().filter(|_| verified)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ExposeTokens, Identity, Session, TokenSet};
    use serde_json::json;

    fn user(claims: Value) -> User {
        let Value::Object(claims) = claims else { panic!("an object") };
        let session = Session::new(Identity::new("google", "alice", claims), TokenSet::default(), 3600);
        User::from_session(Arc::new(session), ExposeTokens::NONE)
    }

    fn forbidden(needs: &str) -> Decision {
        Decision::Forbidden(Forbidden { needs: needs.into(), reason: None })
    }

    #[test]
    fn anonymous_users_must_log_in_first() {
        for policy in [Policy::logged_in(), Policy::group("a"), Policy::not(Policy::group("a")), Policy::max_age(5)] {
            assert_eq!(policy.evaluate(&User::anonymous()), Decision::LoginRequired, "{policy:?}");
        }
    }

    #[test]
    fn claims_equal_and_contain() {
        let alice = user(json!({"groups": ["admins", "staff"], "scp": "read write", "hd": "example.com", "n": 3}));
        assert_eq!(Policy::group("admins").evaluate(&alice), Decision::Allow);
        assert_eq!(Policy::group("root").evaluate(&alice), forbidden("membership in group \"root\""));
        assert_eq!(Policy::scope("write").evaluate(&alice), Decision::Allow);
        assert_eq!(Policy::scope("admin").evaluate(&alice), forbidden("the scope \"admin\""));
        assert_eq!(Policy::claim_equals("hd", "example.com").evaluate(&alice), Decision::Allow);
        assert_eq!(Policy::claim_equals("n", "3").evaluate(&alice), Decision::Allow);
        assert!(matches!(Policy::claim_equals("hd", "example").evaluate(&alice), Decision::Forbidden(_)));
        assert!(matches!(Policy::claim_contains("missing", "x").evaluate(&alice), Decision::Forbidden(_)));
    }

    #[test]
    fn a_groups_overage_says_why() {
        let overage = user(json!({"groups_overage": true}));
        let Decision::Forbidden(why) = Policy::group("admins").evaluate(&overage) else { panic!("forbidden") };
        assert!(why.reason.is_some_and(|r| r.contains("too many groups")));
    }

    #[test]
    fn email_domains_need_a_verified_email() {
        let verified = user(json!({"email": "a@Example.com", "email_verified": true}));
        let unverified = user(json!({"email": "a@example.com", "email_verified": false}));
        let as_text = user(json!({"email": "a@example.com", "email_verified": "true"}));
        let policy = Policy::email_domain(["example.com"]);
        assert_eq!(policy.evaluate(&verified), Decision::Allow);
        assert_eq!(policy.evaluate(&as_text), Decision::Allow);
        assert!(matches!(policy.evaluate(&unverified), Decision::Forbidden(_)));
        assert!(matches!(Policy::email_domain(["other.com"]).evaluate(&verified), Decision::Forbidden(_)));
    }

    #[test]
    fn providers_and_tenants() {
        let alice = user(json!({"tid": "72F988BF-86F1-41AF-91AB-2D7CD011DB47"}));
        assert_eq!(Policy::provider(["google"]).evaluate(&alice), Decision::Allow);
        assert!(matches!(Policy::provider(["microsoft"]).evaluate(&alice), Decision::Forbidden(_)));
        assert_eq!(Policy::tenant(["72f988bf-86f1-41af-91ab-2d7cd011db47"]).evaluate(&alice), Decision::Allow);
    }

    #[test]
    fn step_up_by_age_and_level() {
        let now = 1_000_000;
        let fresh = user(json!({"auth_time": now - 10, "acr": "mfa"}));
        let stale = user(json!({"auth_time": now - 1000}));
        assert_eq!(Policy::max_age(300).evaluate_at(&fresh, now), Decision::Allow);
        let step = |max_age, acr: &[&str]| {
            Decision::StepUp(StepUp { max_age, acr_values: acr.iter().map(|s| (*s).to_owned()).collect() })
        };
        assert_eq!(Policy::max_age(300).evaluate_at(&stale, now), step(Some(300), &[]));
        assert_eq!(Policy::acr(["mfa"]).evaluate_at(&fresh, now), Decision::Allow);
        assert_eq!(Policy::acr(["mfa", "phr"]).evaluate_at(&stale, now), step(None, &["mfa", "phr"]));
        let both = Policy::max_age(300).and(Policy::max_age(60)).and(Policy::acr(["mfa"]));
        assert_eq!(both.evaluate_at(&stale, now), step(Some(60), &["mfa"]));
        let no_auth_time = user(json!({}));
        assert_eq!(Policy::max_age(300).evaluate_at(&no_auth_time, now), step(Some(300), &[]), "unknown age: step up");
    }

    #[test]
    fn combinators() {
        let alice = user(json!({"groups": ["staff"], "auth_time": unix_now()}));
        let admin_or_staff = Policy::group("admins").or(Policy::group("staff"));
        assert_eq!(admin_or_staff.evaluate(&alice), Decision::Allow);
        let admin_and_staff = Policy::group("admins").and(Policy::group("staff"));
        assert_eq!(admin_and_staff.evaluate(&alice), forbidden("membership in group \"admins\""));
        assert_eq!(Policy::not(Policy::group("admins")).evaluate(&alice), Decision::Allow);
        assert_eq!(
            Policy::not(Policy::group("staff")).evaluate(&alice),
            forbidden("not membership in group \"staff\"")
        );
        let neither = Policy::any([Policy::group("a"), Policy::group("b")]);
        assert_eq!(
            neither.evaluate(&alice),
            forbidden("one of: membership in group \"a\" or membership in group \"b\"")
        );
        let custom = Policy::custom("a name starting with A", |u| u.sub().is_some_and(|s| s.starts_with('a')));
        assert_eq!(custom.evaluate(&alice), Decision::Allow);
        assert_eq!(Policy::all([]).evaluate(&alice), Decision::Allow);
    }

    #[test]
    fn policies_are_serde_data() {
        let policy: Policy = serde_json::from_value(json!({"any": [
            {"email_domain": ["example.com"]},
            {"all": [{"provider": ["microsoft"]}, {"tenant": ["t1"]}, {"not": {"claim_equals": {"claim": "x", "value": "y"}}}]},
            "logged_in",
            {"acr": ["mfa"]},
        ]}))
        .expect("reads");
        let round_trip: Policy = serde_json::from_value(serde_json::to_value(&policy).expect("writes")).expect("reads");
        assert_eq!(round_trip.describe(), policy.describe());
        assert!(serde_json::from_value::<Policy>(json!({"group": "admins"})).is_err(), "unknown kinds are errors");
    }
}
