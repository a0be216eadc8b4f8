//! [`Site`]: where a request comes from, for refusing cross-site requests that change
//! something (the logout route, an app's "sign out other devices" form).

use http::HeaderMap;
use http::header::ORIGIN;

/// Where a request comes from, as far as its headers say: [`Site::of`].
///
/// The layer refuses a logout whose site is [`Cross`](Self::Cross); an app's own form that
/// changes something (such as ending a person's other sessions) should do the same:
///
/// ```
/// use auth_tower::Site;
///
/// let mut headers = http::HeaderMap::new();
/// headers.insert("origin", "https://evil.test".parse().unwrap());
/// assert_eq!(Site::of(&headers, "https://app.test"), Site::Cross);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Site {
    /// This origin, or typed by the person (`Sec-Fetch-Site: none`).
    Same,
    /// Another origin, a sibling site, or an opaque one (`Origin: null`).
    Cross,
    /// Neither `Sec-Fetch-Site` nor `Origin`: a client that is not a browser, or an old
    /// browser's `GET` from anywhere. A `POST` without both comes from no other site
    /// (browsers send `Origin` with a cross-site `POST`); a `GET` without both may.
    Unknown,
}

impl Site {
    /// Where the request with `headers` comes from, for an app at `app_origin` (scheme,
    /// host and port, as [`AuthConfig::app_origin`](auth_core::AuthConfig::app_origin)
    /// gives it). Browsers send `Sec-Fetch-Site` (trusted when present), else at least
    /// `Origin` on cross-site `POST`s.
    pub fn of(headers: &HeaderMap, app_origin: &str) -> Self {
        let same = |yes: bool| if yes { Self::Same } else { Self::Cross };
        if let Some(site) = headers.get("sec-fetch-site") {
            let site = site.as_bytes();
            return same(site.eq_ignore_ascii_case(b"same-origin") || site.eq_ignore_ascii_case(b"none"));
        }
        if let Some(origin) = headers.get(ORIGIN) {
            return same(origin.to_str().is_ok_and(|origin| normalize_origin(origin) == normalize_origin(app_origin)));
        }
        Self::Unknown
    }
}

/// Lower case, without the default port (`https://app.test:443` is `https://app.test`).
fn normalize_origin(origin: &str) -> String {
    let lower = origin.trim_end_matches('/').to_ascii_lowercase();
    for (scheme, port) in [("https://", ":443"), ("http://", ":80")] {
        if lower.starts_with(scheme) && lower.ends_with(port) {
            return lower[..lower.len() - port.len()].to_owned();
        }
    }
    lower
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn cross_site_requests_are_told_apart() {
        let app = "http://localhost:3000";
        let same = [
            headers(&[("sec-fetch-site", "same-origin")]),
            headers(&[("sec-fetch-site", "none")]),
            headers(&[("origin", "http://localhost:3000")]),
            headers(&[("origin", "HTTP://LOCALHOST:3000")]),
            headers(&[("sec-fetch-site", "same-origin"), ("origin", "http://localhost:3000")]),
        ];
        for h in &same {
            assert_eq!(Site::of(h, app), Site::Same, "{h:?}");
        }
        let cross = [
            headers(&[("sec-fetch-site", "cross-site")]),
            headers(&[("sec-fetch-site", "same-site")]),
            headers(&[("sec-fetch-site", "cross-site"), ("origin", "http://localhost:3000")]),
            headers(&[("origin", "https://evil.test")]),
            headers(&[("origin", "null")]),
            headers(&[("origin", "http://localhost:3001")]),
        ];
        for h in &cross {
            assert_eq!(Site::of(h, app), Site::Cross, "{h:?}");
        }
        // Neither header: not accepted as same-site (a logout `GET` gets the confirmation page).
        assert_eq!(Site::of(&headers(&[]), app), Site::Unknown);
        assert_eq!(Site::of(&headers(&[("origin", "https://app.test")]), "https://app.test:443"), Site::Same);
    }
}
