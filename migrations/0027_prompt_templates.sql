-- 0027: prompt templates in use (seed 000 ai_prompts; the catalog table is 0003's). The master
-- admin writes the templates (functions/prompt-templates); an agent names one and gives the
-- values of its declared variables, and each chat turn renders the template into the system
-- prompt (`chatapp::prompt_template::render`). Content and variables are checked together on
-- write: a placeholder the template does not declare (and that is not built in:
-- company_name, customer_name, agent_name, business_hours) is a 400, never stored.

-- Bumped by every change of content or variables, so audit rows and agents can tell which
-- text a prompt was rendered from.
ALTER TABLE chatapp_prompt_templates ADD COLUMN version integer NOT NULL DEFAULT 1
    CONSTRAINT chatapp_prompt_templates_version_check CHECK (version > 0);

-- An agent's template and its values (`{"<variable>": "<value>"}`). A deleted template leaves
-- the agent on its own system prompt (SET NULL); the delete route refuses a template an agent
-- still names (409 `template_in_use`), so this is the fallback, not the rule.
ALTER TABLE chatapp_agents
    ADD COLUMN prompt_template_id uuid REFERENCES chatapp_prompt_templates (id) ON DELETE SET NULL,
    ADD COLUMN prompt_variables   jsonb NOT NULL DEFAULT '{}'::jsonb
        CONSTRAINT chatapp_agents_prompt_variables_check CHECK (jsonb_typeof(prompt_variables) = 'object');
CREATE INDEX agents_prompt_template_idx ON chatapp_agents (prompt_template_id)
    WHERE prompt_template_id IS NOT NULL;
