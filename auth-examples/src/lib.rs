//! Runnable example servers for the auth workspace; see `src/bin/`.
//!
//! What the examples share lives here, so each is written once: [`Args`], the command line
//! every example accepts; the pages ([`home_page`], [`private_page`]); and
//! [`shutdown_signal`]. The end-to-end suites (`tests/`) read these pages in a browser.

use auth_tower::User;
use std::net::SocketAddr;
use std::path::PathBuf;

/// `--config FILE` (default `auth.toml`) and `--listen ADDR` (default `127.0.0.1:3000`).
#[derive(Debug)]
pub struct Args {
    /// The auth config file (Streamlit's `[auth]` format).
    pub config: PathBuf,
    /// The address to serve on.
    pub listen: SocketAddr,
}

impl Args {
    /// Parses the process arguments; prints usage and exits on `--help` or a bad flag.
    pub fn from_env(program: &str) -> Self {
        match Self::parse(std::env::args().skip(1)) {
            Ok(Some(args)) => args,
            Ok(None) => {
                println!(
                    "usage: {program} [--config FILE] [--listen ADDR]\n  --config FILE   auth config (default auth.toml)\n  --listen ADDR   address to serve on (default 127.0.0.1:3000)"
                );
                std::process::exit(0)
            }
            Err(message) => {
                eprintln!("{program}: {message}\nrun `{program} --help` for usage");
                std::process::exit(2)
            }
        }
    }

    /// Parses `args`; `Ok(None)` means help was asked for.
    ///
    /// # Errors
    /// A message naming the flag and the fix.
    pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<Self>, String> {
        let mut out = Self { config: "auth.toml".into(), listen: SocketAddr::from(([127, 0, 0, 1], 3000)) };
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--config" => out.config = value()?.into(),
                "--listen" => {
                    let v = value()?;
                    out.listen =
                        v.parse().map_err(|_| format!("--listen {v:?} is not an address such as 127.0.0.1:3000"))?;
                }
                "-h" | "--help" => return Ok(None),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(Some(out))
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

/// The home page: "Welcome back, NAME!" with a logout button when someone is signed in,
/// a login link otherwise. `title` names the example in the browser tab.
pub fn home_page(title: &str, user: &User) -> String {
    let body = if user.is_logged_in() {
        let name = escape(user.name().or(user.email()).unwrap_or("friend"));
        format!(
            "<h1>Welcome back, {name}!</h1>\
             <p><a href=\"/me\">Your claims as JSON</a> · <a href=\"/private\">A private page</a></p>\
             <form method=\"post\" action=\"/auth/logout\"><button type=\"submit\">Log out</button></form>"
        )
    } else {
        "<h1>Not logged in</h1><p><a href=\"/auth/login\">Log in</a></p>".to_owned()
    };
    html_document(title, &body)
}

/// The page behind a login, for a signed-in `user` (the caller turns anonymous visitors away).
pub fn private_page(user: &User) -> String {
    let name = escape(user.name().or(user.email()).unwrap_or("friend"));
    html_document(
        "Private",
        &format!("<h1>Welcome back, {name}!</h1><p>This page needs a login.</p><p><a href=\"/\">Home</a></p>"),
    )
}

fn html_document(title: &str, body: &str) -> String {
    let title = escape(title);
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head><body>{body}</body></html>"
    )
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM: the moment to stop accepting and drain.
pub async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let term = async {
        match term.as_mut() {
            Some(term) => {
                term.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Args>, String> {
        Args::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn pages_escape_names() {
        assert!(home_page("t", &User::anonymous()).contains("Not logged in"));
        assert_eq!(escape("<a href='x'>&</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;");
    }

    #[test]
    fn parses_flags() {
        let args = parse(&["--config", "x.toml", "--listen", "127.0.0.1:0"]).expect("ok").expect("not help");
        assert_eq!(args.config, PathBuf::from("x.toml"));
        assert_eq!(args.listen.port(), 0);
        assert!(parse(&["--help"]).expect("ok").is_none());
        assert!(parse(&["--listen", "nope"]).expect_err("bad").contains("--listen"));
        assert!(parse(&["--config"]).expect_err("missing").contains("needs a value"));
    }
}

/// The README's Rust blocks, compiled (and run, unless marked `no_run`) as this crate's
/// doctests, so the front door's code cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
