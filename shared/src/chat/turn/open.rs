//! Stage 1 of the turn, with stage 4 alongside: the checks and the customer's message in one
//! transaction, and the knowledge search running while they go on.

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{closed_hours, mark, TurnInput, TurnOutput, HISTORY_WINDOW, RESUME_AFTER_SECS, SUMMARY_STEP};
use crate::app::AppDeps;
use crate::chat::escalation::Rule;
use crate::chat::sentiment;
use crate::db::TenantTx;
use crate::error::ApiError;
use crate::knowledge::service::{self as knowledge, SearchHit, SearchRequest};
use crate::repo::chat::{self as repo, ChatAgent, Message};
use crate::status::{AgentStatus, ConversationStatus, SubscriptionStatus};
use crate::tenant::TenantCtx;

/// The turn after stage 1: the customer's message stored (or found stored by an earlier
/// attempt), and the passages retrieved for it.
pub(super) enum Opened {
    /// A retried send: the stored result of the first one, nothing new written.
    Replayed(Box<TurnOutput>),
    Stored(Box<OpenTurn>),
}

pub(super) struct OpenTurn {
    pub(super) go: Go,
    pub(super) message: Message,
    /// The message was stored by this attempt (not by an earlier one that failed).
    pub(super) inserted: bool,
    /// The message's sentiment score.
    pub(super) sentiment: f32,
    pub(super) hits: Vec<SearchHit>,
}

/// What the checks read, for the rest of the turn.
pub(super) struct Go {
    pub(super) conv: repo::ConversationState,
    pub(super) agent: ChatAgent,
    /// The customer's message, already stored by an earlier attempt that failed.
    pub(super) resume: Option<Message>,
    pub(super) history: Vec<Message>,
    pub(super) turns_before: i64,
    pub(super) stored_before: i64,
    pub(super) rules: Vec<Rule>,
    /// The company has an active outbound webhook: the turn's events wait in the outbox.
    pub(super) webhooks: bool,
}

/// The turn's checks passed (or it is a retry answered from what is stored).
enum Checked {
    Replayed(Box<TurnOutput>),
    Go(Box<Go>),
}

/// The turn after its first transaction: the customer's message stored (or found stored).
enum Stored {
    Replayed(Box<TurnOutput>),
    Go { go: Box<Go>, message: Message, inserted: bool },
}

/// Checks, then the customer's message, in one transaction. The BEGIN, the conversation's
/// lock and everything the checks and the prompt need go out in one round trip; the reads
/// run after the lock, so they see the previous turn of this conversation committed.
/// Retrieval needs only the first two results (the conversation and its agent): it starts
/// as soon as they are in and runs while the other reads, the checks and the commit of the
/// customer's message go on. It only reads, so a turn that stops early just drops it.
pub(super) async fn open(
    deps: &AppDeps,
    ctx: &TenantCtx,
    company: Uuid,
    conversation_id: Uuid,
    input: &TurnInput,
    started: Instant,
    now: DateTime<Utc>,
) -> Result<Opened, ApiError> {
    let (plan_sender, plan) = oneshot::channel::<SearchRequest>();
    let tx = deps.db.begin(ctx).await?;
    let score = sentiment::score(&input.content);
    // Boxed: the turn's future is large, and debug builds keep it on the stack.
    let mut checked_and_stored = Box::pin(async {
        let checked = check(&tx, company, conversation_id, input, started, now, plan_sender).await;
        mark(started, "checks read");
        // Then the customer's message is stored and committed; generation starts once it is,
        // and the retrieval is done.
        store(tx, checked, conversation_id, input, score).await
    });
    let mut retrieve = Box::pin(retrieve_passages(deps, ctx, plan, started));
    let mut early_hits = None;
    let stored = loop {
        tokio::select! {
            biased;
            stored = &mut checked_and_stored => break stored,
            hits = &mut retrieve, if early_hits.is_none() => early_hits = Some(hits),
        }
    };
    let (go, message, inserted) = match stored? {
        Stored::Go { go, message, inserted } => (*go, message, inserted),
        Stored::Replayed(out) => return Ok(Opened::Replayed(out)),
    };
    mark(started, "customer message committed");
    let hits: Vec<SearchHit> = match early_hits {
        Some(hits) => hits,
        None => retrieve.await,
    };
    Ok(Opened::Stored(Box::new(OpenTurn { go, message, inserted, sentiment: score, hits })))
}

