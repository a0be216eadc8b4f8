//! Where the store connects: one server or a cluster, parsed from one URL, and that URL as
//! `Debug` and error messages may show it (password redacted).

use auth_core::ConfigError;
use redis::cluster::ClusterClient;
use std::time::Duration;

/// The config key the URL comes from, as errors name it.
const KEY: &str = "session_store";

/// A parsed store URL: what to connect to. Building one does no I/O.
#[derive(Clone)]
pub(crate) enum Target {
    /// `redis://`, `rediss://`, `redis+unix://`, `unix://`: one server (or a proxy).
    Single(Box<redis::Client>),
    /// `redis+cluster://` or `rediss+cluster://`: a Redis Cluster, by its seed nodes.
    Cluster(Vec<String>),
}

impl Target {
    /// Parses `url`; see the crate docs for the accepted forms.
    pub(crate) fn parse(url: &str) -> Result<Self, ConfigError> {
        let url = url.trim();
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(invalid(url, "is not a URL"));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "redis" | "rediss" | "redis+unix" | "unix" => {
                let client = redis::Client::open(url).map_err(|e| invalid(url, &format!("is not usable ({e})")))?;
                Ok(Self::Single(Box::new(client)))
            }
            "redis+cluster" | "rediss+cluster" => {
                let node_scheme = if scheme.eq_ignore_ascii_case("rediss+cluster") { "rediss" } else { "redis" };
                Self::parse_cluster(url, node_scheme, rest)
            }
            _ => Err(invalid(url, "has an unknown scheme")),
        }
    }

    /// `user:pass@host1:port1,host2:port2[/0][?query]` into one URL per seed node.
    fn parse_cluster(url: &str, node_scheme: &str, rest: &str) -> Result<Self, ConfigError> {
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        let (authority, path) = match rest.split_once('/') {
            Some((authority, path)) => (authority, path),
            None => (rest, ""),
        };
        if !matches!(path, "" | "0") {
            return Err(invalid(url, "selects a database, which Redis Cluster does not have (only database 0)"));
        }
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => (Some(userinfo), hosts),
            None => (None, authority),
        };
        let mut nodes = Vec::new();
        for host in hosts.split(',').map(str::trim).filter(|h| !h.is_empty()) {
            let mut node = format!("{node_scheme}://");
            if let Some(userinfo) = userinfo {
                node.push_str(userinfo);
                node.push('@');
            }
            node.push_str(host);
            if let Some(query) = query {
                node.push_str("/?");
                node.push_str(query);
            }
            nodes.push(node);
        }
        if nodes.is_empty() {
            return Err(invalid(url, "names no cluster node"));
        }
        // Checks every node URL (and that they share credentials) without connecting.
        ClusterClient::new(nodes.clone()).map_err(|e| invalid(url, &format!("is not usable ({e})")))?;
        Ok(Self::Cluster(nodes))
    }

    /// A cluster client with these timeouts (no I/O).
    pub(crate) fn cluster_client(
        nodes: &[String],
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> redis::RedisResult<ClusterClient> {
        ClusterClient::builder(nodes.iter().map(String::as_str))
            .connection_timeout(connect_timeout)
            .response_timeout(response_timeout)
            .build()
    }

    /// Whether the connection needs TLS.
    pub(crate) fn is_tls(url: &str) -> bool {
        url.trim_start().to_ascii_lowercase().starts_with("rediss")
    }
}

fn invalid(url: &str, problem: &str) -> ConfigError {
    ConfigError::Invalid {
        origin: "auth config".into(),
        key: KEY.into(),
        problem: format!("{:?} {problem}", redact(url)),
        fix: "use redis://[:PASSWORD@]HOST[:PORT][/DB], rediss:// for TLS, or \
              redis+cluster://[:PASSWORD@]HOST1:PORT1,HOST2:PORT2 for Redis Cluster"
            .into(),
    }
}

