//! A preview turn: what a customer would get from an agent's configuration (its draft, or a
//! version), and what an admin needs to judge it, with nothing written anywhere: no
//! conversation, message, usage or analytics row, no escalation, no outbox job.
//!
//! It runs the turn's stages on the given history and message: business hours, retrieval with
//! the agent's settings, the escalation decision from the same signals (a firing escalation
//! answers with the handoff message, as the turn does, and says which signal fired), then the
//! model with the agent's tools. A tool asking for a person or to end the conversation is
//! reported, not carried out; HTTP actions are called, as the admin defined them.

use chrono::Utc;
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::open::rules_from_rows;
use super::reply::{fallback_text, passages, prompt, stream_handoff, toolbox};
use super::{tool_loop, HANDOFF_MESSAGE};
use crate::app::AppDeps;
use crate::chat::escalation::{self, TurnSignals};
use crate::chat::model::{estimate_tokens, render_messages, ChatRequest, DeltaSink};
use crate::chat::sentiment;
use crate::chat::tools::Effect;
use crate::error::ApiError;
use crate::knowledge::service::{self as knowledge, SearchHit};
use crate::repo::chat::{self as repo, ChatAgent, Message};
use crate::tenant::TenantCtx;

/// An earlier message of the previewed conversation.
#[derive(Clone, Debug)]
pub struct PreviewMessage {
    /// `user` or `assistant`.
    pub role: String,
    pub content: String,
}

/// A passage the preview retrieved, with its scores.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct PreviewPassage {
    /// The `[n]` the answer cites it by.
    pub n: usize,
    pub source: String,
    pub text: String,
    /// The fused score (hybrid search).
    pub score: f32,
    pub dense_score: Option<f32>,
    pub lexical_score: Option<f32>,
}

/// A tool call the model made in the preview.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct PreviewToolCall {
    pub name: String,
    #[schema(value_type = Object)]
    pub arguments: Value,
    pub result: String,
    pub is_error: bool,
    pub latency_ms: u64,
}

/// What the preview produced.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct PreviewResult {
    /// What the customer would be sent.
    pub reply: String,
    /// `answer`, `handoff`, `outside_hours` or `fallback` (the model failed: the agent's
    /// fallback text).
    pub kind: String,
    /// The model's error, for a fallback.
    pub error: Option<String>,
    pub passages: Vec<PreviewPassage>,
    /// The best dense score: the retrieval confidence escalation rules compare with.
    pub confidence: Option<f32>,
    /// The message's sentiment, -1 to 1.
    pub sentiment: f32,
    /// The escalation that would fire: `{"trigger", "details", "priority", "reason"}`.
    #[schema(value_type = Option<Object>)]
    pub escalation: Option<Value>,
    pub tool_calls: Vec<PreviewToolCall>,
    /// A tool asked to end the conversation after this reply.
    pub ends_conversation: bool,
    pub model: Option<String>,
    /// The prompt's tokens as the model would be sent them (estimated: four characters a
    /// token), tools included.
    pub prompt_tokens: u32,
    /// Tokens the model reported (estimated when it reported none), over every round.
    pub input_tokens: u32,
    pub output_tokens: u32,
    /// In the model's currency, from the model catalog; `null` with `cost_unknown` when the
    /// catalog has no price for the model.
    pub estimated_cost: Option<f64>,
    pub cost_unknown: bool,
}

