//! The hot-path benchmark, as `cargo xtask bench` runs it: starts one `bench-server` per
//! variant (and a throwaway redis-server when installed), drives them interleaved in
//! rounds from one current-thread runtime, measures logins against MockIdp, then prints
//! the Markdown table and writes the JSON.

use auth_bench::Variant;
use auth_bench::cpu;
use auth_bench::load::{self, LoadSpec};
use auth_bench::login::{self, LoginSpec};
use auth_bench::redis_server::RedisServer;
use auth_bench::report::{Machine, Report, Sample, Settings, VariantReport};
use auth_bench::variants::{Credential, REDIS_BUILT, REDIS_NOT_BUILT};
use bytes::Bytes;
use http::HeaderName;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

const USAGE: &str = "usage: bench-run [--quick] [--rounds N] [--duration SECS] [--warmup SECS] [--connections N]
                 [--server-threads N] [--max-other-cores X] [--quiet-timeout SECS] [--variants a,b,...] [--logins N] [--login-concurrency N] [--out FILE] [--command TEXT]
  --quick            2 rounds x 1 s after 0.5 s warm-up, 200 logins (a smoke run, not for the README)
  defaults           5 rounds x 5 s after 1 s warm-up, 64 connections, every variant, 1000 logins at 8 at once
  --logins 0         skip the login-throughput measure
  --max-other-cores  a sample taken while other processes kept more than X cores busy (default 0.15)
                     is taken again (twice at most); before each sample the run waits up to
                     --quiet-timeout (default 120 s, 10 s with --quick) for the machine to be that quiet
  --server-threads   Tokio workers per server (default: one per core)
  variants: bare, bare-cookie, anonymous, logged-in, chunked, redis, axum-login, bearer";

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
    logins: usize,
    login_concurrency: usize,
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
        logins: 1000,
        login_concurrency: 8,
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
            "--logins" => out.logins = count(&value()?, &flag)?,
            "--login-concurrency" => out.login_concurrency = count(&value()?, &flag)?.max(1),
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

