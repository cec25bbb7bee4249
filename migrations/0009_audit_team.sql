-- 0009: audit & security (seed 001 section 9) and team & support tables (section 10).

CREATE TYPE invitation_status AS ENUM ('pending', 'accepted', 'expired', 'revoked');
CREATE TYPE support_agent_status AS ENUM ('online', 'busy', 'away', 'offline');

-- ---------------------------------------------------------------------------
-- 9.1 Audit logs. company_id NULL = platform-level event (visible to master admins only).
-- Append-only for the application: no UPDATE policy; DELETE (retention) by master only.
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_audit_logs (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id         uuid REFERENCES chatapp_users (id) ON DELETE SET NULL,
    company_id      uuid REFERENCES chatapp_companies (id) ON DELETE CASCADE,
    action          varchar(100) NOT NULL,
    resource_type   varchar(50),
    resource_id     uuid,
    details         jsonb DEFAULT '{}'::jsonb,
    ip_address      inet,
    user_agent      varchar(500),
    success         boolean DEFAULT true,
    error_message   text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_logs_user_idx ON chatapp_audit_logs (user_id);
CREATE INDEX audit_logs_company_idx ON chatapp_audit_logs (company_id);
CREATE INDEX audit_logs_action_idx ON chatapp_audit_logs (action);
CREATE INDEX audit_logs_created_at_idx ON chatapp_audit_logs (created_at);
CREATE INDEX audit_logs_resource_idx ON chatapp_audit_logs (resource_type, resource_id);
-- seed 001 section 12 / seed 004 2.14
CREATE INDEX idx_audit_logs_company_created ON chatapp_audit_logs (company_id, created_at DESC);

ALTER TABLE chatapp_audit_logs ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_audit_logs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_audit_logs FOR SELECT
    USING (company_id = chatapp_current_company_id() OR chatapp_is_master_admin());
CREATE POLICY audit_insert ON chatapp_audit_logs FOR INSERT
    WITH CHECK (company_id = chatapp_current_company_id() OR chatapp_is_master_admin());
CREATE POLICY audit_delete_master ON chatapp_audit_logs FOR DELETE
    USING (chatapp_is_master_admin());

-- ---------------------------------------------------------------------------
-- 9.2 Rate limit records (infrastructure keyed by 'company:{id}:api', 'ip:{addr}:login', ...)
-- RLS forced but open: not tenant data, used before authentication.
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_rate_limit_records (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    key             varchar(255) NOT NULL,
    window_start    timestamptz NOT NULL,
    window_end      timestamptz NOT NULL,
    request_count   integer DEFAULT 0,
    limit_value     integer NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX rate_limit_key_window_idx ON chatapp_rate_limit_records (key, window_start);
CREATE INDEX rate_limit_window_end_idx ON chatapp_rate_limit_records (window_end);

ALTER TABLE chatapp_rate_limit_records ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_rate_limit_records FORCE ROW LEVEL SECURITY;
CREATE POLICY infrastructure_access ON chatapp_rate_limit_records FOR ALL
    USING (true) WITH CHECK (true);

-- ---------------------------------------------------------------------------
-- 10.1 Invitations (tenant). token = lowercase hex SHA-256 of the emailed token.
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_invitations (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id      uuid NOT NULL REFERENCES chatapp_companies (id) ON DELETE CASCADE,
    invited_by      uuid NOT NULL REFERENCES chatapp_users (id) ON DELETE CASCADE,
    email           varchar(255) NOT NULL,
    name            varchar(255),
    role            user_role NOT NULL DEFAULT 'support_agent'
                    CONSTRAINT chatapp_invitations_role_check CHECK (role <> 'master_admin'),
    permissions     jsonb NOT NULL DEFAULT '{}'::jsonb,
    token           varchar(64) NOT NULL UNIQUE
                    CONSTRAINT chatapp_invitations_token_check CHECK (token ~ '^[0-9a-f]{64}$'),
    status          invitation_status NOT NULL DEFAULT 'pending',
    expires_at      timestamptz NOT NULL,
    accepted_at     timestamptz,
    accepted_by     uuid REFERENCES chatapp_users (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX invitations_company_idx ON chatapp_invitations (company_id);
CREATE INDEX invitations_email_idx ON chatapp_invitations (lower(email));
-- (seed 001 invitations_token_idx is covered by the UNIQUE constraint)
CREATE INDEX invitations_status_idx ON chatapp_invitations (status);

ALTER TABLE chatapp_invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_invitations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_invitations FOR ALL
    USING (company_id = chatapp_current_company_id() OR chatapp_is_master_admin())
    WITH CHECK (company_id = chatapp_current_company_id() OR chatapp_is_master_admin());

-- ---------------------------------------------------------------------------
-- 10.2 Canned responses (tenant)
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_canned_responses (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id      uuid NOT NULL REFERENCES chatapp_companies (id) ON DELETE CASCADE,
    created_by      uuid NOT NULL REFERENCES chatapp_users (id) DEFERRABLE INITIALLY DEFERRED,
    title           varchar(255) NOT NULL,
    shortcut        varchar(50),
    content         text NOT NULL,
    category        varchar(100),
    tags            jsonb DEFAULT '[]'::jsonb,
    is_global       boolean DEFAULT true,
    agent_ids       jsonb DEFAULT '[]'::jsonb,
    usage_count     integer DEFAULT 0,
    last_used_at    timestamptz,
    is_active       boolean DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX canned_responses_company_idx ON chatapp_canned_responses (company_id);
CREATE INDEX canned_responses_shortcut_idx ON chatapp_canned_responses (shortcut);
CREATE INDEX canned_responses_category_idx ON chatapp_canned_responses (category);
CREATE INDEX canned_responses_created_by_idx ON chatapp_canned_responses (created_by);

ALTER TABLE chatapp_canned_responses ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_canned_responses FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_canned_responses FOR ALL
    USING (company_id = chatapp_current_company_id() OR chatapp_is_master_admin())
    WITH CHECK (company_id = chatapp_current_company_id() OR chatapp_is_master_admin());

-- ---------------------------------------------------------------------------
-- 10.3 Support agent status (tenant, one row per support user)
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_support_agent_status (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id                 uuid NOT NULL UNIQUE,
    company_id              uuid NOT NULL REFERENCES chatapp_companies (id) ON DELETE CASCADE,
    status                  support_agent_status NOT NULL DEFAULT 'offline',
    status_message          varchar(255),
    max_concurrent_chats    integer DEFAULT 5,
    current_chat_count      integer DEFAULT 0,
    last_active_at          timestamptz DEFAULT now(),
    status_changed_at       timestamptz DEFAULT now(),
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chatapp_support_agent_status_user_fkey FOREIGN KEY (user_id, company_id)
        REFERENCES chatapp_users (id, company_id) ON DELETE CASCADE
);
-- (seed 001 support_agent_status_user_idx is covered by the UNIQUE constraint)
CREATE INDEX support_agent_status_company_idx ON chatapp_support_agent_status (company_id);
CREATE INDEX support_agent_status_status_idx ON chatapp_support_agent_status (status);

ALTER TABLE chatapp_support_agent_status ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_support_agent_status FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_support_agent_status FOR ALL
    USING (company_id = chatapp_current_company_id() OR chatapp_is_master_admin())
    WITH CHECK (company_id = chatapp_current_company_id() OR chatapp_is_master_admin());
