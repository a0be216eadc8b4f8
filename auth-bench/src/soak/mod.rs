//! The soak (`cargo xtask soak`): a real app process under mixed traffic for a while, with
//! its identity provider and its session store failing and coming back, counting what
//! users would notice. It answers questions the hot-path bench cannot: do signed-in people
//! stay signed in through refreshes and outages, does a signed-out session stay out, does
//! anything answer 5xx, does the process keep growing.
//!
//! Per run, once per session store ([`Store`]): an in-process `MockIdp` (on a thread of its
//! own) with a pool of users and short access tokens, so sessions refresh all the time; for
//! Redis, a throwaway `redis-server` ([`crate::redis_server`]); the `axum-basic` example
//! started as a process from a config file written for them; then:
//!
//! - every user of the pool signs in once through the real flow (the app's login route,
//!   `MockIdp`'s login form, the callback), keeping their cookies as a browser would;
//! - data connections (module `traffic`) send, in a closed loop, anonymous requests, requests of
//!   signed-in users (checked to be answered for that user), replays of cookies that were
//!   signed out, cookies with a flipped byte, and 16 KB cookies;
//! - a control loop (module `users`) signs users in, out (`POST /auth/logout` with `Origin`),
//!   and, with Redis, out by back-channel logout, a few times a second;
//! - on a [`Plan`], `MockIdp` answers `503` to everything for up to 10 s, and (Redis)
//!   `redis-server` saves, stops, and starts again on its port.
//!
//! Each user's state (signed in, signed out and with which old cookies) is tracked, so each
//! answer is judged: a signed-in user answered anonymous is a lost session (expected only
//! while Redis is down), an old cookie answered signed in is a revoked session served. The
//! [`report`] has the counts, latency per phase and the app's memory, and the run fails on
//! the [gates](report::StoreReport::failures).

mod app;
mod clock;
pub mod report;
mod tally;
mod traffic;
mod users;

use crate::redis_server::RedisServer;
use app::AppProcess;
use auth_testkit::{Fault, MockIdp, MockUser};
use clock::Clock;
use report::{Rss, StoreReport};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tally::Tally;
use users::Pool;

/// Where the app keeps its sessions in one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// `session_store = "redis://..."`: server-side sessions, revocable.
    Redis,
    /// The default: the session sealed in the cookie.
    Cookie,
}

impl Store {
    /// The name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Store::Redis => "redis",
            Store::Cookie => "cookie",
        }
    }

    /// The store named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [Store::Redis, Store::Cookie].into_iter().find(|s| s.name() == name)
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct SoakSpec {
    /// The `axum-basic` binary.
    pub app: PathBuf,
    /// How long the traffic runs, per store.
    pub duration: Duration,
    /// Keep-alive connections to the app at most (data connections plus the control
    /// loop's 16).
    pub connections: usize,
    /// Users in the pool.
    pub users: usize,
    /// New logins per second (of users who are signed out).
    pub logins_per_sec: f64,
    /// Logouts per second.
    pub logouts_per_sec: f64,
    /// Back-channel logouts per second (Redis only).
    pub backchannel_per_sec: f64,
    /// Lifetime of `MockIdp`'s access tokens (`refresh_margin_secs = 0`).
    pub access_token_ttl: Duration,
    /// The app's RSS may grow at most this much from the start of the traffic to its end.
    pub rss_bound_mib: u64,
    /// Where configs, logs and Redis files go (`target/soak/<store>/`).
    pub dir: PathBuf,
}

/// When the outages happen, from the start of the traffic.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan {
    /// `MockIdp` starts answering `503`.
    pub idp_down: Duration,
    /// For how long.
    pub idp_for: Duration,
    /// `redis-server` stops (Redis runs only).
    pub redis_down: Option<Duration>,
    /// For how long it stays down (then it starts again and loads its data).
    pub redis_for: Duration,
}

