//! The soak's findings per store, the gates that fail the run, and the Markdown and JSON
//! written to `target/soak/`.

use super::app::LogSummary;
use super::clock::{Clock, Event, Phase};
use super::tally::Tally;
use super::{Plan, SoakSpec, Store};
use auth_testkit::Hits;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The app's resident memory over the run.
#[derive(Clone, Debug, Serialize)]
pub struct Rss {
    /// Right after it started, KiB.
    pub idle_kib: Option<u64>,
    /// When the traffic started (the pool signed in), KiB.
    pub start_kib: Option<u64>,
    /// When the traffic ended, KiB.
    pub end_kib: Option<u64>,
    /// The peak (`VmHWM`), KiB.
    pub peak_kib: Option<u64>,
    /// `end - start`, KiB.
    pub growth_kib: Option<i64>,
    /// Growth over the second half of the traffic (the sample at half time to the last):
    /// near zero once connections, caches and the allocator have settled; a leak keeps
    /// growing. KiB.
    pub second_half_growth_kib: Option<i64>,
    /// The growth allowed, KiB.
    pub bound_kib: u64,
    /// Every second of the traffic: (seconds, KiB).
    pub samples: Vec<(f64, u64)>,
}

impl Rss {
    pub(crate) fn new(
        idle_kib: Option<u64>,
        start_kib: Option<u64>,
        end_kib: Option<u64>,
        peak_kib: Option<u64>,
        samples: Vec<(f64, u64)>,
        bound_mib: u64,
    ) -> Self {
        let growth_kib = match (start_kib, end_kib) {
            (Some(start), Some(end)) => Some(end as i64 - start as i64),
            _ => None,
        };
        let half = samples.last().map(|(secs, _)| secs / 2.0);
        let middle = half.and_then(|half| samples.iter().find(|(secs, _)| *secs >= half));
        let second_half_growth_kib = match (middle, samples.last()) {
            (Some((_, middle)), Some((_, last))) => Some(*last as i64 - *middle as i64),
            _ => None,
        };
        Self {
            idle_kib,
            start_kib,
            end_kib,
            peak_kib,
            growth_kib,
            second_half_growth_kib,
            bound_kib: bound_mib * 1024,
            samples,
        }
    }
}

/// Requests and latency of one phase.
#[derive(Clone, Debug, Serialize)]
pub struct PhaseReport {
    /// What it was.
    pub phase: String,
    /// Requests that began in it and were answered.
    pub requests: u64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
}

/// When the outages happened, seconds from the start of the traffic.
#[derive(Clone, Debug, Serialize)]
pub struct Timeline {
    /// MockIdp started answering 503.
    pub idp_down_s: Option<f64>,
    /// MockIdp answered again.
    pub idp_up_s: Option<f64>,
    /// redis-server was stopped.
    pub redis_down_s: Option<f64>,
    /// redis-server answered again, its data loaded.
    pub redis_up_s: Option<f64>,
    /// The end of the traffic.
    pub end_s: f64,
}

/// What `MockIdp` served.
#[derive(Clone, Debug, Serialize)]
pub struct IdpHits {
    /// `/authorize` (login pages).
    pub authorize: usize,
    /// `/token`: code exchanges and refreshes.
    pub token: usize,
    /// `/userinfo`.
    pub userinfo: usize,
    /// Discovery documents.
    pub discovery: usize,
    /// Key sets.
    pub jwks: usize,
}

