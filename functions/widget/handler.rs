//! `widget` function: the public chat API the embeddable widget (and any site) talks to.
//!
//! GET  /widget/agents/{agent_id}/config      widget settings (Origin checked, CORS set)
//! POST /widget/agents/{agent_id}/sessions    start a conversation → a session token
//! POST /widget/conversations/{id}/messages   the chat turn (JSON, or SSE with Accept: text/event-stream)
//! GET  /widget/conversations/{id}/messages   history
//! POST /widget/conversations/{id}/end        end it, with an optional CSAT rating
//!
//! Session tokens are 256 random bits, stored as SHA-256, valid for their one conversation
//! (`Authorization: Bearer <token>`). Sites that verify identities send `identifier` and
//! `identity_hash = hex(HMAC-SHA256(widget secret, identifier))`, compared in constant time.

use ::http::{HeaderValue, StatusCode};
use chatapp::app::AppDeps;
use chatapp::auth::tokens;
use chatapp::chat::turn::{self, TurnOutput};
use chatapp::domain::{self, Email};
use chatapp::http::{self, HandlerResult};
use chatapp::repo::chat::{self as repo, WidgetConfig};
use chatapp::tenant::{Access, Resource};
use chatapp::{ApiError, TenantCtx};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

const AGENTS: &str = "/widget/agents";
const CONVERSATIONS: &str = "/widget/conversations";

/// The body of a widget response: complete, or server-sent events still being produced by a
/// running turn (the local runner sends them as they come).
pub enum WidgetBody {
    Whole(Body),
    Events(tokio::sync::mpsc::UnboundedReceiver<String>),
}

/// A response body that can be sent while it is produced (hyper locally, Lambda response
/// streaming deployed).
pub type StreamingBody = http_body_util::combinators::BoxBody<bytes::Bytes, std::convert::Infallible>;

impl WidgetBody {
    pub fn into_streaming_body(self) -> StreamingBody {
        use http_body_util::BodyExt;
        match self {
            WidgetBody::Whole(b) => http_body_util::Full::new(bytes::Bytes::from(match b {
                Body::Text(t) => t.into_bytes(),
                Body::Binary(b) => b,
                _ => Vec::new(),
            }))
            .boxed(),
            WidgetBody::Events(rx) => {
                let frames = futures_util::stream::unfold(rx, |mut rx| async move {
                    let frame = rx.recv().await?;
                    Some((Ok(http_body::Frame::data(bytes::Bytes::from(frame))), rx))
                });
                http_body_util::StreamBody::new(frames).boxed()
            }
        }
    }
}

fn whole(r: Response<Body>) -> Response<WidgetBody> {
    r.map(WidgetBody::Whole)
}

/// The buffered form (what API Gateway relays): a stream is collected before answering.
pub async fn handle(deps: &AppDeps, req: Request) -> HandlerResult {
    let (parts, body) = respond(deps, req).await.into_parts();
    let body = match body {
        WidgetBody::Whole(b) => b,
        WidgetBody::Events(mut rx) => {
            let mut all = String::new();
            while let Some(frame) = rx.recv().await {
                all.push_str(&frame);
            }
            Body::Text(all)
        }
    };
    Ok(Response::from_parts(parts, body))
}

/// Routes a widget request; a chat turn asked for as `text/event-stream` streams its answer.
pub async fn respond(deps: &AppDeps, req: Request) -> Response<WidgetBody> {
    let path = req.uri().path().to_string();
    let origin = http::header(&req, "origin").map(str::to_string);
    let method = req.method().as_str().to_string();
    let result = route(deps, &req, &path, &method, origin.as_deref()).await;
    // CORS headers only for an origin the route accepted (errors included, so the widget can
    // read them); a refused origin gets none, and the browser blocks the response.
    let (mut response, allowed_origin) = match result {
        Ok((r, allowed)) => (r, allowed),
        Err(e) => {
            let refused = matches!(&e, ApiError::Forbidden { code: "origin_not_allowed", .. });
            (whole(e.into_response()), if refused { None } else { origin })
        }
    };
    if let Some(o) = allowed_origin {
        let h = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&o) {
            h.insert("access-control-allow-origin", v);
        }
        h.insert("vary", HeaderValue::from_static("Origin"));
        h.insert("access-control-allow-headers", HeaderValue::from_static("authorization, content-type, accept"));
        h.insert("access-control-allow-methods", HeaderValue::from_static("GET, POST, OPTIONS"));
        h.insert("access-control-max-age", HeaderValue::from_static("600"));
    }
    response
}

type Routed = Result<(Response<WidgetBody>, Option<String>), ApiError>;

