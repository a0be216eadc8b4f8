//! One variant's server, for `bench-run`: `bench-server --variant NAME --listen ADDR
//! [--redis-url URL]`.
//!
//! It prints `listening on ADDR`, then `credential: NAME: VALUE` when its clients send a
//! header that signs them in (`cookie: ...` or `authorization: Bearer ...`; not for the
//! many-session variants, whose cookies `bench-run` makes), then `ready`,
//! and serves until killed or until its standard input closes (so that a crashed
//! `bench-run` leaves no server behind). It runs a multi-thread Tokio runtime, with
//! one worker per core unless `--threads` says otherwise.

use auth_bench::Variant;
use auth_bench::variants::{Prepared, prepare};
use axum::serve::ListenerExt as _;
use std::io::{Read as _, Write as _};
use std::net::SocketAddr;

const USAGE: &str = "usage: bench-server --variant NAME --listen ADDR [--threads N] [--redis-url URL]
  --threads N  Tokio worker threads (default: one per core)
  variants: bare, bare-cookie, bare-chunked-cookie, bare-many-cookies, anonymous, logged-in, logged-in-metrics, logged-in-dpop, chunked, redis, axum-login, bearer,
            many-sessions, many-sessions-redis";

struct Args {
    variant: Variant,
    listen: SocketAddr,
    threads: Option<usize>,
    redis_url: Option<String>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut variant, mut listen, mut threads, mut redis_url) = (None, None, None, None);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--variant" => {
                let name = value()?;
                variant = Some(Variant::parse(&name).ok_or_else(|| format!("unknown variant {name:?}"))?);
            }
            "--listen" => {
                let v = value()?;
                listen = Some(v.parse().map_err(|_| format!("--listen {v:?} is not an address"))?);
            }
            "--threads" => {
                let v = value()?;
                threads =
                    Some(v.parse().ok().filter(|n| *n > 0).ok_or_else(|| format!("--threads {v:?} is not a count"))?);
            }
            "--redis-url" => redis_url = Some(value()?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Args {
        variant: variant.ok_or("--variant is required")?,
        listen: listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))),
        threads,
        redis_url,
    })
}

fn main() {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("bench-server: {message}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads);
    }
    let outcome = runtime.enable_all().build().map_err(|e| e.to_string()).and_then(|rt| rt.block_on(run(args)));
    if let Err(message) = outcome {
        eprintln!("bench-server: {message}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    // `_idp` (the bearer variant's identity provider) serves until the process ends.
    let Prepared { app, credential, idp: _idp, .. } = prepare(args.variant, args.redis_url.as_deref()).await?;
    let listener = tokio::net::TcpListener::bind(args.listen).await.map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    let mut lines = format!("listening on {addr}\n");
    if let Some(credential) = &credential {
        lines.push_str(&format!("credential: {}: {}\n", credential.name, credential.value));
    }
    lines.push_str("ready\n");
    out.write_all(lines.as_bytes()).and_then(|()| out.flush()).map_err(|e| e.to_string())?;
    drop(out);

    std::thread::spawn(|| {
        let mut sink = [0u8; 64];
        while std::io::stdin().read(&mut sink).is_ok_and(|n| n > 0) {}
        std::process::exit(0);
    });
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}
