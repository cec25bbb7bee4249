//! The request bodies of the agents function and how they become stored fields: validation
//! (lengths, URLs, names, and every JSON column through `chatapp::agent_config`), who may set
//! what (master-only fields, the package's capabilities), and the merge into the stored
//! configuration.

use chatapp::agent_config::{self, Column};
use chatapp::db::TenantTx;
use chatapp::domain;
use chatapp::repo::agents::{Agent, AgentFields, Package, CUSTOM_MODEL, CUSTOM_PROMPT, GREETING, SUGGESTED_QUESTIONS};
use chatapp::tenant::{Access, Resource};
use chatapp::{ApiError, TenantCtx};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;
use uuid::Uuid;

const MAX_NAME: usize = 255;
const MAX_DESCRIPTION: usize = 5000;
const MAX_PERSONALITY: usize = 5000;
const MAX_SYSTEM_PROMPT: usize = 50_000;
const MAX_GREETING: usize = 1000;
const MAX_QUESTIONS: usize = 10;
const MAX_QUESTION_CHARS: usize = 200;
const MAX_TOOLS: usize = 50;
const MAX_CAPABILITIES: usize = 50;
const MAX_URL: usize = 500;
const MAX_CATEGORIES: usize = 1000;

/// A new agent: blank, or made from an agent package (`package_id`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateAgentBody {
    /// 1-255 characters.
    name: String,
    /// At most 5000 characters.
    description: Option<String>,
    /// An http(s) image URL of at most 500 characters.
    avatar: Option<String>,
    /// An active, published agent package: its capabilities and default configuration
    /// (`llmConfig`, `ragConfig`, `enabledTools`, ...) are copied, then this body's fields.
    package_id: Option<Uuid>,
    /// At most 5000 characters.
    personality: Option<String>,
    /// `{"tone", "formality", "verbosity", "language"}`.
    #[schema(value_type = Option<chatapp::agent_config::ResponseStyle>)]
    response_style: Option<Value>,
    /// Answer from the knowledge base (default true; false for a package without `rag`).
    rag_enabled: Option<bool>,
    /// `{"chunkSize", "overlapSize", "relevanceThreshold", "maxResults"}`.
    #[schema(value_type = Option<chatapp::agent_config::RagSettings>)]
    rag_config: Option<Value>,
    /// `{"keywords", "sentimentThreshold", "confidenceThreshold", "autoEscalateAfter"}`.
    #[schema(value_type = Option<chatapp::agent_config::EscalationRules>)]
    escalation_rules: Option<Value>,
    /// `{"timezone", "schedule", "outsideHoursMessage"}`.
    #[schema(value_type = Option<chatapp::agent_config::BusinessHoursConfig>)]
    business_hours: Option<Value>,
    /// The agent's canned texts (`error`, ...).
    #[schema(value_type = Option<chatapp::agent_config::FallbackResponses>)]
    fallback_responses: Option<Value>,
    /// Shown when a conversation opens, at most 1000 characters (kept in
    /// `fallback_responses.greeting`).
    greeting: Option<String>,
    /// At most 10 questions of at most 200 characters (kept in
    /// `fallback_responses.suggestedQuestions`).
    suggested_questions: Option<Vec<String>>,
    /// Built-in tools: `search_knowledge` (or `rag_search`), `request_human_handover`,
    /// `end_conversation`; any other name is a 400. HTTP actions are offered without being listed.
    enabled_tools: Option<Vec<String>>,
    /// Settings of the built-in tools: `{"search_knowledge": {"maxResults": 3}}`.
    #[schema(value_type = Option<HashMap<String, chatapp::agent_config::ToolSettings>>)]
    tool_config: Option<Value>,
    /// Master admin only, unless the package grants `custom_prompt`.
    system_prompt: Option<String>,
    /// `{"model", "temperature", "maxTokens"}`: master admin only, unless the package grants
    /// `custom_model`.
    #[schema(value_type = Option<chatapp::agent_config::LlmConfig>)]
    llm_config: Option<Value>,
    /// Master admin only: replaces the capabilities copied from the package.
    capabilities: Option<Vec<String>>,
    /// A prompt template rendered into the system prompt at each turn: master admin only,
    /// unless the package grants `custom_prompt`.
    prompt_template_id: Option<Uuid>,
    /// Values of the template's custom variables (`{"tone_of_voice": "warm"}`); a key the
    /// template does not declare is a 400.
    #[schema(value_type = Option<Object>)]
    prompt_variables: Option<Value>,
    /// Master admin only: an http(s) or builtin:// URL of the agent's own code.
    custom_package_url: Option<String>,
    /// Master admin only: the SHA-256 of that code, 64 hex digits.
    custom_package_hash: Option<String>,
    /// Knowledge categories of this company the agent answers from, besides the global
    /// knowledge; at most 1000 (duplicates are ignored).
    knowledge_category_ids: Option<Vec<Uuid>>,
}

