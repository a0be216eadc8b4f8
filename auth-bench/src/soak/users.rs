//! The people: a pool of `MockIdp` accounts, each with a browser's cookie jar and what the
//! soak knows about them (signed in or not, and the cookies of the sessions that ended,
//! which must never sign anyone in again); and the control loop that signs them in and out.
//!
//! Every sign-in, logout and back-channel logout bumps the user's generation: an answer to
//! a request sent before it is not judged (it raced with the change), but a session cookie
//! such an answer still writes is remembered as ended too ("logout wins").

use super::clock::Clock;
use super::lock;
use super::tally::{self, Tally};
use crate::fixtures::COOKIE_NAME;
use crate::login::{LoginStep, sign_in};
use auth_testkit::{LogoutToken, MockIdp};
use rand::{Rng as _, SeedableRng as _};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Connections the control loop may use at once (its actions in flight); the data
/// connections are the rest of `--connections`.
pub(crate) const CONTROL_SLOTS: usize = 16;
/// Signed-out cookies remembered per user for replays.
const OLD_COOKIES: usize = 4;
/// A person who signed in a moment ago signs out and straight back in, this often.
const RELOGINS_PER_SEC: f64 = 0.5;
/// Any one request of the control loop.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The `MockIdp` account name of user `i` (also the `sub` of its ID tokens).
pub(crate) fn username(i: usize) -> String {
    format!("user{i:03}")
}

/// The name the app greets user `i` with.
pub(crate) fn display_name(i: usize) -> String {
    format!("User {i:03}")
}

/// How a session ended, for the cookies that must not sign in again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    /// `POST /auth/logout`.
    Logout,
    /// `POST /auth/logout` while Redis was down (the store could not be told).
    LogoutWhileRedisDown,
    /// A back-channel logout from the provider.
    Backchannel,
    /// Written by an answer to a request that was in flight during the logout.
    WrittenAfterLogout,
}

impl Ended {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Ended::Logout => "logout",
            Ended::LogoutWhileRedisDown => "logout while Redis was down",
            Ended::Backchannel => "back-channel logout",
            Ended::WrittenAfterLogout => "cookie written by a request in flight during the logout",
        }
    }
}

/// A cookie of a session that ended.
#[derive(Clone, Debug)]
pub(crate) struct OldCookie {
    pub(crate) cookie: String,
    pub(crate) how: Ended,
    pub(crate) at: Instant,
}

/// A signed-in user's cookie as a request carries it.
#[derive(Clone, Debug)]
pub(crate) struct Snapshot {
    pub(crate) user: usize,
    pub(crate) cookie: String,
    pub(crate) generation: u64,
    pub(crate) login: u64,
    /// When this login completed.
    pub(crate) logged_in_at: Option<Instant>,
    /// Whether this login followed a logout of the same user at once.
    pub(crate) relogin: bool,
    /// Whether it completed within a second of an earlier login of the same user.
    pub(crate) same_second: bool,
}

/// The session cookies a browser keeps for the app (`auth_session` or its chunks).
#[derive(Clone, Debug, Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn from_header(header: &str) -> Self {
        let pairs = header.split("; ").filter_map(|pair| pair.split_once('='));
        Self(pairs.map(|(n, v)| (n.to_owned(), v.to_owned())).collect())
    }

    fn header(&self) -> String {
        self.0.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ")
    }

    /// Applies one `Set-Cookie` line; other cookies than the session's are ignored.
    fn apply(&mut self, line: &str) {
        let (pair, attributes) = line.split_once(';').unwrap_or((line, ""));
        let Some((name, value)) = pair.split_once('=') else { return };
        let name = name.trim();
        if name != COOKIE_NAME && !name.strip_prefix(COOKIE_NAME).is_some_and(|rest| rest.starts_with('.')) {
            return;
        }
        if attributes.split(';').any(|a| a.trim().eq_ignore_ascii_case("Max-Age=0")) {
            self.0.remove(name);
        } else {
            self.0.insert(name.to_owned(), value.trim().to_owned());
        }
    }
}

#[derive(Debug, Default)]
struct UserState {
    signed_in: bool,
    /// A sign-in or sign-out is under way.
    busy: bool,
    generation: u64,
    /// Sign-ins so far (the current login's number).
    login: u64,
    jar: Jar,
    logged_in_at: Option<Instant>,
    /// The current login followed a logout of the same user at once.
    relogin: bool,
    /// The Unix seconds the user's logins completed in (the last few), and whether the
    /// current one is within a second of an earlier one.
    login_seconds: VecDeque<u64>,
    same_second: bool,
    old: VecDeque<OldCookie>,
}

