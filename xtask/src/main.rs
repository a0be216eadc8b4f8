//! `cargo xtask`: the workspace's own commands, in plain Rust so they run wherever cargo does.
//!
//! - `demo`: the mock IdP and `axum-basic` with a fresh config, offline;
//! - `run EXAMPLE [--config FILE] [--listen ADDR]`: one example;
//! - `dev-idp [mock-idp flags]`: the mock IdP alone;
//! - `test`: formatting, clippy and every test suite, installing what they need;
//! - `e2e`: only the suites that meet real parts: the certified OpenID Provider, over
//!   HTTP and in headless Chromium, and two app processes sharing a real Redis.
//! - `bench [--quick] [bench-run flags]`: the hot-path benchmark (`auth-bench`), built in
//!   release; prints a Markdown table and writes `target/bench/results.json`.
//! - `fuzz [--seconds N] [TARGET...]`: the cargo-fuzz targets of `fuzz/` (libFuzzer, nightly),
//!   each for N seconds (default 10), installing cargo-fuzz under `target/` when missing.
//! - `soak [--seconds N] [--debug] [soak flags]`: `axum-basic` under mixed traffic while the
//!   identity provider and Redis go down and come back (`auth-bench`'s soak), once with
//!   Redis and once with the cookie store; writes `target/soak/report.{md,json}`.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};

const USAGE: &str = "usage: cargo xtask <command>
  demo [--port N]                      mock IdP + axum-basic on http://127.0.0.1:N (default 3000), offline
  run EXAMPLE [--config F] [--listen A] run an example from auth-examples (axum-basic, hyper-basic, tonic-basic, ...)
  dev-idp [FLAGS]                      run the mock IdP alone (flags: see `cargo xtask dev-idp --help`)
  test                                 cargo fmt --check, clippy -D warnings, every test suite
  readme-app                           build the README's Install + Quick start as a crate of its own
  e2e                                  the suites against a certified OpenID Provider (HTTP and Chromium) and Redis
  bench [--quick] [FLAGS]              hot-path benchmark vs bare axum and axum-login (`cargo xtask bench --help`)
  soak [--seconds N] [--debug] [FLAGS] axum-basic under load while the IdP and Redis fail (default 60 s per store, release)
  fuzz [--seconds N] [TARGET...]       run the fuzz targets of fuzz/ for N seconds each (default 10; nightly)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo(&args[1..]),
        Some("run") => run_example(&args[1..]),
        Some("dev-idp") => cargo(&["run", "--quiet", "-p", "auth-testkit", "--bin", "mock-idp", "--"], &args[1..]),
        Some("test") => test(),
        Some("readme-app") => readme_app(),
        Some("e2e") => e2e(),
        Some("bench") => bench(&args[1..]),
        Some("fuzz") => fuzz(&args[1..]),
        Some("soak") => soak(&args[1..]),
        Some("-h" | "--help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command {other:?}\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Runs `cargo ARGS EXTRA` in the workspace root and fails when it fails.
fn cargo(args: &[&str], extra: &[String]) -> Result<(), String> {
    let status = Command::new(cargo_bin())
        .args(args)
        .args(extra)
        .current_dir(root())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("`cargo {}` failed ({status})", args.join(" "))) }
}

fn step(title: &str) {
    println!("\n==> {title}");
}

fn test() -> Result<(), String> {
    step("cargo fmt --all --check");
    cargo(&["fmt", "--all", "--check"], &[])?;
    step("cargo clippy --workspace --all-targets -- -D warnings");
    cargo(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"], &[])?;
    features()?;
    readme_app()?;
    step("RUSTDOCFLAGS=\"-D warnings\" cargo doc --no-deps --workspace");
    let status = Command::new(cargo_bin())
        .args(["doc", "--no-deps", "--workspace"])
        .env("RUSTDOCFLAGS", "-D warnings")
        .current_dir(root())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("`cargo doc` found broken docs ({status})"));
    }
    system_requirements()?;
    install_op()?;
    step("cargo test --workspace");
    cargo(&["test", "--workspace"], &[])
}

