//! Tools the agent's model may call during a turn (`enabled_tools`): the built-in ones and the
//! HTTP actions the company defined for the agent (`chatapp_agent_actions`).
//!
//! Built-in: `search_knowledge` (`rag_search` is the same tool under its older name) searches
//! the agent's knowledge again with the model's own query; `request_human_handover` hands the
//! conversation to a person as an escalation (trigger `explicit_request`, details naming the
//! tool); `end_conversation` resolves the conversation after the model's closing words.
//!
//! A tool never fails the turn: an error (bad arguments, an action's timeout or HTTP error) is a
//! result marked as an error, fed back to the model, and stored with the call.

pub mod http_action;
pub mod public_address;

use std::time::Instant;

use serde_json::{json, Value};
use uuid::Uuid;

use crate::app::AppDeps;
use crate::chat::model::{ToolCall, ToolResult, ToolSpec};
use crate::knowledge::service::{self as knowledge, SearchRequest};
use crate::repo::actions::ActionSecrets;
use crate::repo::chat::ChatAgent;
use crate::tenant::TenantCtx;

pub const SEARCH_KNOWLEDGE: &str = "search_knowledge";
/// The older name of `search_knowledge` (seed 001's examples).
pub const RAG_SEARCH: &str = "rag_search";
pub const REQUEST_HUMAN_HANDOVER: &str = "request_human_handover";
pub const END_CONVERSATION: &str = "end_conversation";
/// The built-in tools' names: HTTP actions may not take them.
pub const BUILTIN: [&str; 4] = [SEARCH_KNOWLEDGE, RAG_SEARCH, REQUEST_HUMAN_HANDOVER, END_CONVERSATION];

/// `list` (an `enabled_tools`, already syntax-checked) names only built-in tools; otherwise the
/// message for a 400 naming the first that is not. HTTP actions are offered without being
/// listed, so anything else here is a typo that would silently never be offered.
pub fn unknown_builtin(field: &str, list: &[String]) -> Option<String> {
    let (i, name) = list.iter().enumerate().find(|(_, n)| !BUILTIN.contains(&n.as_str()))?;
    Some(format!("{field}[{i}]: {name:?} is not a built-in tool (one of {})", BUILTIN.join(", ")))
}

/// The package capability an agent needs to enable `tool`: `rag` for the knowledge search,
/// `tools` for every other tool.
pub fn capability_for(tool: &str) -> &'static str {
    if tool == SEARCH_KNOWLEDGE || tool == RAG_SEARCH {
        "rag"
    } else {
        "tools"
    }
}

/// Rounds of calls a turn allows before the model must answer in text.
pub const MAX_ROUNDS: usize = 4;
/// Calls run per round; more are answered with an error.
pub const MAX_CALLS_PER_ROUND: usize = 8;
/// The longest result fed back to the model and stored, in characters.
const MAX_RESULT_CHARS: usize = 16 * 1024;

/// What a call changes besides its result.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    None,
    /// Hand the conversation to a person, for this reason.
    Handover(String),
    /// Resolve the conversation once the answer is sent.
    End,
}

/// A call as it is stored (a `tool` message): the call, its result, how long it took.
#[derive(Clone, Debug)]
pub struct ToolRecord {
    pub call: ToolCall,
    pub result: ToolResult,
    pub latency_ms: u64,
    /// The round (1-based) the call was made in.
    pub round: usize,
}

impl ToolRecord {
    /// The stored message's metadata.
    pub fn metadata(&self, reply_to: Uuid) -> Value {
        json!({
            "kind": "tool_call", "reply_to": reply_to, "tool": self.call.name, "call_id": self.call.id,
            "arguments": self.call.arguments, "result": self.result.content, "is_error": self.result.is_error,
            "error": self.result.is_error.then(|| self.result.content.clone()), "latency_ms": self.latency_ms,
            "round": self.round,
        })
    }
}

/// The tools offered to the model this turn, and what running them needs.
pub struct Toolbox {
    pub specs: Vec<ToolSpec>,
    actions: Vec<ActionSecrets>,
    search_scope: Option<SearchRequest>,
}

