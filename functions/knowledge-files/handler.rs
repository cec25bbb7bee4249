//! `knowledge-files` function: uploading knowledge files and following their ingestion.
//!
//! POST /admin/knowledge/files (request an upload: presigned S3 PUT, or the upload route below)
//! PUT /admin/knowledge/files/{id}/content (direct upload; the local runner's way)
//! GET /admin/knowledge/files · GET|DELETE /admin/knowledge/files/{id}
//! POST /admin/knowledge/files/{id}/retry · POST /admin/knowledge/files/{id}/reindex

use chatapp::adapters::blob::ObjectKey;
use chatapp::adapters::queue::INGEST;
use chatapp::app::AppDeps;
use chatapp::audit::{self, AuditEntry};
use chatapp::db::TenantTx;
use chatapp::domain;
use chatapp::http::{self, HandlerResult, Page, Paged, RequestMeta};
use chatapp::knowledge::service::{self, IngestJob, PurgeTarget};
use chatapp::repo::{self, knowledge::KnowledgeFile};
use chatapp::tenant::{Access, CompanyId, Resource};
use chatapp::{ApiError, TenantCtx};
use chrono::Utc;
use lambda_http::Request;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

const PREFIX: &str = "/admin/knowledge/files";

/// Extensions the ingestion worker can read, with the content type used when none is given.
const TYPES: &[(&str, &str)] = &[
    ("txt", "text/plain"),
    ("text", "text/plain"),
    ("md", "text/markdown"),
    ("markdown", "text/markdown"),
    ("html", "text/html"),
    ("htm", "text/html"),
    ("pdf", "application/pdf"),
    ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("csv", "text/csv"),
    ("json", "application/json"),
];

pub async fn handle(deps: &AppDeps, req: Request) -> HandlerResult {
    let path = req.uri().path().to_string();
    let segs = http::segments_after(&path, PREFIX).ok_or(ApiError::NotFound)?;
    let ctx = deps.auth.authenticate(&req).await?.acting_for(http::company_param(&req)?);
    match (req.method().as_str(), segs.as_slice()) {
        ("POST", []) => request_upload(deps, &ctx, &req).await,
        ("GET", []) => list(deps, &ctx, &req).await,
        ("GET", [id]) => get(deps, &ctx, http::path_id(id)?).await,
        ("DELETE", [id]) => delete(deps, &ctx, &req, http::path_id(id)?).await,
        ("PUT", [id, "content"]) => upload(deps, &ctx, &req, http::path_id(id)?).await,
        ("POST", [id, "retry"]) => requeue(deps, &ctx, &req, http::path_id(id)?, Requeue::Retry).await,
        ("POST", [id, "reindex"]) => requeue(deps, &ctx, &req, http::path_id(id)?, Requeue::Reindex).await,
        (_, [] | [_] | [_, "content" | "retry" | "reindex"]) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NotFound),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadRequest {
    filename: String,
    category_id: Uuid,
    /// Exact size in bytes; a presigned URL only accepts this many.
    size: i64,
    mime_type: Option<String>,
}

/// A file name safe inside an object key: ASCII letters, digits, `.`, `-`, `_`.
fn storage_name(original: &str) -> String {
    let mut s: String = original
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
        .collect();
    while s.starts_with('.') {
        s.remove(0);
    }
    let s: String = s.chars().rev().take(200).collect::<Vec<_>>().into_iter().rev().collect();
    if s.is_empty() {
        "file".into()
    } else {
        s
    }
}

fn extension(name: &str) -> Option<String> {
    name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase())
}

/// Checks the plan's `maxFileSize` and `storageGb` for `size` more bytes (`replacing` bytes
/// already counted for this file are not counted twice).
async fn check_limits(tx: &TenantTx, company: Uuid, size: i64, replacing: i64) -> Result<(), ApiError> {
    let limits = repo::plans::limits(tx, company).await?;
    if let Some(max) = repo::plans::limit_of(&limits, "maxFileSize") {
        if size > max {
            return Err(ApiError::TooLarge {
                code: "file_too_large",
                message: format!("the file is {size} bytes; your plan allows files up to {max} bytes"),
            });
        }
    }
    if let Some(gb) = repo::plans::limit_of(&limits, "storageGb") {
        let quota = gb.saturating_mul(1 << 30);
        let used = repo::knowledge::storage_used(tx, company).await? - replacing;
        if used + size > quota {
            return Err(ApiError::PaymentRequired {
                code: "storage_limit_reached",
                message: format!("this upload would use {} of your plan's {gb} GB of storage", used + size),
            });
        }
    }
    Ok(())
}