impl UserState {
    fn remember(&mut self, cookie: String, how: Ended) {
        if cookie.is_empty() || self.old.iter().any(|o| o.cookie == cookie) {
            return;
        }
        if self.old.len() == OLD_COOKIES {
            self.old.pop_front();
        }
        self.old.push_back(OldCookie { cookie, how, at: Instant::now() });
    }
}

/// The users and what is known about each.
#[derive(Debug)]
pub(crate) struct Pool {
    users: Vec<Mutex<UserState>>,
}

impl Pool {
    pub(crate) fn new(users: usize) -> Self {
        Self { users: (0..users.max(1)).map(|_| Mutex::new(UserState::default())).collect() }
    }

    pub(crate) fn len(&self) -> usize {
        self.users.len()
    }

    /// User `i`'s cookie, when signed in and not being signed out.
    pub(crate) fn signed_in(&self, i: usize) -> Option<Snapshot> {
        let state = lock(&self.users[i]);
        (state.signed_in && !state.busy).then(|| Snapshot {
            user: i,
            cookie: state.jar.header(),
            generation: state.generation,
            login: state.login,
            logged_in_at: state.logged_in_at,
            relogin: state.relogin,
            same_second: state.same_second,
        })
    }

    /// One of user `i`'s ended sessions' cookies (`pick` chooses which).
    pub(crate) fn old_cookie(&self, i: usize, pick: usize) -> Option<OldCookie> {
        let state = lock(&self.users[i]);
        let len = state.old.len();
        (len > 0).then(|| state.old[pick % len].clone())
    }

    /// Records the `Set-Cookie` lines of an answer to a request sent with `sent`. Returns
    /// whether the user is still in the same login (else the answer raced a sign-out,
    /// and a session cookie it writes is remembered as ended).
    pub(crate) fn answered(&self, sent: &Snapshot, set_cookies: &[String]) -> bool {
        let mut state = lock(&self.users[sent.user]);
        if state.generation != sent.generation {
            let mut written = Jar::from_header(&sent.cookie);
            let before = written.header();
            for line in set_cookies {
                written.apply(line);
            }
            let after = written.header();
            if after != before {
                state.remember(after, Ended::WrittenAfterLogout);
            }
            return false;
        }
        for line in set_cookies {
            state.jar.apply(line);
        }
        if state.jar.0.is_empty() {
            // The app cleared the session cookie: this browser is signed out now.
            state.signed_in = false;
        }
        true
    }

    fn signed_in_count(&self) -> usize {
        self.users.iter().filter(|u| lock(u).signed_in).count()
    }
}

/// How often the control loop acts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rates {
    pub(crate) logins: f64,
    pub(crate) logouts: f64,
    pub(crate) backchannel: f64,
}

/// Signs users in and out: through the app and `MockIdp` with an HTTP client that follows
/// no redirect, as [`sign_in`] does.
#[derive(Debug)]
pub(crate) struct Control {
    pool: Arc<Pool>,
    base: String,
    http: reqwest::Client,
    idp: Arc<MockIdp>,
}

/// What an action the control loop runs.
#[derive(Clone, Copy, Debug)]
enum Action {
    Login,
    Logout,
    Backchannel,
    Relogin,
}

