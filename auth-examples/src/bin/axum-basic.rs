//! The quick start as a program: one layer, a page that greets the signed-in user, and
//! `/me` answering `user.to_json()`.
//!
//! ```text
//! cargo run -p auth-examples --bin axum-basic -- --config auth.toml --listen 127.0.0.1:3000
//! ```

use auth_examples::{Args, escape, init_tracing};
use auth_tower::{AuthConfig, AuthLayer, RequireUser, User};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};

async fn home(user: User) -> Html<String> {
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
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>axum-basic</title></head><body>{body}</body></html>"
    ))
}

async fn me(user: User) -> impl IntoResponse {
    Json(user.to_json())
}

async fn private(RequireUser(user): RequireUser) -> Html<String> {
    let name = escape(user.name().unwrap_or("friend"));
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Private</title></head><body><h1>Welcome back, {name}!</h1><p>This page needs a login.</p><p><a href=\"/\">Home</a></p></body></html>"
    ))
}

#[tokio::main]
async fn main() {
    init_tracing();
    let args = Args::from_env("axum-basic");
    if let Err(error) = run(args).await {
        eprintln!("axum-basic: {error}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let auth = AuthLayer::from_config(AuthConfig::from_file(&args.config)?).await?;
    let app = Router::new().route("/", get(home)).route("/me", get(me)).route("/private", get(private)).layer(auth);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).with_graceful_shutdown(shutdown()).await?;
    Ok(())
}

async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}