/// The library crates, each checked with its default features off and with all of them
/// on: the workspace build merges features, so a branch compiled only without one (such
/// as auth-tower without `redis`) would otherwise never be compiled in CI.
const LIBRARIES: &[&str] = &["auth-core", "auth-providers", "auth-tower", "auth-testkit", "auth-redis"];

fn features() -> Result<(), String> {
    for library in LIBRARIES {
        for features in ["--no-default-features", "--all-features"] {
            step(&format!("cargo clippy -p {library} {features} -- -D warnings"));
            cargo(&["clippy", "-p", library, features, "--", "-D", "warnings"], &[])?;
        }
    }
    Ok(())
}

/// Builds the app a newcomer writes from the README alone: a crate of its own (outside
/// this workspace) with the Install section's `[dependencies]` and the Quick start's code.
/// The README's other Rust blocks are doctests of `auth-examples`; this one also checks
/// that the dependency lines (features included) are enough.
fn readme_app() -> Result<(), String> {
    step("the README's Install and Quick start, built as a crate of its own");
    let readme = fs::read_to_string(root().join("README.md")).map_err(|e| format!("cannot read README.md: {e}"))?;
    let block = |section: &str, fence: &str| -> Result<String, String> {
        let start = readme.find(section).ok_or_else(|| format!("README.md has no {section:?}"))?;
        let open = readme[start..]
            .find(fence)
            .map(|i| start + i + fence.len())
            .ok_or_else(|| format!("no {fence} in {section:?}"))?;
        let close = readme[open..].find("```").ok_or_else(|| format!("an unclosed block in {section:?}"))?;
        Ok(readme[open..open + close].to_owned())
    };
    let workspace = root();
    let dependencies = block("## Install", "```toml\n")?.replace(
        "path = \"../auth-tower/auth-tower\"",
        &format!("path = {:?}", workspace.join("auth-tower").display().to_string()),
    );
    if !dependencies.contains(&workspace.join("auth-tower").display().to_string()) {
        return Err("the README's Install block no longer says `path = \"../auth-tower/auth-tower\"`".into());
    }
    let main = block("## Quick start", "```rust,no_run\n")?;
    let app = workspace.join("target").join("readme-app");
    fs::create_dir_all(app.join("src")).map_err(|e| format!("cannot create {}: {e}", app.display()))?;
    let manifest = format!(
        "[package]\nname = \"readme-app\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[workspace]\n\n{dependencies}"
    );
    let write =
        |path: PathBuf, text: &str| fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()));
    write(app.join("Cargo.toml"), &manifest)?;
    write(app.join("src").join("main.rs"), &main)?;
    // The workspace's lock file: the same versions, so most of the build is reused.
    if !app.join("Cargo.lock").exists() {
        fs::copy(workspace.join("Cargo.lock"), app.join("Cargo.lock"))
            .map_err(|e| format!("cannot copy Cargo.lock: {e}"))?;
    }
    let status = Command::new(cargo_bin())
        .args(["build", "--quiet", "--manifest-path"])
        .arg(app.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", app.join("target"))
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("the README's quick-start app does not build ({status})")) }
}

fn e2e() -> Result<(), String> {
    system_requirements()?;
    install_op()?;
    let suites = ["certified_op", "browser", "two_instances_one_redis"];
    step(&format!("cargo test -p auth-examples --test {}", suites.join(" --test ")));
    let mut args = vec!["test", "-p", "auth-examples"];
    for suite in suites {
        args.extend(["--test", suite]);
    }
    cargo(&args, &[])
}

/// A program the suites start, and the Debian packages that bring it.
struct Requirement {
    program: &'static str,
    packages: &'static [&'static str],
    used_by: &'static str,
}