/// One store's run.
#[derive(Clone, Debug, Serialize)]
pub struct StoreReport {
    /// `redis` or `cookie`.
    pub store: String,
    /// Traffic duration, s.
    pub seconds: f64,
    /// Users in the pool.
    pub users: usize,
    /// Keep-alive connections at most.
    pub connections: usize,
    /// When the outages happened.
    pub timeline: Timeline,
    /// Data requests answered.
    pub requests: u64,
    /// Of them, per second.
    pub requests_per_sec: f64,
    /// Per phase.
    pub phases: Vec<PhaseReport>,
    /// Errors by kind (a 5xx from the app, a timeout, a wrong answer, a failed login...).
    pub errors: BTreeMap<String, u64>,
    /// The first error of each kind.
    pub first_errors: BTreeMap<String, String>,
    /// Answers an outage excuses (not errors).
    pub expected: BTreeMap<String, u64>,
    /// Other counts: logins, logouts, what 16 KB cookies got, ...
    pub outcomes: BTreeMap<String, u64>,
    /// Logins answered anonymous outside Redis's outage (each counted once).
    pub sessions_lost: usize,
    /// Of them, by kind of login.
    pub sessions_lost_by_kind: BTreeMap<String, u64>,
    /// Requests answered so.
    pub lost_requests: u64,
    /// The first request of each lost login (at most 30).
    pub lost_examples: Vec<String>,
    /// Replays of cookies whose session ended (logout, back-channel logout).
    pub revoked_checks: u64,
    /// Of them, answered signed in, by how the session had ended.
    pub revoked_served: BTreeMap<String, u64>,
    /// The first of them (at most 30).
    pub revoked_served_examples: Vec<String>,
    /// Whole logins: median and 99th percentile, ms.
    pub login_p50_ms: f64,
    /// 99th percentile of whole logins, ms.
    pub login_p99_ms: f64,
    /// What MockIdp served.
    pub idp: IdpHits,
    /// After Redis answered again: the first signed-in answer, ms.
    pub redis_first_signed_in_ms: Option<u64>,
    /// After Redis answered again: the last anonymous answer to a signed-in user, ms.
    pub redis_last_anonymous_ms: Option<u64>,
    /// The app's memory.
    pub rss: Rss,
    /// The app's log.
    pub log: LogSummary,
    /// Why this run fails; empty when it passes.
    pub failures: Vec<String>,
}

impl StoreReport {
    pub(crate) fn new(
        store: Store,
        spec: &SoakSpec,
        clock: &Clock,
        tally: &Tally,
        hits: Hits,
        rss: Rss,
        log: LogSummary,
    ) -> Self {
        let secs = |event| clock.at(event).map(|ms| ms as f64 / 1000.0);
        let phases = Phase::ALL
            .iter()
            .zip(&tally.phases)
            .filter(|(_, p)| p.requests > 0)
            .map(|(phase, p)| PhaseReport {
                phase: phase.label().into(),
                requests: p.requests,
                p50_ms: p.latency.value_at_quantile(0.5) as f64 / 1000.0,
                p99_ms: p.latency.value_at_quantile(0.99) as f64 / 1000.0,
                max_ms: p.latency.max() as f64 / 1000.0,
            })
            .collect();
        let strings = |map: &BTreeMap<&'static str, u64>| map.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
        let mut report = Self {
            store: store.name().into(),
            seconds: spec.duration.as_secs_f64(),
            users: spec.users,
            connections: spec.connections,
            timeline: Timeline {
                idp_down_s: secs(Event::IdpDown),
                idp_up_s: secs(Event::IdpUp),
                redis_down_s: secs(Event::RedisDown),
                redis_up_s: secs(Event::RedisUp),
                end_s: spec.duration.as_secs_f64(),
            },
            requests: tally.requests,
            requests_per_sec: tally.requests as f64 / spec.duration.as_secs_f64().max(1e-9),
            phases,
            errors: strings(&tally.errors),
            first_errors: tally.first_errors.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect(),
            expected: strings(&tally.expected),
            outcomes: tally.outcomes.clone(),
            sessions_lost: tally.lost.len(),
            sessions_lost_by_kind: tally.lost.values().fold(BTreeMap::new(), |mut by, kind| {
                *by.entry((*kind).to_owned()).or_default() += 1;
                by
            }),
            lost_requests: tally.lost_requests,
            lost_examples: tally.lost_examples.clone(),
            revoked_checks: tally.revoked_checks,
            revoked_served: strings(&tally.revoked_served),
            revoked_served_examples: tally.revoked_examples.clone(),
            login_p50_ms: tally.logins.value_at_quantile(0.5) as f64 / 1000.0,
            login_p99_ms: tally.logins.value_at_quantile(0.99) as f64 / 1000.0,
            idp: IdpHits {
                authorize: hits.authorize,
                token: hits.token,
                userinfo: hits.userinfo,
                discovery: hits.discovery,
                jwks: hits.jwks,
            },
            redis_first_signed_in_ms: tally.recovery.first_signed_in_ms,
            redis_last_anonymous_ms: tally.recovery.last_anonymous_ms,
            rss,
            log,
            failures: Vec::new(),
        };
        report.failures = report.gates();
        report
    }

