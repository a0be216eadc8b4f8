//! What the end-to-end suites share: the certified OpenID Provider (`e2e/op/provider.mjs`)
//! and an example app configured only by its config file, each a child process that is
//! killed by its pid when dropped, with its log kept for failure reports.
//!
//! `certified_op.rs` drives the pair with a plain HTTP client; `browser.rs` with headless
//! Chromium. Both `mod support;` this file, each using its own part of it.
#![allow(dead_code, reason = "each test crate compiles this module and uses a different part of it")]

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use url::Url;

pub(crate) const CLIENT_ID: &str = "e2e-client";
pub(crate) const CLIENT_SECRET: &str = "e2e-secret";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The suite's name in messages: the test target (`certified_op`, `browser`).
pub(crate) const SUITE: &str = env!("CARGO_CRATE_NAME");

/// The example apps every scenario runs against.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Example {
    AxumBasic,
    HyperBasic,
}

impl Example {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::AxumBasic => "axum-basic",
            Self::HyperBasic => "hyper-basic",
        }
    }

    fn exe(self) -> &'static str {
        match self {
            Self::AxumBasic => env!("CARGO_BIN_EXE_axum-basic"),
            Self::HyperBasic => env!("CARGO_BIN_EXE_hyper-basic"),
        }
    }
}

/// How to run the provider (and the few app settings a scenario needs with it).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct OpOptions {
    /// `--access-token-ttl` (seconds); the provider's default (an hour) when `None`.
    pub(crate) access_token_ttl: Option<u32>,
    /// Extra lines for the app's `[auth]` section, such as `"refresh_margin_secs = 1"`.
    pub(crate) app_config: &'static str,
    /// `--resource` (an API whose client-credentials tokens are JWTs for this audience).
    pub(crate) resource: Option<&'static str>,
    /// `--par` (`required`, `optional` or `off`): pushed authorization requests; the
    /// provider's default (`optional`) when `None`.
    pub(crate) par: Option<&'static str>,
    /// `--dpop` (`required`: DPoP-bound access tokens and server nonces); the provider's
    /// default when `None`.
    pub(crate) dpop: Option<&'static str>,
    /// The app signs in as the provider's `private_key_jwt` client (`<client-id>-pkjwt`)
    /// with an EC key made here, which the provider fetches from the app's `/auth/jwks`
    /// (`--client-jwks URL`, `publish_client_jwks = true`).
    pub(crate) private_key_jwt: bool,
    /// `--fapi 2.0`: the provider's FAPI 2.0 Security Profile, and PS256 ID tokens.
    pub(crate) fapi: bool,
    /// The provider's loopback address; `127.0.0.1` when `None`. Another one (`127.0.0.2`)
    /// makes the provider another site than the app for the browser's `SameSite` rules.
    pub(crate) op_host: Option<&'static str>,
}

/// The provider and an example app logging in against it, on free loopback ports.
pub(crate) struct Stack {
    // Dropped first (fields drop in order): the app, then the OP, then the temp dir.
    pub(crate) app: Proc,
    pub(crate) op: Proc,
    _dir: TempDir,
    app_base: Url,
    issuer: String,
}