impl Control {
    pub(crate) fn new(pool: Arc<Pool>, base: String, idp: Arc<MockIdp>) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(CONTROL_SLOTS)
            .no_proxy()
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { pool, base, http, idp })
    }

    /// Signs every user of the pool in (8 at a time); any failure stops the soak.
    pub(crate) async fn sign_in_everyone(self: &Arc<Self>) -> Result<(), String> {
        let clock = Arc::new(Clock::new(Instant::now(), false));
        let tally = Arc::new(Mutex::new(Tally::default()));
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (this, clock, tally, next) =
                (Arc::clone(self), Arc::clone(&clock), Arc::clone(&tally), Arc::clone(&next));
            tasks.spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= this.pool.len() {
                        break;
                    }
                    this.login(i, false, &clock, &tally).await;
                }
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined.map_err(|e| e.to_string())?;
        }
        let tally = lock(&tally);
        if let Some((kind, first)) = tally.first_errors.iter().next() {
            return Err(format!("signing the pool in failed: {kind}: {first}"));
        }
        Ok(())
    }

    /// Runs logins, logouts, back-channel logouts and quick re-logins at `rates` until
    /// `stop_at`, at most [`CONTROL_SLOTS`] at once, and waits for the last ones.
    pub(crate) async fn run(
        self: Arc<Self>,
        rates: Rates,
        clock: Arc<Clock>,
        tally: Arc<Mutex<Tally>>,
        stop_at: Instant,
    ) {
        let slots = Arc::new(tokio::sync::Semaphore::new(CONTROL_SLOTS));
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x50a4);
        let mut done = [0u64; 4];
        let mut tasks = tokio::task::JoinSet::new();
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        while Instant::now() < stop_at {
            tick.tick().await;
            let secs = clock.start().elapsed().as_secs_f64();
            let schedule = [
                (Action::Login, rates.logins),
                (Action::Logout, rates.logouts),
                (Action::Backchannel, rates.backchannel),
                (Action::Relogin, if rates.logouts > 0.0 { RELOGINS_PER_SEC } else { 0.0 }),
            ];
            for (k, (action, rate)) in schedule.into_iter().enumerate() {
                while (done[k] as f64) < rate * secs {
                    done[k] += 1;
                    let Some(user) = self.pick(action, &mut rng) else {
                        lock(&tally).outcome(format!("control: no user to {action:?}"));
                        continue;
                    };
                    let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                        lock(&tally).outcome("control: action skipped, all slots busy");
                        continue;
                    };
                    let (this, clock, tally) = (Arc::clone(&self), Arc::clone(&clock), Arc::clone(&tally));
                    tasks.spawn(async move {
                        match action {
                            Action::Login => this.login(user, false, &clock, &tally).await,
                            Action::Logout => {
                                this.logout(user, &clock, &tally).await;
                            }
                            Action::Backchannel => this.backchannel(user, &clock, &tally).await,
                            Action::Relogin => {
                                if this.logout(user, &clock, &tally).await {
                                    this.login(user, true, &clock, &tally).await;
                                }
                            }
                        }
                        drop(permit);
                    });
                }
            }
        }
        while tasks.join_next().await.is_some() {}
    }

    /// A user for `action`: signed out for a login, signed in for the others; for a quick
    /// re-login, the one who signed in last.
    fn pick(&self, action: Action, rng: &mut rand::rngs::StdRng) -> Option<usize> {
        let want_signed_in = !matches!(action, Action::Login);
        let fits = |i: usize| {
            let state = lock(&self.pool.users[i]);
            !state.busy && state.signed_in == want_signed_in
        };
        if let Action::Relogin = action {
            let latest =
                (0..self.pool.len()).filter(|&i| fits(i)).max_by_key(|&i| lock(&self.pool.users[i]).logged_in_at);
            return latest;
        }
        let n = self.pool.len();
        let start = rng.gen_range(0..n);
        (0..n).map(|k| (start + k) % n).find(|&i| fits(i))
    }

    /// Marks user `i` busy for a sign-in or sign-out (`signed_in`: the state it must be
    /// in); returns its cookie then.
    fn begin(&self, i: usize, signed_in: bool) -> Option<String> {
        let mut state = lock(&self.pool.users[i]);
        if state.busy || state.signed_in != signed_in {
            return None;
        }
        state.busy = true;
        state.generation += 1;
        Some(state.jar.header())
    }

    /// Signs user `i` in through the whole flow; `relogin`: right after their logout.
    async fn login(&self, i: usize, relogin: bool, clock: &Clock, tally: &Mutex<Tally>) {
        if self.begin(i, false).is_none() {
            return;
        }
        let began = Instant::now();
        let outcome = sign_in(&self.http, &self.base, Some(&username(i)), None).await;
        let ended = Instant::now();
        let mut state = lock(&self.pool.users[i]);
        state.busy = false;
        match outcome {
            Ok(cookie) => {
                state.jar = Jar::from_header(&cookie);
                state.signed_in = true;
                state.login += 1;
                state.logged_in_at = Some(ended);
                state.relogin = relogin;
                let second = auth_core::unix_now();
                state.same_second = state.login_seconds.iter().any(|earlier| second.abs_diff(*earlier) <= 1);
                if state.login_seconds.len() == OLD_COOKIES {
                    state.login_seconds.pop_front();
                }
                state.login_seconds.push_back(second);
                drop(state);
                let mut tally = lock(tally);
                tally.login(ended - began);
                tally.outcome("logins completed");
            }
            Err(failure) => {
                drop(state);
                let status = failure.status.map_or(0, |s| s.as_u16());
                let mut tally = lock(tally);
                if clock.idp_down_during(began, ended)
                    && (failure.step == LoginStep::Provider || (failure.step == LoginStep::Callback && status >= 500))
                {
                    tally.expected(tally::LOGIN_IDP_DOWN);
                } else if clock.redis_down_during(began, ended) && failure.step == LoginStep::Callback && status == 503
                {
                    tally.expected(tally::LOGIN_REDIS_DOWN);
                } else {
                    let kind = if status >= 500 && failure.step != LoginStep::Provider {
                        tally::UNEXPECTED_5XX
                    } else {
                        tally::LOGIN_FAILED
                    };
                    tally.error(kind, || format!("login of {} at {:.1} s: {failure}", username(i), secs(clock, began)));
                }
            }
        }
    }

    /// `POST /auth/logout` with `Origin`; returns whether user `i` is signed out.
    async fn logout(&self, i: usize, clock: &Clock, tally: &Mutex<Tally>) -> bool {
        let Some(cookie) = self.begin(i, true) else { return false };
        let began = Instant::now();
        let answer = self
            .http
            .post(format!("{}/auth/logout", self.base))
            .header(ORIGIN, &self.base)
            .header(COOKIE, &cookie)
            .send()
            .await;
        let ended = Instant::now();
        let how = if clock.redis_down_during(began, ended) { Ended::LogoutWhileRedisDown } else { Ended::Logout };
        let problem = match &answer {
            Err(error) => Some((tally::LOGOUT_FAILED, error.to_string())),
            Ok(answer) if answer.status().is_server_error() => {
                Some((tally::UNEXPECTED_5XX, answer.status().to_string()))
            }
            Ok(answer) => {
                let cleared = answer.headers().get_all(SET_COOKIE).iter().any(|v| {
                    v.to_str().is_ok_and(|v| v.starts_with(&format!("{COOKIE_NAME}=")) && v.contains("Max-Age=0"))
                });
                let redirected = answer.status() == StatusCode::SEE_OTHER && answer.headers().contains_key(LOCATION);
                (!cleared || !redirected)
                    .then(|| (tally::LOGOUT_FAILED, format!("{} (session cookie cleared: {cleared})", answer.status())))
            }
        };
        let mut state = lock(&self.pool.users[i]);
        state.busy = false;
        if problem.is_none() {
            state.signed_in = false;
            state.jar = Jar::default();
            state.remember(cookie, how);
        }
        drop(state);
        let mut tally = lock(tally);
        match problem {
            Some((kind, detail)) => {
                tally.error(kind, || format!("logout of {} at {:.1} s: {detail}", username(i), secs(clock, began)));
                false
            }
            None => {
                tally.outcome(format!("logouts ({})", how.label()));
                true
            }
        }
    }

    /// A back-channel logout of user `i` (every session of its `sub`), as the provider
    /// sends it.
    async fn backchannel(&self, i: usize, clock: &Clock, tally: &Mutex<Tally>) {
        let Some(cookie) = self.begin(i, true) else { return };
        let began = Instant::now();
        let uri = format!("{}/auth/backchannel-logout", self.base);
        let answer = self.idp.backchannel_logout(&uri, &LogoutToken::for_subject(username(i))).await;
        let ended = Instant::now();
        let mut state = lock(&self.pool.users[i]);
        state.busy = false;
        let status = answer.as_ref().map(|a| a.status).ok();
        if status == Some(200) {
            state.signed_in = false;
            state.jar = Jar::default();
            state.remember(cookie, Ended::Backchannel);
        }
        drop(state);
        let mut tally = lock(tally);
        match answer {
            Ok(answer) if answer.status == 200 => tally.outcome("back-channel logouts"),
            Ok(answer) if answer.status == 503 && clock.redis_down_during(began, ended) => {
                tally.expected(tally::BACKCHANNEL_REDIS_DOWN);
            }
            Ok(answer) => {
                let kind = if answer.status >= 500 { tally::UNEXPECTED_5XX } else { tally::BACKCHANNEL_FAILED };
                tally.error(kind, || {
                    format!(
                        "back-channel logout of {} at {:.1} s: {} {}",
                        username(i),
                        secs(clock, began),
                        answer.status,
                        answer.body
                    )
                });
            }
            Err(error) => tally.error(tally::BACKCHANNEL_FAILED, || {
                format!("back-channel logout of {} at {:.1} s: {error}", username(i), secs(clock, began))
            }),
        }
    }

    /// Once the traffic has stopped and everything is up: every signed-in user must be
    /// served signed in, every ended session's cookie anonymous.
    pub(crate) async fn final_check(&self, clock: &Clock, tally: &Mutex<Tally>) {
        let signed_in = self.pool.signed_in_count();
        lock(tally).outcome(format!("final check: users signed in: {signed_in}"));
        for i in 0..self.pool.len() {
            if let Some(snapshot) = self.pool.signed_in(i) {
                let began = Instant::now();
                match self.me(&snapshot.cookie).await {
                    Ok((seen, set_cookies)) => {
                        self.pool.answered(&snapshot, &set_cookies);
                        let mut tally = lock(tally);
                        match seen {
                            Some(sub) if sub == username(i) => tally.outcome("final check: signed in as expected"),
                            Some(other) => tally
                                .error(tally::WRONG_USER, || format!("final check: {} served as {other}", username(i))),
                            None => tally.lost(&snapshot, || {
                                format!(
                                    "final check at {:.1} s: {} (login #{}{}) served anonymous",
                                    secs(clock, began),
                                    username(i),
                                    snapshot.login,
                                    if snapshot.same_second { " within 1 s of an earlier login" } else { "" }
                                )
                            }),
                        }
                    }
                    Err(error) => {
                        lock(tally).error(tally::WRONG_ANSWER, || format!("final check of {}: {error}", username(i)))
                    }
                }
            }
            let old: Vec<OldCookie> = lock(&self.pool.users[i]).old.iter().cloned().collect();
            for old in old {
                match self.me(&old.cookie).await {
                    Ok((seen, _)) => {
                        let served = seen.is_some().then_some(old.how.label());
                        lock(tally).revoked(served, || {
                            format!(
                                "final check: {}'s cookie ended by {} {:.1} s earlier was served signed in",
                                username(i),
                                old.how.label(),
                                old.at.elapsed().as_secs_f64()
                            )
                        });
                    }
                    Err(error) => {
                        lock(tally).error(tally::WRONG_ANSWER, || format!("final check of {}: {error}", username(i)))
                    }
                }
            }
        }
    }

    /// `GET /me` with `cookie`: the `sub` it is served as (`None`: anonymous), and the
    /// `Set-Cookie` lines.
    async fn me(&self, cookie: &str) -> Result<(Option<String>, Vec<String>), String> {
        let answer = self
            .http
            .get(format!("{}/me", self.base))
            .header(COOKIE, cookie)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let set_cookies: Vec<String> =
            answer.headers().get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect();
        let status = answer.status();
        let body = answer.text().await.map_err(|e| e.to_string())?;
        match super::traffic::seen("/me", status.as_u16(), body.as_bytes()) {
            super::traffic::Seen::SignedIn(sub) => Ok((Some(sub), set_cookies)),
            super::traffic::Seen::Anonymous => Ok((None, set_cookies)),
            super::traffic::Seen::Other(what) => Err(what),
        }
    }
}

