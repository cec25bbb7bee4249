-- 0007: channel integrations (seed 001 section 7) + integrations (seed 004 2.10) + widget embed code.

CREATE TYPE integration_status AS ENUM ('active', 'inactive', 'error');

-- ---------------------------------------------------------------------------
-- 7.1 Channel configurations (tenant). Credentials are stored encrypted by the app.
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_channel_configs (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id          uuid NOT NULL REFERENCES chatapp_companies (id) ON DELETE CASCADE,
    agent_id            uuid NOT NULL,
    channel             channel_type NOT NULL,
    credentials         jsonb NOT NULL DEFAULT '{}'::jsonb,
    webhook_id          varchar(50) NOT NULL,
    webhook_url         varchar(500),
    webhook_secret      varchar(64),
    is_active           boolean DEFAULT true,
    is_verified         boolean DEFAULT false,
    last_verified_at    timestamptz,
    settings            jsonb DEFAULT '{}'::jsonb,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chatapp_channel_configs_agent_fkey FOREIGN KEY (agent_id, company_id)
        REFERENCES chatapp_agents (id, company_id) ON DELETE CASCADE
);
CREATE INDEX channel_config_idx ON chatapp_channel_configs (company_id, agent_id, channel);
-- inbound webhook routing key: must be globally unique
CREATE UNIQUE INDEX channel_webhook_idx ON chatapp_channel_configs (webhook_id);
CREATE INDEX channel_config_agent_idx ON chatapp_channel_configs (agent_id);

ALTER TABLE chatapp_channel_configs ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_channel_configs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_channel_configs FOR ALL
    USING (company_id = chatapp_current_company_id() OR chatapp_is_master_admin())
    WITH CHECK (company_id = chatapp_current_company_id() OR chatapp_is_master_admin());

-- ---------------------------------------------------------------------------
-- 7.2 Widget configurations (tenant, 1:1 with agent per seed 001 ERD) + embed_code (seed 004)
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_widget_configs (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id          uuid NOT NULL REFERENCES chatapp_companies (id) ON DELETE CASCADE,
    agent_id            uuid NOT NULL,
    theme               varchar(20) DEFAULT 'light',
    position            varchar(20) DEFAULT 'bottom-right',
    primary_color       varchar(7) DEFAULT '#007bff',
    title               varchar(100),
    subtitle            varchar(200),
    avatar_url          varchar(500),
    logo_url            varchar(500),
    show_branding       boolean DEFAULT true,
    auto_open           boolean DEFAULT false,
    auto_open_delay     integer DEFAULT 5000,
    welcome_message     text,
    placeholder_text    varchar(200),
    enable_voice        boolean DEFAULT false,
    enable_file_upload  boolean DEFAULT true,
    enable_emoji        boolean DEFAULT true,
    custom_css          text,
    allowed_domains     jsonb DEFAULT '[]'::jsonb,
    embed_code          text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chatapp_widget_configs_agent_key UNIQUE (agent_id),
    CONSTRAINT chatapp_widget_configs_agent_fkey FOREIGN KEY (agent_id, company_id)
        REFERENCES chatapp_agents (id, company_id) ON DELETE CASCADE
);
CREATE INDEX widget_config_idx ON chatapp_widget_configs (company_id, agent_id);

ALTER TABLE chatapp_widget_configs ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_widget_configs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_widget_configs FOR ALL
    USING (company_id = chatapp_current_company_id() OR chatapp_is_master_admin())
    WITH CHECK (company_id = chatapp_current_company_id() OR chatapp_is_master_admin());

-- ---------------------------------------------------------------------------
-- 7.3 API keys (tenant). permissions = scopes array. key_prefix is the lookup handle.
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_api_keys (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id      uuid NOT NULL REFERENCES chatapp_companies (id) ON DELETE CASCADE,
    name            varchar(255) NOT NULL,
    key_prefix      varchar(16) NOT NULL,
    key_hash        varchar(255) NOT NULL,
    permissions     jsonb DEFAULT '[]'::jsonb,
    rate_limit      integer DEFAULT 100,
    is_active       boolean DEFAULT true,
    last_used_at    timestamptz,
    expires_at      timestamptz,
    created_by      uuid REFERENCES chatapp_users (id) ON DELETE SET NULL,
    revoked_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_company_idx ON chatapp_api_keys (company_id);
CREATE UNIQUE INDEX api_keys_prefix_idx ON chatapp_api_keys (key_prefix);

ALTER TABLE chatapp_api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_api_keys FOR ALL
    USING (company_id = chatapp_current_company_id() OR chatapp_is_master_admin())
    WITH CHECK (company_id = chatapp_current_company_id() OR chatapp_is_master_admin());

-- ---------------------------------------------------------------------------
-- 7.4 Outbound webhooks (tenant)
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_webhooks (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id          uuid NOT NULL REFERENCES chatapp_companies (id) ON DELETE CASCADE,
    agent_id            uuid,
    name                varchar(255) NOT NULL,
    url                 varchar(500) NOT NULL,
    secret              varchar(64) NOT NULL,
    events              jsonb NOT NULL DEFAULT '[]'::jsonb,
    headers             jsonb DEFAULT '{}'::jsonb,
    is_active           boolean DEFAULT true,
    max_retries         integer DEFAULT 3,
    retry_delay         integer DEFAULT 1000,
    success_count       integer DEFAULT 0,
    failure_count       integer DEFAULT 0,
    last_triggered_at   timestamptz,
    last_success_at     timestamptz,
    last_failure_at     timestamptz,
    last_error          text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chatapp_webhooks_agent_fkey FOREIGN KEY (agent_id, company_id)
        REFERENCES chatapp_agents (id, company_id) ON DELETE CASCADE
);
CREATE INDEX webhooks_company_idx ON chatapp_webhooks (company_id);
CREATE INDEX webhooks_agent_idx ON chatapp_webhooks (agent_id);

ALTER TABLE chatapp_webhooks ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_webhooks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_webhooks FOR ALL
    USING (company_id = chatapp_current_company_id() OR chatapp_is_master_admin())
    WITH CHECK (company_id = chatapp_current_company_id() OR chatapp_is_master_admin());

-- ---------------------------------------------------------------------------
-- Integrations (seed 004 2.10): third-party connectors (slack, zapier, salesforce, ...)
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_integrations (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id      uuid NOT NULL REFERENCES chatapp_companies (id) ON DELETE CASCADE,
    type            varchar(50) NOT NULL,
    name            varchar(255) NOT NULL,
    config          jsonb NOT NULL DEFAULT '{}'::jsonb,     -- secrets encrypted by the app
    status          integration_status NOT NULL DEFAULT 'inactive',
    last_sync_at    timestamptz,
    last_error      text,
    created_by      uuid REFERENCES chatapp_users (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX integrations_company_idx ON chatapp_integrations (company_id);
CREATE INDEX integrations_company_type_idx ON chatapp_integrations (company_id, type);

ALTER TABLE chatapp_integrations ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_integrations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_integrations FOR ALL
    USING (company_id = chatapp_current_company_id() OR chatapp_is_master_admin())
    WITH CHECK (company_id = chatapp_current_company_id() OR chatapp_is_master_admin());
