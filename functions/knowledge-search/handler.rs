//! `knowledge-search` function: ask the knowledge base a question the way an agent would, and
//! see the ranked chunks with their scores and sources. The chat turn uses the same service.
//!
//! POST /admin/knowledge/search

use chatapp::app::AppDeps;
use chatapp::domain;
use chatapp::http::{self, HandlerResult};
use chatapp::knowledge::service::{self, RagConfig, SearchMode, SearchRequest};
use chatapp::knowledge::vector::Scope;
use chatapp::repo;
use chatapp::tenant::{Access, Resource};
use chatapp::{ApiError, TenantCtx};
use lambda_http::Request;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

const PREFIX: &str = "/admin/knowledge/search";

pub async fn handle(deps: &AppDeps, req: Request) -> HandlerResult {
    let path = req.uri().path().to_string();
    let segs = http::segments_after(&path, PREFIX).ok_or(ApiError::NotFound)?;
    let ctx = deps.auth.authenticate(&req).await?.acting_for(http::company_param(&req)?);
    match (req.method().as_str(), segs.as_slice()) {
        ("POST", []) => search(deps, &ctx, &req).await,
        (_, []) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NotFound),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchBody {
    query: String,
    #[serde(default)]
    mode: SearchMode,
    max_results: Option<usize>,
    relevance_threshold: Option<f32>,
    /// Only these categories (of this company).
    category_ids: Option<Vec<Uuid>>,
    /// Search as this agent does: its categories and its RAG config.
    agent_id: Option<Uuid>,
    #[serde(default = "yes")]
    include_global: bool,
}

fn yes() -> bool {
    true
}

async fn search(deps: &AppDeps, ctx: &TenantCtx, req: &Request) -> HandlerResult {
    ctx.authorize(Resource::Knowledge, Access::Read)?;
    let company = ctx.require_company()?.as_uuid();
    let body: SearchBody = http::parse_json(req, deps.cfg.max_body_bytes)?;
    let query = domain::text("query", &body.query, 2000)?;
    if body.max_results.is_some_and(|n| !(1..=100).contains(&n)) {
        return Err(ApiError::validation("max_results must be 1..=100"));
    }
    if body.relevance_threshold.is_some_and(|t| !(0.0..=1.0).contains(&t)) {
        return Err(ApiError::validation("relevance_threshold must be between 0 and 1"));
    }
    // Resolve the agent (its categories and RAG config) and check the categories, through RLS.
    let tx = deps.db.begin(ctx).await?;
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
    let hits = service::search(deps, ctx, &request).await.map_err(ApiError::internal)?;
    http::ok(&json!({
        "query": request.query,
        "mode": request.mode,
        "max_results": request.max_results,
        "relevance_threshold": request.relevance_threshold,
        "took_ms": started.elapsed().as_secs_f64() * 1000.0,
        "results": hits,
    }))
}