impl Stack {
    /// Starts the provider, writes the app's config file, starts `example` with it, and
    /// waits until both print their "listening" line. `name` labels the temp dir.
    pub(crate) fn start(name: &str, example: Example, options: OpOptions) -> Self {
        let op_dir = repo_root().join("e2e/op");
        preflight_op(&op_dir);

        let dir = TempDir::new(name);
        let app_port = free_port();
        let app_base = Url::parse(&format!("http://127.0.0.1:{app_port}/")).expect("app url");
        let redirect_uri = format!("http://127.0.0.1:{app_port}/oauth2callback");

        let mut cmd = Command::new(node());
        cmd.current_dir(&op_dir)
            .arg(op_dir.join("provider.mjs"))
            .args(["--host", options.op_host.unwrap_or("127.0.0.1"), "--port", "0"])
            .args(["--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET])
            .args(["--redirect-uri", &redirect_uri])
            .args(["--post-logout-redirect-uri", app_base.as_str()]);
        if let Some(ttl) = options.access_token_ttl {
            cmd.args(["--access-token-ttl", &ttl.to_string()]);
        }
        if let Some(resource) = options.resource {
            cmd.args(["--resource", resource]);
        }
        if let Some(par) = options.par {
            cmd.args(["--par", par]);
        }
        if let Some(dpop) = options.dpop {
            cmd.args(["--dpop", dpop]);
        }
        if options.fapi {
            cmd.args(["--fapi", "2.0"]);
        }
        if options.private_key_jwt {
            cmd.args(["--client-jwks", app_base.join("auth/jwks").expect("jwks url").as_str()]);
        }
        let (op, line) = Proc::spawn("oidc-provider", cmd, "oidc-provider listening on ");
        let issuer = line.trim_start_matches("oidc-provider listening on ").trim().to_owned();
        if let Err(e) = Url::parse(&issuer) {
            panic!("[{SUITE}] bad issuer line {line:?}: {e}");
        }

        let cookie_secret = format!("e2e-{name}-{}-cookie-secret-0123456789abcdef", std::process::id());
        let client = if options.private_key_jwt {
            let key = dir.path.join("client-key.pem");
            let made = Command::new("openssl")
                .args(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out"])
                .arg(&key)
                .status();
            assert!(
                made.is_ok_and(|status| status.success()),
                "[{SUITE}] openssl cannot make a key; install it: apt-get install -y openssl"
            );
            format!(
                "client_id = \"{CLIENT_ID}-pkjwt\"\ntoken_endpoint_auth_method = \"private_key_jwt\"\n\
                 client_private_key_file = {key:?}\npublish_client_jwks = true"
            )
        } else {
            format!("client_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"")
        };
        let config = format!(
            "[auth]\n\
             redirect_uri = \"{redirect_uri}\"\n\
             cookie_secret = \"{cookie_secret}\"\n\
             {client}\n\
             server_metadata_url = \"{issuer}/.well-known/openid-configuration\"\n\
             {}\n",
            options.app_config
        );
        let config_path = dir.path.join("auth.toml");
        std::fs::write(&config_path, config).expect("write config");

        let mut cmd = Command::new(example.exe());
        let log_filter = std::env::var("RUST_LOG")
            .unwrap_or_else(|_| "info,auth_core=debug,auth_providers=debug,auth_tower=debug".into());
        cmd.arg("--config")
            .arg(&config_path)
            .args(["--listen", &format!("127.0.0.1:{app_port}")])
            .env("RUST_LOG", log_filter)
            .env("NO_COLOR", "1")
            // The app talks to the OP on loopback: never through a CI proxy.
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost");
        let (app, _) = Proc::spawn(example.name(), cmd, "listening on http://");

        Self { app, op, _dir: dir, app_base, issuer }
    }

    /// A URL of the app, from a path (and query).
    pub(crate) fn app(&self, path_and_query: &str) -> Url {
        self.app_base.join(path_and_query).expect("app url")
    }

    /// The issuer exactly as the provider announced it (no trailing slash).
    pub(crate) fn issuer(&self) -> &str {
        &self.issuer
    }

    /// A URL under the issuer, from a path such as `/.well-known/openid-configuration`.
    pub(crate) fn issuer_url(&self, path: &str) -> Url {
        Url::parse(&format!("{}{path}", self.issuer)).expect("issuer url")
    }

    /// The last `n` log lines of both processes, for a failure message.
    pub(crate) fn logs(&self, n: usize) -> String {
        let mut out = String::new();
        for proc in [&self.op, &self.app] {
            let _ = writeln!(out, "  {} log (tail):", proc.name);
            for line in proc.tail(n) {
                let _ = writeln!(out, "    | {line}");
            }
        }
        out
    }
}

/// The workspace root.
pub(crate) fn repo_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    root.canonicalize().unwrap_or(root)
}

/// The cargo target directory these tests were built into (`<target>/debug/axum-basic`).
pub(crate) fn target_dir() -> PathBuf {
    let exe = Path::new(env!("CARGO_BIN_EXE_axum-basic"));
    exe.parent().and_then(Path::parent).map_or_else(|| repo_root().join("target"), Path::to_path_buf)
}

fn node() -> String {
    std::env::var("NODE").unwrap_or_else(|_| "node".into())
}

/// Node and the provider's packages must be there: fail with the fix, never skip.
fn preflight_op(op_dir: &Path) {
    let node = node();
    let version = Command::new(&node).arg("--version").output();
    if !version.as_ref().is_ok_and(|o| o.status.success()) {
        panic!(
            "\n[{SUITE}] Node.js (`{node}`) is required to run the certified OpenID Provider ({}): {}.\n\
             Fix: apt-get install -y nodejs npm   (Node 20 or newer), then: npm ci --prefix e2e/op\n",
            op_dir.display(),
            match &version {
                Ok(o) => format!("`{node} --version` exited with {}", o.status),
                Err(e) => e.to_string(),
            }
        );
    }
    if !op_dir.join("node_modules/oidc-provider/package.json").is_file() {
        panic!(
            "\n[{SUITE}] the certified OpenID Provider's packages are not installed ({} is missing).\n\
             Fix: npm ci --prefix e2e/op   (from the repository root)\n",
            op_dir.join("node_modules/oidc-provider").display()
        );
    }
}

/// The `[auth]` config of an example app at `app_base` signing in with `idp` (the default
/// provider), a cookie secret unique to `label` and this process, and `extra` lines.
pub(crate) fn mock_idp_config(idp: &auth_testkit::MockIdp, app_base: &str, label: &str, extra: &str) -> String {
    format!(
        "[auth]\n\
         redirect_uri = \"{app_base}/oauth2callback\"\n\
         cookie_secret = \"{label}-{}-cookie-secret-0123456789abcdef\"\n\
         client_id = \"{}\"\n\
         client_secret = \"{}\"\n\
         server_metadata_url = \"{}\"\n\
         {extra}\n",
        std::process::id(),
        idp.client_id(),
        idp.client_secret(),
        idp.metadata_url(),
    )
}

/// The command running the example binary `exe` with `config` on `127.0.0.1:port`: the
/// layer logs at debug (shown when a suite fails), no colours, never through a proxy.
pub(crate) fn example_command(exe: &str, config: &Path, port: u16) -> Command {
    let mut cmd = Command::new(exe);
    cmd.arg("--config")
        .arg(config)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info,auth_tower=debug".into()))
        .env("NO_COLOR", "1")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost");
    cmd
}

pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

// ---------------------------------------------------------------------------------------
// Child processes: killed by pid and reaped on drop, logs kept for failure reports
// ---------------------------------------------------------------------------------------

pub(crate) struct Proc {
    pub(crate) name: &'static str,
    child: Child,
    log: Arc<Mutex<VecDeque<String>>>,
}

impl Proc {
    /// Starts `cmd` (stdout and stderr piped) and waits for a stdout line starting with
    /// `ready`; returns the guard and that line.
    pub(crate) fn spawn(name: &'static str, mut cmd: Command, ready: &str) -> (Self, String) {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("[{SUITE}] cannot start {name} ({cmd:?}): {e}"));
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        pump(stdout, Arc::clone(&log), Some(tx));
        pump(stderr, Arc::clone(&log), None);
        let mut proc = Self { name, child, log };

        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.starts_with(ready) => return (proc, line),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    proc.startup_failure(&format!("did not print \"{ready}...\" within {}s", STARTUP_TIMEOUT.as_secs()))
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // stdout closed: give the exit status (and stderr's last lines) a moment.
                    let status = wait_briefly(&mut proc.child, Duration::from_secs(2));
                    proc.startup_failure(&format!("exited before it was ready (status: {status:?})"))
                }
            }
        }
    }

