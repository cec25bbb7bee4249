//! The end of every turn: its last transaction (the reply, the counters, the running
//! summary, usage), and the turn that stays silent while a human owns the conversation.

use serde_json::{json, Value};
use uuid::Uuid;

use super::{Staged, TurnOutput, HISTORY_WINDOW, SUMMARY_STEP};
use crate::app::AppDeps;
use crate::chat::model::Usage;
use crate::chat::summary::{self, Dropped};
use crate::error::ApiError;
use crate::repo::chat::{self as repo, Message};
use crate::status::ConversationStatus;
use crate::tenant::TenantCtx;

/// A turn while a human owns the conversation: the message is counted, the AI does not answer.
pub(super) async fn silent(deps: &AppDeps, ctx: &TenantCtx, staged: Staged) -> Result<TurnOutput, ApiError> {
    finish(deps, ctx, &staged, None, ConversationStatus::WithHuman, None).await?;
    Ok(TurnOutput { message: staged.message, reply: None, escalation: None, handoff: true, replayed: false })
}

/// The running summary's next step at the end of a turn.
enum SummaryStep {
    NotDue,
    /// The new summary and how many messages it covers, from the messages the turn read.
    Ready(String, i32),
    /// Due, but some of the messages to fold in were not among those the turn read (the
    /// summary fell behind, say after a failure): they are read after the turn commits, up to
    /// this many.
    Behind(i64),
}

/// Folds the messages that will be outside the next turn's history window into the running
/// summary, once SUMMARY_STEP of them have piled up, so a long conversation pays for it every
/// other turn, not every turn. `total` counts the conversation's messages after this turn.
fn summary_step(s: &Staged, total: i64) -> SummaryStep {
    let covered = i64::from(s.summarized_messages);
    // The next turn's window: the last HISTORY_WINDOW - 1 stored messages plus its own.
    let outside = total - (HISTORY_WINDOW - 1);
    if outside - covered < SUMMARY_STEP {
        return SummaryStep::NotDue;
    }
    // `history` holds the messages at positions first..stored; `outside` < stored always.
    let first = s.stored - s.history.len() as i64;
    if covered < first || outside > s.stored {
        return SummaryStep::Behind(outside);
    }
    let dropped: Vec<Dropped<'_>> = s.history[(covered - first) as usize..(outside - first) as usize]
        .iter()
        .map(|m| Dropped { role: &m.role, content: &m.content })
        .collect();
    SummaryStep::Ready(summary::extend(s.summary.as_deref(), &dropped), i32::try_from(outside).unwrap_or(i32::MAX))
}

/// The summary step of a turn whose summary fell behind what the turn read: the messages are
/// read back. Best effort, after the turn committed: a failure costs the summary one step,
/// never the answer.
async fn catch_up_summary(deps: &AppDeps, ctx: &TenantCtx, company: Uuid, s: &Staged, outside: i64) {
    let covered = i64::from(s.summarized_messages);
    let result = async {
        let tx = deps.db.begin(ctx).await?;
        let stored = async {
            let dropped = repo::message_range(&tx, s.conversation_id, covered, outside - covered).await?;
            let dropped: Vec<Dropped<'_>> = dropped.iter().map(|(role, content)| Dropped { role, content }).collect();
            let text = summary::extend(s.summary.as_deref(), &dropped);
            let covered_now = i32::try_from(outside).unwrap_or(i32::MAX);
            repo::store_summary(&tx, company, s.conversation_id, &text, s.summarized_messages, covered_now).await
        }
        .await;
        tx.finish(stored).await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error.chain = %crate::error::error_chain(&e), conversation = %s.conversation_id, "running summary not updated");
    }
}

/// A model's answer to account for: its tokens, and its price unless it ran offline.
pub(super) struct Priced {
    pub(super) model: String,
    pub(super) usage: Usage,
    pub(super) extractive: bool,
}

