-- 0011: pre-authentication SECURITY DEFINER lookups, updated_at triggers, RLS self-check, grants.
-- Must stay the last file of this batch; later migrations grant on their own objects.

-- ---------------------------------------------------------------------------
-- Pre-authentication lookups. They run as the migration owner (bypassing RLS) and return
-- exactly one kind of row for one exact key; the caller must verify secrets / status itself.
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION chatapp_auth_user_by_email(p_email text) RETURNS SETOF chatapp_users
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT * FROM chatapp_users WHERE lower(email) = lower(p_email) AND deleted_at IS NULL $$;

CREATE OR REPLACE FUNCTION chatapp_auth_user_by_id(p_id uuid) RETURNS SETOF chatapp_users
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT * FROM chatapp_users WHERE id = p_id $$;

CREATE OR REPLACE FUNCTION chatapp_auth_api_key_by_prefix(p_prefix text) RETURNS SETOF chatapp_api_keys
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT * FROM chatapp_api_keys WHERE key_prefix = p_prefix $$;

CREATE OR REPLACE FUNCTION chatapp_auth_refresh_token(p_hash text) RETURNS SETOF chatapp_refresh_tokens
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT * FROM chatapp_refresh_tokens WHERE token_hash = lower(p_hash) $$;

CREATE OR REPLACE FUNCTION chatapp_auth_invitation_by_token(p_hash text) RETURNS SETOF chatapp_invitations
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT * FROM chatapp_invitations WHERE token = lower(p_hash) $$;

-- 'deleted' when soft-deleted, NULL when the company does not exist.
CREATE OR REPLACE FUNCTION chatapp_auth_company_status(p_id uuid) RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT CASE WHEN deleted_at IS NOT NULL THEN 'deleted' ELSE status::text END
    FROM chatapp_companies WHERE id = p_id
$$;

-- Public (unauthenticated) entry points need the tenant before they can set the context:
-- widget traffic knows an agent id / conversation session token, inbound channel webhooks
-- know a webhook_id. These return only routing ids; everything else is then read under RLS.
CREATE OR REPLACE FUNCTION chatapp_resolve_agent_company(p_agent_id uuid) RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT a.company_id FROM chatapp_agents a WHERE a.id = p_agent_id AND a.deleted_at IS NULL $$;

CREATE OR REPLACE FUNCTION chatapp_resolve_channel_webhook(p_webhook_id text)
    RETURNS TABLE (channel_config_id uuid, company_id uuid, agent_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT c.id, c.company_id, c.agent_id FROM chatapp_channel_configs c WHERE c.webhook_id = p_webhook_id $$;

CREATE OR REPLACE FUNCTION chatapp_resolve_conversation_session(p_session_token text)
    RETURNS TABLE (conversation_id uuid, company_id uuid, agent_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT c.id, c.company_id, c.agent_id FROM chatapp_conversations c
    WHERE c.session_token = p_session_token AND c.deleted_at IS NULL
$$;

DO $$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'chatapp_auth_user_by_email(text)',
        'chatapp_auth_user_by_id(uuid)',
        'chatapp_auth_api_key_by_prefix(text)',
        'chatapp_auth_refresh_token(text)',
        'chatapp_auth_invitation_by_token(text)',
        'chatapp_auth_company_status(uuid)',
        'chatapp_resolve_agent_company(uuid)',
        'chatapp_resolve_channel_webhook(text)',
        'chatapp_resolve_conversation_session(text)'
    ] LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO chatapp_app', f);
    END LOOP;
END
$$;

-- ---------------------------------------------------------------------------
-- updated_at maintenance on every chatapp_ table that has the column
-- ---------------------------------------------------------------------------
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT c.oid::regclass AS tbl
        FROM pg_class c
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'updated_at' AND NOT a.attisdropped
        WHERE c.relkind = 'r'
          AND c.relnamespace = 'public'::regnamespace
          AND c.relname LIKE 'chatapp\_%'
          AND c.relname <> 'chatapp_schema_migrations'
          AND NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = 'set_updated_at')
    LOOP
        EXECUTE format('CREATE TRIGGER set_updated_at BEFORE UPDATE ON %s '
                       'FOR EACH ROW EXECUTE FUNCTION chatapp_set_updated_at()', r.tbl);
    END LOOP;
END
$$;

-- ---------------------------------------------------------------------------
-- Self-check: every application table except the documented infrastructure tables has
-- ENABLE + FORCE row level security and at least one policy.
-- ---------------------------------------------------------------------------
DO $$
DECLARE
    bad text;
BEGIN
    SELECT string_agg(c.relname, ', ' ORDER BY c.relname) INTO bad
    FROM pg_class c
    WHERE c.relkind = 'r'
      AND c.relnamespace = 'public'::regnamespace
      AND c.relname LIKE 'chatapp\_%'
      AND c.relname NOT IN ('chatapp_login_attempts', 'chatapp_jobs', 'chatapp_failed_jobs',
                            'chatapp_schema_migrations')
      AND (NOT c.relrowsecurity OR NOT c.relforcerowsecurity
           OR NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid));
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'tables without ENABLE+FORCE RLS or without policies: %', bad;
    END IF;
END
$$;

-- ---------------------------------------------------------------------------
-- Grants for the application role (it owns nothing).
-- ---------------------------------------------------------------------------
GRANT USAGE ON SCHEMA public TO chatapp_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO chatapp_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO chatapp_app;
-- Migration bookkeeping belongs to the owner alone.
REVOKE ALL ON chatapp_schema_migrations FROM chatapp_app;