/// What the suites meet for real: the certified OpenID Provider runs on Node.js, the
/// browser suite drives Chromium through chromedriver, the session-store suites start
/// their own Redis (and a Redis Cluster with redis-cli), the TLS test makes a CA with openssl
/// and the `private_key_jwt` tests make client keys with it.
const REQUIREMENTS: &[Requirement] = &[
    Requirement {
        program: "node",
        packages: &["nodejs", "npm"],
        used_by: "the certified OpenID Provider (Node.js 20+)",
    },
    Requirement { program: "npm", packages: &["npm"], used_by: "installing the certified OpenID Provider" },
    Requirement { program: "chromium", packages: &["chromium"], used_by: "the browser suite" },
    Requirement { program: "chromedriver", packages: &["chromium-driver"], used_by: "the browser suite" },
    Requirement { program: "redis-server", packages: &["redis-server"], used_by: "the Redis session-store suites" },
    Requirement { program: "redis-cli", packages: &["redis-tools"], used_by: "the Redis Cluster test" },
    Requirement {
        program: "openssl",
        packages: &["openssl"],
        used_by: "the Redis TLS test and the private_key_jwt tests (client keys)",
    },
];

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Makes sure every program of [`REQUIREMENTS`] is installed (see [`install_missing`]).
fn system_requirements() -> Result<(), String> {
    install_missing(&REQUIREMENTS.iter().collect::<Vec<_>>())
}

/// Makes sure the programs of `wanted` are installed. Missing ones are installed with
/// apt-get when this runs as root on a Debian-like machine (CI, a fresh container);
/// elsewhere it stops with the exact command to run. Never a silent skip.
fn install_missing(wanted: &[&Requirement]) -> Result<(), String> {
    let missing: Vec<&Requirement> = wanted.iter().copied().filter(|r| !on_path(r.program)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut packages: Vec<&str> = missing.iter().flat_map(|r| r.packages.iter().copied()).collect();
    packages.dedup();
    let command = format!("apt-get install -y --no-install-recommends {}", packages.join(" "));
    let why: Vec<String> = missing.iter().map(|r| format!("{} ({})", r.program, r.used_by)).collect();
    let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if !is_root || !on_path("apt-get") {
        return Err(format!("missing {}: install with `sudo {command}`", why.join(", ")));
    }
    step(&format!("installing {} (for {})", packages.join(" "), why.join(", ")));
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| format!("cannot run apt-get: {e}"))
            .and_then(|s| if s.success() { Ok(()) } else { Err(format!("`apt-get {}` failed ({s})", args.join(" "))) })
    };
    apt(&["update", "-qq"])?;
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend(&packages);
    apt(&install)?;
    match wanted.iter().find(|r| !on_path(r.program)) {
        Some(r) => Err(format!("{} is still missing after `{command}`", r.program)),
        None => Ok(()),
    }
}

/// Installs the certified OpenID Provider (`e2e/op`) from its lockfile when needed.
fn install_op() -> Result<(), String> {
    let dir = root().join("e2e/op");
    if dir.join("node_modules/oidc-provider/package.json").exists() {
        return Ok(());
    }
    step("npm ci --prefix e2e/op");
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefix"])
        .arg(&dir)
        .status()
        .map_err(|e| format!("cannot run npm: {e}; install it with `apt-get install -y npm`"))?;
    if status.success() { Ok(()) } else { Err(format!("`npm ci --prefix e2e/op` failed ({status})")) }
}