/// The fields to change; absent fields are kept, `null` clears the nullable ones. The status
/// changes through its own routes; the package is chosen at creation.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateAgentBody {
    name: Option<String>,
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    avatar: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    personality: Option<Option<String>>,
    #[schema(value_type = Option<chatapp::agent_config::ResponseStyle>)]
    response_style: Option<Value>,
    rag_enabled: Option<bool>,
    #[schema(value_type = Option<chatapp::agent_config::RagSettings>)]
    rag_config: Option<Value>,
    #[schema(value_type = Option<chatapp::agent_config::EscalationRules>)]
    escalation_rules: Option<Value>,
    #[schema(value_type = Option<chatapp::agent_config::BusinessHoursConfig>)]
    business_hours: Option<Value>,
    /// Replaces the canned texts; the greeting and suggested questions are kept unless it
    /// names them.
    #[schema(value_type = Option<chatapp::agent_config::FallbackResponses>)]
    fallback_responses: Option<Value>,
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    greeting: Option<Option<String>>,
    /// `[]` clears them.
    suggested_questions: Option<Vec<String>>,
    enabled_tools: Option<Vec<String>>,
    /// Settings of the built-in tools: `{"search_knowledge": {"maxResults": 3}}`.
    #[schema(value_type = Option<HashMap<String, chatapp::agent_config::ToolSettings>>)]
    tool_config: Option<Value>,
    /// Master admin only, unless the package grants `custom_prompt`.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    system_prompt: Option<Option<String>>,
    /// Master admin only, unless the package grants `custom_model`.
    #[schema(value_type = Option<chatapp::agent_config::LlmConfig>)]
    llm_config: Option<Value>,
    /// Master admin only.
    capabilities: Option<Vec<String>>,
    /// Master admin only, unless the package grants `custom_prompt`; `null` removes it.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<Uuid>)]
    prompt_template_id: Option<Option<Uuid>>,
    /// Replaces the template's variable values.
    #[schema(value_type = Option<Object>)]
    prompt_variables: Option<Value>,
    /// Master admin only.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    custom_package_url: Option<Option<String>>,
    /// Master admin only.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    custom_package_hash: Option<Option<String>>,
    /// Replaces the knowledge categories the agent answers from (`[]`: only the global
    /// knowledge); at most 1000.
    knowledge_category_ids: Option<Vec<Uuid>>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// A create or update body as one set of changes: `None` leaves a field as it is, `Some(None)`
/// clears it.
pub(super) struct Changes {
    name: Option<String>,
    description: Option<Option<String>>,
    avatar: Option<Option<String>>,
    personality: Option<Option<String>>,
    response_style: Option<Value>,
    rag_enabled: Option<bool>,
    rag_config: Option<Value>,
    escalation_rules: Option<Value>,
    business_hours: Option<Value>,
    fallback_responses: Option<Value>,
    greeting: Option<Option<String>>,
    suggested_questions: Option<Vec<String>>,
    enabled_tools: Option<Vec<String>>,
    tool_config: Option<Value>,
    system_prompt: Option<Option<String>>,
    llm_config: Option<Value>,
    capabilities: Option<Vec<String>>,
    custom_package_url: Option<Option<String>>,
    custom_package_hash: Option<Option<String>>,
    prompt_template_id: Option<Option<Uuid>>,
    prompt_variables: Option<Value>,
    knowledge_category_ids: Option<Vec<Uuid>>,
}

