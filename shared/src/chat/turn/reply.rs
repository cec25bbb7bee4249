//! The ways a turn the AI answers is replied to: the configured message outside business
//! hours (stage 3), the handoff when an escalation fires (stage 5), and the model's answer
//! (stage 6). Each ends in [`finish`], the turn's last transaction.

use std::time::Instant;

use serde_json::{json, Value};
use uuid::Uuid;

use super::finish::{finish, silent, Priced};
use super::{mark, tool_loop, Staged, TurnOutput, FALLBACK_MESSAGE, HANDOFF_MESSAGE};
use crate::adapters::queue::ESCALATION;
use crate::app::AppDeps;
use crate::chat::escalation::{self, Escalation, Priority, Trigger, TurnSignals};
use crate::chat::hours::BusinessHours;
use crate::chat::model::{ChatMessage, ChatRequest, DeltaSink, Passage, Role};
use crate::chat::tools::{Effect, Toolbox};
use crate::error::ApiError;
use crate::knowledge::service::SearchHit;
use crate::outbox;
use crate::prompt_template;
use crate::repo::chat::{self as repo, ChatAgent, Message};
use crate::status::ConversationStatus;
use crate::tenant::TenantCtx;

/// 3. Outside business hours: the configured message, no model call.
pub(super) async fn outside_hours(
    deps: &AppDeps,
    ctx: &TenantCtx,
    staged: Staged,
    hours: &BusinessHours,
    on_delta: DeltaSink<'_>,
) -> Result<TurnOutput, ApiError> {
    let text = hours.outside_message().to_string();
    on_delta(&text);
    let meta = json!({"reply_to": staged.message.id, "kind": "outside_hours"});
    let reply = finish(deps, ctx, &staged, Some((text.as_str(), meta)), ConversationStatus::Active, None).await?;
    let handoff = reply.is_none();
    Ok(TurnOutput { message: staged.message, reply, escalation: None, handoff, replayed: false })
}

/// Stage 5: the escalation this turn's signals fire, if any: decided from signals (keywords, an
/// explicit request, sentiment, retrieval confidence, turn count), never from a model reply.
pub(super) fn escalation_for(staged: &Staged, confidence: Option<f32>) -> Option<Escalation> {
    let cfg = &staged.agent.escalation;
    let signals = TurnSignals {
        message: &staged.message.content,
        sentiment: staged.sentiment,
        confidence,
        customer_turns: staged.turns,
    };
    escalation::detect(cfg, &staged.rules, &signals)
}

/// The handoff message after `lead` (what the model streamed before asking for a person), as
/// stored; the part not yet streamed goes to `on_delta`.
pub(super) fn stream_handoff(lead: &str, on_delta: DeltaSink<'_>) -> String {
    let text = if lead.trim().is_empty() {
        HANDOFF_MESSAGE.to_string()
    } else {
        on_delta("\n\n");
        format!("{lead}\n\n{HANDOFF_MESSAGE}")
    };
    on_delta(HANDOFF_MESSAGE);
    text
}

/// What the customer gets when the model fails: the agent's `fallbackResponses.error`.
pub(super) fn fallback_text(agent: &ChatAgent) -> &str {
    agent.fallback_responses.get("error").and_then(Value::as_str).unwrap_or(FALLBACK_MESSAGE)
}

/// The retrieved passages as the model is given them, numbered as the answer cites them.
pub(super) fn passages(hits: &[SearchHit]) -> Vec<Passage> {
    hits.iter()
        .enumerate()
        .map(|(i, h)| Passage {
            number: i + 1,
            source: h.chunk.source_name.clone(),
            text: h.chunk.content.clone(),
            score: h.dense_score.unwrap_or(h.score),
        })
        .collect()
}

