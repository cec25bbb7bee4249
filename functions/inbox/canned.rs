//! The inbox's canned responses: saved replies, shared with the company or personal.
//!
//! GET|POST /inbox/canned-responses · GET|PATCH|DELETE /inbox/canned-responses/{id}
//! POST /inbox/canned-responses/{id}/render
//!
//! Everyone sees the company's responses and their own personal ones. Company and master
//! admins make and change the company's; anyone makes and changes their own personal ones.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chatapp::app::AppDeps;
use chatapp::audit::{self, AuditEntry};
use chatapp::db::DbError;
use chatapp::domain;
use chatapp::ids::{CannedResponseId, ConversationId};
use chatapp::repo::inbox::canned::{self, CannedFields, CannedFilter, CannedResponse, CannedScope};
use chatapp::routes;
use chatapp::tenant::{Access, Resource, Role};
use chatapp::web::{CompanyParam, IdPath, JsonBody, Page, PageParams, Paged, Query, RequestMeta, Tenant};
use chatapp::{ApiError, TenantCtx};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

pub fn routes() -> OpenApiRouter<AppDeps> {
    OpenApiRouter::new()
        .routes(routes!(list_canned, create_canned))
        .routes(routes!(get_canned, update_canned, delete_canned))
        .routes(routes!(render_canned))
}

/// The signed-in user acting in the inbox.
fn caller(ctx: &TenantCtx, access: Access) -> Result<Uuid, ApiError> {
    let user = ctx.user_id().ok_or_else(|| ApiError::forbidden("forbidden", "the inbox is for signed-in users"))?;
    ctx.authorize(Resource::Conversations, access)?;
    Ok(user)
}

fn is_admin(ctx: &TenantCtx) -> bool {
    matches!(ctx.role(), Some(Role::CompanyAdmin | Role::MasterAdmin))
}

fn company_only_for_admins(ctx: &TenantCtx) -> Result<(), ApiError> {
    if is_admin(ctx) {
        Ok(())
    } else {
        Err(ApiError::forbidden("forbidden", "only company admins can make or change the company's canned responses"))
    }
}

/// Filters of the list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct CannedQuery {
    /// Words in the title, content or shortcut (case-insensitive).
    q: Option<String>,
    /// The start of the shortcut (what follows `/` in the composer).
    shortcut: Option<String>,
    /// Only this category.
    category: Option<String>,
}

/// The company's canned responses and the caller's personal ones, by title.
#[utoipa::path(get, path = "/inbox/canned-responses", tag = "inbox", security(("bearer" = [])),
    params(CannedQuery, PageParams, CompanyParam),
    responses((status = 200, description = "One page of canned responses", body = Paged<CannedResponse>)))]
async fn list_canned(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    page: Page,
    Query(q): Query<CannedQuery>,
) -> Result<Json<Paged<CannedResponse>>, ApiError> {
    let user = caller(&ctx, Access::Read)?;
    let company = ctx.require_company()?.as_uuid();
    fn given(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }
    let filter = CannedFilter { q: given(&q.q), shortcut: given(&q.shortcut), category: given(&q.category) };
    let tx = deps.db.begin(&ctx).await?;
    let result = canned::list(&tx, company, user, &filter, page).await.map_err(ApiError::from);
    let (items, total) = tx.finish(result).await?;
    Ok(Json(Paged::new(items, page, total)))
}

/// A new canned response.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CannedBody {
    /// 1-255 characters.
    title: String,
    /// 1-5000 characters. `{{customer_name}}`, `{{customer_email}}`, `{{agent_name}}` and
    /// `{{company_name}}` are filled in when it is rendered.
    content: String,
    /// 1-50 letters, digits, `-` or `_`; stored lower-case; unique in its scope.
    shortcut: Option<String>,
    /// At most 100 characters.
    category: Option<String>,
    /// At most 20 tags of 1-50 characters.
    tags: Option<Vec<String>>,
    /// `personal` (the default) or `company` (company and master admins only).
    #[schema(value_type = Option<CannedScope>)]
    scope: Option<String>,
}