impl Toolbox {
    /// The agent's enabled built-in tools and its HTTP actions (`actions`, already loaded).
    pub fn new(agent: &ChatAgent, actions: Vec<ActionSecrets>) -> Toolbox {
        let mut specs = Vec::new();
        let enabled = |name: &str| agent.enabled_tools.iter().any(|t| t == name);
        let mut search_scope = None;
        if (enabled(SEARCH_KNOWLEDGE) || enabled(RAG_SEARCH)) && agent.rag_enabled {
            specs.push(ToolSpec {
                name: SEARCH_KNOWLEDGE.into(),
                description: "Search the company's knowledge base for passages about a question. \
                              Use it when the passages you were given do not answer the customer."
                    .into(),
                parameters: json!({"type": "object", "properties": {
                    "query": {"type": "string", "description": "What to look for, in a few words"}},
                    "required": ["query"]}),
            });
            let mut scope = agent.search_request(String::new());
            if let Some(n) = agent.tool_config.search_max_results() {
                scope.max_results = n;
            }
            search_scope = Some(scope);
        }
        if enabled(REQUEST_HUMAN_HANDOVER) {
            specs.push(ToolSpec {
                name: REQUEST_HUMAN_HANDOVER.into(),
                description: "Hand the conversation to a human support agent. Use it when the customer asks for \
                              a person or you cannot help."
                    .into(),
                parameters: json!({"type": "object", "properties": {
                    "reason": {"type": "string", "description": "Why a person is needed, in one sentence"}}}),
            });
        }
        if enabled(END_CONVERSATION) {
            specs.push(ToolSpec {
                name: END_CONVERSATION.into(),
                description: "End the conversation once the customer's request is fully resolved and they have \
                              nothing more to ask. Write your closing words as well."
                    .into(),
                parameters: json!({"type": "object", "properties": {}}),
            });
        }
        for a in &actions {
            specs.push(ToolSpec {
                name: a.action.name.clone(),
                description: a.action.description.clone(),
                parameters: a.action.parameters.clone(),
            });
        }
        Toolbox { specs, actions, search_scope }
    }

    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// Runs one call; never fails (an error is the result, marked as one).
    pub async fn run(
        &self,
        deps: &AppDeps,
        ctx: &TenantCtx,
        conversation: Uuid,
        call: &ToolCall,
    ) -> (ToolResult, Effect, u64) {
        let started = Instant::now();
        let (content, is_error, effect) = self.dispatch(deps, ctx, conversation, call).await;
        let content = clip(content);
        let result = ToolResult { call_id: call.id.clone(), content, is_error };
        (result, effect, started.elapsed().as_millis() as u64)
    }

    async fn dispatch(
        &self,
        deps: &AppDeps,
        ctx: &TenantCtx,
        conversation: Uuid,
        call: &ToolCall,
    ) -> (String, bool, Effect) {
        let offered = self.specs.iter().any(|s| s.name == call.name);
        if !offered {
            return (format!("there is no tool named {:?}", call.name), true, Effect::None);
        }
        let text_arg = |key: &str| call.arguments.get(key).and_then(Value::as_str).map(str::trim);
        match call.name.as_str() {
            SEARCH_KNOWLEDGE => {
                let Some(query) = text_arg("query").filter(|q| !q.is_empty()) else {
                    return ("the argument \"query\" (a non-empty string) is required".into(), true, Effect::None);
                };
                let Some(scope) = &self.search_scope else {
                    return ("knowledge search is not available".into(), true, Effect::None);
                };
                let request = SearchRequest { query: query.chars().take(1000).collect(), ..scope.clone() };
                match knowledge::search(deps, ctx, &request).await {
                    Ok(hits) if hits.is_empty() => ("no passages matched".into(), false, Effect::None),
                    Ok(hits) => {
                        let text = hits
                            .iter()
                            .enumerate()
                            .map(|(i, h)| format!("[{}] ({}) {}", i + 1, h.chunk.source_name, h.chunk.content.trim()))
                            .collect::<Vec<_>>()
                            .join("\n\n");
                        (text, false, Effect::None)
                    }
                    Err(e) => {
                        tracing::warn!(error.chain = %crate::error::error_chain(&e), "search_knowledge tool failed");
                        ("the knowledge search failed".into(), true, Effect::None)
                    }
                }
            }
            REQUEST_HUMAN_HANDOVER => {
                let reason = text_arg("reason").filter(|r| !r.is_empty()).unwrap_or("the assistant asked for a person");
                let reason: String = reason.chars().take(255).collect();
                ("a support agent will take over".into(), false, Effect::Handover(reason))
            }
            END_CONVERSATION => ("the conversation will be closed after your reply".into(), false, Effect::End),
            name => {
                let Some(action) = self.actions.iter().find(|a| a.action.name == name) else {
                    return (format!("there is no tool named {name:?}"), true, Effect::None);
                };
                let company = match ctx.require_company() {
                    Ok(c) => c.as_uuid(),
                    Err(_) => return ("no company".into(), true, Effect::None),
                };
                let outcome = http_action::call(
                    &deps.cfg,
                    http_action::ActionCall {
                        action,
                        arguments: &call.arguments,
                        company_id: company,
                        conversation_id: conversation,
                        call_id: &call.id,
                    },
                )
                .await;
                (outcome.content, !outcome.ok, Effect::None)
            }
        }
    }
}

/// At most [`MAX_RESULT_CHARS`] characters, cut on a character boundary.
fn clip(mut s: String) -> String {
    if let Some((i, _)) = s.char_indices().nth(MAX_RESULT_CHARS) {
        s.truncate(i);
        s.push_str(" [truncated]");
    }
    s
}