/// The checks, in `tx`: the conversation (locked) and its agent, a retried send, the
/// subscription and plan limits, and what the rest of the turn needs (history, counts,
/// escalation rules). The search plan goes to `plan_sender` as soon as the conversation and
/// its agent are read.
async fn check(
    tx: &TenantTx,
    company: Uuid,
    conversation_id: Uuid,
    input: &TurnInput,
    started: Instant,
    now: DateTime<Utc>,
    plan_sender: oneshot::Sender<SearchRequest>,
) -> Result<Checked, ApiError> {
    repo::prepare_turn_start(tx).await?;
    let conversation_and_agent = async {
        let (conv, agent) = tokio::try_join!(
            biased;
            repo::lock_conversation(tx, company, conversation_id),
            repo::agent_of_conversation(tx, company, conversation_id),
        )?;
        mark(started, "conversation and agent read");
        if let Some(request) = search_plan(conv.as_ref(), agent.as_ref(), input, now) {
            let _ = plan_sender.send(request);
        }
        Ok((conv, agent))
    };
    let by_client_id = async {
        match &input.client_message_id {
            Some(id) => repo::message_by_client_id(tx, conversation_id, id).await,
            None => Ok(None),
        }
    };
    // The history read covers the window plus what the summary does not cover yet (it is
    // brought up to date every SUMMARY_STEP messages); the model's window is cut from it below.
    let ((conv, agent), existing, (status, limits), used, (turns_before, stored_before), history, rules, webhooks) = tokio::try_join!(
        biased;
        conversation_and_agent,
        by_client_id,
        repo::subscription(tx, company),
        repo::messages_this_month(tx, company),
        repo::message_counts(tx, conversation_id),
        repo::history(tx, company, conversation_id, HISTORY_WINDOW + SUMMARY_STEP),
        repo::escalation_rules(tx, company, conversation_id),
        repo::has_webhooks(tx, company),
    )?;
    let conv = conv.ok_or(ApiError::NotFound)?;
    let human = conv.status.is_human();
    let mut resume = None;
    if let Some(existing) = existing {
        let reply = repo::reply_to(tx, conversation_id, existing.id).await?;
        let unanswered = reply.is_none() && conv.status == ConversationStatus::Active;
        if !unanswered {
            return Ok(Checked::Replayed(Box::new(TurnOutput {
                message: existing,
                reply,
                escalation: None,
                handoff: human,
                replayed: true,
            })));
        }
        // Stored but never answered: either the first attempt is still running, or it
        // failed after storing the message. Only the latter is resumed.
        if now - existing.created_at < chrono::Duration::seconds(RESUME_AFTER_SECS) {
            return Err(ApiError::conflict("duplicate_message", "this message is already being answered"));
        }
        resume = Some(existing);
    }
    if conv.status.is_closed() {
        return Err(ApiError::conflict("conversation_closed", "this conversation has ended; start a new one"));
    }
    let agent = agent.ok_or(ApiError::NotFound)?;
    if agent.status != AgentStatus::Active {
        return Err(ApiError::conflict("agent_unavailable", "this assistant is not taking messages right now"));
    }
    check_plan(status, &limits, used)?;
    let rules = rules_from_rows(&rules);
    Ok(Checked::Go(Box::new(Go { conv, agent, resume, history, turns_before, stored_before, rules, webhooks })))
}

