-- 0024: agent versions (functions/agents/versions.rs). Every change to an agent's configuration
-- writes a version: the whole configuration as the API names it (`systemPrompt`, `llmConfig`,
-- ...), which fields changed from the version before, who and when. The agent row is the
-- draft; `published_config` is the configuration customers are served (a copy of version
-- `published_version`), so an active agent keeps answering with it while the draft is edited.
-- An agent never published (`published_config IS NULL`: created before versions existed, or
-- inserted by hand) is served from its row, as before.
CREATE TABLE chatapp_agent_versions (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id  uuid NOT NULL REFERENCES chatapp_companies (id) ON DELETE CASCADE,
    agent_id    uuid NOT NULL,
    version     integer NOT NULL CHECK (version > 0),
    config      jsonb NOT NULL,
    changed     text[] NOT NULL DEFAULT '{}',
    action      varchar(20) NOT NULL
                CONSTRAINT chatapp_agent_versions_action_check
                CHECK (action IN ('create', 'update', 'clone', 'rollback')),
    note        text,
    created_by  uuid REFERENCES chatapp_users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    CONSTRAINT chatapp_agent_versions_agent_fkey FOREIGN KEY (agent_id, company_id)
        REFERENCES chatapp_agents (id, company_id) ON DELETE CASCADE,
    CONSTRAINT chatapp_agent_versions_agent_version_key UNIQUE (agent_id, version)
);
CREATE INDEX agent_versions_company_idx ON chatapp_agent_versions (company_id);
ALTER TABLE chatapp_agent_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_agent_versions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_agent_versions FOR ALL
    USING (company_id = chatapp_current_company_id() OR chatapp_is_master_admin())
    WITH CHECK (company_id = chatapp_current_company_id() OR chatapp_is_master_admin());
GRANT SELECT, INSERT, UPDATE, DELETE ON chatapp_agent_versions TO chatapp_app;

ALTER TABLE chatapp_agents
    ADD COLUMN version           integer NOT NULL DEFAULT 0,
    ADD COLUMN published_version integer,
    ADD COLUMN published_config  jsonb,
    ADD COLUMN published_at      timestamptz;