    /// The gates: no error of any kind (a 5xx nothing excuses, a timeout, a wrong
    /// answer, a failed login or logout), no lost session, no revoked session served, no
    /// panic in the app's log, and RSS growth within the bound.
    fn gates(&self) -> Vec<String> {
        let mut failures = Vec::new();
        for (kind, count) in &self.errors {
            let first = self.first_errors.get(kind).map(String::as_str).unwrap_or_default();
            failures.push(format!("{count} × {kind} (first: {first})"));
        }
        if self.sessions_lost > 0 {
            failures.push(format!(
                "{} sessions lost outside the Redis outage ({:?}; {} requests; first: {})",
                self.sessions_lost,
                self.sessions_lost_by_kind,
                self.lost_requests,
                self.lost_examples.first().map(String::as_str).unwrap_or_default()
            ));
        }
        let served: u64 = self.revoked_served.values().sum();
        if served > 0 {
            failures.push(format!(
                "{served} requests with the cookie of an ended session served signed in ({:?}; first: {})",
                self.revoked_served,
                self.revoked_served_examples.first().map(String::as_str).unwrap_or_default()
            ));
        }
        if self.log.panics > 0 {
            failures.push(format!("the app panicked: {}", self.log.first_panic.as_deref().unwrap_or_default()));
        }
        match self.rss.growth_kib {
            Some(growth) if growth > self.rss.bound_kib as i64 => failures.push(format!(
                "RSS grew {:.1} MiB, more than the {} MiB allowed",
                growth as f64 / 1024.0,
                self.rss.bound_kib / 1024
            )),
            Some(_) => {}
            None => failures.push("the app's RSS could not be read".into()),
        }
        failures
    }

