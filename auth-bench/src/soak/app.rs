//! The app under test: `axum-basic --config FILE --listen 127.0.0.1:PORT`, a child process
//! stopped by its pid when dropped, its log (stderr) kept in a file for the report.

use crate::cpu;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// What the app printed to its log, in short.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct LogSummary {
    /// The log file.
    pub path: String,
    /// Its lines.
    pub lines: usize,
    /// Lines at level ERROR (a failing store is logged so, once per request).
    pub errors: usize,
    /// Lines at level WARN.
    pub warnings: usize,
    /// Lines saying a thread panicked.
    pub panics: usize,
    /// The first such line.
    pub first_panic: Option<String>,
}

/// A running `axum-basic`.
#[derive(Debug)]
pub(crate) struct AppProcess {
    child: Child,
    pub(crate) addr: SocketAddr,
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
    log: PathBuf,
}

impl AppProcess {
    /// Starts `binary` with `config` on `port`, and waits (up to 30 s) until it prints that
    /// it listens. `RUST_LOG` is passed on (default `warn`).
    pub(crate) fn start(binary: &Path, config: &Path, port: u16, log: &Path) -> Result<Self, String> {
        let log_file = std::fs::File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
        let mut child = Command::new(binary)
            .arg("--config")
            .arg(config)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", filter)
            .env("NO_COLOR", "1")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut told = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if !told && line.contains("listening on http://") {
                    told = tx.send(()).is_ok();
                }
            }
        });
        let app = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            base: format!("http://127.0.0.1:{port}"),
            log: log.to_path_buf(),
        };
        if rx.recv_timeout(Duration::from_secs(30)).is_err() {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(5).collect();
            return Err(format!("{} did not start: {}", binary.display(), tail.join(" | ")));
        }
        Ok(app)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory now, KiB.
    pub(crate) fn rss_kib(&self) -> Option<u64> {
        cpu::status_kib(self.pid(), "VmRSS")
    }

    /// Peak resident memory so far, KiB.
    pub(crate) fn hwm_kib(&self) -> Option<u64> {
        cpu::status_kib(self.pid(), "VmHWM")
    }

    /// Stops the process and sums up its log.
    pub(crate) fn stop(mut self) -> LogSummary {
        let _ = self.child.kill();
        let _ = self.child.wait();
        summarize(&self.log)
    }
}

impl Drop for AppProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn summarize(path: &Path) -> LogSummary {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut summary = LogSummary { path: path.display().to_string(), ..LogSummary::default() };
    for line in text.lines() {
        summary.lines += 1;
        if line.contains(" ERROR ") {
            summary.errors += 1;
        } else if line.contains(" WARN ") {
            summary.warnings += 1;
        }
        if line.contains("panicked") {
            summary.panics += 1;
            summary.first_panic.get_or_insert_with(|| line.chars().take(400).collect());
        }
    }
    summary
}
