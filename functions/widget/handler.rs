//! `widget` function: the public chat API the embeddable widget (and any site) talks to.
//!
//! GET  /widget/agents/{agent_id}/config      widget settings (Origin checked, CORS set)
//! POST /widget/agents/{agent_id}/sessions    start a conversation → a session token
//! POST /widget/conversations/{id}/messages   the chat turn (JSON, or SSE with Accept: text/event-stream)
//! GET  /widget/conversations/{id}/messages   history
//! POST /widget/conversations/{id}/end        end it, with an optional CSAT rating
//! GET  /widget/conversations/{id}/events|queue, POST .../typing: the live side (`live.rs`)
//! GET  /widget/conversations/{id}/events/stream  the same events as server-sent events (`live.rs`)
//! POST /widget/conversations/{id}/handoff|contact  the customer asks for a person, or leaves an
//!                                                   email and a message when none is there (`live.rs`)
//!
//! Session tokens are 256 random bits, stored as SHA-256, valid for their one conversation
//! (`Authorization: Bearer <token>`). Sites that verify identities send `identifier` and
//! `identity_hash = hex(HMAC-SHA256(widget secret, identifier))`, compared in constant time.
//!
//! CORS: a response carries the grant for the request's Origin whenever the route accepted
//! that origin, errors included (so the widget can read them); a refused origin
//! (`origin_not_allowed`) gets none, and the browser blocks the response.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE,
    CACHE_CONTROL, CONTENT_TYPE, VARY,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::options;
use axum::Json;
use chatapp::app::AppDeps;
use chatapp::auth::tokens;
use chatapp::chat::turn::{self, TurnOutput, TurnRequest, TurnResponse};
use chatapp::db::TenantTx;
use chatapp::domain::{self, Email};
use chatapp::error::{ErrorBody, ErrorDetail};
use chatapp::ids::{AgentId, ConversationId};
use chatapp::repo::chat::{self as repo, WidgetConfig};
use chatapp::routes;
use chatapp::sealed::SealingKey;
use chatapp::status::{AgentStatus, ConversationStatus};
use chatapp::tenant::{Access, Resource};
use chatapp::web::{header, IdPath, JsonBody, JsonOrEmpty};
use chatapp::{ApiError, TenantCtx};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

/// What this function may do on AWS (a turn queues escalations and outbound events); template.yaml grants exactly this (tests/iam.rs).
pub const AWS: chatapp::adapters::access::AwsAccess = chatapp::adapters::access::AwsAccess {
    s3: false,
    send: &[chatapp::adapters::queue::ESCALATION, chatapp::adapters::queue::OUTBOUND],
    poll: &[],
    email: false,
};

/// The widget's routes with their OpenAPI description. The CORS preflights are routed here
/// too, but not described.
pub fn routes() -> OpenApiRouter<AppDeps> {
    OpenApiRouter::with_openapi(chatapp::web::openapi::base())
        .routes(routes!(config))
        .route("/widget/agents/{agent_id}/config", options(agent_preflight))
        .routes(routes!(start_session))
        .route("/widget/agents/{agent_id}/sessions", options(agent_preflight))
        .routes(routes!(send, history))
        .route("/widget/conversations/{id}/messages", options(conversation_preflight))
        .routes(routes!(end))
        .route("/widget/conversations/{id}/end", options(conversation_preflight))
        .routes(routes!(live::events))
        .route("/widget/conversations/{id}/events", options(conversation_preflight))
        .routes(routes!(live::queue))
        .route("/widget/conversations/{id}/queue", options(conversation_preflight))
        .routes(routes!(live::typing))
        .route("/widget/conversations/{id}/typing", options(conversation_preflight))
        .routes(routes!(live::events_stream))
        .route("/widget/conversations/{id}/events/stream", options(conversation_preflight))
        .routes(routes!(live::handoff))
        .route("/widget/conversations/{id}/handoff", options(conversation_preflight))
        .routes(routes!(live::contact))
        .route("/widget/conversations/{id}/contact", options(conversation_preflight))
}

mod live;

/// The widget's router: its routes with the CORS grant (see the module docs).
pub fn router(deps: AppDeps) -> axum::Router {
    chatapp::web::into_router(routes(), deps).layer(axum::middleware::from_fn(cors))
}

