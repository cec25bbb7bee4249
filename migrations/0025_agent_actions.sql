-- 0025: HTTP actions a company defines for an agent (functions/agents/actions.rs): tools the AI
-- may call during a chat turn (`chatapp::chat::tools::http_action`).
--
-- `name` is the function name the model sees (`^[a-zA-Z][a-zA-Z0-9_-]{0,63}$`), unique per
-- agent regardless of case, and never one of the turn's built-in tools (`chatapp::chat::tools`;
-- `rag_search` is `search_knowledge`'s older name). `parameters` is the JSON Schema (an object
-- schema) of the arguments the model passes.
--
-- Secrets are sealed by the application (AES-256-GCM under SECRETS_KEY, the company id and the
-- row id as associated data), as channel credentials (0021) and provider keys (0023) are:
-- `headers_sealed` is the JSON object of header name -> value sent with every call (NULL when
-- there are none; `header_names` lists the names only, which admins see), and
-- `signing_secret_sealed` the platform-generated secret each call is signed with
-- (`X-Chatapp-Signature`), shown to the admin only when it is generated.
CREATE TABLE chatapp_agent_actions (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id            uuid NOT NULL DEFAULT chatapp_current_company_id()
                          REFERENCES chatapp_companies (id) ON DELETE CASCADE,
    agent_id              uuid NOT NULL,
    name                  varchar(64) NOT NULL
                          CONSTRAINT chatapp_agent_actions_name_check
                          CHECK (name ~ '^[a-zA-Z][a-zA-Z0-9_-]{0,63}$'
                                 AND lower(name) NOT IN ('search_knowledge', 'rag_search',
                                                         'request_human_handover', 'end_conversation')),
    description           text NOT NULL
                          CONSTRAINT chatapp_agent_actions_description_check
                          CHECK (length(description) BETWEEN 1 AND 1000),
    parameters            jsonb NOT NULL
                          CONSTRAINT chatapp_agent_actions_parameters_check
                          CHECK (jsonb_typeof(parameters) = 'object'),
    url                   varchar(2000) NOT NULL,
    method                varchar(10) NOT NULL
                          CONSTRAINT chatapp_agent_actions_method_check
                          CHECK (method IN ('GET', 'POST', 'PUT', 'PATCH', 'DELETE')),
    headers_sealed        bytea,
    header_names          jsonb NOT NULL DEFAULT '[]'::jsonb
                          CONSTRAINT chatapp_agent_actions_header_names_check
                          CHECK (jsonb_typeof(header_names) = 'array'),
    signing_secret_sealed bytea NOT NULL,
    timeout_ms            integer NOT NULL DEFAULT 5000
                          CONSTRAINT chatapp_agent_actions_timeout_check
                          CHECK (timeout_ms BETWEEN 100 AND 10000),
    enabled               boolean NOT NULL DEFAULT true,
    created_by            uuid REFERENCES chatapp_users (id) ON DELETE SET NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chatapp_agent_actions_agent_fkey FOREIGN KEY (agent_id, company_id)
        REFERENCES chatapp_agents (id, company_id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX agent_actions_agent_name_key ON chatapp_agent_actions (agent_id, lower(name));
CREATE INDEX agent_actions_company_idx ON chatapp_agent_actions (company_id);
CREATE TRIGGER set_updated_at BEFORE UPDATE ON chatapp_agent_actions
    FOR EACH ROW EXECUTE FUNCTION chatapp_set_updated_at();

ALTER TABLE chatapp_agent_actions ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_agent_actions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_agent_actions FOR ALL
    USING (company_id = chatapp_current_company_id() OR chatapp_is_master_admin())
    WITH CHECK (company_id = chatapp_current_company_id() OR chatapp_is_master_admin());
GRANT SELECT, INSERT, UPDATE, DELETE ON chatapp_agent_actions TO chatapp_app;
