//! The quick start as a program: one layer, a page that greets the signed-in user, and
//! `/me` answering `user.to_json()` (for a browser's session or an API client's bearer
//! token, when the provider section sets `bearer_audience`). Guarded pages: `/private`
//! (anyone signed in), `/admin` (members of the group named by the environment variable
//! `ADMIN_GROUP`, default `admins`) and `/sensitive` (a login at most 300 seconds old: an
//! older one is sent to log in again).
//!
//! ```text
//! cargo run -p auth-examples --bin axum-basic -- --config auth.toml --listen 127.0.0.1:3000
//! ```

use auth_examples::{Args, escape, home_page, init_tracing, private_page, shutdown_signal};
use auth_tower::{AuthConfig, AuthLayer, Policy, RequireLayer, RequireUser, User};
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

async fn admin(user: User) -> Html<String> {
    Html(format!(
        "<!doctype html><title>Admin</title><h1>Admin</h1><p>Hello, {}: you may administer this app.</p>",
        escape(user.name().or(user.email()).unwrap_or("admin"))
    ))
}

async fn sensitive(user: User) -> Html<String> {
    Html(format!(
        "<!doctype html><title>Sensitive</title><h1>Sensitive</h1><p>{} signed in less than five minutes ago.</p>",
        escape(user.name().or(user.email()).unwrap_or("You"))
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
    let auth = AuthLayer::from_config(AuthConfig::from_file(&args.config)?)?;
    let admin_group = auth_examples::admin_group()?;
    let guarded = Router::new()
        .route("/admin", get(admin))
        .route_layer(RequireLayer::new(Policy::group(admin_group)))
        .merge(Router::new().route("/sensitive", get(sensitive)).route_layer(RequireLayer::new(Policy::max_age(300))));
    let app = Router::new()
        .route("/", get(home))
        .route("/me", get(me))
        .route("/private", get(private))
        .merge(guarded)
        .layer(auth);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?;
    Ok(())
}