/// Set on a response to a refused origin: it gets no CORS grant.
#[derive(Clone, Copy, Debug)]
struct OriginRefused;

/// Adds the CORS grant for the request's Origin unless the route refused it. Requests without
/// an Origin come from servers, not browsers, and get none.
async fn cors(req: Request, next: Next) -> Response {
    let origin = header(req.headers(), "origin").map(str::to_string);
    let mut response = next.run(req).await;
    let Some(origin) = origin else { return response };
    if response.extensions().get::<OriginRefused>().is_some() {
        return response;
    }
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&origin) {
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    h.insert(VARY, HeaderValue::from_static("Origin"));
    // `last-event-id`: an EventSource reconnecting to the event stream sends it.
    h.insert(
        ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type, accept, last-event-id"),
    );
    h.insert(ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, OPTIONS"));
    h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    response
}

/// The error response of an origin or session check; a refused origin is marked for [`cors`].
fn rejection(e: ApiError) -> Response {
    let refused = matches!(&e, ApiError::Forbidden { code: "origin_not_allowed", .. });
    let mut response = e.into_response();
    if refused {
        response.extensions_mut().insert(OriginRefused);
    }
    response
}

/// An agent route's caller: the agent's company context and widget settings, for a request
/// from an origin the widget admits.
struct AgentWidget {
    ctx: TenantCtx,
    agent: AgentId,
    widget: WidgetConfig,
}

impl FromRequestParts<AppDeps> for AgentWidget {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, deps: &AppDeps) -> Result<Self, Response> {
        let IdPath(agent) =
            IdPath::<AgentId>::from_request_parts(parts, deps).await.map_err(IntoResponse::into_response)?;
        agent_widget(deps, agent, header(&parts.headers, "origin")).await.map_err(rejection)
    }
}

async fn agent_widget(deps: &AppDeps, agent: AgentId, origin: Option<&str>) -> Result<AgentWidget, ApiError> {
    let ctx = deps.auth.widget_ctx(agent.as_uuid()).await?;
    let widget = widget_for(deps, &ctx, agent).await?;
    check_origin(&widget.allowed_domains, origin)?;
    Ok(AgentWidget { ctx, agent, widget })
}

/// A conversation route's caller: a session token for this conversation, from an origin the
/// agent's widget admits.
struct Session {
    ctx: TenantCtx,
    conversation: ConversationId,
    token: String,
}

impl FromRequestParts<AppDeps> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, deps: &AppDeps) -> Result<Self, Response> {
        let IdPath(conversation) =
            IdPath::<ConversationId>::from_request_parts(parts, deps).await.map_err(IntoResponse::into_response)?;
        session(deps, &parts.headers, conversation).await.map_err(rejection)
    }
}

async fn session(deps: &AppDeps, headers: &HeaderMap, conversation: ConversationId) -> Result<Session, ApiError> {
    open_session(deps, headers, conversation, bearer(headers)?).await
}

/// The session `token` opens, checked as every conversation route checks it: for this
/// conversation only, from an origin the agent's widget admits. The event stream also takes the
/// token from its query string (see `live::events_stream`).
async fn open_session(
    deps: &AppDeps,
    headers: &HeaderMap,
    conversation: ConversationId,
    token: &str,
) -> Result<Session, ApiError> {
    let session = deps.auth.session_ctx(token).await?;
    // A token opens its own conversation only; another one is indistinguishable from unknown.
    if session.conversation_id != conversation.as_uuid() {
        return Err(invalid_session());
    }
    session.ctx.authorize(Resource::Messages, Access::Write)?;
    check_origin(&session.allowed_domains, header(headers, "origin"))?;
    Ok(Session { ctx: session.ctx, conversation, token: token.to_string() })
}

fn invalid_session() -> ApiError {
    ApiError::unauthorized("invalid_session", "the session token is missing, wrong or expired")
}

fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    header(headers, "authorization")
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(invalid_session)
}

/// Preflight of an agent route: 204 for an origin the agent's widget admits.
async fn agent_preflight(_: AgentWidget) -> StatusCode {
    StatusCode::NO_CONTENT
}

