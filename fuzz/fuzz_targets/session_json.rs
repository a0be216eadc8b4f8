//! Decoding sessions and claims from JSON (`serde_json` into `auth_core::Session`), as the
//! cookie store and server-side stores do, and what the layer reads from them.
//!
//! A session that decodes encodes and decodes again to itself, goes through the cookie
//! store (seal, open) unchanged (or not at all once ended), and gives a `User` whose accessors and policies (at any
//! clock) answer without panicking. Claims alone (`Claims`) decode the same way.
#![no_main]

use auth_core::seal::Sealer;
use auth_core::{Claims, CookieStore, ExposeTokens, Identity, Policy, Session, SessionStore, User, unix_now};
use libfuzzer_sys::fuzz_target;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

const SECRET: &[u8] = b"a-test-cookie-secret-of-at-least-32-bytes";

/// Polls a future that never waits (the cookie store's) to its end.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the cookie store waited"),
    }
}

fn store() -> &'static CookieStore {
    static STORE: OnceLock<CookieStore> = OnceLock::new();
    STORE.get_or_init(|| CookieStore::new(Arc::new(Sealer::new(SECRET, &[]))))
}

fn policies() -> &'static [Policy] {
    static POLICIES: OnceLock<Vec<Policy>> = OnceLock::new();
    POLICIES.get_or_init(|| {
        vec![
            Policy::logged_in(),
            Policy::claim_equals("email", "alice@example.test"),
            Policy::claim_contains("groups", "admins"),
            Policy::group("admins"),
            Policy::role("reader"),
            Policy::scope("read"),
            Policy::email_domain(["example.test"]),
            Policy::provider(["default", "google"]),
            Policy::tenant(["72f988bf-86f1-41af-91ab-2d7cd011db47"]),
            Policy::max_age(300),
            Policy::max_age(0),
            Policy::max_age(u64::MAX),
            Policy::acr(["mfa", "urn:example:phr"]),
            Policy::any([Policy::group("a"), Policy::not(Policy::scope("b"))]).and(Policy::max_age(60)),
        ]
    })
}

fn use_user(user: &User, now: u64) {
    let _ = (user.sub(), user.email(), user.name(), user.picture(), user.provider(), user.acr());
    let _ = (user.auth_time(), user.tokens(), user.claims::<Claims>());
    let json = user.to_json();
    assert_eq!(json["is_logged_in"], user.is_logged_in());
    for policy in policies() {
        let _ = policy.evaluate_at(user, now);
        let _ = policy.describe();
    }
}

fuzz_target!(|data: &[u8]| {
    let now = data.get(..8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
    if let Ok(session) = serde_json::from_slice::<Session>(data) {
        let json = serde_json::to_vec(&session).expect("a decoded session encodes");
        let again: Session = serde_json::from_slice(&json).expect("an encoded session decodes");
        assert_eq!(again, session, "JSON round trip");

        let store = store();
        let ticket = ready(store.save(&session)).expect("the cookie store saves");
        let loaded = ready(store.load(&ticket)).expect("the cookie store loads");
        // Stores never return ended sessions.
        let live = !session.is_expired_at(unix_now());
        assert_eq!(loaded.as_ref(), Some(&session).filter(|_| live), "cookie store round trip");

        let _ = (session.deadline(), session.is_expired_at(now));
        let session = Arc::new(session);
        use_user(&User::from_session(Arc::clone(&session), ExposeTokens { id: true, access: true }), now);
        use_user(&User::from_bearer(session), now);
    }
    if let Ok(claims) = serde_json::from_slice::<Claims>(data) {
        let subject = claims.get("sub").and_then(|s| s.as_str()).unwrap_or("fuzz").to_owned();
        let identity = Identity::new("default", subject, claims);
        let user = User::from_session(Arc::new(Session::new(identity, Default::default(), 60)), ExposeTokens::NONE);
        use_user(&user, now);
    }
});
