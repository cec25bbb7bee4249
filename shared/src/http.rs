//! Request parsing and response helpers shared by every HTTP function.

use std::collections::HashMap;
use std::net::IpAddr;

use http::StatusCode;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use crate::error::ApiError;

pub type HandlerResult = Result<Response<Body>, ApiError>;

/// Set by the local runner: the peer address API Gateway would report as `sourceIp`.
#[derive(Clone, Copy, Debug)]
pub struct LocalPeer(pub IpAddr);

/// Who sent the request, for audit rows, allowlists and rate limits.
#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl RequestMeta {
    pub fn from_request(req: &Request) -> Self {
        Self { ip: client_ip(req), user_agent: header(req, "user-agent").map(|s| truncate(s, 500)) }
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// The caller's address as API Gateway saw it. Forwarding headers are ignored: a client can
/// set them to anything.
pub fn client_ip(req: &Request) -> Option<IpAddr> {
    let from_context = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.clone(),
        Some(RequestContext::ApiGatewayV1(ctx)) => ctx.identity.source_ip.clone(),
        _ => None,
    };
    from_context.and_then(|s| s.parse().ok()).or_else(|| req.extensions().get::<LocalPeer>().map(|p| p.0))
}

pub fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

pub fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    }
}

/// Parses a JSON body into `T`, enforcing the size limit. Unknown fields are the type's
/// business (`deny_unknown_fields` where it matters).
pub fn parse_json<T: DeserializeOwned>(req: &Request, limit: usize) -> Result<T, ApiError> {
    let bytes = body_bytes(req);
    if bytes.len() > limit {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    if bytes.is_empty() {
        return Err(ApiError::bad_request("invalid_json", "request body must be a JSON object"));
    }
    // Syntax first, so malformed JSON is told apart from well-formed JSON of the wrong shape.
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("request body is not valid JSON: {e}")))?;
    serde_json::from_slice(bytes).map_err(|e| ApiError::validation(format!("request body: {e}")))
}

pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(serde_json::to_string(value).expect("response serialises")))
        .expect("static response parts are valid")
}

pub fn ok<T: Serialize>(value: &T) -> HandlerResult {
    Ok(json(StatusCode::OK, value))
}

pub fn created<T: Serialize>(value: &T) -> HandlerResult {
    Ok(json(StatusCode::CREATED, value))
}

pub fn no_content() -> HandlerResult {
    Ok(Response::builder().status(StatusCode::NO_CONTENT).body(Body::Empty).expect("static response parts are valid"))
}

pub fn query_map(req: &Request) -> HashMap<String, String> {
    req.uri().query().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
}

/// `?limit=&offset=`; limit defaults to 50 and is capped at 100.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

pub const MAX_PAGE_SIZE: i64 = 100;

impl Page {
    pub fn from_request(req: &Request) -> Result<Self, ApiError> {
        let q = query_map(req);
        let limit = match q.get("limit") {
            None => 50,
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
                .ok_or_else(|| ApiError::validation(format!("limit must be 1..={MAX_PAGE_SIZE}")))?,
        };
        let offset = match q.get("offset") {
            None => 0,
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| ApiError::validation("offset must be a non-negative integer"))?,
        };
        Ok(Self { limit, offset })
    }
}

#[derive(Serialize)]
pub struct Paged<T: Serialize> {
    pub items: Vec<T>,
    pub limit: i64,
    pub offset: i64,
    pub total: i64,
}

/// Path segments after `prefix` (e.g. `/admin/companies`), or `None` if the path is elsewhere.
pub fn segments_after<'a>(path: &'a str, prefix: &str) -> Option<Vec<&'a str>> {
    let rest = path.strip_prefix(prefix)?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    Some(rest.split('/').filter(|s| !s.is_empty()).collect())
}

/// A path id; anything that is not a UUID cannot name a row, so it is a 404.
pub fn path_id(segment: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(segment).map_err(|_| ApiError::NotFound)
}

/// `?company_id=` for master admins acting on one company.
pub fn company_param(req: &Request) -> Result<Option<Uuid>, ApiError> {
    match query_map(req).get("company_id") {
        None => Ok(None),
        Some(v) => Uuid::parse_str(v).map(Some).map_err(|_| ApiError::validation("company_id must be a UUID")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments() {
        assert_eq!(segments_after("/admin/companies", "/admin/companies"), Some(vec![]));
        assert_eq!(segments_after("/admin/companies/abc/suspend", "/admin/companies"), Some(vec!["abc", "suspend"]));
        assert_eq!(segments_after("/admin/companiesx", "/admin/companies"), None);
    }

    #[test]
    fn page_limits() {
        let req: Request = http::Request::builder().uri("/x?limit=500").body(Body::Empty).unwrap();
        assert!(Page::from_request(&req).is_err());
        let req: Request = http::Request::builder().uri("/x?limit=10&offset=20").body(Body::Empty).unwrap();
        assert_eq!(Page::from_request(&req).unwrap(), Page { limit: 10, offset: 20 });
    }
}