/// Preflight of a conversation route: it carries no credentials, so it is answered for any
/// origin; the real request is checked in full.
async fn conversation_preflight(IdPath(_): IdPath<ConversationId>) -> StatusCode {
    StatusCode::NO_CONTENT
}

async fn widget_for(deps: &AppDeps, ctx: &TenantCtx, agent: AgentId) -> Result<WidgetConfig, ApiError> {
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(ctx).await?;
    let w = repo::widget_config(&tx, company, agent.as_uuid()).await.map_err(ApiError::from);
    Ok(tx.finish(w).await?.unwrap_or_default())
}

/// The Origin must be one of the widget's `allowed_domains` (`example.com` also admits its
/// subdomains; `*` admits any) when the list is set. Requests without an Origin come from
/// servers, not browsers, and are let through.
fn check_origin(allowed_domains: &[String], origin: Option<&str>) -> Result<(), ApiError> {
    let Some(origin) = origin else { return Ok(()) };
    if allowed_domains.is_empty() || origin_allowed(allowed_domains, origin) {
        return Ok(());
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

/// What the embedding page needs to show the widget.
#[derive(Serialize, ToSchema)]
struct WidgetSettings {
    agent_id: Uuid,
    widget: WidgetConfig,
    /// Where to send chat turns so the answer streams (unset: the API base).
    stream_url: Option<String>,
    human_handoff: HumanHandoff,
}

/// Whether the customer may choose a person instead of the AI, and whether one can be had now.
#[derive(Serialize, ToSchema)]
struct HumanHandoff {
    /// The widget offers "Talk to a person" (`POST /widget/conversations/{id}/handoff`).
    enabled: bool,
    /// Within the agent's business hours (always, without a schedule): asking queues the
    /// conversation for a support agent. Outside them the customer can leave an email and a
    /// message (`POST /widget/conversations/{id}/contact`).
    open_now: bool,
}

/// The widget's settings for an agent.
#[utoipa::path(get, path = "/widget/agents/{agent_id}/config", tag = "widget",
    params(("agent_id" = Uuid, Path, description = "Agent id")),
    responses((status = 200, description = "The widget's settings", body = WidgetSettings)))]
async fn config(State(deps): State<AppDeps>, IdPath(agent): IdPath<AgentId>, headers: HeaderMap) -> Response {
    match settings(&deps, agent, header(&headers, "origin")).await {
        Ok(settings) => Json(settings).into_response(),
        Err(e) => rejection(e),
    }
}

/// The settings, checked as [`AgentWidget`] checks an agent route's caller, with the agent's
/// business hours read in the same transaction as the widget's settings.
async fn settings(deps: &AppDeps, agent: AgentId, origin: Option<&str>) -> Result<WidgetSettings, ApiError> {
    let ctx = deps.auth.widget_ctx(agent.as_uuid()).await?;
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let read = async {
        let widget = repo::widget_config(&tx, company, agent.as_uuid()).await?.unwrap_or_default();
        let row = repo::agent(&tx, company, agent.as_uuid()).await?;
        Ok::<_, ApiError>((widget, row))
    }
    .await;
    let (widget, row) = tx.finish(read).await?;
    check_origin(&widget.allowed_domains, origin)?;
    let open_now = row.is_none_or(|a| live::closed_hours(&a.hours, Utc::now()).is_none());
    Ok(WidgetSettings {
        agent_id: agent.as_uuid(),
        human_handoff: HumanHandoff { enabled: widget.human_handoff_button, open_now },
        widget,
        stream_url: deps.cfg.widget_stream_url.clone(),
    })
}

/// Who the customer is; all fields optional.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct StartSessionBody {
    name: Option<String>,
    #[schema(value_type = Option<String>, format = Email)]
    email: Option<Email>,
    /// The site's id for the customer; linked to a customer record only when verified.
    identifier: Option<String>,
    /// `hex(HMAC-SHA256(widget secret, identifier))`.
    identity_hash: Option<String>,
    /// Anything the site wants stored with the conversation: a JSON object of at most 4 KB.
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
}

/// A conversation just started, with the token that opens it.
#[derive(Serialize, ToSchema)]
struct SessionStarted {
    conversation_id: Uuid,
    customer_id: Uuid,
    /// `Authorization: Bearer <session_token>` on the conversation's routes.
    session_token: String,
    /// The identity was verified.
    verified: bool,
    welcome_message: Option<String>,
}

