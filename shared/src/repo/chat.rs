//! Conversations, messages, customers, escalations and usage: what a chat turn reads and writes.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};
use crate::status::{ConversationStatus, SubscriptionStatus};

mod agent;

pub(crate) use agent::AGENT_OF_CONVERSATION;
pub use agent::{
    agent, agent_context, agent_of_conversation, agent_with_config, escalation_rules_for_agent, AgentContext,
    AgentTemplate, ChatAgent,
};

/// The widget's settings as the embedding page reads them (never its allowed domains or secret).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WidgetConfig {
    pub theme: String,
    pub position: String,
    pub primary_color: String,
    pub title: Option<String>,
    pub subtitle: Option<String>,
    pub avatar_url: Option<String>,
    pub welcome_message: Option<String>,
    pub placeholder_text: Option<String>,
    pub show_branding: bool,
    pub auto_open: bool,
    #[serde(skip)]
    pub allowed_domains: Vec<String>,
    #[serde(skip)]
    pub identity_secret: Option<String>,
    pub require_identity: bool,
    /// The customer may ask for a person (`POST .../handoff`); the widget's config route
    /// reports it as `human_handoff.enabled`, with whether the business is open now.
    #[serde(skip)]
    pub human_handoff_button: bool,
}

impl Default for WidgetConfig {
    fn default() -> Self {
        Self {
            theme: "light".into(),
            position: "bottom-right".into(),
            primary_color: "#007bff".into(),
            title: None,
            subtitle: None,
            avatar_url: None,
            welcome_message: None,
            placeholder_text: None,
            show_branding: true,
            auto_open: false,
            allowed_domains: Vec::new(),
            identity_secret: None,
            require_identity: false,
            human_handoff_button: false,
        }
    }
}

pub async fn widget_config(tx: &TenantTx, company: Uuid, agent: Uuid) -> Result<Option<WidgetConfig>, DbError> {
    let row = tx
        .client()
        .query_opt(
            "SELECT COALESCE(theme, 'light'), COALESCE(position, 'bottom-right'), COALESCE(primary_color, '#007bff'),
                    title, subtitle, avatar_url, welcome_message, placeholder_text, COALESCE(show_branding, true),
                    COALESCE(auto_open, false), COALESCE(allowed_domains, '[]'::jsonb), identity_secret,
                    require_identity, human_handoff_button
             FROM chatapp_widget_configs WHERE company_id = $1 AND agent_id = $2",
            &[&company, &agent],
        )
        .await?;
    Ok(row.map(|r| WidgetConfig {
        theme: r.get(0),
        position: r.get(1),
        primary_color: r.get(2),
        title: r.get(3),
        subtitle: r.get(4),
        avatar_url: r.get(5),
        welcome_message: r.get(6),
        placeholder_text: r.get(7),
        show_branding: r.get(8),
        auto_open: r.get(9),
        allowed_domains: serde_json::from_value(r.get(10)).unwrap_or_default(),
        identity_secret: r.get(11),
        require_identity: r.get(12),
        human_handoff_button: r.get(13),
    }))
}

const SUBSCRIPTION: &str = "SELECT s.status, p.limits || COALESCE(s.custom_limits, '{}'::jsonb),
                    s.trial_ends_at, s.expires_at
             FROM chatapp_company_subscriptions s JOIN chatapp_subscription_plans p ON p.id = s.plan_id
             WHERE s.company_id = $1
             ORDER BY (s.status IN ('active', 'trial', 'grace_period')) DESC, s.created_at DESC LIMIT 1";

/// The company's current subscription status (None without one) and effective limits.
pub async fn subscription(tx: &TenantTx, company: Uuid) -> Result<(Option<SubscriptionStatus>, Value), DbError> {
    let row = tx.client().query_opt(SUBSCRIPTION, &[&company]).await?;
    Ok(match row {
        None => (None, Value::Object(Default::default())),
        Some(r) => {
            let mut status: SubscriptionStatus = r.get(0);
            let trial_ends: Option<DateTime<Utc>> = r.get(2);
            let expires: Option<DateTime<Utc>> = r.get(3);
            let now = Utc::now();
            // A lapsed date counts as expired even before a billing job updates the status.
            if (status == SubscriptionStatus::Trial && trial_ends.is_some_and(|t| t < now))
                || (status == SubscriptionStatus::Active && expires.is_some_and(|t| t < now))
            {
                status = SubscriptionStatus::Expired;
            }
            (Some(status), r.get(1))
        }
    })
}