    /// This store's section of the Markdown report.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let verdict = if self.failures.is_empty() { "**passed**" } else { "**FAILED**" };
        let _ = writeln!(md, "### `session_store`: {} — {verdict}\n", self.store);
        let t = &self.timeline;
        let at = |s: Option<f64>| s.map_or_else(|| "-".to_owned(), |s| format!("{s:.1} s"));
        let _ = writeln!(
            md,
            "{} s of traffic, {} users, up to {} connections. IdP down {} → {}; Redis down {} → {} (answering again, data loaded).\n",
            self.seconds,
            self.users,
            self.connections,
            at(t.idp_down_s),
            at(t.idp_up_s),
            at(t.redis_down_s),
            at(t.redis_up_s)
        );
        let rss = |k: Option<u64>| k.map_or_else(|| "?".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0));
        let served: u64 = self.revoked_served.values().sum();
        let errors: u64 = self.errors.values().sum();
        let _ = writeln!(md, "| measure | value |\n|---|---:|");
        let rows = [
            ("requests answered (data connections)", format!("{} ({:.0}/s)", self.requests, self.requests_per_sec)),
            ("errors (all kinds)", errors.to_string()),
            (
                "sessions lost outside the Redis outage",
                format!("{} ({} requests)", self.sessions_lost, self.lost_requests),
            ),
            ("revoked sessions served / replays checked", format!("{served} / {}", self.revoked_checks)),
            (
                "logins completed (p50 / p99 ms)",
                format!(
                    "{} ({:.1} / {:.1})",
                    self.outcomes.get("logins completed").copied().unwrap_or(0),
                    self.login_p50_ms,
                    self.login_p99_ms
                ),
            ),
            ("MockIdp token requests (code exchanges + refreshes)", self.idp.token.to_string()),
            (
                "after Redis is back: first signed-in / last anonymous answer",
                format!(
                    "{} / {}",
                    self.redis_first_signed_in_ms.map_or_else(|| "-".into(), |ms| format!("{ms} ms")),
                    self.redis_last_anonymous_ms.map_or_else(|| "-".into(), |ms| format!("{ms} ms"))
                ),
            ),
            (
                "app RSS MiB: idle / start / end / peak",
                format!(
                    "{} / {} / {} / {}",
                    rss(self.rss.idle_kib),
                    rss(self.rss.start_kib),
                    rss(self.rss.end_kib),
                    rss(self.rss.peak_kib)
                ),
            ),
            (
                "app RSS growth start → end (bound) / over the second half",
                format!(
                    "{} MiB ({} MiB) / {} MiB",
                    self.rss.growth_kib.map_or_else(|| "?".into(), |g| format!("{:+.1}", g as f64 / 1024.0)),
                    self.rss.bound_kib / 1024,
                    self.rss
                        .second_half_growth_kib
                        .map_or_else(|| "?".into(), |g| format!("{:+.1}", g as f64 / 1024.0)),
                ),
            ),
            (
                "app log: lines / ERROR / WARN / panics",
                format!("{} / {} / {} / {}", self.log.lines, self.log.errors, self.log.warnings, self.log.panics),
            ),
        ];
        for (what, value) in rows {
            let _ = writeln!(md, "| {what} | {value} |");
        }
        let _ = writeln!(md, "\n| phase | requests | p50 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|");
        for p in &self.phases {
            let _ =
                writeln!(md, "| {} | {} | {:.2} | {:.2} | {:.1} |", p.phase, p.requests, p.p50_ms, p.p99_ms, p.max_ms);
        }
        let list = |md: &mut String, title: &str, map: &BTreeMap<String, u64>| {
            if !map.is_empty() {
                let _ = writeln!(md, "\n{title}:\n");
                for (what, count) in map {
                    let _ = writeln!(md, "- {what}: {count}");
                }
            }
        };
        list(&mut md, "Errors", &self.errors);
        list(&mut md, "Expected during an outage (not errors)", &self.expected);
        list(&mut md, "Other counts", &self.outcomes);
        let examples = |md: &mut String, title: &str, lines: &[String]| {
            if !lines.is_empty() {
                let _ = writeln!(md, "\n{title} (first {} of those kept in the JSON):\n", lines.len().min(10));
                for line in lines.iter().take(10) {
                    let _ = writeln!(md, "- {line}");
                }
            }
        };
        examples(&mut md, "Lost sessions", &self.lost_examples);
        examples(&mut md, "Ended sessions served", &self.revoked_served_examples);
        if !self.failures.is_empty() {
            let _ = writeln!(md, "\nWhy it failed:\n");
            for failure in &self.failures {
                let _ = writeln!(md, "- {failure}");
            }
        }
        md
    }
}

/// The whole soak: every store's run.
#[derive(Clone, Debug, Serialize)]
pub struct SoakReport {
    /// The command that ran it.
    pub command: String,
    /// `release` or `debug`.
    pub build: String,
    /// The outages' plan of a run this long.
    pub plan_secs: BTreeMap<String, f64>,
    /// Each store's run.
    pub stores: Vec<StoreReport>,
    /// Wall time of the whole soak (set-up included), s.
    pub wall_secs: f64,
}

impl SoakReport {
    /// Assembles the report.
    pub fn new(command: String, build: String, plan: &Plan, stores: Vec<StoreReport>, wall_secs: f64) -> Self {
        let mut plan_secs = BTreeMap::new();
        plan_secs.insert("idp_down".into(), plan.idp_down.as_secs_f64());
        plan_secs.insert("idp_for".into(), plan.idp_for.as_secs_f64());
        plan_secs.insert("redis_down".into(), plan.redis_down.map_or(0.0, |d| d.as_secs_f64()));
        plan_secs.insert("redis_for".into(), plan.redis_for.as_secs_f64());
        Self { command, build, plan_secs, stores, wall_secs }
    }

    /// Whether every store's run passed.
    pub fn passed(&self) -> bool {
        self.stores.iter().all(|s| s.failures.is_empty())
    }

    /// The whole report in Markdown.
    pub fn markdown(&self) -> String {
        let mut md = format!(
            "## Soak: `{}` ({} build), {:.0} s wall time — {}\n\n",
            self.command,
            self.build,
            self.wall_secs,
            if self.passed() { "passed" } else { "FAILED" }
        );
        for store in &self.stores {
            md.push_str(&store.markdown());
            md.push('\n');
        }
        md
    }
}