/// The fields to change; absent fields are kept.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CannedPatch {
    title: Option<String>,
    content: Option<String>,
    /// `null` removes the shortcut.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    shortcut: Option<Option<String>>,
    /// `null` removes the category.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    category: Option<Option<String>>,
    tags: Option<Vec<String>>,
    /// `company` (admins only) or `personal` (its author only).
    #[schema(value_type = Option<CannedScope>)]
    scope: Option<String>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// A response's fields, checked.
struct ValidCanned {
    title: String,
    content: String,
    shortcut: Option<String>,
    category: Option<String>,
    tags: Vec<String>,
    scope: CannedScope,
}

impl ValidCanned {
    fn fields(&self) -> CannedFields<'_> {
        CannedFields {
            title: &self.title,
            shortcut: self.shortcut.as_deref(),
            content: &self.content,
            category: self.category.as_deref(),
            tags: &self.tags,
            scope: self.scope,
        }
    }
}

fn scope(raw: &str) -> Result<CannedScope, ApiError> {
    CannedScope::parse(raw).ok_or_else(|| ApiError::validation("scope must be company or personal"))
}

/// 1-50 ASCII letters, digits, `-` or `_`, lower-cased.
fn shortcut(raw: &str) -> Result<String, ApiError> {
    let s = raw.trim();
    let ok = (1..=50).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(ApiError::validation("shortcut must be 1-50 letters, digits, - or _"))
    }
}

/// At most 20 tags of 1-50 characters, trimmed, each once.
fn tags(raw: &[String]) -> Result<Vec<String>, ApiError> {
    if raw.len() > 20 {
        return Err(ApiError::validation("tags: at most 20"));
    }
    let mut out: Vec<String> = Vec::new();
    for t in raw {
        let t = domain::text("tags", t, 50)?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

fn validate(
    title: &str,
    content: &str,
    shortcut_raw: Option<&str>,
    category: Option<&str>,
    tag_list: &[String],
    scope: CannedScope,
) -> Result<ValidCanned, ApiError> {
    Ok(ValidCanned {
        title: domain::text("title", title, 255)?,
        content: domain::text("content", content, 5000)?,
        shortcut: shortcut_raw.map(shortcut).transpose()?,
        category: domain::optional_text("category", category, 100)?,
        tags: tags(tag_list)?,
        scope,
    })
}

/// A taken shortcut is a 409 saying so (the constraint's name is schema detail).
fn shortcut_taken(e: DbError, shortcut: Option<&str>) -> ApiError {
    match (e.unique_violation(), shortcut) {
        (Some(_), Some(s)) => ApiError::conflict(
            "conflict",
            format!("the shortcut \"{s}\" is already used by another canned response in this scope"),
        ),
        (Some(_), None) => ApiError::conflict("conflict", "another canned response in this scope is the same"),
        (None, _) => ApiError::from(e),
    }
}

/// Create a canned response: personal by default, or for the whole company (admins).
#[utoipa::path(post, path = "/inbox/canned-responses", tag = "inbox", security(("bearer" = [])),
    params(CompanyParam), request_body = CannedBody,
    responses((status = 201, description = "The canned response", body = CannedResponse)))]
async fn create_canned(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    meta: RequestMeta,
    JsonBody(body): JsonBody<CannedBody>,
) -> Result<(StatusCode, Json<CannedResponse>), ApiError> {
    let user = caller(&ctx, Access::Write)?;
    let company = ctx.require_company()?.as_uuid();
    let scope = body.scope.as_deref().map(scope).transpose()?.unwrap_or(CannedScope::Personal);
    let valid = validate(
        &body.title,
        &body.content,
        body.shortcut.as_deref(),
        body.category.as_deref(),
        body.tags.as_deref().unwrap_or_default(),
        scope,
    )?;
    if scope == CannedScope::Company {
        company_only_for_admins(&ctx)?;
    }
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let created = canned::create(&tx, company, user, &valid.fields())
            .await
            .map_err(|e| shortcut_taken(e, valid.shortcut.as_deref()))?;
        audit::record(
            &tx,
            AuditEntry {
                action: "canned_response.create",
                resource_type: "canned_response",
                resource_id: Some(created.id),
                before: None,
                after: Some(json!(created)),
            },
            &meta,
        )
        .await?;
        Ok::<_, ApiError>(created)
    }
    .await;
    Ok((StatusCode::CREATED, Json(tx.finish(result).await?)))
}