/// Builds `auth-bench` in release (with the Redis variant when `auth-redis` builds) and
/// runs `bench-run`, which starts one server process per variant, drives them in
/// interleaved rounds, and writes `target/bench/results.json`.
fn bench(args: &[String]) -> Result<(), String> {
    step("cargo build --release -p auth-bench --features redis");
    let features = if cargo(&["build", "--release", "-p", "auth-bench", "--features", "redis"], &[]).is_ok() {
        "redis"
    } else {
        step("auth-redis did not build: cargo build --release -p auth-bench (the Redis variant is skipped)");
        cargo(&["build", "--release", "-p", "auth-bench"], &[])?;
        ""
    };
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    let bench_run = target.join("release").join(format!("bench-run{}", std::env::consts::EXE_SUFFIX));
    if args.iter().any(|a| a == "-h" || a == "--help") {
        let status = Command::new(&bench_run).arg("--help").status();
        return status.map(drop).map_err(|e| format!("cannot run bench-run: {e}"));
    }
    let out = target.join("bench").join("results.json");
    let mut command = String::from("cargo xtask bench");
    for arg in args {
        command.push(' ');
        command.push_str(arg);
    }
    step(&format!("bench-run{}", if features.is_empty() { "" } else { " (with the Redis variant)" }));
    let status = Command::new(&bench_run)
        .args(args)
        .arg("--out")
        .arg(&out)
        .args(["--command", &command])
        .current_dir(root())
        .status()
        .map_err(|e| format!("cannot run bench-run: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("bench-run failed ({status})")) }
}

/// Builds the soak driver (`auth-bench`'s `soak`) and `axum-basic`, in release, or with
/// `--debug` in the test profile (what `cargo test` already built, as CI would run it), makes
/// sure `redis-server` is installed, and runs the soak: once with Redis, once with the cookie
/// store. It prints the Markdown report, writes `target/soak/report.{md,json}`, and fails
/// when a gate failed (a 5xx, a lost or a revoked session served, RSS growth).
fn soak(args: &[String]) -> Result<(), String> {
    let debug = args.iter().any(|a| a == "--debug");
    let rest: Vec<String> = args.iter().filter(|a| *a != "--debug").cloned().collect();
    let redis: Vec<&Requirement> = REQUIREMENTS.iter().filter(|r| r.program == "redis-server").collect();
    install_missing(&redis)?;
    let mut build = vec!["build", "-p", "auth-bench", "--bin", "soak", "-p", "auth-examples", "--bin", "axum-basic"];
    if !debug {
        build.insert(1, "--release");
    }
    step(&format!("cargo {}", build.join(" ")));
    let started = std::time::Instant::now();
    cargo(&build, &[])?;
    println!("built in {:.0} s", started.elapsed().as_secs_f64());
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    let bin = target.join(if debug { "debug" } else { "release" });
    let mut command = String::from("cargo xtask soak");
    for arg in args {
        command.push(' ');
        command.push_str(arg);
    }
    step(&format!("soak{}", if debug { " (debug build)" } else { "" }));
    let status = Command::new(bin.join(format!("soak{}", std::env::consts::EXE_SUFFIX)))
        .arg("--app")
        .arg(bin.join(format!("axum-basic{}", std::env::consts::EXE_SUFFIX)))
        .arg("--out")
        .arg(target.join("soak"))
        .args(["--command", &command])
        .args(&rest)
        .current_dir(root())
        .status()
        .map_err(|e| format!("cannot run soak: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("the soak failed ({status}); see target/soak/report.md")) }
}

/// The targets of `fuzz/fuzz_targets/`, in the order `cargo xtask fuzz` runs them.
const FUZZ_TARGETS: &[&str] =
    &["cookie_scan", "unseal", "session_json", "config_toml", "return_to", "query", "layer", "tokens"];

/// Runs the fuzz targets (all, or those named) for `--seconds N` each, after installing
/// cargo-fuzz into `target/cargo-fuzz` when it is missing (`cargo install`, about a minute)
/// and building them (nightly: libFuzzer needs its sanitizer flags). Seeds come from
/// `fuzz/corpus/TARGET` (never written to); what the fuzzer learns goes to
/// `fuzz/target/corpus/TARGET`, crashes to `fuzz/artifacts/TARGET`. Prints each target's
/// executions; fails on the first crash, with the command that replays it.
fn fuzz(args: &[String]) -> Result<(), String> {
    let mut seconds: u64 = 10;
    let mut targets: Vec<&str> = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--seconds" => {
                let value = rest.next().ok_or("--seconds needs a number")?;
                seconds = value.parse().map_err(|_| format!("--seconds {value:?} is not a number of seconds"))?;
            }
            name => match FUZZ_TARGETS.iter().find(|t| **t == name) {
                Some(target) => targets.push(target),
                None => return Err(format!("no fuzz target {name:?}; the targets: {}", FUZZ_TARGETS.join(", "))),
            },
        }
    }
    if targets.is_empty() {
        targets = FUZZ_TARGETS.to_vec();
    }
    let fuzz_dir = root().join("fuzz");
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    let tools = target.join("cargo-fuzz");
    let cargo_fuzz = tools.join("bin").join(format!("cargo-fuzz{}", std::env::consts::EXE_SUFFIX));
    if !cargo_fuzz.exists() {
        step(&format!("cargo install cargo-fuzz --locked --root {} (once; about a minute)", tools.display()));
        let started = std::time::Instant::now();
        cargo(&["install", "cargo-fuzz", "--locked", "--root", &tools.display().to_string()], &[])?;
        println!("installed in {:.0} s", started.elapsed().as_secs_f64());
    }
    // cargo-fuzz runs `cargo` and `rustc` from PATH: the rustup proxies, told to use nightly
    // (not the stable toolchain this command runs under).
    let mut path = vec![tools.join("bin")];
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")));
    path.extend(cargo_home.map(|home| home.join("bin")));
    path.extend(std::env::var_os("PATH").iter().flat_map(std::env::split_paths));
    let path = std::env::join_paths(path).map_err(|e| format!("cannot build PATH: {e}"))?;
    let nightly = |program: &Path| {
        let mut command = Command::new(program);
        command
            .current_dir(&fuzz_dir)
            .env("PATH", &path)
            .env("RUSTUP_TOOLCHAIN", "nightly")
            .env_remove("CARGO")
            .env_remove("RUSTC")
            .env_remove("RUSTC_WRAPPER")
            .env_remove("CARGO_TARGET_DIR");
        command
    };
    let version = nightly(Path::new("rustc")).arg("--version").output();
    if !version.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("-nightly")) {
        return Err("fuzzing needs the nightly toolchain: `rustup toolchain install nightly`".into());
    }

    step("cargo +nightly fuzz build (fuzz/target)");
    let started = std::time::Instant::now();
    let status =
        nightly(&cargo_fuzz).args(["fuzz", "build"]).status().map_err(|e| format!("cannot run cargo-fuzz: {e}"))?;
    if !status.success() {
        return Err(format!("`cargo fuzz build` failed ({status})"));
    }
    println!("built in {:.0} s", started.elapsed().as_secs_f64());

    let mut rows = Vec::new();
    for name in &targets {
        step(&format!("cargo +nightly fuzz run {name} -- -max_total_time={seconds}"));
        let learned = fuzz_dir.join("target").join("corpus").join(name);
        let seeds = fuzz_dir.join("corpus").join(name);
        let logs = fuzz_dir.join("target").join("logs");
        fs::create_dir_all(&learned).map_err(|e| format!("cannot create {}: {e}", learned.display()))?;
        fs::create_dir_all(&logs).map_err(|e| format!("cannot create {}: {e}", logs.display()))?;
        let log_path = logs.join(format!("{name}.log"));
        let log = fs::File::create(&log_path).map_err(|e| format!("cannot write {}: {e}", log_path.display()))?;
        let status = nightly(&cargo_fuzz)
            .args(["fuzz", "run", name])
            .arg(&learned)
            .arg(&seeds)
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .stdout(Stdio::null())
            .stderr(log)
            .status()
            .map_err(|e| format!("cannot run cargo-fuzz: {e}"))?;
        let text = fs::read_to_string(&log_path).unwrap_or_default();
        if !status.success() {
            let tail: Vec<&str> = text.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
            let artifact = text
                .lines()
                .find_map(|l| l.split("Test unit written to ").nth(1))
                .map_or_else(|| "fuzz/artifacts/".to_owned() + name, str::to_owned);
            return Err(format!(
                "fuzz target {name} failed ({status}); the end of {}:\n{}\n\nreplay it with \
                 `cd fuzz && cargo +nightly fuzz run {name} {artifact}`",
                log_path.display(),
                tail.join("\n")
            ));
        }
        // libFuzzer ends with "Done 12345 runs in 10 second(s)".
        let done = text.lines().rev().find_map(|l| l.strip_prefix("Done ")).unwrap_or_default();
        let runs: u64 = done.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
        let secs: u64 = done.split(" in ").nth(1).and_then(|s| s.split(' ').next()?.parse().ok()).unwrap_or(0);
        let corpus = fs::read_dir(&learned).map(|d| d.count()).unwrap_or(0);
        println!("{name}: {runs} runs in {secs} s ({} exec/s), {corpus} inputs learned", runs / secs.max(1));
        rows.push((name, runs, secs, corpus));
    }
    println!("\n| target | runs | seconds | exec/s | learned inputs |\n|---|---:|---:|---:|---:|");
    for (name, runs, secs, corpus) in rows {
        println!("| {name} | {runs} | {secs} | {} | {corpus} |", runs / secs.max(1));
    }
    Ok(())
}