const MESSAGES_THIS_MONTH: &str = "SELECT COALESCE(sum(message_count), 0)::bigint FROM chatapp_usage_records
             WHERE company_id = $1 AND period_start = date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'";

/// Customer messages of the company this calendar month (UTC), from the usage records.
pub async fn messages_this_month(tx: &TenantTx, company: Uuid) -> Result<i64, DbError> {
    Ok(tx.client().query_one(MESSAGES_THIS_MONTH, &[&company]).await?.get(0))
}

pub struct CustomerFields<'a> {
    pub external_id: Option<&'a str>,
    pub email: Option<&'a str>,
    pub name: Option<&'a str>,
}

/// Finds the customer by external id (verified identity) or creates one; returns its id.
pub async fn upsert_customer(tx: &TenantTx, company: Uuid, c: &CustomerFields<'_>) -> Result<Uuid, DbError> {
    let row = tx
        .client()
        .query_one(
            "INSERT INTO chatapp_customers (company_id, external_id, email, name, last_seen_at, total_conversations,
                                            last_conversation_at)
             VALUES ($1, $2, $3, $4, now(), 1, now())
             ON CONFLICT (company_id, external_id) WHERE external_id IS NOT NULL DO UPDATE
                SET email = COALESCE(EXCLUDED.email, chatapp_customers.email),
                    name = COALESCE(EXCLUDED.name, chatapp_customers.name),
                    last_seen_at = now(), last_conversation_at = now(),
                    total_conversations = COALESCE(chatapp_customers.total_conversations, 0) + 1,
                    updated_at = now()
             RETURNING id",
            &[&company, &c.external_id, &c.email, &c.name],
        )
        .await?;
    Ok(row.get(0))
}

pub struct NewConversation<'a> {
    pub company_id: Uuid,
    pub agent_id: Uuid,
    pub token_hash: &'a str,
    pub channel: &'a str,
    pub customer_id: Uuid,
    pub customer_name: Option<&'a str>,
    pub customer_email: Option<&'a str>,
    pub metadata: &'a Value,
}

pub async fn create_conversation(tx: &TenantTx, c: &NewConversation<'_>) -> Result<Uuid, DbError> {
    let row = tx
        .client()
        .query_one(
            "INSERT INTO chatapp_conversations (company_id, agent_id, session_token, channel, customer_id,
                                                customer_name, customer_email, customer_metadata)
             VALUES ($1, $2, $3, $4::text::channel_type, $5, $6, $7, $8) RETURNING id",
            &[
                &c.company_id,
                &c.agent_id,
                &c.token_hash,
                &c.channel,
                &c.customer_id.to_string(),
                &c.customer_name,
                &c.customer_email,
                c.metadata,
            ],
        )
        .await?;
    tx.client()
        .execute(
            "UPDATE chatapp_agents SET total_conversations = COALESCE(total_conversations, 0) + 1 WHERE id = $1",
            &[&c.agent_id],
        )
        .await?;
    Ok(row.get(0))
}

#[derive(Debug, Clone, Serialize)]
pub struct ConversationState {
    pub id: Uuid,
    pub agent_id: Uuid,
    pub status: ConversationStatus,
    pub customer_id: Option<String>,
    pub summary: Option<String>,
    pub average_sentiment: Option<f64>,
    /// Messages (oldest first) the running summary covers.
    pub summarized_messages: i32,
    /// `web`, `custom`, or a messaging channel (whose replies go out through `channel-send`).
    pub channel: String,
    /// The customer's name as the conversation knows it (identified widget users, channels).
    pub customer_name: Option<String>,
}

impl ConversationState {
    /// A messaging channel's conversation: every reply stored writes a `channel-send` job.
    pub fn on_messaging_channel(&self) -> bool {
        crate::channels::ChannelKind::parse(&self.channel).is_some()
    }
}

const LOCK_CONVERSATION: &str =
    "SELECT id, agent_id, status, customer_id, summary, average_sentiment::float8, summarized_messages, channel::text,
            customer_name
             FROM chatapp_conversations WHERE id = $1 AND company_id = $2 AND deleted_at IS NULL FOR UPDATE";

