//! `knowledge-files` function: uploading knowledge files and following their ingestion.
//!
//! POST /admin/knowledge/files (request an upload: presigned S3 PUT, or the upload route below)
//! PUT /admin/knowledge/files/{id}/content (direct upload; the local runner's way)
//! GET /admin/knowledge/files · GET|DELETE /admin/knowledge/files/{id}
//! POST /admin/knowledge/files/{id}/retry · POST /admin/knowledge/files/{id}/reindex

use std::collections::BTreeMap;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::Json;
use chatapp::adapters::blob::ObjectKey;
use chatapp::adapters::queue::INGEST;
use chatapp::app::AppDeps;
use chatapp::audit::{self, AuditEntry};
use chatapp::db::TenantTx;
use chatapp::domain;
use chatapp::ids::FileId;
use chatapp::knowledge::service::{self, IngestJob, PurgeTarget};
use chatapp::repo::{self, knowledge::KnowledgeFile};
use chatapp::routes;
use chatapp::status::FileStatus;
use chatapp::tenant::{Access, CompanyId, Resource};
use chatapp::web::{CompanyParam, IdPath, JsonBody, Page, PageParams, Paged, Query, RequestMeta, Tenant};
use chatapp::{ApiError, TenantCtx};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
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

/// What this function may do on AWS (presigned uploads, direct uploads, deletes; ingest jobs); template.yaml grants exactly this (tests/iam.rs).
pub const AWS: chatapp::adapters::access::AwsAccess = chatapp::adapters::access::AwsAccess {
    s3: true,
    send: &[chatapp::adapters::queue::INGEST],
    poll: &[],
    email: false,
};

pub fn routes() -> OpenApiRouter<AppDeps> {
    OpenApiRouter::with_openapi(chatapp::web::openapi::base())
        .routes(routes!(request_upload, list))
        .routes(routes!(get, delete))
        .routes(routes!(upload))
        .routes(routes!(retry))
        .routes(routes!(reindex))
}

/// A file to upload.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UploadRequest {
    /// The original name; its extension must be one of txt, text, md, markdown, html, htm, pdf,
    /// docx, csv, json.
    filename: String,
    /// A category of this company.
    category_id: Uuid,
    /// Exact size in bytes; a presigned URL only accepts this many.
    size: i64,
    /// Defaults to the extension's type.
    mime_type: Option<String>,
}

/// How to send the file's bytes.
#[derive(Serialize, ToSchema)]
struct UploadInstructions {
    /// The HTTP method to use (`PUT`).
    method: String,
    /// A presigned object-store URL when `direct`, else this API's upload route.
    url: String,
    /// Headers to send exactly as given (a presigned URL's signature covers them).
    headers: BTreeMap<String, String>,
    /// When a presigned URL stops working (only when `direct`).
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<DateTime<Utc>>,
    /// `true`: straight to the object store; `false`: through `PUT /admin/knowledge/files/{id}/content`.
    direct: bool,
}

/// The new file (`pending` until its bytes arrive) and how to upload them.
#[derive(Serialize, ToSchema)]
struct UploadTicket {
    file: KnowledgeFile,
    upload: UploadInstructions,
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

/// Register a file and get where to upload its bytes (within the plan's size and storage limits).
#[utoipa::path(post, path = "/admin/knowledge/files", tag = "knowledge-files", security(("bearer" = [])),
    params(CompanyParam), request_body = UploadRequest,
    responses((status = 201, description = "The file and its upload instructions", body = UploadTicket)))]
async fn request_upload(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    JsonBody(body): JsonBody<UploadRequest>,
) -> Result<(StatusCode, Json<UploadTicket>), ApiError> {
    ctx.authorize(Resource::Knowledge, Access::Write)?;
    let company = ctx.require_company()?;
    let cid = company.as_uuid();
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
    let tx = deps.db.begin(&ctx).await?;
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
    let presigned = deps.blobs.presign_put(&key, &mime, body.size as u64, ttl).await?;
    let upload = match presigned {
        Some(p) => UploadInstructions {
            method: p.method,
            url: p.url,
            headers: p.headers,
            expires_at: Some(Utc::now() + ttl),
            direct: true,
        },
        None => UploadInstructions {
            method: "PUT".to_string(),
            url: format!("{PREFIX}/{id}/content"),
            headers: BTreeMap::from([("content-type".to_string(), mime)]),
            expires_at: None,
            direct: false,
        },
    };
    Ok((StatusCode::CREATED, Json(UploadTicket { file, upload })))
}

/// Writes the ingest job to the outbox in the transaction that marks the file queued: the
/// file is never "queued" without a job, nor a job sent for a change that rolled back. The
/// caller relays it after the commit ([`relay`]).
async fn enqueue(tx: &chatapp::db::TenantTx, company: CompanyId, file: FileId) -> Result<(), ApiError> {
    chatapp::outbox::add(tx, INGEST, &IngestJob::file(company, file.as_uuid()).to_json()).await?;
    Ok(())
}

