//! The hot-path benchmark, as `cargo xtask bench` runs it: starts one `bench-server` per
//! variant (and a throwaway redis-server when installed), makes the users of the
//! many-session variants once, drives the servers interleaved in rounds from one
//! current-thread runtime, measures logins against MockIdp, then prints the Markdown table
//! and writes the JSON.

use auth_bench::Variant;
use auth_bench::cpu;
use auth_bench::load::{self, Credentials, LoadSpec};
use auth_bench::login::{self, LoginSpec};
use auth_bench::many::{self, DEFAULT_SESSIONS, MAX_SESSIONS, SAVES_AT_ONCE};
use auth_bench::redis_server::RedisServer;
use auth_bench::report::{Machine, Report, Sample, Settings, VariantReport};
use auth_bench::variants::{self, Case, Credential, Crowd, REDIS_BUILT, REDIS_NOT_BUILT};
use bytes::Bytes;
use http::header::COOKIE;
use http::{HeaderName, HeaderValue};
use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

const USAGE: &str = "usage: bench-run [--quick] [--rounds N] [--duration SECS] [--warmup SECS] [--connections N]
                 [--server-threads N] [--max-other-cores X] [--quiet-timeout SECS] [--variants a,b,...] [--sessions N,...]
                 [--logins N] [--login-concurrency N] [--revocation-trials N] [--out FILE] [--command TEXT]
  --quick            2 rounds x 1 s after 0.5 s warm-up, 200 logins (a smoke run, not for the README)
  defaults           5 rounds x 5 s after 1 s warm-up, 64 connections, every variant, 1000 logins at 8 at once
  --logins 0         skip the login-throughput measures (N logins without, then N with DPoP+PAR)
  --revocation-trials  logouts on one RedisStore timed until another's local copy is gone
                     (default 1000, 100 with --quick; 0 skips; needs Redis)
  --max-other-cores  a sample taken while other processes kept more than X cores busy (default 0.15)
                     is taken again (twice at most); before each sample the run waits up to
                     --quiet-timeout (default 120 s, 10 s with --quick) for the machine to be that quiet
  --server-threads   Tokio workers per server (default: one per core)
  --sessions         distinct users of the many-session variants (bare-many-cookies, many-sessions,
                     many-sessions-default-cache, many-sessions-redis), their requests sent in turn (default 100000, at most 1000000);
                     with a list (1,1000,100000) each of those variants is measured once per count,
                     named many-sessions@1000 (no suffix for 100000)
  variants: bare, bare-cookie, bare-chunked-cookie, bare-many-cookies, anonymous, logged-in, logged-in-metrics, logged-in-dpop, chunked, redis, axum-login, bearer,
            many-sessions, many-sessions-default-cache, many-sessions-redis";

#[derive(Debug)]
struct Args {
    rounds: usize,
    duration: Duration,
    warmup: Duration,
    connections: usize,
    server_threads: Option<usize>,
    max_other_cores: f64,
    quiet_timeout: Duration,
    variants: Vec<Variant>,
    sessions: Vec<usize>,
    logins: usize,
    login_concurrency: usize,
    revocation_trials: usize,
    out: Option<PathBuf>,
    command: String,
}

fn secs(value: &str, flag: &str) -> Result<Duration, String> {
    value
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("{flag} {value:?} is not a number of seconds"))
}

fn count(value: &str, flag: &str) -> Result<usize, String> {
    value.parse().map_err(|_| format!("{flag} {value:?} is not a count"))
}