impl CreateAgentBody {
    /// The package to start from, and the changes to make to it.
    pub(super) fn into_parts(self) -> (Option<Uuid>, Changes) {
        let changes = Changes {
            name: Some(self.name),
            description: self.description.map(Some),
            avatar: self.avatar.map(Some),
            personality: self.personality.map(Some),
            response_style: self.response_style,
            rag_enabled: self.rag_enabled,
            rag_config: self.rag_config,
            escalation_rules: self.escalation_rules,
            business_hours: self.business_hours,
            fallback_responses: self.fallback_responses,
            greeting: self.greeting.map(Some),
            suggested_questions: self.suggested_questions,
            enabled_tools: self.enabled_tools,
            tool_config: self.tool_config,
            system_prompt: self.system_prompt.map(Some),
            llm_config: self.llm_config,
            capabilities: self.capabilities,
            custom_package_url: self.custom_package_url.map(Some),
            custom_package_hash: self.custom_package_hash.map(Some),
            prompt_template_id: self.prompt_template_id.map(Some),
            prompt_variables: self.prompt_variables,
            knowledge_category_ids: self.knowledge_category_ids,
        };
        (self.package_id, changes)
    }
}

impl UpdateAgentBody {
    pub(super) fn into_changes(self) -> Changes {
        Changes {
            name: self.name,
            description: self.description,
            avatar: self.avatar,
            personality: self.personality,
            response_style: self.response_style,
            rag_enabled: self.rag_enabled,
            rag_config: self.rag_config,
            escalation_rules: self.escalation_rules,
            business_hours: self.business_hours,
            fallback_responses: self.fallback_responses,
            greeting: self.greeting,
            suggested_questions: self.suggested_questions,
            enabled_tools: self.enabled_tools,
            tool_config: self.tool_config,
            system_prompt: self.system_prompt,
            llm_config: self.llm_config,
            capabilities: self.capabilities,
            custom_package_url: self.custom_package_url,
            custom_package_hash: self.custom_package_hash,
            prompt_template_id: self.prompt_template_id,
            prompt_variables: self.prompt_variables,
            knowledge_category_ids: self.knowledge_category_ids,
        }
    }
}

/// What an agent's package allows: the agent's own capabilities (copied from the package, or
/// set by the master admin) and the package's current ones. A blank agent (no package) runs
/// the built-in code, which supports RAG and tools.
#[derive(Clone)]
pub(super) struct Grants {
    packaged: bool,
    slug: Option<String>,
    own: Vec<String>,
    package: Vec<String>,
}

impl Grants {
    pub(super) fn blank() -> Self {
        Self { packaged: false, slug: None, own: Vec::new(), package: Vec::new() }
    }

    pub(super) fn of_package(p: &Package) -> Self {
        let caps = strings(&p.capabilities);
        Self { packaged: true, slug: Some(p.slug.clone()), own: caps.clone(), package: caps }
    }

    pub(super) fn of_agent(a: &Agent) -> Self {
        Self {
            packaged: a.package_id.is_some(),
            slug: a.package_slug.clone(),
            own: strings(&a.capabilities),
            package: strings(&a.package_capabilities),
        }
    }

