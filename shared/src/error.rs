//! The one JSON error shape every route answers with: `{"error":{"code":..,"message":..}}`.

use http::StatusCode;

/// An error a handler returns. Client errors carry a stable code and a readable message;
/// `Internal` keeps its cause for the log and answers an opaque 500.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("request body exceeds {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// 413 with a specific code and message (e.g. a file over the plan's size limit).
    #[error("{message}")]
    TooLarge { code: &'static str, message: String },
    #[error("{message}")]
    PaymentRequired { code: &'static str, message: String },
    #[error("{message}")]
    TooManyRequests { message: String, retry_after_secs: u64 },
    /// 503: no capacity right now (the database pool is exhausted); safe to retry.
    #[error("the service is busy; try again shortly")]
    Busy,
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest { code, message: message.into() }
    }
    pub fn validation(message: impl Into<String>) -> Self {
        Self::bad_request("validation_failed", message)
    }
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::Unauthorized { code, message: message.into() }
    }
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::Forbidden { code, message: message.into() }
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict { code, message: message.into() }
    }
    /// `e` as the 409 `code` when it is a unique violation (the constraint stays in the log, as
    /// in `From<DbError>`), else as any database error.
    pub fn conflict_if_unique(e: crate::db::DbError, code: &'static str, message: &str) -> Self {
        if e.unique_violation().is_some() {
            Self::conflict(code, message)
        } else {
            e.into()
        }
    }
    pub fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(e.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } | Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::PaymentRequired { .. } => StatusCode::PAYMENT_REQUIRED,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. }
            | Self::Unauthorized { code, .. }
            | Self::Forbidden { code, .. }
            | Self::Conflict { code, .. }
            | Self::PaymentRequired { code, .. }
            | Self::TooLarge { code, .. } => code,
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::TooManyRequests { .. } => "rate_limited",
            Self::Busy => "busy",
            Self::Internal(_) => "internal_error",
        }
    }
}

/// The error body every route answers with.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable, e.g. `validation_failed`, `not_found`.
    pub code: String,
    /// Readable; names the offending field where there is one.
    pub message: String,
}

/// Renders the JSON error; internal causes are logged with their whole chain, never sent.
impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        if let Self::Internal(cause) = &self {
            tracing::error!(error.chain = %error_chain(cause.as_ref()), "request failed");
        }
        let status = self.status();
        let body = ErrorBody { error: ErrorDetail { code: self.code().to_string(), message: self.to_string() } };
        let mut response = (status, axum::Json(body)).into_response();
        if let Self::TooManyRequests { retry_after_secs, .. } = &self {
            response.headers_mut().insert("retry-after", http::HeaderValue::from(*retry_after_secs));
        }
        response
    }
}

/// `outer: inner: root` for logs.
/// A cause already spelled out by its wrapper (reqwest and the AWS SDK often repeat it) is not
/// repeated.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

/// Adapter failures are infrastructure failures: an opaque 500, the cause logged.
impl From<crate::adapters::queue::QueueError> for ApiError {
    fn from(e: crate::adapters::queue::QueueError) -> Self {
        Self::Internal(Box::new(e))
    }
}

impl From<crate::adapters::blob::BlobError> for ApiError {
    fn from(e: crate::adapters::blob::BlobError) -> Self {
        Self::Internal(Box::new(e))
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> Self {
        match e.unique_violation() {
            // The constraint's name is schema detail: logged, not sent.
            Some(constraint) => {
                tracing::info!(constraint, "unique violation");
                Self::conflict("already_exists", "a record with the same unique value already exists")
            }
            None if e.is_busy() => {
                tracing::warn!(error = %error_chain(&e), "database pool busy");
                Self::Busy
            }
            None => Self::Internal(Box::new(e)),
        }
    }
}
