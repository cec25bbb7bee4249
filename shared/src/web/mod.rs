//! The HTTP layer shared by every function: extractors that parse requests into typed values
//! at the edge (tenant, JSON body, path ids, query, paging, caller metadata), response helpers,
//! and the pieces of the OpenAPI document every function shares.

mod extract;
pub mod openapi;
pub mod routes;

use std::net::IpAddr;

use axum::http::request::Parts;
use axum::http::HeaderMap;
use lambda_http::request::RequestContext;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub use extract::{bool_param, from_value, parse_json, read_body, IdPath, JsonBody, JsonOrEmpty, Query, Tenant};

use crate::auth::Auth;
use crate::error::ApiError;

/// What the extractors need from a function's state.
pub trait ApiState: Clone + Send + Sync + 'static {
    fn auth(&self) -> &Auth;
    /// The largest JSON body accepted, in bytes.
    fn max_body_bytes(&self) -> usize;
}

impl ApiState for crate::app::Core {
    fn auth(&self) -> &Auth {
        &self.auth
    }
    fn max_body_bytes(&self) -> usize {
        self.cfg.max_body_bytes
    }
}

impl ApiState for crate::app::AppDeps {
    fn auth(&self) -> &Auth {
        &self.auth
    }
    fn max_body_bytes(&self) -> usize {
        self.cfg.max_body_bytes
    }
}

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
    pub fn from_parts(parts: &Parts) -> Self {
        Self {
            ip: client_ip(parts),
            user_agent: header(&parts.headers, "user-agent").map(|s| s.chars().take(500).collect()),
        }
    }
}

/// The caller's address as API Gateway saw it. Forwarding headers are ignored: a client can
/// set them to anything.
pub fn client_ip(parts: &Parts) -> Option<IpAddr> {
    let from_context = match parts.extensions.get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.clone(),
        Some(RequestContext::ApiGatewayV1(ctx)) => ctx.identity.source_ip.clone(),
        _ => None,
    };
    from_context.and_then(|s| s.parse().ok()).or_else(|| parts.extensions.get::<LocalPeer>().map(|p| p.0))
}

pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `?limit=&offset=`; limit defaults to 50 and is capped at 100.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

pub const MAX_PAGE_SIZE: i64 = 100;

/// The paging parameters as the API describes them (the `Page` extractor parses them).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1..=100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// Items to skip (default 0).
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

impl Page {
    pub fn from_query(query: Option<&str>) -> Result<Self, ApiError> {
        let mut limit = 50;
        let mut offset = 0;
        for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match &*k {
                "limit" => {
                    limit = v
                        .parse::<i64>()
                        .ok()
                        .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
                        .ok_or_else(|| ApiError::validation(format!("limit must be 1..={MAX_PAGE_SIZE}")))?
                }
                "offset" => {
                    offset = v
                        .parse::<i64>()
                        .ok()
                        .filter(|n| *n >= 0)
                        .ok_or_else(|| ApiError::validation("offset must be a non-negative integer"))?
                }
                _ => {}
            }
        }
        Ok(Self { limit, offset })
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Page {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Page::from_query(parts.uri.query())
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for RequestMeta {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestMeta::from_parts(parts))
    }
}

/// One page of a list, with the total across all pages.
#[derive(Serialize, ToSchema)]
pub struct Paged<T: Serialize> {
    pub items: Vec<T>,
    pub limit: i64,
    pub offset: i64,
    pub total: i64,
}

impl<T: Serialize> Paged<T> {
    pub fn new(items: Vec<T>, page: Page, total: i64) -> Self {
        Self { items, limit: page.limit, offset: page.offset, total }
    }
}

/// `?company_id=`: the company a master admin acts on (ignored for everyone else).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CompanyParam {
    /// Master admins only: the company to act on.
    pub company_id: Option<uuid::Uuid>,
}

/// A function's routes bound to its state, answering a known path with the wrong method by
/// the JSON 405 (keeping the `Allow` header the router computes). Without a fallback, so the
/// local runner can merge every function's router; [`with_not_found`] adds it.
pub fn into_router<S: ApiState>(routes: utoipa_axum::router::OpenApiRouter<S>, state: S) -> axum::Router {
    let (router, _) = routes.split_for_parts();
    router.method_not_allowed_fallback(method_not_allowed).with_state(state)
}

/// The JSON 404 for every path no route serves.
pub fn with_not_found(router: axum::Router) -> axum::Router {
    router.fallback(not_found)
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// A function's description: its routes' operations with the shared error responses.
pub fn describe<S: ApiState>(routes: utoipa_axum::router::OpenApiRouter<S>) -> utoipa::openapi::OpenApi {
    openapi::finish(routes.into_openapi())
}

/// What an HTTP function's `main` does after building its state: serve its router on the
/// Lambda Runtime API.
pub async fn run_on_lambda(router: axum::Router) -> Result<(), lambda_http::Error> {
    lambda_http::run(router).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_limits() {
        assert!(Page::from_query(Some("limit=500")).is_err());
        assert!(Page::from_query(Some("offset=-1")).is_err());
        assert_eq!(Page::from_query(Some("limit=10&offset=20")).unwrap(), Page { limit: 10, offset: 20 });
        assert_eq!(Page::from_query(None).unwrap(), Page { limit: 50, offset: 0 });
    }
}