/// Start a conversation: a session token for it.
#[utoipa::path(post, path = "/widget/agents/{agent_id}/sessions", tag = "widget",
    params(("agent_id" = Uuid, Path, description = "Agent id")),
    request_body(content = Option<StartSessionBody>, description = "Optional; an empty body starts an anonymous session"),
    responses((status = 201, description = "The conversation and its session token", body = SessionStarted)))]
async fn start_session(
    State(deps): State<AppDeps>,
    w: AgentWidget,
    JsonOrEmpty(body): JsonOrEmpty<StartSessionBody>,
) -> Result<(StatusCode, Json<SessionStarted>), ApiError> {
    let AgentWidget { ctx, agent, widget } = w;
    let company = ctx.require_company()?.as_uuid();
    let name = domain::optional_text("name", body.name.as_deref(), 255)?;
    let email = body.email;
    let identifier = domain::optional_text("identifier", body.identifier.as_deref(), 255)?;
    let metadata = body.metadata.unwrap_or_else(|| json!({}));
    if !metadata.is_object() || metadata.to_string().len() > 4096 {
        return Err(ApiError::validation("metadata must be a JSON object of at most 4 KB"));
    }
    let identity_hash = body.identity_hash;
    if identifier.is_none() && identity_hash.is_some() {
        return Err(ApiError::validation("identity_hash needs an identifier"));
    }
    let token = format!("cs_{}", tokens::random_secret());
    let tx = deps.db.begin(&ctx).await?;
    let created = async {
        // Identity verification, before anything is written: mandatory when the widget requires
        // it (401 `identity_required` without an identifier and hash), checked whenever sent
        // (401 `identity_invalid` on a mismatch, compared in constant time). The secret is read
        // here because opening the sealed one needs the configuration row's id.
        let verified = match (identifier.as_deref(), identity_hash.as_deref()) {
            (Some(id), Some(hash)) => {
                let secret = identity_secret(&deps, &tx, company, agent, &widget)
                    .await?
                    .ok_or_else(|| ApiError::validation("this chat does not verify identities"))?;
                if !chatapp::channels::hmac_sha256_hex_matches(&secret, &[id.as_bytes()], hash) {
                    return Err(ApiError::unauthorized("identity_invalid", "the identity hash does not match"));
                }
                true
            }
            _ => false,
        };
        if widget.require_identity && !verified {
            return Err(ApiError::unauthorized("identity_required", "this chat requires a verified identity"));
        }
        let agent_row = repo::agent(&tx, company, agent.as_uuid()).await?.ok_or(ApiError::NotFound)?;
        if agent_row.status != AgentStatus::Active {
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
                agent_id: agent.as_uuid(),
                token_hash: &tokens::sha256_hex(&token),
                channel: "web",
                customer_id: customer,
                customer_name: name.as_deref(),
                customer_email: email.as_ref().map(Email::as_str),
                metadata: &json!({"verified": verified, "identifier": external, "site": metadata}),
            },
        )
        .await?;
        Ok::<_, ApiError>((id, customer, verified))
    }
    .await;
    let (conversation_id, customer_id, verified) = tx.finish(created).await?;
    Ok((
        StatusCode::CREATED,
        Json(SessionStarted {
            conversation_id,
            customer_id,
            session_token: token,
            verified,
            welcome_message: widget.welcome_message,
        }),
    ))
}

/// The key sites sign identities with: the sealed secret the agent-widgets function generates
/// (`POST /admin/agents/{id}/widget/identity-secret`, migration 0022), opened with the company
/// and the configuration row it is bound to; for a widget that has none, the clear-text
/// `identity_secret` set before 0022 (generating a sealed one clears it). `None`: no secret.
async fn identity_secret(
    deps: &AppDeps,
    tx: &TenantTx,
    company: Uuid,
    agent: AgentId,
    widget: &WidgetConfig,
) -> Result<Option<Vec<u8>>, ApiError> {
    match chatapp::repo::widget_configs::identity_secret(tx, company, agent.as_uuid()).await? {
        Some((row, sealed)) => SealingKey::new(deps.cfg.secrets_key.expose())
            .open(company, row, &sealed)
            .map(Some)
            .map_err(ApiError::internal),
        None => Ok(widget.identity_secret.as_ref().map(|s| s.as_bytes().to_vec())),
    }
}