async fn request_upload(deps: &AppDeps, ctx: &TenantCtx, req: &Request) -> HandlerResult {
    ctx.authorize(Resource::Knowledge, Access::Write)?;
    let company = ctx.require_company()?;
    let cid = company.as_uuid();
    let body: UploadRequest = http::parse_json(req, deps.cfg.max_body_bytes)?;
    let original = domain::text("filename", &body.filename, 255)?;
    if original.contains(['/', '\\', '\0']) {
        return Err(ApiError::validation("filename must not contain path separators"));
    }
    let ext = extension(&original).unwrap_or_default();
    let Some((_, default_mime)) = TYPES.iter().find(|(e, _)| *e == ext) else {
        let known: Vec<&str> = TYPES.iter().map(|(e, _)| *e).collect();
        return Err(ApiError::bad_request(
            "unsupported_file_type",
            format!("files of type .{ext} cannot be ingested; supported: {}", known.join(", ")),
        ));
    };
    if !(1..=i64::from(i32::MAX)).contains(&body.size) {
        return Err(ApiError::validation("size must be the file's size in bytes (at least 1)"));
    }
    let mime = match body.mime_type.as_deref() {
        Some(m) => domain::text("mime_type", m, 100)?,
        None => default_mime.to_string(),
    };
    let id = Uuid::new_v4();
    let name = storage_name(&original);
    let key = ObjectKey::new(company, &format!("{id}/{name}")).map_err(|e| ApiError::validation(e.to_string()))?;
    let meta = RequestMeta::from_request(req);
    let tx = deps.db.begin(ctx).await?;
    let result = async {
        repo::knowledge::get_category(&tx, cid, body.category_id)
            .await?
            .ok_or_else(|| ApiError::validation("category_id does not name a category of this company"))?;
        check_limits(&tx, cid, body.size, 0).await?;
        let file = repo::knowledge::create_file(
            &tx,
            &repo::knowledge::NewFile {
                id,
                company_id: cid,
                category_id: body.category_id,
                filename: &name,
                original_filename: &original,
                mime_type: &mime,
                size: body.size as i32,
                storage_path: &key.full(),
                uploaded_by: ctx.user_id(),
            },
        )
        .await?;
        audit::record(
            &tx,
            AuditEntry {
                action: "knowledge_file.create",
                resource_type: "knowledge_file",
                resource_id: Some(id),
                before: None,
                after: Some(json!(file)),
            },
            &meta,
        )
        .await?;
        Ok::<_, ApiError>(file)
    }
    .await;
    let file = tx.finish(result).await?;
    let ttl = deps.cfg.upload_url_ttl;
    let upload = match deps.blobs.presign_put(&key, &mime, body.size as u64, ttl).await.map_err(ApiError::internal)? {
        Some(p) => json!({"method": p.method, "url": p.url, "headers": p.headers,
                          "expires_at": Utc::now() + ttl, "direct": true}),
        None => json!({"method": "PUT", "url": format!("{PREFIX}/{id}/content"),
                       "headers": {"content-type": mime}, "direct": false}),
    };
    http::created(&json!({"file": file, "upload": upload}))
}

/// Sends the ingest job inside the transaction that marked the file queued: if the send
/// fails, the status rolls back, so a file is never "queued" without a job.
async fn enqueue(deps: &AppDeps, company: CompanyId, file: Uuid) -> Result<(), ApiError> {
    deps.queue.send(INGEST, &IngestJob::file(company, file).to_json()).await.map_err(ApiError::internal)?;
    Ok(())
}

async fn upload(deps: &AppDeps, ctx: &TenantCtx, req: &Request, id: Uuid) -> HandlerResult {
    ctx.authorize(Resource::Knowledge, Access::Write)?;
    let company = ctx.require_company()?;
    let cid = company.as_uuid();
    let bytes = http::body_bytes(req);
    if bytes.is_empty() {
        return Err(ApiError::validation("the request body must be the file's content"));
    }
    if bytes.len() > deps.cfg.max_upload_bytes {
        return Err(ApiError::TooLarge {
            code: "file_too_large",
            message: format!("uploads through this route are limited to {} bytes", deps.cfg.max_upload_bytes),
        });
    }
    let meta = RequestMeta::from_request(req);
    let tx = deps.db.begin(ctx).await?;
    let result = async {
        let file = repo::knowledge::lock_file(&tx, cid, id).await?.ok_or(ApiError::NotFound)?;
        if file.status != "pending" {
            return Err(ApiError::conflict(
                "already_uploaded",
                format!("this file is {}; request a new upload to replace it", file.status),
            ));
        }
        check_limits(&tx, cid, bytes.len() as i64, i64::from(file.size)).await?;
        let key = ObjectKey::parse_full(&file.storage_path).map_err(ApiError::internal)?;
        deps.blobs
            .put(&key, bytes::Bytes::copy_from_slice(bytes), &file.mime_type)
            .await
            .map_err(ApiError::internal)?;
        let queued = repo::knowledge::queue_file(&tx, cid, id, &["pending"], Some(bytes.len() as i32))
            .await?
            .ok_or(ApiError::NotFound)?;
        audit::record(
            &tx,
            AuditEntry {
                action: "knowledge_file.upload",
                resource_type: "knowledge_file",
                resource_id: Some(id),
                before: Some(json!({"status": file.status})),
                after: Some(json!({"status": queued.status, "size": queued.size})),
            },
            &meta,
        )
        .await?;
        enqueue(deps, company, id).await?;
        Ok::<_, ApiError>(queued)
    }
    .await;
    http::ok(&tx.finish(result).await?)
}

