-- Per support agent and day (UTC): what `GET /inbox/stats` reports (functions/inbox/stats.rs).
-- Computed from the rows themselves at each call, so it is never stale and needs no rollup job;
-- SECURITY INVOKER, so row-level security applies to everything it reads.
--   escalations_received   escalations assigned to the agent that day (by anyone)
--   conversations_handled  escalations the agent closed that day (resolved, or handed back to the AI)
--   messages_sent          the agent's replies to customers that day
--   avg_first_response_seconds, avg_handle_minutes  of those first answered / closed that day
--   csat, csat_responses   the customers' ratings (1-5) of the conversations closed that day
CREATE FUNCTION chatapp_support_agent_stats(p_company uuid, p_from date, p_to date)
    RETURNS TABLE (user_id uuid, day date, escalations_received bigint, conversations_handled bigint,
                   messages_sent bigint, avg_first_response_seconds numeric, avg_handle_minutes numeric,
                   csat numeric, csat_responses bigint)
    LANGUAGE sql STABLE
AS $$
    WITH days AS (
        SELECT d::date AS day FROM generate_series(p_from, p_to, interval '1 day') AS d
    ), received AS (
        SELECT e.assigned_to AS user_id, (e.assigned_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n
        FROM chatapp_escalations e
        WHERE e.company_id = p_company AND e.assigned_to IS NOT NULL
          AND e.assigned_at >= p_from::timestamp AT TIME ZONE 'UTC'
          AND e.assigned_at < (p_to + 1)::timestamp AT TIME ZONE 'UTC'
        GROUP BY 1, 2
    ), closed AS (
        SELECT e.assigned_to AS user_id, (e.resolved_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n,
               round(avg(e.handle_time) / 60.0, 2) AS handle_minutes,
               round(avg((c.context->>'csat_rating')::numeric), 2) AS csat,
               count(c.context->>'csat_rating') AS csat_responses
        FROM chatapp_escalations e
        JOIN chatapp_conversations c ON c.id = e.conversation_id
        WHERE e.company_id = p_company AND e.assigned_to IS NOT NULL
          AND e.status IN ('resolved', 'returned_to_ai')
          AND e.resolved_at >= p_from::timestamp AT TIME ZONE 'UTC'
          AND e.resolved_at < (p_to + 1)::timestamp AT TIME ZONE 'UTC'
        GROUP BY 1, 2
    ), answered AS (
        SELECT e.assigned_to AS user_id, (e.first_response_at AT TIME ZONE 'UTC')::date AS day,
               round(avg(e.first_response_time), 2) AS seconds
        FROM chatapp_escalations e
        WHERE e.company_id = p_company AND e.assigned_to IS NOT NULL AND e.first_response_time IS NOT NULL
          AND e.first_response_at >= p_from::timestamp AT TIME ZONE 'UTC'
          AND e.first_response_at < (p_to + 1)::timestamp AT TIME ZONE 'UTC'
        GROUP BY 1, 2
    ), sent AS (
        SELECT m.sender_id AS user_id, (m.created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n
        FROM chatapp_messages m
        WHERE m.company_id = p_company AND m.role = 'human_agent' AND m.sender_id IS NOT NULL
          AND m.created_at >= p_from::timestamp AT TIME ZONE 'UTC'
          AND m.created_at < (p_to + 1)::timestamp AT TIME ZONE 'UTC'
        GROUP BY 1, 2
    ), active AS (
        SELECT user_id, day FROM received UNION SELECT user_id, day FROM closed
        UNION SELECT user_id, day FROM answered UNION SELECT user_id, day FROM sent
    )
    SELECT a.user_id, a.day, coalesce(r.n, 0), coalesce(cl.n, 0), coalesce(s.n, 0), an.seconds,
           cl.handle_minutes, cl.csat, coalesce(cl.csat_responses, 0)
    FROM active a
    JOIN days d ON d.day = a.day
    LEFT JOIN received r ON r.user_id = a.user_id AND r.day = a.day
    LEFT JOIN closed cl ON cl.user_id = a.user_id AND cl.day = a.day
    LEFT JOIN answered an ON an.user_id = a.user_id AND an.day = a.day
    LEFT JOIN sent s ON s.user_id = a.user_id AND s.day = a.day
    ORDER BY a.day, a.user_id
$$;
GRANT EXECUTE ON FUNCTION chatapp_support_agent_stats(uuid, date, date) TO chatapp_app;
