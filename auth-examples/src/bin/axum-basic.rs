//! The quick start as a program: one layer, a page that greets the signed-in user, and
//! `/me` answering `user.to_json()` (for a browser's session or an API client's bearer
//! token, when the provider section sets `bearer_audience`). Guarded pages: `/private`
//! (anyone signed in), `/admin` (members of the group named by the environment variable
//! `ADMIN_GROUP`, default `admins`) and `/sensitive` (a login at most 300 seconds old: an
//! older one is sent to log in again).
//!
//! With a server-side session store (`session_store = "memory"` or a Redis URL), `GET
//! /sessions` lists the signed-in person's sessions as JSON and `POST /sessions/end-others`
//! (a same-site form) signs out every other device; with the cookie store both answer `501`,
//! saying that a server-side store is needed.
//!
//! With `--metrics`, the layer's metrics ([`auth_core::metrics`]: logins, refreshes, logouts,
//! provider calls, cache hits, ...) are recorded by `metrics-exporter-prometheus` and served
//! in Prometheus' text format at `GET /metrics`, outside the auth layer. The recorder is
//! installed before the layer is built, which binds its per-request counters to it. Without
//! the flag there is no recorder and no such route. Anyone who can reach the app can read
//! `/metrics` (counts only: no user data); in production serve it where only the scraper can.
//!
//! ```text
//! cargo run -p auth-examples --bin axum-basic -- --config auth.toml --listen 127.0.0.1:3000 [--metrics]
//! ```

use auth_examples::{Args, escape, home_page, init_tracing, private_page, shutdown_signal};
use auth_tower::{AuthConfig, AuthLayer, Policy, RequireLayer, RequireUser, Sessions, Site, StoreError, User};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

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

/// The signed-in person's sessions: `{"sessions": [{"handle", "created_at", "last_seen",
/// "ends_at", "provider", "device", "current"}, ...]}`, oldest first.
async fn sessions(sessions: Sessions) -> Response {
    let list = match sessions.list().await {
        Ok(list) => list,
        Err(error) => return store_failed(&error),
    };
    let list: Vec<_> = list
        .iter()
        .map(|info| {
            json!({
                "handle": info.handle,
                "created_at": info.created_at,
                "last_seen": info.last_seen,
                "ends_at": info.ends_at,
                "provider": info.provider,
                "device": info.device,
                "current": info.handle == sessions.current(),
            })
        })
        .collect();
    Json(json!({ "sessions": list })).into_response()
}

/// Signs out every other session of the signed-in person (a form on this site only, as the
/// layer's logout): `{"ended": N}`.
async fn end_other_sessions(State(origin): State<Arc<str>>, headers: HeaderMap, sessions: Sessions) -> Response {
    if Site::of(&headers, &origin) == Site::Cross {
        let refused = json!({
            "error": "cross_site",
            "error_description": "this request came from another site, so no session was ended",
        });
        return (StatusCode::FORBIDDEN, Json(refused)).into_response();
    }
    match sessions.end_others().await {
        Ok(ended) => Json(json!({ "ended": ended })).into_response(),
        Err(error) => store_failed(&error),
    }
}

fn store_failed(error: &StoreError) -> Response {
    tracing::error!(%error, "session store failed");
    let body =
        json!({ "error": "unavailable", "error_description": "the session store is unavailable, try again shortly" });
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

/// Installs the Prometheus recorder as the process's metrics recorder, with buckets for the
/// provider call durations, and runs its upkeep (draining histograms) every five seconds.
fn install_prometheus() -> Result<PrometheusHandle, Box<dyn std::error::Error>> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(auth_core::metrics::PROVIDER_REQUEST_DURATION.to_owned()),
            &auth_core::metrics::PROVIDER_REQUEST_DURATION_BUCKETS,
        )?
        .install_recorder()?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

/// `GET /metrics`: every metric recorded so far, in Prometheus' text format.
fn prometheus_text(handle: &PrometheusHandle) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle.render()).into_response()
}

#[tokio::main]
async fn main() {
    init_tracing();
    let args = Args::from_env_with_metrics("axum-basic");
    if let Err(error) = run(args).await {
        eprintln!("axum-basic: {error}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let config = AuthConfig::from_file(&args.config)?;
    // Where this app is, for telling its own forms from other sites'.
    let origin: Arc<str> = config.app_origin().into();
    // Before the layer: it binds its per-request counters to the recorder installed now.
    let metrics = if args.metrics { Some(install_prometheus()?) } else { None };
    let auth = AuthLayer::from_config(config)?;
    let admin_group = auth_examples::admin_group()?;
    let guarded = Router::new()
        .route("/admin", get(admin))
        .route_layer(RequireLayer::new(Policy::group(admin_group)))
        .merge(Router::new().route("/sensitive", get(sensitive)).route_layer(RequireLayer::new(Policy::max_age(300))));
    let mut app = Router::new()
        .route("/", get(home))
        .route("/me", get(me))
        .route("/private", get(private))
        .route("/sessions", get(sessions))
        .route("/sessions/end-others", post(end_other_sessions))
        .merge(guarded)
        .with_state(origin)
        .layer(auth);
    if let Some(handle) = metrics {
        // Added after the layer, so scrapes do not pass through it.
        app = app.route("/metrics", get(move || std::future::ready(prometheus_text(&handle))));
    }
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?;
    Ok(())
}
