//! The numbers of a run: per-round samples, their medians, the Markdown table and the JSON.
//!
//! The machines are shared and noisy, so variants run interleaved in rounds and every
//! figure is a median across rounds; the ratio to bare is the median of the per-round
//! ratios (each compares two measurements taken seconds apart), and so is the ratio to a
//! variant's floor: the bare server receiving the same requests unread.

use crate::login::LoginReport;
use serde::Serialize;
use std::fmt::Write as _;

/// One measurement of one variant in one round.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    /// The round, from 0.
    pub round: usize,
    /// Requests per second in the measured window.
    pub rps: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Requests answered in the window.
    pub requests: u64,
    /// Failed or wrong answers.
    pub errors: u64,
    /// Server CPU time per answered request, µs.
    pub server_us_per_request: Option<f64>,
    /// Cores the server kept busy.
    pub server_cores: Option<f64>,
    /// Cores the load generator kept busy.
    pub generator_cores: Option<f64>,
    /// Cores other processes kept busy (noise from the rest of the machine).
    pub other_cores: Option<f64>,
    /// How many times it was measured: a measurement disturbed by other processes is
    /// taken again.
    pub attempts: usize,
    /// Whether other processes still kept more cores busy than allowed in the kept one.
    pub noisy: bool,
}

/// Everything measured about one variant.
#[derive(Clone, Debug, Serialize)]
pub struct VariantReport {
    /// Its command-line name.
    pub name: String,
    /// Its row label.
    pub label: String,
    /// Why it did not run, when it did not.
    pub skipped: Option<String>,
    /// One sample per round.
    pub samples: Vec<Sample>,
    /// How many distinct users' credentials its requests carried in turn (the
    /// many-session variants); `None`: one client.
    pub sessions: Option<usize>,
    /// The name of the variant whose server received the same requests unread (its
    /// `ratio_to_floor` compares with it), if it has one.
    pub floor: Option<String>,
    /// The header that signed its requests in (`cookie` or `authorization`), if any.
    pub credential: Option<String>,
    /// Bytes of that header's value.
    pub credential_bytes: Option<usize>,
    /// The server's peak resident set (VmHWM), KiB.
    pub peak_rss_kib: Option<u64>,
    /// The first wrong answer, if any.
    pub first_error: Option<String>,
}

/// The figures of one variant's row.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Median requests per second across rounds.
    pub rps: f64,
    /// Median of the per-round ratios to bare, when bare ran.
    pub ratio_to_bare: Option<f64>,
    /// Median of the per-round ratios to the floor (see [`VariantReport::floor`]), when it
    /// ran.
    pub ratio_to_floor: Option<f64>,
    /// Median p50 across rounds, ms.
    pub p50_ms: f64,
    /// Median p99 across rounds, ms.
    pub p99_ms: f64,
    /// Median server CPU time per request across rounds, µs.
    pub server_us_per_request: Option<f64>,
    /// Errors over all rounds.
    pub errors: u64,
}

/// The median of `values` (the mean of the middle two for an even count); 0 when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

impl VariantReport {
    /// The median of the per-round ratios of this variant's requests per second to
    /// `other`'s; `None` when they share no round.
    pub fn ratio_to(&self, other: &VariantReport) -> Option<f64> {
        let ratios: Vec<f64> = self
            .samples
            .iter()
            .filter_map(|s| other.samples.iter().find(|o| o.round == s.round).map(|o| s.rps / o.rps))
            .collect();
        (!ratios.is_empty()).then(|| median(&ratios))
    }

    /// The row's figures; `bare` is variant (1)'s report, `floor` the one this report's
    /// [`floor`](Self::floor) names.
    pub fn summary(&self, bare: Option<&VariantReport>, floor: Option<&VariantReport>) -> Summary {
        let of = |f: fn(&Sample) -> f64| median(&self.samples.iter().map(f).collect::<Vec<_>>());
        Summary {
            rps: of(|s| s.rps),
            ratio_to_bare: bare.and_then(|bare| self.ratio_to(bare)),
            ratio_to_floor: floor.and_then(|floor| self.ratio_to(floor)),
            p50_ms: of(|s| s.p50_ms),
            p99_ms: of(|s| s.p99_ms),
            server_us_per_request: self
                .samples
                .iter()
                .map(|s| s.server_us_per_request)
                .collect::<Option<Vec<f64>>>()
                .filter(|v| !v.is_empty())
                .map(|v| median(&v)),
            errors: self.samples.iter().map(|s| s.errors).sum(),
        }
    }
}

