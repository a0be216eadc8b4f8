//! The key layout, in one place. Every command the store sends touches exactly one of
//! these keys, so the layout needs no hash tags to work on Redis Cluster.

use std::borrow::Cow;

/// Builds the keys of one store from its prefix.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: String) -> Self {
        Self { prefix }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `{prefix}session:{ticket}`: the session's JSON, expiring with the session.
    pub(crate) fn session(&self, ticket: &str) -> String {
        format!("{}session:{ticket}", self.prefix)
    }

    /// `{prefix}sid:{provider}:{sid}`: the set of tickets of the provider's session `sid`.
    pub(crate) fn sid(&self, provider: &str, sid: &str) -> String {
        format!("{}sid:{}:{}", self.prefix, escape(provider), escape(sid))
    }

    /// `{prefix}sub:{provider}:{subject}`: the set of tickets of one person at a provider.
    pub(crate) fn sub(&self, provider: &str, subject: &str) -> String {
        format!("{}sub:{}:{}", self.prefix, escape(provider), escape(subject))
    }

    /// `{prefix}lock:{key}`: a lock's owner token, expiring with the lock.
    pub(crate) fn lock(&self, key: &str) -> String {
        format!("{}lock:{}", self.prefix, escape(key))
    }
}

/// Percent-encodes `%`, the separator `:` and the hash-tag braces, so that no two
/// (provider, id) pairs share a key and an id never pins a key to a cluster slot.
fn escape(part: &str) -> Cow<'_, str> {
    if !part.contains(['%', ':', '{', '}']) {
        return Cow::Borrowed(part);
    }
    let mut out = String::with_capacity(part.len() + 8);
    for c in part.chars() {
        match c {
            '%' => out.push_str("%25"),
            ':' => out.push_str("%3A"),
            '{' => out.push_str("%7B"),
            '}' => out.push_str("%7D"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let keys = Keys::new("auth:".into());
        assert_eq!(keys.session("abc"), "auth:session:abc");
        assert_eq!(keys.sid("google", "s1"), "auth:sid:google:s1");
        assert_eq!(keys.sub("google", "alice"), "auth:sub:google:alice");
        assert_eq!(keys.lock("refresh:abc"), "auth:lock:refresh%3Aabc");
    }

    #[test]
    fn ids_cannot_collide_or_pick_a_slot() {
        let keys = Keys::new("auth:".into());
        assert_ne!(keys.sid("a:b", "c"), keys.sid("a", "b:c"));
        assert_eq!(keys.sub("p", "{x}%"), "auth:sub:p:%7Bx%7D%25");
    }
}
