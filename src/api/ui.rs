//! `/ui/`: the dashboard page, three files embedded in the binary at build
//! time (`include_bytes!`): no build step, no CDN, and nothing a request
//! names can reach the disk: a path is one of the three names or a 404.
//! Off unless `--ui` (or `UI=1`); the page itself holds no data and asks
//! for an API token, which it sends on every call it makes.

use super::{Answer, error, header};

/// The embedded files: (path, content type, bytes).
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "/ui/",
        "text/html; charset=utf-8",
        include_bytes!("ui/index.html"),
    ),
    (
        "/ui/app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("ui/app.js"),
    ),
    (
        "/ui/style.css",
        "text/css; charset=utf-8",
        include_bytes!("ui/style.css"),
    ),
];

/// Only our own files, scripts and styles run on the page, and it cannot
/// be framed: an injected `<script>` or inline handler does nothing.
const CSP: &str = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The answer for `path` (`/ui` is the page too).
pub(super) fn file(path: &str, enabled: bool) -> Answer {
    if !enabled {
        return error(
            404,
            "the dashboard is off: start the server with --ui (or UI=1)",
        );
    }
    let path = if path == "/ui" { "/ui/" } else { path };
    let Some((_, kind, bytes)) = FILES.iter().find(|(p, _, _)| *p == path) else {
        return error(
            404,
            format!("no such file {path}: the dashboard is at /ui/"),
        );
    };
    tiny_http::Response::from_data(bytes.to_vec())
        .with_header(header("Content-Type", kind))
        .with_header(header("Content-Security-Policy", CSP))
        .with_header(header("X-Content-Type-Options", "nosniff"))
        .with_header(header("Referrer-Policy", "no-referrer"))
        .with_header(header("Cache-Control", "no-cache"))
}

/// Bytes of the page, all files together (the budget is 60 KB).
#[cfg(test)]
pub(super) fn total_bytes() -> usize {
    FILES.iter().map(|(_, _, b)| b.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_stays_within_its_budget() {
        assert!(total_bytes() <= 60 * 1000, "{} bytes", total_bytes());
    }

    // docs/SAFETY.md S35
    #[test]
    fn only_the_embedded_files_are_served() {
        assert_eq!(file("/ui/", true).status_code().0, 200);
        assert_eq!(file("/ui", true).status_code().0, 200);
        for path in [
            "/ui/../Cargo.toml",
            "/ui/app.js/",
            "/ui/x",
            "/ui/%2e%2e/etc/passwd",
        ] {
            assert_eq!(file(path, true).status_code().0, 404, "{path}");
        }
        assert_eq!(file("/ui/", false).status_code().0, 404);
    }
}