/// Ends the checks' transaction: commits a replay, rolls back a refusal, and otherwise stores
/// the customer's message and commits it (unless an earlier attempt already stored it).
async fn store(
    tx: TenantTx,
    checked: Result<Checked, ApiError>,
    conversation_id: Uuid,
    input: &TurnInput,
    score: f32,
) -> Result<Stored, ApiError> {
    let mut go = match checked {
        Ok(Checked::Go(go)) => *go,
        Ok(Checked::Replayed(out)) => {
            tx.commit().await?;
            return Ok(Stored::Replayed(out));
        }
        Err(e) => return tx.finish(Err(e)).await,
    };
    match go.resume.take() {
        // Already stored, so already counted and in the history read.
        Some(m) => tx.finish(Ok(Stored::Go { go: Box::new(go), message: m, inserted: false })).await,
        None => {
            // The insert and the COMMIT in one round trip.
            let inserted = tx
                .commit_alongside(repo::insert_message(
                    &tx,
                    conversation_id,
                    "user",
                    &input.content,
                    input.client_message_id.as_deref(),
                    &json!({}),
                    Some(f64::from(score)),
                ))
                .await;
            match inserted {
                Ok(message) => Ok(Stored::Go { go: Box::new(go), message, inserted: true }),
                Err(e) => {
                    let e = match e.unique_violation() {
                        // A concurrent retry with the same client id won the race.
                        Some(_) => ApiError::conflict("duplicate_message", "this message is already being answered"),
                        None => ApiError::from(e),
                    };
                    tx.finish(Err(e)).await
                }
            }
        }
    }
}

/// Stage 4, retrieval: the agent's categories plus global knowledge, with its RAG config (none
/// while a human owns the conversation or outside business hours), once [`check`] sent the
/// plan.
async fn retrieve_passages(
    deps: &AppDeps,
    ctx: &TenantCtx,
    plan: oneshot::Receiver<SearchRequest>,
    started: Instant,
) -> Vec<SearchHit> {
    let Ok(request) = plan.await else {
        return Vec::new();
    };
    // A search outage degrades the answer (no passages, low confidence) instead of failing
    // the turn.
    let hits = knowledge::search(deps, ctx, &request).await;
    mark(started, "passages retrieved");
    hits.unwrap_or_else(|e| {
        tracing::error!(error.chain = %crate::error::error_chain(&e), "knowledge search failed; answering without it");
        Vec::new()
    })
}

/// The turn's knowledge search, decided from the conversation and its agent alone: the
/// agent's categories plus global knowledge, with its RAG config. `None` when the turn will
/// not use passages (a human owns the conversation, outside business hours, RAG off) or will
/// not get that far (conversation or agent gone, closed or inactive).
fn search_plan(
    conv: Option<&repo::ConversationState>,
    agent: Option<&ChatAgent>,
    input: &TurnInput,
    now: DateTime<Utc>,
) -> Option<SearchRequest> {
    let (conv, agent) = (conv?, agent?);
    if conv.status.is_human() || conv.status.is_closed() || agent.status != AgentStatus::Active || !agent.rag_enabled {
        return None;
    }
    // An invalid schedule counts as always open (the turn logs it).
    if closed_hours(agent, &input.hours, now).ok().flatten().is_some() {
        return None;
    }
    Some(agent.search_request(input.content.clone()))
}

/// The subscription must be usable and the month's message allowance (`used` so far) not
/// used up.
fn check_plan(status: Option<SubscriptionStatus>, limits: &Value, used: i64) -> Result<(), ApiError> {
    match status {
        Some(s) if s.is_usable() => {}
        Some(other) => {
            return Err(ApiError::PaymentRequired {
                code: "subscription_inactive",
                message: format!("this support chat is unavailable (subscription {other})"),
            })
        }
        None => {
            return Err(ApiError::PaymentRequired {
                code: "subscription_inactive",
                message: "this support chat is unavailable (no subscription)".into(),
            })
        }
    }
    if let Some(max) = crate::repo::plans::limit_of(limits, "messagesPerMonth") {
        if used >= max {
            return Err(ApiError::TooManyRequests {
                message: format!("this month's {max} messages are used up"),
                retry_after_secs: 3600,
            });
        }
    }
    Ok(())
}

/// The company's escalation rules that apply to this conversation, from their rows.
pub(super) fn rules_from_rows(rows: &[Row]) -> Vec<Rule> {
    rows.iter()
        .map(|r| {
            let keywords: Vec<String> = r.get(2);
            Rule::from_table_row(r.get(0), r.get::<_, String>(1).as_str(), &keywords, &r.get(3), r.get(4), r.get(5))
        })
        .collect()
}