    fn has(&self, capability: &str) -> bool {
        self.own.iter().chain(&self.package).any(|c| c == capability)
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

fn master_only(field: &str, capability: Option<&str>) -> ApiError {
    let message = match capability {
        None => format!("{field} is set by the master admin only"),
        Some(c) => format!("{field} is set by the master admin unless the agent's package grants the {c:?} capability"),
    };
    ApiError::forbidden("master_only_field", message)
}

impl Changes {
    /// Every field checked and normalised: text trimmed and within its length, URLs and names
    /// well-formed, and each JSON column as `chatapp::agent_config` stores it.
    pub(super) fn validated(mut self) -> Result<Changes, ApiError> {
        // The greeting and the suggested questions are kept in `fallback_responses` but are not
        // canned texts: taken out before its check (so an agent's `fallback_responses` as read
        // can be sent back), and checked as the fields of their own, which win over them.
        let (fallback_responses, greeting, questions) = split_fallback(self.fallback_responses.take())?;
        self.fallback_responses = fallback_responses;
        if self.greeting.is_none() {
            self.greeting = greeting;
        }
        if self.suggested_questions.is_none() {
            self.suggested_questions = questions;
        }
        Ok(Changes {
            name: self.name.map(|n| domain::text("name", &n, MAX_NAME)).transpose()?,
            description: text("description", self.description, MAX_DESCRIPTION)?,
            avatar: link("avatar", self.avatar, &["http", "https"])?,
            personality: text("personality", self.personality, MAX_PERSONALITY)?,
            response_style: config(Column::ResponseStyle, self.response_style)?,
            rag_enabled: self.rag_enabled,
            rag_config: config(Column::RagConfig, self.rag_config)?,
            escalation_rules: config(Column::EscalationRules, self.escalation_rules)?,
            business_hours: config(Column::BusinessHours, self.business_hours)?,
            fallback_responses: config(Column::FallbackResponses, self.fallback_responses)?,
            greeting: text("greeting", self.greeting, MAX_GREETING)?,
            suggested_questions: self.suggested_questions.map(check_questions).transpose()?,
            enabled_tools: self.enabled_tools.map(builtin_tools).transpose()?,
            tool_config: config(Column::ToolConfig, self.tool_config)?,
            system_prompt: text("system_prompt", self.system_prompt, MAX_SYSTEM_PROMPT)?,
            llm_config: config(Column::LlmConfig, self.llm_config)?,
            capabilities: self.capabilities.map(|l| names("capabilities", l, MAX_CAPABILITIES)).transpose()?,
            custom_package_url: link("custom_package_url", self.custom_package_url, &["http", "https", "builtin"])?,
            custom_package_hash: hash("custom_package_hash", self.custom_package_hash)?,
            prompt_template_id: self.prompt_template_id,
            prompt_variables: match self.prompt_variables {
                None => None,
                Some(Value::Null) => Some(json!({})),
                Some(v @ Value::Object(_)) => Some(v),
                Some(_) => return Err(ApiError::validation("prompt_variables must be an object of strings")),
            },
            knowledge_category_ids: self
                .knowledge_category_ids
                .map(|ids| category_set("knowledge_category_ids", ids))
                .transpose()?,
        })
    }

    /// Whether `ctx` may make these changes to an agent with `grants`: the master-only fields
    /// (403 `master_only_field`), then what the package supports (403 `capability_missing`;
    /// blank agents support everything).
    pub(super) fn authorize(&self, ctx: &TenantCtx, grants: &Grants) -> Result<(), ApiError> {
        // Choosing the agent's knowledge needs to see it, as on the knowledge route.
        if self.knowledge_category_ids.is_some() {
            ctx.authorize(Resource::Knowledge, Access::Read)?;
        }
        if !ctx.is_master_admin() {
            let always = [
                ("capabilities", self.capabilities.is_some()),
                ("custom_package_url", self.custom_package_url.is_some()),
                ("custom_package_hash", self.custom_package_hash.is_some()),
            ];
            if let Some((field, _)) = always.iter().find(|(_, set)| *set) {
                return Err(master_only(field, None));
            }
            if self.system_prompt.is_some() && !grants.has(CUSTOM_PROMPT) {
                return Err(master_only("system_prompt", Some(CUSTOM_PROMPT)));
            }
            if self.prompt_template_id.is_some() && !grants.has(CUSTOM_PROMPT) {
                return Err(master_only("prompt_template_id", Some(CUSTOM_PROMPT)));
            }
            if self.prompt_variables.is_some() && !grants.has(CUSTOM_PROMPT) {
                return Err(master_only("prompt_variables", Some(CUSTOM_PROMPT)));
            }
            if self.llm_config.is_some() && !grants.has(CUSTOM_MODEL) {
                return Err(master_only("llm_config", Some(CUSTOM_MODEL)));
            }
        }
        if !grants.packaged {
            return Ok(());
        }
        // The master admin may grant capabilities in the same request.
        let mut grants = grants.clone();
        if let Some(own) = &self.capabilities {
            grants.own = own.clone();
        }
        let non_empty =
            |v: &Option<Value>| v.as_ref().is_some_and(|v| v.as_object().map_or(!v.is_null(), |o| !o.is_empty()));
        let mut needs: Vec<(&str, &str)> = Vec::new();
        if self.rag_enabled == Some(true) {
            needs.push(("rag_enabled", "rag"));
        }
        if non_empty(&self.rag_config) {
            needs.push(("rag_config", "rag"));
        }
        for tool in self.enabled_tools.iter().flatten() {
            needs.push(("enabled_tools", chatapp::chat::tools::capability_for(tool)));
        }
        if non_empty(&self.tool_config) {
            needs.push(("tool_config", "tools"));
        }
        match needs.into_iter().find(|(_, capability)| !grants.has(capability)) {
            None => Ok(()),
            Some((field, capability)) => Err(ApiError::forbidden(
                "capability_missing",
                format!(
                    "{field} needs the {capability:?} capability, which the agent's package {} does not have",
                    grants.slug.as_deref().unwrap_or("")
                ),
            )),
        }
    }

    /// Writes the changes into `f`. The greeting and the suggested questions live in
    /// `fallback_responses`; a new `fallback_responses` keeps them unless it names them.
    pub(super) fn apply(self, f: &mut AgentFields) -> Result<(), ApiError> {
        if let Some(v) = self.name {
            f.name = v;
        }
        if let Some(v) = self.description {
            f.description = v;
        }
        if let Some(v) = self.avatar {
            f.avatar = v;
        }
        if let Some(v) = self.personality {
            f.personality = v;
        }
        if let Some(v) = self.response_style {
            f.response_style = v;
        }
        if let Some(v) = self.rag_enabled {
            f.rag_enabled = v;
        }
        if let Some(v) = self.rag_config {
            f.rag_config = v;
        }
        if let Some(v) = self.escalation_rules {
            f.escalation_rules = v;
        }
        if let Some(v) = self.business_hours {
            f.business_hours = v;
        }
        if let Some(mut v) = self.fallback_responses {
            if let (Some(new), Some(old)) = (v.as_object_mut(), f.fallback_responses.as_object()) {
                for key in [GREETING, SUGGESTED_QUESTIONS] {
                    if let (false, Some(kept)) = (new.contains_key(key), old.get(key)) {
                        new.insert(key.to_string(), kept.clone());
                    }
                }
            }
            f.fallback_responses = v;
        }
        if let Some(v) = self.greeting {
            set_key(&mut f.fallback_responses, GREETING, v.map(Value::String))?;
        }
        if let Some(v) = self.suggested_questions {
            let value = if v.is_empty() { None } else { Some(json!(v)) };
            set_key(&mut f.fallback_responses, SUGGESTED_QUESTIONS, value)?;
        }
        if let Some(v) = self.enabled_tools {
            f.enabled_tools = json!(v);
        }
        if let Some(v) = self.tool_config {
            f.tool_config = v;
        }
        if let Some(v) = self.system_prompt {
            f.system_prompt = v;
        }
        if let Some(v) = self.llm_config {
            f.llm_config = v;
        }
        if let Some(v) = self.capabilities {
            f.capabilities = json!(v);
        }
        if let Some(v) = self.custom_package_url {
            f.custom_package_url = v;
        }
        if let Some(v) = self.custom_package_hash {
            f.custom_package_hash = v;
        }
        if let Some(v) = self.prompt_template_id {
            f.prompt_template_id = v;
        }
        if let Some(v) = self.prompt_variables {
            f.prompt_variables = v;
        }
        if let Some(v) = self.knowledge_category_ids {
            f.knowledge_category_ids = v;
        }
        Ok(())
    }
}

/// Starts `f` from `p`: its id, capabilities and default configuration (`llmConfig`,
/// `ragConfig`, `enabledTools`, `toolConfig`, `responseStyle`, `escalationRules`,
/// `businessHours`, `fallbackResponses`, `systemPrompt`, `personality`, `ragEnabled`), as the
/// master admin published them.
pub(super) fn from_package(f: &mut AgentFields, p: &Package) {
    let d = &p.default_config;
    let object = |key: &str| d.get(key).filter(|v| v.is_object()).cloned();
    let text = |key: &str| d.get(key).and_then(Value::as_str).map(str::to_string);
    f.package_id = Some(p.id);
    f.capabilities = p.capabilities.clone();
    if let Some(v) = object("llmConfig") {
        f.llm_config = v;
    }
    if let Some(v) = object("ragConfig") {
        f.rag_config = v;
    }
    if let Some(v) = d.get("enabledTools").filter(|v| v.is_array()) {
        f.enabled_tools = v.clone();
    }
    if let Some(v) = object("toolConfig") {
        f.tool_config = v;
    }
    if let Some(v) = object("responseStyle") {
        f.response_style = v;
    }
    if let Some(v) = object("escalationRules") {
        f.escalation_rules = v;
    }
    if let Some(v) = object("businessHours") {
        f.business_hours = v;
    }
    if let Some(v) = object("fallbackResponses") {
        f.fallback_responses = v;
    }
    if let Some(v) = text("systemPrompt") {
        f.system_prompt = Some(v);
    }
    if let Some(v) = text("personality") {
        f.personality = Some(v);
    }
    f.rag_enabled = d.get("ragEnabled").and_then(Value::as_bool).unwrap_or_else(|| Grants::of_package(p).has("rag"));
}

/// `fallback_responses` without the greeting fields; the greeting (`Some(None)` clears it) and
/// the suggested questions as changes.
type FallbackSplit = (Option<Value>, Option<Option<String>>, Option<Vec<String>>);

/// `fallback_responses` without its `greeting` and `suggestedQuestions`, and those two as
/// changes (`null` clears).
fn split_fallback(value: Option<Value>) -> Result<FallbackSplit, ApiError> {
    let mut value = match value {
        Some(v) => v,
        None => return Ok((None, None, None)),
    };
    let (mut greeting, mut questions) = (None, None);
    let not_a_list = || ApiError::validation("fallbackResponses.suggestedQuestions: must be a list of strings");
    if let Some(object) = value.as_object_mut() {
        greeting = match object.remove(GREETING) {
            None => None,
            Some(Value::Null) => Some(None),
            Some(Value::String(s)) => Some(Some(s)),
            Some(_) => return Err(ApiError::validation("fallbackResponses.greeting: must be a string")),
        };
        questions = match object.remove(SUGGESTED_QUESTIONS) {
            None => None,
            Some(Value::Null) => Some(Vec::new()),
            Some(Value::Array(list)) => Some(
                list.into_iter()
                    .map(|q| match q {
                        Value::String(s) => Ok(s),
                        _ => Err(not_a_list()),
                    })
                    .collect::<Result<Vec<String>, ApiError>>()?,
            ),
            Some(_) => return Err(not_a_list()),
        };
    }
    Ok((Some(value), greeting, questions))
}

fn set_key(target: &mut Value, key: &str, value: Option<Value>) -> Result<(), ApiError> {
    if target.is_null() {
        *target = json!({});
    }
    let object = target.as_object_mut().ok_or_else(|| {
        ApiError::validation("fallback_responses must be an object to hold the greeting and the suggested questions")
    })?;
    match value {
        Some(v) => {
            object.insert(key.to_string(), v);
        }
        None => {
            object.remove(key);
        }
    }
    Ok(())
}

/// A JSON column as `chatapp::agent_config` normalises it (400 naming the field's path).
fn config(column: Column, value: Option<Value>) -> Result<Option<Value>, ApiError> {
    match value {
        None => Ok(None),
        Some(v) => Ok(Some(agent_config::check(column, &v)?)),
    }
}

/// Trimmed, non-empty text of at most `max` characters; `null` (clear) passes.
fn text(field: &str, value: Option<Option<String>>, max: usize) -> Result<Option<Option<String>>, ApiError> {
    match value {
        Some(Some(s)) => Ok(Some(Some(domain::text(field, &s, max)?))),
        other => Ok(other),
    }
}

/// An absolute URL of one of `schemes`, at most 500 characters; `null` (clear) passes.
fn link(field: &str, value: Option<Option<String>>, schemes: &[&str]) -> Result<Option<Option<String>>, ApiError> {
    let raw = match value {
        Some(Some(raw)) => raw,
        other => return Ok(other),
    };
    let s = domain::text(field, &raw, MAX_URL)?;
    let ok = url::Url::parse(&s).is_ok_and(|u| schemes.contains(&u.scheme()) && u.has_host());
    if !ok {
        return Err(ApiError::validation(format!("{field} must be an absolute {} URL", schemes.join(" or "))));
    }
    Ok(Some(Some(s)))
}

/// 64 hex digits, lower-cased; `null` (clear) passes.
fn hash(field: &str, value: Option<Option<String>>) -> Result<Option<Option<String>>, ApiError> {
    let raw = match value {
        Some(Some(raw)) => raw,
        other => return Ok(other),
    };
    let s = raw.trim().to_ascii_lowercase();
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::validation(format!("{field} must be 64 hex digits (a SHA-256)")));
    }
    Ok(Some(Some(s)))
}

