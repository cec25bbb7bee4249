-- 0008: analytics. Daily aggregates (seed 001 section 8), per-conversation analytics (seed 004 2.9),
-- per-support-agent daily stats (seed 003 agent_analytics).

CREATE TYPE resolution_type AS ENUM ('ai', 'human', 'abandoned');

-- ---------------------------------------------------------------------------
-- 8.1 Daily aggregates (tenant). One row per (company, agent|NULL, channel|NULL, date).
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_daily_analytics (
    id                              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id                      uuid NOT NULL REFERENCES chatapp_companies (id) ON DELETE CASCADE,
    agent_id                        uuid,
    channel                         channel_type,
    date                            date NOT NULL,
    total_conversations             integer DEFAULT 0,
    new_conversations               integer DEFAULT 0,
    resolved_conversations          integer DEFAULT 0,
    escalated_conversations         integer DEFAULT 0,
    abandoned_conversations         integer DEFAULT 0,
    total_messages                  integer DEFAULT 0,
    user_messages                   integer DEFAULT 0,
    ai_messages                     integer DEFAULT 0,
    human_agent_messages            integer DEFAULT 0,
    avg_response_time               numeric(10, 2),
    avg_conversation_duration       numeric(10, 2),
    avg_messages_per_conversation   numeric(5, 2),
    avg_confidence_score            numeric(3, 2),
    avg_sentiment_score             numeric(3, 2),
    total_tokens_used               integer DEFAULT 0,
    rag_queries_count               integer DEFAULT 0,
    avg_rag_relevance               numeric(3, 2),
    estimated_cost                  numeric(10, 4),
    created_at                      timestamptz NOT NULL DEFAULT now(),
    updated_at                      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chatapp_daily_analytics_bucket_key
        UNIQUE NULLS NOT DISTINCT (company_id, agent_id, channel, date),
    CONSTRAINT chatapp_daily_analytics_agent_fkey FOREIGN KEY (agent_id, company_id)
        REFERENCES chatapp_agents (id, company_id) ON DELETE SET NULL (agent_id)
);
CREATE INDEX daily_analytics_company_date_idx ON chatapp_daily_analytics (company_id, date);
CREATE INDEX daily_analytics_agent_date_idx ON chatapp_daily_analytics (agent_id, date);
CREATE INDEX daily_analytics_date_idx ON chatapp_daily_analytics (date);

ALTER TABLE chatapp_daily_analytics ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_daily_analytics FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_daily_analytics FOR ALL
    USING (company_id = chatapp_current_company_id() OR chatapp_is_master_admin())
    WITH CHECK (company_id = chatapp_current_company_id() OR chatapp_is_master_admin());

-- ---------------------------------------------------------------------------
-- Conversation analytics (seed 004): one row per conversation (tenant + conversation child)
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_conversation_analytics (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id              uuid NOT NULL REFERENCES chatapp_companies (id) ON DELETE CASCADE,
    conversation_id         uuid NOT NULL,
    agent_id                uuid NOT NULL,
    resolution_type         resolution_type,
    messages_count          integer NOT NULL DEFAULT 0,
    ai_messages_count       integer NOT NULL DEFAULT 0,
    human_messages_count    integer NOT NULL DEFAULT 0,
    response_time_avg       integer,            -- milliseconds
    duration_seconds        integer,
    satisfaction_score      integer CONSTRAINT chatapp_conversation_analytics_csat_check
                            CHECK (satisfaction_score BETWEEN 1 AND 5),
    escalated               boolean NOT NULL DEFAULT false,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chatapp_conversation_analytics_conversation_key UNIQUE (conversation_id),
    CONSTRAINT chatapp_conversation_analytics_conversation_fkey FOREIGN KEY (conversation_id, company_id)
        REFERENCES chatapp_conversations (id, company_id) ON DELETE CASCADE,
    CONSTRAINT chatapp_conversation_analytics_agent_fkey FOREIGN KEY (agent_id, company_id)
        REFERENCES chatapp_agents (id, company_id) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX conversation_analytics_company_idx ON chatapp_conversation_analytics (company_id, created_at);
CREATE INDEX conversation_analytics_agent_idx ON chatapp_conversation_analytics (agent_id);

ALTER TABLE chatapp_conversation_analytics ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_conversation_analytics FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_conversation_analytics FOR ALL
    USING ((company_id = chatapp_current_company_id() OR chatapp_is_master_admin())
           AND EXISTS (SELECT 1 FROM chatapp_conversations c WHERE c.id = conversation_id))
    WITH CHECK ((company_id = chatapp_current_company_id() OR chatapp_is_master_admin())
                AND EXISTS (SELECT 1 FROM chatapp_conversations c WHERE c.id = conversation_id));

-- ---------------------------------------------------------------------------
-- Per-support-agent daily stats (seed 003). Support agents see only their own rows.
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_support_agent_daily_stats (
    id                              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id                      uuid NOT NULL REFERENCES chatapp_companies (id) ON DELETE CASCADE,
    user_id                         uuid NOT NULL,
    date                            date NOT NULL DEFAULT CURRENT_DATE,
    conversations_handled           integer NOT NULL DEFAULT 0,
    escalations_received            integer NOT NULL DEFAULT 0,
    messages_sent                   integer NOT NULL DEFAULT 0,
    avg_first_response_seconds      numeric(10, 2),
    avg_resolution_time_minutes     numeric(10, 2),
    customer_satisfaction_score     numeric(3, 2),
    created_at                      timestamptz NOT NULL DEFAULT now(),
    updated_at                      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chatapp_support_agent_daily_stats_user_date_key UNIQUE (user_id, date),
    CONSTRAINT chatapp_support_agent_daily_stats_user_fkey FOREIGN KEY (user_id, company_id)
        REFERENCES chatapp_users (id, company_id) ON DELETE CASCADE
);
CREATE INDEX support_agent_daily_stats_company_date_idx ON chatapp_support_agent_daily_stats (company_id, date);

ALTER TABLE chatapp_support_agent_daily_stats ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_support_agent_daily_stats FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_support_agent_daily_stats FOR ALL
    USING (company_id = chatapp_current_company_id() OR chatapp_is_master_admin())
    WITH CHECK (company_id = chatapp_current_company_id() OR chatapp_is_master_admin());
CREATE POLICY support_agent_scope ON chatapp_support_agent_daily_stats AS RESTRICTIVE FOR ALL
    USING (chatapp_current_role() <> 'support_agent' OR user_id = chatapp_current_user_id())
    WITH CHECK (chatapp_current_role() <> 'support_agent' OR user_id = chatapp_current_user_id());