async fn route(deps: &AppDeps, req: &Request, path: &str, method: &str, origin: Option<&str>) -> Routed {
    if let Some(segs) = http::segments_after(path, AGENTS) {
        let [agent, action] = segs.as_slice() else { return Err(ApiError::NotFound) };
        let agent = http::path_id(agent)?;
        let ctx = deps.auth.widget_ctx(agent).await?;
        let widget = widget_for(deps, &ctx, agent).await?;
        let allowed = check_origin(&widget.allowed_domains, origin)?;
        return match (method, *action) {
            ("OPTIONS", "config" | "sessions") => Ok((whole(http::no_content()?), allowed)),
            ("GET", "config") => Ok((whole(config(deps, &widget, agent)?), allowed)),
            ("POST", "sessions") => Ok((whole(start_session(deps, &ctx, req, agent, &widget).await?), allowed)),
            (_, "config" | "sessions") => Err(ApiError::MethodNotAllowed),
            _ => Err(ApiError::NotFound),
        };
    }
    let segs = http::segments_after(path, CONVERSATIONS).ok_or(ApiError::NotFound)?;
    let [conversation, action] = segs.as_slice() else { return Err(ApiError::NotFound) };
    let conversation = http::path_id(conversation)?;
    if method == "OPTIONS" {
        // Preflight carries no credentials; the real request is checked in full.
        return Ok((whole(http::no_content()?), origin.map(str::to_string)));
    }
    let token = bearer(req)?;
    let session = deps.auth.session_ctx(token).await?;
    let (ctx, session_conversation) = (session.ctx, session.conversation_id);
    // A token opens its own conversation only; another one is indistinguishable from unknown.
    if session_conversation != conversation {
        return Err(ApiError::unauthorized("invalid_session", "the session token is missing, wrong or expired"));
    }
    ctx.authorize(Resource::Messages, Access::Write)?;
    let allowed = check_origin(&session.allowed_domains, origin)?;
    match (method, *action) {
        ("POST", "messages") => Ok((send(deps, &ctx, req, conversation).await?, allowed)),
        ("GET", "messages") => Ok((whole(history(deps, &ctx, conversation).await?), allowed)),
        ("POST", "end") => {
            let ended = end(deps, &ctx, req, conversation).await?;
            deps.auth.forget_session(token);
            Ok((whole(ended), allowed))
        }
        (_, "messages" | "end") => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NotFound),
    }
}

fn bearer(req: &Request) -> Result<&str, ApiError> {
    http::header(req, "authorization")
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("invalid_session", "the session token is missing, wrong or expired"))
}

async fn widget_for(deps: &AppDeps, ctx: &TenantCtx, agent: Uuid) -> Result<WidgetConfig, ApiError> {
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(ctx).await?;
    let w = repo::widget_config(&tx, company, agent).await.map_err(ApiError::from);
    Ok(tx.finish(w).await?.unwrap_or_default())
}

/// The Origin must be one of the widget's `allowed_domains` (`example.com` also admits its
/// subdomains; `*` admits any) when the list is set. Requests without an Origin come from
/// servers, not browsers, and are let through.
fn check_origin(allowed_domains: &[String], origin: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(origin) = origin else { return Ok(None) };
    if allowed_domains.is_empty() || origin_allowed(allowed_domains, origin) {
        return Ok(Some(origin.to_string()));
    }
    Err(ApiError::forbidden("origin_not_allowed", "this site may not embed this chat"))
}

fn origin_allowed(allowed: &[String], origin: &str) -> bool {
    let Ok(url) = url::Url::parse(origin) else { return false };
    let Some(host) = url.host_str().map(str::to_ascii_lowercase) else { return false };
    allowed.iter().any(|a| {
        let a = a.trim().trim_start_matches("*.").to_ascii_lowercase();
        let a = a.split("://").last().unwrap_or(&a).trim_end_matches('/').to_string();
        a == "*" || host == a || host.ends_with(&format!(".{a}"))
    })
}

