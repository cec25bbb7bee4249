//! AI agents (`chatapp_agents`, seed 001 section 3.2) and the agent packages (3.1) they are
//! made from.
//!
//! Where the seed has no column for a setting, it lives in the JSON column the seed gives its
//! neighbours: the greeting and the suggested questions in `fallback_responses` (`greeting`,
//! `suggestedQuestions`: the agent's canned texts; `response_style` is not used because the
//! chat turn copies it into the model's prompt), the outside-hours message in `business_hours`
//! (`outsideHoursMessage`, as the seed shows).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};
use crate::status::AgentStatus;
use crate::web::Page;

/// `fallback_responses` key of the greeting shown when a conversation opens.
pub const GREETING: &str = "greeting";
/// `fallback_responses` key of the suggested questions (a list of strings).
pub const SUGGESTED_QUESTIONS: &str = "suggestedQuestions";
/// The package capability that lets company admins see and set the system prompt.
pub const CUSTOM_PROMPT: &str = "custom_prompt";
/// The package capability that lets company admins see and set the model configuration.
pub const CUSTOM_MODEL: &str = "custom_model";

/// An AI agent with every column of `chatapp_agents` except its webhook secret.
///
/// `system_prompt` and `llm_config` are the master admin's (or the package's): absent from
/// what a company admin is shown unless the agent's package grants `custom_prompt` /
/// `custom_model`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Agent {
    pub id: Uuid,
    pub company_id: Uuid,
    pub name: String,
    pub description: Option<String>,
    /// Image URL.
    pub avatar: Option<String>,
    /// The agent package it was made from (absent for a blank agent).
    pub package_id: Option<Uuid>,
    /// The package's slug: the agent's type (`support-rag`, `faq-basic`, ...).
    pub package_slug: Option<String>,
    pub custom_package_url: Option<String>,
    pub custom_package_hash: Option<String>,
    /// What the agent's code supports, copied from its package: `rag`, `tools`, `custom_prompt`, ...
    #[schema(value_type = Vec<String>)]
    pub capabilities: Value,
    pub personality: Option<String>,
    /// `{"tone", "formality", "verbosity", "language"}`.
    #[schema(value_type = Object)]
    pub response_style: Value,
    /// Master admin controlled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// Master admin controlled: `{"model", "temperature", "maxTokens"}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub llm_config: Option<Value>,
    pub rag_enabled: bool,
    /// `{"chunkSize", "overlapSize", "relevanceThreshold", "maxResults"}`.
    #[schema(value_type = Object)]
    pub rag_config: Value,
    #[schema(value_type = Vec<String>)]
    pub enabled_tools: Value,
    #[schema(value_type = Object)]
    pub tool_config: Value,
    /// `{"keywords", "sentimentThreshold", "confidenceThreshold", "autoEscalateAfter"}`.
    #[schema(value_type = Object)]
    pub escalation_rules: Value,
    /// `{"timezone", "schedule", "outsideHoursMessage"}`.
    #[schema(value_type = Object)]
    pub business_hours: Value,
    /// The agent's canned texts (`error`, ...), with the greeting and the suggested questions.
    #[schema(value_type = Object)]
    pub fallback_responses: Value,
    /// `fallback_responses.greeting`.
    pub greeting: Option<String>,
    /// `fallback_responses.suggestedQuestions`.
    pub suggested_questions: Vec<String>,
    /// A prompt template (`chatapp_prompt_templates`) rendered into the system prompt at each
    /// turn, with `prompt_variables` filling its custom variables. Master admin controlled, like
    /// the system prompt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_template_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub prompt_variables: Option<Value>,
    /// The knowledge categories the agent answers from, besides the company's global knowledge
    /// (part of its versions: customers are served the published version's).
    pub knowledge_category_ids: Vec<Uuid>,
    pub status: AgentStatus,
    /// The draft's version: every configuration change writes one (`GET .../versions`).
    pub version: i32,
    /// The version customers are served (absent until the agent is first published: until
    /// then, as for agents older than versions, the draft is served).
    pub published_version: Option<i32>,
    pub published_at: Option<DateTime<Utc>>,
    /// The draft differs from the published version (publish to make it live).
    pub has_unpublished_changes: bool,
    pub total_conversations: i32,
    pub total_messages: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The package's current capabilities (what it grants on top of the agent's own copy).
    #[serde(skip)]
    pub package_capabilities: Value,
}

