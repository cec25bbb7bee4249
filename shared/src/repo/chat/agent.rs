//! The agent as a chat turn reads it: its published configuration (or its draft, for an agent
//! never published), read into the typed configuration and the context the turn needs.

use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::agent_config::{self, BusinessHoursConfig, EscalationRules, LlmConfig, RagSettings, ToolConfig};
use crate::chat::escalation::EscalationConfig;
use crate::chat::hours::BusinessHours;
use crate::db::{DbError, TenantTx};
use crate::knowledge::service::{RagConfig, SearchMode, SearchRequest};
use crate::knowledge::vector::Scope;
use crate::status::AgentStatus;

/// The agent as the chat turn needs it: its published configuration (the draft for an agent
/// never published), read into the types `chatapp::agent_config` checked it with on write.
#[derive(Debug, Clone)]
pub struct ChatAgent {
    pub id: Uuid,
    pub name: String,
    pub status: AgentStatus,
    pub system_prompt: Option<String>,
    pub personality: Option<String>,
    pub response_style: Value,
    pub llm: LlmConfig,
    /// The company's `settings.ragConfig` with the agent's `ragConfig` over it.
    pub rag: RagConfig,
    pub rag_enabled: bool,
    pub escalation: EscalationConfig,
    /// `Err` for stored hours that no longer read (the turn logs it and treats them as open).
    pub hours: Result<Option<BusinessHours>, String>,
    pub fallback_responses: Value,
    pub enabled_tools: Vec<String>,
    pub tool_config: ToolConfig,
    /// The agent has enabled HTTP actions (`chatapp_agent_actions`) and may use them (blank, or its
    /// package grants `tools`); they are read when a turn needs them.
    pub has_actions: bool,
    /// The prompt template rendered into the system prompt, when the agent has an active one.
    pub template: Option<AgentTemplate>,
    pub company_name: String,
    /// The knowledge categories assigned to the agent.
    pub categories: Vec<Uuid>,
}

impl ChatAgent {
    /// A knowledge search for `query` with the agent's settings: hybrid, its RAG limits, its
    /// categories plus the company's global knowledge.
    pub fn search_request(&self, query: String) -> SearchRequest {
        SearchRequest {
            query,
            mode: SearchMode::Hybrid,
            max_results: self.rag.max_results,
            relevance_threshold: self.rag.relevance_threshold,
            scope: Scope { categories: Some(self.categories.clone()), files: None, include_global: true },
        }
    }
}

/// An agent's prompt template and the values of its variables.
#[derive(Debug, Clone)]
pub struct AgentTemplate {
    pub content: String,
    /// `[{"name", "required", "default"}]`, as the template declares them.
    pub variables: Value,
    /// The agent's `promptVariables`.
    pub values: Value,
}

/// The agent's columns (`chat_agent` reads them), as a literal for `concat!`.
macro_rules! agent_select {
    () => {
        "SELECT a.id, a.name, a.status, a.system_prompt, a.personality,
                    COALESCE(a.response_style, '{}'::jsonb), COALESCE(a.llm_config, '{}'::jsonb),
                    COALESCE(c.settings -> 'ragConfig', '{}'::jsonb), COALESCE(a.rag_config, '{}'::jsonb),
                    COALESCE(a.rag_enabled, true), COALESCE(a.escalation_rules, '{}'::jsonb),
                    COALESCE(a.business_hours, '{}'::jsonb), COALESCE(a.fallback_responses, '{}'::jsonb),
                    ARRAY(SELECT k.category_id FROM chatapp_agent_knowledge_categories k
                          WHERE k.agent_id = a.id ORDER BY k.created_at, k.category_id),
                    a.published_config, COALESCE(a.enabled_tools, '[]'::jsonb), COALESCE(a.tool_config, '{}'::jsonb),
                    COALESCE(a.prompt_variables, '{}'::jsonb), t.content, t.variables, c.name,
                    (EXISTS (SELECT 1 FROM chatapp_agent_actions x WHERE x.agent_id = a.id AND x.enabled)
                     AND (a.package_id IS NULL OR COALESCE(a.capabilities, '[]'::jsonb) ? 'tools'
                          OR EXISTS (SELECT 1 FROM chatapp_agent_packages p
                                     WHERE p.id = a.package_id AND COALESCE(p.capabilities, '[]'::jsonb) ? 'tools')))
             FROM chatapp_agents a JOIN chatapp_companies c ON c.id = a.company_id
             LEFT JOIN chatapp_prompt_templates t ON t.is_active AND t.id = CASE
                 WHEN a.published_config IS NULL THEN a.prompt_template_id
                 ELSE (a.published_config ->> 'promptTemplateId')::uuid END
             "
    };
}