/// `url` with the password (or a lone user-info part) replaced by `***`, and the values
/// of `pass`/`password` query parameters (`redis+unix:///run/redis.sock?pass=...`) too,
/// for `Debug`, logs and errors. Works on cluster URLs, which `url::Url` cannot parse.
///
/// It errs on the side of hiding: the user info runs to the last `@` (passwords may hold
/// `/`, `?` or `#` unencoded), and a user name is kept only when it is plain.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // Not a URL; it could be anything, a bare password included.
        return "<not a URL>".into();
    };
    let rest = match rest.rsplit_once('@') {
        Some((userinfo, after)) => {
            let user = userinfo
                .split_once(':')
                .map(|(user, _)| user)
                .filter(|user| user.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)));
            match user {
                Some(user) => format!("{user}:***@{after}"),
                None => format!("***@{after}"),
            }
        }
        None => rest.to_owned(),
    };
    let Some((before, query)) = rest.split_once('?') else { return format!("{scheme}://{rest}") };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("pass") || key.eq_ignore_ascii_case("password") => {
                format!("{key}=***")
            }
            _ => pair.to_owned(),
        })
        .collect();
    format!("{scheme}://{before}?{}", query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("redis://:hunter2@host:6379/0"), "redis://:***@host:6379/0");
        assert_eq!(redact("rediss://app:hunter2@host/1"), "rediss://app:***@host/1");
        assert_eq!(redact("redis://hunter2@host"), "redis://***@host");
        assert_eq!(redact("redis://host:6379"), "redis://host:6379");
        assert_eq!(redact("redis+cluster://:p@ss@a:1,b:2"), "redis+cluster://:***@a:1,b:2");
        assert_eq!(redact("hunter2"), "<not a URL>");
        // Passwords holding `#`, `?` or `/` unencoded, and passwords in the query.
        for (url, shown) in [
            ("redis://:hun#ter2@host:6379/0", "redis://:***@host:6379/0"),
            ("redis://:hun?ter2@host", "redis://:***@host"),
            ("redis://app:hun/ter2@host/1", "redis://app:***@host/1"),
            ("redis://a/b:hunter2@host", "redis://***@host"),
            ("redis+unix:///run/redis.sock?db=1&pass=hunter2", "redis+unix:///run/redis.sock?db=1&pass=***"),
            ("unix:///tmp/r.sock?password=hunter2", "unix:///tmp/r.sock?password=***"),
        ] {
            assert_eq!(redact(url), shown, "{url}");
            assert!(!redact(url).contains("hunter2") && !redact(url).contains("ter2"), "{url}");
        }
    }

    #[test]
    fn parses_the_documented_forms() {
        assert!(matches!(Target::parse("redis://127.0.0.1:6379/2"), Ok(Target::Single(_))));
        assert!(matches!(Target::parse("redis://:pw@localhost"), Ok(Target::Single(_))));
        assert!(matches!(Target::parse("rediss://example.test:6380"), Ok(Target::Single(_))));
        let Ok(Target::Cluster(nodes)) = Target::parse("redis+cluster://:pw@10.0.0.1:7000, 10.0.0.2:7001/") else {
            panic!("a cluster URL")
        };
        assert_eq!(nodes, ["redis://:pw@10.0.0.1:7000", "redis://:pw@10.0.0.2:7001"]);
        let Ok(Target::Cluster(nodes)) = Target::parse("rediss+cluster://a:7000?protocol=resp3") else {
            panic!("a TLS cluster URL")
        };
        assert_eq!(nodes, ["rediss://a:7000/?protocol=resp3"]);
    }

    #[test]
    fn rejects_unusable_urls_with_a_fix_and_no_password() {
        for url in
            ["http://:secretpw@host", "secretpw", "redis+cluster://:secretpw@", "redis+cluster://:secretpw@a:1/3"]
        {
            let message = Target::parse(url).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(message.contains("session_store"), "{message}");
            assert!(message.contains("Fix: use redis://"), "{message}");
            assert!(!message.contains("secretpw"), "{message}");
        }
    }
}
