//! Throwaway `redis-server`s on loopback for tests: this crate's, and any other crate's
//! that dev-depends on `auth-redis` with the feature `testing`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use auth_redis::{RedisStore, testing::RedisServer};
//!
//! let redis = RedisServer::start()?; // stopped when dropped
//! let store = RedisStore::new(&redis.url())?;
//! store.ping().await?;
//! # Ok(()) }
//! ```
//!
//! Needs the `redis-server` program (`apt-get install -y redis-server`); without it,
//! starting fails with an error that says so, so a test fails instead of skipping.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How to install the server, in every error about it.
pub const INSTALL_HINT: &str = "install it with `apt-get install -y redis-server` (Debian/Ubuntu)";

/// How long a server may take to start or stop.
const PATIENCE: Duration = Duration::from_secs(10);

/// A `redis-server` on `127.0.0.1`, daemonized, without persistence, in its own
/// temporary directory. Dropping it stops the server (by the pid in its pid file) and
/// waits until it has exited.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    pid: u32,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts a server on a free port.
    ///
    /// # Errors
    /// When `redis-server` is not installed (the message says how to install it) or does
    /// not start.
    pub fn start() -> io::Result<Self> {
        Self::start_with(&[])
    }

    /// Starts a server on a free port with extra `redis-server` arguments, such as
    /// `["--requirepass", "secret"]`.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn start_with(args: &[&str]) -> io::Result<Self> {
        retry_on_port_clash(|| Self::start_on_with(free_port(false)?, args))
    }

    /// Starts a server on `port`, for example again on the port of one that was stopped.
    ///
    /// # Errors
    /// As [`start`](Self::start), and `AddrInUse` when the port is taken.
    pub fn start_on(port: u16) -> io::Result<Self> {
        Self::start_on_with(port, &[])
    }

    fn start_on_with(port: u16, args: &[&str]) -> io::Result<Self> {
        check_installed()?;
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "auth-redis-{}-{port}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        let pidfile = dir.join("redis.pid");
        let logfile = dir.join("redis.log");
        let status = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "yes"])
            .arg("--pidfile")
            .arg(&pidfile)
            .arg("--logfile")
            .arg(&logfile)
            .arg("--dir")
            .arg(&dir)
            .args(args)
            .stdin(Stdio::null())
            .status()?;
        if !status.success() {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(io::Error::other(format!("redis-server exited with {status}")));
        }
        // The daemon writes its pid file before it listens; a server of someone else's on
        // the same port would answer PING, so its pid is compared too.
        let deadline = Instant::now() + PATIENCE;
        let pid = loop {
            if let Some(pid) = read_pid(&pidfile) {
                break pid;
            }
            let log = log_tail(&logfile);
            if log.contains("in use") {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(io::Error::new(io::ErrorKind::AddrInUse, format!("port {port}: {log}")));
            }
            if Instant::now() > deadline {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(io::Error::other(format!("redis-server wrote no pid file: {log}")));
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let server = Self { port, pid, dir };
        loop {
            if !is_running(pid) {
                let log = log_tail(&logfile);
                let kind = if log.contains("in use") { io::ErrorKind::AddrInUse } else { io::ErrorKind::Other };
                return Err(io::Error::new(kind, format!("redis-server on port {port} exited: {log}")));
            }
            if let Ok(info) = server.command("INFO server") {
                if info.lines().any(|l| l.trim() == format!("process_id:{pid}")) {
                    return Ok(server);
                }
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("port {port} is taken by another server"),
                ));
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!("redis-server did not answer: {}", log_tail(&logfile))));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Stops it now (the same as dropping it).
    pub fn stop(self) {}

    /// Freezes the process (`SIGSTOP`): connections stay open but nothing answers, as
    /// with a hung server or a network partition.
    pub fn pause(&self) {
        signal(self.pid, "STOP");
    }

    /// Undoes [`pause`](Self::pause).
    pub fn resume(&self) {
        signal(self.pid, "CONT");
    }

    /// Sends one inline command (`"CONFIG SET maxmemory 10mb"`) and returns the answer as
    /// text: the status, the bulk string, or the integer.
    ///
    /// # Errors
    /// When the server cannot be reached or answers with an error.
    pub fn command(&self, line: &str) -> io::Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.write_all(line.as_bytes())?;
        stream.write_all(b"\r\n")?;
        let mut reader = BufReader::new(stream);
        let mut first = String::new();
        reader.read_line(&mut first)?;
        let first = first.trim_end();
        match first.split_at_checked(1) {
            Some(("+" | ":", rest)) => Ok(rest.to_owned()),
            Some(("$", "-1")) => Ok(String::new()),
            Some(("$", len)) => {
                let len: usize = len.parse().map_err(|_| io::Error::other(format!("bad reply {first:?}")))?;
                let mut body = vec![0; len + 2];
                reader.read_exact(&mut body)?;
                body.truncate(len);
                String::from_utf8(body).map_err(io::Error::other)
            }
            _ => Err(io::Error::other(format!("`{line}` failed: {first}"))),
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // TERM, then CONT in case it is paused; KILL if it lingers.
        signal(self.pid, "TERM");
        signal(self.pid, "CONT");
        if !wait_exit(self.pid, PATIENCE) {
            signal(self.pid, "KILL");
            wait_exit(self.pid, PATIENCE);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster of `redis-server`s on loopback, each a primary owning a share of the
/// 16384 slots, made with `redis-cli --cluster create`. Dropping it stops every node.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `primaries` nodes (at least 3, as Redis Cluster requires) and joins them.
    ///
    /// # Errors
    /// As [`RedisServer::start`], or when the cluster does not form.
    pub fn start(primaries: usize) -> io::Result<Self> {
        let mut nodes = Vec::with_capacity(primaries);
        for _ in 0..primaries {
            let node = retry_on_port_clash(|| {
                let port = free_port(true)?;
                let args = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"];
                RedisServer::start_on_with(port, &[&args[..], &["--cluster-node-timeout", "2000"]].concat())
            })?;
            nodes.push(node);
        }
        let addresses: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let output = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot run redis-cli: {e}; {INSTALL_HINT}")))?;
        if !output.status.success() {
            return Err(io::Error::other(format!(
                "redis-cli --cluster create failed: {}",
                String::from_utf8_lossy(&output.stdout)
            )));
        }
        let cluster = Self { nodes };
        let deadline = Instant::now() + PATIENCE;
        while !cluster.nodes.iter().all(|n| n.command("CLUSTER INFO").is_ok_and(|i| i.contains("cluster_state:ok"))) {
            if Instant::now() > deadline {
                return Err(io::Error::other("the cluster did not reach cluster_state:ok"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(cluster)
    }

    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,...`, the form
    /// [`RedisStore::new`](crate::RedisStore::new) takes.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// The nodes.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }
}

fn check_installed() -> io::Result<()> {
    match Command::new("redis-server").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(io::Error::new(io::ErrorKind::NotFound, format!("redis-server is not installed: {INSTALL_HINT}")))
        }
        Err(e) => Err(io::Error::new(e.kind(), format!("cannot run redis-server ({e}): {INSTALL_HINT}"))),
    }
}

fn retry_on_port_clash<T>(mut start: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let mut attempts = 0;
    loop {
        match start() {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && attempts < 5 => attempts += 1,
            other => return other,
        }
    }
}

/// A port free right now on loopback; for a cluster node, one whose bus port (+10000) is
/// free too.
fn free_port(cluster: bool) -> io::Result<u16> {
    for _ in 0..100 {
        let port = TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port();
        if !cluster {
            return Ok(port);
        }
        if port < 55000 && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return Ok(port);
        }
    }
    Err(io::Error::new(io::ErrorKind::AddrInUse, "found no free port for a cluster node"))
}

fn read_pid(pidfile: &Path) -> Option<u32> {
    std::fs::read_to_string(pidfile).ok()?.trim().parse().ok()
}

fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Whether `pid` is alive: it exists and is not a zombie left for a parent to reap.
fn is_running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the parenthesized command name.
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}

fn wait_exit(pid: u32, patience: Duration) -> bool {
    let deadline = Instant::now() + patience;
    while is_running(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

fn log_tail(logfile: &Path) -> String {
    let log = std::fs::read_to_string(logfile).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}