impl Agent {
    /// The agent's own capabilities or its package's include `capability`.
    pub fn has_capability(&self, capability: &str) -> bool {
        [&self.capabilities, &self.package_capabilities]
            .iter()
            .any(|list| list.as_array().is_some_and(|a| a.iter().any(|c| c.as_str() == Some(capability))))
    }

    /// The stored configuration, to change and write back (the agent must be as read, not
    /// hidden for a company admin).
    pub fn fields(&self) -> AgentFields {
        AgentFields {
            name: self.name.clone(),
            description: self.description.clone(),
            avatar: self.avatar.clone(),
            package_id: self.package_id,
            custom_package_url: self.custom_package_url.clone(),
            custom_package_hash: self.custom_package_hash.clone(),
            capabilities: self.capabilities.clone(),
            personality: self.personality.clone(),
            response_style: self.response_style.clone(),
            system_prompt: self.system_prompt.clone(),
            llm_config: self.llm_config.clone().unwrap_or_else(|| json!({})),
            rag_enabled: self.rag_enabled,
            rag_config: self.rag_config.clone(),
            enabled_tools: self.enabled_tools.clone(),
            tool_config: self.tool_config.clone(),
            escalation_rules: self.escalation_rules.clone(),
            business_hours: self.business_hours.clone(),
            fallback_responses: self.fallback_responses.clone(),
            prompt_template_id: self.prompt_template_id,
            prompt_variables: self.prompt_variables.clone().unwrap_or_else(|| json!({})),
            knowledge_category_ids: self.knowledge_category_ids.clone(),
        }
    }
}

/// The columns an agent is created with or changed to (everything but its status, counters and
/// webhook secret). `package_id` is written on create only.
#[derive(Debug, Clone)]
pub struct AgentFields {
    pub name: String,
    pub description: Option<String>,
    pub avatar: Option<String>,
    pub package_id: Option<Uuid>,
    pub custom_package_url: Option<String>,
    pub custom_package_hash: Option<String>,
    pub capabilities: Value,
    pub personality: Option<String>,
    pub response_style: Value,
    pub system_prompt: Option<String>,
    pub llm_config: Value,
    pub rag_enabled: bool,
    pub rag_config: Value,
    pub enabled_tools: Value,
    pub tool_config: Value,
    pub escalation_rules: Value,
    pub business_hours: Value,
    pub fallback_responses: Value,
    pub prompt_template_id: Option<Uuid>,
    pub prompt_variables: Value,
    /// Sorted, without duplicates; categories of the agent's company.
    pub knowledge_category_ids: Vec<Uuid>,
}

/// The configuration's fields as a version stores them (the API's camelCase names).
pub const CONFIG_FIELDS: [&str; 20] = [
    "name",
    "description",
    "avatar",
    "customPackageUrl",
    "customPackageHash",
    "capabilities",
    "personality",
    "responseStyle",
    "systemPrompt",
    "llmConfig",
    "ragEnabled",
    "ragConfig",
    "enabledTools",
    "toolConfig",
    "escalationRules",
    "businessHours",
    "fallbackResponses",
    "promptTemplateId",
    "promptVariables",
    "knowledgeCategoryIds",
];

/// Fields only the master admin sees (unless the package grants them): hidden from a company
/// admin's view of a version.
pub const MASTER_FIELDS: [(&str, &str); 4] = [
    ("systemPrompt", CUSTOM_PROMPT),
    ("promptTemplateId", CUSTOM_PROMPT),
    ("promptVariables", CUSTOM_PROMPT),
    ("llmConfig", CUSTOM_MODEL),
];

