//! The live view (docs/HTTP.md, "The live view"): one HTML page, its script and its
//! style sheet, compiled into the binary with `include_str!` so the page works with no
//! internet and no build step. It reads only the public resources (`/api/v1/sources`,
//! `/api/v1/packets`, `/api/v1/envelope`), so what it shows is what any client can get.
//!
//! The assets live under `/ui/`, which `web_root` cannot shadow. `/` answers the
//! web root's `index.html` when there is one (an operator's own page wins) and the live
//! view otherwise.

use http::header::{HeaderValue, CACHE_CONTROL};
use http::{Response, StatusCode};

use super::{respond, HttpBody};

/// The prefix under which the built-in assets are served.
pub const PREFIX: &str = "/ui/";

/// The page.
const INDEX_HTML: &str = include_str!("ui/index.html");
/// The page's script: pollers, health, trace and helicorder drawing.
const LIVE_JS: &str = include_str!("ui/live.js");
/// The page's style sheet.
const LIVE_CSS: &str = include_str!("ui/live.css");

/// Whether `path` is under the built-in assets' prefix (answered here, never by
/// `web_root`).
pub(super) fn serves(path: &str) -> bool {
    path == "/ui" || path.starts_with(PREFIX)
}

/// The asset at `path`, or `None` for a path under `/ui/` that names none.
pub(super) fn serve(path: &str) -> Option<Response<HttpBody>> {
    let (ctype, body) = match path {
        "/ui" | "/ui/" | "/ui/index.html" => ("text/html; charset=utf-8", INDEX_HTML),
        "/ui/live.js" => ("text/javascript; charset=utf-8", LIVE_JS),
        "/ui/live.css" => ("text/css; charset=utf-8", LIVE_CSS),
        _ => return None,
    };
    let mut r = respond(StatusCode::OK, ctype, body);
    // A new binary may bring a new page: let browsers revalidate instead of keeping
    // a stale script beside a changed server.
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_assets_are_embedded_and_reference_each_other() {
        for p in [
            "/ui",
            "/ui/",
            "/ui/index.html",
            "/ui/live.js",
            "/ui/live.css",
        ] {
            assert!(serves(p), "{p}");
            let r = serve(p).unwrap_or_else(|| panic!("{p}"));
            assert_eq!(r.status(), StatusCode::OK);
        }
        assert!(serve("/ui/missing.js").is_none());
        assert!(serves("/ui/missing.js") && !serves("/uix") && !serves("/"));
        // The page loads its script and style by absolute path, so it works at `/` and
        // at `/ui/` alike, and nothing from another origin.
        assert!(INDEX_HTML.contains("src=\"/ui/live.js\""));
        assert!(INDEX_HTML.contains("href=\"/ui/live.css\""));
        for asset in [INDEX_HTML, LIVE_JS, LIVE_CSS] {
            assert!(!asset.contains("http://") && !asset.contains("https://"));
        }
    }
}
