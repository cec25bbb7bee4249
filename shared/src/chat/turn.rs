//! The chat turn: a customer message in, a grounded answer (or a handoff) out.
//!
//! Order matters and is the contract: the agent must be active; subscription state and plan
//! limits are checked before anything is stored or any model is called; the customer's message
//! is persisted (committed) before generation, so it is never lost (retrieval, which only
//! reads, runs while it commits); escalation is
//! decided from signals (keywords, explicit request, sentiment, retrieval confidence, turn
//! count), never from the model's reply; while a human owns the conversation the AI is silent.

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::escalation::{self, EscalationConfig, Rule, TurnSignals};
use super::hours::BusinessHours;
use super::model::{ChatMessage, ChatRequest, DeltaSink, Passage, Role, Usage};
use super::sentiment;
use super::summary::{self, Dropped};
use crate::adapters::queue::{ESCALATION, OUTBOUND};
use crate::app::AppDeps;
use crate::error::ApiError;
use crate::knowledge::service::{self as knowledge, RagConfig, SearchHit, SearchMode, SearchRequest};
use crate::knowledge::vector::Scope;
use crate::repo::chat::{self as repo, ChatAgent, Message};
use crate::tenant::TenantCtx;

pub const MAX_MESSAGE_CHARS: usize = 4000;
/// A stored customer message without an answer is resumed by a retry after this long (longer
/// than any turn takes, model timeouts included), so a retry never races a running turn.
const RESUME_AFTER_SECS: i64 = 120;
/// Messages of history sent to the model (besides the summary).
const HISTORY_WINDOW: i64 = 12;
/// The running summary is brought up to date once this many messages have left the window
/// since it last was, so a long conversation pays for it every other turn, not every turn.
const SUMMARY_STEP: i64 = 4;
const HANDOFF_MESSAGE: &str =
    "I'm connecting you with a member of our support team. Someone will reply here as soon as possible.";
const FALLBACK_MESSAGE: &str =
    "Sorry, I can't answer right now. Your message has been saved and our team will follow up.";

/// The `tracing` target of the turn's phase marks: debug events with the time since the turn
/// started (`elapsed_us`) at each step of an answered turn, so a profile of many turns (the
/// chat bench prints one) shows which step its time goes to.
pub const PHASE_TARGET: &str = "chatapp::chat::turn::phase";

fn mark(started: Instant, phase: &'static str) {
    tracing::debug!(target: PHASE_TARGET, phase, elapsed_us = started.elapsed().as_micros() as u64);
}

#[derive(Clone, Debug)]
pub struct TurnInput {
    pub content: String,
    pub client_message_id: Option<String>,
}

/// What the turn produced.
#[derive(Clone, Debug, Serialize)]
pub struct TurnOutput {
    pub message: Message,
    /// The AI's (or the system's) answer; `None` while a human owns the conversation.
    pub reply: Option<Message>,
    pub escalation: Option<Value>,
    /// The conversation waits for or is with a human.
    pub handoff: bool,
    /// A retried send: the stored result of the first one, nothing new written.
    pub replayed: bool,
}

/// A customer message, as the widget and the chat API send it.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TurnRequest {
    /// The message, at most 4000 characters.
    pub content: String,
    /// The client's id for the message (1-100 printable characters): a retried send with the
    /// same id replays the stored result instead of answering twice.
    pub client_message_id: Option<String>,
}

/// A chat turn as the API answers it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TurnResponse {
    /// The customer's message as stored.
    pub message: Message,
    /// The answer; `null` while a human owns the conversation.
    pub reply: Option<Message>,
    /// The sources the answer cites (`[]` without an answer).
    #[schema(value_type = Vec<Object>)]
    pub citations: Value,
    /// The escalation this turn raised, if any.
    #[schema(value_type = Option<Object>)]
    pub escalation: Option<Value>,
    /// The conversation waits for or is with a human.
    pub handoff: bool,
    /// A retried send: the stored result of the first one, nothing new written.
    pub replayed: bool,
}