/// The counts of `--sessions`, in increasing order.
fn session_counts(value: &str) -> Result<Vec<usize>, String> {
    let mut counts = value
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .ok()
                .filter(|n| (1..=MAX_SESSIONS).contains(n))
                .ok_or_else(|| format!("--sessions {n:?} is not a count from 1 to {MAX_SESSIONS}"))
        })
        .collect::<Result<Vec<usize>, _>>()?;
    counts.sort_unstable();
    counts.dedup();
    Ok(counts)
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut out = Args {
        rounds: 5,
        duration: Duration::from_secs(5),
        warmup: Duration::from_secs(1),
        connections: 64,
        server_threads: None,
        max_other_cores: 0.15,
        quiet_timeout: Duration::from_secs(120),
        variants: Variant::ALL.to_vec(),
        sessions: vec![DEFAULT_SESSIONS],
        logins: 1000,
        login_concurrency: 8,
        revocation_trials: 1000,
        out: None,
        command: "cargo xtask bench".into(),
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--quick" => {
                out.rounds = 2;
                out.duration = Duration::from_secs(1);
                out.warmup = Duration::from_millis(500);
                out.logins = 200;
                out.revocation_trials = 100;
                out.quiet_timeout = Duration::from_secs(10);
            }
            "--rounds" => out.rounds = count(&value()?, &flag)?.max(1),
            "--duration" => out.duration = secs(&value()?, &flag)?.max(Duration::from_millis(100)),
            "--warmup" => out.warmup = secs(&value()?, &flag)?,
            "--connections" => out.connections = count(&value()?, &flag)?.max(1),
            "--server-threads" => out.server_threads = Some(count(&value()?, &flag)?.max(1)),
            "--max-other-cores" => {
                let v = value()?;
                out.max_other_cores = v.parse().map_err(|_| format!("{flag} {v:?} is not a number of cores"))?;
            }
            "--quiet-timeout" => out.quiet_timeout = secs(&value()?, &flag)?,
            "--variants" => {
                out.variants = value()?
                    .split(',')
                    .map(|name| Variant::parse(name.trim()).ok_or_else(|| format!("unknown variant {name:?}")))
                    .collect::<Result<_, _>>()?;
            }
            "--sessions" => out.sessions = session_counts(&value()?)?,
            "--logins" => out.logins = count(&value()?, &flag)?,
            "--login-concurrency" => out.login_concurrency = count(&value()?, &flag)?.max(1),
            "--revocation-trials" => out.revocation_trials = count(&value()?, &flag)?,
            "--out" => out.out = Some(value()?.into()),
            "--command" => out.command = value()?,
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(out))
}

fn main() {
    let args = match parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return;
        }
        Err(message) => {
            eprintln!("bench-run: {message}\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(message) = run(&args) {
        eprintln!("bench-run: {message}");
        std::process::exit(1);
    }
}

/// A child process, killed by its pid and reaped when dropped.
struct Process {
    name: String,
    child: Child,
    /// Held open: the server exits when it closes.
    _stdin: Option<ChildStdin>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    /// The peak resident set (VmHWM) so far, KiB.
    fn peak_rss_kib(&self) -> Option<u64> {
        cpu::status_kib(self.child.id(), "VmHWM")
    }
}

/// A running server: one per case, so that peak RSS is per case.
struct Server {
    case: Case,
    process: Process,
    addr: SocketAddr,
    /// What its clients send in turn.
    credentials: Credentials,
}

fn server_binary() -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let path = me.with_file_name(format!("bench-server{}", std::env::consts::EXE_SUFFIX));
    if path.exists() {
        Ok(path)
    } else {
        Err(format!("{} is missing: build it with `cargo build --release -p auth-bench`", path.display()))
    }
}

/// Starts `case`'s server. Its clients send `users` (a many-session case), or else the
/// credential the server printed, or nothing.
fn start_server(
    binary: &PathBuf,
    case: Case,
    users: Option<Credentials>,
    args: &Args,
    redis_url: Option<&str>,
) -> Result<Server, String> {
    let variant = case.variant;
    let mut command = Command::new(binary);
    command.args(["--variant", variant.name(), "--listen", "127.0.0.1:0"]);
    if let Some(threads) = args.server_threads {
        command.args(["--threads", &threads.to_string()]);
    }
    if let Some(url) = redis_url {
        command.args(["--redis-url", url]);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let process = Process { name: case.name(), child, _stdin: stdin };
    let (mut addr, mut credential) = (None, None);
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("{}: {e}", process.name))?;
        if let Some(a) = line.strip_prefix("listening on ") {
            addr = a.trim().parse().ok();
        } else if let Some((name, value)) = line.strip_prefix("credential: ").and_then(|c| c.split_once(": ")) {
            let name = HeaderName::try_from(name).map_err(|e| format!("{}: {e}", process.name))?;
            credential = Some(Credential { name, value: value.to_owned() });
        } else if line == "ready" {
            break;
        }
    }
    let addr = addr.ok_or_else(|| format!("the {} server exited before it was ready", process.name))?;
    let credentials = match users {
        Some(users) => users,
        None => variants::single(credential.as_ref()).map_err(|e| format!("{}: {e}", process.name))?,
    };
    Ok(Server { case, process, addr, credentials })
}