impl AgentFields {
    /// The configuration as a version stores it: every field of [`CONFIG_FIELDS`].
    pub fn to_config(&self) -> Value {
        json!({
            "name": self.name,
            "description": self.description,
            "avatar": self.avatar,
            "customPackageUrl": self.custom_package_url,
            "customPackageHash": self.custom_package_hash,
            "capabilities": self.capabilities,
            "personality": self.personality,
            "responseStyle": self.response_style,
            "systemPrompt": self.system_prompt,
            "llmConfig": self.llm_config,
            "ragEnabled": self.rag_enabled,
            "ragConfig": self.rag_config,
            "enabledTools": self.enabled_tools,
            "toolConfig": self.tool_config,
            "escalationRules": self.escalation_rules,
            "businessHours": self.business_hours,
            "fallbackResponses": self.fallback_responses,
            "promptTemplateId": self.prompt_template_id,
            "promptVariables": self.prompt_variables,
            "knowledgeCategoryIds": self.knowledge_category_ids,
        })
    }

    /// The fields of a stored version's configuration (`package_id` is kept: it is not
    /// versioned). A field the version lacks keeps its current value.
    pub fn with_config(mut self, c: &Value) -> AgentFields {
        let text = |k: &str, cur: Option<String>| match c.get(k) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Null) => None,
            _ => cur,
        };
        let value = |k: &str, cur: Value| c.get(k).filter(|v| !v.is_null()).cloned().unwrap_or(cur);
        if let Some(Value::String(n)) = c.get("name") {
            self.name = n.clone();
        }
        self.description = text("description", self.description);
        self.avatar = text("avatar", self.avatar);
        self.custom_package_url = text("customPackageUrl", self.custom_package_url);
        self.custom_package_hash = text("customPackageHash", self.custom_package_hash);
        self.capabilities = value("capabilities", self.capabilities);
        self.personality = text("personality", self.personality);
        self.response_style = value("responseStyle", self.response_style);
        self.system_prompt = text("systemPrompt", self.system_prompt);
        self.llm_config = value("llmConfig", self.llm_config);
        if let Some(b) = c.get("ragEnabled").and_then(Value::as_bool) {
            self.rag_enabled = b;
        }
        self.rag_config = value("ragConfig", self.rag_config);
        self.enabled_tools = value("enabledTools", self.enabled_tools);
        self.tool_config = value("toolConfig", self.tool_config);
        self.escalation_rules = value("escalationRules", self.escalation_rules);
        self.business_hours = value("businessHours", self.business_hours);
        self.fallback_responses = value("fallbackResponses", self.fallback_responses);
        match c.get("promptTemplateId") {
            Some(Value::String(s)) => self.prompt_template_id = s.parse().ok(),
            Some(Value::Null) => self.prompt_template_id = None,
            _ => {}
        }
        self.prompt_variables = value("promptVariables", self.prompt_variables);
        if let Some(ids) = category_ids(c) {
            self.knowledge_category_ids = ids;
        }
        self
    }
}

impl AgentFields {
    /// A blank agent: the column defaults.
    pub fn blank(name: String) -> Self {
        Self {
            name,
            description: None,
            avatar: None,
            package_id: None,
            custom_package_url: None,
            custom_package_hash: None,
            capabilities: json!([]),
            personality: None,
            response_style: json!({}),
            system_prompt: None,
            llm_config: json!({}),
            rag_enabled: true,
            rag_config: json!({}),
            enabled_tools: json!([]),
            tool_config: json!({}),
            escalation_rules: json!({}),
            business_hours: json!({}),
            fallback_responses: json!({}),
            prompt_template_id: None,
            prompt_variables: json!({}),
            knowledge_category_ids: Vec::new(),
        }
    }
}

