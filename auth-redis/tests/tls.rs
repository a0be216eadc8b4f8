//! `rediss://`: the store talks TLS (rustls) to a redis-server with a certificate made
//! for the test. rustls reads the trusted roots from `SSL_CERT_FILE`, which can only be set
//! for a whole process, so the check runs in a child process of this test binary.

mod support;

use auth_core::SessionStore;
use auth_redis::RedisStore;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use support::{RedisServer, session};

const CHILD: &str = "AUTH_REDIS_TLS_CHILD_URL";

#[test]
fn sessions_over_tls() {
    let dir = std::env::temp_dir().join(format!("auth-redis-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    make_certificate(&dir);
    let tls_port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let paths = ["cert.pem", "key.pem", "ca.pem"].map(|f| dir.join(f).to_string_lossy().into_owned());
    let [cert, key, ca] = paths.each_ref().map(String::as_str);
    let port = tls_port.to_string();
    let redis = RedisServer::start_with(&[
        "--tls-port",
        &port,
        "--tls-cert-file",
        cert,
        "--tls-key-file",
        key,
        "--tls-ca-cert-file",
        ca,
        "--tls-auth-clients",
        "no",
    ])
    .unwrap_or_else(|e| panic!("cannot start redis-server with TLS: {e}"));

    let output = Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", "tls_child", "--nocapture", "--include-ignored"])
        .env(CHILD, format!("rediss://127.0.0.1:{tls_port}/0"))
        .env("SSL_CERT_FILE", ca)
        .output()
        .expect("run the child");
    let _ = std::fs::remove_dir_all(&dir);
    drop(redis);
    let shown = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success() && shown.contains("1 passed"), "{shown}");
}

/// The half that runs in the child process (ignored when run directly).
#[tokio::test]
#[ignore = "run by sessions_over_tls in a child process"]
async fn tls_child() {
    let Ok(url) = std::env::var(CHILD) else { return };
    let store = RedisStore::new(&url).expect("a rediss URL");
    store.ping().await.expect("a TLS connection");
    let s = session("p", "alice", Some("sid-1"), 60);
    let ticket = store.save(&s).await.expect("save");
    assert_eq!(store.load(&ticket).await.expect("load"), Some(s));
}

/// A test CA (`ca.pem`) and a certificate it signed for 127.0.0.1 (`cert.pem`, `key.pem`).
fn make_certificate(dir: &Path) {
    std::fs::write(dir.join("leaf.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")
        .expect("write the extensions");
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    openssl(
        dir,
        &[&["req", "-x509"], &ec[..], &["-days", "2", "-subj", "/CN=auth-redis test CA"]].concat(),
        &["-keyout", "ca.key", "-out", "ca.pem"],
    );
    openssl(
        dir,
        &[&["req"], &ec[..], &["-subj", "/CN=localhost"]].concat(),
        &["-keyout", "key.pem", "-out", "leaf.csr"],
    );
    openssl(
        dir,
        &["x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial"],
        &["-days", "2", "-extfile", "leaf.ext", "-out", "cert.pem"],
    );
}

fn openssl(dir: &Path, args: &[&str], files: &[&str]) {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .args(files)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl ({e}): install it with `apt-get install -y openssl`"));
    assert!(output.status.success(), "openssl {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
}