/// How the run was made.
#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    /// Rounds; each runs every variant once, in a rotated order.
    pub rounds: usize,
    /// Measured seconds per variant and round.
    pub duration_secs: f64,
    /// Warm-up seconds before each measurement.
    pub warmup_secs: f64,
    /// Keep-alive connections of the load generator.
    pub connections: usize,
    /// Tokio worker threads of each server; `None`: one per core.
    pub server_threads: Option<usize>,
    /// The command that made the run.
    pub command: String,
}

/// The machine the run was made on.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Machine {
    /// CPU model.
    pub cpu: String,
    /// Logical cores available.
    pub cores: usize,
    /// Total memory, GiB.
    pub memory_gib: f64,
    /// Kernel release.
    pub kernel: String,
    /// `rustc --version`.
    pub rustc: String,
}

impl Machine {
    /// What `/proc` and `rustc` tell about this machine (empty fields where they do not).
    pub fn detect() -> Self {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim()))
            .unwrap_or("unknown")
            .to_owned();
        let memory_kib: f64 = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        let rustc = std::process::Command::new("rustc")
            .arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            memory_gib: memory_kib / 1024.0 / 1024.0,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            rustc,
        }
    }
}

/// A whole run, as written to `results.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// How it was made.
    pub settings: Settings,
    /// Where.
    pub machine: Machine,
    /// The variants, in the order.
    pub variants: Vec<VariantReport>,
    /// Each variant's row figures, same order.
    pub summaries: Vec<Option<Summary>>,
    /// The login-throughput measure, when it ran.
    pub login: Option<LoginReport>,
    /// The same measure with DPoP and PAR (MockIdp requiring both), when it ran.
    pub login_dpop_par: Option<LoginReport>,
    /// The revocation latency with `RedisStore`'s local copies, when Redis ran.
    pub revocation: Option<crate::revocation::RevocationReport>,
}

impl Report {
    /// Assembles the report and computes the summaries.
    pub fn new(settings: Settings, machine: Machine, variants: Vec<VariantReport>, login: Option<LoginReport>) -> Self {
        let ran = |name: &str| variants.iter().find(|v| v.name == name && v.skipped.is_none());
        let summaries = variants
            .iter()
            .map(|v| {
                let floor = v.floor.as_deref().and_then(ran);
                (v.skipped.is_none() && !v.samples.is_empty()).then(|| v.summary(ran("bare"), floor))
            })
            .collect();
        Self { settings, machine, variants, summaries, login, login_dpop_par: None, revocation: None }
    }

    fn variant(&self, name: &str) -> Option<&VariantReport> {
        self.variants.iter().find(|v| v.name == name)
    }

    fn summary_of(&self, name: &str) -> Option<&Summary> {
        self.variants.iter().zip(&self.summaries).find(|(v, _)| v.name == name).and_then(|(_, s)| s.as_ref())
    }

