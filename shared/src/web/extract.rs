//! Extractors: a request is parsed into typed values before a handler runs, and every
//! failure is the JSON error with its status.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::{header, ApiState, RequestMeta};
use crate::error::ApiError;
use crate::tenant::TenantCtx;

/// The authenticated caller (`Authorization: Bearer <access token | API key>`), acting for
/// `?company_id=` when a master admin names one. Only auth code builds a `TenantCtx`; this is
/// how a handler gets one.
pub struct Tenant(pub TenantCtx);

impl<S: ApiState> FromRequestParts<S> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let acting_for = company_param(parts.uri.query())?;
        let meta = RequestMeta::from_parts(parts);
        let ctx = state.auth().authenticate(header(&parts.headers, "authorization"), &meta).await?;
        Ok(Tenant(ctx.acting_for(acting_for)))
    }
}

fn company_param(query: Option<&str>) -> Result<Option<uuid::Uuid>, ApiError> {
    let Some(query) = query else { return Ok(None) };
    match url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "company_id") {
        None => Ok(None),
        Some((_, v)) => {
            uuid::Uuid::parse_str(&v).map(Some).map_err(|_| ApiError::validation("company_id must be a UUID"))
        }
    }
}

/// A JSON body of type `T`, at most the state's `max_body_bytes`. Malformed JSON is
/// `invalid_json`; well-formed JSON of the wrong shape is `validation_failed` naming the field.
pub struct JsonBody<T>(pub T);

impl<S: ApiState, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = read_body(req, state.max_body_bytes()).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// The body's bytes, refused past `limit`.
pub async fn read_body(req: Request, limit: usize) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(req.into_body(), limit).await.map_err(|e| {
        if std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>()) {
            ApiError::PayloadTooLarge { limit }
        } else {
            ApiError::bad_request("invalid_body", "the request body could not be read")
        }
    })
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("invalid_json", "request body must be a JSON object"));
    }
    // Syntax first, so malformed JSON is told apart from well-formed JSON of the wrong shape.
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("request body is not valid JSON: {e}")))?;
    // PostgreSQL text cannot hold NUL; refuse it here rather than fail at the insert.
    if bytes.windows(6).any(|w| w == b"\\u0000") {
        return Err(ApiError::validation("request body: strings must not contain NUL (\\u0000)"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| path_error("", e))
}

/// A JSON value (a nested part of a body, such as a channel's credentials) as `T`; a 400 names
/// the bad field under `prefix` (`credentials.app_secret: missing field ...`).
pub fn from_value<T: DeserializeOwned>(prefix: &str, value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| path_error(prefix, e))
}

/// `<path>: <what serde said>`; the root is "request body" (or the prefix).
fn path_error<E: std::fmt::Display>(prefix: &str, e: serde_path_to_error::Error<E>) -> ApiError {
    let path = e.path().to_string();
    let field = match (prefix, path.as_str()) {
        ("", ".") => "request body".to_string(),
        (p, ".") => p.to_string(),
        ("", path) => path.to_string(),
        (p, path) => format!("{p}.{path}"),
    };
    ApiError::validation(format!("{field}: {}", without_value(&e.inner().to_string())))
}

/// serde quotes the offending value of a wrong type (`invalid type: integer `123`, expected a
/// string`); the field may hold a secret given the wrong way, so the value is left out.
fn without_value(message: &str) -> String {
    if !(message.starts_with("invalid type: ") || message.starts_with("invalid value: ")) {
        return message.to_string();
    }
    match (message.find(" `"), message.find("`, ")) {
        (Some(start), Some(end)) if end > start => format!("{}{}", &message[..start], &message[end + 1..]),
        _ => message.to_string(),
    }
}

/// Path parameters; a value that does not parse (not a UUID, say) cannot name a row: 404.
pub struct IdPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for IdPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| IdPath(p.0))
            .map_err(|_| ApiError::NotFound)
    }
}

/// Query parameters of type `T`; a bad value is `validation_failed` naming it.
pub struct Query<T>(pub T);

/// A `true` / `false` query parameter (`?active=true`); anything else is `validation_failed`
/// naming it.
pub fn bool_param(name: &str, value: Option<&str>) -> Result<Option<bool>, ApiError> {
    match value {
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(ApiError::validation(format!("{name} must be true or false"))),
        None => Ok(None),
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        serde_urlencoded_from_str(query).map(Query)
    }
}

fn serde_urlencoded_from_str<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    // PostgreSQL text cannot hold NUL: a filter carrying one is refused here, for every route,
    // instead of failing as a database error.
    if let Some((k, _)) =
        url::form_urlencoded::parse(query.as_bytes()).find(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        return Err(ApiError::validation(format!("query: {k} must not contain NUL characters")));
    }
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{query}").parse().map_err(|_| ApiError::validation("bad query string"))?,
    )
    .map(|q| q.0)
    .map_err(|e| {
        ApiError::validation(format!(
            "query: {}",
            std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_else(|| e.to_string())
        ))
    })
}

/// A JSON body that may be absent: an empty body is `T::default()`, anything else is parsed
/// as `JsonBody` parses it.
pub struct JsonOrEmpty<T>(pub T);

impl<S: ApiState, T: DeserializeOwned + Default> FromRequest<S> for JsonOrEmpty<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = read_body(req, state.max_body_bytes()).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonOrEmpty(T::default()));
        }
        parse_json(&bytes).map(JsonOrEmpty)
    }
}
