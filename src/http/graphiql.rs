//! GraphiQL, the in-browser GraphQL IDE, served fully offline.
//!
//! [`router`] serves a small HTML page at `GET /graphiql` and the four browser
//! assets it needs (GraphiQL 3.9.0's UMD bundle and stylesheet, React and
//! ReactDOM 18.3.1) at `GET /graphiql/assets/{file}`. The assets are embedded
//! in the binary from `assets/graphiql/` (see `assets/graphiql/LICENSES.md`),
//! so nothing is loaded from a CDN.
//!
//! The page carries a strict `Content-Security-Policy`: scripts only from this
//! origin plus the one constant inline bootstrap script, allowed by its
//! SHA-256 hash. The per-deployment values (endpoint, default query, optional
//! default `Authorization` header) are therefore not spliced into JavaScript
//! but written as a JSON data block (`<script type="application/json">`, which
//! the browser never executes) that the bootstrap script reads with
//! `JSON.parse`. That JSON is produced by `serde_json` with every `<` written
//! as `\u003c`, so no value can close the element or open a comment.

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// Settings for the GraphiQL page.
#[derive(Clone, Debug)]
pub struct GraphiqlPage {
    /// URL the page sends GraphQL requests to, e.g. `/graphql`. It must be on
    /// the same origin as the page (the page's CSP has `connect-src 'self'`).
    pub endpoint: String,
    /// An API key to prefill the Headers tab with, as
    /// `{"Authorization": "Bearer <key>"}`. Meant for local development only:
    /// the key is written into the page for anyone who can load it.
    pub default_bearer: Option<String>,
}

/// Routes for GraphiQL: `GET /graphiql` (the page) and `GET /graphiql/assets/{file}` (the four embedded assets).
pub fn router<S: Clone + Send + Sync + 'static>(page: GraphiqlPage) -> Router<S> {
    let html = Bytes::from(page.render());
    Router::new()
        .route(
            "/graphiql",
            get(move || {
                let html = html.clone();
                async move { page_response(html) }
            }),
        )
        .route("/graphiql/assets/{file}", get(asset))
}

const GRAPHIQL_JS: &[u8] = include_bytes!("../../assets/graphiql/graphiql.min.js");
const GRAPHIQL_CSS: &[u8] = include_bytes!("../../assets/graphiql/graphiql.min.css");
const REACT_JS: &[u8] = include_bytes!("../../assets/graphiql/react.production.min.js");
const REACT_DOM_JS: &[u8] = include_bytes!("../../assets/graphiql/react-dom.production.min.js");

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// `(content type, body)` of an embedded asset, by file name.
fn lookup_asset(file: &str) -> Option<(&'static str, &'static [u8])> {
    match file {
        "graphiql.min.js" => Some((JS, GRAPHIQL_JS)),
        "graphiql.min.css" => Some((CSS, GRAPHIQL_CSS)),
        "react.production.min.js" => Some((JS, REACT_JS)),
        "react-dom.production.min.js" => Some((JS, REACT_DOM_JS)),
        _ => None,
    }
}

async fn asset(Path(file): Path<String>) -> Response {
    match lookup_asset(&file) {
        Some((content_type, body)) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "public, max-age=86400"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// The inline script that starts GraphiQL. It must stay constant: the CSP
/// allows it by hash ([`BOOTSTRAP_JS_SHA256`]); everything that varies comes
/// from the JSON data block with id `graphiql-config`.
const BOOTSTRAP_JS: &str = r#"
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("graphiql-config").textContent);
  var scheme = location.protocol === "https:" ? "wss://" : "ws://";
  var props = {
    // Subscriptions go over graphql-transport-ws on the same endpoint; the headers editor's
    // `Authorization` travels in connection_init's payload.
    fetcher: GraphiQL.createFetcher({
      url: config.endpoint,
      subscriptionUrl: scheme + location.host + config.endpoint
    }),
    defaultEditorToolsVisibility: true,
    shouldPersistHeaders: true,
    defaultQuery: config.defaultQuery
  };
  if (typeof config.defaultHeaders === "string") {
    props.defaultHeaders = config.defaultHeaders;
  }
  ReactDOM.createRoot(document.getElementById("graphiql"))
    .render(React.createElement(GraphiQL, props));
})();
"#;

