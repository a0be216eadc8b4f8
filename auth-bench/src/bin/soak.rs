//! The soak, as `cargo xtask soak` runs it: `axum-basic` as a process, once with Redis and
//! once with the cookie store, under mixed traffic while `MockIdp` and `redis-server` go
//! down and come back (see `auth_bench::soak`). Prints the Markdown report, writes it and
//! the JSON to `--out` (`report.md`, `report.json`), and exits 1 when a gate failed.

use auth_bench::soak::report::SoakReport;
use auth_bench::soak::{self, Plan, SoakSpec, Store};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: soak [--seconds N] [--stores redis,cookie] [--connections N] [--users N]
            [--logins-per-sec X] [--logouts-per-sec X] [--backchannel-per-sec X]
            [--access-token-ttl SECS] [--rss-bound-mib N] [--app PATH] [--out DIR] [--command TEXT]
  --seconds N          traffic per store (default 60); the IdP is down from 25 % of it for a third
                       (at most 10 s), Redis from 60 % for a sixth (at most 5 s)
  --connections N      keep-alive connections at most (default 256; 16 of them for logins and logouts)
  --users N            users in the pool, each signed in once at the start (default 200)
  --logins-per-sec     new logins of signed-out users (default 4); logouts 2, back-channel logouts 1 (Redis)
  --access-token-ttl   MockIdp's access tokens (default 5 s; refresh_margin_secs = 0: they refresh all the time)
  --rss-bound-mib N    the app's RSS may grow this much during the traffic (default 64)
  --app PATH           the axum-basic binary (default: next to this one)
  --out DIR            where report.md, report.json, configs and logs go (default target/soak)";

fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<(SoakSpec, Vec<Store>, String)>, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = me.parent().map(PathBuf::from).unwrap_or_default();
    let mut spec = SoakSpec {
        app: dir.join(format!("axum-basic{}", std::env::consts::EXE_SUFFIX)),
        duration: Duration::from_secs(60),
        connections: 256,
        users: 200,
        logins_per_sec: 4.0,
        logouts_per_sec: 2.0,
        backchannel_per_sec: 1.0,
        access_token_ttl: Duration::from_secs(5),
        rss_bound_mib: 64,
        dir: dir.parent().map_or_else(|| PathBuf::from("target"), PathBuf::from).join("soak"),
    };
    let mut stores = vec![Store::Redis, Store::Cookie];
    let mut command = "soak".to_owned();
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| -> Result<f64, String> {
            v.parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0).ok_or_else(|| format!("{v:?} is not a number"))
        };
        match flag.as_str() {
            "--seconds" => spec.duration = Duration::from_secs_f64(number(value()?)?.max(3.0)),
            "--stores" => {
                stores = value()?
                    .split(',')
                    .map(|s| Store::parse(s.trim()).ok_or_else(|| format!("unknown store {s:?} (redis, cookie)")))
                    .collect::<Result<_, _>>()?;
            }
            "--connections" => spec.connections = (number(value()?)? as usize).clamp(2, 256),
            "--users" => spec.users = (number(value()?)? as usize).clamp(1, 1000),
            "--logins-per-sec" => spec.logins_per_sec = number(value()?)?,
            "--logouts-per-sec" => spec.logouts_per_sec = number(value()?)?,
            "--backchannel-per-sec" => spec.backchannel_per_sec = number(value()?)?,
            "--access-token-ttl" => spec.access_token_ttl = Duration::from_secs_f64(number(value()?)?.max(1.0)),
            "--rss-bound-mib" => spec.rss_bound_mib = number(value()?)? as u64,
            "--app" => spec.app = value()?.into(),
            "--out" => spec.dir = value()?.into(),
            "--command" => command = value()?,
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if !spec.app.is_file() {
        return Err(format!(
            "{} is missing: build it with `cargo build -p auth-examples --bin axum-basic` (or pass --app)",
            spec.app.display()
        ));
    }
    Ok(Some((spec, stores, command)))
}

fn main() {
    let (spec, stores, command) = match parse(std::env::args().skip(1)) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => {
            println!("{USAGE}");
            return;
        }
        Err(message) => {
            eprintln!("soak: {message}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let started = Instant::now();
    let build = if cfg!(debug_assertions) { "debug" } else { "release" };
    let mut reports = Vec::new();
    for store in &stores {
        println!(
            "soak: session_store {} for {:.0} s, {} users, up to {} connections ({build} build)",
            store.name(),
            spec.duration.as_secs_f64(),
            spec.users,
            spec.connections
        );
        match soak::run(&spec, *store) {
            Ok(report) => reports.push(report),
            Err(message) => {
                eprintln!("soak: {} run could not be set up: {message}", store.name());
                std::process::exit(3);
            }
        }
    }
    let plan = Plan::for_run(spec.duration, Store::Redis);
    let report = SoakReport::new(command, build.into(), &plan, reports, started.elapsed().as_secs_f64());
    let markdown = report.markdown();
    println!("\n{markdown}");
    let written = std::fs::create_dir_all(&spec.dir)
        .and_then(|()| std::fs::write(spec.dir.join("report.md"), &markdown))
        .map_err(|e| e.to_string())
        .and_then(|()| serde_json::to_string_pretty(&report).map_err(|e| e.to_string()))
        .and_then(|json| std::fs::write(spec.dir.join("report.json"), json + "\n").map_err(|e| e.to_string()));
    match written {
        Ok(()) => println!("wrote {} and report.json", spec.dir.join("report.md").display()),
        Err(error) => eprintln!("soak: cannot write the report to {}: {error}", spec.dir.display()),
    }
    if !report.passed() {
        eprintln!("soak: FAILED (see the report)");
        std::process::exit(1);
    }
}