/// At most 10 questions, each trimmed, non-empty and at most 200 characters.
fn check_questions(list: Vec<String>) -> Result<Vec<String>, ApiError> {
    if list.len() > MAX_QUESTIONS {
        return Err(ApiError::validation(format!("suggested_questions must have at most {MAX_QUESTIONS} entries")));
    }
    list.iter()
        .enumerate()
        .map(|(i, q)| domain::text(&format!("suggested_questions[{i}]"), q, MAX_QUESTION_CHARS))
        .collect()
}

/// `enabled_tools`: names of built-in tools, checked as [`names`] does.
fn builtin_tools(list: Vec<String>) -> Result<Vec<String>, ApiError> {
    let list = names("enabled_tools", list, MAX_TOOLS)?;
    match chatapp::chat::tools::unknown_builtin("enabled_tools", &list) {
        Some(message) => Err(ApiError::validation(message)),
        None => Ok(list),
    }
}

/// Tool or capability names: at most `max` of 1-100 characters of `a-z`, `0-9`, `_`, `-` and
/// `.`, without repeats.
fn names(field: &str, list: Vec<String>, max: usize) -> Result<Vec<String>, ApiError> {
    if list.len() > max {
        return Err(ApiError::validation(format!("{field} must have at most {max} entries")));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, raw) in list.iter().enumerate() {
        let n = raw.trim();
        let ok = (1..=100).contains(&n.len())
            && n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.'));
        if !ok {
            return Err(ApiError::validation(format!(
                "{field}[{i}] must be 1-100 characters of a-z, 0-9, '_', '-' and '.'"
            )));
        }
        if !out.iter().any(|o| o == n) {
            out.push(n.to_string());
        }
    }
    Ok(out)
}