fn config(deps: &AppDeps, widget: &WidgetConfig, agent: Uuid) -> HandlerResult {
    http::ok(&json!({"agent_id": agent, "widget": widget, "stream_url": deps.cfg.widget_stream_url}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionBody {
    name: Option<String>,
    email: Option<String>,
    identifier: Option<String>,
    identity_hash: Option<String>,
    metadata: Option<Value>,
}

async fn start_session(
    deps: &AppDeps,
    ctx: &TenantCtx,
    req: &Request,
    agent: Uuid,
    widget: &WidgetConfig,
) -> HandlerResult {
    let company = ctx.require_company()?.as_uuid();
    let body: SessionBody = if http::body_bytes(req).is_empty() {
        serde_json::from_value(json!({})).expect("all optional")
    } else {
        http::parse_json(req, deps.cfg.max_body_bytes)?
    };
    let name = domain::optional_text("name", body.name.as_deref(), 255)?;
    let email = body.email.as_deref().map(|e| Email::parse("email", e)).transpose()?;
    let identifier = domain::optional_text("identifier", body.identifier.as_deref(), 255)?;
    let metadata = body.metadata.unwrap_or_else(|| json!({}));
    if !metadata.is_object() || metadata.to_string().len() > 4096 {
        return Err(ApiError::validation("metadata must be a JSON object of at most 4 KB"));
    }
    // Identity verification: mandatory when the company requires it, checked whenever sent.
    let verified = match (&identifier, body.identity_hash.as_deref(), widget.identity_secret.as_deref()) {
        (Some(id), Some(hash), Some(secret)) => {
            let want = tokens::hmac_sha256_hex(secret.as_bytes(), id);
            if !tokens::constant_time_eq(want.as_bytes(), hash.trim().to_ascii_lowercase().as_bytes()) {
                return Err(ApiError::unauthorized("identity_invalid", "the identity hash does not match"));
            }
            true
        }
        (_, Some(_), None) => return Err(ApiError::validation("this chat does not verify identities")),
        (None, Some(_), _) => return Err(ApiError::validation("identity_hash needs an identifier")),
        _ => false,
    };
    if widget.require_identity && !verified {
        return Err(ApiError::unauthorized("identity_required", "this chat requires a verified identity"));
    }
    let token = format!("cs_{}", tokens::random_secret());
    let tx = deps.db.begin(ctx).await?;
    let created = async {
        let agent_row = repo::agent(&tx, company, agent).await?.ok_or(ApiError::NotFound)?;
        if agent_row.status != "active" {
            return Err(ApiError::conflict("agent_unavailable", "this assistant is not taking messages right now"));
        }
        // Only a verified identifier may link to an existing customer record.
        let external = if verified { identifier.as_deref() } else { None };
        let customer = repo::upsert_customer(
            &tx,
            company,
            &repo::CustomerFields {
                external_id: external,
                email: email.as_ref().map(Email::as_str),
                name: name.as_deref(),
            },
        )
        .await?;
        let id = repo::create_conversation(
            &tx,
            &repo::NewConversation {
                company_id: company,
                agent_id: agent,
                token_hash: &tokens::sha256_hex(&token),
                channel: "web",
                customer_id: customer,
                customer_name: name.as_deref(),
                customer_email: email.as_ref().map(Email::as_str),
                metadata: &json!({"verified": verified, "identifier": external, "site": metadata}),
            },
        )
        .await?;
        Ok::<_, ApiError>((id, customer))
    }
    .await;
    let (conversation, customer) = tx.finish(created).await?;
    http::created(&json!({
        "conversation_id": conversation,
        "customer_id": customer,
        "session_token": token,
        "verified": verified,
        "welcome_message": widget.welcome_message,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendBody {
    content: String,
    client_message_id: Option<String>,
}

/// What the running turn reports to the response.
enum Progress {
    Delta(String),
    Done(Box<Result<TurnOutput, ApiError>>),
}

async fn send(
    deps: &AppDeps,
    ctx: &TenantCtx,
    req: &Request,
    conversation: Uuid,
) -> Result<Response<WidgetBody>, ApiError> {
    let body: SendBody = http::parse_json(req, deps.cfg.max_body_bytes)?;
    let input = turn::validate(&body.content, body.client_message_id.as_deref())?;
    if !http::header(req, "accept").is_some_and(|a| a.contains("text/event-stream")) {
        let mut ignore = |_: &str| {};
        let out = turn::turn(deps, ctx, conversation, &input, &mut ignore).await?;
        return Ok(whole(http::ok(&turn_json(&out))?));
    }
    // The turn runs on its own task; the response starts with its first piece of text. Errors
    // before that (limits, closed conversation, ...) are still ordinary JSON 4xx responses.
    let (progress, mut updates) = tokio::sync::mpsc::unbounded_channel::<Progress>();
    let (deps, ctx) = (deps.clone(), ctx.clone());
    tokio::spawn(async move {
        let deltas = progress.clone();
        let mut sink = |d: &str| {
            let _ = deltas.send(Progress::Delta(d.to_string()));
        };
        let result = turn::turn(&deps, &ctx, conversation, &input, &mut sink).await;
        let _ = progress.send(Progress::Done(Box::new(result)));
    });
    let (frames, events) = tokio::sync::mpsc::unbounded_channel::<String>();
    match updates.recv().await {
        None => return Err(ApiError::internal("the chat turn ended without a result")),
        Some(Progress::Done(result)) => {
            let out = (*result)?;
            let _ = frames.send(sse(&out, &[]));
        }
        Some(Progress::Delta(first)) => {
            let _ = frames.send(frame("delta", &json!({"text": first})));
            tokio::spawn(async move {
                while let Some(update) = updates.recv().await {
                    let text = match update {
                        Progress::Delta(d) => frame("delta", &json!({"text": d})),
                        Progress::Done(result) => match *result {
                            Ok(out) => closing_frames(&out),
                            Err(e) => {
                                let body = json!({"error": {"code": e.code(), "message": e.to_string()}});
                                if let ApiError::Internal(cause) = &e {
                                    tracing::error!(error.chain = %chatapp::error::error_chain(cause.as_ref()), "chat turn failed mid-stream");
                                }
                                frame("error", &body)
                            }
                        },
                    };
                    if frames.send(text).is_err() {
                        break; // the client went away; the turn still completes and is stored
                    }
                }
            });
        }
    }
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .header("x-accel-buffering", "no")
        .body(WidgetBody::Events(events))
        .expect("static response parts are valid"))
}

fn frame(name: &str, data: &Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// After the text: the escalation (if any), then the whole result.
fn closing_frames(out: &TurnOutput) -> String {
    let mut s = String::new();
    if let Some(e) = &out.escalation {
        s.push_str(&frame("escalated", e));
    }
    s.push_str(&frame("done", &turn_json(out)));
    s
}

fn turn_json(out: &TurnOutput) -> Value {
    json!({
        "message": out.message,
        "reply": out.reply,
        "citations": out.reply.as_ref().map(|r| r.metadata["citations"].clone()).unwrap_or(json!([])),
        "escalation": out.escalation,
        "handoff": out.handoff,
        "replayed": out.replayed,
    })
}

/// Server-sent events of a finished turn: the answer's pieces (the stored reply for a replayed
/// send), then the closing frames.
fn sse(out: &TurnOutput, deltas: &[String]) -> String {
    let mut s = String::new();
    match (&out.reply, out.replayed || deltas.is_empty()) {
        (Some(r), true) => s.push_str(&frame("delta", &json!({"text": r.content}))),
        _ => deltas.iter().for_each(|d| s.push_str(&frame("delta", &json!({"text": d})))),
    }
    s.push_str(&closing_frames(out));
    s
}

async fn history(deps: &AppDeps, ctx: &TenantCtx, conversation: Uuid) -> HandlerResult {
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(ctx).await?;
    let messages = repo::history(&tx, company, conversation, 200).await.map_err(ApiError::from);
    let messages = tx.finish(messages).await?;
    // Internal notes and tool traffic stay internal.
    let visible: Vec<Value> = messages
        .iter()
        .filter(|m| matches!(m.role.as_str(), "user" | "assistant" | "human_agent"))
        .map(|m| {
            json!({"id": m.id, "role": m.role, "content": m.content, "created_at": m.created_at,
                   "citations": m.metadata.get("citations").cloned().unwrap_or(json!([]))})
        })
        .collect();
    http::ok(&json!({"conversation_id": conversation, "messages": visible}))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EndBody {
    rating: Option<i32>,
    comment: Option<String>,
}

async fn end(deps: &AppDeps, ctx: &TenantCtx, req: &Request, conversation: Uuid) -> HandlerResult {
    let body: EndBody = if http::body_bytes(req).is_empty() {
        EndBody::default()
    } else {
        http::parse_json(req, deps.cfg.max_body_bytes)?
    };
    if body.rating.is_some_and(|r| !(1..=5).contains(&r)) {
        return Err(ApiError::validation("rating must be 1-5"));
    }
    let comment = domain::optional_text("comment", body.comment.as_deref(), 2000)?;
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(ctx).await?;
    let ended = repo::end_conversation(&tx, company, conversation, body.rating, comment.as_deref())
        .await
        .map_err(ApiError::from);
    tx.finish(ended).await?;
    http::ok(&json!({"conversation_id": conversation, "status": "resolved", "rating": body.rating}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_hosts_and_subdomains_only() {
        let allowed = vec!["example.com".to_string(), "https://shop.test/".to_string()];
        assert!(origin_allowed(&allowed, "https://example.com"));
        assert!(origin_allowed(&allowed, "https://help.example.com:8443"));
        assert!(origin_allowed(&allowed, "https://shop.test"));
        assert!(!origin_allowed(&allowed, "https://evil-example.com"));
        assert!(!origin_allowed(&allowed, "https://example.com.evil.io"));
        assert!(!origin_allowed(&allowed, "null"));
    }
}
