//! `email` function: the Email (Amazon SES inbound through SNS) webhook. It verifies the SNS signature
//! (SignatureVersion 2, the signing certificate from an AWS host), confirms the subscription, reads the message
//! (inline or from the company's prefix of the bucket) and stores it once (by `Message-ID`), threaded by
//! `References` / `In-Reply-To`; then the `channel-worker` answers through the same chat turn as the widget, and
//! the `channel-sender` delivers the reply. Nothing is stored for a request that fails verification.

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

/// What this function may do on AWS (relays the turn jobs it stores, reads inbound mail from
/// the bucket); template.yaml grants exactly this (tests/iam.rs).
pub const AWS: chatapp::adapters::access::AwsAccess = chatapp::adapters::access::AwsAccess {
    s3: true,
    send: &[chatapp::adapters::queue::CHANNEL_TURN],
    poll: &[],
    email: false,
};

pub fn routes() -> OpenApiRouter<AppDeps> {
    OpenApiRouter::with_openapi(chatapp::web::openapi::base()).routes(routes!(receive))
}

/// A SNS delivery: verified on the exact bytes received, split into its messages, each stored
/// once and answered once.
#[utoipa::path(post, path = "/channels/email/{config_id}", tag = "channels",
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
    crate::channel_webhook::handle(&deps, ChannelKind::Email, &config_id, Method::POST, query, headers, body).await
}