impl From<TurnOutput> for TurnResponse {
    fn from(out: TurnOutput) -> Self {
        let citations = out.reply.as_ref().map(|r| r.metadata["citations"].clone()).unwrap_or(json!([]));
        Self {
            message: out.message,
            reply: out.reply,
            citations,
            escalation: out.escalation,
            handoff: out.handoff,
            replayed: out.replayed,
        }
    }
}

/// Parses and checks the customer's input at the edge.
pub fn validate(content: &str, client_message_id: Option<&str>) -> Result<TurnInput, ApiError> {
    let content = content.trim();
    if content.is_empty() {
        return Err(ApiError::validation("content must not be empty"));
    }
    if content.chars().count() > MAX_MESSAGE_CHARS {
        return Err(ApiError::validation(format!("content must be at most {MAX_MESSAGE_CHARS} characters")));
    }
    let client_message_id = match client_message_id.map(str::trim) {
        None => None,
        Some(id) if id.is_empty() || id.len() > 100 || id.chars().any(char::is_control) => {
            return Err(ApiError::validation("client_message_id must be 1-100 printable characters"))
        }
        Some(id) => Some(id.to_string()),
    };
    Ok(TurnInput { content: content.to_string(), client_message_id })
}

/// Runs one turn in `conversation` (which the caller's session or key has been checked to
/// open). `on_delta` receives the answer as it is generated.
pub async fn turn(
    deps: &AppDeps,
    ctx: &TenantCtx,
    conversation_id: Uuid,
    input: &TurnInput,
    on_delta: DeltaSink<'_>,
) -> Result<TurnOutput, ApiError> {
    let company = ctx.require_company()?.as_uuid();
    let started = Instant::now();
    let now = Utc::now();

    // 1. Checks, then the customer's message, in one transaction. The BEGIN, the conversation's
    // lock and everything the checks and the prompt need go out in one round trip; the reads
    // run after the lock, so they see the previous turn of this conversation committed.
    // Retrieval needs only the first two results (the conversation and its agent): it starts
    // as soon as they are in and runs while the other reads, the checks and the commit of the
    // customer's message go on. It only reads, so a turn that stops early just drops it.
    let (plan_sender, plan) = tokio::sync::oneshot::channel::<SearchRequest>();
    let tx = deps.db.begin(ctx).await?;
    let score = sentiment::score(&input.content);
    // Boxed: the turn's future is large, and debug builds keep it on the stack.
    let mut checked_and_stored = Box::pin(async {
        let checked = async {
            repo::prepare_turn_start(&tx).await?;
            let conversation_and_agent = async {
                let (conv, agent) = tokio::try_join!(
                    biased;
                    repo::lock_conversation(&tx, company, conversation_id),
                    repo::agent_of_conversation(&tx, company, conversation_id),
                )?;
                mark(started, "conversation and agent read");
                if let Some(request) = search_plan(conv.as_ref(), agent.as_ref(), &input.content, now) {
                    let _ = plan_sender.send(request);
                }
                Ok((conv, agent))
            };
            let by_client_id = async {
                match &input.client_message_id {
                    Some(id) => repo::message_by_client_id(&tx, conversation_id, id).await,
                    None => Ok(None),
                }
            };
            // The history read covers the window plus what the summary does not cover yet (it is
            // brought up to date every SUMMARY_STEP messages); the model's window is cut from it below.
            let ((conv, agent), existing, (status, limits), used, (turns_before, stored_before), history, rules) = tokio::try_join!(
                biased;
                conversation_and_agent,
                by_client_id,
                repo::subscription(&tx, company),
                repo::messages_this_month(&tx, company),
                repo::message_counts(&tx, conversation_id),
                repo::history(&tx, company, conversation_id, HISTORY_WINDOW + SUMMARY_STEP),
                repo::escalation_rules(&tx, company, conversation_id),
            )?;
            let conv = conv.ok_or(ApiError::NotFound)?;
            let human = is_human(&conv.status);
            let mut resume = None;
            if let Some(existing) = existing {
                let reply = repo::reply_to(&tx, conversation_id, existing.id).await?;
                let unanswered = reply.is_none() && conv.status == "active";
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
            if is_closed(&conv.status) {
                return Err(ApiError::conflict("conversation_closed", "this conversation has ended; start a new one"));
            }
            let agent = agent.ok_or(ApiError::NotFound)?;
            if agent.status != "active" {
                return Err(ApiError::conflict("agent_unavailable", "this assistant is not taking messages right now"));
            }
            check_plan(status.as_deref(), &limits, used)?;
            let rules: Vec<Rule> = rules
                .iter()
                .map(|r| {
                    let keywords: Vec<String> = r.get(2);
                    Rule::from_table_row(
                        r.get(0),
                        r.get::<_, String>(1).as_str(),
                        &keywords,
                        &r.get(3),
                        r.get(4),
                        r.get(5),
                    )
                })
                .collect();
            Ok::<_, ApiError>(Checked::Go(Box::new(Go {
                conv,
                agent,
                resume,
                history,
                turns_before,
                stored_before,
                rules,
            })))
        };
        // Then the customer's message is stored and committed; generation starts once it is,
        // and the retrieval is done.
        let checked = checked.await;
        mark(started, "checks read");
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
                            Some(_) => {
                                ApiError::conflict("duplicate_message", "this message is already being answered")
                            }
                            None => ApiError::from(e),
                        };
                        tx.finish(Err(e)).await
                    }
                }
            }
        }
    });
    // 4. Retrieval: the agent's categories plus global knowledge, with its RAG config (none
    // while a human owns the conversation or outside business hours).
    let mut retrieve = Box::pin(async {
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
    });
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
        Stored::Replayed(out) => return Ok(*out),
    };
    mark(started, "customer message committed");
    let hits: Vec<SearchHit> = match early_hits {
        Some(hits) => hits,
        None => retrieve.await,
    };
    let Go { conv, agent, resume: _, mut history, turns_before, stored_before, rules } = go;
    let human = is_human(&conv.status);
    let closed = closed_hours(&agent, now).unwrap_or_else(|e| {
        tracing::warn!(agent = %agent.id, error = %e, "ignoring invalid business_hours");
        None
    });
    let (turns, stored) = if inserted {
        history.push(message.clone());
        (turns_before + 1, stored_before + 1)
    } else {
        (turns_before, stored_before)
    };
    // The model sees the last HISTORY_WINDOW messages, and more while the summary lags behind
    // them, so every message reaches it in one or the other. The older ones read stay for the
    // summary's next step.
    let unsummarized = stored - i64::from(conv.summarized_messages);
    let keep = unsummarized.clamp(HISTORY_WINDOW, HISTORY_WINDOW + SUMMARY_STEP) as usize;
    let window_start = history.len().saturating_sub(keep);
    let average = sentiment::running_average(
        conv.average_sentiment.map(|a| a as f32),
        u32::try_from(turns - 1).unwrap_or(0),
        score,
    );
    let staged = Staged {
        conversation_id,
        customer_id: conv.customer_id,
        summary: conv.summary,
        summarized_messages: conv.summarized_messages,
        stored,
        agent,
        message,
        sentiment: score,
        average,
        turns: u32::try_from(turns).unwrap_or(u32::MAX),
        history,
        window_start,
        rules,
    };

    // 2. A human owns the conversation: the AI stays silent.
    if human {
        return silent(deps, ctx, staged).await;
    }

    // 3. Outside business hours: the configured message, no model call.
    if let Some(h) = closed {
        let text = h.outside_message().to_string();
        on_delta(&text);
        let meta = json!({"reply_to": staged.message.id, "kind": "outside_hours"});
        let reply = finish(deps, ctx, &staged, Some((text.as_str(), meta)), None).await?;
        return Ok(TurnOutput { message: staged.message, reply, escalation: None, handoff: false, replayed: false });
    }
    let confidence = staged.agent.rag_enabled.then(|| hits.iter().filter_map(|h| h.dense_score).fold(0.0f32, f32::max));

    // 5. Escalation, decided from signals.
    let cfg = EscalationConfig::from_agent_json(&staged.agent.escalation_rules);
    let signals = TurnSignals {
        message: &staged.message.content,
        sentiment: staged.sentiment,
        confidence,
        customer_turns: staged.turns,
    };
    if let Some(e) = escalation::detect(&cfg, &staged.rules, &signals) {
        let details = json!({"trigger": e.trigger.as_str(), "details": e.details, "priority": e.priority.as_str(),
                             "reason": e.reason});
        let meta = json!({"reply_to": staged.message.id, "kind": "handoff", "escalation": details});
        let tx = deps.db.begin(ctx).await?;
        let escalated = async {
            let Some(id) = repo::escalate(
                &tx,
                &repo::NewEscalation {
                    conversation_id,
                    company_id: company,
                    agent_id: staged.agent.id,
                    reason: &e.reason,
                    trigger_type: e.trigger.as_str(),
                    details: &e.details,
                    priority: e.priority.as_str(),
                },
            )
            .await?
            else {
                return Ok(None);
            };
            // Jobs inside the transaction: no escalation row without its job, and vice versa.
            let job = json!({"company_id": company, "conversation_id": conversation_id, "escalation_id": id,
                             "priority": e.priority.as_str()});
            deps.queue.send(ESCALATION, &job).await.map_err(ApiError::internal)?;
            for event in ["conversation.status_changed", "escalation.created"] {
                let payload = json!({"type": event, "company_id": company, "conversation_id": conversation_id,
                                     "escalation_id": id, "status": "waiting_human", "at": Utc::now()});
                deps.queue.send(OUTBOUND, &payload).await.map_err(ApiError::internal)?;
            }
            Ok::<_, ApiError>(Some(id))
        }
        .await;
        let Some(id) = tx.finish(escalated).await? else {
            // A concurrent turn handed the conversation over first: the AI is already silent.
            return silent(deps, ctx, staged).await;
        };
        on_delta(HANDOFF_MESSAGE);
        let mut escalation = details;
        escalation["id"] = json!(id);
        let reply = finish(deps, ctx, &staged, Some((HANDOFF_MESSAGE, meta)), None).await?;
        return Ok(TurnOutput {
            message: staged.message,
            reply,
            escalation: Some(escalation),
            handoff: true,
            replayed: false,
        });
    }

    // 6. Generation, grounded in the retrieved passages; a failure never loses the turn.
    let passages: Vec<Passage> = hits
        .iter()
        .enumerate()
        .map(|(i, h)| Passage {
            number: i + 1,
            source: h.chunk.source_name.clone(),
            text: h.chunk.content.clone(),
            score: h.dense_score.unwrap_or(h.score),
        })
        .collect();
    let request = ChatRequest {
        messages: prompt(&staged.agent, staged.summary.as_deref(), &staged.history[staged.window_start..]),
        passages,
        max_tokens: staged.agent.llm_config.get("maxTokens").and_then(Value::as_u64).unwrap_or(600) as u32,
        temperature: staged.agent.llm_config.get("temperature").and_then(Value::as_f64).unwrap_or(0.3) as f32,
    };
    let generation_started = Instant::now();
    let citations: Vec<Value> = hits
        .iter()
        .enumerate()
        .map(|(i, h)| {
            json!({"n": i + 1, "chunk_id": h.chunk.chunk_id, "file_id": h.chunk.file_id,
                   "article_id": h.chunk.article_id, "source": h.chunk.source_name,
                   "start_offset": h.chunk.start_offset, "end_offset": h.chunk.end_offset,
                   "page": h.chunk.page_number, "section": h.chunk.section_title, "score": h.score})
        })
        .collect();
    let (text, meta, priced) = match deps.chat.complete(&request, on_delta).await {
        Ok(answer) => {
            let meta = json!({
                "reply_to": staged.message.id, "kind": "answer", "model": answer.model,
                "extractive": answer.extractive, "tokens_in": answer.usage.input_tokens,
                "tokens_out": answer.usage.output_tokens, "latency_ms": generation_started.elapsed().as_millis() as u64,
                "turn_ms": started.elapsed().as_millis() as u64, "confidence": confidence,
                "finish_reason": answer.finish_reason, "citations": citations, "estimated_cost": 0.0,
            });
            let priced = Priced { model: answer.model.clone(), usage: answer.usage, extractive: answer.extractive };
            (answer.text, meta, Some(priced))
        }
        Err(e) => {
            tracing::error!(error.chain = %crate::error::error_chain(&e), agent = %staged.agent.id, "chat model failed; sent the fallback response");
            let text = staged
                .agent
                .fallback_responses
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or(FALLBACK_MESSAGE)
                .to_string();
            let meta = json!({"reply_to": staged.message.id, "kind": "fallback", "model": deps.chat.name(),
                              "error": e.to_string(), "confidence": confidence});
            (text, meta, None)
        }
    };
    mark(started, "answer generated");
    let reply = finish(deps, ctx, &staged, Some((text.as_str(), meta)), priced).await?;
    mark(started, "answer committed");
    Ok(TurnOutput { message: staged.message, reply, escalation: None, handoff: false, replayed: false })
}