/// Prepares the statements of a turn's opening round trip (the conversation's lock and the
/// reads behind it), so they go out together and run in order (see `TenantTx::prepare`), and
/// the customer message's insert, which goes out with the COMMIT.
pub async fn prepare_turn_start(tx: &TenantTx) -> Result<(), DbError> {
    tx.prepare(&[
        LOCK_CONVERSATION,
        MESSAGE_BY_CLIENT_ID,
        AGENT_OF_CONVERSATION,
        SUBSCRIPTION,
        MESSAGES_THIS_MONTH,
        MESSAGE_COUNTS,
        HISTORY,
        ESCALATION_RULES,
        INSERT_MESSAGE,
        HAS_WEBHOOKS,
    ])
    .await
}

/// Prepares the statements of a turn's closing writes, so they go out in one round trip in
/// their fixed order, with the COMMIT.
pub async fn prepare_turn_finish(tx: &TenantTx) -> Result<(), DbError> {
    tx.prepare(&[INSERT_MESSAGE, COUNT_CONVERSATION, STORE_SUMMARY, COUNT_AGENT_MESSAGES, RECORD_USAGE, TOUCH_CUSTOMER])
        .await
}

/// Locks the company's conversation for the turn. Message queries that follow in the same
/// transaction are keyed by this conversation, so they stay inside the company as well.
pub async fn lock_conversation(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<Option<ConversationState>, DbError> {
    let row = tx.client().query_opt(LOCK_CONVERSATION, &[&id, &company]).await?;
    Ok(row.map(|r| ConversationState {
        id: r.get(0),
        agent_id: r.get(1),
        status: r.get(2),
        customer_id: r.get(3),
        summary: r.get(4),
        average_sentiment: r.get(5),
        summarized_messages: r.get(6),
        channel: r.get(7),
        customer_name: r.get(8),
    }))
}

/// A stored message of a conversation.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Message {
    pub id: Uuid,
    /// `user`, `assistant`, `human_agent`, `system` or `tool`.
    pub role: String,
    pub content: String,
    /// Citations, the answer's kind, model usage, ...
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub sentiment: Option<f64>,
    pub client_message_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The columns `message` reads, as a literal so statements can be `concat!`-ed constants.
macro_rules! message_columns {
    () => {
        "id, role::text, content, COALESCE(metadata, '{}'::jsonb), sentiment::float8, client_message_id, created_at"
    };
}

fn message(r: &Row) -> Message {
    Message {
        id: r.get(0),
        role: r.get(1),
        content: r.get(2),
        metadata: r.get(3),
        sentiment: r.get(4),
        client_message_id: r.get(5),
        created_at: r.get(6),
    }
}

const MESSAGE_BY_CLIENT_ID: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM chatapp_messages WHERE conversation_id = $1 AND client_message_id = $2"
);

pub async fn message_by_client_id(
    tx: &TenantTx,
    conversation: Uuid,
    client_id: &str,
) -> Result<Option<Message>, DbError> {
    let row = tx.client().query_opt(MESSAGE_BY_CLIENT_ID, &[&conversation, &client_id]).await?;
    Ok(row.as_ref().map(message))
}

/// The answer written for a customer message, if any.
pub async fn reply_to(tx: &TenantTx, conversation: Uuid, message_id: Uuid) -> Result<Option<Message>, DbError> {
    let row = tx
        .client()
        .query_opt(
            concat!(
                "SELECT ",
                message_columns!(),
                " FROM chatapp_messages
                 WHERE conversation_id = $1 AND metadata ->> 'reply_to' = $2::text ORDER BY created_at LIMIT 1"
            ),
            &[&conversation, &message_id.to_string()],
        )
        .await?;
    Ok(row.as_ref().map(message))
}

/// The message's `company_id` is the transaction's company (the column's default; the
/// composite foreign key holds it to the conversation's).
const INSERT_MESSAGE: &str = concat!(
    "INSERT INTO chatapp_messages (conversation_id, role, content, client_message_id, metadata, sentiment)
     VALUES ($1, $2::text::message_role, $3, $4, $5, $6::float8::numeric(3, 2)) RETURNING ",
    message_columns!()
);