/// Hands the conversation to a human for escalation `e`: the escalation row and its jobs, then
/// the handoff message (after `lead`, what the model already streamed when a tool asked for a
/// person; `priced`: its tokens). Silent when a concurrent turn handed over first.
#[allow(clippy::too_many_arguments)]
pub(super) async fn hand_over(
    deps: &AppDeps,
    ctx: &TenantCtx,
    company: Uuid,
    staged: Staged,
    e: Escalation,
    lead: &str,
    priced: Option<Priced>,
    on_delta: DeltaSink<'_>,
) -> Result<TurnOutput, ApiError> {
    let conversation_id = staged.conversation_id;
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
        // The assignment job and the event (which queues the outbound webhook event) are
        // written in this transaction, through the outbox: no job without the escalation, and
        // none lost if the relay after the commit does not happen.
        let job = json!({"company_id": company, "kind": "escalation", "conversation_id": conversation_id,
                         "escalation_id": id, "priority": e.priority.as_str()});
        outbox::add(&tx, ESCALATION, &job).await?;
        // What the customer may see: why it escalated stays with the support team.
        let event = json!({"status": ConversationStatus::WaitingHuman, "escalation_id": id});
        repo::append_event(&tx, conversation_id, "conversation.escalated", &event, false).await?;
        Ok::<_, ApiError>(Some(id))
    }
    .await;
    let Some(id) = tx.finish(escalated).await? else {
        // A concurrent turn handed the conversation over first: the AI is already silent.
        return silent(deps, ctx, staged).await;
    };
    let text = stream_handoff(lead, on_delta);
    let mut escalation = details;
    escalation["id"] = json!(id);
    let reply =
        finish(deps, ctx, &staged, Some((text.as_str(), meta)), ConversationStatus::WaitingHuman, priced).await?;
    Ok(TurnOutput { message: staged.message, reply, escalation: Some(escalation), handoff: true, replayed: false })
}

/// Stage 6, generation, grounded in the retrieved passages, with the agent's tools when it has
/// any (`tool_loop`); a model failure sends the agent's fallback message instead, so it never
/// loses the turn. A tool asking for a person hands the conversation over; `end_conversation`
/// resolves it after the answer.
pub(super) async fn generate(
    deps: &AppDeps,
    ctx: &TenantCtx,
    mut staged: Staged,
    hits: &[SearchHit],
    confidence: Option<f32>,
    started: Instant,
    on_delta: DeltaSink<'_>,
) -> Result<TurnOutput, ApiError> {
    let company = ctx.require_company()?.as_uuid();
    let passages = passages(hits);
    let request = ChatRequest {
        messages: prompt(
            &staged.agent,
            staged.customer_name.as_deref(),
            staged.summary.as_deref(),
            &staged.history[staged.window_start..],
        ),
        passages,
        max_tokens: staged.agent.llm.max_tokens.unwrap_or(600),
        temperature: staged.agent.llm.temperature.unwrap_or(0.3) as f32,
        tools: Vec::new(),
        rounds: Vec::new(),
    };
    let toolbox = toolbox(deps, ctx, company, &staged.agent).await?;
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
    // The company's own key when it has one for the platform's provider.
    let model = crate::chat::company_keys::model_for(deps, ctx, company, staged.agent.llm.model.as_deref()).await;
    let run =
        tool_loop::run(deps, ctx, staged.conversation_id, model.as_ref(), request, toolbox.as_ref(), on_delta).await;
    let reply_to = staged.message.id;
    staged.tool_messages =
        run.records.iter().map(|r| (format!("{}: {}", r.call.name, r.result.content), r.metadata(reply_to))).collect();
    let tool_calls = run.records.len();
    if let Effect::Handover(reason) = run.effect {
        let e = Escalation {
            trigger: Trigger::ExplicitRequest,
            details: json!({"tool": crate::chat::tools::REQUEST_HUMAN_HANDOVER, "reason": reason}),
            priority: Priority::Medium,
            reason,
        };
        // What the model wrote before asking streamed already: it leads the handoff message.
        let lead = run.answer.as_ref().map(|a| a.text.clone()).unwrap_or_default();
        // The rounds that led here are paid for.
        let priced = run.answer.as_ref().ok().map(|a| Priced {
            model: a.model.clone(),
            usage: run.usage.clone(),
            extractive: a.extractive,
        });
        return hand_over(deps, ctx, company, staged, e, &lead, priced, on_delta).await;
    }
    // Resolved only after a closing answer: a failed one leaves the conversation open.
    let ends = run.effect == Effect::End && run.answer.is_ok();
    let (text, meta, priced) = match run.answer {
        Ok(answer) => {
            let meta = json!({
                "reply_to": reply_to, "kind": "answer", "model": answer.model,
                "extractive": answer.extractive, "tokens_in": answer.usage.input_tokens,
                "tokens_out": answer.usage.output_tokens, "latency_ms": generation_started.elapsed().as_millis() as u64,
                "turn_ms": started.elapsed().as_millis() as u64, "confidence": confidence,
                "finish_reason": answer.finish_reason, "citations": citations, "estimated_cost": 0.0,
                "tool_calls": tool_calls, "ends_conversation": ends,
            });
            let priced = Priced { model: answer.model.clone(), usage: run.usage, extractive: answer.extractive };
            (answer.text, meta, Some(priced))
        }
        Err(e) => {
            tracing::error!(error.chain = %crate::error::error_chain(&e), agent = %staged.agent.id, "chat model failed; sent the fallback response");
            let text = fallback_text(&staged.agent).to_string();
            let meta = json!({"reply_to": reply_to, "kind": "fallback", "model": model.name(),
                              "error": e.to_string(), "confidence": confidence, "tool_calls": tool_calls});
            // Tokens of the rounds that did answer are still paid for.
            let priced = (run.usage.input_tokens + run.usage.output_tokens > 0).then(|| Priced {
                model: model.name().to_string(),
                usage: run.usage,
                extractive: false,
            });
            (text, meta, priced)
        }
    };
    mark(started, "answer generated");
    let reply = finish(deps, ctx, &staged, Some((text.as_str(), meta)), ConversationStatus::Active, priced).await?;
    mark(started, "answer committed");
    if ends && reply.is_some() {
        let tx = deps.db.begin(ctx).await?;
        let resolved = repo::resolve_by_assistant(&tx, company, staged.conversation_id).await.map_err(ApiError::from);
        tx.finish(resolved).await?;
    }
    // No reply stored: a support agent took the conversation over while the model answered.
    let handoff = reply.is_none();
    Ok(TurnOutput { message: staged.message, reply, escalation: None, handoff, replayed: false })
}