/// The agent's prompt template is active and its variables are ones the template declares
/// (400 naming `promptVariables.<key>` otherwise). Checked only when either changed, so an
/// agent whose template was retired later can still be edited otherwise.
pub(crate) async fn check_prompt_template(
    tx: &TenantTx,
    before: Option<&AgentFields>,
    after: &AgentFields,
) -> Result<(), ApiError> {
    let unchanged = before.is_some_and(|b| {
        b.prompt_template_id == after.prompt_template_id && b.prompt_variables == after.prompt_variables
    });
    if unchanged {
        return Ok(());
    }
    let empty = serde_json::Map::new();
    let values = after.prompt_variables.as_object().unwrap_or(&empty);
    let Some(id) = after.prompt_template_id else {
        if values.is_empty() {
            return Ok(());
        }
        return Err(ApiError::validation("prompt_variables needs a prompt_template_id whose variables they fill"));
    };
    let template = chatapp::repo::prompt_templates::get_active(tx, id)
        .await?
        .ok_or_else(|| ApiError::validation("prompt_template_id must name an active prompt template"))?;
    chatapp::prompt_template::check_values(&template.variables, values)
        .map_err(|(path, message)| ApiError::validation(format!("{path}: {message}")))
}

/// An agent's category set as given in request field `field`: sorted, without duplicates, at
/// most [`MAX_CATEGORIES`].
pub(crate) fn category_set(field: &str, mut ids: Vec<Uuid>) -> Result<Vec<Uuid>, ApiError> {
    ids.sort();
    ids.dedup();
    if ids.len() > MAX_CATEGORIES {
        return Err(ApiError::validation(format!("{field}: at most {MAX_CATEGORIES} categories")));
    }
    Ok(ids)
}