pub async fn insert_message(
    tx: &TenantTx,
    conversation: Uuid,
    role: &str,
    content: &str,
    client_message_id: Option<&str>,
    metadata: &Value,
    sentiment: Option<f64>,
) -> Result<Message, DbError> {
    let row = tx
        .client()
        .query_one(INSERT_MESSAGE, &[&conversation, &role, &content, &client_message_id, metadata, &sentiment])
        .await?;
    Ok(message(&row))
}

const HISTORY: &str = concat!(
    "SELECT * FROM (SELECT ",
    message_columns!(),
    " FROM chatapp_messages
                    WHERE conversation_id = $1 AND role <> 'tool'
                      AND EXISTS (SELECT 1 FROM chatapp_conversations c WHERE c.id = $1 AND c.company_id = $3)
                    ORDER BY created_at DESC, id DESC LIMIT $2) m ORDER BY created_at, id"
);

/// The last `limit` messages of the company's conversation, oldest first, without the assistant's tool
/// calls (internal: stored for the support team, never the customer's or the model's history).
pub async fn history(tx: &TenantTx, company: Uuid, conversation: Uuid, limit: i64) -> Result<Vec<Message>, DbError> {
    let rows = tx.client().query(HISTORY, &[&conversation, &limit, &company]).await?;
    Ok(rows.iter().map(message).collect())
}

const MESSAGE_COUNTS: &str =
    "SELECT count(*) FILTER (WHERE role = 'user'), count(*) FILTER (WHERE role <> 'tool') FROM chatapp_messages
     WHERE conversation_id = $1";

/// Messages stored in the conversation: (the customer's, all but the assistant's tool calls).
/// Tool calls are kept out of the turn's bookkeeping (history, counts, the summary's positions)
/// altogether, so a turn with many calls does not push the conversation out of the window.
pub async fn message_counts(tx: &TenantTx, conversation: Uuid) -> Result<(i64, i64), DbError> {
    let row = tx.client().query_one(MESSAGE_COUNTS, &[&conversation]).await?;
    Ok((row.get(0), row.get(1)))
}