#[derive(Clone, Copy)]
enum Requeue {
    Retry,
    Reindex,
}

async fn requeue(deps: &AppDeps, ctx: &TenantCtx, req: &Request, id: Uuid, kind: Requeue) -> HandlerResult {
    ctx.authorize(Resource::Knowledge, Access::Write)?;
    let company = ctx.require_company()?;
    let cid = company.as_uuid();
    let (from, action): (&[&str], &str) = match kind {
        // "stale": also a queued/processing file untouched for 15 minutes (its job died).
        Requeue::Retry => (&["failed", "stale"], "knowledge_file.retry"),
        Requeue::Reindex => (&["indexed", "failed", "stale"], "knowledge_file.reindex"),
    };
    let meta = RequestMeta::from_request(req);
    let tx = deps.db.begin(ctx).await?;
    let result = async {
        let before = repo::knowledge::lock_file(&tx, cid, id).await?.ok_or(ApiError::NotFound)?;
        let Some(after) = repo::knowledge::queue_file(&tx, cid, id, from, None).await? else {
            return Err(ApiError::conflict(
                "invalid_status",
                format!("a {} file cannot be {}; allowed from: {}", before.status, action_verb(kind), from.join(", ")),
            ));
        };
        audit::record(
            &tx,
            AuditEntry {
                action,
                resource_type: "knowledge_file",
                resource_id: Some(id),
                before: Some(json!({"status": before.status, "processing_error": before.processing_error})),
                after: Some(json!({"status": after.status})),
            },
            &meta,
        )
        .await?;
        enqueue(deps, company, id).await?;
        Ok::<_, ApiError>(after)
    }
    .await;
    http::ok(&tx.finish(result).await?)
}

fn action_verb(kind: Requeue) -> &'static str {
    match kind {
        Requeue::Retry => "retried",
        Requeue::Reindex => "reindexed",
    }
}

async fn list(deps: &AppDeps, ctx: &TenantCtx, req: &Request) -> HandlerResult {
    ctx.authorize(Resource::Knowledge, Access::Read)?;
    let company = ctx.require_company()?.as_uuid();
    let page = Page::from_request(req)?;
    let q = http::query_map(req);
    let status = q.get("status").cloned();
    if let Some(s) = &status {
        if !["pending", "queued", "processing", "indexed", "failed"].contains(&s.as_str()) {
            return Err(ApiError::validation("status must be pending, queued, processing, indexed or failed"));
        }
    }
    let category_id = match q.get("category_id") {
        Some(c) => Some(Uuid::parse_str(c).map_err(|_| ApiError::validation("category_id must be a UUID"))?),
        None => None,
    };
    let filter = repo::knowledge::FileFilter { status, category_id };
    let tx = deps.db.begin(ctx).await?;
    let result = repo::knowledge::list_files(&tx, company, &filter, page).await.map_err(ApiError::from);
    let (items, total) = tx.finish(result).await?;
    http::ok(&Paged::<KnowledgeFile> { items, limit: page.limit, offset: page.offset, total })
}

async fn get(deps: &AppDeps, ctx: &TenantCtx, id: Uuid) -> HandlerResult {
    ctx.authorize(Resource::Knowledge, Access::Read)?;
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(ctx).await?;
    let result = repo::knowledge::get_file(&tx, company, id).await.map_err(ApiError::from);
    http::ok(&tx.finish(result).await?.ok_or(ApiError::NotFound)?)
}

async fn delete(deps: &AppDeps, ctx: &TenantCtx, req: &Request, id: Uuid) -> HandlerResult {
    ctx.authorize(Resource::Knowledge, Access::Write)?;
    let company = ctx.require_company()?;
    let cid = company.as_uuid();
    let meta = RequestMeta::from_request(req);
    let tx = deps.db.begin(ctx).await?;
    let result = async {
        let before = repo::knowledge::lock_file(&tx, cid, id).await?.ok_or(ApiError::NotFound)?;
        repo::knowledge::delete_file(&tx, cid, id).await?;
        audit::record(
            &tx,
            AuditEntry {
                action: "knowledge_file.delete",
                resource_type: "knowledge_file",
                resource_id: Some(id),
                before: Some(json!(before)),
                after: None,
            },
            &meta,
        )
        .await?;
        Ok::<_, ApiError>(())
    }
    .await;
    tx.finish(result).await?;
    service::purge_or_enqueue(deps, company, PurgeTarget::File(id)).await.map_err(ApiError::internal)?;
    http::no_content()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_names_are_key_safe() {
        assert_eq!(storage_name("Price list (2024).PDF"), "Price_list__2024_.PDF");
        assert_eq!(storage_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(storage_name("..."), "file");
        assert_eq!(storage_name("rapport été.md"), "rapport__t_.md");
    }
}
