//! The layer's own responses: one small HTML page template and redirects.
//!
//! Every page the layer serves (provider chooser, expired login, unavailable provider,
//! refused or confirmed logout) goes through one template ([`page`] for links,
//! [`form_page`] for a button), so escaping and headers are decided in one place.

use bytes::Bytes;
use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use std::fmt::Write;

/// A response of the layer itself.
pub(crate) type Page = Response<Full<Bytes>>;

/// A link on a page: where it goes, and its text.
pub(crate) struct Link<'a> {
    pub(crate) href: &'a str,
    pub(crate) text: &'a str,
}

/// An HTML page: `title` as heading, `message` as paragraph, then `links` as a list.
/// Everything is HTML-escaped; the page is never cached and loads nothing.
pub(crate) fn page(status: StatusCode, title: &str, message: &str, links: &[Link<'_>]) -> Page {
    document(status, title, message, |html| {
        if links.is_empty() {
            return;
        }
        html.push_str("<ul>\n");
        for link in links {
            html.push_str("<li><a href=\"");
            escape_into(html, link.href);
            html.push_str("\">");
            escape_into(html, link.text);
            html.push_str("</a></li>\n");
        }
        html.push_str("</ul>\n");
    })
}

/// An HTML page as [`page`], whose one button POSTs an empty form to `action`: for an
/// action a plain link must not trigger (a `GET` any site can make a browser send), since
/// browsers send `Origin` with a `POST`.
pub(crate) fn form_page(status: StatusCode, title: &str, message: &str, action: &str, button: &str) -> Page {
    document(status, title, message, |html| {
        html.push_str("<form method=\"post\" action=\"");
        escape_into(html, action);
        html.push_str("\">\n<button type=\"submit\">");
        escape_into(html, button);
        html.push_str("</button>\n</form>\n");
    })
}

/// A page that POSTs `fields` (as hidden inputs) to `action` of this origin as soon as it
/// loads, by one script allowed by a fresh nonce, or by a button without JavaScript. Its
/// CSP lets it post only to this origin (`form-action 'self'`); it sends no `Referer`.
pub(crate) fn repost_page(action: &str, fields: &[(&str, &str)]) -> Page {
    let nonce = auth_core::random_token();
    let mut response = document(StatusCode::OK, "Signing in", "Completing the sign-in on this site.", |html| {
        html.push_str("<form method=\"post\" action=\"");
        escape_into(html, action);
        html.push_str("\">\n");
        for (name, value) in fields {
            html.push_str("<input type=\"hidden\" name=\"");
            escape_into(html, name);
            html.push_str("\" value=\"");
            escape_into(html, value);
            html.push_str("\">\n");
        }
        html.push_str("<noscript><button type=\"submit\">Continue</button></noscript>\n</form>\n<script nonce=\"");
        html.push_str(&nonce);
        html.push_str("\">document.forms[0].submit();</script>\n");
    });
    let csp = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    let headers = response.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        headers.insert(CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// The template of [`page`] and [`form_page`]: `title`, `message`, then what `rest` writes
/// (escaped by it). The CSP loads nothing and forbids framing (no clickjacking of a
/// button); it does not restrict `form-action`, since a sign-out form's answer redirects to
/// the identity provider, which browsers check against `form-action` too.
fn document(status: StatusCode, title: &str, message: &str, rest: impl FnOnce(&mut String)) -> Page {
    let mut html = String::with_capacity(900);
    html.push_str(concat!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>"
    ));
    escape_into(&mut html, title);
    html.push_str(concat!(
        "</title>\n<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;",
        "padding:0 1rem;line-height:1.5}li{margin:.5rem 0}</style>\n</head>\n<body>\n<main>\n<h1>"
    ));
    escape_into(&mut html, title);
    html.push_str("</h1>\n<p>");
    escape_into(&mut html, message);
    html.push_str("</p>\n");
    rest(&mut html);
    html.push_str("</main>\n</body>\n</html>\n");

    let mut response = Response::new(Full::new(Bytes::from(html)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
    );
    response
}

/// A redirect to `location` (never cached). A location that is not a valid header value
/// (only a provider bug can produce one) becomes a 502 page.
pub(crate) fn redirect(status: StatusCode, location: &str) -> Page {
    let Ok(value) = HeaderValue::from_str(location) else {
        tracing::error!("redirect location is not a valid header value");
        return page(
            StatusCode::BAD_GATEWAY,
            "Sign-in failed",
            "The sign-in service returned an address this app cannot follow.",
            &[],
        );
    };
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response.headers_mut().insert(LOCATION, value);
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A JSON answer for machines (the back-channel logout route), never cached.
pub(crate) fn json(status: StatusCode, body: &serde_json::Value) -> Page {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A gRPC answer without a message (trailers-only: the status in the headers), for a
/// request whose `content-type` is `application/grpc`: HTTP 200 with `grpc-status` and a
/// percent-encoded `grpc-message`, as gRPC clients expect instead of an HTTP error.
pub(crate) fn grpc(code: u8, message: &str) -> Page {
    let mut response = Response::new(Full::new(Bytes::new()));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert("grpc-status", HeaderValue::from(u16::from(code)));
    let encoded = percent_encoding::utf8_percent_encode(message, GRPC_MESSAGE).to_string();
    if let Ok(value) = HeaderValue::from_str(&encoded) {
        headers.insert("grpc-message", value);
    }
    response
}

/// What `grpc-message` percent-encodes: everything but printable ASCII other than `%`.
const GRPC_MESSAGE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b'%');

/// Appends `text` to `out` with `& < > " '` escaped, safe in element text and in
/// double-quoted attributes.
pub(crate) fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => {
                let _ = out.write_char(c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn text(page: Page) -> String {
        let bytes = page.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
        String::from_utf8(bytes.to_vec()).unwrap_or_default()
    }

    #[tokio::test]
    async fn page_escapes_everything() {
        let link = Link { href: "/auth/login?provider=a&return_to=%2F\"><script>", text: "<b>Go</b>" };
        let page = page(StatusCode::BAD_REQUEST, "<T>", "it's \"bad\" & <script>", &[link]);
        assert_eq!(page.status(), StatusCode::BAD_REQUEST);
        assert_eq!(page.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(page.headers()[CACHE_CONTROL], "no-store");
        let html = text(page).await;
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(html.contains("<h1>&lt;T&gt;</h1>"));
        assert!(html.contains("it&#39;s &quot;bad&quot; &amp; &lt;script&gt;"));
        assert!(html.contains("href=\"/auth/login?provider=a&amp;return_to=%2F&quot;&gt;&lt;script&gt;\""));
    }

    #[tokio::test]
    async fn form_page_posts_to_its_escaped_action() {
        let page = form_page(StatusCode::OK, "Sign out?", "Sure?", "/auth/logout?a=1&b=\"><x>", "<Sign out>");
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(page.headers()[CACHE_CONTROL], "no-store");
        assert!(
            page.headers()[CONTENT_SECURITY_POLICY].to_str().is_ok_and(|csp| csp.contains("frame-ancestors 'none'"))
        );
        let html = text(page).await;
        assert!(
            html.contains("<form method=\"post\" action=\"/auth/logout?a=1&amp;b=&quot;&gt;&lt;x&gt;\">"),
            "{html}"
        );
        assert!(html.contains("<button type=\"submit\">&lt;Sign out&gt;</button>"), "{html}");
        assert!(!html.contains("<x>") && !html.contains("<ul>"), "{html}");
    }

    #[tokio::test]
    async fn repost_page_posts_its_escaped_fields_with_a_nonce() {
        let page = repost_page("/cb?x=\"1", &[("state", "a\"><script>"), ("auth_bounced", "1")]);
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(page.headers()[CACHE_CONTROL], "no-store");
        assert_eq!(page.headers()[REFERRER_POLICY], "no-referrer");
        let csp = page.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap_or_default().to_owned();
        assert!(csp.contains("form-action 'self'") && csp.contains("default-src 'none'"), "{csp}");
        let nonce = csp.split("'nonce-").nth(1).and_then(|n| n.split('\'').next()).unwrap_or_default().to_owned();
        assert!(nonce.len() >= 32, "{csp}");
        let html = text(page).await;
        assert!(html.contains("<form method=\"post\" action=\"/cb?x=&quot;1\">"), "{html}");
        assert!(html.contains("name=\"state\" value=\"a&quot;&gt;&lt;script&gt;\""), "{html}");
        assert!(html.contains(&format!("<script nonce=\"{nonce}\">")), "{html}");
        assert!(html.contains("<noscript><button type=\"submit\">"), "{html}");
        assert_eq!(html.matches("<script").count(), 1, "{html}");
    }

    #[test]
    fn redirect_sets_location_and_refuses_bad_values() {
        let ok = redirect(StatusCode::FOUND, "https://idp.test/authorize?x=1");
        assert_eq!(ok.status(), StatusCode::FOUND);
        assert_eq!(ok.headers()[LOCATION], "https://idp.test/authorize?x=1");
        assert_eq!(ok.headers()[CACHE_CONTROL], "no-store");
        assert_eq!(redirect(StatusCode::FOUND, "https://x\r\nSet-Cookie: a=b").status(), StatusCode::BAD_GATEWAY);
    }
}
