-- 0015: one lookup per widget request. Besides what chatapp_resolve_conversation_session
-- (0011) returns, the company's status and the agent's allowed widget domains, so checking a
-- request's Origin costs no transaction of its own. Allowed domains are public (the widget
-- config route returns them), so returning them before the tenant is known leaks nothing.
CREATE OR REPLACE FUNCTION chatapp_resolve_widget_session(p_session_token text)
    RETURNS TABLE (conversation_id uuid, company_id uuid, agent_id uuid, company_status text, allowed_domains jsonb)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT c.id, c.company_id, c.agent_id, chatapp_auth_company_status(c.company_id),
           COALESCE(w.allowed_domains, '[]'::jsonb)
    FROM chatapp_conversations c
    LEFT JOIN chatapp_widget_configs w ON w.agent_id = c.agent_id AND w.company_id = c.company_id
    WHERE c.session_token = p_session_token AND c.deleted_at IS NULL
$$;
REVOKE ALL ON FUNCTION chatapp_resolve_widget_session(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION chatapp_resolve_widget_session(text) TO chatapp_app;

-- Superseded by the function above; a definer function nobody calls is attack surface.
DROP FUNCTION chatapp_resolve_conversation_session(text);