/// The knowledge categories of a stored configuration (`knowledgeCategoryIds`), sorted; `None`
/// when it has none (versions written before categories were versioned).
pub fn category_ids(config: &Value) -> Option<Vec<Uuid>> {
    let list = config.get("knowledgeCategoryIds")?.as_array()?;
    let mut ids: Vec<Uuid> = list.iter().filter_map(|v| v.as_str()?.parse().ok()).collect();
    ids.sort();
    ids.dedup();
    Some(ids)
}

/// An agent package as agents are made from it.
#[derive(Debug, Clone)]
pub struct Package {
    pub id: Uuid,
    pub slug: String,
    /// `["rag", "tools", ...]`.
    pub capabilities: Value,
    /// `{"llmConfig", "ragConfig", "enabledTools", ...}`.
    pub default_config: Value,
    /// Active and published: agents may be made from it.
    pub usable: bool,
}

/// Filters of the agent list; all optional.
#[derive(Debug, Default)]
pub struct AgentFilter<'a> {
    pub status: Option<AgentStatus>,
    /// A package slug; `blank` also matches agents without a package.
    pub package_slug: Option<&'a str>,
    pub package_id: Option<Uuid>,
    /// An `ILIKE` pattern on the name (the caller escapes `%`, `_` and `\`).
    pub name_like: Option<&'a str>,
}

/// The agent's columns with its package's slug and capabilities; the statements alias the agent
/// `a` and the package `p`.
const COLUMNS: &str = "a.id, a.company_id, a.name, a.description, a.avatar, a.package_id, p.slug, \
    a.custom_package_url, a.custom_package_hash, COALESCE(a.capabilities, '[]'::jsonb), a.personality, \
    COALESCE(a.response_style, '{}'::jsonb), a.system_prompt, COALESCE(a.llm_config, '{}'::jsonb), \
    COALESCE(a.rag_enabled, true), COALESCE(a.rag_config, '{}'::jsonb), COALESCE(a.enabled_tools, '[]'::jsonb), \
    COALESCE(a.tool_config, '{}'::jsonb), COALESCE(a.escalation_rules, '{}'::jsonb), \
    COALESCE(a.business_hours, '{}'::jsonb), COALESCE(a.fallback_responses, '{}'::jsonb), a.status, \
    COALESCE(a.total_conversations, 0), COALESCE(a.total_messages, 0), a.created_at, a.updated_at, \
    COALESCE(p.capabilities, '[]'::jsonb), a.prompt_template_id, COALESCE(a.prompt_variables, '{}'::jsonb), \
    a.version, a.published_version, a.published_at, \
    ARRAY(SELECT k.category_id FROM chatapp_agent_knowledge_categories k WHERE k.agent_id = a.id \
          ORDER BY k.category_id)";

/// The number of columns in [`COLUMNS`] (the list's window count follows them).
const NCOLUMNS: usize = 33;

fn from_row(r: &Row) -> Agent {
    let fallback_responses: Value = r.get(20);
    let greeting = fallback_responses.get(GREETING).and_then(Value::as_str).map(str::to_string);
    let suggested_questions = fallback_responses
        .get(SUGGESTED_QUESTIONS)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|q| q.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let llm_config: Value = r.get(13);
    let (version, published_version): (i32, Option<i32>) = (r.get(29), r.get(30));
    Agent {
        id: r.get(0),
        company_id: r.get(1),
        name: r.get(2),
        description: r.get(3),
        avatar: r.get(4),
        package_id: r.get(5),
        package_slug: r.get(6),
        custom_package_url: r.get(7),
        custom_package_hash: r.get(8),
        capabilities: r.get(9),
        personality: r.get(10),
        response_style: r.get(11),
        system_prompt: r.get(12),
        llm_config: Some(llm_config),
        rag_enabled: r.get(14),
        rag_config: r.get(15),
        enabled_tools: r.get(16),
        tool_config: r.get(17),
        escalation_rules: r.get(18),
        business_hours: r.get(19),
        fallback_responses,
        greeting,
        suggested_questions,
        status: r.get(21),
        total_conversations: r.get(22),
        total_messages: r.get(23),
        created_at: r.get(24),
        updated_at: r.get(25),
        package_capabilities: r.get(26),
        prompt_template_id: r.get(27),
        prompt_variables: Some(r.get(28)),
        version,
        published_version,
        published_at: r.get(31),
        knowledge_category_ids: r.get(32),
        has_unpublished_changes: published_version != Some(version),
    }
}

