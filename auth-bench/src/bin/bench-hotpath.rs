//! A variant's app driven in process for a fixed number of requests, one at a time, on a
//! current-thread runtime: `bench-hotpath --variant NAME --requests N`.
//!
//! For instruction counts that do not depend on the machine's noise:
//!
//! ```text
//! valgrind --tool=callgrind --toggle-collect='*bench_hotpath*measured*' \
//!     target/release/bench-hotpath --variant logged-in --requests 20000
//! callgrind_annotate --inclusive=yes callgrind.out.<pid>
//! ```
//!
//! Only `measured` (the request loop) is counted with that toggle, not the setup.

use auth_bench::Variant;
use auth_bench::hotpath::HotPath;
use auth_bench::many::{DEFAULT_SESSIONS, MAX_SESSIONS};
use std::time::Instant;

const USAGE: &str = "usage: bench-hotpath --variant NAME [--requests N] [--redis-url URL] [--sessions N]
  --sessions N  distinct users of the many-session variants, sent in turn (default 100000)
  variants: bare, bare-cookie, bare-chunked-cookie, bare-many-cookies, anonymous, logged-in, logged-in-metrics, logged-in-dpop, chunked, redis, axum-login, bearer,
            many-sessions, many-sessions-redis";

/// The loop callgrind collects (see the module docs); not inlined so that it has a name.
#[inline(never)]
fn measured(runtime: &tokio::runtime::Runtime, hot: &HotPath, requests: usize) -> usize {
    runtime.block_on(hot.drive(requests))
}

fn main() {
    let (mut variant, mut requests, mut redis_url, mut sessions) = (None, 100_000usize, None, DEFAULT_SESSIONS);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next();
        match (flag.as_str(), value) {
            ("--variant", Some(name)) => variant = Variant::parse(&name),
            ("--requests", Some(n)) => requests = n.parse().unwrap_or(requests),
            ("--redis-url", Some(url)) => redis_url = Some(url),
            ("--sessions", Some(n)) => {
                sessions = n.parse().ok().filter(|n| (1..=MAX_SESSIONS).contains(n)).unwrap_or(sessions)
            }
            _ => {
                eprintln!("{USAGE}");
                std::process::exit(2);
            }
        }
    }
    let Some(variant) = variant else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("bench-hotpath: {error}");
            std::process::exit(1);
        }
    };
    let hot = match runtime.block_on(HotPath::new(variant, redis_url.as_deref(), sessions)) {
        Ok(hot) => hot,
        Err(error) => {
            eprintln!("bench-hotpath: {error}");
            std::process::exit(1);
        }
    };
    let started = Instant::now();
    let good = measured(&runtime, &hot, requests);
    let elapsed = started.elapsed();
    println!(
        "{variant}: {good}/{requests} requests answered as expected in {:.3} s ({:.0}/s, {:.0} ns each)",
        elapsed.as_secs_f64(),
        requests as f64 / elapsed.as_secs_f64(),
        elapsed.as_nanos() as f64 / requests.max(1) as f64
    );
    if good != requests {
        std::process::exit(1);
    }
}