/// Base64 of the SHA-256 of [`BOOTSTRAP_JS`] (checked by a unit test).
const BOOTSTRAP_JS_SHA256: &str = "krfRYW5jjvZ2837iFiD7s7hJAQvcrzCAjQQ1s4g3Zgk=";

/// GraphiQL 3 sets inline styles and uses `data:` images and fonts.
fn content_security_policy() -> String {
    format!(
        "default-src 'none'; script-src 'self' 'sha256-{BOOTSTRAP_JS_SHA256}'; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
         connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

fn page_response(html: Bytes) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8".to_owned()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (header::CONTENT_SECURITY_POLICY, content_security_policy()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            (header::REFERRER_POLICY, "no-referrer".to_owned()),
        ],
        html,
    )
        .into_response()
}

const QUERY: &str = "{
  viewer {
    tenantId
    role
  }
  llmRuns(first: 5) {
    totalCount
    edges {
      node {
        runId
        provider
        model
        executionStatus
      }
    }
  }
}
";

/// Serializes a JSON value for embedding in an HTML `<script>` element: with
/// `<` escaped, the text can contain neither `</script` nor `<!--`.
fn script_safe_json(value: &serde_json::Value) -> String {
    value.to_string().replace('<', "\\u003c")
}

impl GraphiqlPage {
    fn default_query(&self) -> String {
        let intro = if self.default_bearer.is_some() {
            "# Welcome to runledger's GraphiQL.\n\
             #\n\
             # Every request needs an API key. The Headers\n\
             # tab below is prefilled with one:\n\
             #   {\"Authorization\": \"Bearer <key>\"}\n"
        } else {
            "# Welcome to runledger's GraphiQL.\n\
             #\n\
             # Every request needs an API key: open the\n\
             # Headers tab below and enter\n\
             #   {\"Authorization\": \"Bearer <key>\"}\n"
        };
        format!(
            "{intro}\
             # (headers are kept in this browser's storage).\n\
             #\n\
             # Ctrl-Enter or the play button runs the query,\n\
             # Ctrl-Space autocompletes, and the Docs button\n\
             # on the left shows the schema.\n\
             \n\
             {QUERY}"
        )
    }

    /// The `{"Authorization": "Bearer <key>"}` text for the Headers tab.
    fn default_headers(&self) -> Option<String> {
        self.default_bearer.as_ref().map(|key| {
            let value = serde_json::Value::String(format!("Bearer {key}"));
            format!("{{\"Authorization\": {value}}}")
        })
    }

    fn config_json(&self) -> String {
        let mut config = serde_json::Map::new();
        config.insert("endpoint".into(), self.endpoint.clone().into());
        config.insert("defaultQuery".into(), self.default_query().into());
        if let Some(headers) = self.default_headers() {
            config.insert("defaultHeaders".into(), headers.into());
        }
        script_safe_json(&serde_json::Value::Object(config))
    }

