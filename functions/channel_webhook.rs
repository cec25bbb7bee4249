//! What the seven channel webhook functions share: the raw request handed to
//! `chatapp::channels::webhook` and its answer. Each function keeps its own routes (and so its
//! own paths in `template.yaml` and the OpenAPI document); the body is taken as bytes, never
//! parsed and re-serialised before the signature check (lambda_http has already decoded a
//! base64 body that API Gateway marked `isBase64Encoded`).

use axum::body::Bytes;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chatapp::app::AppDeps;
use chatapp::channels::webhook::{self, Received};
use chatapp::channels::{ChannelKind, RawRequest};
use chatapp::ApiError;
use serde::Serialize;
use utoipa::ToSchema;

/// What a webhook delivery amounted to.
#[derive(Serialize, ToSchema)]
pub struct WebhookAck {
    /// New customer messages stored (each answered once).
    pub stored: usize,
    /// Messages already stored by an earlier delivery: nothing written.
    pub duplicates: usize,
    /// Status updates, echoes, bot messages and events not handled.
    pub ignored: usize,
    /// Delivery receipts applied to sent replies.
    pub receipts: usize,
}

/// One webhook request for the configuration in the path (an id that is not a uuid is simply
/// not found).
pub async fn handle(
    deps: &AppDeps,
    kind: ChannelKind,
    config_id: &str,
    method: Method,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(config) = uuid::Uuid::parse_str(config_id) else {
        return ApiError::NotFound.into_response();
    };
    let req = RawRequest { method: &method, headers: &headers, query: query.as_deref(), body: &body };
    match webhook::receive(deps, kind, config, req, chrono::Utc::now().timestamp()).await {
        Ok(Received::Challenge(challenge)) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], challenge).into_response()
        }
        Ok(Received::Accepted(c)) => {
            Json(WebhookAck { stored: c.stored, duplicates: c.duplicates, ignored: c.ignored, receipts: c.receipts })
                .into_response()
        }
        Err(e) => e.into_response(),
    }
}
