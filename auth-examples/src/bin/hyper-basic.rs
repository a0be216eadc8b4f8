//! The same app as `axum-basic`, on hyper 1 and hyper-util alone (no framework): the auth
//! layer wraps a plain `service_fn`, and the handler reads the [`User`] from the request's
//! extensions.
//!
//! ```text
//! cargo run -p auth-examples --bin hyper-basic -- --config auth.toml --listen 127.0.0.1:3000
//! ```

use std::convert::Infallible;
use std::pin::pin;
use std::time::Duration;

use auth_examples::{Args, home_page, init_tracing, private_page, shutdown_signal};
use auth_tower::{AuthConfig, AuthLayer, AuthRoutes, User};
use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower::ServiceBuilder;

/// How long open connections may take to finish their requests after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The whole app: `/`, `/me` and `/private`. The layer answers `/auth/*` and the callback
/// before this is called, and puts the [`User`] and the [`AuthRoutes`] in the extensions.
async fn app(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let user = request.extensions().get::<User>().cloned().unwrap_or_default();
    let path = request.uri().path();
    if !matches!(path, "/" | "/me" | "/private") {
        return Ok(text(StatusCode::NOT_FOUND, "Not found"));
    }
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed");
        response.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Ok(response);
    }
    Ok(match path {
        "/" => html(home_page("hyper-basic", &user)),
        "/me" => {
            let mut response = Response::new(Full::from(user.to_json().to_string()));
            response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        _ if user.is_logged_in() => html(private_page(&user)),
        _ => login_redirect(&request),
    })
}

/// Sends an anonymous visitor to log in, coming back to the page asked for.
fn login_redirect(request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let return_to = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let login_url = match request.extensions().get::<AuthRoutes>() {
        Some(routes) => routes.login_url(None, return_to),
        None => AuthRoutes::default().login_url(None, return_to),
    };
    let mut response = Response::new(Full::default());
    *response.status_mut() = StatusCode::FOUND;
    if let Ok(location) = HeaderValue::try_from(login_url) {
        response.headers_mut().insert(LOCATION, location);
    }
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn html(page: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::from(page));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response
}

fn text(status: StatusCode, message: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::from(message));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

#[tokio::main]
async fn main() {
    init_tracing();
    let args = Args::from_env("hyper-basic");
    if let Err(error) = run(args).await {
        eprintln!("hyper-basic: {error}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let auth = AuthLayer::from_config(AuthConfig::from_file(&args.config)?)?;
    let service = ServiceBuilder::new().layer(auth).service_fn(app);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("listening on http://{}", listener.local_addr()?);

    let graceful = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown_signal());
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection closed with an error");
            }
        });
    }

    // Stop accepting (the listener is dropped), let open connections finish.
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => tracing::warn!("connections still open after {DRAIN_TIMEOUT:?}, stopping anyway"),
    }
    Ok(())
}
