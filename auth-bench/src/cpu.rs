//! CPU time from `/proc`: how much of the machine the server, the load generator and
//! everything else used during a measurement.
//!
//! Requests per second on a shared 2-core machine move with whatever else runs; the
//! server's CPU time per request moves much less, and the CPU time of other processes
//! says which rounds were disturbed.

use std::time::{Duration, Instant};

/// Clock ticks per second of `/proc` times (`USER_HZ`, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// `utime + stime` of process `pid`, in ticks.
fn process_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after its closing parenthesis do not.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 of the line, utime 14 and stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// A `kB` field of `/proc/PID/status`, such as `VmRSS` (resident now) or `VmHWM` (peak
/// resident), in KiB.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Busy ticks of all CPUs together: user, nice, system and steal (time the hypervisor
/// gave to other machines). Interrupt time is left out: on loopback it is mostly the
/// bench's own packets, which no process is charged for.
fn system_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line.split_whitespace().filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal
    Some(v.first()? + v.get(1)? + v.get(2)? + v.get(7).copied().unwrap_or(0))
}

/// Cores kept busy over `probe` by processes other than `ours` and this one.
pub fn others_busy(ours: &[u32], probe: Duration) -> Option<f64> {
    let ticks = |pids: &[u32]| -> Option<u64> {
        let mut sum = process_ticks(std::process::id())?;
        for pid in pids {
            sum += process_ticks(*pid)?;
        }
        Some(sum)
    };
    let (system, mine) = (system_busy_ticks()?, ticks(ours)?);
    let started = Instant::now();
    std::thread::sleep(probe);
    let (system2, mine2) = (system_busy_ticks()?, ticks(ours)?);
    let others = system2.saturating_sub(system) as f64 - mine2.saturating_sub(mine) as f64;
    Some((others / TICKS_PER_SEC / started.elapsed().as_secs_f64()).max(0.0))
}

/// CPU times at one instant.
#[derive(Clone, Debug)]
pub struct Snapshot {
    at: Instant,
    server: Option<u64>,
    generator: Option<u64>,
    system: Option<u64>,
}

impl Snapshot {
    /// Now, for the server's processes `server` (the app, and its Redis when it has one);
    /// the generator is this process.
    pub fn take(server: &[u32]) -> Self {
        let server = server.iter().map(|pid| process_ticks(*pid)).sum::<Option<u64>>();
        Self { at: Instant::now(), server, generator: process_ticks(std::process::id()), system: system_busy_ticks() }
    }

    /// What was used between `self` and `later`.
    pub fn usage_until(&self, later: &Snapshot) -> Usage {
        let secs = later.at.duration_since(self.at).as_secs_f64().max(1e-9);
        let delta = |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?) as f64 / TICKS_PER_SEC);
        let server = delta(self.server, later.server);
        let generator = delta(self.generator, later.generator);
        let system = delta(self.system, later.system);
        let others = match (system, server, generator) {
            (Some(all), Some(s), Some(g)) => Some((all - s - g).max(0.0)),
            _ => None,
        };
        Usage {
            secs,
            server_cpu_secs: server,
            server_cores: server.map(|s| s / secs),
            generator_cores: generator.map(|g| g / secs),
            other_cores: others.map(|o| o / secs),
        }
    }
}

/// CPU used over a window, in seconds of CPU or in cores (CPU seconds per second).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    /// The window, s.
    pub secs: f64,
    /// CPU seconds the server's processes used.
    pub server_cpu_secs: Option<f64>,
    /// Cores the server kept busy.
    pub server_cores: Option<f64>,
    /// Cores the load generator kept busy.
    pub generator_cores: Option<f64>,
    /// Cores everything else kept busy (other processes, other builds on the machine).
    pub other_cores: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_and_the_system() {
        let before = Snapshot::take(&[std::process::id()]);
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let usage = before.usage_until(&Snapshot::take(&[std::process::id()]));
        assert!(usage.server_cores.is_some_and(|c| c >= 0.0));
        assert!(usage.other_cores.is_some());
    }
}