const AGENT: &str = concat!(agent_select!(), "WHERE a.company_id = $1 AND a.id = $2 AND a.deleted_at IS NULL");
pub(crate) const AGENT_OF_CONVERSATION: &str = concat!(
    agent_select!(),
    "WHERE a.company_id = $1 AND a.deleted_at IS NULL
       AND a.id = (SELECT v.agent_id FROM chatapp_conversations v WHERE v.id = $2 AND v.company_id = $1)"
);

pub async fn agent(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<Option<ChatAgent>, DbError> {
    Ok(tx.client().query_opt(AGENT, &[&company, &id]).await?.as_ref().map(chat_agent))
}

/// The agent of the company's conversation (read in the same round trip as the conversation's
/// lock, before its agent id is known).
pub async fn agent_of_conversation(
    tx: &TenantTx,
    company: Uuid,
    conversation: Uuid,
) -> Result<Option<ChatAgent>, DbError> {
    Ok(tx.client().query_opt(AGENT_OF_CONVERSATION, &[&company, &conversation]).await?.as_ref().map(chat_agent))
}

/// The configuration columns of an agent's row, or of its published configuration.
struct StoredConfig {
    name: String,
    system_prompt: Option<String>,
    personality: Option<String>,
    response_style: Value,
    llm_config: Value,
    rag_config: Value,
    rag_enabled: bool,
    escalation_rules: Value,
    business_hours: Value,
    fallback_responses: Value,
    enabled_tools: Value,
    tool_config: Value,
    prompt_variables: Value,
    /// The version's knowledge categories (`None`: a version written before they were
    /// versioned, or the draft: the agent's current ones apply).
    categories: Option<Vec<Uuid>>,
}

impl StoredConfig {
    /// The published configuration (a version's, `chatapp::repo::agents::AgentFields::to_config`).
    fn published(c: &Value) -> StoredConfig {
        let text = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_string);
        let object =
            |k: &str| c.get(k).filter(|v| v.is_object()).cloned().unwrap_or_else(|| Value::Object(Default::default()));
        StoredConfig {
            name: text("name").unwrap_or_default(),
            system_prompt: text("systemPrompt"),
            personality: text("personality"),
            response_style: object("responseStyle"),
            llm_config: object("llmConfig"),
            rag_config: object("ragConfig"),
            rag_enabled: c.get("ragEnabled").and_then(Value::as_bool).unwrap_or(true),
            escalation_rules: object("escalationRules"),
            business_hours: object("businessHours"),
            fallback_responses: object("fallbackResponses"),
            enabled_tools: c.get("enabledTools").filter(|v| v.is_array()).cloned().unwrap_or(Value::Array(Vec::new())),
            tool_config: object("toolConfig"),
            prompt_variables: object("promptVariables"),
            categories: crate::repo::agents::category_ids(c),
        }
    }
}

fn chat_agent(r: &Row) -> ChatAgent {
    let published: Option<Value> = r.get(14);
    let stored = match &published {
        Some(c) => StoredConfig::published(c),
        None => StoredConfig {
            name: r.get(1),
            system_prompt: r.get(3),
            personality: r.get(4),
            response_style: r.get(5),
            llm_config: r.get(6),
            rag_config: r.get(8),
            rag_enabled: r.get(9),
            escalation_rules: r.get(10),
            business_hours: r.get(11),
            fallback_responses: r.get(12),
            enabled_tools: r.get(15),
            tool_config: r.get(16),
            prompt_variables: r.get(17),
            categories: None,
        },
    };
    let template = r.get::<_, Option<String>>(18).map(|content| (content, r.get(19)));
    let context = AgentContext {
        company_rag: r.get(7),
        company_name: r.get(20),
        categories: r.get(13),
        has_actions: r.get(21),
        template,
    };
    build_agent(r.get(0), r.get(2), stored, context)
}

/// What a chat agent needs besides its configuration.
pub struct AgentContext {
    /// The company's `settings.ragConfig`.
    pub company_rag: Value,
    pub company_name: String,
    pub categories: Vec<Uuid>,
    pub has_actions: bool,
    /// The active prompt template's content and declared variables.
    pub template: Option<(String, Option<Value>)>,
}

/// The agent as a turn would see it with configuration `config` (a version's, or
/// `AgentFields::to_config` of the draft): what a preview runs.
pub fn agent_with_config(id: Uuid, status: AgentStatus, config: &Value, context: AgentContext) -> ChatAgent {
    build_agent(id, status, StoredConfig::published(config), context)
}