/// Sends the committed ingest jobs (the outbox sweep sends them if this does not).
async fn relay(deps: &AppDeps) {
    chatapp::outbox::relay_now(deps, &[INGEST]).await;
}

/// Upload a `pending` file's bytes through the API and queue its ingestion.
///
/// The route a file's upload instructions name when they are not `direct`. The body is the
/// raw file, up to the deployment's upload limit (and the plan's file size limit).
#[utoipa::path(put, path = "/admin/knowledge/files/{id}/content", tag = "knowledge-files", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "File id"), CompanyParam),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file's content"),
    responses((status = 200, description = "The file, now queued", body = KnowledgeFile)))]
async fn upload(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<FileId>,
    meta: RequestMeta,
    req: Request,
) -> Result<Json<KnowledgeFile>, ApiError> {
    ctx.authorize(Resource::Knowledge, Access::Write)?;
    let company = ctx.require_company()?;
    let cid = company.as_uuid();
    let limit = deps.cfg.max_upload_bytes;
    let bytes = chatapp::web::read_body(req, limit).await.map_err(|e| match e {
        ApiError::PayloadTooLarge { .. } => ApiError::TooLarge {
            code: "file_too_large",
            message: format!("uploads through this route are limited to {limit} bytes"),
        },
        other => other,
    })?;
    if bytes.is_empty() {
        return Err(ApiError::validation("the request body must be the file's content"));
    }
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let file = repo::knowledge::lock_file(&tx, cid, id.as_uuid()).await?.ok_or(ApiError::NotFound)?;
        if file.status != FileStatus::Pending {
            return Err(ApiError::conflict(
                "already_uploaded",
                format!("this file is {}; request a new upload to replace it", file.status),
            ));
        }
        check_limits(&tx, cid, bytes.len() as i64, i64::from(file.size)).await?;
        let key = ObjectKey::parse_full(&file.storage_path).map_err(ApiError::internal)?;
        deps.blobs.put(&key, bytes.clone(), &file.mime_type).await?;
        let size = Some(bytes.len() as i32);
        let queued = repo::knowledge::queue_file(&tx, cid, id.as_uuid(), &[FileStatus::Pending], false, size)
            .await?
            .ok_or(ApiError::NotFound)?;
        audit::record(
            &tx,
            AuditEntry {
                action: "knowledge_file.upload",
                resource_type: "knowledge_file",
                resource_id: Some(id.as_uuid()),
                before: Some(json!({"status": file.status})),
                after: Some(json!({"status": queued.status, "size": queued.size})),
            },
            &meta,
        )
        .await?;
        enqueue(&tx, company, id).await?;
        Ok::<_, ApiError>(queued)
    }
    .await;
    let file = tx.finish(result).await?;
    relay(&deps).await;
    Ok(Json(file))
}

#[derive(Clone, Copy)]
enum Requeue {
    Retry,
    Reindex,
}

/// Queue a failed (or stale) file's ingestion again.
#[utoipa::path(post, path = "/admin/knowledge/files/{id}/retry", tag = "knowledge-files", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "File id"), CompanyParam),
    responses((status = 200, description = "The file, now queued", body = KnowledgeFile)))]
async fn retry(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<FileId>,
    meta: RequestMeta,
) -> Result<Json<KnowledgeFile>, ApiError> {
    requeue(&deps, &ctx, &meta, id, Requeue::Retry).await
}

/// Ingest an indexed, failed or stale file again (after a RAG config change, say).
#[utoipa::path(post, path = "/admin/knowledge/files/{id}/reindex", tag = "knowledge-files", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "File id"), CompanyParam),
    responses((status = 200, description = "The file, now queued", body = KnowledgeFile)))]
async fn reindex(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<FileId>,
    meta: RequestMeta,
) -> Result<Json<KnowledgeFile>, ApiError> {
    requeue(&deps, &ctx, &meta, id, Requeue::Reindex).await
}