/// Writes the reply (if any) as long as the conversation's owner is still `owner` (checked under
/// the conversation's row lock: a support agent who took it over meanwhile wins, and the reply
/// is dropped), the counters, the running summary when its step is due, the
/// usage record (tokens and, for a priced model, the estimated cost; the tokens of a model the
/// catalog has no price for are counted as `unpriced_tokens`, never priced at 0) and the
/// customer's last-seen in one transaction. The writes go out in one pipelined round trip and run in a
/// fixed order (the conversation's rows, then the rows other turns share: agent, usage,
/// customer), so concurrent turns always lock them in the same order and cannot deadlock.
pub(super) async fn finish(
    deps: &AppDeps,
    ctx: &TenantCtx,
    s: &Staged,
    reply: Option<(&str, Value)>,
    owner: ConversationStatus,
    priced: Option<Priced>,
) -> Result<Option<Message>, ApiError> {
    let company = ctx.require_company()?.as_uuid();
    let conversation = s.conversation_id;
    let tx = deps.db.begin(ctx).await?;
    let mut reply = reply;
    if reply.is_some() {
        let now = repo::lock_owner(&tx, company, conversation).await;
        let now = match now {
            Ok(now) => now,
            Err(e) => return tx.finish(Err(ApiError::from(e))).await,
        };
        if now != Some(owner) {
            tracing::info!(%conversation, ?now, "reply dropped: the conversation changed hands during the turn");
            reply = None;
        }
    }
    let ai = reply.is_some();
    let total = s.stored + i64::from(ai);
    let step = summary_step(s, total);
    let written = Box::pin(async {
        let (mut tokens, mut cost, mut unpriced) = (0i32, 0.0f64, 0i32);
        let mut reply = reply;
        if let Some(p) = &priced {
            tokens = i32::try_from(p.usage.input_tokens + p.usage.output_tokens).unwrap_or(i32::MAX);
            if !p.extractive {
                match crate::repo::models::price_for(&tx, &p.model).await? {
                    Some((input_price, output_price)) => {
                        cost = (f64::from(p.usage.input_tokens) * input_price
                            + f64::from(p.usage.output_tokens) * output_price)
                            / 1_000_000.0;
                        if let Some((_, meta)) = reply.as_mut() {
                            meta["estimated_cost"] = json!(cost);
                        }
                    }
                    // Not a silent 0: the tokens are counted as unpriced and the reply says so.
                    None => {
                        tracing::warn!(model = %p.model, "no price for this model: usage recorded without a cost");
                        unpriced = tokens;
                        if let Some((_, meta)) = reply.as_mut() {
                            meta["estimated_cost"] = Value::Null;
                            meta["cost_unknown"] = json!(true);
                        }
                    }
                }
            }
        }
        if !s.tool_messages.is_empty() {
            repo::insert_tool_messages(&tx, conversation, &s.tool_messages).await?;
        }
        repo::prepare_turn_finish(&tx).await?;
        let insert = async {
            match &reply {
                Some((text, meta)) => {
                    repo::insert_message(&tx, conversation, "assistant", text, None, meta, None).await.map(Some)
                }
                None => Ok(None),
            }
        };
        let touch = async {
            match &s.customer_id {
                Some(c) => repo::touch_customer(&tx, company, c).await,
                None => Ok(()),
            }
        };
        let summarize = async {
            match &step {
                SummaryStep::Ready(text, covered) => {
                    // Not stored when a concurrent turn moved the summary on first: its one stands.
                    repo::store_summary(&tx, company, conversation, text, s.summarized_messages, *covered).await?;
                    Ok(())
                }
                SummaryStep::NotDue | SummaryStep::Behind(_) => Ok(()),
            }
        };
        // One round trip, COMMIT included; the statements run in the order written.
        let (reply, (), (), (), (), ()) = tx
            .commit_alongside(async {
                tokio::try_join!(
                    biased;
                    insert,
                    repo::count_conversation(&tx, company, conversation, f64::from(s.average), ai),
                    summarize,
                    repo::count_agent_messages(&tx, company, s.agent.id, 1 + i32::from(ai)),
                    repo::record_usage(&tx, company, s.agent.id, 1, i32::from(ai), tokens, cost, unpriced),
                    touch,
                )
            })
            .await?;
        Ok::<_, ApiError>(reply)
    })
    .await;
    // Committed with the writes; on an error the transaction is rolled back.
    let reply = match written {
        Ok(reply) => reply,
        Err(e) => return tx.finish(Err(e)).await,
    };
    if let SummaryStep::Behind(outside) = step {
        catch_up_summary(deps, ctx, company, s, outside).await;
    }
    Ok(reply)
}
