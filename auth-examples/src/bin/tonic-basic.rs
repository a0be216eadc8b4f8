//! The auth layer in front of a gRPC server: tonic serves `whoami.v1.WhoAmI`
//! (`proto/whoami.proto`) behind the same `AuthLayer` as the web examples, and the handlers
//! read the [`User`] the layer put in the request's extensions.
//!
//! gRPC callers are programs, not browsers: they send `authorization: Bearer <JWT>`
//! metadata, verified by the layer when the provider's section of the config has
//! `bearer_audience`; a token that does not verify is refused by the layer itself with
//! `UNAUTHENTICATED`. `Get` answers anyone (anonymous callers get `is_logged_in = false`);
//! `Admin` shows how a [`Policy`]'s [`Decision`] becomes a gRPC status: no or too weak a
//! login is `UNAUTHENTICATED` (16), a signed-in caller without the group is
//! `PERMISSION_DENIED` (7).
//!
//! The layer's login routes are served too, but tonic speaks HTTP/2 only (no HTTP/1.1),
//! which browsers do not use without TLS: this server is for callers with bearer tokens.
//!
//! ```text
//! ADMIN_GROUP=admins cargo run -p auth-examples --bin tonic-basic -- --config auth.toml --listen 127.0.0.1:50051
//! ```

use auth_examples::whoami::who_am_i_server::{WhoAmI, WhoAmIServer};
use auth_examples::whoami::{GetRequest, Identity};
use auth_examples::{Args, admin_group, init_tracing, shutdown_signal};
use auth_tower::{AuthConfig, AuthLayer, Decision, Policy, User};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

/// The `WhoAmI` service: `Get` for anyone, `Admin` behind `admin`.
#[derive(Debug)]
struct WhoAmIService {
    admin: Policy,
}

#[tonic::async_trait]
impl WhoAmI for WhoAmIService {
    async fn get(&self, request: Request<GetRequest>) -> Result<Response<Identity>, Status> {
        Ok(Response::new(identity(&user_of(&request))))
    }

    async fn admin(&self, request: Request<GetRequest>) -> Result<Response<Identity>, Status> {
        let user = user_of(&request);
        match self.admin.evaluate(&user) {
            Decision::Allow => Ok(Response::new(identity(&user))),
            Decision::LoginRequired => Err(Status::unauthenticated("this call needs a login: send a bearer token")),
            Decision::StepUp(_) => Err(Status::unauthenticated("this call needs a more recent or stronger login")),
            Decision::Forbidden(forbidden) => {
                let mut message = format!("this call needs {}", forbidden.needs);
                if let Some(reason) = forbidden.reason {
                    message.push_str(&format!(" ({reason})"));
                }
                Err(Status::permission_denied(message))
            }
            // A kind of decision this example does not know yet: refuse rather than allow.
            _ => Err(Status::permission_denied("not allowed")),
        }
    }
}

/// The caller: the layer puts a [`User`] in every request's extensions (tonic keeps the
/// HTTP request's extensions); anonymous if the service runs without the layer.
fn user_of<T>(request: &Request<T>) -> User {
    request.extensions().get::<User>().cloned().unwrap_or_default()
}

/// The `Identity` message of `user`: `groups` is the `groups` claim's strings, if any.
fn identity(user: &User) -> Identity {
    let groups = user
        .get("groups")
        .and_then(|groups| groups.as_array())
        .map_or_else(Vec::new, |groups| groups.iter().filter_map(|group| group.as_str().map(str::to_owned)).collect());
    Identity {
        is_logged_in: user.is_logged_in(),
        sub: user.sub().unwrap_or_default().to_owned(),
        email: user.email().unwrap_or_default().to_owned(),
        groups,
    }
}

#[tokio::main]
async fn main() {
    init_tracing();
    let args = Args::from_env("tonic-basic");
    if let Err(error) = run(args).await {
        eprintln!("tonic-basic: {error}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let auth = AuthLayer::from_config(AuthConfig::from_file(&args.config)?)?;
    let whoami = WhoAmIService { admin: Policy::group(admin_group()?) };
    // Bound here rather than by `serve_with_shutdown`, to print the address (port 0 included).
    let incoming = TcpIncoming::bind(args.listen)?.with_nodelay(Some(true));
    println!("listening on http://{}", incoming.local_addr()?);
    Server::builder()
        .layer(auth)
        .add_service(WhoAmIServer::new(whoami))
        .serve_with_incoming_shutdown(incoming, shutdown_signal())
        .await?;
    Ok(())
}
