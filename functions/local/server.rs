//! The local runner's HTTP side: every HTTP function's own router, merged and served on
//! 127.0.0.1 at the paths they are deployed at (a test holds `template.yaml` and the routers
//! together).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request};
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_FRAME_OPTIONS};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use chatapp::app::AppDeps;
use chatapp::web::LocalPeer;
use chatapp::ApiError;
use tokio::net::TcpListener;

use chatapp_functions::http_function::HttpFunction;

pub const TEMPLATE: &str = include_str!("../../template.yaml");
/// The embeddable widget and its demo page (on AWS the script is served from a CDN or bucket).
pub const WIDGET_JS: &str = include_str!("static/widget.js");
const DEMO_HTML: &str = include_str!("static/demo.html");
/// The support agents' inbox: a page and its two scripts (loaded in this order), no build step
/// (on AWS all three are uploaded to a bucket as they are; the page reads the API base from its
/// `chatapp-api-base` meta tag or uses its own origin).
const INBOX_HTML: &str = include_str!("static/inbox.html");
pub const INBOX_JS: &str = include_str!("static/inbox.js");
pub const INBOX_CONVERSATION_JS: &str = include_str!("static/inbox-conversation.js");
/// The inbox page holds a sign-in form: no framing, only its own scripts, calls to any API base.
const INBOX_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; \
                         connect-src 'self' http: https:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// What the local runner serves besides the functions.
#[derive(Clone, Debug, Default)]
pub struct Site {
    /// The agent behind the demo page (`/` and `/demo`).
    pub demo_agent: Option<uuid::Uuid>,
}

fn static_response(content_type: &'static str, body: String) -> Response {
    ([(CONTENT_TYPE, content_type), (CACHE_CONTROL, "no-cache")], body).into_response()
}

/// Every HTTP function's router merged into one app, with the widget script, the demo page,
/// the OpenAPI document and its reference page, and the caller's address as API Gateway would
/// report it.
pub fn app(deps: AppDeps, site: Site) -> Router {
    let mut app = Router::new();
    for f in HttpFunction::ALL {
        app = app.merge(f.bound(deps.clone()));
    }
    let site = Arc::new(site);
    let app = app
        .route(
            "/widget.js",
            get(|| async { static_response("application/javascript; charset=utf-8", WIDGET_JS.to_string()) }),
        )
        .route("/", get(demo_page))
        .route("/demo", get(demo_page))
        .route("/agent", get(inbox_page))
        .route("/agent/", get(inbox_page))
        .route(
            "/agent/inbox.js",
            get(|| async { static_response("application/javascript; charset=utf-8", INBOX_JS.to_string()) }),
        )
        .route(
            "/agent/inbox-conversation.js",
            get(|| async {
                static_response("application/javascript; charset=utf-8", INBOX_CONVERSATION_JS.to_string())
            }),
        )
        .route("/openapi.json", get(|| async { axum::Json(chatapp_functions::http_function::openapi()) }))
        .route("/docs", get(|| async { static_response("text/html; charset=utf-8", DOCS_HTML.to_string()) }))
        .route("/docs/assets/{file}", get(docs_asset))
        .layer(Extension(site));
    chatapp::web::with_not_found(app).layer(axum::middleware::from_fn(local_peer))
}

/// The peer address as `LocalPeer`, which `RequestMeta` reads where API Gateway's `sourceIp` is absent.
async fn local_peer(mut req: Request, next: Next) -> Response {
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
        req.extensions_mut().insert(LocalPeer(peer.ip()));
    }
    next.run(req).await
}

async fn demo_page(Extension(site): Extension<Arc<Site>>, headers: HeaderMap) -> Response {
    let Some(agent) = site.demo_agent else { return ApiError::NotFound.into_response() };
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1:3000");
    let base = format!("http://{host}");
    let page = DEMO_HTML.replace("__AGENT_ID__", &agent.to_string()).replace("__API_BASE__", &base);
    static_response("text/html; charset=utf-8", page)
}

/// The inbox page. Its scripts are `inbox.js` and `inbox-conversation.js` beside it (as in a
/// bucket); here those are `/agent/inbox.js` and `/agent/inbox-conversation.js` whether the page
/// was asked for as `/agent` or `/agent/`.
async fn inbox_page() -> Response {
    let page = INBOX_HTML
        .replace(r#"src="inbox.js""#, r#"src="/agent/inbox.js""#)
        .replace(r#"src="inbox-conversation.js""#, r#"src="/agent/inbox-conversation.js""#);
    (
        [(CONTENT_SECURITY_POLICY, INBOX_CSP), (X_FRAME_OPTIONS, "DENY")],
        static_response("text/html; charset=utf-8", page),
    )
        .into_response()
}

/// The API reference page: swagger-ui from the npm package the set-up script installs
/// (`functions/local/docs`), served from this machine, reading `/openapi.json`.
const DOCS_HTML: &str = r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>chatapp API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="ui"></div><script src="/docs/assets/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#ui" });</script></body></html>
"##;

fn docs_dir() -> PathBuf {
    std::env::var_os("DOCS_UI_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/node_modules/swagger-ui-dist")))
}

async fn docs_asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let content_type = match file.as_str() {
        "swagger-ui.css" => "text/css; charset=utf-8",
        "swagger-ui-bundle.js" => "application/javascript; charset=utf-8",
        _ => return ApiError::NotFound.into_response(),
    };
    match tokio::fs::read_to_string(docs_dir().join(&file)).await {
        Ok(body) => static_response(content_type, body),
        Err(e) => {
            tracing::warn!(error = %e, "API reference assets missing: run scripts/run-local.sh (it installs them)");
            ApiError::NotFound.into_response()
        }
    }
}

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, deps: AppDeps) {
    serve_site(listener, deps, Site::default()).await
}

/// [`serve`] plus the widget script and the demo page.
pub async fn serve_site(listener: TcpListener, deps: AppDeps, site: Site) {
    let app = app(deps, site).into_make_service_with_connect_info::<SocketAddr>();
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "local server stopped");
    }
}
