//! `instagram` function: the Instagram Messaging webhook. It answers Meta's GET handshake, verifies `X-Hub-
//! Signature-256` over the raw body, drops echoes, and stores every message once (by `mid`); then the `channel-
//! worker` answers through the same chat turn as the widget, and the `channel-sender` delivers the reply. Nothing
//! is stored for a request that fails verification.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use chatapp::app::AppDeps;
use chatapp::channels::ChannelKind;
use chatapp::error::ErrorBody;
use chatapp::routes;
use utoipa_axum::router::OpenApiRouter;

use crate::channel_webhook::WebhookAck;

/// What this function may do on AWS (relays the turn jobs it stores); template.yaml grants
/// exactly this (tests/iam.rs).
pub const AWS: chatapp::adapters::access::AwsAccess = chatapp::adapters::access::AwsAccess {
    s3: false,
    send: &[chatapp::adapters::queue::CHANNEL_TURN],
    poll: &[],
    email: false,
};

pub fn routes() -> OpenApiRouter<AppDeps> {
    OpenApiRouter::with_openapi(chatapp::web::openapi::base()).routes(routes!(handshake, receive))
}

/// Meta's verification handshake: echoes `hub.challenge` when `hub.verify_token` is the one
/// shown when the channel was created.
#[utoipa::path(get, path = "/channels/instagram/{config_id}", tag = "channels",
    params(("config_id" = Uuid, Path, description = "Channel configuration id"),
           ("hub.mode" = String, Query, description = "subscribe"),
           ("hub.verify_token" = String, Query, description = "The configuration's verify token"),
           ("hub.challenge" = String, Query, description = "Echoed back")),
    responses(
        (status = 200, description = "The challenge", content_type = "text/plain", body = String),
        (status = 403, description = "Wrong verify token", body = ErrorBody),
        (status = 404, description = "No such (enabled) configuration", body = ErrorBody)))]
async fn handshake(
    State(deps): State<AppDeps>,
    Path(config_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    crate::channel_webhook::handle(&deps, ChannelKind::Instagram, &config_id, Method::GET, query, headers, Bytes::new())
        .await
}

/// A Meta delivery: verified on the exact bytes received, split into its messages, each stored
/// once and answered once.
#[utoipa::path(post, path = "/channels/instagram/{config_id}", tag = "channels",
    params(("config_id" = Uuid, Path, description = "Channel configuration id")),
    request_body(content = String, description = "The provider's payload, exactly as sent"),
    responses(
        (status = 200, description = "Accepted", body = WebhookAck),
        (status = 400, description = "Authentic but unreadable", body = ErrorBody),
        (status = 401, description = "Missing credentials", body = ErrorBody),
        (status = 403, description = "Signature or token wrong", body = ErrorBody),
        (status = 404, description = "No such (enabled) configuration", body = ErrorBody)))]
async fn receive(
    State(deps): State<AppDeps>,
    Path(config_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    crate::channel_webhook::handle(&deps, ChannelKind::Instagram, &config_id, Method::POST, query, headers, body).await
}