/// Role and content of the conversation's messages `offset..offset + limit`, oldest first.
pub async fn message_range(
    tx: &TenantTx,
    conversation: Uuid,
    offset: i64,
    limit: i64,
) -> Result<Vec<(String, String)>, DbError> {
    let rows = tx
        .client()
        .query(
            "SELECT role::text, content FROM chatapp_messages WHERE conversation_id = $1 AND role <> 'tool'
             ORDER BY created_at, id OFFSET $2 LIMIT $3",
            &[&conversation, &offset, &limit],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

const STORE_SUMMARY: &str = "UPDATE chatapp_conversations SET summary = $3, summarized_messages = $5
             WHERE id = $1 AND company_id = $2 AND summarized_messages = $4";

/// Stores the summary unless another turn has moved it on since `covered_before` was read
/// (then its newer summary stands). Returns whether this one was stored.
pub async fn store_summary(
    tx: &TenantTx,
    company: Uuid,
    conversation: Uuid,
    summary: &str,
    covered_before: i32,
    covered: i32,
) -> Result<bool, DbError> {
    let n = tx.client().execute(STORE_SUMMARY, &[&conversation, &company, &summary, &covered_before, &covered]).await?;
    Ok(n == 1)
}

const COUNT_CONVERSATION: &str = "UPDATE chatapp_conversations
             SET message_count = COALESCE(message_count, 0) + $2, ai_message_count = COALESCE(ai_message_count, 0) + $3,
                 average_sentiment = $4::float8::numeric(3, 2), last_message_at = now(), updated_at = now()
             WHERE id = $1 AND company_id = $5";

/// The conversation's counters after a turn: one customer message (with its sentiment folded
/// into the average) and, when the AI answered, one AI message.
pub async fn count_conversation(
    tx: &TenantTx,
    company: Uuid,
    conversation: Uuid,
    average_sentiment: f64,
    ai_answered: bool,
) -> Result<(), DbError> {
    let messages: i32 = if ai_answered { 2 } else { 1 };
    let ai: i32 = i32::from(ai_answered);
    tx.client().execute(COUNT_CONVERSATION, &[&conversation, &messages, &ai, &average_sentiment, &company]).await?;
    Ok(())
}

const COUNT_AGENT_MESSAGES: &str =
    "UPDATE chatapp_agents SET total_messages = COALESCE(total_messages, 0) + $2 WHERE id = $1 AND company_id = $3";

/// The agent's message counter (a row every conversation of the agent writes).
pub async fn count_agent_messages(tx: &TenantTx, company: Uuid, agent: Uuid, messages: i32) -> Result<(), DbError> {
    tx.client().execute(COUNT_AGENT_MESSAGES, &[&agent, &messages, &company]).await?;
    Ok(())
}

/// Last-seen is presence to the minute: a customer seen within the last minute is not written
/// again (no row lock, no WAL on every message of a lively chat).
const TOUCH_CUSTOMER: &str = "UPDATE chatapp_customers SET last_seen_at = now()
             WHERE company_id = $1 AND id = $2
               AND (last_seen_at IS NULL OR last_seen_at < now() - interval '1 minute')";

pub async fn touch_customer(tx: &TenantTx, company: Uuid, customer: &str) -> Result<(), DbError> {
    let Ok(id) = Uuid::parse_str(customer) else {
        return Ok(());
    };
    tx.client().execute(TOUCH_CUSTOMER, &[&company, &id]).await?;
    Ok(())
}

const RECORD_USAGE: &str =
    "INSERT INTO chatapp_usage_records (company_id, agent_id, period_start, period_end, message_count,
                                                ai_response_count, token_count, estimated_cost, unpriced_tokens)
             VALUES ($1, $2, date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
                     (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC',
                     $3, $4, $5, $6::float8::numeric(10, 4), $7::int4)
             ON CONFLICT (company_id, COALESCE(agent_id, '00000000-0000-0000-0000-000000000000'::uuid), period_start)
             DO UPDATE SET message_count = COALESCE(chatapp_usage_records.message_count, 0) + EXCLUDED.message_count,
                           ai_response_count = COALESCE(chatapp_usage_records.ai_response_count, 0)
                                               + EXCLUDED.ai_response_count,
                           token_count = COALESCE(chatapp_usage_records.token_count, 0) + EXCLUDED.token_count,
                           estimated_cost = COALESCE(chatapp_usage_records.estimated_cost, 0) + EXCLUDED.estimated_cost,
                           unpriced_tokens = chatapp_usage_records.unpriced_tokens + EXCLUDED.unpriced_tokens,
                           updated_at = now()";

/// Adds to this month's usage row of (company, agent). `unpriced_tokens`: tokens of a model the
/// catalog has no price for (counted, not priced at 0; `cost` leaves them out).
#[allow(clippy::too_many_arguments)]
pub async fn record_usage(
    tx: &TenantTx,
    company: Uuid,
    agent: Uuid,
    messages: i32,
    ai_responses: i32,
    tokens: i32,
    cost: f64,
    unpriced_tokens: i32,
) -> Result<(), DbError> {
    tx.client()
        .execute(RECORD_USAGE, &[&company, &agent, &messages, &ai_responses, &tokens, &cost, &unpriced_tokens])
        .await?;
    Ok(())
}

const ESCALATION_RULES: &str = "SELECT id, name, trigger_keywords, trigger_conditions, priority, is_active
             FROM chatapp_escalation_rules
             WHERE company_id = $1 AND is_active
               AND (agent_id IS NULL
                    OR agent_id = (SELECT v.agent_id FROM chatapp_conversations v WHERE v.id = $2 AND v.company_id = $1))
             ORDER BY priority DESC, name";

const HAS_WEBHOOKS: &str = "SELECT EXISTS (SELECT 1 FROM chatapp_webhooks WHERE company_id = $1 AND is_active)";

/// Whether the company has an active outbound webhook (its events go through the outbox).
pub async fn has_webhooks(tx: &TenantTx, company: Uuid) -> Result<bool, DbError> {
    Ok(tx.client().query_one(HAS_WEBHOOKS, &[&company]).await?.get(0))
}

/// Active escalation rules of the company for the conversation's agent (or for every agent).
pub async fn escalation_rules(tx: &TenantTx, company: Uuid, conversation: Uuid) -> Result<Vec<Row>, DbError> {
    tx.client().query(ESCALATION_RULES, &[&company, &conversation]).await.map_err(DbError::from)
}

pub struct NewEscalation<'a> {
    pub conversation_id: Uuid,
    pub company_id: Uuid,
    pub agent_id: Uuid,
    pub reason: &'a str,
    pub trigger_type: &'a str,
    pub details: &'a Value,
    pub priority: &'a str,
}

/// Hands the conversation to a human and records why. `None` when it already waits for or is
/// with a human: the status change goes first and only one of concurrent turns makes it, so a
/// conversation never gets two escalations for one handoff.
pub async fn escalate(tx: &TenantTx, e: &NewEscalation<'_>) -> Result<Option<Uuid>, DbError> {
    let changed = tx
        .client()
        .execute(
            "UPDATE chatapp_conversations SET status = 'waiting_human', updated_at = now()
             WHERE id = $1 AND company_id = $2 AND status NOT IN ('waiting_human', 'with_human')",
            &[&e.conversation_id, &e.company_id],
        )
        .await?;
    if changed == 0 {
        return Ok(None);
    }
    let row = tx
        .client()
        .query_one(
            // The firing rule's assignment logic (checked when the rule was written) goes with it.
            "INSERT INTO chatapp_escalations (conversation_id, company_id, agent_id, reason, trigger_type,
                                              trigger_details, priority, assignment_strategy, preferred_assignee)
             SELECT $1::uuid, $2::uuid, $3::uuid, $4::text, $5::text, $6::jsonb, $7::text::escalation_priority,
                    r.assignment_logic->>'strategy',
                    CASE WHEN r.assignment_logic->>'strategy' = 'specific_agent'
                         THEN u.id END
             FROM (SELECT 1) AS one
             LEFT JOIN chatapp_escalation_rules r ON r.company_id = $2::uuid AND r.id::text = $6::jsonb->>'rule_id'
             LEFT JOIN chatapp_users u ON u.company_id = $2::uuid AND u.id::text = r.assignment_logic->>'agent_id'
             RETURNING id",
            &[&e.conversation_id, &e.company_id, &e.agent_id, &e.reason, &e.trigger_type, e.details, &e.priority],
        )
        .await?;
    Ok(Some(row.get(0)))
}

