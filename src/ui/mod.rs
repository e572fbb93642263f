//! The inbox page: one HTML page, its script and its style sheet, compiled into the binary and served on every
//! runtime. The page reads everything through the public JSON API, as any client would, so it needs no route
//! of its own that reads data, and nothing is loaded from another host.
//!
//! The assets are named by a digest of their content (`ui/inbox.js?v=…`), so they can be cached for good and
//! a new build's page never runs an old script; the page itself is revalidated on every load.

use std::sync::LazyLock;

use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use sha2::{Digest, Sha256};

use crate::routes::Route;

const PAGE: &str = include_str!("inbox.html");
const SCRIPT: &str = include_str!("inbox.js");
const STYLE: &str = include_str!("inbox.css");

/// Only this host's own script, style and API; no inline code, no frames, no forms posted anywhere. Text of
/// messages is only ever put in the page as text, and this is the second line of defence if that ever failed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page with its assets' digests filled in.
static PAGE_WITH_DIGESTS: LazyLock<String> =
    LazyLock::new(|| PAGE.replace("{script_digest}", &digest(SCRIPT)).replace("{style_digest}", &digest(STYLE)));

/// The first 16 hex digits of the SHA-256 of `asset`.
fn digest(asset: &str) -> String {
    hex::encode(&Sha256::digest(asset.as_bytes())[..8])
}

/// The answer to one of the page's routes.
pub fn serve(route: Route) -> Response<Body> {
    let (body, content_type, cache): (&str, &str, &str) = match route {
        Route::InboxScript => (SCRIPT, "text/javascript; charset=utf-8", "public, max-age=31536000, immutable"),
        Route::InboxStyle => (STYLE, "text/css; charset=utf-8", "public, max-age=31536000, immutable"),
        _ => (&PAGE_WITH_DIGESTS, "text/html; charset=utf-8", "no-cache"),
    };
    let mut response = Response::new(Body::Text(body.to_owned()));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_its_assets_by_their_digests_and_loads_nothing_else() {
        let page = &*PAGE_WITH_DIGESTS;
        assert!(page.contains(&format!("ui/inbox.js?v={}", digest(SCRIPT))), "{page}");
        assert!(page.contains(&format!("ui/inbox.css?v={}", digest(STYLE))), "{page}");
        assert!(!page.contains('{'), "every placeholder filled, and no inline script or style");
        for asset in [page.as_str(), SCRIPT, STYLE] {
            // The one URL is SVG's namespace, a name rather than a place.
            let elsewhere = asset.replace("http://www.w3.org/2000/svg", "");
            assert!(!elsewhere.contains("http://") && !elsewhere.contains("https://"), "nothing from another host");
            assert!(!asset.contains("innerHTML") && !asset.contains("insertAdjacentHTML"), "text is set as text");
        }
    }
}
