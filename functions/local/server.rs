//! The local runner's HTTP side: serves every HTTP function of `template.yaml` at its
//! deployed path on 127.0.0.1. The route table is read from `template.yaml` itself (embedded
//! at build time), so local and deployed routes cannot drift.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use chatapp::app::AppDeps;
use chatapp::http::LocalPeer;
use chatapp::ApiError;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_yaml_ng::Value;
use tokio::net::TcpListener;

use crate::http_function::HttpFunction;

pub const TEMPLATE: &str = include_str!("../../template.yaml");
/// The embeddable widget and its demo page (on AWS the script is served from a CDN or bucket).
pub const WIDGET_JS: &str = include_str!("static/widget.js");
const DEMO_HTML: &str = include_str!("static/demo.html");

/// What the local runner serves besides the functions.
#[derive(Clone, Debug, Default)]
pub struct Site {
    /// The agent behind the demo page (`/` and `/demo`).
    pub demo_agent: Option<uuid::Uuid>,
}

/// Response bodies of the local runner: whole, or streamed (server-sent events of a chat turn).
type LocalBody = BoxBody<Bytes, Infallible>;

fn full(bytes: Bytes) -> LocalBody {
    Full::new(bytes).boxed()
}

fn static_response(content_type: &'static str, body: String) -> hyper::Response<LocalBody> {
    hyper::Response::builder()
        .status(200)
        .header("content-type", content_type)
        .header("cache-control", "no-cache")
        .body(full(Bytes::from(body)))
        .expect("static response parts are valid")
}

/// `/widget.js`, and the demo page wired to the demo agent and this server.
fn static_file(
    site: &Site,
    method: &hyper::Method,
    path: &str,
    host: Option<&str>,
) -> Option<hyper::Response<LocalBody>> {
    if method != hyper::Method::GET {
        return None;
    }
    match path {
        "/widget.js" => Some(static_response("application/javascript; charset=utf-8", WIDGET_JS.to_string())),
        "/" | "/demo" => {
            let agent = site.demo_agent?;
            let base = format!("http://{}", host.unwrap_or("127.0.0.1:3000"));
            let page = DEMO_HTML.replace("__AGENT_ID__", &agent.to_string()).replace("__API_BASE__", &base);
            Some(static_response("text/html; charset=utf-8", page))
        }
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `{name}`: one segment.
    Param,
    /// `{name+}`: one or more trailing segments.
    Greedy,
}

#[derive(Debug, Clone)]
pub struct Route {
    /// `None` for `ANY`.
    pub method: Option<String>,
    pub path: String,
    segments: Vec<Segment>,
    pub function: HttpFunction,
}

impl Route {
    fn matches(&self, method: &str, path: &str) -> bool {
        if self.method.as_deref().is_some_and(|m| !m.eq_ignore_ascii_case(method)) {
            return false;
        }
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut i = 0;
        for seg in &self.segments {
            match seg {
                Segment::Greedy => return parts.len() > i,
                Segment::Param => {
                    if i >= parts.len() {
                        return false;
                    }
                }
                Segment::Literal(l) => {
                    if parts.get(i) != Some(&l.as_str()) {
                        return false;
                    }
                }
            }
            i += 1;
        }
        i == parts.len()
    }

    /// More literal segments first, then fixed-length before greedy.
    fn specificity(&self) -> (usize, bool) {
        let literals = self.segments.iter().filter(|s| matches!(s, Segment::Literal(_))).count();
        (literals, !self.segments.contains(&Segment::Greedy))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("template.yaml is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("template.yaml: {0}")]
    Shape(String),
}

/// Every `HttpApi` event of every `AWS::Serverless::Function` in the template.
pub fn routes_from_template(template: &str) -> Result<Vec<Route>, RouteError> {
    let doc: Value = serde_yaml_ng::from_str(template)?;
    let resources =
        doc.get("Resources").and_then(Value::as_mapping).ok_or_else(|| RouteError::Shape("no Resources".into()))?;
    let mut routes = Vec::new();
    for (name, res) in resources {
        if res.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
            continue;
        }
        let name = name.as_str().unwrap_or("?");
        let Some(events) = res.get("Properties").and_then(|p| p.get("Events")).and_then(Value::as_mapping) else {
            continue;
        };
        let http_events: Vec<&Value> =
            events.values().filter(|e| e.get("Type").and_then(Value::as_str) == Some("HttpApi")).collect();
        if http_events.is_empty() {
            continue;
        }
        let binary = res
            .get("Metadata")
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"))
            .and_then(Value::as_str)
            .ok_or_else(|| RouteError::Shape(format!("{name}: no Metadata.BuildProperties.Binary")))?;
        let function = HttpFunction::from_binary(binary)
            .ok_or_else(|| RouteError::Shape(format!("{name}: binary {binary} has no HTTP handler")))?;
        for ev in http_events {
            let props =
                ev.get("Properties").ok_or_else(|| RouteError::Shape(format!("{name}: event without Properties")))?;
            let path = props
                .get("Path")
                .and_then(Value::as_str)
                .ok_or_else(|| RouteError::Shape(format!("{name}: HttpApi event without Path")))?;
            let method = props.get("Method").and_then(Value::as_str).unwrap_or("ANY");
            let segments = path
                .split('/')
                .filter(|s| !s.is_empty())
                .map(|s| {
                    if s.starts_with('{') && s.ends_with("+}") {
                        Segment::Greedy
                    } else if s.starts_with('{') && s.ends_with('}') {
                        Segment::Param
                    } else {
                        Segment::Literal(s.to_string())
                    }
                })
                .collect();
            routes.push(Route {
                method: (!method.eq_ignore_ascii_case("ANY")).then(|| method.to_uppercase()),
                path: path.to_string(),
                segments,
                function,
            });
        }
    }
    routes.sort_by_key(|r| std::cmp::Reverse(r.specificity()));
    Ok(routes)
}

pub fn find_route<'a>(routes: &'a [Route], method: &str, path: &str) -> Option<&'a Route> {
    routes.iter().find(|r| r.matches(method, path))
}