/// Appends an event to the conversation (`chatapp_append_event`: numbered, notified at commit,
/// and queued for outbound webhooks unless it is a typing signal); returns its sequence number.
pub async fn append_event(
    tx: &TenantTx,
    conversation: Uuid,
    kind: &str,
    data: &Value,
    internal: bool,
) -> Result<i64, DbError> {
    let row = tx
        .client()
        .query_one("SELECT chatapp_append_event($1, $2, $3, $4)", &[&conversation, &kind, data, &internal])
        .await?;
    Ok(row.get(0))
}

/// A typing signal (`by`: who types) as an event, at most one per side every two seconds and
/// only in an open conversation: a client that calls in a loop costs a read, not a write.
pub async fn signal_typing(tx: &TenantTx, conversation: Uuid, by: &Value) -> Result<(), DbError> {
    tx.client()
        .execute(
            "SELECT chatapp_append_event(c.id, 'typing', $2, false) FROM chatapp_conversations c
             WHERE c.id = $1 AND c.status NOT IN ('resolved', 'abandoned')
               AND NOT EXISTS (SELECT 1 FROM chatapp_conversation_events e
                               WHERE e.conversation_id = c.id AND e.type = 'typing'
                                 AND e.payload->>'by' = $2->>'by' AND e.created_at > now() - interval '2 seconds')",
            &[&conversation, by],
        )
        .await?;
    Ok(())
}