fn run_example(args: &[String]) -> Result<(), String> {
    let Some(example) = args.first() else {
        return Err(format!("run needs an example name\n{USAGE}"));
    };
    cargo(&["run", "--quiet", "-p", "auth-examples", "--bin", example, "--"], &args[1..])
}

/// A child process killed (by its pid) and reaped when dropped.
struct Running {
    name: &'static str,
    child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        println!("stopped {}", self.name);
    }
}

/// Starts a built binary and waits for its first stdout line containing `marker`.
fn spawn(name: &'static str, program: &Path, args: &[&str], marker: &str) -> Result<(Running, String), String> {
    let child = Command::new(program)
        .args(args)
        .current_dir(root())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    let mut running = Running { name, child };
    let stdout = running.child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut first = String::new();
    for line in lines.by_ref() {
        let line = line.map_err(|e| format!("{name}: {e}"))?;
        println!("[{name}] {line}");
        if line.contains(marker) {
            first = line;
            break;
        }
    }
    if first.is_empty() {
        return Err(format!("{name} exited before it was ready"));
    }
    // Keep echoing what it prints.
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            println!("[{name}] {line}");
        }
    });
    Ok((running, first))
}

fn random_secret() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn demo(args: &[String]) -> Result<(), String> {
    let port: u16 = match args {
        [] => 3000,
        [flag, value] if flag == "--port" => {
            value.parse().map_err(|_| format!("--port {value:?} is not a port number"))?
        }
        _ => return Err(format!("demo takes only --port N\n{USAGE}")),
    };
    TcpListener::bind(("127.0.0.1", port))
        .map_err(|e| format!("port {port} is busy ({e}); pick another with `cargo xtask demo --port 3001`"))?;

    step("building mock-idp and axum-basic");
    cargo(
        &["build", "--quiet", "-p", "auth-testkit", "--bin", "mock-idp", "-p", "auth-examples", "--bin", "axum-basic"],
        &[],
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    let bin = target.join("debug");

    let (_idp, line) = spawn(
        "mock-idp",
        &bin.join("mock-idp"),
        &[
            "--port",
            "0",
            "--client-id",
            "demo-client",
            "--client-secret",
            "demo-secret",
            "--user",
            "alice:alice@example.test:Alice Example",
            "--user",
            "bob:bob@example.test:Bob Example",
        ],
        "listening on",
    )?;
    let issuer = line.rsplit(' ').next().unwrap_or_default().trim().to_owned();

    let dir = target.join("demo");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let config = dir.join("auth.toml");
    let secret = random_secret()?;
    let toml = format!(
        "# Written by `cargo xtask demo`: the default provider is the local mock IdP.\n\
         [auth]\n\
         redirect_uri = \"http://127.0.0.1:{port}/oauth2callback\"\n\
         cookie_secret = \"{secret}\"\n\
         client_id = \"demo-client\"\n\
         client_secret = \"demo-secret\"\n\
         server_metadata_url = \"{issuer}/.well-known/openid-configuration\"\n"
    );
    std::fs::write(&config, toml).map_err(|e| format!("cannot write {}: {e}", config.display()))?;

    let config_arg = config.display().to_string();
    let listen = format!("127.0.0.1:{port}");
    let (_app, _) =
        spawn("axum-basic", &bin.join("axum-basic"), &["--config", &config_arg, "--listen", &listen], "listening on")?;

    println!(
        "\nDemo ready, offline, on the built-in mock IdP ({issuer}).\n\
         \n  Open http://127.0.0.1:{port}/ and choose \"Log in\".\n\
         \n  Users: alice (Alice Example) and bob (Bob Example); any of them, no password.\n\
         \n  Config: {config_arg}\n\nPress Ctrl-C to stop."
    );
    wait_for_ctrl_c();
    Ok(())
}

/// Blocks until Ctrl-C. The terminal sends SIGINT to the whole foreground process group,
/// so the two servers stop with us.
fn wait_for_ctrl_c() {
    loop {
        std::thread::park();
    }
}