    /// The complete HTML document.
    fn render(&self) -> String {
        let config = self.config_json();
        format!(
            r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>runledger · GraphiQL</title>
<link rel="icon" href="data:,">
<style>html, body, #graphiql {{ height: 100%; margin: 0; }}</style>
<link rel="stylesheet" href="/graphiql/assets/graphiql.min.css">
<script src="/graphiql/assets/react.production.min.js"></script>
<script src="/graphiql/assets/react-dom.production.min.js"></script>
<script src="/graphiql/assets/graphiql.min.js"></script>
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<script type="application/json" id="graphiql-config">{config}</script>
<script>{BOOTSTRAP_JS}</script>
</body>
</html>
"#
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(endpoint: &str, bearer: Option<&str>) -> GraphiqlPage {
        GraphiqlPage {
            endpoint: endpoint.to_owned(),
            default_bearer: bearer.map(str::to_owned),
        }
    }

    /// The JSON text of the `graphiql-config` block, parsed.
    fn config_of(html: &str) -> serde_json::Value {
        let start_tag = r#"<script type="application/json" id="graphiql-config">"#;
        let start = html.find(start_tag).expect("config block") + start_tag.len();
        let len = html[start..]
            .find("</script>")
            .expect("end of config block");
        serde_json::from_str(&html[start..start + len]).expect("config is JSON")
    }

    #[test]
    fn bearer_cannot_break_out_of_the_script_element() {
        let evil = "k</script><script>alert(1)</script><!--";
        let html = page("/graphql", Some(evil)).render();
        assert!(!html.contains("alert(1)</script>"));
        assert!(!html.contains("<!--"));
        // Exactly the five script elements of the template, no more.
        assert_eq!(html.matches("</script>").count(), 5);
        assert_eq!(html.matches("<script").count(), 5);
        // …and the key still arrives intact.
        let config = config_of(&html);
        let headers = config["defaultHeaders"].as_str().expect("defaultHeaders");
        let headers: serde_json::Value = serde_json::from_str(headers).expect("headers JSON");
        assert_eq!(headers["Authorization"], format!("Bearer {evil}"));
    }

    #[test]
    fn endpoint_is_escaped_and_round_trips() {
        let endpoint = "/graphql?a=\"b\"&c=</script>\u{2028}";
        let html = page(endpoint, None).render();
        assert!(!html.contains("c=</script>"));
        assert_eq!(html.matches("</script>").count(), 5);
        let config = config_of(&html);
        assert_eq!(config["endpoint"], endpoint);
        assert!(config.get("defaultHeaders").is_none());
        assert!(
            config["defaultQuery"]
                .as_str()
                .expect("query")
                .contains("llmRuns(first: 5)")
        );
    }

    #[test]
    fn default_headers_text() {
        let html = page("/graphql", Some("rl_abc\"def")).render();
        let config = config_of(&html);
        assert_eq!(
            config["defaultHeaders"],
            r#"{"Authorization": "Bearer rl_abc\"def"}"#
        );
        assert!(
            config["defaultQuery"]
                .as_str()
                .expect("query")
                .contains("is prefilled")
        );
    }

    #[test]
    fn page_embeds_the_bootstrap_script_verbatim_and_its_hash_matches() {
        use base64::Engine as _;
        use sha2::Digest as _;
        let html = page("/graphql", None).render();
        assert!(html.contains(&format!("<script>{BOOTSTRAP_JS}</script>")));
        let digest = sha2::Sha256::digest(BOOTSTRAP_JS.as_bytes());
        let hash = base64::engine::general_purpose::STANDARD.encode(digest);
        assert_eq!(hash, BOOTSTRAP_JS_SHA256, "update BOOTSTRAP_JS_SHA256");
    }

    #[test]
    fn assets_are_known_by_name() {
        assert_eq!(lookup_asset("graphiql.min.js").map(|a| a.0), Some(JS));
        assert_eq!(lookup_asset("graphiql.min.css").map(|a| a.0), Some(CSS));
        assert_eq!(
            lookup_asset("react.production.min.js").map(|a| a.0),
            Some(JS)
        );
        assert_eq!(
            lookup_asset("react-dom.production.min.js").map(|a| a.0),
            Some(JS)
        );
        assert!(lookup_asset("graphiql.min.js.map").is_none());
        assert!(lookup_asset("../Cargo.toml").is_none());
    }

    #[tokio::test]
    async fn asset_responses() {
        let ok = asset(Path("graphiql.min.css".to_owned())).await;
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.headers()[header::CONTENT_TYPE], CSS);
        assert_eq!(ok.headers()[header::CACHE_CONTROL], "public, max-age=86400");
        let missing = asset(Path("nope.js".to_owned())).await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    }
}
