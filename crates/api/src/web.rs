//! The members' web app: static files compiled into the binary (no build step, no npm to run a
//! node). Everything the app does goes through the public JSON API; keys never leave the browser.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The app's files: name, content type, bytes. Every file in `web/` but `index.html` is here (a
/// test checks); `app.js` boots the app and routes to the `page-*.js` modules.
const FILES: &[(&str, &str, &str)] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../web/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app.js"),
    ),
    (
        "ui.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/ui.js"),
    ),
    (
        "codec.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/codec.js"),
    ),
    (
        "qmdb.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/qmdb.js"),
    ),
    (
        "wallet.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/wallet.js"),
    ),
    (
        "widgets.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/widgets.js"),
    ),
    (
        "rules.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/rules.js"),
    ),
    (
        "page-societies.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/page-societies.js"),
    ),
    (
        "page-create.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/page-create.js"),
    ),
    (
        "page-society.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/page-society.js"),
    ),
    (
        "society-membership.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/society-membership.js"),
    ),
    (
        "society-requests.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/society-requests.js"),
    ),
    (
        "society-amendments.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/society-amendments.js"),
    ),
    (
        "page-wallet.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/page-wallet.js"),
    ),
    (
        "page-explorer.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/page-explorer.js"),
    ),
    (
        "page-verify.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/page-verify.js"),
    ),
    (
        "light.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/light.js"),
    ),
    (
        "records.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/records.js"),
    ),
    (
        "trust.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/trust.js"),
    ),
    (
        "charts.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/charts.js"),
    ),
    (
        "preview.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/preview.js"),
    ),
    ("icon.svg", "image/svg+xml", include_str!("../web/icon.svg")),
];

const INDEX: &str = include_str!("../web/index.html");

/// Only our own scripts and styles run. The page talks to this node or to another node the
/// member chose (`connect-src` allows any http(s) origin; nothing else is loaded from one).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
                   connect-src 'self' http: https:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

fn page(content_type: &'static str, body: &'static str) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// `GET /`: the app's single page (routes are `#/…` fragments).
/// The members' web app.
#[utoipa::path(get, path = "/", tag = "node",
    responses((status = 200, content_type = "text/html", body = String, description = "the page")))]
pub async fn index() -> Response {
    page("text/html; charset=utf-8", INDEX)
}

/// `GET /app/{file}`: one of the app's scripts, its stylesheet or its icon.
/// One of the web app's files.
#[utoipa::path(get, path = "/app/{file}", tag = "node", params(("file" = String, Path)),
    responses((status = 200, body = String, description = "the file")))]
pub async fn file(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => page(content_type, body),
        None => super::ApiError::not_found("file").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_the_page_loads_is_embedded() {
        for (name, _, body) in FILES {
            assert!(!body.trim().is_empty(), "{name} is empty");
        }
        for line in INDEX.lines().filter(|l| l.contains("/app/")) {
            let name = line
                .split("/app/")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            assert!(
                FILES.iter().any(|(n, _, _)| *n == name),
                "index.html loads /app/{name}, which is not embedded"
            );
        }
        for (name, _, body) in FILES.iter().filter(|(n, _, _)| n.ends_with(".js")) {
            for import in body.lines().filter(|l| l.starts_with("import ")) {
                let target = import
                    .split("'./")
                    .nth(1)
                    .unwrap()
                    .split('\'')
                    .next()
                    .unwrap();
                assert!(
                    FILES.iter().any(|(n, _, _)| *n == target),
                    "{name} imports {target}, which is not embedded"
                );
            }
        }
    }

    #[test]
    fn every_file_in_the_web_directory_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(
                name == "index.html" || FILES.iter().any(|(n, _, _)| *n == name),
                "web/{name} is not in FILES, so the node does not serve it"
            );
        }
    }
}