/// The context of [`agent_with_config`]: the company's settings, the agent's categories and
/// actions, and the template `template` (when active).
pub async fn agent_context(
    tx: &TenantTx,
    company: Uuid,
    agent: Uuid,
    template: Option<Uuid>,
) -> Result<AgentContext, DbError> {
    let row = tx
        .client()
        .query_one(
            "SELECT COALESCE(c.settings -> 'ragConfig', '{}'::jsonb), c.name,
                    ARRAY(SELECT k.category_id FROM chatapp_agent_knowledge_categories k
                          WHERE k.agent_id = $2 ORDER BY k.created_at, k.category_id),
                    (EXISTS (SELECT 1 FROM chatapp_agent_actions x WHERE x.agent_id = $2 AND x.enabled)
                     AND (a.package_id IS NULL OR COALESCE(a.capabilities, '[]'::jsonb) ? 'tools'
                          OR EXISTS (SELECT 1 FROM chatapp_agent_packages p
                                     WHERE p.id = a.package_id AND COALESCE(p.capabilities, '[]'::jsonb) ? 'tools'))),
                    t.content, t.variables
             FROM chatapp_companies c
             JOIN chatapp_agents a ON a.id = $2 AND a.company_id = c.id
             LEFT JOIN chatapp_prompt_templates t ON t.is_active AND t.id = $3
             WHERE c.id = $1",
            &[&company, &agent, &template],
        )
        .await?;
    Ok(AgentContext {
        company_rag: row.get(0),
        company_name: row.get(1),
        categories: row.get(2),
        has_actions: row.get(3),
        template: row.get::<_, Option<String>>(4).map(|content| (content, row.get(5))),
    })
}

/// The active escalation rules that apply to `agent` (the company's and its own), highest
/// priority first.
pub async fn escalation_rules_for_agent(tx: &TenantTx, company: Uuid, agent: Uuid) -> Result<Vec<Row>, DbError> {
    tx.client()
        .query(
            "SELECT id, name, trigger_keywords, trigger_conditions, priority, is_active
             FROM chatapp_escalation_rules
             WHERE company_id = $1 AND is_active AND (agent_id IS NULL OR agent_id = $2)
             ORDER BY priority DESC, name",
            &[&company, &agent],
        )
        .await
        .map_err(DbError::from)
}

fn build_agent(id: Uuid, status: AgentStatus, mut stored: StoredConfig, context: AgentContext) -> ChatAgent {
    let AgentContext { company_rag, company_name, categories, has_actions, template } = context;
    let categories = stored.categories.take().unwrap_or(categories);
    let template = template.map(|(content, variables)| AgentTemplate {
        content,
        variables: variables.unwrap_or(Value::Array(Vec::new())),
        values: stored.prompt_variables.clone(),
    });
    // Written through the typed checks, these read; a row that does not (written before the
    // checks, or by hand) falls back to the lenient readers, logged.
    let llm = agent_config::read::<LlmConfig>(&stored.llm_config).unwrap_or_else(|e| {
        tracing::warn!(agent = %id, error = %e, "stored llm_config does not read; using the defaults");
        LlmConfig::default()
    });
    let escalation = match agent_config::read::<EscalationRules>(&stored.escalation_rules) {
        Ok(rules) => rules.to_escalation_config(),
        Err(e) => {
            tracing::warn!(agent = %id, error = %e, "stored escalation_rules do not read; reading them leniently");
            EscalationConfig::from_agent_json(&stored.escalation_rules)
        }
    };
    let hours = match agent_config::read::<BusinessHoursConfig>(&stored.business_hours) {
        Ok(h) => h.to_business_hours().map_err(|e| e.to_string()),
        Err(_) => BusinessHours::from_json(&stored.business_hours),
    };
    let base = RagConfig::from_json(&company_rag);
    let rag = match agent_config::read::<RagSettings>(&stored.rag_config) {
        Ok(settings) => settings.apply_to(base),
        Err(_) => {
            let mut merged = company_rag.clone();
            if let (Some(m), Some(a)) = (merged.as_object_mut(), stored.rag_config.as_object()) {
                m.extend(a.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            RagConfig::from_json(&merged)
        }
    };
    let tool_config = agent_config::read::<ToolConfig>(&stored.tool_config).unwrap_or_else(|e| {
        tracing::warn!(agent = %id, error = %e, "stored tool_config does not read; using the defaults");
        ToolConfig::default()
    });
    let enabled_tools = stored
        .enabled_tools
        .as_array()
        .map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    ChatAgent {
        id,
        name: stored.name,
        status,
        system_prompt: stored.system_prompt,
        personality: stored.personality,
        response_style: stored.response_style,
        llm,
        rag,
        rag_enabled: stored.rag_enabled,
        escalation,
        hours,
        fallback_responses: stored.fallback_responses,
        enabled_tools,
        tool_config,
        has_actions,
        template,
        company_name,
        categories,
    }
}
