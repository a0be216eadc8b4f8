//! The idle timeout: renewed as the person comes back, ended when they do not.

use super::*;

// ----------------------------------------------------------------------- idle timeout

/// Idle timeout with hand-made session cookies: no waiting needed.
#[tokio::test]
async fn idle_deadline_is_renewed_only_after_a_tenth_of_the_window() {
    let idp = idp().await;
    let app = Setup::new("idle_timeout_secs = 100").start(&idp).await;
    let store = sealer(&app, SECRET, &[]);
    let now = auth_core::unix_now();
    let cases = [
        // (idle deadline, logged in, cookie written with this Max-Age); renewal is due once
        // 10 s (a tenth of the window) have passed, so 95 is not due and 85 is.
        (Some(now + 100), true, None),
        (Some(now + 95), true, None),
        (Some(now + 85), true, Some(100)),
        (None, true, Some(100)),
    ];
    for (deadline, logged_in, written) in cases {
        let mut session = alice_session(3600);
        session.idle_expires_at = deadline;
        let mut browser = Browser::new(&app);
        browser.jar.insert("auth_session".into(), store.save(&session).await.unwrap());
        assert_eq!(browser.logged_in().await, logged_in, "{deadline:?}");
        assert_eq!(browser.set_cookie("auth_session").and_then(max_age), written, "{deadline:?}");
        if written.is_some() {
            // The renewed cookie does not ask for another renewal.
            assert!(browser.logged_in().await);
            assert!(browser.set_cookies.is_empty(), "{deadline:?}: {:?}", browser.set_cookies);
        }
    }
    let mut idle = alice_session(3600);
    idle.idle_expires_at = Some(now.saturating_sub(1));
    let mut browser = Browser::new(&app);
    browser.jar.insert("auth_session".into(), store.save(&idle).await.unwrap());
    assert!(!browser.logged_in().await, "past the idle deadline");
    assert!(browser.session_cookie_deleted());
}

/// Idle timeout in real time (3 s; times are whole seconds): a request after a second
/// renews the deadline, three idle seconds after it end the session.
pub(super) async fn idle_session_ends_unless_used(setup: Setup) {
    let idp = idp().await;
    let app = setup.start(&idp).await;
    let mut browser = Browser::new(&app);
    browser.login().await;
    assert_eq!(browser.set_cookie("auth_session").and_then(max_age), Some(3));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(browser.logged_in().await, "used within the idle window");
    assert_eq!(browser.set_cookie("auth_session").and_then(max_age), Some(3), "renewed: {:?}", browser.set_cookies);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert!(!browser.logged_in().await, "idle for the whole window");
}

#[tokio::test]
async fn idle_cookie_session_ends_unless_used() {
    idle_session_ends_unless_used(Setup::new("idle_timeout_secs = 3")).await;
}

#[tokio::test]
async fn idle_server_side_session_ends_unless_used() {
    idle_session_ends_unless_used(Setup::new("idle_timeout_secs = 3").memory()).await;
}