/// A turn while a human owns the conversation: the message is counted, the AI does not answer.
async fn silent(deps: &AppDeps, ctx: &TenantCtx, staged: Staged) -> Result<TurnOutput, ApiError> {
    finish(deps, ctx, &staged, None, None).await?;
    Ok(TurnOutput { message: staged.message, reply: None, escalation: None, handoff: true, replayed: false })
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

/// A human owns the conversation (or is about to): the AI stays silent.
fn is_human(status: &str) -> bool {
    matches!(status, "waiting_human" | "with_human")
}

fn is_closed(status: &str) -> bool {
    matches!(status, "resolved" | "abandoned")
}

/// The agent's business hours when they are closed at `now` (`None`: open, or no schedule).
fn closed_hours(agent: &ChatAgent, now: DateTime<Utc>) -> Result<Option<BusinessHours>, String> {
    Ok(BusinessHours::from_json(&agent.business_hours)?.filter(|h| !h.is_open(now)))
}

/// The turn's knowledge search, decided from the conversation and its agent alone: the
/// agent's categories plus global knowledge, with its RAG config. `None` when the turn will
/// not use passages (a human owns the conversation, outside business hours, RAG off) or will
/// not get that far (conversation or agent gone, closed or inactive).
fn search_plan(
    conv: Option<&repo::ConversationState>,
    agent: Option<&ChatAgent>,
    query: &str,
    now: DateTime<Utc>,
) -> Option<SearchRequest> {
    let (conv, agent) = (conv?, agent?);
    if is_human(&conv.status) || is_closed(&conv.status) || agent.status != "active" || !agent.rag_enabled {
        return None;
    }
    // An invalid schedule counts as always open (the turn logs it).
    if closed_hours(agent, now).ok().flatten().is_some() {
        return None;
    }
    let rag = RagConfig::from_json(&agent.rag_config);
    Some(SearchRequest {
        query: query.to_string(),
        mode: SearchMode::Hybrid,
        max_results: rag.max_results,
        relevance_threshold: rag.relevance_threshold,
        scope: Scope { categories: Some(agent.categories.clone()), files: None, include_global: true },
    })
}

/// What the checks read, for the rest of the turn.
struct Go {
    conv: repo::ConversationState,
    agent: ChatAgent,
    /// The customer's message, already stored by an earlier attempt that failed.
    resume: Option<Message>,
    history: Vec<Message>,
    turns_before: i64,
    stored_before: i64,
    rules: Vec<Rule>,
}

/// The turn after the customer's message is stored.
struct Staged {
    conversation_id: Uuid,
    customer_id: Option<String>,
    summary: Option<String>,
    summarized_messages: i32,
    /// Messages stored in the conversation, the customer's new one included.
    stored: i64,
    agent: ChatAgent,
    message: Message,
    sentiment: f32,
    average: f32,
    turns: u32,
    /// The conversation's last `history.len()` messages, oldest first, the customer's new one
    /// last; the model's window is `history[window_start..]`.
    history: Vec<Message>,
    window_start: usize,
    rules: Vec<Rule>,
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

/// The subscription must be usable and the month's message allowance (`used` so far) not
/// used up.
fn check_plan(status: Option<&str>, limits: &Value, used: i64) -> Result<(), ApiError> {
    match status {
        Some("trial" | "active" | "grace_period") => {}
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

/// The system prompt (with personality and response style), the running summary, then the
/// recent history ending with the customer's message.
fn prompt(agent: &ChatAgent, summary: Option<&str>, history: &[Message]) -> Vec<ChatMessage> {
    let mut system = agent
        .system_prompt
        .clone()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| format!("You are {}, a friendly customer-support assistant.", agent.name));
    if let Some(p) = agent.personality.as_deref().filter(|p| !p.trim().is_empty()) {
        system.push_str(&format!("\n\nPersonality: {p}"));
    }
    if agent.response_style.as_object().is_some_and(|o| !o.is_empty()) {
        system.push_str(&format!("\n\nResponse style: {}", agent.response_style));
    }
    if let Some(s) = summary.filter(|s| !s.trim().is_empty()) {
        system.push_str(&format!("\n\nSummary of the conversation so far: {s}"));
    }
    let mut messages = vec![ChatMessage { role: Role::System, content: system }];
    for m in history {
        let role = match m.role.as_str() {
            "user" => Role::User,
            "assistant" | "human_agent" => Role::Assistant,
            _ => continue,
        };
        messages.push(ChatMessage { role, content: m.content.clone() });
    }
    messages
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
struct Priced {
    model: String,
    usage: Usage,
    extractive: bool,
}

/// Writes the reply (if any), the counters, the running summary when its step is due, the
/// usage record (tokens and, for a priced model, the estimated cost) and the customer's
/// last-seen in one transaction. The writes go out in one pipelined round trip and run in a
/// fixed order (the conversation's rows, then the rows other turns share: agent, usage,
/// customer), so concurrent turns always lock them in the same order and cannot deadlock.
async fn finish(
    deps: &AppDeps,
    ctx: &TenantCtx,
    s: &Staged,
    reply: Option<(&str, Value)>,
    priced: Option<Priced>,
) -> Result<Option<Message>, ApiError> {
    let company = ctx.require_company()?.as_uuid();
    let conversation = s.conversation_id;
    let ai = reply.is_some();
    let total = s.stored + i64::from(ai);
    let step = summary_step(s, total);
    let tx = deps.db.begin(ctx).await?;
    let written = Box::pin(async {
        let (mut tokens, mut cost) = (0i32, 0.0f64);
        let mut reply = reply;
        if let Some(p) = &priced {
            tokens = i32::try_from(p.usage.input_tokens + p.usage.output_tokens).unwrap_or(i32::MAX);
            if !p.extractive {
                let (input_price, output_price) = repo::model_price(&tx, &p.model).await?;
                cost = (f64::from(p.usage.input_tokens) * input_price
                    + f64::from(p.usage.output_tokens) * output_price)
                    / 1_000_000.0;
                if let Some((_, meta)) = reply.as_mut() {
                    meta["estimated_cost"] = json!(cost);
                }
            }
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
                    repo::record_usage(&tx, company, s.agent.id, 1, i32::from(ai), tokens, cost),
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