/// One canned response: the company's, or the caller's own personal one.
#[utoipa::path(get, path = "/inbox/canned-responses/{id}", tag = "inbox", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Canned response id"), CompanyParam),
    responses((status = 200, description = "The canned response", body = CannedResponse)))]
async fn get_canned(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<CannedResponseId>,
) -> Result<Json<CannedResponse>, ApiError> {
    let user = caller(&ctx, Access::Read)?;
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let result = canned::get(&tx, company, user, id.as_uuid()).await.map_err(ApiError::from);
    Ok(Json(tx.finish(result).await?.ok_or(ApiError::NotFound)?))
}

/// Who may change `r`: its author for a personal one (no one else sees it), an admin for a
/// company one.
fn may_change(ctx: &TenantCtx, r: &CannedResponse) -> Result<(), ApiError> {
    match r.scope {
        CannedScope::Personal => Ok(()),
        CannedScope::Company => company_only_for_admins(ctx),
    }
}

/// Change a canned response (an admin the company's; anyone their own personal ones).
#[utoipa::path(patch, path = "/inbox/canned-responses/{id}", tag = "inbox", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Canned response id"), CompanyParam), request_body = CannedPatch,
    responses((status = 200, description = "The updated canned response", body = CannedResponse)))]
async fn update_canned(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<CannedResponseId>,
    meta: RequestMeta,
    JsonBody(patch): JsonBody<CannedPatch>,
) -> Result<Json<CannedResponse>, ApiError> {
    let user = caller(&ctx, Access::Write)?;
    let company = ctx.require_company()?.as_uuid();
    let new_scope = patch.scope.as_deref().map(scope).transpose()?;
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let before = canned::get(&tx, company, user, id.as_uuid()).await?.ok_or(ApiError::NotFound)?;
        may_change(&ctx, &before)?;
        let scope = new_scope.unwrap_or(before.scope);
        if scope == CannedScope::Company {
            company_only_for_admins(&ctx)?;
        }
        if scope == CannedScope::Personal && before.scope == CannedScope::Company && before.created_by != user {
            return Err(ApiError::forbidden(
                "forbidden",
                "only its author can make a company canned response personal",
            ));
        }
        let shortcut_raw = match &patch.shortcut {
            Some(s) => s.as_deref(),
            None => before.shortcut.as_deref(),
        };
        let category = match &patch.category {
            Some(c) => c.as_deref(),
            None => before.category.as_deref(),
        };
        let valid = validate(
            patch.title.as_deref().unwrap_or(before.title.as_str()),
            patch.content.as_deref().unwrap_or(before.content.as_str()),
            shortcut_raw,
            category,
            patch.tags.as_deref().unwrap_or(before.tags.as_slice()),
            scope,
        )?;
        let after = canned::update(&tx, company, id.as_uuid(), &valid.fields())
            .await
            .map_err(|e| shortcut_taken(e, valid.shortcut.as_deref()))?
            .ok_or(ApiError::NotFound)?;
        audit::record(
            &tx,
            AuditEntry {
                action: "canned_response.update",
                resource_type: "canned_response",
                resource_id: Some(id.as_uuid()),
                before: Some(json!(before)),
                after: Some(json!(after)),
            },
            &meta,
        )
        .await?;
        Ok::<_, ApiError>(after)
    }
    .await;
    Ok(Json(tx.finish(result).await?))
}

/// Delete a canned response (an admin the company's; anyone their own personal ones).
#[utoipa::path(delete, path = "/inbox/canned-responses/{id}", tag = "inbox", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Canned response id"), CompanyParam),
    responses((status = 204, description = "Deleted")))]