/// Seconds from the start of the traffic to `at`.
pub(crate) fn secs(clock: &Clock, at: Instant) -> f64 {
    clock.ms(at) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jar_keeps_session_cookies_as_a_browser_does() {
        let mut jar = Jar::from_header("auth_session=abc");
        jar.apply("auth_pending.x=1; Path=/");
        jar.apply("auth_session.0=p0; Path=/; HttpOnly");
        jar.apply("auth_session.1=p1; Path=/; HttpOnly");
        jar.apply("auth_session=; Path=/; Max-Age=0");
        assert_eq!(jar.header(), "auth_session.0=p0; auth_session.1=p1");
        jar.apply("auth_sessionX=1");
        assert_eq!(jar.0.len(), 2, "another cookie whose name starts alike is not the session's");
    }

    #[test]
    fn an_answer_that_raced_a_logout_is_remembered_as_ended() {
        let pool = Pool::new(1);
        {
            let mut state = lock(&pool.users[0]);
            state.signed_in = true;
            state.jar = Jar::from_header("auth_session=old");
        }
        let sent = pool.signed_in(0).unwrap_or_else(|| panic!("signed in"));
        assert!(!sent.relogin);
        assert!(pool.answered(&sent, &["auth_session=new; Path=/".into()]));
        assert_eq!(pool.signed_in(0).map(|s| s.cookie).as_deref(), Some("auth_session=new"));
        lock(&pool.users[0]).generation += 1;
        assert!(!pool.answered(&sent, &["auth_session=later; Path=/".into()]));
        assert_eq!(
            pool.old_cookie(0, 0).map(|o| (o.cookie, o.how)),
            Some(("auth_session=later".into(), Ended::WrittenAfterLogout))
        );
    }
}