/// A running variant server.
struct Server {
    variant: Variant,
    process: Process,
    addr: SocketAddr,
    credential: Option<Credential>,
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

fn start_server(binary: &PathBuf, variant: Variant, args: &Args, redis_url: Option<&str>) -> Result<Server, String> {
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
    let process = Process { name: variant.name().into(), child, _stdin: stdin };
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
    let addr = addr.ok_or_else(|| format!("the {variant} server exited before it was ready"))?;
    Ok(Server { variant, process, addr, credential })
}

/// A throwaway redis-server on a free loopback port, when one is installed.
fn start_redis(args: &Args) -> Result<RedisServer, String> {
    let dir = args.out.as_ref().and_then(|out| out.parent()).map_or_else(std::env::temp_dir, PathBuf::from);
    RedisServer::start(&dir.join(format!("redis-{}", std::process::id()))).map_err(|e| format!("skipped: {e}"))
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

/// One measurement of `server`.
fn measure(
    runtime: &tokio::runtime::Runtime,
    server: &Server,
    pids: &[u32],
    args: &Args,
    round: usize,
) -> Result<(Sample, Option<String>), String> {
    let spec = LoadSpec {
        addr: server.addr,
        credential: server.credential.as_ref().map(Credential::header).transpose()?,
        expected_body: Bytes::from_static(server.variant.expected_body().as_bytes()),
        connections: args.connections,
        warmup: args.warmup,
        duration: args.duration,
        server_pids: pids.to_vec(),
    };
    let result = runtime.block_on(load::run(&spec))?;
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

fn print_sample(variant: Variant, sample: &Sample, rounds: usize) {
    let cores = |c: Option<f64>| c.map_or_else(|| "?".to_owned(), |c| format!("{c:.2}"));
    println!(
        "  round {}/{} {:>10}: {:>8.0} req/s  p50 {:.2} ms  p99 {:.2} ms  server {:.2} µs/req  cores: server {} generator {} others {}{}",
        sample.round + 1,
        rounds,
        variant.name(),
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
    println!(
        "auth-bench: {} rounds x {:.1} s (+{:.1} s warm-up) x {} variants, {} connections; load generator: one current-thread runtime, cores shared with the servers, nothing pinned",
        args.rounds,
        args.duration.as_secs_f64(),
        args.warmup.as_secs_f64(),
        args.variants.len(),
        args.connections
    );

    // Redis first: its variant is skipped, with the reason, when it cannot run.
    let mut redis: Option<RedisServer> = None;
    let mut skipped: Vec<(Variant, String)> = Vec::new();
    if args.variants.contains(&Variant::Redis) {
        if !REDIS_BUILT {
            skipped.push((Variant::Redis, REDIS_NOT_BUILT.into()));
        } else {
            match start_redis(args) {
                Ok(started) => redis = Some(started),
                Err(reason) => skipped.push((Variant::Redis, reason)),
            }
        }
    }
    let redis_url = redis.as_ref().map(RedisServer::url);
    let redis_url = redis_url.as_deref();

    let mut servers = Vec::new();
    for &variant in &args.variants {
        if skipped.iter().any(|(v, _)| *v == variant) {
            continue;
        }
        let server = start_server(&binary, variant, args, redis_url)?;
        println!("  {variant}: {} (pid {})", server.addr, server.process.child.id());
        servers.push(server);
    }

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let mut samples: Vec<Vec<Sample>> = servers.iter().map(|_| Vec::new()).collect();
    let mut first_errors: Vec<Option<String>> = servers.iter().map(|_| None).collect();
    let redis_pid = redis.as_ref().and_then(RedisServer::pid);
    let ours: Vec<u32> = servers.iter().map(|s| s.process.child.id()).chain(redis_pid).collect();
    for round in 0..args.rounds {
        // Rotate the order so that no variant always runs first or right after another.
        for offset in 0..servers.len() {
            let index = (round + offset) % servers.len();
            let server = &servers[index];
            let mut pids = vec![server.process.child.id()];
            if server.variant == Variant::Redis {
                pids.extend(redis_pid);
            }
            let mut attempts = 0;
            let (sample, first_error) = loop {
                attempts += 1;
                wait_until_quiet(&ours, args);
                let (mut sample, first_error) = measure(&runtime, server, &pids, args, round)?;
                sample.attempts = attempts;
                sample.noisy = sample.other_cores.is_some_and(|o| o > args.max_other_cores);
                print_sample(server.variant, &sample, args.rounds);
                if !sample.noisy || attempts >= 3 {
                    break (sample, first_error);
                }
                println!("    other processes were busy: measuring {} again", server.variant);
            };
            if first_errors[index].is_none() {
                first_errors[index] = first_error;
            }
            samples[index].push(sample);
        }
    }

    let mut reports = Vec::new();
    for &variant in &args.variants {
        let reason = skipped.iter().find(|(v, _)| *v == variant).map(|(_, r)| r.clone());
        let index = servers.iter().position(|s| s.variant == variant);
        let server = index.map(|i| &servers[i]);
        reports.push(VariantReport {
            name: variant.name().into(),
            label: variant.label().into(),
            skipped: reason,
            samples: index.map(|i| samples[i].clone()).unwrap_or_default(),
            credential: server.and_then(|s| s.credential.as_ref()).map(|c| c.name.to_string()),
            credential_bytes: server.and_then(|s| s.credential.as_ref()).map(|c| c.value.len()),
            peak_rss_kib: server.and_then(|s| s.process.peak_rss_kib()),
            first_error: index.and_then(|i| first_errors[i].clone()),
        });
    }
    drop(servers);
    drop(redis);

    let login = if args.logins > 0 {
        println!("  logins: {} against MockIdp, {} at once", args.logins, args.login_concurrency);
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
        let spec = LoginSpec { logins: args.logins, concurrency: args.login_concurrency };
        Some(runtime.block_on(login::run(spec))?)
    } else {
        None
    };

    let settings = Settings {
        rounds: args.rounds,
        duration_secs: args.duration.as_secs_f64(),
        warmup_secs: args.warmup.as_secs_f64(),
        connections: args.connections,
        server_threads: args.server_threads,
        command: args.command.clone(),
    };
    let report = Report::new(settings, machine, reports, login);
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