async fn delete_canned(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<CannedResponseId>,
    meta: RequestMeta,
) -> Result<StatusCode, ApiError> {
    let user = caller(&ctx, Access::Write)?;
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let before = canned::get(&tx, company, user, id.as_uuid()).await?.ok_or(ApiError::NotFound)?;
        may_change(&ctx, &before)?;
        if !canned::deactivate(&tx, company, id.as_uuid()).await? {
            return Err(ApiError::NotFound);
        }
        audit::record(
            &tx,
            AuditEntry {
                action: "canned_response.delete",
                resource_type: "canned_response",
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
    Ok(StatusCode::NO_CONTENT)
}

/// The conversation to fill a canned response in for.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RenderBody {
    #[schema(value_type = Uuid)]
    conversation_id: ConversationId,
}

/// A canned response with its variables filled in.
#[derive(Serialize, ToSchema)]
struct RenderedCanned {
    content: String,
}

/// `template` with each `{{name}}` (spaces inside the braces allowed) of `vars` replaced;
/// any other `{{...}}` stays as written.
fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = &after[..end];
        if inner.contains("{{") {
            // `{{ {{name}}`: the first braces are text; look again from the second.
            out.push_str("{{");
            rest = after;
            continue;
        }
        match vars.iter().find(|(name, _)| *name == inner.trim()) {
            Some((_, value)) => out.push_str(value),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Fill a canned response in for a conversation, counting its use.
///
/// `{{customer_name}}` (or "there" when the customer gave none), `{{customer_email}}`,
/// `{{agent_name}}` (the caller's name, or the part of their email before `@`) and
/// `{{company_name}}`; unknown variables stay as written, missing values are empty.
#[utoipa::path(post, path = "/inbox/canned-responses/{id}/render", tag = "inbox", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Canned response id"), CompanyParam), request_body = RenderBody,
    responses((status = 200, description = "The filled-in text", body = RenderedCanned)))]
async fn render_canned(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<CannedResponseId>,
    JsonBody(body): JsonBody<RenderBody>,
) -> Result<Json<RenderedCanned>, ApiError> {
    let user = caller(&ctx, Access::Read)?;
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        let response = canned::get(&tx, company, user, id.as_uuid()).await?.ok_or(ApiError::NotFound)?;
        let vars = canned::render_context(&tx, company, body.conversation_id.as_uuid(), user)
            .await?
            .ok_or(ApiError::NotFound)?;
        // No audit row: a use only moves a counter (`usage_count`, `last_used_at`); it changes
        // nothing anyone reviews, and what is sent is recorded as the message itself.
        canned::record_use(&tx, company, id.as_uuid()).await?;
        let customer_name = vars.customer_name.as_deref().map(str::trim).filter(|n| !n.is_empty()).unwrap_or("there");
        let content = fill(
            &response.content,
            &[
                ("customer_name", customer_name),
                ("customer_email", vars.customer_email.as_deref().unwrap_or("")),
                ("agent_name", vars.agent_name.as_deref().unwrap_or("")),
                ("company_name", vars.company_name.as_deref().unwrap_or("")),
            ],
        );
        Ok::<_, ApiError>(RenderedCanned { content })
    }
    .await;
    Ok(Json(tx.finish(result).await?))
}

#[cfg(test)]
mod tests {
    use super::{fill, shortcut};

    #[test]
    fn variables_are_filled_and_unknown_ones_kept() {
        let vars = [("customer_name", "Dana"), ("agent_name", "sam")];
        assert_eq!(fill("Hi {{customer_name}}, {{ agent_name }} here.", &vars), "Hi Dana, sam here.");
        assert_eq!(fill("{{unknown}} {{customer_name}}", &vars), "{{unknown}} Dana");
        assert_eq!(fill("{{ {{customer_name}} }}", &vars), "{{ Dana }}");
        assert_eq!(fill("open {{customer_name", &vars), "open {{customer_name");
        assert_eq!(fill("no variables", &vars), "no variables");
    }

    #[test]
    fn shortcuts() {
        assert_eq!(shortcut(" Refund_2-x ").unwrap(), "refund_2-x");
        let long = "x".repeat(51);
        for bad in ["", "has space", "é", "/slash", long.as_str()] {
            assert!(shortcut(bad).is_err(), "{bad}");
        }
    }
}
