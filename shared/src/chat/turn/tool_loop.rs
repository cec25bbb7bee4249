//! Stage 6 with tools: the model answers, or calls the agent's tools and answers with their
//! results, for at most `MAX_ROUNDS` rounds; the round after that offers no tools, so the
//! model must answer in text. Text the model writes in any round streams to the customer as it
//! comes (rounds separated by a blank line), and the reply stored is exactly what streamed.

use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::app::AppDeps;
use crate::chat::model::{
    ChatAnswer, ChatError, ChatMessage, ChatModel, ChatRequest, DeltaSink, Role, ToolResult, ToolRound, Usage,
};
use crate::chat::tools::{Effect, ToolRecord, Toolbox, MAX_CALLS_PER_ROUND, MAX_ROUNDS};
use crate::tenant::TenantCtx;

/// What the model produced over all its rounds.
pub(super) struct ModelRun {
    /// The last round's answer, its text replaced by everything streamed and its usage by the
    /// sum over the rounds; the error when a round failed.
    pub(super) answer: Result<ChatAnswer, ChatError>,
    /// Every call made, in order.
    pub(super) records: Vec<ToolRecord>,
    /// A handover or the end of the conversation, when a tool asked for it.
    pub(super) effect: Effect,
    /// Tokens of every round, failed ones excluded.
    pub(super) usage: Usage,
}

/// Time a turn may spend in tool calls; a call started after it is answered with an error, so
/// a turn stays well inside the API's 30 s (and a slow action cannot be retried into running
/// twice by a client that gave up).
const TOOL_BUDGET: Duration = Duration::from_secs(20);

/// The rounds so far as plain messages (the model's text and calls, then the results), for a
/// request that offers no tools.
fn flatten_rounds(request: &mut ChatRequest) {
    for round in std::mem::take(&mut request.rounds) {
        let calls: Vec<String> = round.calls.iter().map(|c| format!("{}({})", c.name, c.arguments)).collect();
        let mut said = round.text.trim().to_string();
        if !said.is_empty() {
            said.push_str("\n\n");
        }
        said.push_str(&format!("[called {}]", calls.join(", ")));
        request.messages.push(ChatMessage { role: Role::Assistant, content: said });
        let results: Vec<String> = round
            .calls
            .iter()
            .zip(&round.results)
            .map(|(c, r)| format!("{}: {}{}", c.name, if r.is_error { "error: " } else { "" }, r.content))
            .collect();
        let content = format!("[tool results]\n{}", results.join("\n"));
        request.messages.push(ChatMessage { role: Role::User, content });
    }
}

pub(super) async fn run(
    deps: &AppDeps,
    ctx: &TenantCtx,
    conversation: Uuid,
    model: &dyn ChatModel,
    mut request: ChatRequest,
    toolbox: Option<&Toolbox>,
    on_delta: DeltaSink<'_>,
) -> ModelRun {
    let mut streamed = String::new();
    let mut usage = Usage::default();
    let mut records: Vec<ToolRecord> = Vec::new();
    let mut effect = Effect::None;
    if let Some(t) = toolbox {
        request.tools = t.specs.clone();
    }
    let deadline = Instant::now() + TOOL_BUDGET;
    for round in 1..=MAX_ROUNDS + 1 {
        if (round > MAX_ROUNDS || effect == Effect::End) && !request.tools.is_empty() {
            // Answer now, in text: no tools offered, and the calls so far written out as text
            // (Anthropic refuses tool_use blocks in a request that defines no tools).
            request.tools.clear();
            flatten_rounds(&mut request);
        }
        let separate = !streamed.is_empty();
        let mut first = true;
        let answer = {
            let mut sink = |delta: &str| {
                if delta.is_empty() {
                    return;
                }
                if first && separate {
                    on_delta("\n\n");
                    streamed.push_str("\n\n");
                }
                first = false;
                streamed.push_str(delta);
                on_delta(delta);
            };
            model.complete(&request, &mut sink).await
        };
        let mut answer = match answer {
            Ok(a) => a,
            Err(e) => return ModelRun { answer: Err(e), records, effect, usage },
        };
        usage.input_tokens = usage.input_tokens.saturating_add(answer.usage.input_tokens);
        usage.output_tokens = usage.output_tokens.saturating_add(answer.usage.output_tokens);
        let calls = std::mem::take(&mut answer.tool_calls);
        let toolbox = match toolbox {
            Some(t) if !calls.is_empty() && !request.tools.is_empty() => t,
            _ => {
                if streamed.trim().is_empty() && toolbox.is_some() {
                    // Calls where none may be made any more, and no text: no answer to send.
                    let e = ChatError::Malformed("the model answered with neither text nor usable calls".into());
                    return ModelRun { answer: Err(e), records, effect, usage };
                }
                answer.text = streamed;
                answer.usage = usage.clone();
                return ModelRun { answer: Ok(answer), records, effect, usage };
            }
        };
        let mut results = Vec::with_capacity(calls.len());
        for (i, call) in calls.iter().enumerate() {
            let refused = if i >= MAX_CALLS_PER_ROUND {
                Some(format!("at most {MAX_CALLS_PER_ROUND} calls run per round"))
            } else if Instant::now() >= deadline {
                Some(format!("the turn's {} s for tool calls are used up", TOOL_BUDGET.as_secs()))
            } else {
                None
            };
            let (result, call_effect, latency_ms) = match refused {
                None => toolbox.run(deps, ctx, conversation, call).await,
                Some(content) => (ToolResult { call_id: call.id.clone(), content, is_error: true }, Effect::None, 0),
            };
            // A person asked for wins over ending the conversation.
            if call_effect != Effect::None && !matches!(effect, Effect::Handover(_)) {
                effect = call_effect;
            }
            records.push(ToolRecord { call: call.clone(), result: result.clone(), latency_ms, round });
            results.push(result);
        }
        request.rounds.push(ToolRound { text: answer.text.clone(), calls, results });
        if let Effect::Handover(_) = effect {
            answer.text = streamed;
            answer.usage = usage.clone();
            return ModelRun { answer: Ok(answer), records, effect, usage };
        }
    }
    unreachable!("the last round offers no tools and returns")
}