async fn serve_one(
    deps: &AppDeps,
    routes: &[Route],
    site: &Site,
    peer: SocketAddr,
    req: hyper::Request<Incoming>,
) -> hyper::Response<LocalBody> {
    let host = req.headers().get("host").and_then(|h| h.to_str().ok());
    if let Some(r) = static_file(site, req.method(), req.uri().path(), host) {
        return r;
    }
    let (parts, body) = req.into_parts();
    // Routes enforce their own limits (JSON bodies vs file uploads); this is the outer cap.
    let limit = deps.cfg.max_body_bytes.max(deps.cfg.max_upload_bytes);
    let response = match Limited::new(body, limit + 1).collect().await {
        Err(_) => ApiError::PayloadTooLarge { limit }.into_response(),
        Ok(collected) => {
            let bytes = collected.to_bytes();
            let body = if bytes.is_empty() {
                lambda_http::Body::Empty
            } else {
                match String::from_utf8(bytes.to_vec()) {
                    Ok(s) => lambda_http::Body::Text(s),
                    Err(e) => lambda_http::Body::Binary(e.into_bytes()),
                }
            };
            let mut lreq = lambda_http::Request::from_parts(parts, body);
            lreq.extensions_mut().insert(LocalPeer(peer.ip()));
            match find_route(routes, lreq.method().as_str(), lreq.uri().path()) {
                // The widget's chat turn streams: its events go out as the turn produces them.
                Some(route) if route.function == HttpFunction::Widget => {
                    return crate::widget::respond(deps, lreq)
                        .await
                        .map(crate::widget::WidgetBody::into_streaming_body);
                }
                Some(route) => route.function.call(deps, lreq).await,
                None => ApiError::NotFound.into_response(),
            }
        }
    };
    let (parts, body) = response.into_parts();
    hyper::Response::from_parts(parts, lambda_body(body))
}

fn lambda_body(body: lambda_http::Body) -> LocalBody {
    full(match body {
        lambda_http::Body::Empty => Bytes::new(),
        lambda_http::Body::Text(t) => Bytes::from(t),
        lambda_http::Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    })
}

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, deps: AppDeps, routes: Vec<Route>) {
    serve_site(listener, deps, routes, Site::default()).await
}

/// [`serve`] plus the widget script and the demo page.
pub async fn serve_site(listener: TcpListener, deps: AppDeps, routes: Vec<Route>, site: Site) {
    let site = Arc::new(site);
    let deps = Arc::new(deps);
    let routes: Arc<[Route]> = routes.into();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                continue;
            }
        };
        let (deps, routes, site) = (deps.clone(), routes.clone(), site.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let (deps, routes, site) = (deps.clone(), routes.clone(), site.clone());
                async move { Ok::<_, Infallible>(serve_one(&deps, &routes, &site, peer, req).await) }
            });
            if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await {
                tracing::debug!(error = %e, "connection closed");
            }
        });
    }
}

/// Creates the database named in `owner_url` if it does not exist yet.
#[allow(clippy::disallowed_methods)] // owner-level connection, not tenant data
pub async fn ensure_database(owner_url: &str) -> Result<(), tokio_postgres::Error> {
    use std::str::FromStr;
    let cfg = tokio_postgres::Config::from_str(owner_url)?;
    let name = cfg.get_dbname().unwrap_or("postgres").to_string();
    let mut admin = cfg.clone();
    admin.dbname("postgres");
    let (client, conn) = admin.connect(tokio_postgres::NoTls).await?;
    let task = tokio::spawn(conn);
    let exists = client.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name]).await?.is_some();
    if !exists {
        // Identifiers cannot be bound; quote it.
        client.batch_execute(&format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""))).await?;
    }
    drop(client);
    let _ = task.await;
    Ok(())
}

/// A connection string without its password, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}