async fn requeue(
    deps: &AppDeps,
    ctx: &TenantCtx,
    meta: &RequestMeta,
    id: FileId,
    kind: Requeue,
) -> Result<Json<KnowledgeFile>, ApiError> {
    ctx.authorize(Resource::Knowledge, Access::Write)?;
    let company = ctx.require_company()?;
    let cid = company.as_uuid();
    let (from, action): (&[FileStatus], &str) = match kind {
        Requeue::Retry => (&[FileStatus::Failed], "knowledge_file.retry"),
        Requeue::Reindex => (&[FileStatus::Indexed, FileStatus::Failed], "knowledge_file.reindex"),
    };
    // Both also take a stale file: queued or processing, untouched for 15 minutes (its job died).
    let allowed = from.iter().map(|s| s.as_str()).chain(["stale"]).collect::<Vec<_>>().join(", ");
    let tx = deps.db.begin(ctx).await?;
    let result = async {
        let before = repo::knowledge::lock_file(&tx, cid, id.as_uuid()).await?.ok_or(ApiError::NotFound)?;
        let Some(after) = repo::knowledge::queue_file(&tx, cid, id.as_uuid(), from, true, None).await? else {
            return Err(ApiError::conflict(
                "invalid_status",
                format!("a {} file cannot be {}; allowed from: {}", before.status, action_verb(kind), allowed),
            ));
        };
        audit::record(
            &tx,
            AuditEntry {
                action,
                resource_type: "knowledge_file",
                resource_id: Some(id.as_uuid()),
                before: Some(json!({"status": before.status, "processing_error": before.processing_error})),
                after: Some(json!({"status": after.status})),
            },
            meta,
        )
        .await?;
        enqueue(&tx, company, id).await?;
        Ok::<_, ApiError>(after)
    }
    .await;
    let file = tx.finish(result).await?;
    relay(deps).await;
    Ok(Json(file))
}

fn action_verb(kind: Requeue) -> &'static str {
    match kind {
        Requeue::Retry => "retried",
        Requeue::Reindex => "reindexed",
    }
}

/// Filters of the file list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct FileListQuery {
    /// Only files in this status: `pending`, `queued`, `processing`, `indexed` or `failed`.
    status: Option<String>,
    /// Only files of this category.
    #[param(value_type = Option<Uuid>)]
    category_id: Option<String>,
}

/// List the company's files, newest first.
#[utoipa::path(get, path = "/admin/knowledge/files", tag = "knowledge-files", security(("bearer" = [])),
    params(FileListQuery, PageParams, CompanyParam),
    responses((status = 200, description = "One page of files", body = Paged<KnowledgeFile>)))]
async fn list(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    page: Page,
    Query(q): Query<FileListQuery>,
) -> Result<Json<Paged<KnowledgeFile>>, ApiError> {
    ctx.authorize(Resource::Knowledge, Access::Read)?;
    let company = ctx.require_company()?.as_uuid();
    let status = q
        .status
        .as_deref()
        .map(str::parse::<FileStatus>)
        .transpose()
        .map_err(|_| ApiError::validation("status must be pending, queued, processing, indexed or failed"))?;
    let category_id = match q.category_id.as_deref() {
        Some(c) => Some(Uuid::parse_str(c).map_err(|_| ApiError::validation("category_id must be a UUID"))?),
        None => None,
    };
    let filter = repo::knowledge::FileFilter { status, category_id };
    let tx = deps.db.begin(&ctx).await?;
    let result = repo::knowledge::list_files(&tx, company, &filter, page).await.map_err(ApiError::from);
    let (items, total) = tx.finish(result).await?;
    Ok(Json(Paged::new(items, page, total)))
}

/// One file of the company, with its ingestion status.
#[utoipa::path(get, path = "/admin/knowledge/files/{id}", tag = "knowledge-files", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "File id"), CompanyParam),
    responses((status = 200, description = "The file", body = KnowledgeFile)))]
async fn get(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<FileId>,
) -> Result<Json<KnowledgeFile>, ApiError> {
    ctx.authorize(Resource::Knowledge, Access::Read)?;
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let result = repo::knowledge::get_file(&tx, company, id.as_uuid()).await.map_err(ApiError::from);
    Ok(Json(tx.finish(result).await?.ok_or(ApiError::NotFound)?))
}

/// Delete a file with its object, chunks and vectors.
#[utoipa::path(delete, path = "/admin/knowledge/files/{id}", tag = "knowledge-files", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "File id"), CompanyParam),
    responses((status = 204, description = "Deleted")))]
async fn delete(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<FileId>,
    meta: RequestMeta,
) -> Result<StatusCode, ApiError> {
    ctx.authorize(Resource::Knowledge, Access::Write)?;
    let company = ctx.require_company()?;
    let cid = company.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let before = repo::knowledge::lock_file(&tx, cid, id.as_uuid()).await?.ok_or(ApiError::NotFound)?;
        repo::knowledge::delete_file(&tx, cid, id.as_uuid()).await?;
        service::queue_purge(&tx, company, PurgeTarget::File(id.as_uuid())).await?;
        audit::record(
            &tx,
            AuditEntry {
                action: "knowledge_file.delete",
                resource_type: "knowledge_file",
                resource_id: Some(id.as_uuid()),
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
    service::purge_after_commit(&deps, company, &[PurgeTarget::File(id.as_uuid())]).await;
    Ok(StatusCode::NO_CONTENT)
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