/// One page of the company's agents, oldest first, with the total.
pub async fn list(
    tx: &TenantTx,
    company: Uuid,
    filter: &AgentFilter<'_>,
    page: Page,
) -> Result<(Vec<Agent>, i64), DbError> {
    let rows = tx
        .client()
        .query(
            &format!(
                "SELECT {COLUMNS}, count(*) OVER ()
                 FROM chatapp_agents a LEFT JOIN chatapp_agent_packages p ON p.id = a.package_id
                 WHERE a.company_id = $1 AND a.deleted_at IS NULL
                   AND ($2::agent_status IS NULL OR a.status = $2)
                   AND ($3::text IS NULL OR p.slug = $3 OR ($3 = 'blank' AND a.package_id IS NULL))
                   AND ($4::uuid IS NULL OR a.package_id = $4)
                   AND ($5::text IS NULL OR a.name ILIKE $5)
                 ORDER BY a.created_at, a.id LIMIT $6 OFFSET $7"
            ),
            &[
                &company,
                &filter.status,
                &filter.package_slug,
                &filter.package_id,
                &filter.name_like,
                &page.limit,
                &page.offset,
            ],
        )
        .await?;
    let total = rows.first().map(|r| r.get::<_, i64>(NCOLUMNS)).unwrap_or(0);
    Ok((rows.iter().map(from_row).collect(), total))
}

/// An agent of `company` (another company's, or a deleted one, is `None`).
pub async fn get(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<Option<Agent>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!(
                "SELECT {COLUMNS}
                 FROM chatapp_agents a LEFT JOIN chatapp_agent_packages p ON p.id = a.package_id
                 WHERE a.company_id = $1 AND a.id = $2 AND a.deleted_at IS NULL"
            ),
            &[&company, &id],
        )
        .await?;
    Ok(row.as_ref().map(from_row))
}

/// [`get`], locking the agent's row until the transaction ends (changes read, then write it).
pub async fn lock(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<Option<Agent>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!(
                "SELECT {COLUMNS}
                 FROM chatapp_agents a LEFT JOIN chatapp_agent_packages p ON p.id = a.package_id
                 WHERE a.company_id = $1 AND a.id = $2 AND a.deleted_at IS NULL
                 FOR UPDATE OF a"
            ),
            &[&company, &id],
        )
        .await?;
    Ok(row.as_ref().map(from_row))
}

/// An agent package by id, whether or not it is usable.
pub async fn package(tx: &TenantTx, id: Uuid) -> Result<Option<Package>, DbError> {
    let row = tx
        .client()
        .query_opt(
            "SELECT id, slug, COALESCE(capabilities, '[]'::jsonb), COALESCE(default_config, '{}'::jsonb),
                    (is_active IS NOT FALSE AND published_at IS NOT NULL)
             FROM chatapp_agent_packages WHERE id = $1",
            &[&id],
        )
        .await?;
    Ok(row.map(|r| Package {
        id: r.get(0),
        slug: r.get(1),
        capabilities: r.get(2),
        default_config: r.get(3),
        usable: r.get(4),
    }))
}

/// The company's agents that count against the plan (not archived, not deleted), after taking
/// the company's agent lock for the rest of the transaction, so two concurrent creates cannot
/// both see room for one more.
pub async fn lock_and_count_live(tx: &TenantTx, company: Uuid) -> Result<i64, DbError> {
    tx.client().execute("SELECT pg_advisory_xact_lock(7301, hashtext($1::uuid::text))", &[&company]).await?;
    Ok(tx
        .client()
        .query_one(
            "SELECT count(*) FROM chatapp_agents
             WHERE company_id = $1 AND deleted_at IS NULL AND status <> 'archived'",
            &[&company],
        )
        .await?
        .get(0))
}