    fn startup_failure(&mut self, what: &str) -> ! {
        let mut msg = format!("\n[{SUITE}] {} {what}\n  log:\n", self.name);
        for line in self.tail(60) {
            let _ = writeln!(msg, "    | {line}");
        }
        panic!("{msg}");
    }

    /// The last `n` lines it printed (stdout and stderr interleaved).
    pub(crate) fn tail(&self, n: usize) -> Vec<String> {
        let log = self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        log.iter().skip(log.len().saturating_sub(n)).cloned().collect()
    }

    /// How many lines it printed so far (within the kept tail) contain `needle`.
    pub(crate) fn count(&self, needle: &str) -> usize {
        let log = self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        log.iter().filter(|line| line.contains(needle)).count()
    }

    /// Whether any line it printed so far (within the kept tail) contains `needle`.
    pub(crate) fn printed(&self, needle: &str) -> bool {
        let log = self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        log.iter().any(|line| line.contains(needle))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Processes it started (Chromium under chromedriver) are found first, by parent pid,
        // and signalled by their pids too: once the parent is gone they could not be found.
        let descendants = descendants(self.child.id());
        // `Child::kill` signals this child's pid (SIGKILL); then reap it.
        let _ = self.child.kill();
        if !descendants.is_empty() {
            let _ = Command::new("kill")
                .arg("-KILL")
                .args(descendants.iter().map(u32::to_string))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.wait();
    }
}

fn wait_briefly(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => return None,
        }
    }
}

