//! `knowledge-search` function: ask the knowledge base a question the way an agent would, and
//! see the ranked chunks with their scores and sources. The chat turn uses the same service.
//!
//! POST /admin/knowledge/search

use axum::extract::State;
use axum::Json;
use chatapp::app::AppDeps;
use chatapp::domain;
use chatapp::knowledge::service::{self, RagConfig, SearchHit, SearchMode, SearchRequest};
use chatapp::knowledge::vector::Scope;
use chatapp::repo;
use chatapp::routes;
use chatapp::tenant::{Access, Resource};
use chatapp::web::{CompanyParam, JsonBody, Tenant};
use chatapp::ApiError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

/// What this function may do on AWS: nothing (template.yaml gives it no policy; tests/iam.rs).
pub const AWS: chatapp::adapters::access::AwsAccess = chatapp::adapters::access::AwsAccess::NONE;

pub fn routes() -> OpenApiRouter<AppDeps> {
    OpenApiRouter::with_openapi(chatapp::web::openapi::base()).routes(routes!(search))
}

/// A question for the knowledge base.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SearchBody {
    /// At most 2000 characters.
    query: String,
    /// `hybrid` (default), `dense` or `lexical`.
    #[serde(default)]
    mode: SearchMode,
    /// 1..=100; defaults to the RAG config's.
    max_results: Option<usize>,
    /// 0..=1; defaults to the RAG config's.
    relevance_threshold: Option<f32>,
    /// Only these categories (of this company).
    category_ids: Option<Vec<Uuid>>,
    /// Search as this agent does: its categories and its RAG config.
    agent_id: Option<Uuid>,
    /// Also search the global (platform-wide) knowledge; default `true`.
    #[serde(default = "yes")]
    #[schema(default = true)]
    include_global: bool,
}

/// The ranked chunks, with the settings the search ran with.
#[derive(Serialize, ToSchema)]
struct SearchResponse {
    query: String,
    mode: SearchMode,
    max_results: usize,
    relevance_threshold: f32,
    /// How long the search took, in milliseconds.
    took_ms: f64,
    results: Vec<SearchHit>,
}

fn yes() -> bool {
    true
}

/// Search the knowledge base the way an agent would, with each hit's scores and source.
#[utoipa::path(post, path = "/admin/knowledge/search", tag = "knowledge-search", security(("bearer" = [])),
    params(CompanyParam), request_body = SearchBody,
    responses((status = 200, description = "The ranked chunks", body = SearchResponse)))]
async fn search(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    JsonBody(body): JsonBody<SearchBody>,
) -> Result<Json<SearchResponse>, ApiError> {
    ctx.authorize(Resource::Knowledge, Access::Read)?;
    let company = ctx.require_company()?.as_uuid();
    let query = domain::text("query", &body.query, 2000)?;
    if body.max_results.is_some_and(|n| !(1..=100).contains(&n)) {
        return Err(ApiError::validation("max_results must be 1..=100"));
    }
    if body.relevance_threshold.is_some_and(|t| !(0.0..=1.0).contains(&t)) {
        return Err(ApiError::validation("relevance_threshold must be between 0 and 1"));
    }
    // Resolve the agent (its categories and RAG config) and check the categories, through RLS.
    let tx = deps.db.begin(&ctx).await?;
    let resolved = async {
        let mut rag = RagConfig::from_json(&repo::knowledge::rag_config_for_category(&tx, company, None).await?);
        let mut categories = body.category_ids.clone();
        if let Some(agent) = body.agent_id {
            let assigned = repo::knowledge::agent_categories(&tx, company, agent)
                .await?
                .ok_or(ApiError::validation("agent_id does not name an agent of this company"))?;
            rag = RagConfig::from_json(&repo::knowledge::agent_rag_config(&tx, company, agent).await?);
            categories = Some(match categories {
                Some(asked) => asked.into_iter().filter(|c| assigned.contains(c)).collect(),
                None => assigned,
            });
        }
        if let Some(ids) = &body.category_ids {
            let mut unique = ids.clone();
            unique.sort();
            unique.dedup();
            if repo::knowledge::count_existing_categories(&tx, company, &unique).await? != unique.len() as i64 {
                return Err(ApiError::validation("category_ids must all name categories of this company"));
            }
        }
        Ok::<_, ApiError>((rag, categories))
    }
    .await;
    let (rag, categories) = tx.finish(resolved).await?;
    let request = SearchRequest {
        query,
        mode: body.mode,
        max_results: body.max_results.unwrap_or(rag.max_results),
        relevance_threshold: body.relevance_threshold.unwrap_or(rag.relevance_threshold),
        scope: Scope { categories, files: None, include_global: body.include_global },
    };
    let started = std::time::Instant::now();
    let hits = service::search(&deps, &ctx, &request).await.map_err(ApiError::internal)?;
    Ok(Json(SearchResponse {
        took_ms: started.elapsed().as_secs_f64() * 1000.0,
        query: request.query,
        mode: request.mode,
        max_results: request.max_results,
        relevance_threshold: request.relevance_threshold,
        results: hits,
    }))
}
