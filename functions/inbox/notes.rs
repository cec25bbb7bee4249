//! The inbox's private notes: support agents write on a conversation for each other.
//!
//! GET|POST /inbox/conversations/{id}/notes
//!
//! Notes live in `chatapp_conversation_notes`, which neither the widget nor the chat turn reads:
//! the customer never sees them and they never reach the model's prompt. Each note is an
//! internal `note.created` event (insert trigger), which customers' event streams leave out.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chatapp::app::AppDeps;
use chatapp::audit::{self, AuditEntry};
use chatapp::domain::{self, Email};
use chatapp::ids::ConversationId;
use chatapp::repo::inbox::notes::{self, Note};
use chatapp::routes;
use chatapp::tenant::{Access, Resource};
use chatapp::web::{CompanyParam, IdPath, JsonBody, RequestMeta, Tenant};
use chatapp::{ApiError, TenantCtx};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

pub fn routes() -> OpenApiRouter<AppDeps> {
    OpenApiRouter::new().routes(routes!(list_notes, create_note))
}

/// The most `@<email>` mentions looked up per note.
const MAX_MENTIONS: usize = 50;

/// The signed-in user acting in the inbox.
fn caller(ctx: &TenantCtx, access: Access) -> Result<Uuid, ApiError> {
    let user = ctx.user_id().ok_or_else(|| ApiError::forbidden("forbidden", "the inbox is for signed-in users"))?;
    ctx.authorize(Resource::Conversations, access)?;
    Ok(user)
}

/// A conversation's notes.
#[derive(Serialize, ToSchema)]
struct NoteList {
    conversation_id: Uuid,
    /// Oldest first (at most 1000).
    items: Vec<Note>,
}

/// A conversation's private notes, oldest first.
#[utoipa::path(get, path = "/inbox/conversations/{id}/notes", tag = "inbox", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id"), CompanyParam),
    responses((status = 200, description = "The notes", body = NoteList)))]
async fn list_notes(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<ConversationId>,
) -> Result<Json<NoteList>, ApiError> {
    caller(&ctx, Access::Read)?;
    let company = ctx.require_company()?.as_uuid();
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        if !notes::conversation_visible(&tx, company, id.as_uuid()).await? {
            return Err(ApiError::NotFound);
        }
        Ok::<_, ApiError>(notes::list(&tx, company, id.as_uuid()).await?)
    }
    .await;
    let items = tx.finish(result).await?;
    Ok(Json(NoteList { conversation_id: id.as_uuid(), items }))
}

/// A new note.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewNoteBody {
    /// 1-10000 characters (trimmed). `@<email>` of an active colleague mentions them; other
    /// `@` words stay plain text.
    content: String,
}

/// The addresses written as `@<email>` in `content`: lower-cased, each once, in order of
/// appearance; surrounding brackets, quotes and punctuation are not part of them.
fn mentioned_emails(content: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in content.split_whitespace() {
        let word = word.trim_start_matches(['(', '[', '{', '<', '"', '\'']);
        let Some(rest) = word.strip_prefix('@') else { continue };
        let rest = rest.trim_end_matches(|c: char| !c.is_alphanumeric());
        if let Ok(email) = Email::try_from(rest.to_string()) {
            let email = email.as_str().to_string();
            if !out.contains(&email) {
                out.push(email);
            }
        }
        if out.len() == MAX_MENTIONS {
            break;
        }
    }
    out
}

/// Add a private note to a conversation (never shown to the customer).
#[utoipa::path(post, path = "/inbox/conversations/{id}/notes", tag = "inbox", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id"), CompanyParam), request_body = NewNoteBody,
    responses((status = 201, description = "The note", body = Note)))]
async fn create_note(
    State(deps): State<AppDeps>,
    Tenant(ctx): Tenant,
    IdPath(id): IdPath<ConversationId>,
    meta: RequestMeta,
    JsonBody(body): JsonBody<NewNoteBody>,
) -> Result<(StatusCode, Json<Note>), ApiError> {
    let user = caller(&ctx, Access::Write)?;
    let company = ctx.require_company()?.as_uuid();
    let content = domain::text("content", &body.content, 10_000)?;
    let emails = mentioned_emails(&content);
    let tx = deps.db.begin(&ctx).await?;
    let result = async {
        if !notes::conversation_visible(&tx, company, id.as_uuid()).await? {
            return Err(ApiError::NotFound);
        }
        let mentions: Vec<Uuid> = if emails.is_empty() {
            Vec::new()
        } else {
            let known = notes::active_users_by_email(&tx, company, &emails).await?;
            emails.iter().filter_map(|e| known.iter().find(|(_, k)| k == e).map(|(u, _)| *u)).collect()
        };
        let note = notes::create(&tx, company, id.as_uuid(), user, &content, &mentions).await?;
        audit::record(
            &tx,
            AuditEntry {
                action: "conversation.note",
                resource_type: "conversation",
                resource_id: Some(id.as_uuid()),
                before: None,
                after: Some(json!(note)),
            },
            &meta,
        )
        .await?;
        Ok::<_, ApiError>(note)
    }
    .await;
    Ok((StatusCode::CREATED, Json(tx.finish(result).await?)))
}

#[cfg(test)]
mod tests {
    use super::mentioned_emails;

    #[test]
    fn mentions_are_at_emails() {
        assert_eq!(
            mentioned_emails("Ask @Bob@Acme.test, then (@ann@acme.test) and @bob@acme.test. Not @team or a@b.co"),
            vec!["bob@acme.test".to_string(), "ann@acme.test".to_string()]
        );
        assert!(mentioned_emails("no mentions here @ all").is_empty());
    }
}