/// The pids of every process below `root`, from `/proc/*/stat` (empty where there is no `/proc`).
fn descendants(root: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let parents: Vec<(u32, u32)> = entries
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            let after_comm = &stat[stat.rfind(')')? + 1..];
            let ppid = after_comm.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect();
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for &(pid, ppid) in &parents {
            if ppid == parent && !found.contains(&pid) {
                found.push(pid);
                frontier.push(pid);
            }
        }
    }
    found
}

/// Copies lines from a child's pipe into `log` (bounded), forwarding them to `tx` if given.
fn pump(pipe: impl Read + Send + 'static, log: Arc<Mutex<VecDeque<String>>>, tx: Option<mpsc::Sender<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            {
                let mut log = log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if log.len() >= 1000 {
                    log.pop_front();
                }
                log.push_back(line.clone());
            }
            if let Some(tx) = &tx {
                let _ = tx.send(line);
            }
        }
    });
}

/// A fresh directory under the system temp dir, removed on drop.
pub(crate) struct TempDir {
    pub(crate) path: PathBuf,
}

impl TempDir {
    pub(crate) fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!("{SUITE}-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The visible text of an HTML body (scripts and styles dropped), whitespace collapsed, cut.
pub(crate) fn snippet(body: &str, max: usize) -> String {
    let mut text = String::new();
    let mut rest = body;
    while let Some(start) = rest.find('<') {
        text.push_str(&rest[..start]);
        text.push(' ');
        let after = &rest[start..];
        let lower = after.get(..7).unwrap_or(after).to_ascii_lowercase();
        let skip_to = if lower.starts_with("<style") {
            Some("</style")
        } else if lower.starts_with("<script") {
            Some("</script")
        } else {
            None
        };
        rest = match skip_to.and_then(|end| after.find(end)) {
            Some(i) => &after[i + 1..],
            None => &after[1..],
        };
        rest = rest.find('>').map_or("", |i| &rest[i + 1..]);
    }
    text.push_str(rest);
    let text = decode_entities(&text.split_whitespace().collect::<Vec<_>>().join(" "));
    if text.chars().count() > max { format!("{}…", text.chars().take(max).collect::<String>()) } else { text }
}

pub(crate) fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let decoded = rest.find(';').filter(|&end| end <= 10).and_then(|end| {
            let entity = &rest[1..end];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}
