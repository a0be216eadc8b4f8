//! A throwaway `redis-server` on a free loopback port, for the bench's Redis variant and
//! for the soak, which also restarts it on the same port in the middle of a run.
//!
//! It runs as a child process (not daemonized), so it is stopped by its own pid when the
//! handle drops, even when the run fails. It keeps its data in its own directory only for
//! a restart: [`RedisServer::stop_saving`] saves a snapshot on the way down, and the process
//! that [`RedisServer::start_again`] starts loads it, as a production Redis that persists
//! its sessions would; nothing is saved otherwise.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the server may take to start, or to save and stop.
const PATIENCE: Duration = Duration::from_secs(10);

/// What to run when `redis-server` is missing.
pub const INSTALL_HINT: &str = "apt-get install -y redis-server";

/// A running `redis-server` child on `127.0.0.1`.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts a server on a free port, keeping its files (log, snapshot) in `dir`.
    ///
    /// # Errors
    /// When `redis-server` is not installed (the message says how to install it), or it does
    /// not answer within 10 seconds.
    pub fn start(dir: &Path) -> Result<Self, String> {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let mut server = Self { child: None, port, dir: dir.to_path_buf() };
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--dbfilename", "dump.rdb", "--logfile", "redis.log"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start redis-server ({e}): {INSTALL_HINT}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        // PONG only once the snapshot (if any) is loaded: a loading server answers -LOADING.
        while self.command("PING").as_deref() != Ok("+PONG") {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!("redis-server on port {} exited ({status}): {}", self.port, self.log_tail()));
            }
            if Instant::now() > deadline {
                return Err(format!("redis-server on port {} did not answer within 10 s", self.port));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The port; the same after [`start_again`](Self::start_again).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Saves a snapshot and stops (`SHUTDOWN SAVE`), waiting until the process has
    /// exited; [`start_again`](Self::start_again) brings it back with the data.
    ///
    /// # Errors
    /// When it does not stop within 10 seconds (it is then killed).
    pub fn stop_saving(&mut self) -> Result<(), String> {
        let Some(mut child) = self.child.take() else { return Ok(()) };
        // The connection closes without an answer when the shutdown succeeds.
        let _ = self.command("SHUTDOWN SAVE");
        let deadline = Instant::now() + PATIENCE;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("redis-server did not save and stop within 10 s: {}", self.log_tail()));
                }
            }
        }
    }

    /// Starts the server again on its port after [`stop_saving`](Self::stop_saving); it
    /// loads the saved snapshot before it answers.
    ///
    /// # Errors
    /// As [`start`](Self::start), or when the port was taken meanwhile.
    pub fn start_again(&mut self) -> Result<(), String> {
        if self.child.is_some() {
            return Ok(());
        }
        self.spawn()
    }

    /// Sends one inline command and returns the first line of the answer (`+PONG`, `:1`,
    /// `-ERR ...`).
    ///
    /// # Errors
    /// When the server cannot be reached.
    pub fn command(&self, line: &str) -> Result<String, String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).map_err(|e| e.to_string())?;
        stream.write_all(format!("{line}\r\n").as_bytes()).map_err(|e| e.to_string())?;
        let mut answer = String::new();
        BufReader::new(stream).read_line(&mut answer).map_err(|e| e.to_string())?;
        Ok(answer.trim_end().to_owned())
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(3)..].join(" | ")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