/// The agent's knowledge categories (given in request field `field`), when they changed, are
/// all categories of `company` (400 otherwise; another company's category reads as one that
/// does not exist).
pub(crate) async fn check_categories(
    tx: &TenantTx,
    company: Uuid,
    field: &str,
    before: Option<&AgentFields>,
    after: &AgentFields,
) -> Result<(), ApiError> {
    let ids = &after.knowledge_category_ids;
    if ids.is_empty() || before.is_some_and(|b| &b.knowledge_category_ids == ids) {
        return Ok(());
    }
    if chatapp::repo::knowledge::count_existing_categories(tx, company, ids).await? != ids.len() as i64 {
        return Err(ApiError::validation(format!("{field} must all name knowledge categories of this company")));
    }
    Ok(())
}

/// The agent's `llmConfig.model`, when it changed, names an active chat model of the catalog
/// (400 `llmConfig.model: ...` otherwise), so a turn never meets a model it cannot run.
pub(crate) async fn check_model(
    tx: &TenantTx,
    before: Option<&AgentFields>,
    after: &AgentFields,
) -> Result<(), ApiError> {
    let model = |f: &AgentFields| f.llm_config.get("model").and_then(Value::as_str).map(str::to_string);
    let wanted = model(after);
    if before.is_some_and(|b| model(b) == wanted) {
        return Ok(());
    }
    let Some(name) = wanted else { return Ok(()) };
    match chatapp::repo::models::active_chat_model(tx, &name).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::validation(format!(
            "llmConfig.model: {name:?} is not an active chat model of the catalog (GET /admin/models)"
        ))),
    }
}