/// Inserts an agent of `company` in `status`.
pub async fn create(tx: &TenantTx, company: Uuid, f: &AgentFields, status: AgentStatus) -> Result<Agent, DbError> {
    let row = tx
        .client()
        .query_one(
            &format!(
                "WITH a AS (
                    INSERT INTO chatapp_agents
                        (company_id, name, description, avatar, package_id, custom_package_url, custom_package_hash,
                         capabilities, personality, response_style, system_prompt, llm_config, rag_enabled,
                         rag_config, enabled_tools, tool_config, escalation_rules, business_hours,
                         fallback_responses, status, prompt_template_id, prompt_variables)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
                            $21, $22)
                    RETURNING *)
                 SELECT {COLUMNS} FROM a LEFT JOIN chatapp_agent_packages p ON p.id = a.package_id"
            ),
            &[
                &company,
                &f.name,
                &f.description,
                &f.avatar,
                &f.package_id,
                &f.custom_package_url,
                &f.custom_package_hash,
                &f.capabilities,
                &f.personality,
                &f.response_style,
                &f.system_prompt,
                &f.llm_config,
                &f.rag_enabled,
                &f.rag_config,
                &f.enabled_tools,
                &f.tool_config,
                &f.escalation_rules,
                &f.business_hours,
                &f.fallback_responses,
                &status,
                &f.prompt_template_id,
                &f.prompt_variables,
            ],
        )
        .await?;
    let mut agent = from_row(&row);
    if !f.knowledge_category_ids.is_empty() {
        agent.knowledge_category_ids = set_categories(tx, company, agent.id, &f.knowledge_category_ids).await?;
    }
    Ok(agent)
}

