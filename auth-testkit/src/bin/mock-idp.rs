//! `mock-idp`: serves an `auth_testkit::MockIdp` until Ctrl-C or SIGTERM, for local
//! development and demos. Run with `--help` for the flags.

use std::io::Write as _;
use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use auth_testkit::{MockIdp, MockUser};
use serde_json::Value;

const HELP: &str = "\
mock-idp: a mock OpenID Connect provider for local development and tests.
Its signing keys are public test keys: never trust its tokens anywhere else.

USAGE:
    mock-idp [OPTIONS]

OPTIONS:
    --port N                 Port to listen on (default 0: a free port, printed on start)
    --host IP                Address to listen on (default 127.0.0.1)
    --client-id ID           The client's id (default mock-client)
    --client-secret SECRET   The client's secret (default mock-secret)
    --user NAME[:EMAIL[:Display Name]]
                             Add a user; repeatable (default users: alice and bob)
    --users-file PATH        Add users from a JSON array such as
                             [{\"username\": \"carol\", \"email\": \"carol@example.test\",
                               \"name\": \"Carol\", \"picture\": \"https://...\",
                               \"password\": \"optional\", \"groups\": [\"extra claims\"]}]
    --login-as NAME          Sign NAME in automatically instead of showing the login page
    --minimal-id-token       Put profile claims only in /userinfo, not in the ID token
    --auth-age SECS          Logins happened SECS seconds ago (their ID token's auth_time),
                             unless the app asks for a fresh one with max_age or
                             prompt=login (default 0)
    -h, --help               Show this help

On start it prints `mock-idp listening on http://HOST:PORT`, then the client and users.";

#[derive(Debug, Default)]
struct Args {
    port: u16,
    host: Option<IpAddr>,
    client_id: Option<String>,
    client_secret: Option<String>,
    users: Vec<MockUser>,
    login_as: Option<String>,
    minimal_id_token: bool,
    auth_age: Duration,
    help: bool,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args::default();
    while let Some(arg) = args.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.to_owned())),
            _ => (arg, None),
        };
        let mut value = |what: &str| {
            inline.clone().or_else(|| args.next()).ok_or_else(|| format!("{flag} needs a value: {flag} {what}"))
        };
        match flag.as_str() {
            "-h" | "--help" => parsed.help = true,
            "--port" => {
                let raw = value("N")?;
                parsed.port = raw
                    .parse()
                    .map_err(|_| format!("--port {raw}: expected a port number 0-65535 (0 picks a free port)"))?;
            }
            "--host" => {
                let raw = value("IP")?;
                parsed.host = Some(
                    raw.parse()
                        .map_err(|_| format!("--host {raw}: expected an IP address such as 127.0.0.1 or ::1"))?,
                );
            }
            "--client-id" => parsed.client_id = Some(value("ID")?),
            "--client-secret" => parsed.client_secret = Some(value("SECRET")?),
            "--user" => parsed.users.push(parse_user(&value("NAME[:EMAIL[:Display Name]]")?)?),
            "--users-file" => parsed.users.extend(read_users_file(&value("PATH")?)?),
            "--login-as" => parsed.login_as = Some(value("NAME")?),
            "--minimal-id-token" => parsed.minimal_id_token = true,
            "--auth-age" => {
                let raw = value("SECS")?;
                let secs: u64 = raw
                    .parse()
                    .map_err(|_| format!("--auth-age {raw}: expected a whole number of seconds, such as 3600"))?;
                parsed.auth_age = Duration::from_secs(secs);
            }
            other => return Err(format!("unknown flag {other}: run mock-idp --help for the list of flags")),
        }
    }
    Ok(parsed)
}

fn parse_user(spec: &str) -> Result<MockUser, String> {
    let mut parts = spec.splitn(3, ':');
    let name = parts.next().unwrap_or_default();
    if name.is_empty() {
        return Err(format!("--user {spec}: the user name is empty; use --user alice:alice@example.test:Alice"));
    }
    let mut user = MockUser::new(name);
    if let Some(email) = parts.next().filter(|e| !e.is_empty()) {
        user = user.email(email);
    }
    if let Some(display) = parts.next().filter(|d| !d.is_empty()) {
        user = user.name(display);
    }
    Ok(user)
}