/// The agent's tools for this turn: its enabled built-in ones and its HTTP actions (read only
/// when it has some). `None` when it has none.
pub(super) async fn toolbox(
    deps: &AppDeps,
    ctx: &TenantCtx,
    company: Uuid,
    agent: &ChatAgent,
) -> Result<Option<Toolbox>, ApiError> {
    if agent.enabled_tools.is_empty() && !agent.has_actions {
        return Ok(None);
    }
    let actions = if agent.has_actions {
        let tx = deps.db.begin(ctx).await?;
        let read = crate::repo::actions::enabled_for_agent(&tx, company, agent.id).await.map_err(ApiError::from);
        tx.finish(read).await?
    } else {
        Vec::new()
    };
    let toolbox = Toolbox::new(agent, actions);
    Ok((!toolbox.is_empty()).then_some(toolbox))
}

/// The system prompt (the agent's prompt template rendered for this turn, or its system
/// prompt; with personality and response style), the running summary, then the recent history
/// ending with the customer's message.
pub(super) fn prompt(
    agent: &ChatAgent,
    customer_name: Option<&str>,
    summary: Option<&str>,
    history: &[Message],
) -> Vec<ChatMessage> {
    // The agent's prompt template, rendered for this turn, stands in for its system prompt.
    let rendered = agent.template.as_ref().map(|t| {
        let hours = agent.hours.as_ref().ok().and_then(Option::as_ref).map(BusinessHours::describe);
        let builtins = prompt_template::Builtins {
            company_name: &agent.company_name,
            customer_name: customer_name.map(str::trim).filter(|n| !n.is_empty()),
            agent_name: &agent.name,
            business_hours: hours.as_deref(),
        };
        let empty = serde_json::Map::new();
        let values = t.values.as_object().unwrap_or(&empty);
        prompt_template::render(&t.content, &prompt_template::variables_from_json(&t.variables), values, &builtins)
    });
    let mut system = rendered
        .or_else(|| agent.system_prompt.clone())
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
