//! Benchmarks of the auth layer, run with `cargo xtask bench` (see the README's
//! "Performance" section for the latest table).
//!
//! - [`variants`]: the servers under test, one per variant of the issue: bare axum,
//!   `AuthLayer` anonymous, logged in with the cookie store, with exposed tokens in a
//!   chunked cookie, with `RedisStore`, axum-login + tower-sessions ([`peer`]), and an API
//!   client repeating a bearer JWT that `MockIdp` issued; and many distinct users at
//!   once, cookie store and Redis, beside the bare server carrying the same cookies. Each
//!   runs in its own process (`bench-server`), so peak RSS is per variant.
//! - [`many`]: the many users' sessions (`--sessions`, 100,000 by default), sealed or saved
//!   in Redis once per run by `bench-run`.
//! - [`load`]: the load generator (keep-alive connections sending the credentials of a
//!   variant's clients in turn, warm-up, fixed window, HDR latency histogram), run by `bench-run`, which interleaves the variants in rounds and
//!   writes the [`report`].
//! - [`login`]: complete logins per second against `MockIdp`, with its fetch counters.
//! - [`revocation`]: how soon a logout on one instance stops another instance's local
//!   copy of the session (`RedisStore`), in milliseconds.
//! - [`hotpath`]: the layer driven in process without sockets, for instruction counts
//!   under callgrind (`bench-hotpath`).
//! - [`soak`]: not a speed measure but an endurance one (`cargo xtask soak`): the
//!   `axum-basic` example as a process, with the cookie store and with Redis, under mixed
//!   traffic while the identity provider and Redis go down and come back; it counts
//!   errors, lost and wrongly kept sessions, and the app's memory (`soak`).
//! - [`redis_server`]: the throwaway `redis-server` of the Redis variants and of the soak.
//! - `benches/micro.rs`: Criterion micro-benchmarks of the pieces.
//!
//! Sessions are made with the library's own store API from [`fixtures`] that look like a
//! typical Google login.

pub mod cpu;
pub mod fixtures;
pub mod hotpath;
pub mod load;
pub mod login;
pub mod many;
pub mod peer;
pub mod redis_server;
pub mod report;
pub mod revocation;
pub mod soak;
pub mod variants;

pub use variants::Variant;
