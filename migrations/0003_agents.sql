-- 0003: platform catalog (agent packages, AI model catalog, prompt templates) and tenant agents.
-- Seed 001 section 3 (3.3 lives in 0004 because it references knowledge categories);
-- AI model catalog + prompt templates with variables kept from seed 000.

CREATE TYPE agent_status AS ENUM ('draft', 'active', 'paused', 'archived');

-- ---------------------------------------------------------------------------
-- 3.1 Agent packages (master admin managed, global)
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_agent_packages (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name            varchar(255) NOT NULL,
    slug            varchar(100) NOT NULL UNIQUE,
    description     text,
    version         varchar(20) NOT NULL,
    package_url     varchar(500) NOT NULL,
    package_hash    varchar(64) NOT NULL,
    entry_point     varchar(255) DEFAULT 'index.js',
    package_size    integer,
    capabilities    jsonb DEFAULT '[]'::jsonb,
    default_config  jsonb DEFAULT '{}'::jsonb,
    author          varchar(255),
    documentation   text,
    changelog       text,
    is_active       boolean DEFAULT true,
    is_default      boolean DEFAULT false,
    usage_count     integer DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    published_at    timestamptz
);
-- at most one default package
CREATE UNIQUE INDEX agent_packages_single_default_idx ON chatapp_agent_packages ((true)) WHERE is_default;

ALTER TABLE chatapp_agent_packages ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_agent_packages FORCE ROW LEVEL SECURITY;
CREATE POLICY global_read ON chatapp_agent_packages FOR SELECT USING (true);
CREATE POLICY master_insert ON chatapp_agent_packages FOR INSERT WITH CHECK (chatapp_is_master_admin());
CREATE POLICY master_update ON chatapp_agent_packages FOR UPDATE
    USING (chatapp_is_master_admin()) WITH CHECK (chatapp_is_master_admin());
CREATE POLICY master_delete ON chatapp_agent_packages FOR DELETE USING (chatapp_is_master_admin());

-- ---------------------------------------------------------------------------
-- AI model catalog (seed 000 ai_models; prices per 1M tokens)
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_ai_models (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug                varchar(100) NOT NULL UNIQUE,
    name                varchar(255) NOT NULL,
    provider            varchar(50) NOT NULL,          -- 'openai' | 'anthropic' | 'local' | ...
    provider_model      varchar(150) NOT NULL,         -- model id sent to the provider API
    model_type          varchar(20) NOT NULL DEFAULT 'chat'
                        CONSTRAINT chatapp_ai_models_type_check
                        CHECK (model_type IN ('chat', 'embedding', 'extractive')),
    configuration       jsonb NOT NULL DEFAULT '{}'::jsonb,
    context_window      integer,
    max_output_tokens   integer,
    input_price_per_1m  numeric(12, 4) NOT NULL DEFAULT 0 CHECK (input_price_per_1m >= 0),
    output_price_per_1m numeric(12, 4) NOT NULL DEFAULT 0 CHECK (output_price_per_1m >= 0),
    currency            varchar(3) NOT NULL DEFAULT 'USD',
    is_active           boolean NOT NULL DEFAULT true,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ai_models_provider_idx ON chatapp_ai_models (provider);

ALTER TABLE chatapp_ai_models ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_ai_models FORCE ROW LEVEL SECURITY;
CREATE POLICY global_read ON chatapp_ai_models FOR SELECT USING (true);
CREATE POLICY master_insert ON chatapp_ai_models FOR INSERT WITH CHECK (chatapp_is_master_admin());
CREATE POLICY master_update ON chatapp_ai_models FOR UPDATE
    USING (chatapp_is_master_admin()) WITH CHECK (chatapp_is_master_admin());
CREATE POLICY master_delete ON chatapp_ai_models FOR DELETE USING (chatapp_is_master_admin());

-- ---------------------------------------------------------------------------
-- Prompt templates with variables (seed 000 ai_prompts; global, master managed)
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_prompt_templates (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug        varchar(100) NOT NULL UNIQUE,
    name        varchar(255) NOT NULL,
    description text,
    content     text NOT NULL,                           -- uses {{variable}} placeholders
    variables   jsonb NOT NULL DEFAULT '[]'::jsonb,      -- [{"name":"company_name","required":true,"default":null}]
    model_id    uuid REFERENCES chatapp_ai_models (id) ON DELETE SET NULL,
    is_active   boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX prompt_templates_model_idx ON chatapp_prompt_templates (model_id);

ALTER TABLE chatapp_prompt_templates ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_prompt_templates FORCE ROW LEVEL SECURITY;
CREATE POLICY global_read ON chatapp_prompt_templates FOR SELECT USING (true);
CREATE POLICY master_insert ON chatapp_prompt_templates FOR INSERT WITH CHECK (chatapp_is_master_admin());
CREATE POLICY master_update ON chatapp_prompt_templates FOR UPDATE
    USING (chatapp_is_master_admin()) WITH CHECK (chatapp_is_master_admin());
CREATE POLICY master_delete ON chatapp_prompt_templates FOR DELETE USING (chatapp_is_master_admin());

-- ---------------------------------------------------------------------------
-- 3.2 Agents (tenant)
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_agents (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id          uuid NOT NULL REFERENCES chatapp_companies (id) ON DELETE CASCADE,
    name                varchar(255) NOT NULL,
    description         text,
    avatar              varchar(500),
    package_id          uuid REFERENCES chatapp_agent_packages (id),
    custom_package_url  varchar(500),
    custom_package_hash varchar(64),
    capabilities        jsonb DEFAULT '[]'::jsonb,
    personality         text,
    response_style      jsonb DEFAULT '{}'::jsonb,
    system_prompt       text,
    llm_config          jsonb DEFAULT '{}'::jsonb,
    rag_enabled         boolean DEFAULT true,
    rag_config          jsonb DEFAULT '{}'::jsonb,
    enabled_tools       jsonb DEFAULT '[]'::jsonb,
    tool_config         jsonb DEFAULT '{}'::jsonb,
    escalation_rules    jsonb DEFAULT '{}'::jsonb,
    business_hours      jsonb DEFAULT '{}'::jsonb,
    fallback_responses  jsonb DEFAULT '{}'::jsonb,
    status              agent_status NOT NULL DEFAULT 'draft',
    webhook_secret      varchar(64),
    total_conversations integer DEFAULT 0,
    total_messages      integer DEFAULT 0,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz,
    CONSTRAINT chatapp_agents_id_company_key UNIQUE (id, company_id)
);
CREATE INDEX agents_company_idx ON chatapp_agents (company_id);
CREATE INDEX agents_status_idx ON chatapp_agents (status);
CREATE INDEX agents_company_status_idx ON chatapp_agents (company_id, status);
CREATE INDEX agents_package_idx ON chatapp_agents (package_id);

ALTER TABLE chatapp_agents ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_agents FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_agents FOR ALL
    USING (company_id = chatapp_current_company_id() OR chatapp_is_master_admin())
    WITH CHECK (company_id = chatapp_current_company_id() OR chatapp_is_master_admin());
