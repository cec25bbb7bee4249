-- 0023: the model catalog and companies' own provider keys (issue 19 item 8).
--
-- Aliases: other names a provider reports for a catalog model. The price lookup of a chat turn
-- (`chatapp::repo::models::price_for`) matches the reported name against `provider_model` or
-- `slug`, then the aliases, then the same with a dated snapshot suffix removed
-- (`gpt-4o-mini-2024-07-18` is `gpt-4o-mini`).
ALTER TABLE chatapp_ai_models ADD COLUMN aliases text[] NOT NULL DEFAULT '{}';
CREATE INDEX ai_models_aliases_idx ON chatapp_ai_models USING gin (aliases);

-- Tokens of turns whose model matched no catalog entry: counted here instead of being priced
-- at a silent 0 (their replies say `cost_unknown`).
ALTER TABLE chatapp_usage_records ADD COLUMN unpriced_tokens integer NOT NULL DEFAULT 0;

-- ---------------------------------------------------------------------------
-- Provider keys: a company's own key for OpenAI, Anthropic or an OpenAI-compatible server.
-- The key is sealed by the application (AES-256-GCM under SECRETS_KEY, the company id and the
-- row id as associated data), as channel credentials are (0021); `key_hint` holds its last
-- four characters only. At most one active key per provider and company.
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_provider_keys (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id      uuid NOT NULL DEFAULT chatapp_current_company_id()
                    REFERENCES chatapp_companies (id) ON DELETE CASCADE,
    name            varchar(255) NOT NULL,
    provider        varchar(32) NOT NULL
                    CONSTRAINT chatapp_provider_keys_provider_check
                    CHECK (provider IN ('openai', 'anthropic', 'openai_compatible')),
    base_url        varchar(500),
    key_sealed      bytea NOT NULL,
    key_hint        varchar(8),
    is_active       boolean NOT NULL DEFAULT true,
    last_tested_at  timestamptz,
    last_test_error text,
    created_by      uuid REFERENCES chatapp_users (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX provider_keys_one_active_idx ON chatapp_provider_keys (company_id, provider) WHERE is_active;
CREATE INDEX provider_keys_company_idx ON chatapp_provider_keys (company_id, created_at DESC);
ALTER TABLE chatapp_provider_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_provider_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_provider_keys FOR ALL
    USING (company_id = chatapp_current_company_id() OR chatapp_is_master_admin())
    WITH CHECK (company_id = chatapp_current_company_id() OR chatapp_is_master_admin());
GRANT SELECT, INSERT, UPDATE, DELETE ON chatapp_provider_keys TO chatapp_app;