/// What the running turn reports to the response.
enum Progress {
    Delta(String),
    Done(Box<Result<TurnOutput, ApiError>>),
}

/// The chat turn. With `Accept: text/event-stream` the answer streams as server-sent events:
/// `delta` (`{"text"}`) pieces, then `escalated` (if the turn escalated) and `done` (the whole
/// result), or `error` (`{"error": {"code", "message"}}`) if the turn fails after it started.
#[utoipa::path(post, path = "/widget/conversations/{id}/messages", tag = "widget", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id")), request_body = TurnRequest,
    responses((status = 200, description = "The stored message and the answer, whole or as server-sent events",
        content((TurnResponse = "application/json"), (String = "text/event-stream")))))]
async fn send(
    State(deps): State<AppDeps>,
    session: Session,
    headers: HeaderMap,
    JsonBody(body): JsonBody<TurnRequest>,
) -> Result<Response, ApiError> {
    let Session { ctx, conversation, .. } = session;
    let input = turn::validate(&body.content, body.client_message_id.as_deref())?;
    if !header(&headers, "accept").is_some_and(|a| a.contains("text/event-stream")) {
        let mut ignore = |_: &str| {};
        let out = turn::turn(&deps, &ctx, conversation.as_uuid(), &input, &mut ignore).await?;
        return Ok(Json(TurnResponse::from(out)).into_response());
    }
    // The turn runs on its own task; the response starts with its first piece of text. Errors
    // before that (limits, closed conversation, ...) are still ordinary JSON 4xx responses.
    let (progress, mut updates) = tokio::sync::mpsc::unbounded_channel::<Progress>();
    tokio::spawn(async move {
        let deltas = progress.clone();
        let mut sink = |d: &str| {
            let _ = deltas.send(Progress::Delta(d.to_string()));
        };
        let result = turn::turn(&deps, &ctx, conversation.as_uuid(), &input, &mut sink).await;
        let _ = progress.send(Progress::Done(Box::new(result)));
    });
    let (frames, events) = tokio::sync::mpsc::unbounded_channel::<String>();
    match updates.recv().await {
        None => return Err(ApiError::internal("the chat turn ended without a result")),
        Some(Progress::Done(result)) => {
            let out = (*result)?;
            let _ = frames.send(finished_turn_frames(out));
        }
        Some(Progress::Delta(first)) => {
            let _ = frames.send(delta_frame(&first));
            tokio::spawn(async move {
                while let Some(update) = updates.recv().await {
                    let text = match update {
                        Progress::Delta(d) => delta_frame(&d),
                        Progress::Done(result) => match *result {
                            Ok(out) => closing_frames(out),
                            Err(e) => error_frame(&e),
                        },
                    };
                    if frames.send(text).is_err() {
                        break; // the client went away; the turn still completes and is stored
                    }
                }
            });
        }
    }
    let stream = futures_util::stream::unfold(events, |mut events| async move {
        let next = events.recv().await?;
        Some((Ok::<_, Infallible>(next), events))
    });
    Ok((
        [(CONTENT_TYPE, "text/event-stream"), (CACHE_CONTROL, "no-cache")],
        [("x-accel-buffering", "no")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// One server-sent event.
fn frame(name: &str, data: &impl Serialize) -> String {
    let data = serde_json::to_string(data).expect("event data serialises");
    format!("event: {name}\ndata: {data}\n\n")
}

/// A piece of the answer.
#[derive(Serialize)]
struct Delta<'a> {
    text: &'a str,
}

fn delta_frame(text: &str) -> String {
    frame("delta", &Delta { text })
}

/// After the text: the escalation (if any), then the whole result.
fn closing_frames(out: TurnOutput) -> String {
    let mut s = String::new();
    if let Some(e) = &out.escalation {
        s.push_str(&frame("escalated", e));
    }
    s.push_str(&frame("done", &TurnResponse::from(out)));
    s
}

/// A turn that failed after its answer started: the error as an `error` event.
fn error_frame(e: &ApiError) -> String {
    if let ApiError::Internal(cause) = e {
        tracing::error!(error.chain = %chatapp::error::error_chain(cause.as_ref()), "chat turn failed mid-stream");
    }
    frame("error", &ErrorBody { error: ErrorDetail { code: e.code().to_string(), message: e.to_string() } })
}

/// Server-sent events of a turn that finished before any text streamed: the reply (the stored
/// one for a replayed send) as one piece, then the closing frames.
fn finished_turn_frames(out: TurnOutput) -> String {
    let mut s = String::new();
    if let Some(r) = &out.reply {
        s.push_str(&delta_frame(&r.content));
    }
    s.push_str(&closing_frames(out));
    s
}

/// A message as the customer sees it.
#[derive(Serialize, ToSchema)]
struct WidgetMessage {
    id: Uuid,
    /// `user`, `assistant` or `human_agent`.
    role: String,
    content: String,
    created_at: DateTime<Utc>,
    /// The sources an answer cites (`[]` for others).
    #[schema(value_type = Vec<Object>)]
    citations: Value,
}

/// The conversation's messages, oldest first.
#[derive(Serialize, ToSchema)]
struct WidgetHistory {
    conversation_id: Uuid,
    messages: Vec<WidgetMessage>,
}

/// The conversation's history (its last 200 messages, with the system's notices such as an
/// agent joining; internal notes and tool traffic are left out).
#[utoipa::path(get, path = "/widget/conversations/{id}/messages", tag = "widget", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id")),
    responses((status = 200, description = "The messages", body = WidgetHistory)))]
async fn history(State(deps): State<AppDeps>, session: Session) -> Result<Json<WidgetHistory>, ApiError> {
    let Session { ctx, conversation, .. } = session;
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let messages = repo::history(&tx, company, conversation.as_uuid(), 200).await.map_err(ApiError::from);
    let messages = tx.finish(messages).await?;
    // Internal notes and tool traffic stay internal.
    let visible = messages
        .into_iter()
        .filter(|m| matches!(m.role.as_str(), "user" | "assistant" | "human_agent" | "system"))
        .map(|m| WidgetMessage {
            citations: m.metadata.get("citations").cloned().unwrap_or_else(|| Value::Array(Vec::new())),
            id: m.id,
            role: m.role,
            content: m.content,
            created_at: m.created_at,
        })
        .collect();
    Ok(Json(WidgetHistory { conversation_id: conversation.as_uuid(), messages: visible }))
}

/// The customer's rating of the conversation; both fields optional.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct EndConversationBody {
    /// 1-5.
    #[schema(minimum = 1, maximum = 5)]
    rating: Option<i32>,
    /// At most 2000 characters.
    comment: Option<String>,
}