/// Runs a preview of `agent` (built from the configuration under test) answering `message`
/// after `history`, from a customer called `customer_name` (when known); the reply streams to `on_delta`.
pub async fn preview(
    deps: &AppDeps,
    ctx: &TenantCtx,
    agent: &ChatAgent,
    history: &[PreviewMessage],
    message: &str,
    customer_name: Option<&str>,
    on_delta: DeltaSink<'_>,
) -> Result<PreviewResult, ApiError> {
    let company = ctx.require_company()?.as_uuid();
    let sentiment = sentiment::score(message);
    let mut result = PreviewResult {
        reply: String::new(),
        kind: "answer".into(),
        error: None,
        passages: Vec::new(),
        confidence: None,
        sentiment,
        escalation: None,
        tool_calls: Vec::new(),
        ends_conversation: false,
        model: None,
        prompt_tokens: 0,
        input_tokens: 0,
        output_tokens: 0,
        estimated_cost: None,
        cost_unknown: false,
    };
    let closed = agent.hours.clone().ok().flatten().filter(|h| !h.is_open(Utc::now()));
    if let Some(hours) = closed {
        result.reply = hours.outside_message().to_string();
        result.kind = "outside_hours".into();
        on_delta(&result.reply);
        return Ok(result);
    }
    let hits = retrieve(deps, ctx, agent, message).await;
    let confidence = agent.rag_enabled.then(|| hits.iter().filter_map(|h| h.dense_score).fold(0.0f32, f32::max));
    result.confidence = confidence;
    result.passages = hits
        .iter()
        .enumerate()
        .map(|(i, h)| PreviewPassage {
            n: i + 1,
            source: h.chunk.source_name.clone(),
            text: h.chunk.content.clone(),
            score: h.score,
            dense_score: h.dense_score,
            lexical_score: h.lexical_score,
        })
        .collect();
    let tx = deps.db.begin(ctx).await?;
    let rows = repo::escalation_rules_for_agent(&tx, company, agent.id).await.map_err(ApiError::from);
    let rows = tx.finish(rows).await?;
    let rules = rules_from_rows(&rows);
    let customer_turns = history.iter().filter(|m| m.role == "user").count() as u32 + 1;
    let signals = TurnSignals { message, sentiment, confidence, customer_turns };
    if let Some(e) = escalation::detect(&agent.escalation, &rules, &signals) {
        result.escalation = Some(json!({"trigger": e.trigger.as_str(), "details": e.details,
                                        "priority": e.priority.as_str(), "reason": e.reason}));
        result.kind = "handoff".into();
        result.reply = HANDOFF_MESSAGE.into();
        on_delta(HANDOFF_MESSAGE);
        return Ok(result);
    }

    let mut messages: Vec<Message> = history.iter().map(|m| as_message(&m.role, &m.content)).collect();
    messages.push(as_message("user", message));
    let request = ChatRequest {
        messages: prompt(agent, customer_name, None, &messages),
        passages: passages(&hits),
        max_tokens: agent.llm.max_tokens.unwrap_or(600),
        temperature: agent.llm.temperature.unwrap_or(0.3) as f32,
        tools: Vec::new(),
        rounds: Vec::new(),
    };
    let toolbox = toolbox(deps, ctx, company, agent).await?;
    let rendered = render_messages(&request);
    let tool_tokens = toolbox.as_ref().map_or(0, |t| estimate_tokens(&json!(t.specs).to_string()));
    result.prompt_tokens = rendered.iter().map(|m| estimate_tokens(&m.content)).sum::<u32>() + tool_tokens;

    let model = crate::chat::company_keys::model_for(deps, ctx, company, agent.llm.model.as_deref()).await;
    let conversation = Uuid::nil();
    let run = tool_loop::run(deps, ctx, conversation, model.as_ref(), request, toolbox.as_ref(), on_delta).await;
    result.tool_calls = run
        .records
        .iter()
        .map(|r| PreviewToolCall {
            name: r.call.name.clone(),
            arguments: r.call.arguments.clone(),
            result: r.result.content.clone(),
            is_error: r.result.is_error,
            latency_ms: r.latency_ms,
        })
        .collect();
    result.input_tokens = run.usage.input_tokens;
    result.output_tokens = run.usage.output_tokens;
    match run.effect {
        Effect::Handover(reason) => {
            result.escalation = Some(json!({"trigger": "explicit_request", "priority": "medium", "reason": reason,
                                            "details": {"tool": crate::chat::tools::REQUEST_HUMAN_HANDOVER}}));
            result.kind = "handoff".into();
        }
        // As in the turn: resolved only after a closing answer.
        Effect::End => result.ends_conversation = run.answer.is_ok(),
        Effect::None => {}
    }
    let (model_name, extractive) = match run.answer {
        Ok(answer) => {
            if result.kind == "handoff" {
                // As the turn stores it: what streamed, then the handoff message.
                result.reply = stream_handoff(&answer.text, on_delta);
            } else {
                result.reply = answer.text;
            }
            (answer.model, answer.extractive)
        }
        Err(e) => {
            let text = fallback_text(agent);
            on_delta(text);
            result.reply = text.to_string();
            result.kind = "fallback".into();
            result.error = Some(e.to_string());
            (model.name().to_string(), false)
        }
    };
    result.model = Some(model_name.clone());
    if extractive {
        result.estimated_cost = Some(0.0);
    } else {
        let tx = deps.db.begin(ctx).await?;
        let price = crate::repo::models::price_for(&tx, &model_name).await.map_err(ApiError::from);
        match tx.finish(price).await? {
            Some((input, output)) => {
                result.estimated_cost = Some(
                    (f64::from(result.input_tokens) * input + f64::from(result.output_tokens) * output) / 1_000_000.0,
                );
            }
            None => result.cost_unknown = true,
        }
    }
    Ok(result)
}

/// The turn's retrieval for `message` with the agent's settings (none when RAG is off); a
/// search failure previews as no passages, as the turn degrades.
async fn retrieve(deps: &AppDeps, ctx: &TenantCtx, agent: &ChatAgent, message: &str) -> Vec<SearchHit> {
    if !agent.rag_enabled {
        return Vec::new();
    }
    knowledge::search(deps, ctx, &agent.search_request(message.to_string())).await.unwrap_or_else(|e| {
        tracing::warn!(error.chain = %crate::error::error_chain(&e), "preview: knowledge search failed");
        Vec::new()
    })
}

fn as_message(role: &str, content: &str) -> Message {
    Message {
        id: Uuid::nil(),
        role: role.to_string(),
        content: content.to_string(),
        metadata: Value::Null,
        sentiment: None,
        client_message_id: None,
        created_at: Utc::now(),
    }
}