/// The conversation's status, its row locked until the transaction ends: who owns it now.
pub async fn lock_owner(tx: &TenantTx, company: Uuid, id: Uuid) -> Result<Option<ConversationStatus>, DbError> {
    let row = tx
        .client()
        .query_opt(
            "SELECT status FROM chatapp_conversations WHERE id = $1 AND company_id = $2 FOR NO KEY UPDATE",
            &[&id, &company],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Ends the conversation with an optional CSAT rating (1-5) and comment. A conversation a person
/// has (or is waiting for) is closed through the ownership transition, so its escalation, the
/// support agent's load and the queue are brought up to date and the inbox hears of it.
pub async fn end_conversation(
    tx: &TenantTx,
    company: Uuid,
    conversation: Uuid,
    rating: Option<i32>,
    comment: Option<&str>,
) -> Result<(), DbError> {
    let status = lock_owner(tx, company, conversation).await?;
    if status.is_some_and(|s| s.is_human()) {
        tx.client()
            .execute(
                "SELECT chatapp_handoff_close($1, 'resolved', NULL, 'The customer ended the conversation.')",
                &[&conversation],
            )
            .await?;
    }
    tx.client()
        .execute(
            "UPDATE chatapp_conversations
             SET status = 'resolved', resolved_at = COALESCE(resolved_at, now()), updated_at = now(),
                 context = COALESCE(context, '{}'::jsonb)
                           || jsonb_strip_nulls(jsonb_build_object('csat_rating', $2::int, 'csat_comment', $3::text))
             WHERE id = $1 AND company_id = $4 AND (status NOT IN ('resolved', 'abandoned') OR $5)",
            &[&conversation, &rating, &comment, &company, &status.is_some_and(|s| s.is_human())],
        )
        .await?;
    Ok(())
}

/// Records the email a customer left to be answered by: on the conversation, and on its customer
/// (an anonymous customer's is replaced; a verified one's only filled in when missing). False
/// when the conversation is not this company's.
pub async fn leave_contact(tx: &TenantTx, company: Uuid, conversation: Uuid, email: &str) -> Result<bool, DbError> {
    let Some(row) = tx
        .client()
        .query_opt(
            "UPDATE chatapp_conversations SET customer_email = $3, updated_at = now()
             WHERE id = $2 AND company_id = $1 RETURNING customer_id",
            &[&company, &conversation, &email],
        )
        .await?
    else {
        return Ok(false);
    };
    let customer: Option<String> = row.get(0);
    if let Some(customer) = customer {
        tx.client()
            .execute(
                "UPDATE chatapp_customers
                 SET email = CASE WHEN external_id IS NULL THEN $3 ELSE COALESCE(email, $3) END, updated_at = now()
                 WHERE company_id = $1 AND id::text = $2",
                &[&company, &customer, &email],
            )
            .await?;
    }
    Ok(true)
}

/// The channel of a conversation (None if this transaction cannot see it).
pub async fn channel(tx: &TenantTx, company: Uuid, conversation: Uuid) -> Result<Option<String>, DbError> {
    let row = tx
        .client()
        .query_opt(
            "SELECT channel::text FROM chatapp_conversations WHERE id = $1 AND company_id = $2 AND deleted_at IS NULL",
            &[&conversation, &company],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// The assistant ended the conversation (its `end_conversation` tool): an active conversation
/// is resolved, with its `conversation.resolved` event. `false` when it was no longer active.
pub async fn resolve_by_assistant(tx: &TenantTx, company: Uuid, conversation: Uuid) -> Result<bool, DbError> {
    let n = tx
        .client()
        .execute(
            "UPDATE chatapp_conversations SET status = 'resolved', resolved_at = now(), updated_at = now()
             WHERE id = $1 AND company_id = $2 AND status = 'active'",
            &[&conversation, &company],
        )
        .await?;
    if n > 0 {
        let data = serde_json::json!({"status": ConversationStatus::Resolved, "by": "assistant"});
        append_event(tx, conversation, "conversation.resolved", &data, false).await?;
    }
    Ok(n > 0)
}

/// The assistant's tool calls of a turn, stored as `tool` messages (`(content, metadata)`,
/// oldest first) just before its reply: their times are spread over the microseconds before
/// the transaction's, so they sort before the reply stored in the same transaction.
pub async fn insert_tool_messages(
    tx: &TenantTx,
    conversation: Uuid,
    messages: &[(String, Value)],
) -> Result<(), DbError> {
    let (contents, metadata): (Vec<&str>, Vec<&Value>) = messages.iter().map(|(c, m)| (c.as_str(), m)).unzip();
    // One statement for all of them; the k-th of n is (n + 1 - k) microseconds before now().
    tx.client()
        .execute(
            "INSERT INTO chatapp_messages (conversation_id, role, content, metadata, created_at)
             SELECT $1, 'tool', t.content, t.metadata,
                    now() - make_interval(secs => (cardinality($2::text[]) + 1 - t.k) * 0.000001)
             FROM unnest($2::text[], $3::jsonb[]) WITH ORDINALITY AS t(content, metadata, k)",
            &[&conversation, &contents, &metadata],
        )
        .await?;
    Ok(())
}
