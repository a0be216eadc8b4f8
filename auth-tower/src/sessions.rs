//! Every session of a user: [`Sessions`], which the layer hands to the app when the store
//! lists sessions ([`SessionListing`]), for a "sign out other devices" page; and the short
//! device summary kept with each session at login.

use auth_core::{Revocation, Session, SessionInfo, SessionListing, SessionStore, StoreError, session_handle};
use http::HeaderMap;
use http::header::USER_AGENT;
use std::fmt;
use std::sync::{Arc, OnceLock};

/// The sessions of the person signed in on this request: list them, end one, or end every
/// one but this request's ("sign out other devices").
///
/// The layer puts one in the extensions of each request signed in with a session cookie
/// when the store lists sessions: `session_store = "memory"`, a Redis URL, or any store
/// whose [`SessionStore::listing`] answers. With the cookie store (the default) there is
/// none: sessions that live only in browsers cannot be listed or ended. In axum, extract
/// it (feature `axum`; anyone else is refused, see `SessionsRejection`); with any other
/// tower service, `request.extensions().get::<Sessions>()`.
///
/// Sessions are named by handles ([`session_handle`]), never by the ticket the cookie
/// carries; a person can only list and end their own (by provider and the ID token's `sub`,
/// as back-channel logout finds them). Ending a session takes effect on its next request,
/// on every instance sharing the store: it is anonymous, and its cookie is cleared.
///
/// ```
/// # #[cfg(feature = "axum")] {
/// use auth_tower::Sessions;
/// use axum::Json;
///
/// async fn sign_out_other_devices(sessions: Sessions) -> Json<serde_json::Value> {
///     let ended = sessions.end_others().await.unwrap_or(0);
///     Json(serde_json::json!({ "ended": ended }))
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct Sessions {
    store: Arc<dyn SessionStore>,
    session: Arc<Session>,
    /// The request's ticket, for its handle: hashed on first use, not on every request.
    ticket: Arc<str>,
    current: Arc<OnceLock<String>>,
}

impl Sessions {
    /// The sessions of `session`'s person in `store`, seen from the request whose cookie
    /// carries `ticket` (only its handle is kept).
    pub(crate) fn new(store: Arc<dyn SessionStore>, session: Arc<Session>, ticket: &str) -> Self {
        Self { store, session, ticket: ticket.into(), current: Arc::default() }
    }

    /// The handle of this request's session: the [`SessionInfo::handle`] that
    /// [`list`](Self::list) shows for it.
    pub fn current(&self) -> &str {
        self.current.get_or_init(|| session_handle(&self.ticket))
    }

    /// Every live session of the person, oldest first; this request's is the one whose
    /// handle is [`current`](Self::current).
    ///
    /// # Errors
    /// The store's, such as [`StoreError::Unavailable`] while Redis is down.
    pub async fn list(&self) -> Result<Vec<SessionInfo>, StoreError> {
        let (provider, subject) = self.owner();
        self.listing()?.sessions(provider, subject).await
    }

    /// Ends the person's session `handle`; `Ok(false)` when they have no live session with
    /// this handle. Ending this request's own session works too, but the logout route is
    /// the way to sign this browser out: it also clears its cookie and signs out at the
    /// provider.
    ///
    /// # Errors
    /// The store's.
    pub async fn end(&self, handle: &str) -> Result<bool, StoreError> {
        let (provider, subject) = self.owner();
        let ended = self.listing()?.end(provider, subject, handle).await?;
        tracing::info!(provider, ended, "ended one session of a user");
        auth_core::metrics::sessions_revoked("sessions", u64::from(ended));
        Ok(ended)
    }

    /// Ends every session of the person except this request's, and says how many ended.
    ///
    /// # Errors
    /// The store's.
    pub async fn end_others(&self) -> Result<usize, StoreError> {
        let (provider, subject) = self.owner();
        let ended = self.listing()?.end_all(provider, subject, Some(self.current())).await?;
        tracing::info!(provider, ended, "ended the other sessions of a user");
        auth_core::metrics::sessions_revoked("sessions", ended as u64);
        Ok(ended)
    }

    /// Who the sessions belong to: the provider and the ID token's `sub`.
    fn owner(&self) -> (&str, &str) {
        let identity = &self.session.identity;
        (&identity.provider, Revocation::subject_of(identity))
    }

    fn listing(&self) -> Result<&dyn SessionListing, StoreError> {
        self.store.listing().ok_or(StoreError::Unsupported("listing sessions"))
    }
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("provider", &self.session.identity.provider)
            .field("current", &self.current())
            .finish_non_exhaustive()
    }
}

/// Browsers by a token of their `User-Agent`, first match wins: Edge, Opera and Samsung
/// Internet also say `Chrome/`, Chrome also says `Safari/`.
const BROWSERS: &[(&str, &str)] = &[
    ("Edg/", "Edge"),
    ("EdgA/", "Edge"),
    ("EdgiOS/", "Edge"),
    ("OPR/", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
];

/// Systems likewise: iOS also says `Mac OS X`, Android also says `Linux`.
const SYSTEMS: &[(&str, &str)] = &[
    ("Windows", "Windows"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Android", "Android"),
    ("CrOS", "ChromeOS"),
    ("Macintosh", "macOS"),
    ("Linux", "Linux"),
];

/// A short summary of the browser a request's `User-Agent` names, such as
/// `"Firefox on Linux"`, for telling a person's sessions apart. Only words of the lists
/// above come out: nothing of the header is copied, so it cannot carry anything else into a
/// page or a log. `None` when it names none of them.
pub(crate) fn device(headers: &HeaderMap) -> Option<String> {
    let agent = headers.get(USER_AGENT)?.to_str().ok()?;
    let find = |names: &[(&str, &'static str)]| names.iter().find(|(token, _)| agent.contains(token)).map(|(_, n)| *n);
    match (find(BROWSERS), find(SYSTEMS)) {
        (Some(browser), Some(system)) => Some(format!("{browser} on {system}")),
        (one, other) => one.or(other).map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn summary(agent: &'static str) -> Option<String> {
        let mut headers = HeaderMap::new();
        headers.insert(USER_AGENT, HeaderValue::from_static(agent));
        device(&headers)
    }

    #[test]
    fn devices_are_summarized_from_the_user_agent() {
        let cases = [
            ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox on Linux"),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 \
                 Safari/537.36 Edg/126.0.0.0",
                "Edge on Windows",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) \
                 Version/17.5 Safari/605.1.15",
                "Safari on macOS",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) \
                 CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1",
                "Chrome on iOS",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/126.0.0.0 Mobile Safari/537.36",
                "Chrome on Android",
            ),
            (
                "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 Chrome/126.0.0.0 Safari/537.36",
                "Chrome on ChromeOS",
            ),
        ];
        for (agent, expected) in cases {
            assert_eq!(summary(agent).as_deref(), Some(expected), "{agent}");
        }
        assert_eq!(summary("curl/8.5.0"), None, "nothing it does not know");
        assert_eq!(summary("Firefox/1 <script>alert(1)</script>").as_deref(), Some("Firefox"), "only known words");
        assert_eq!(device(&HeaderMap::new()), None);
    }
}