/// A conversation just ended.
#[derive(Serialize, ToSchema)]
struct ConversationEnded {
    conversation_id: Uuid,
    /// Always `resolved`.
    status: ConversationStatus,
    rating: Option<i32>,
}

/// End the conversation, with an optional CSAT rating; its session token stops working.
#[utoipa::path(post, path = "/widget/conversations/{id}/end", tag = "widget", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id")),
    request_body(content = Option<EndConversationBody>, description = "Optional; an empty body ends it unrated"),
    responses((status = 200, description = "The conversation ended", body = ConversationEnded)))]
async fn end(
    State(deps): State<AppDeps>,
    session: Session,
    JsonOrEmpty(body): JsonOrEmpty<EndConversationBody>,
) -> Result<Json<ConversationEnded>, ApiError> {
    let Session { ctx, conversation, token } = session;
    if body.rating.is_some_and(|r| !(1..=5).contains(&r)) {
        return Err(ApiError::validation("rating must be 1-5"));
    }
    let comment = domain::optional_text("comment", body.comment.as_deref(), 2000)?;
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let ended = repo::end_conversation(&tx, company, conversation.as_uuid(), body.rating, comment.as_deref())
        .await
        .map_err(ApiError::from);
    tx.finish(ended).await?;
    // Closing a handoff wrote a drain job and events (capacity freed).
    chatapp::outbox::relay_now(&deps, chatapp::chat::turn::RELAY).await;
    deps.auth.forget_session(&token);
    Ok(Json(ConversationEnded {
        conversation_id: conversation.as_uuid(),
        status: ConversationStatus::Resolved,
        rating: body.rating,
    }))
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
