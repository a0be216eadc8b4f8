//! `tonic-basic` as a process, driven by the generated gRPC client: the auth layer in front
//! of a tonic server, with bearer access tokens signed by an in-process `MockIdp` (the
//! provider's `bearer_audience` is `api://whoami`).
//!
//! - `Get` without a token answers `is_logged_in = false`; with alice's token, her identity;
//! - `Admin` (group `admins`) is `UNAUTHENTICATED` without a token, `PERMISSION_DENIED` for
//!   bob (group `staff`), and alice's identity for alice;
//! - a bearer token that does not verify is refused by the layer itself, in gRPC's own
//!   form (HTTP 200, `grpc-status: 16`, `content-type: application/grpc`), before any
//!   handler runs.
//!
//! Each scenario starts its own provider and server; the server is killed by its pid when
//! its guard drops.

mod support;

use std::time::Duration;

use auth_examples::whoami::who_am_i_client::WhoAmIClient;
use auth_examples::whoami::{GetRequest, Identity};
use auth_testkit::{MockIdp, MockUser};
use bytes::Bytes;
use http_body_util::Full;
use serde_json::json;
use support::{Proc, SUITE, TempDir, example_command, free_port, mock_idp_config};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tower::ServiceExt;

/// The audience the app accepts in bearer tokens, and the tokens are minted for.
const AUDIENCE: &str = "api://whoami";
/// Any one call; a hung server fails the scenario instead of stalling it.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// The scenarios
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_without_a_token_is_anonymous() {
    let app = App::start("get-anonymous").await;
    let identity = app.call(Rpc::Get, None).await.unwrap_or_else(|status| app.fail("Get without a token", &status));
    app.check_eq(identity, Identity::default(), "Get without a token: is_logged_in false, nothing else");
    app.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_without_a_token_is_unauthenticated() {
    let app = App::start("admin-anonymous").await;
    let answer = app.call(Rpc::Admin, None).await;
    app.check_code(&answer, Code::Unauthenticated, "Admin without a token");
    app.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_with_a_token_outside_the_group_is_permission_denied() {
    let app = App::start("admin-bob").await;
    let token = app.idp.access_token_for("bob", AUDIENCE, "openid");
    let answer = app.call(Rpc::Admin, Some(&format!("Bearer {token}"))).await;
    app.check_code(&answer, Code::PermissionDenied, "Admin with bob's token (group staff)");
    if let Err(status) = &answer {
        app.check(status.message().contains("admins"), "the refusal names the group it needs", status);
    }
    app.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_with_a_token_in_the_group_is_allowed() {
    let app = App::start("admin-alice").await;
    let token = app.idp.access_token_for("alice", AUDIENCE, "openid");
    let identity = app
        .call(Rpc::Admin, Some(&format!("Bearer {token}")))
        .await
        .unwrap_or_else(|status| app.fail("Admin with alice's token", &status));
    app.check_eq(identity, alice(), "Admin with alice's token answers her identity");
    app.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_with_a_token_is_signed_in() {
    let app = App::start("get-alice").await;
    let token = app.idp.access_token_for("alice", AUDIENCE, "openid");
    let identity = app
        .call(Rpc::Get, Some(&format!("Bearer {token}")))
        .await
        .unwrap_or_else(|status| app.fail("Get with alice's token", &status));
    app.check_eq(identity, alice(), "Get with alice's token answers her identity");
    app.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_does_not_verify_is_refused_by_the_layer() {
    let app = App::start("garbage-token").await;
    let garbage = "Bearer not.a.jwt";

    let answer = app.call(Rpc::Admin, Some(garbage)).await;
    app.check_code(&answer, Code::Unauthenticated, "Admin with a garbage bearer token");
    // `Get` answers anyone: UNAUTHENTICATED there can only come from the layer.
    let answer = app.call(Rpc::Get, Some(garbage)).await;
    app.check_code(&answer, Code::Unauthenticated, "Get with a garbage bearer token (refused before the handler)");

    // The refusal in gRPC's own form, seen on the wire: not an HTTP 401 that the client
    // maps to UNAUTHENTICATED ("grpc-status header missing, mapped from HTTP status code").
    let (status, headers) = app.raw_call("/whoami.v1.WhoAmI/Get", garbage).await;
    app.check_eq(status, http::StatusCode::OK, "the refusal's HTTP status");
    app.check_eq(headers.get("grpc-status").and_then(|v| v.to_str().ok()), Some("16"), "the refusal's grpc-status");
    app.check(
        headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/grpc")),
        "the refusal's content-type is application/grpc",
        &headers,
    );
    app.finish();
}

// ---------------------------------------------------------------------------------------
// The provider and the server
// ---------------------------------------------------------------------------------------

/// What alice's token makes of her in `Identity`.
fn alice() -> Identity {
    Identity {
        is_logged_in: true,
        sub: "alice".into(),
        email: "alice@example.test".into(),
        groups: vec!["admins".into()],
    }
}

#[derive(Clone, Copy, Debug)]
enum Rpc {
    Get,
    Admin,
}

/// `tonic-basic` logging in at its own `MockIdp`. Fields drop in order: the server, then
/// the provider, then the config's directory.
struct App {
    proc: Proc,
    idp: MockIdp,
    _dir: TempDir,
    /// `http://127.0.0.1:PORT`.
    url: String,
    test: &'static str,
}

impl App {
    async fn start(test: &'static str) -> Self {
        let idp = MockIdp::builder()
            .user(MockUser::new("alice").email("alice@example.test").claim("groups", json!(["admins"])))
            .user(MockUser::new("bob").email("bob@example.test").claim("groups", json!(["staff"])))
            .start()
            .await
            .unwrap_or_else(|e| panic!("[{SUITE}] {test}: cannot start the MockIdp: {e}"));
        let dir = TempDir::new(test);
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let config =
            mock_idp_config(&idp, &url, &format!("tonic-basic-{test}"), &format!("bearer_audience = \"{AUDIENCE}\""));
        let config_path = dir.path.join("auth.toml");
        std::fs::write(&config_path, config).expect("write the config");

        let mut cmd = example_command(env!("CARGO_BIN_EXE_tonic-basic"), &config_path, port);
        cmd.env_remove("ADMIN_GROUP");
        // Blocks until the "listening" line, while the provider answers on this runtime.
        let (proc, _) = tokio::task::block_in_place(|| Proc::spawn("tonic-basic", cmd, "listening on http://"));
        Self { proc, idp, _dir: dir, url, test }
    }

    async fn channel(&self) -> Channel {
        let endpoint = Channel::from_shared(self.url.clone()).unwrap_or_else(|e| self.fail("the server's URL", &e));
        let endpoint = endpoint.timeout(CALL_TIMEOUT);
        let channel = tokio::time::timeout(CALL_TIMEOUT, endpoint.connect()).await;
        match channel {
            Ok(Ok(channel)) => channel,
            Ok(Err(e)) => self.fail("connecting to the server", &e),
            Err(_) => self.fail("connecting to the server", &"timed out"),
        }
    }

    /// Calls `rpc` through the generated client, with `authorization` metadata if given.
    async fn call(&self, rpc: Rpc, authorization: Option<&str>) -> Result<Identity, Status> {
        let mut client = WhoAmIClient::new(self.channel().await);
        let mut request = Request::new(GetRequest {});
        if let Some(value) = authorization {
            let value = value.parse().unwrap_or_else(|e| self.fail("the authorization metadata", &e));
            request.metadata_mut().insert("authorization", value);
        }
        let answer = match rpc {
            Rpc::Get => client.get(request).await,
            Rpc::Admin => client.admin(request).await,
        };
        answer.map(tonic::Response::into_inner)
    }

    /// POSTs an empty `GetRequest` to `path` as plain HTTP/2 (no gRPC client in the way) and
    /// returns the response's status and headers.
    async fn raw_call(&self, path: &str, authorization: &str) -> (http::StatusCode, http::HeaderMap) {
        // One message: not compressed (0), length 0.
        let frame = Full::new(Bytes::from_static(&[0, 0, 0, 0, 0]));
        let request = http::Request::post(format!("{}{path}", self.url))
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header(http::header::TE, "trailers")
            .header(http::header::AUTHORIZATION, authorization)
            .body(tonic::body::Body::new(frame))
            .unwrap_or_else(|e| self.fail("building the raw request", &e));
        let response = tokio::time::timeout(CALL_TIMEOUT, self.channel().await.oneshot(request)).await;
        match response {
            Ok(Ok(response)) => (response.status(), response.headers().clone()),
            Ok(Err(e)) => self.fail(&format!("POST {path}"), &e),
            Err(_) => self.fail(&format!("POST {path}"), &"timed out"),
        }
    }

    fn check_code(&self, answer: &Result<Identity, Status>, code: Code, what: &str) {
        match answer {
            Err(status) if status.code() == code => {}
            _ => self.fail(&format!("{what}: expected {code:?}"), answer),
        }
    }

    fn check(&self, ok: bool, what: &str, seen: &dyn std::fmt::Debug) {
        if !ok {
            self.fail(what, seen);
        }
    }

    fn check_eq<T: PartialEq + std::fmt::Debug>(&self, seen: T, expected: T, what: &str) {
        if seen != expected {
            self.fail(&format!("{what}: expected {expected:?}"), &seen);
        }
    }

    /// The scenario's end: the server never panicked.
    fn finish(self) {
        self.check(!self.proc.printed("panicked"), "tonic-basic never panics", &"a panic in its log");
    }

    /// Panics with `what`, what was seen, and the tail of the server's log.
    fn fail(&self, what: &str, seen: &dyn std::fmt::Debug) -> ! {
        let mut msg = format!("\n[{SUITE}] {}: {what}: failed, seen {seen:#?}\n  tonic-basic log (tail):\n", self.test);
        for line in self.proc.tail(25) {
            msg.push_str(&format!("    | {line}\n"));
        }
        panic!("{msg}");
    }
}
