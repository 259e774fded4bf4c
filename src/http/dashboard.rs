//! The dashboard page at `GET /dashboard`, served fully offline: a static HTML page, its script
//! and stylesheet, and the chart library it draws with (uPlot 1.6.32, see
//! `assets/dashboard/LICENSES.md`), all embedded in the binary from `assets/dashboard/` and
//! served at `GET /dashboard/assets/{file}`.
//!
//! The page talks only to the public GraphQL API on this origin with the key the user enters
//! (kept in the tab's session storage). Its `Content-Security-Policy` allows scripts, styles and
//! requests from this origin alone and no inline script, so nothing is loaded from elsewhere.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const PAGE: &[u8] = include_bytes!("../../assets/dashboard/dashboard.html");
const DASHBOARD_JS: &[u8] = include_bytes!("../../assets/dashboard/dashboard.js");
const DASHBOARD_CSS: &[u8] = include_bytes!("../../assets/dashboard/dashboard.css");
const UPLOT_JS: &[u8] = include_bytes!("../../assets/dashboard/uPlot.iife.min.js");
const UPLOT_CSS: &[u8] = include_bytes!("../../assets/dashboard/uPlot.min.css");

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Where the page is served.
pub const PATH: &str = "/dashboard";

const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// Routes: `GET /dashboard` (the page) and `GET /dashboard/assets/{file}` (its assets).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(PATH, get(page))
        .route("/dashboard/assets/{file}", get(asset))
}

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        PAGE,
    )
        .into_response()
}

fn lookup_asset(file: &str) -> Option<(&'static str, &'static [u8])> {
    match file {
        "dashboard.js" => Some((JS, DASHBOARD_JS)),
        "dashboard.css" => Some((CSS, DASHBOARD_CSS)),
        "uPlot.iife.min.js" => Some((JS, UPLOT_JS)),
        "uPlot.min.css" => Some((CSS, UPLOT_CSS)),
        _ => None,
    }
}

async fn asset(Path(file): Path<String>) -> Response {
    match lookup_asset(&file) {
        Some((content_type, body)) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
