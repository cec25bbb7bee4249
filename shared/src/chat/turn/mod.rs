//! The chat turn: a customer message in, a grounded answer (or a handoff) out.
//!
//! Order matters and is the contract: the agent must be active; subscription state and plan
//! limits are checked before anything is stored or any model is called; the customer's message
//! is persisted (committed) before generation, so it is never lost (retrieval, which only
//! reads, runs while it commits); escalation is
//! decided from signals (keywords, explicit request, sentiment, retrieval confidence, turn
//! count), never from the model's reply; while a human owns the conversation the AI is silent.

mod finish;
mod open;
pub mod preview;
mod reply;
mod tool_loop;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::escalation::Rule;
use super::hours::BusinessHours;
use super::model::DeltaSink;
use super::sentiment;
use crate::app::AppDeps;
use crate::error::ApiError;
use crate::repo::chat::{ChatAgent, Message};
use crate::tenant::TenantCtx;
use finish::silent;
use open::{open, Go, OpenTurn, Opened};
use reply::{escalation_for, generate, hand_over, outside_hours};

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

#[derive(Clone, Debug, Default)]
pub struct TurnInput {
    pub content: String,
    pub client_message_id: Option<String>,
    /// How the agent's business hours apply (a messaging channel's setting; the agent's own
    /// hours everywhere else).
    pub hours: HoursPolicy,
}

/// How the agent's business hours apply to a turn.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum HoursPolicy {
    /// The agent's hours and its outside-hours message.
    #[default]
    Agent,
    /// Open at all hours (a channel staffed around the clock).
    AlwaysOpen,
    /// The agent's hours, with this message outside them.
    OutsideMessage(String),
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
    Ok(TurnInput { content: content.to_string(), client_message_id, hours: HoursPolicy::Agent })
}

/// Runs one turn in `conversation` (which the caller's session or key has been checked to
/// open). `on_delta` receives the answer as it is generated.
///
/// The stages, in order: `open` checks the turn and stores the customer's message while the
/// retrieval runs; then a human owning the conversation keeps the AI silent (`silent`),
/// closed business hours send the configured message (`outside_hours`), a firing escalation
/// hands the conversation over (`hand_over`), and otherwise the model answers from the
/// passages (`generate`). Every path ends in `finish`, the turn's last transaction; then the
/// jobs and events the turn's transactions wrote to the outbox are relayed.
pub async fn turn(
    deps: &AppDeps,
    ctx: &TenantCtx,
    conversation_id: Uuid,
    input: &TurnInput,
    on_delta: DeltaSink<'_>,
) -> Result<TurnOutput, ApiError> {
    // Unless the turn wrote nothing to the outbox (no handoff, no outbound webhook), in which
    // case the relay's round trip is saved.
    let relay = AtomicBool::new(true);
    let out = run(deps, ctx, conversation_id, input, on_delta, &relay).await;
    if relay.load(Ordering::Relaxed) {
        crate::outbox::relay_now(deps, RELAY).await;
    }
    out
}

/// What a turn's transactions may write to the outbox: the assignment job of a handoff, the
/// outbound events of its messages and status changes, and a channel reply's delivery job.
pub const RELAY: &[&str] =
    &[crate::adapters::queue::ESCALATION, crate::adapters::queue::OUTBOUND, crate::adapters::queue::CHANNEL_SEND];

async fn run(
    deps: &AppDeps,
    ctx: &TenantCtx,
    conversation_id: Uuid,
    input: &TurnInput,
    on_delta: DeltaSink<'_>,
    relay: &AtomicBool,
) -> Result<TurnOutput, ApiError> {
    let company = ctx.require_company()?.as_uuid();
    let started = Instant::now();
    let now = Utc::now();

    // 1. Checks, then the customer's message, in one transaction; 4. the retrieval alongside.
    let OpenTurn { go, message, inserted, sentiment: score, hits } =
        match open(deps, ctx, company, conversation_id, input, started, now).await? {
            Opened::Replayed(out) => {
                relay.store(false, Ordering::Relaxed);
                return Ok(*out);
            }
            Opened::Stored(opened) => *opened,
        };
    // A handoff always writes its assignment job; other events only for outbound webhooks, and
    // a messaging channel's reply its delivery job.
    relay.store(go.webhooks || go.conv.on_messaging_channel(), Ordering::Relaxed);
    let human = go.conv.status.is_human();
    let closed = closed_hours(&go.agent, &input.hours, now).unwrap_or_else(|e| {
        tracing::warn!(agent = %go.agent.id, error = %e, "ignoring invalid business_hours");
        None
    });
    let staged = stage(conversation_id, go, message, inserted, score);

    // 2. A human owns the conversation: the AI stays silent.
    if human {
        return silent(deps, ctx, staged).await;
    }

    // 3. Outside business hours: the configured message, no model call.
    if let Some(hours) = closed {
        return outside_hours(deps, ctx, staged, &hours, on_delta).await;
    }
    let confidence = staged.agent.rag_enabled.then(|| hits.iter().filter_map(|h| h.dense_score).fold(0.0f32, f32::max));

    // 5. Escalation, decided from signals.
    if let Some(escalation) = escalation_for(&staged, confidence) {
        relay.store(true, Ordering::Relaxed);
        return hand_over(deps, ctx, company, staged, escalation, "", None, on_delta).await;
    }

    // 6. Generation, grounded in the retrieved passages; a failure never loses the turn.
    let out = generate(deps, ctx, staged, &hits, confidence, started, on_delta).await;
    if out.as_ref().is_ok_and(|o| o.escalation.is_some()) {
        // A tool handed the conversation over: its assignment job is in the outbox.
        relay.store(true, Ordering::Relaxed);
    }
    out
}

/// The turn once the customer's message is stored: the counts with it, the model's window of
/// the history, and the conversation's running sentiment average.
fn stage(conversation_id: Uuid, go: Go, message: Message, inserted: bool, score: f32) -> Staged {
    let Go { conv, agent, resume: _, mut history, turns_before, stored_before, rules, webhooks: _ } = go;
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
    Staged {
        conversation_id,
        customer_id: conv.customer_id,
        customer_name: conv.customer_name,
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
        tool_messages: Vec::new(),
    }
}

/// The turn after the customer's message is stored.
struct Staged {
    conversation_id: Uuid,
    customer_id: Option<String>,
    customer_name: Option<String>,
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
    /// The model's tool calls this turn, stored as `tool` messages before its reply.
    tool_messages: Vec<(String, Value)>,
}

/// The agent's business hours when they are closed at `now` (`None`: open, or no schedule).
fn closed_hours(agent: &ChatAgent, policy: &HoursPolicy, now: DateTime<Utc>) -> Result<Option<BusinessHours>, String> {
    let closed = match policy {
        HoursPolicy::AlwaysOpen => return Ok(None),
        HoursPolicy::Agent | HoursPolicy::OutsideMessage(_) => {
            agent.hours.as_ref().map_err(Clone::clone)?.as_ref().filter(|h| !h.is_open(now))
        }
    };
    Ok(closed.map(|h| match policy {
        HoursPolicy::OutsideMessage(m) => h.clone().with_outside_message(m),
        _ => h.clone(),
    }))
}
