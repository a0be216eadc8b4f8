//! The quick start as a program: one layer, a page that greets the signed-in user, and
//! `/me` answering `user.to_json()`.
//!
//! ```text
//! cargo run -p auth-examples --bin axum-basic -- --config auth.toml --listen 127.0.0.1:3000
//! ```

use auth_examples::{Args, home_page, init_tracing, private_page, shutdown_signal};
use auth_tower::{AuthConfig, AuthLayer, RequireUser, User};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};

async fn home(user: User) -> Html<String> {
    Html(home_page("axum-basic", &user))
}

async fn me(user: User) -> impl IntoResponse {
    Json(user.to_json())
}

async fn private(RequireUser(user): RequireUser) -> Html<String> {
    Html(private_page(&user))
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
    let auth = AuthLayer::from_config(AuthConfig::from_file(&args.config)?)?;
    let app = Router::new().route("/", get(home)).route("/me", get(me)).route("/private", get(private)).layer(auth);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?;
    Ok(())
}
