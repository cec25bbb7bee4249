-- 0005: customers, conversations, messages, internal notes, escalations (seed 001 section 4)
-- and escalation rules (seed 003).

-- 'email' channel added by seed 004.
CREATE TYPE channel_type AS ENUM (
    'web', 'whatsapp', 'telegram', 'messenger', 'instagram', 'slack', 'teams', 'custom', 'email'
);
CREATE TYPE conversation_status AS ENUM ('active', 'waiting_human', 'with_human', 'resolved', 'abandoned');
CREATE TYPE message_role AS ENUM ('user', 'assistant', 'system', 'human_agent', 'tool');
CREATE TYPE escalation_status AS ENUM (
    'pending', 'assigned', 'in_progress', 'resolved', 'returned_to_ai', 'abandoned'
);
CREATE TYPE escalation_priority AS ENUM ('low', 'medium', 'high', 'urgent');

-- ---------------------------------------------------------------------------
-- 4.5 Customers (tenant)
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_customers (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id              uuid NOT NULL REFERENCES chatapp_companies (id) ON DELETE CASCADE,
    external_id             varchar(255),
    email                   varchar(255),
    phone                   varchar(50),
    name                    varchar(255),
    avatar_url              varchar(500),
    metadata                jsonb DEFAULT '{}'::jsonb,
    tags                    jsonb DEFAULT '[]'::jsonb,
    notes                   text,
    total_conversations     integer DEFAULT 0,
    last_conversation_at    timestamptz,
    channel_ids             jsonb DEFAULT '{}'::jsonb,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customers_company_idx ON chatapp_customers (company_id);
CREATE INDEX customers_email_idx ON chatapp_customers (email);
CREATE INDEX customers_phone_idx ON chatapp_customers (phone);
CREATE INDEX customers_company_email_idx ON chatapp_customers (company_id, email);
CREATE INDEX customers_company_external_idx ON chatapp_customers (company_id, external_id);

ALTER TABLE chatapp_customers ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_customers FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_customers FOR ALL
    USING (company_id = chatapp_current_company_id() OR chatapp_is_master_admin())
    WITH CHECK (company_id = chatapp_current_company_id() OR chatapp_is_master_admin());

-- ---------------------------------------------------------------------------
-- 4.1 Conversations (tenant). assigned_agent_id = assigned human support agent (chatapp_users).
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_conversations (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id          uuid NOT NULL REFERENCES chatapp_companies (id) ON DELETE CASCADE,
    agent_id            uuid NOT NULL,
    session_token       varchar(255) NOT NULL UNIQUE,
    channel             channel_type NOT NULL,
    customer_id         varchar(255),
    customer_name       varchar(255),
    customer_email      varchar(255),
    customer_phone      varchar(50),
    customer_metadata   jsonb DEFAULT '{}'::jsonb,
    external_id         varchar(255),
    status              conversation_status NOT NULL DEFAULT 'active',
    is_human_agent      boolean DEFAULT false,
    assigned_agent_id   uuid,
    context             jsonb DEFAULT '{}'::jsonb,
    summary             text,
    message_count       integer DEFAULT 0,
    ai_message_count    integer DEFAULT 0,
    human_message_count integer DEFAULT 0,
    average_sentiment   numeric(3, 2),
    started_at          timestamptz NOT NULL DEFAULT now(),
    last_message_at     timestamptz NOT NULL DEFAULT now(),
    resolved_at         timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    -- referenced by seed 001 section 12 (partial index); soft delete
    deleted_at          timestamptz,
    CONSTRAINT chatapp_conversations_id_company_key UNIQUE (id, company_id),
    CONSTRAINT chatapp_conversations_agent_fkey FOREIGN KEY (agent_id, company_id)
        REFERENCES chatapp_agents (id, company_id) DEFERRABLE INITIALLY DEFERRED,
    CONSTRAINT chatapp_conversations_assigned_agent_fkey FOREIGN KEY (assigned_agent_id, company_id)
        REFERENCES chatapp_users (id, company_id) ON DELETE SET NULL (assigned_agent_id)
);
CREATE INDEX conversations_company_idx ON chatapp_conversations (company_id);
CREATE INDEX conversations_agent_idx ON chatapp_conversations (agent_id);
CREATE INDEX conversations_status_idx ON chatapp_conversations (status);
CREATE INDEX conversations_channel_idx ON chatapp_conversations (channel);
CREATE INDEX conversations_company_agent_idx ON chatapp_conversations (company_id, agent_id);
CREATE INDEX conversations_last_message_idx ON chatapp_conversations (last_message_at);
-- (seed 001 conversations_session_token_idx is covered by the UNIQUE constraint)
-- seed 004 step 2.14
CREATE INDEX conversations_company_status_idx ON chatapp_conversations (company_id, status);
CREATE INDEX conversations_assigned_agent_idx ON chatapp_conversations (assigned_agent_id);
CREATE INDEX conversations_company_external_idx ON chatapp_conversations (company_id, channel, external_id);
-- seed 001 section 12
CREATE INDEX idx_conversations_company_agent_status ON chatapp_conversations (company_id, agent_id, status)
    WHERE deleted_at IS NULL;

ALTER TABLE chatapp_conversations ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_conversations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_conversations FOR ALL
    USING (company_id = chatapp_current_company_id() OR chatapp_is_master_admin())
    WITH CHECK (company_id = chatapp_current_company_id() OR chatapp_is_master_admin());
-- Support agents only see / touch conversations assigned to them or still unassigned
-- (they may claim an unassigned one by assigning it to themselves).
CREATE POLICY support_agent_scope ON chatapp_conversations AS RESTRICTIVE FOR ALL
    USING (chatapp_current_role() <> 'support_agent'
           OR assigned_agent_id = chatapp_current_user_id()
           OR assigned_agent_id IS NULL)
    WITH CHECK (chatapp_current_role() <> 'support_agent'
                OR assigned_agent_id = chatapp_current_user_id()
                OR assigned_agent_id IS NULL);

-- ---------------------------------------------------------------------------
-- 4.2 Messages (child of conversation; follows conversation visibility)
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_messages (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    conversation_id uuid NOT NULL REFERENCES chatapp_conversations (id) ON DELETE CASCADE,
    role            message_role NOT NULL,
    content         text NOT NULL,
    sender_id       uuid REFERENCES chatapp_users (id) ON DELETE SET NULL,
    attachments     jsonb DEFAULT '[]'::jsonb,
    tool_calls      jsonb DEFAULT '[]'::jsonb,
    metadata        jsonb DEFAULT '{}'::jsonb,
    sentiment       numeric(3, 2),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX messages_conversation_idx ON chatapp_messages (conversation_id);
CREATE INDEX messages_role_idx ON chatapp_messages (role);
CREATE INDEX messages_created_at_idx ON chatapp_messages (created_at);
CREATE INDEX messages_conv_created_idx ON chatapp_messages (conversation_id, created_at);
-- seed 001 section 12
CREATE INDEX idx_messages_conversation_created ON chatapp_messages (conversation_id, created_at DESC);
CREATE INDEX messages_sender_idx ON chatapp_messages (sender_id);

ALTER TABLE chatapp_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_messages FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_messages FOR ALL
    USING (EXISTS (SELECT 1 FROM chatapp_conversations c WHERE c.id = conversation_id))
    WITH CHECK (EXISTS (SELECT 1 FROM chatapp_conversations c WHERE c.id = conversation_id));

-- ---------------------------------------------------------------------------
-- 4.3 Internal notes (child of conversation)
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_conversation_notes (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    conversation_id uuid NOT NULL REFERENCES chatapp_conversations (id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES chatapp_users (id) DEFERRABLE INITIALLY DEFERRED,
    content         text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notes_conversation_idx ON chatapp_conversation_notes (conversation_id);
CREATE INDEX notes_user_idx ON chatapp_conversation_notes (user_id);

ALTER TABLE chatapp_conversation_notes ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_conversation_notes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_conversation_notes FOR ALL
    USING (EXISTS (SELECT 1 FROM chatapp_conversations c WHERE c.id = conversation_id))
    WITH CHECK (EXISTS (SELECT 1 FROM chatapp_conversations c WHERE c.id = conversation_id));

-- ---------------------------------------------------------------------------
-- 4.4 Escalations (tenant + child of conversation)
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_escalations (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    conversation_id     uuid NOT NULL,
    company_id          uuid NOT NULL REFERENCES chatapp_companies (id) ON DELETE CASCADE,
    agent_id            uuid NOT NULL,
    assigned_to         uuid,
    assigned_by         uuid REFERENCES chatapp_users (id) ON DELETE SET NULL,
    reason              varchar(255) NOT NULL,
    trigger_type        varchar(50) NOT NULL,
    trigger_details     jsonb DEFAULT '{}'::jsonb,
    priority            escalation_priority NOT NULL DEFAULT 'medium',
    status              escalation_status NOT NULL DEFAULT 'pending',
    resolution_notes    text,
    resolved_at         timestamptz,
    wait_time           integer,
    handle_time         integer,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chatapp_escalations_conversation_fkey FOREIGN KEY (conversation_id, company_id)
        REFERENCES chatapp_conversations (id, company_id) ON DELETE CASCADE,
    CONSTRAINT chatapp_escalations_agent_fkey FOREIGN KEY (agent_id, company_id)
        REFERENCES chatapp_agents (id, company_id) DEFERRABLE INITIALLY DEFERRED,
    CONSTRAINT chatapp_escalations_assigned_to_fkey FOREIGN KEY (assigned_to, company_id)
        REFERENCES chatapp_users (id, company_id) ON DELETE SET NULL (assigned_to)
);
CREATE INDEX escalations_conversation_idx ON chatapp_escalations (conversation_id);
CREATE INDEX escalations_company_idx ON chatapp_escalations (company_id);
CREATE INDEX escalations_assigned_to_idx ON chatapp_escalations (assigned_to);
CREATE INDEX escalations_status_idx ON chatapp_escalations (status);
CREATE INDEX escalations_company_status_idx ON chatapp_escalations (company_id, status);
CREATE INDEX escalations_agent_idx ON chatapp_escalations (agent_id);

ALTER TABLE chatapp_escalations ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_escalations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_escalations FOR ALL
    USING ((company_id = chatapp_current_company_id() OR chatapp_is_master_admin())
           AND EXISTS (SELECT 1 FROM chatapp_conversations c WHERE c.id = conversation_id))
    WITH CHECK ((company_id = chatapp_current_company_id() OR chatapp_is_master_admin())
                AND EXISTS (SELECT 1 FROM chatapp_conversations c WHERE c.id = conversation_id));

-- ---------------------------------------------------------------------------
-- Escalation rules (seed 003): keyword/condition triggers, assignment logic, priority 1-5.
-- agent_id NULL = applies to every agent of the company.
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_escalation_rules (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id          uuid NOT NULL REFERENCES chatapp_companies (id) ON DELETE CASCADE,
    agent_id            uuid,
    name                varchar(255) NOT NULL,
    description         text,
    trigger_keywords    text[] NOT NULL DEFAULT '{}',
    trigger_conditions  jsonb NOT NULL DEFAULT '{}'::jsonb,
    assignment_logic    jsonb NOT NULL DEFAULT '{}'::jsonb,
    priority            integer NOT NULL DEFAULT 1
                        CONSTRAINT chatapp_escalation_rules_priority_check CHECK (priority BETWEEN 1 AND 5),
    is_active           boolean NOT NULL DEFAULT true,
    created_by          uuid REFERENCES chatapp_users (id) ON DELETE SET NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chatapp_escalation_rules_agent_fkey FOREIGN KEY (agent_id, company_id)
        REFERENCES chatapp_agents (id, company_id) ON DELETE CASCADE
);
CREATE INDEX escalation_rules_company_idx ON chatapp_escalation_rules (company_id);
CREATE INDEX escalation_rules_company_active_idx ON chatapp_escalation_rules (company_id, priority DESC)
    WHERE is_active;
CREATE INDEX escalation_rules_agent_idx ON chatapp_escalation_rules (agent_id);

ALTER TABLE chatapp_escalation_rules ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_escalation_rules FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_escalation_rules FOR ALL
    USING (company_id = chatapp_current_company_id() OR chatapp_is_master_admin())
    WITH CHECK (company_id = chatapp_current_company_id() OR chatapp_is_master_admin());