/// A throwaway redis-server on a free loopback port, when one is installed.
fn start_redis(args: &Args) -> Result<RedisServer, String> {
    let dir = args.out.as_ref().and_then(|out| out.parent()).map_or_else(std::env::temp_dir, PathBuf::from);
    RedisServer::start(&dir.join(format!("redis-{}", std::process::id()))).map_err(|e| format!("skipped: {e}"))
}

/// Makes the users of the many-session cases, once for the largest count: the sealed
/// cookies of (8) (also sent to (1c)) and the tickets of (9), saved in Redis. A failure of
/// Redis skips (9), with the reason.
fn make_users(
    runtime: &tokio::runtime::Runtime,
    cases: &[Case],
    redis_url: Option<&str>,
    skipped: &mut Vec<(Variant, String)>,
) -> Result<HashMap<Crowd, Vec<HeaderValue>>, String> {
    let mut users = HashMap::new();
    for crowd in [Crowd::Sealed, Crowd::Redis] {
        let wanted =
            cases.iter().filter(|c| c.variant.crowd() == Some(crowd) && !skipped.iter().any(|(v, _)| *v == c.variant));
        let Some(n) = wanted.filter_map(|c| c.sessions).max() else { continue };
        let started = Instant::now();
        match crowd {
            Crowd::Sealed => {
                users.insert(crowd, runtime.block_on(many::sealed_cookies(n))?);
                println!("  users: {n} sessions sealed in {:.2} s", started.elapsed().as_secs_f64());
            }
            Crowd::Redis => {
                let made = match redis_url {
                    Some(url) => runtime.block_on(many::redis_cookies(url, n)),
                    None => Err("no Redis".to_owned()),
                };
                match made {
                    Ok(cookies) => {
                        users.insert(crowd, cookies);
                        println!(
                            "  users: {n} sessions saved in Redis ({SAVES_AT_ONCE} at once) in {:.2} s",
                            started.elapsed().as_secs_f64()
                        );
                    }
                    Err(reason) => skipped.push((Variant::ManySessionsRedis, format!("skipped: {reason}"))),
                }
            }
        }
    }
    Ok(users)
}

/// Waits (up to `--quiet-timeout`) until processes other than `ours` keep at most
/// `--max-other-cores` busy.
fn wait_until_quiet(ours: &[u32], args: &Args) {
    let deadline = Instant::now() + args.quiet_timeout;
    let mut told = false;
    loop {
        let Some(others) = cpu::others_busy(ours, Duration::from_millis(500)) else { return };
        if others <= args.max_other_cores {
            return;
        }
        if Instant::now() >= deadline {
            println!("    measuring anyway: other processes still keep {others:.2} cores busy");
            return;
        }
        if !told {
            println!("    waiting for a quieter machine: other processes keep {others:.2} cores busy");
            told = true;
        }
    }
}

/// The load of `server`, its CPU time measured over the processes `pids`.
fn load_spec(server: &Server, pids: &[u32], args: &Args) -> LoadSpec {
    LoadSpec {
        addr: server.addr,
        credentials: server.credentials.clone(),
        expected_body: Bytes::from_static(server.case.variant.expected_body().as_bytes()),
        connections: args.connections,
        warmup: args.warmup,
        duration: args.duration,
        server_pids: pids.to_vec(),
    }
}

/// One measurement of `server`.
fn measure(
    runtime: &tokio::runtime::Runtime,
    server: &Server,
    pids: &[u32],
    args: &Args,
    round: usize,
) -> Result<(Sample, Option<String>), String> {
    let result = runtime.block_on(load::run(&load_spec(server, pids, args)))?;
    let cpu = result.cpu.unwrap_or_default();
    let sample = Sample {
        round,
        rps: result.rps(),
        p50_ms: result.latency_ms(0.5),
        p99_ms: result.latency_ms(0.99),
        requests: result.requests,
        errors: result.errors,
        server_us_per_request: cpu
            .server_cpu_secs
            .filter(|_| result.requests > 0)
            .map(|s| s * 1e6 / result.requests as f64),
        server_cores: cpu.server_cores,
        generator_cores: cpu.generator_cores,
        other_cores: cpu.other_cores,
        attempts: 1,
        noisy: false,
    };
    Ok((sample, result.first_error))
}