impl Plan {
    /// The outages of a run of `duration`: the provider down from a quarter of the run for
    /// a third of it (at most 10 s, so longer than the access tokens live: sessions must
    /// ride out failing refreshes), Redis down from 60 % of the run for a sixth of it (at
    /// most 5 s); what is left is the "after" phase, where everything must have recovered.
    pub fn for_run(duration: Duration, store: Store) -> Self {
        Self {
            idp_down: duration.mul_f64(0.25),
            idp_for: (duration / 3).min(Duration::from_secs(10)),
            redis_down: (store == Store::Redis).then(|| duration.mul_f64(0.6)),
            redis_for: (duration / 6).min(Duration::from_secs(5)),
        }
    }
}

/// Runs the soak against one store.
///
/// # Errors
/// When something cannot be set up (the app does not start, `redis-server` is missing,
/// the pool cannot sign in); what the traffic finds is in the report, not an error.
pub fn run(spec: &SoakSpec, store: Store) -> Result<StoreReport, String> {
    let dir = spec.dir.join(store.name());
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let idp = IdpHost::start(spec)?;
    let redis = match store {
        Store::Redis => Some(RedisServer::start(&dir.join("redis"))?),
        Store::Cookie => None,
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut extra = String::from("refresh_margin_secs = 0\n");
    if let Some(redis) = &redis {
        extra.push_str(&format!("session_store = \"{}\"\n", redis.url()));
    }
    let config = dir.join("auth.toml");
    let toml = crate::fixtures::mock_idp_toml(&idp.idp, &format!("{base}/oauth2callback"), &extra);
    std::fs::write(&config, toml).map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    let app = AppProcess::start(&spec.app, &config, port, &dir.join("app.log"))?;
    let idle_kib = app.rss_kib();

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let result = runtime.block_on(drive(spec, store, &idp.idp, redis, &app));
    let (tally, clock, rss_samples, start_kib, end_kib) = result?;
    let hwm_kib = app.hwm_kib();
    let log = app.stop();
    let hits = idp.idp.hits();
    drop(idp);

    let rss = Rss::new(idle_kib, start_kib, end_kib, hwm_kib, rss_samples, spec.rss_bound_mib);
    Ok(StoreReport::new(store, spec, &clock, &tally, hits, rss, log))
}

type Driven = (Tally, Arc<Clock>, Vec<(f64, u64)>, Option<u64>, Option<u64>);

/// Signs the pool in, runs the traffic and the outages for `spec.duration`, then checks
/// every user once more.
async fn drive(
    spec: &SoakSpec,
    store: Store,
    idp: &Arc<MockIdp>,
    redis: Option<RedisServer>,
    app: &AppProcess,
) -> Result<Driven, String> {
    let pool = Arc::new(Pool::new(spec.users));
    let control = Arc::new(users::Control::new(Arc::clone(&pool), app.base.clone(), Arc::clone(idp))?);
    println!("  signing in {} users through the login flow", spec.users);
    control.sign_in_everyone().await?;

    let start_kib = app.rss_kib();
    let clock = Arc::new(Clock::new(Instant::now(), store == Store::Redis));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop_at = clock.start() + spec.duration;
    let plan = Plan::for_run(spec.duration, store);

    let outages = tokio::spawn(outages(plan, Arc::clone(&clock), Arc::clone(idp), redis));
    let pid = app.pid();
    let sampler = tokio::spawn(async move {
        let mut samples = Vec::new();
        let started = Instant::now();
        while Instant::now() < stop_at {
            if let Some(kib) = crate::cpu::status_kib(pid, "VmRSS") {
                samples.push((started.elapsed().as_secs_f64(), kib));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        samples
    });
    let data = spec.connections.saturating_sub(users::CONTROL_SLOTS).max(1);
    let traffic = traffic::Traffic::new(app.addr, Arc::clone(&pool), Arc::clone(&clock), Arc::clone(&tally), stop_at)?;
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..data {
        tasks.spawn(traffic.clone().worker(worker as u64));
    }
    let rates = users::Rates {
        logins: spec.logins_per_sec,
        logouts: spec.logouts_per_sec,
        backchannel: if store == Store::Redis { spec.backchannel_per_sec } else { 0.0 },
    };
    let control_loop = tokio::spawn(Arc::clone(&control).run(rates, Arc::clone(&clock), Arc::clone(&tally), stop_at));
    while let Some(joined) = tasks.join_next().await {
        joined.map_err(|e| format!("a traffic worker failed: {e}"))?;
    }
    control_loop.await.map_err(|e| format!("the control loop failed: {e}"))?;
    let end_kib = app.rss_kib();
    let rss_samples = sampler.await.map_err(|e| e.to_string())?;
    let redis = outages.await.map_err(|e| format!("the outage task failed: {e}"))??;

    // Everything is up again (past the grace Redis's recovery is given): every user once
    // more, and every cookie whose session ended.
    if let Some(up) = clock.at(clock::Event::RedisUp) {
        let settled = clock.start() + Duration::from_millis(up) + clock::REDIS_GRACE;
        tokio::time::sleep_until(settled.into()).await;
    }
    control.final_check(&clock, &tally).await;
    drop(redis);
    let tally = lock(&tally).clone();
    Ok((tally, clock, rss_samples, start_kib, end_kib))
}

/// The provider's outage, then Redis's (stopped after saving, started again on its port).
/// Returns the Redis server, to be stopped once the final check is done.
async fn outages(
    plan: Plan,
    clock: Arc<Clock>,
    idp: Arc<MockIdp>,
    redis: Option<RedisServer>,
) -> Result<Option<RedisServer>, String> {
    let start = clock.start();
    tokio::time::sleep_until((start + plan.idp_down).into()).await;
    idp.set_fault(Fault::Unavailable);
    clock.mark(clock::Event::IdpDown);
    println!("  {:5.1} s: MockIdp answers 503 to everything", start.elapsed().as_secs_f64());
    tokio::time::sleep_until((start + plan.idp_down + plan.idp_for).into()).await;
    idp.clear_faults();
    clock.mark(clock::Event::IdpUp);
    println!("  {:5.1} s: MockIdp is back", start.elapsed().as_secs_f64());
    let (Some(mut redis), Some(down)) = (redis, plan.redis_down) else { return Ok(None) };
    tokio::time::sleep_until((start + down).into()).await;
    clock.mark(clock::Event::RedisDown);
    let redis =
        tokio::task::spawn_blocking(move || redis.stop_saving().map(|()| redis)).await.map_err(|e| e.to_string())??;
    println!("  {:5.1} s: redis-server saved and stopped", start.elapsed().as_secs_f64());
    tokio::time::sleep_until((start + down + plan.redis_for).into()).await;
    let mut redis = redis;
    let redis =
        tokio::task::spawn_blocking(move || redis.start_again().map(|()| redis)).await.map_err(|e| e.to_string())??;
    clock.mark(clock::Event::RedisUp);
    println!(
        "  {:5.1} s: redis-server answers again on port {} (data loaded)",
        start.elapsed().as_secs_f64(),
        redis.port()
    );
    Ok(Some(redis))
}

/// `MockIdp` on a thread and runtime of its own, so that the load generator's busy runtime
/// does not slow its answers (it signs every ID token with RSA-2048).
struct IdpHost {
    idp: Arc<MockIdp>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl IdpHost {
    fn start(spec: &SoakSpec) -> Result<Self, String> {
        let mut builder = MockIdp::builder().access_token_ttl(spec.access_token_ttl);
        for i in 0..spec.users {
            let name = users::username(i);
            builder =
                builder.user(MockUser::new(&name).email(format!("{name}@example.test")).name(users::display_name(i)));
        }
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("mock-idp".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = started_tx.send(Err(error.to_string()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let idp = builder.start().await.map_err(|e| format!("MockIdp: {e}"));
                    let _ = started_tx.send(idp.map(Arc::new));
                    // Serve until told to stop.
                    let _ = stopped.await;
                });
            })
            .map_err(|e| e.to_string())?;
        let idp = started_rx.recv().map_err(|_| "the MockIdp thread ended before it started".to_owned())??;
        Ok(Self { idp, stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for IdpHost {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