/// Makes `categories` the knowledge categories of `company`'s agent `agent` (nothing changes
/// for another company's agent), leaving out any that is not (or no longer) a category of
/// `company`; the set stored, sorted.
pub async fn set_categories(
    tx: &TenantTx,
    company: Uuid,
    agent: Uuid,
    categories: &[Uuid],
) -> Result<Vec<Uuid>, DbError> {
    tx.client()
        .execute(
            "DELETE FROM chatapp_agent_knowledge_categories k USING chatapp_agents a
             WHERE k.agent_id = $1 AND a.id = k.agent_id AND a.company_id = $3 AND NOT (k.category_id = ANY($2))",
            &[&agent, &categories, &company],
        )
        .await?;
    let rows = tx
        .client()
        .query(
            "WITH added AS (
                INSERT INTO chatapp_agent_knowledge_categories (agent_id, category_id)
                SELECT $1, c.id FROM chatapp_knowledge_categories c
                WHERE c.company_id = $2 AND c.id = ANY($3)
                  AND EXISTS (SELECT 1 FROM chatapp_agents a WHERE a.id = $1 AND a.company_id = $2)
                ON CONFLICT (agent_id, category_id) DO NOTHING)
             SELECT c.id FROM chatapp_knowledge_categories c WHERE c.company_id = $2 AND c.id = ANY($3) ORDER BY c.id",
            &[&agent, &company, &categories],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The company's agents answering from knowledge category `category`, their rows locked until
/// the transaction ends (a change to their categories is about to be recorded).
pub async fn lock_with_category(tx: &TenantTx, company: Uuid, category: Uuid) -> Result<Vec<Agent>, DbError> {
    let rows = tx
        .client()
        .query(
            &format!(
                "SELECT {COLUMNS}
                 FROM chatapp_agents a LEFT JOIN chatapp_agent_packages p ON p.id = a.package_id
                 WHERE a.company_id = $1 AND a.deleted_at IS NULL
                   AND EXISTS (SELECT 1 FROM chatapp_agent_knowledge_categories k
                               WHERE k.agent_id = a.id AND k.category_id = $2)
                 ORDER BY a.id
                 FOR UPDATE OF a"
            ),
            &[&company, &category],
        )
        .await?;
    Ok(rows.iter().map(from_row).collect())
}

/// Writes every field but `package_id` (and the status, counters and webhook secret); the
/// categories through [`set_categories`].
pub async fn update(tx: &TenantTx, company: Uuid, id: Uuid, f: &AgentFields) -> Result<Option<Agent>, DbError> {
    set_categories(tx, company, id, &f.knowledge_category_ids).await?;
    let row = tx
        .client()
        .query_opt(
            &format!(
                "WITH a AS (
                    UPDATE chatapp_agents SET
                        name = $3, description = $4, avatar = $5, custom_package_url = $6, custom_package_hash = $7,
                        capabilities = $8, personality = $9, response_style = $10, system_prompt = $11,
                        llm_config = $12, rag_enabled = $13, rag_config = $14, enabled_tools = $15,
                        tool_config = $16, escalation_rules = $17, business_hours = $18, fallback_responses = $19,
                        prompt_template_id = $20, prompt_variables = $21, updated_at = now()
                    WHERE company_id = $1 AND id = $2 AND deleted_at IS NULL
                    RETURNING *)
                 SELECT {COLUMNS} FROM a LEFT JOIN chatapp_agent_packages p ON p.id = a.package_id"
            ),
            &[
                &company,
                &id,
                &f.name,
                &f.description,
                &f.avatar,
                &f.custom_package_url,
                &f.custom_package_hash,
                &f.capabilities,
                &f.personality,
                &f.response_style,
                &f.system_prompt,
                &f.llm_config,
                &f.rag_enabled,
                &f.rag_config,
                &f.enabled_tools,
                &f.tool_config,
                &f.escalation_rules,
                &f.business_hours,
                &f.fallback_responses,
                &f.prompt_template_id,
                &f.prompt_variables,
            ],
        )
        .await?;
    Ok(row.as_ref().map(from_row))
}

pub async fn set_status(tx: &TenantTx, company: Uuid, id: Uuid, status: AgentStatus) -> Result<Option<Agent>, DbError> {
    let row = tx
        .client()
        .query_opt(
            &format!(
                "WITH a AS (
                    UPDATE chatapp_agents SET status = $3, updated_at = now()
                    WHERE company_id = $1 AND id = $2 AND deleted_at IS NULL
                    RETURNING *)
                 SELECT {COLUMNS} FROM a LEFT JOIN chatapp_agent_packages p ON p.id = a.package_id"
            ),
            &[&company, &id, &status],
        )
        .await?;
    Ok(row.as_ref().map(from_row))
}

/// Any conversation (open, closed or soft-deleted), escalation or conversation analytics row
/// names the agent: it must be kept (archived) rather than deleted.
pub async fn has_conversations(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<bool, DbError> {
    Ok(tx
        .client()
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM chatapp_conversations WHERE company_id = $1 AND agent_id = $2)
                 OR EXISTS (SELECT 1 FROM chatapp_escalations WHERE company_id = $1 AND agent_id = $2)
                 OR EXISTS (SELECT 1 FROM chatapp_conversation_analytics WHERE company_id = $1 AND agent_id = $2)",
            &[&company, &id],
        )
        .await?
        .get(0))
}

/// Deletes the agent's row (a hard delete: its widget, channel and webhook configurations,
/// escalation rules and knowledge-category links go with it; usage and daily analytics rows
/// keep their figures without the agent). Only for an agent without conversations.
pub async fn delete(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<bool, DbError> {
    let n = tx
        .client()
        .execute(
            "DELETE FROM chatapp_agents WHERE company_id = $1 AND id = $2 AND deleted_at IS NULL",
            &[&company, &id],
        )
        .await?;
    Ok(n > 0)
}