fn print_sample(name: &str, width: usize, sample: &Sample, rounds: usize) {
    let cores = |c: Option<f64>| c.map_or_else(|| "?".to_owned(), |c| format!("{c:.2}"));
    println!(
        "  round {}/{} {name:>width$}: {:>8.0} req/s  p50 {:.2} ms  p99 {:.2} ms  server {:.2} µs/req  cores: server {} generator {} others {}{}",
        sample.round + 1,
        rounds,
        sample.rps,
        sample.p50_ms,
        sample.p99_ms,
        sample.server_us_per_request.unwrap_or(f64::NAN),
        cores(sample.server_cores),
        cores(sample.generator_cores),
        cores(sample.other_cores),
        if sample.errors > 0 { format!("  {} ERRORS", sample.errors) } else { String::new() }
    );
}

fn run(args: &Args) -> Result<(), String> {
    let binary = server_binary()?;
    let machine = Machine::detect();
    let cases = Case::expand(&args.variants, &args.sessions);
    println!(
        "auth-bench: {} rounds x {:.1} s (+{:.1} s warm-up) x {} variants, {} connections; load generator: one current-thread runtime, cores shared with the servers, nothing pinned",
        args.rounds,
        args.duration.as_secs_f64(),
        args.warmup.as_secs_f64(),
        cases.len(),
        args.connections
    );

    // Redis first: its variants are skipped, with the reason, when it cannot run.
    let mut redis: Option<RedisServer> = None;
    let mut skipped: Vec<(Variant, String)> = Vec::new();
    let redis_variants: Vec<Variant> = args.variants.iter().copied().filter(|v| v.uses_redis()).collect();
    if !redis_variants.is_empty() {
        let started = if REDIS_BUILT { start_redis(args) } else { Err(REDIS_NOT_BUILT.into()) };
        match started {
            Ok(started) => redis = Some(started),
            Err(reason) => skipped.extend(redis_variants.iter().map(|&v| (v, reason.clone()))),
        }
    }
    let redis_url = redis.as_ref().map(RedisServer::url);
    let redis_url = redis_url.as_deref();

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let users = make_users(&runtime, &cases, redis_url, &mut skipped)?;
    // One set of credentials per crowd and count, shared by the cases that send it.
    let mut shared: HashMap<(Crowd, usize), Credentials> = HashMap::new();
    let mut servers = Vec::new();
    for &case in &cases {
        if skipped.iter().any(|(v, _)| *v == case.variant) {
            continue;
        }
        let clients = match (case.variant.crowd(), case.sessions) {
            (Some(crowd), Some(n)) => {
                let made = users.get(&crowd).ok_or_else(|| format!("{}: its users were not made", case.name()))?;
                let credentials = shared
                    .entry((crowd, n))
                    .or_insert_with(|| Credentials::new(COOKIE, made.iter().take(n).cloned()))
                    .clone();
                Some(credentials)
            }
            _ => None,
        };
        let server = start_server(&binary, case, clients, args, redis_url)?;
        println!("  {}: {} (pid {})", server.process.name, server.addr, server.process.child.id());
        servers.push(server);
    }
    drop(users);

    let mut samples: Vec<Vec<Sample>> = servers.iter().map(|_| Vec::new()).collect();
    let mut first_errors: Vec<Option<String>> = servers.iter().map(|_| None).collect();
    let redis_pid = redis.as_ref().and_then(RedisServer::pid);
    let ours: Vec<u32> = servers.iter().map(|s| s.process.child.id()).chain(redis_pid).collect();
    let width = servers.iter().map(|s| s.process.name.len()).max().unwrap_or(0);
    // Each user's first request before the rounds: they then measure users the server has
    // seen before, as a site's active users are, whatever the count.
    for server in servers.iter().filter(|s| s.case.variant.crowd().is_some()) {
        let started = Instant::now();
        match runtime.block_on(load::sweep(&load_spec(server, &[], args))) {
            Ok(()) => println!(
                "  {}: one request per user ({}) before the rounds, in {:.2} s",
                server.process.name,
                server.credentials.clients(),
                started.elapsed().as_secs_f64()
            ),
            Err(error) => println!("  {}: the request per user before the rounds failed: {error}", server.process.name),
        }
    }
    for round in 0..args.rounds {
        // Rotate the order so that no variant always runs first or right after another.
        for offset in 0..servers.len() {
            let index = (round + offset) % servers.len();
            let server = &servers[index];
            let mut pids = vec![server.process.child.id()];
            if server.case.variant.uses_redis() {
                pids.extend(redis_pid);
            }
            let mut attempts = 0;
            let (sample, first_error) = loop {
                attempts += 1;
                wait_until_quiet(&ours, args);
                let (mut sample, first_error) = measure(&runtime, server, &pids, args, round)?;
                sample.attempts = attempts;
                sample.noisy = sample.other_cores.is_some_and(|o| o > args.max_other_cores);
                print_sample(&server.process.name, width, &sample, args.rounds);
                if !sample.noisy || attempts >= 3 {
                    break (sample, first_error);
                }
                println!("    other processes were busy: measuring {} again", server.process.name);
            };
            if first_errors[index].is_none() {
                first_errors[index] = first_error;
            }
            samples[index].push(sample);
        }
    }

    let mut reports = Vec::new();
    for case in &cases {
        let reason = skipped.iter().find(|(v, _)| *v == case.variant).map(|(_, r)| r.clone());
        let index = servers.iter().position(|s| s.case == *case);
        let server = index.map(|i| &servers[i]);
        reports.push(VariantReport {
            name: case.name(),
            label: case.label(),
            skipped: reason,
            samples: index.map(|i| samples[i].clone()).unwrap_or_default(),
            sessions: case.sessions,
            floor: case.floor().map(|floor| floor.name()),
            credential: server.and_then(|s| s.credentials.name()).map(HeaderName::to_string),
            credential_bytes: server.and_then(|s| s.credentials.value_bytes()),
            peak_rss_kib: server.and_then(|s| s.process.peak_rss_kib()),
            first_error: index.and_then(|i| first_errors[i].clone()),
        });
    }
    drop(servers);
    let revocation = match redis_url {
        Some(url) if args.revocation_trials > 0 => {
            println!("  revocation: {} logouts on one store seen by another's local copies", args.revocation_trials);
            let runtime =
                tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
            match runtime.block_on(auth_bench::revocation::measure(url, args.revocation_trials)) {
                Ok(report) => Some(report),
                Err(error) => {
                    println!("  revocation: not measured: {error}");
                    None
                }
            }
        }
        _ => None,
    };
    drop(redis);

    // The same logins twice: plain, then with DPoP and PAR.
    let (login, login_dpop_par) = if args.logins > 0 {
        println!(
            "  logins: {} against MockIdp, {} at once, without and with DPoP+PAR",
            args.logins, args.login_concurrency
        );
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
        let spec = |dpop_par| LoginSpec { logins: args.logins, concurrency: args.login_concurrency, dpop_par };
        let plain = runtime.block_on(login::run(spec(false)))?;
        let dpop_par = runtime.block_on(login::run(spec(true)))?;
        (Some(plain), Some(dpop_par))
    } else {
        (None, None)
    };

    let settings = Settings {
        rounds: args.rounds,
        duration_secs: args.duration.as_secs_f64(),
        warmup_secs: args.warmup.as_secs_f64(),
        connections: args.connections,
        server_threads: args.server_threads,
        command: args.command.clone(),
    };
    let mut report = Report::new(settings, machine, reports, login);
    report.revocation = revocation;
    report.login_dpop_par = login_dpop_par;
    println!("\n{}", report.markdown());
    for variant in &report.variants {
        if let Some(error) = &variant.first_error {
            eprintln!("bench-run: {} answered wrongly: {error}", variant.name);
        }
    }
    if let Some(path) = &args.out {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, json + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    let errors: u64 = report.variants.iter().flat_map(|v| &v.samples).map(|s| s.errors).sum();
    if errors > 0 {
        return Err(format!("{errors} requests failed or were answered wrongly; the numbers above are not valid"));
    }
    Ok(())
}