    /// The Markdown table, the run's settings and the targets.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let s = &self.settings;
        let m = &self.machine;
        let _ = writeln!(out, "Command: `{}`", s.command);
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Machine: {} ({} cores, {:.0} GiB), Linux {}, {}. Server and load generator share the cores; \
             nothing is pinned. Load generator: one current-thread Tokio runtime (one core at most), \
             {} keep-alive HTTP/1.1 connections, closed loop. Servers: one process per variant, \
             a multi-thread Tokio runtime with {} each. {} rounds, each variant {:.1} s measured after {:.1} s \
             warm-up per round, order rotated every round. Figures are medians across rounds; the ratio is \
             the median of per-round ratios; server CPU is the server process's user+system time per request.",
            m.cpu,
            m.cores,
            m.memory_gib,
            m.kernel,
            m.rustc,
            s.connections,
            s.server_threads.map_or_else(|| "one worker per core".to_owned(), |n| format!("{n} worker(s)")),
            s.rounds,
            s.duration_secs,
            s.warmup_secs
        );
        let others: Vec<f64> = self.variants.iter().flat_map(|v| &v.samples).filter_map(|s| s.other_cores).collect();
        if !others.is_empty() {
            let max = others.iter().copied().fold(0.0, f64::max);
            let samples = self.variants.iter().flat_map(|v| &v.samples);
            let retaken: usize = samples.clone().map(|s| s.attempts.saturating_sub(1)).sum();
            let noisy = samples.filter(|s| s.noisy).count();
            let _ = writeln!(
                out,
                "Other processes on the machine kept a median of {:.2} cores busy (at most {max:.2}) during the kept \
                 measurements; {retaken} disturbed measurements were taken again, {noisy} kept ones are still disturbed.",
                median(&others)
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "| variant | req/s (median) | ratio to (1) | ratio to floor | p50 ms | p99 ms | server CPU µs/req | peak RSS MiB | credential bytes |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (variant, summary) in self.variants.iter().zip(&self.summaries) {
            let credential = variant.credential_bytes.map_or_else(|| "-".to_owned(), |b| b.to_string());
            let rss = variant.peak_rss_kib.map_or_else(|| "-".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0));
            match (summary, &variant.skipped) {
                (Some(sm), _) => {
                    let ratio = sm.ratio_to_bare.map_or_else(|| "-".to_owned(), |r| format!("{r:.3}"));
                    let to_floor = sm.ratio_to_floor.map_or_else(|| "-".to_owned(), |r| format!("{r:.3}"));
                    let errors = if sm.errors > 0 { format!(" ({} errors)", sm.errors) } else { String::new() };
                    let cpu = sm.server_us_per_request.map_or_else(|| "-".to_owned(), |c| format!("{c:.1}"));
                    let _ = writeln!(
                        out,
                        "| {}{errors} | {:.0} | {ratio} | {to_floor} | {:.2} | {:.2} | {cpu} | {rss} | {credential} |",
                        variant.label, sm.rps, sm.p50_ms, sm.p99_ms
                    );
                }
                (None, reason) => {
                    let reason = reason.as_deref().unwrap_or("no samples");
                    let _ = writeln!(out, "| {} | {reason} | | | | | | | |", variant.label);
                }
            }
        }
        if self.variants.iter().any(|v| v.floor.is_some()) {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "Ratio to floor: to the bare server receiving the same requests unread, which no layer can be \
                 faster than ((1b) for (3), (1d) for (4), (1c) with as many users for (8)). Peak RSS is the server process's \
                 VmHWM; a many-session variant's counts run in separate processes."
            );
        }
        for login in self.login.iter().chain(&self.login_dpop_par) {
            let _ = writeln!(out);
            let _ = writeln!(out, "{}", login.markdown());
        }
        if let Some(revocation) = &self.revocation {
            let _ = writeln!(out);
            let _ = writeln!(out, "{}", revocation.markdown());
        }
        let _ = writeln!(out);
        for line in self.targets() {
            let _ = writeln!(out, "- {line}");
        }
        out
    }

    /// The targets, each with its measured value and whether it is met.
    pub fn targets(&self) -> Vec<String> {
        let ratio = |name: &str| self.summary_of(name).and_then(|s| s.ratio_to_bare);
        let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
        let mut lines = Vec::new();
        for (name, label, floor) in [("logged-in", "(3) logged in", 0.95), ("anonymous", "(2) anonymous", 0.98)] {
            match ratio(name) {
                Some(r) => {
                    lines.push(format!("{label} at {r:.3} of bare (target >= {floor}): {}", verdict(r >= floor)))
                }
                None => lines.push(format!("{label}: not measured")),
            }
        }
        if let Some(r) = ratio("redis") {
            lines.push(format!("(5) RedisStore at {r:.3} of bare (target >= 0.85): {}", verdict(r >= 0.85)));
        }
        if let Some(revocation) = &self.revocation {
            lines.push(format!(
                "revocation: another instance stops serving a logged-out session after {:.3} ms median, {:.3} ms max \
                 over {} trials (target: median under 5 ms): {}",
                revocation.median_ms,
                revocation.max_ms,
                revocation.trials,
                verdict(revocation.median_ms < 5.0 && revocation.stale_after_1s == 0)
            ));
        }
        if let Some(r) = ratio("bare-cookie") {
            lines.push(format!(
                "(1b) the cookie of (3) sent to the bare server, unread, at {r:.3} of bare: the part of (3)'s gap that \
                 is carrying the cookie, not the layer"
            ));
        }
        match (self.summary_of("logged-in"), self.summary_of("axum-login")) {
            (Some(ours), Some(peer)) => lines.push(format!(
                "(3) {:.0} req/s vs axum-login (6) {:.0} req/s (target: faster): {}",
                ours.rps,
                peer.rps,
                verdict(ours.rps > peer.rps)
            )),
            _ => lines.push("(3) vs (6): not measured".into()),
        }
        if let Some(r) = ratio("bearer") {
            let to_logged_in = self
                .variant("bearer")
                .zip(self.variant("logged-in"))
                .and_then(|(bearer, logged_in)| bearer.ratio_to(logged_in))
                .map_or_else(String::new, |q| format!(", {q:.3} of (3) logged in"));
            lines.push(format!(
                "(7) a repeated bearer JWT (verified on its first request, then cached) at {r:.3} of bare{to_logged_in}"
            ));
        }
        if let Some(r) = ratio("logged-in-metrics") {
            let to_logged_in = self
                .variant("logged-in-metrics")
                .zip(self.variant("logged-in"))
                .and_then(|(metrics, logged_in)| metrics.ratio_to(logged_in))
                .map_or_else(String::new, |q| format!(", {q:.3} of (3) without it"));
            lines.push(format!("(3m) logged in with a Prometheus recorder installed at {r:.3} of bare{to_logged_in}"));
        }
        // Many users beside one: each many-session count against its floor and against the
        // same store's single-session variant.
        for (variant, summary) in self.variants.iter().zip(&self.summaries) {
            let (Some(_), Some(summary)) = (variant.sessions, summary) else { continue };
            let base = variant.name.split('@').next().unwrap_or_default();
            let Some((one, one_label)) = [
                ("many-sessions", "logged-in", "(3)"),
                ("many-sessions-default-cache", "logged-in", "(3)"),
                ("many-sessions-redis", "redis", "(5)"),
            ]
            .into_iter()
            .find_map(|(many, one, label)| (many == base).then_some((one, label))) else {
                continue;
            };
            let mut parts = Vec::new();
            if let Some(r) = summary.ratio_to_bare {
                parts.push(format!("{r:.3} of bare"));
            }
            if let Some(r) = summary.ratio_to_floor {
                parts.push(format!("{r:.3} of (1c) carrying the same cookies"));
            }
            if let Some(q) = self.variant(one).and_then(|one| variant.ratio_to(one)) {
                parts.push(format!("{q:.3} of {one_label} (one session)"));
            }
            if let Some(kib) = variant.peak_rss_kib {
                parts.push(format!("server peak RSS {:.1} MiB", kib as f64 / 1024.0));
            }
            lines.push(format!("{}: {}", variant.label, parts.join(", ")));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variant(name: &str, rps: &[f64]) -> VariantReport {
        VariantReport {
            name: name.into(),
            label: name.into(),
            skipped: None,
            samples: rps
                .iter()
                .enumerate()
                .map(|(round, &rps)| Sample {
                    round,
                    rps,
                    p50_ms: 1.0,
                    p99_ms: 2.0,
                    requests: 1,
                    errors: 0,
                    server_us_per_request: Some(5.0),
                    server_cores: None,
                    generator_cores: None,
                    other_cores: Some(0.1),
                    attempts: 1,
                    noisy: false,
                })
                .collect(),
            sessions: None,
            floor: None,
            credential: None,
            credential_bytes: None,
            peak_rss_kib: Some(10240),
            first_error: None,
        }
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn ratios_pair_rounds_and_targets_are_judged() {
        let settings = Settings {
            rounds: 3,
            duration_secs: 1.0,
            warmup_secs: 0.5,
            connections: 8,
            server_threads: Some(1),
            command: "x".into(),
        };
        let mut redis = variant("redis", &[]);
        redis.skipped = Some("skipped: redis-server not installed".into());
        let report = Report::new(
            settings,
            Machine::default(),
            vec![
                variant("bare", &[100.0, 200.0, 100.0]),
                variant("anonymous", &[99.0, 196.0, 90.0]),
                variant("logged-in", &[90.0, 200.0, 80.0]),
                redis,
                variant("axum-login", &[70.0, 150.0, 75.0]),
                variant("bearer", &[90.0, 180.0, 88.0]),
                variant("logged-in-metrics", &[90.0, 190.0, 84.0]),
            ],
            None,
        );
        let anonymous = report.summary_of("anonymous").cloned().unwrap_or_default();
        assert_eq!(anonymous.ratio_to_bare, Some(0.98));
        assert_eq!(anonymous.rps, 99.0);
        let table = report.markdown();
        assert!(table.contains("| logged-in | 90 | 0.900 | - | 1.00 | 2.00 | 5.0 | 10.0 | - |"), "{table}");
        assert!(table.contains("| redis | skipped: redis-server not installed |"), "{table}");
        assert!(table.contains("(2) anonymous at 0.980 of bare (target >= 0.98): met"), "{table}");
        assert!(table.contains("(3) logged in at 0.900 of bare (target >= 0.95): NOT met"), "{table}");
        assert!(table.contains("(target: faster): met"), "{table}");
        assert!(table.contains("(7) a repeated bearer JWT (verified on its first request, then cached) at 0.900 of bare, 1.000 of (3) logged in"), "{table}");
        assert!(
            table.contains(
                "(3m) logged in with a Prometheus recorder installed at 0.900 of bare, 1.000 of (3) without it"
            ),
            "{table}"
        );
    }

    #[test]
    fn many_sessions_compare_with_their_floor_at_the_same_count() {
        let settings = Settings {
            rounds: 2,
            duration_secs: 1.0,
            warmup_secs: 0.5,
            connections: 8,
            server_threads: None,
            command: "x".into(),
        };
        let many = |name: &str, floor: Option<&str>, rps: &[f64]| {
            let mut report = variant(name, rps);
            report.sessions = Some(1000);
            report.floor = floor.map(str::to_owned);
            report
        };
        let mut logged_in = variant("logged-in", &[90.0, 90.0]);
        logged_in.floor = Some("bare-cookie".into());
        let report = Report::new(
            settings,
            Machine::default(),
            vec![
                variant("bare", &[100.0, 100.0]),
                variant("bare-cookie", &[95.0, 95.0]),
                many("bare-many-cookies@1000", None, &[80.0, 80.0]),
                logged_in,
                many("many-sessions@1000", Some("bare-many-cookies@1000"), &[60.0, 60.0]),
                many("many-sessions", Some("bare-many-cookies"), &[50.0, 50.0]),
            ],
            None,
        );
        let to_floor = |name: &str| report.summary_of(name).and_then(|s| s.ratio_to_floor);
        assert_eq!(to_floor("many-sessions@1000"), Some(0.75));
        assert_eq!(to_floor("logged-in").map(|r| (r * 1000.0).round()), Some(947.0));
        assert_eq!(to_floor("many-sessions"), None, "its floor did not run");
        assert_eq!(to_floor("bare-many-cookies@1000"), None);
        let table = report.markdown();
        assert!(table.contains("| many-sessions@1000 | 60 | 0.600 | 0.750 | 1.00 |"), "{table}");
        assert!(
            table.contains(
                "many-sessions@1000: 0.600 of bare, 0.750 of (1c) carrying the same cookies, 0.667 of (3) (one \
                 session), server peak RSS 10.0 MiB"
            ),
            "{table}"
        );
        let json = serde_json::to_value(&report).unwrap_or_default();
        assert_eq!(json["variants"][4]["sessions"], 1000);
        assert_eq!(json["summaries"][4]["ratio_to_floor"], 0.75);
    }
}