fn read_users_file(path: &str) -> Result<Vec<MockUser>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("--users-file {path}: cannot read it: {e}"))?;
    let json: Value = serde_json::from_str(&text)
        .map_err(|e| format!("--users-file {path}: not valid JSON ({e}); expected an array of user objects"))?;
    let Value::Array(entries) = json else {
        return Err(format!(
            "--users-file {path}: expected a JSON array of user objects, like [{{\"username\": \"carol\"}}]"
        ));
    };
    let mut users = Vec::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let Value::Object(fields) = entry else {
            return Err(format!("--users-file {path}: entry {i} is not a JSON object"));
        };
        let Some(Value::String(username)) = fields.get("username") else {
            return Err(format!("--users-file {path}: entry {i} needs a \"username\" string"));
        };
        let mut user = MockUser::new(username.as_str());
        for (key, value) in &fields {
            user = match (key.as_str(), value) {
                ("username", _) => user,
                ("email", Value::String(s)) => user.email(s.as_str()),
                ("email_verified", Value::Bool(b)) => user.email_verified(*b),
                ("name", Value::String(s)) => user.name(s.as_str()),
                ("picture", Value::String(s)) => user.picture(s.as_str()),
                ("password", Value::String(s)) => user.password(s.as_str()),
                ("email" | "email_verified" | "name" | "picture" | "password", _) => {
                    return Err(format!(
                        "--users-file {path}: entry {i} field \"{key}\" has the wrong type \
                         (email_verified is a boolean, the others are strings)"
                    ));
                }
                _ => user.claim(key.as_str(), value.clone()),
            };
        }
        users.push(user);
    }
    Ok(users)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("mock-idp: {message}");
            return ExitCode::from(2);
        }
    };
    if args.help {
        println!("{HELP}");
        return ExitCode::SUCCESS;
    }
    let mut builder =
        MockIdp::builder().port(args.port).minimal_id_token(args.minimal_id_token).auth_age(args.auth_age);
    if let Some(host) = args.host {
        builder = builder.bind(host);
    }
    if args.client_id.is_some() || args.client_secret.is_some() {
        builder = builder.client(
            args.client_id.unwrap_or_else(|| "mock-client".into()),
            args.client_secret.unwrap_or_else(|| "mock-secret".into()),
        );
    }
    for user in args.users {
        builder = builder.user(user);
    }
    builder = builder.login_as(args.login_as.as_deref());
    let idp = match builder.start().await {
        Ok(idp) => idp,
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
            eprintln!("mock-idp: --port {}: the port is in use; pick another or use --port 0", args.port);
            return ExitCode::FAILURE;
        }
        Err(error) if error.kind() == std::io::ErrorKind::InvalidInput => {
            let name = args.login_as.unwrap_or_default();
            eprintln!(
                "mock-idp: --login-as {name}: no user named \"{name}\"; add it with --user {name} or --users-file"
            );
            return ExitCode::from(2);
        }
        Err(error) => {
            eprintln!("mock-idp: cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };

    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "mock-idp listening on {}", idp.issuer());
    let _ = writeln!(out, "  metadata:      {}", idp.metadata_url());
    let _ = writeln!(out, "  client_id:     {}", idp.client_id());
    let _ = writeln!(out, "  client_secret: {}", idp.client_secret());
    for user in idp.users() {
        let claims = user.claims();
        let field = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or("-").to_owned();
        let _ = writeln!(out, "  user: {}  email: {}  name: {}", user.username(), field("email"), field("name"));
    }
    if let Some(name) = &args.login_as {
        let _ = writeln!(out, "  auto-login as: {name}");
    }
    let _ = out.flush();
    drop(out);

    shutdown_signal().await;
    idp.stop().await;
    ExitCode::SUCCESS
}
