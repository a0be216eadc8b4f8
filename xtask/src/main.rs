//! `cargo xtask`: the workspace's own commands, in plain Rust so they run wherever cargo does.
//!
//! - `demo`: the mock IdP and `axum-basic` with a fresh config, offline;
//! - `run EXAMPLE [--config FILE] [--listen ADDR]`: one example;
//! - `dev-idp [mock-idp flags]`: the mock IdP alone;
//! - `test`: formatting, clippy and every test suite, installing what they need;
//! - `e2e`: only the suites that meet real parts (the certified OpenID Provider).

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};

const USAGE: &str = "usage: cargo xtask <command>
  demo [--port N]                      mock IdP + axum-basic on http://127.0.0.1:N (default 3000), offline
  run EXAMPLE [--config F] [--listen A] run an example from auth-examples (axum-basic, ...)
  dev-idp [FLAGS]                      run the mock IdP alone (flags: see `cargo xtask dev-idp --help`)
  test                                 cargo fmt --check, clippy -D warnings, every test suite
  e2e                                  the suites against a real, certified OpenID Provider";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo(&args[1..]),
        Some("run") => run_example(&args[1..]),
        Some("dev-idp") => cargo(&["run", "--quiet", "-p", "auth-testkit", "--bin", "mock-idp", "--"], &args[1..]),
        Some("test") => test(),
        Some("e2e") => e2e(),
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
    install_op()?;
    step("cargo test --workspace");
    cargo(&["test", "--workspace"], &[])
}

fn e2e() -> Result<(), String> {
    install_op()?;
    step("cargo test -p auth-examples --test certified_op");
    cargo(&["test", "-p", "auth-examples", "--test", "certified_op"], &[])
}

/// Installs the certified OpenID Provider (`e2e/op`) from its lockfile when needed.
fn install_op() -> Result<(), String> {
    let dir = root().join("e2e/op");
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Err("Node.js is required for the certified OpenID Provider suite: install it with `apt-get install -y nodejs npm` (Node 20 or newer)".into());
    }
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
