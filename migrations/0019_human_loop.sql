-- 0019: the human in the loop (issue 20): a transactional outbox, per-conversation event
-- sequences, explicit ownership, fair assignment bookkeeping, snooze and labels.

-- ---------------------------------------------------------------------------
-- Transactional outbox. A job or event is written here in the transaction of the change that
-- causes it, and relayed to its queue (SQS or chatapp_jobs) after that transaction commits; a
-- scheduled sweep relays what a crashed relay left. A rolled-back change leaves no row, so no
-- job. Tenant transactions may only add rows (payloads hold message text); reading and
-- deleting is for the relay's connection, which acts for no tenant.
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_outbox (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    queue       varchar(100) NOT NULL,
    payload     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- A relay that took the row; another may take it once the lease ends (the first crashed).
    leased_until timestamptz,
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text
);
CREATE INDEX outbox_queue_created_idx ON chatapp_outbox (queue, created_at);
-- Every row is inserted and deleted within seconds: vacuum it by the thousand rows, not by a
-- fraction of its (tiny) size, or dead rows pile up under every relay's scan.
ALTER TABLE chatapp_outbox SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
                                autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 1000);
ALTER TABLE chatapp_outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_outbox FORCE ROW LEVEL SECURITY;
CREATE POLICY outbox_add ON chatapp_outbox FOR INSERT WITH CHECK (true);
CREATE POLICY outbox_relay ON chatapp_outbox FOR ALL USING (chatapp_current_role() = '');
GRANT SELECT, INSERT, UPDATE, DELETE ON chatapp_outbox TO chatapp_app;

-- Writes one outbox row; the payload gets `event_id` (the row id) so consumers can drop a
-- redelivered copy. Invoker's rights: it runs inside the caller's tenant transaction.
CREATE FUNCTION chatapp_outbox_add(p_queue text, p_payload jsonb) RETURNS uuid
    LANGUAGE plpgsql
AS $$
DECLARE
    v_id uuid := gen_random_uuid();
BEGIN
    INSERT INTO chatapp_outbox (id, queue, payload)
    VALUES (v_id, p_queue, p_payload || jsonb_build_object('event_id', v_id));
    RETURN v_id;
END
$$;

-- ---------------------------------------------------------------------------
-- Conversations: ownership, queue bookkeeping, snooze, labels, event sequence.
-- The owner is the AI (status active / resolved / abandoned, nobody assigned), the queue
-- (waiting_human) or a named support agent (with_human and assigned_agent_id).
-- ---------------------------------------------------------------------------
ALTER TABLE chatapp_conversations
    ADD COLUMN last_event_seq bigint NOT NULL DEFAULT 0,
    ADD COLUMN assigned_at    timestamptz,
    ADD COLUMN snoozed_until  timestamptz,
    ADD COLUMN labels         text[] NOT NULL DEFAULT '{}';
UPDATE chatapp_conversations SET status = 'waiting_human' WHERE status = 'with_human' AND assigned_agent_id IS NULL;
ALTER TABLE chatapp_conversations ADD CONSTRAINT chatapp_conversations_owner_check
    CHECK (status <> 'with_human' OR assigned_agent_id IS NOT NULL);
CREATE INDEX conversations_company_assigned_status_idx
    ON chatapp_conversations (company_id, assigned_agent_id, status) WHERE deleted_at IS NULL;

-- ---------------------------------------------------------------------------
-- Escalations: the queue's bookkeeping and the times the issue asks for (seconds).
-- ---------------------------------------------------------------------------
ALTER TABLE chatapp_escalations
    ADD COLUMN queued_at           timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN assigned_at         timestamptz,
    ADD COLUMN first_response_at   timestamptz,
    ADD COLUMN first_response_time integer,
    -- Whether the current assignee has answered (the reassignment timer's test); reset by every
    -- assignment and requeue, while first_response_at keeps the escalation's first answer.
    ADD COLUMN assignee_responded_at timestamptz,
    ADD COLUMN reassign_count      integer NOT NULL DEFAULT 0,
    -- Who had it before it went back to the queue: the next assignment prefers someone else.
    ADD COLUMN previous_assignee   uuid;
-- The waiting queue in assignment order.
CREATE INDEX escalations_waiting_idx ON chatapp_escalations (company_id, priority DESC, created_at, id)
    WHERE status = 'pending';
-- Rows written before this migration: an open escalation of a conversation no human is on is
-- closed (the AI has it back, or it ended); of several open ones per conversation only the
-- newest stays open; a conversation waiting without one gets one, so the worker sees it.
UPDATE chatapp_escalations e SET status = 'returned_to_ai', resolved_at = now()
FROM chatapp_conversations c
WHERE c.id = e.conversation_id AND e.status IN ('pending', 'assigned', 'in_progress')
  AND c.status NOT IN ('waiting_human', 'with_human');
UPDATE chatapp_escalations e SET status = 'abandoned', resolved_at = now()
WHERE e.status IN ('pending', 'assigned', 'in_progress')
  AND EXISTS (SELECT 1 FROM chatapp_escalations n
              WHERE n.conversation_id = e.conversation_id AND n.status IN ('pending', 'assigned', 'in_progress')
                AND (n.created_at, n.id) > (e.created_at, e.id));
INSERT INTO chatapp_escalations (conversation_id, company_id, agent_id, reason, trigger_type, status, created_at)
SELECT c.id, c.company_id, c.agent_id, 'waiting before the inbox existed', 'manual', 'pending', c.updated_at
FROM chatapp_conversations c
WHERE c.status = 'waiting_human'
  AND NOT EXISTS (SELECT 1 FROM chatapp_escalations e
                  WHERE e.conversation_id = c.id AND e.status IN ('pending', 'assigned', 'in_progress'));
-- One open escalation per conversation.
CREATE UNIQUE INDEX escalations_open_conversation_key ON chatapp_escalations (conversation_id)
    WHERE status IN ('pending', 'assigned', 'in_progress');

-- ---------------------------------------------------------------------------
-- Support agents: assignment order, heartbeats; a support agent changes only their own row
-- (assignment counts are kept by the trigger below, which runs as the owner).
-- ---------------------------------------------------------------------------
ALTER TABLE chatapp_support_agent_status
    ADD COLUMN last_assigned_at timestamptz;
ALTER TABLE chatapp_support_agent_status
    ADD CONSTRAINT chatapp_support_agent_status_capacity_check
    CHECK (max_concurrent_chats BETWEEN 0 AND 100);
CREATE INDEX support_agent_status_available_idx
    ON chatapp_support_agent_status (company_id, current_chat_count, last_assigned_at) WHERE status = 'online';
CREATE POLICY support_agent_own_row ON chatapp_support_agent_status AS RESTRICTIVE FOR UPDATE
    USING (chatapp_current_role() <> 'support_agent' OR user_id = chatapp_current_user_id());
CREATE POLICY support_agent_own_row_insert ON chatapp_support_agent_status AS RESTRICTIVE FOR INSERT
    WITH CHECK (chatapp_current_role() <> 'support_agent' OR user_id = chatapp_current_user_id());

-- How long an assignee may leave a conversation unanswered before it goes back to the queue.
ALTER TABLE chatapp_companies
    ADD COLUMN reassign_after_seconds integer NOT NULL DEFAULT 300
        CONSTRAINT chatapp_companies_reassign_after_check CHECK (reassign_after_seconds BETWEEN 30 AND 86400);

-- Keeps current_chat_count equal to the support agent's conversations with_human, whichever
-- statement moves one (claim, assignment, transfer, resolve, handback, reassignment).
CREATE FUNCTION chatapp_track_chat_count() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    old_owner uuid := CASE WHEN TG_OP IN ('UPDATE', 'DELETE') AND OLD.status = 'with_human' AND OLD.deleted_at IS NULL
                           THEN OLD.assigned_agent_id END;
    new_owner uuid := CASE WHEN TG_OP IN ('INSERT', 'UPDATE') AND NEW.status = 'with_human' AND NEW.deleted_at IS NULL
                           THEN NEW.assigned_agent_id END;
    company uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.company_id ELSE NEW.company_id END;
BEGIN
    IF old_owner IS NOT DISTINCT FROM new_owner THEN
        RETURN NULL;
    END IF;
    -- Both rows in user-id order, so two transfers in opposite directions cannot deadlock.
    PERFORM 1 FROM chatapp_support_agent_status
    WHERE user_id IN (old_owner, new_owner) ORDER BY user_id FOR UPDATE;
    IF old_owner IS NOT NULL THEN
        UPDATE chatapp_support_agent_status SET current_chat_count = greatest(coalesce(current_chat_count, 1) - 1, 0)
        WHERE user_id = old_owner;
    END IF;
    IF new_owner IS NOT NULL THEN
        INSERT INTO chatapp_support_agent_status (user_id, company_id, current_chat_count, last_assigned_at)
        VALUES (new_owner, company, 1, now())
        ON CONFLICT (user_id) DO UPDATE
            SET current_chat_count = coalesce(chatapp_support_agent_status.current_chat_count, 0) + 1,
                last_assigned_at = now();
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER track_chat_count AFTER INSERT OR DELETE OR UPDATE OF status, assigned_agent_id, deleted_at
    ON chatapp_conversations FOR EACH ROW EXECUTE FUNCTION chatapp_track_chat_count();
-- Counts as they stand (nothing kept them before).
UPDATE chatapp_support_agent_status s SET current_chat_count =
    (SELECT count(*) FROM chatapp_conversations c
     WHERE c.assigned_agent_id = s.user_id AND c.status = 'with_human' AND c.deleted_at IS NULL);
ALTER TABLE chatapp_support_agent_status ALTER COLUMN current_chat_count SET NOT NULL;

-- A support agent who is deleted (their user row, or their whole company) leaves their
-- conversations to the queue rather than breaking the owner check (the foreign key sets the
-- assignee to NULL).
CREATE FUNCTION chatapp_orphaned_to_queue() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF NEW.status = 'with_human' AND NEW.assigned_agent_id IS NULL THEN
        NEW.status := 'waiting_human';
        NEW.assigned_at := NULL;
        UPDATE chatapp_escalations SET status = 'pending', assigned_to = NULL, assigned_at = NULL,
                                       assignee_responded_at = NULL, queued_at = now()
        WHERE conversation_id = NEW.id AND status IN ('assigned', 'in_progress');
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER orphaned_to_queue BEFORE UPDATE OF assigned_agent_id ON chatapp_conversations
    FOR EACH ROW EXECUTE FUNCTION chatapp_orphaned_to_queue();

-- ---------------------------------------------------------------------------
-- Conversation events: every message, note, status change, assignment and typing signal,
-- numbered per conversation without gaps, so a client that reconnects with `after=<seq>` gets
-- every event it missed exactly once. `internal` events (notes, typing of support agents'
-- drafts) never reach the customer.
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_conversation_events (
    conversation_id uuid NOT NULL,
    company_id      uuid NOT NULL DEFAULT chatapp_current_company_id(),
    seq             bigint NOT NULL,
    type            varchar(50) NOT NULL,
    payload         jsonb NOT NULL DEFAULT '{}'::jsonb,
    internal        boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (conversation_id, seq),
    CONSTRAINT chatapp_conversation_events_conversation_fkey FOREIGN KEY (conversation_id, company_id)
        REFERENCES chatapp_conversations (id, company_id) ON DELETE CASCADE
);
ALTER TABLE chatapp_conversation_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_conversation_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_conversation_events FOR ALL
    USING (company_id = chatapp_current_company_id() OR chatapp_is_master_admin())
    WITH CHECK (company_id = chatapp_current_company_id() OR chatapp_is_master_admin());
CREATE POLICY support_agent_scope ON chatapp_conversation_events AS RESTRICTIVE FOR ALL
    USING (chatapp_current_role() <> 'support_agent'
           OR EXISTS (SELECT 1 FROM chatapp_conversations c WHERE c.id = conversation_id))
    WITH CHECK (chatapp_current_role() <> 'support_agent'
                OR EXISTS (SELECT 1 FROM chatapp_conversations c WHERE c.id = conversation_id));
-- A customer's session reads only what is meant for the customer.
CREATE POLICY customer_scope ON chatapp_conversation_events AS RESTRICTIVE FOR SELECT
    USING (chatapp_current_role() <> 'customer' OR NOT internal);
GRANT SELECT, INSERT, UPDATE, DELETE ON chatapp_conversation_events TO chatapp_app;

-- Appends an event to the conversation (taking its row lock, which orders the sequence),
-- notifies listeners at commit (`chatapp_events`, payload `<conversation>:<seq>`), and, unless
-- it is a typing signal or internal, queues it through the outbox for the company's outbound
-- webhooks subscribed to it.
CREATE FUNCTION chatapp_append_event(p_conversation uuid, p_type text, p_payload jsonb, p_internal boolean)
    RETURNS bigint
    LANGUAGE plpgsql
AS $$
DECLARE
    v_company uuid;
    v_seq bigint;
BEGIN
    UPDATE chatapp_conversations SET last_event_seq = last_event_seq + 1
    WHERE id = p_conversation
    RETURNING company_id, last_event_seq INTO v_company, v_seq;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'conversation % not visible', p_conversation USING ERRCODE = 'no_data_found';
    END IF;
    INSERT INTO chatapp_conversation_events (conversation_id, company_id, seq, type, payload, internal)
    VALUES (p_conversation, v_company, v_seq, p_type, p_payload, p_internal);
    PERFORM pg_notify('chatapp_events', p_conversation::text || ':' || v_seq::text);
    -- Internal events (notes) stay inside; outbound webhooks get what the customer could see,
    -- and only companies with an active webhook for the event get one (no queue traffic, and no
    -- relay work in the chat turn, for the rest). An empty `events` list subscribes to all.
    IF p_type <> 'typing' AND NOT p_internal
       AND EXISTS (SELECT 1 FROM chatapp_webhooks w
                   WHERE w.company_id = v_company AND w.is_active
                     AND (w.events = '[]'::jsonb OR w.events ? p_type OR w.events ? '*')) THEN
        PERFORM chatapp_outbox_add('outbound', jsonb_build_object(
            'type', p_type, 'company_id', v_company, 'conversation_id', p_conversation, 'seq', v_seq,
            'internal', p_internal, 'data', p_payload, 'at', now()));
    END IF;
    RETURN v_seq;
END
$$;

-- Every message is an event (`message.created`), whichever code path stores it.
CREATE FUNCTION chatapp_message_event() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM chatapp_append_event(NEW.conversation_id, 'message.created', jsonb_build_object(
        'id', NEW.id, 'role', NEW.role, 'content', NEW.content, 'sender_id', NEW.sender_id,
        'kind', NEW.metadata ->> 'kind', 'created_at', NEW.created_at), NEW.role = 'tool');
    RETURN NULL;
END
$$;
CREATE TRIGGER message_event AFTER INSERT ON chatapp_messages
    FOR EACH ROW EXECUTE FUNCTION chatapp_message_event();

-- Notes are events for support agents only.
CREATE FUNCTION chatapp_note_event() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM chatapp_append_event(NEW.conversation_id, 'note.created', jsonb_build_object(
        'id', NEW.id, 'user_id', NEW.user_id, 'content', NEW.content, 'created_at', NEW.created_at), true);
    RETURN NULL;
END
$$;
CREATE TRIGGER note_event AFTER INSERT ON chatapp_conversation_notes
    FOR EACH ROW EXECUTE FUNCTION chatapp_note_event();

-- Notes carry their company (as messages do since 0018) and their @mentions.
ALTER TABLE chatapp_conversation_notes
    ADD COLUMN company_id uuid,
    ADD COLUMN mentions uuid[] NOT NULL DEFAULT '{}';
UPDATE chatapp_conversation_notes n SET company_id = c.company_id FROM chatapp_conversations c WHERE c.id = n.conversation_id;
ALTER TABLE chatapp_conversation_notes
    ALTER COLUMN company_id SET DEFAULT chatapp_current_company_id(),
    ALTER COLUMN company_id SET NOT NULL;
ALTER TABLE chatapp_conversation_notes DROP CONSTRAINT chatapp_conversation_notes_conversation_id_fkey;
ALTER TABLE chatapp_conversation_notes ADD CONSTRAINT chatapp_conversation_notes_conversation_fkey
    FOREIGN KEY (conversation_id, company_id) REFERENCES chatapp_conversations (id, company_id) ON DELETE CASCADE;

-- Canned responses: a shortcode is unique per company among shared ones and per author among
-- personal ones.
CREATE UNIQUE INDEX canned_responses_shortcut_key ON chatapp_canned_responses
    (company_id, lower(shortcut), (CASE WHEN is_global THEN NULL ELSE created_by END))
    NULLS NOT DISTINCT WHERE shortcut IS NOT NULL AND is_active;
-- Personal responses are their author's alone.
CREATE POLICY personal_scope ON chatapp_canned_responses AS RESTRICTIVE FOR ALL
    USING (is_global IS NOT FALSE OR created_by = chatapp_current_user_id()
           OR chatapp_current_role() IN ('company_admin', 'master_admin'))
    WITH CHECK (is_global IS NOT FALSE OR created_by = chatapp_current_user_id());

-- Companies with conversations waiting and a support agent online: what the scheduled sweep
-- drains. Across tenants, so SECURITY DEFINER; it returns ids only.
CREATE FUNCTION chatapp_companies_to_drain() RETURNS SETOF uuid
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    RETURN QUERY
        SELECT DISTINCT e.company_id FROM chatapp_escalations e
        WHERE e.status = 'pending'
          AND EXISTS (SELECT 1 FROM chatapp_support_agent_status s
                      WHERE s.company_id = e.company_id AND s.status = 'online'
                        AND s.current_chat_count < s.max_concurrent_chats)
        UNION
        SELECT DISTINCT c.company_id FROM chatapp_conversations c
        JOIN chatapp_companies co ON co.id = c.company_id
        WHERE c.status = 'with_human' AND c.deleted_at IS NULL
          AND (c.snoozed_until <= now()
               OR (c.assigned_at < now() - make_interval(secs => co.reassign_after_seconds)
                   AND EXISTS (SELECT 1 FROM chatapp_escalations e
                               WHERE e.conversation_id = c.id AND e.status = 'assigned'
                                 AND e.assignee_responded_at IS NULL)))
        UNION
        SELECT DISTINCT s.company_id FROM chatapp_support_agent_status s
        WHERE s.status = 'online' AND s.last_active_at < now() - interval '90 seconds';
END
$$;
GRANT EXECUTE ON FUNCTION chatapp_companies_to_drain() TO chatapp_app;

-- ---------------------------------------------------------------------------
-- Ownership transitions. Each one is explicit, writes a system message the customer sees and
-- an event, and keeps the open escalation's times; they run with the caller's rights (RLS
-- applies, except for the one statement of chatapp_handoff_set_owner), and the caller has
-- checked and locked the conversation first. The conversation's own row changes last: after a
-- transfer a support agent no longer sees it.
-- ---------------------------------------------------------------------------

-- A person's display name for system messages.
CREATE FUNCTION chatapp_user_display_name(p_user uuid) RETURNS text
    LANGUAGE sql STABLE
AS $$ SELECT coalesce(nullif(trim(name), ''), split_part(email, '@', 1)) FROM chatapp_users WHERE id = p_user $$;

-- Gives the conversation to `p_user`. A support agent may hand their own (or an unassigned)
-- conversation to a colleague, after which row-level security no longer lets them see it; an
-- UPDATE under their policy would be refused for that very reason. So this one statement runs
-- as the owner, with the policy's own conditions written out: the caller's company, and for a
-- support agent a conversation that is theirs or unassigned. The foreign key keeps `p_user` in
-- the same company.
CREATE FUNCTION chatapp_handoff_set_owner(p_conversation uuid, p_user uuid) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    IF chatapp_current_role() NOT IN ('support_agent', 'company_admin', 'master_admin', 'worker') THEN
        RAISE EXCEPTION 'role % may not assign conversations', chatapp_current_role()
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM chatapp_users u
                   WHERE u.id = p_user AND u.company_id = chatapp_current_company_id() AND u.is_active
                     AND u.deleted_at IS NULL AND u.role IN ('support_agent', 'company_admin')) THEN
        RAISE EXCEPTION 'user % is not an active support agent or admin of the company', p_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    UPDATE chatapp_conversations
    SET status = 'with_human', assigned_agent_id = p_user, assigned_at = now(), snoozed_until = NULL,
        is_human_agent = true, updated_at = now()
    WHERE id = p_conversation AND company_id = chatapp_current_company_id() AND deleted_at IS NULL
      AND status NOT IN ('abandoned')
      AND (chatapp_current_role() <> 'support_agent'
           OR assigned_agent_id = chatapp_current_user_id() OR assigned_agent_id IS NULL);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'conversation % is not the caller''s to give', p_conversation
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;

-- A named support agent takes the conversation (claim, assignment by the worker or an admin,
-- transfer). `p_event` names the event: conversation.assigned or conversation.transferred.
CREATE FUNCTION chatapp_handoff_assign(p_conversation uuid, p_user uuid, p_by uuid, p_event text) RETURNS void
    LANGUAGE plpgsql
AS $$
DECLARE
    v_company uuid;
    v_agent uuid;
    v_name text := coalesce(chatapp_user_display_name(p_user), 'A support agent');
    v_text text;
BEGIN
    SELECT company_id, agent_id INTO v_company, v_agent FROM chatapp_conversations WHERE id = p_conversation;
    UPDATE chatapp_escalations
    SET status = 'assigned', assigned_to = p_user, assigned_by = p_by, assigned_at = now(),
        assignee_responded_at = NULL,
        wait_time = coalesce(wait_time, extract(epoch FROM now() - created_at)::integer), updated_at = now()
    WHERE conversation_id = p_conversation AND status IN ('pending', 'assigned', 'in_progress');
    IF NOT FOUND THEN
        -- Taken from the AI without an escalation: recorded as a manual one.
        INSERT INTO chatapp_escalations (conversation_id, company_id, agent_id, assigned_to, assigned_by, reason,
                                         trigger_type, status, assigned_at, wait_time)
        VALUES (p_conversation, v_company, v_agent, p_user, p_by, 'taken over by a support agent', 'manual',
                'assigned', now(), 0);
    END IF;
    v_text := CASE WHEN p_event = 'conversation.transferred' THEN 'You have been transferred to ' || v_name || '.'
                   ELSE v_name || ' joined the conversation.' END;
    INSERT INTO chatapp_messages (conversation_id, company_id, role, content, metadata)
    VALUES (p_conversation, v_company, 'system', v_text,
            jsonb_build_object('kind', 'agent_joined', 'user_id', p_user, 'user_name', v_name));
    PERFORM chatapp_append_event(p_conversation, p_event,
        jsonb_build_object('status', 'with_human', 'user_id', p_user, 'user_name', v_name, 'by', p_by), false);
    PERFORM chatapp_handoff_set_owner(p_conversation, p_user);
END
$$;

-- The conversation goes back to the waiting queue (released by its assignee, or not answered
-- within the company's reassignment time); its place in the queue is its original one.
CREATE FUNCTION chatapp_handoff_requeue(p_conversation uuid, p_reason text) RETURNS void
    LANGUAGE plpgsql
AS $$
DECLARE
    v_company uuid;
BEGIN
    SELECT company_id INTO v_company FROM chatapp_conversations WHERE id = p_conversation;
    UPDATE chatapp_escalations
    SET status = 'pending', previous_assignee = assigned_to, assigned_to = NULL, assigned_at = NULL,
        assignee_responded_at = NULL, queued_at = now(),
        reassign_count = reassign_count + 1, updated_at = now()
    WHERE conversation_id = p_conversation AND status IN ('pending', 'assigned', 'in_progress');
    INSERT INTO chatapp_messages (conversation_id, company_id, role, content, metadata)
    VALUES (p_conversation, v_company, 'system', 'Waiting for the next available agent.',
            jsonb_build_object('kind', 'queued', 'reason', p_reason));
    PERFORM chatapp_append_event(p_conversation, 'conversation.queued',
        jsonb_build_object('status', 'waiting_human', 'reason', p_reason), false);
    UPDATE chatapp_conversations
    SET status = 'waiting_human', assigned_agent_id = NULL, assigned_at = NULL, snoozed_until = NULL,
        updated_at = now()
    WHERE id = p_conversation;
    PERFORM chatapp_outbox_add('escalation', jsonb_build_object('company_id', v_company, 'kind', 'drain'));
END
$$;

-- The human part ends: resolved (`p_status` 'resolved') or handed back to the AI ('active').
-- Closes the open escalation with its handle time and wakes the assignment (capacity freed).
CREATE FUNCTION chatapp_handoff_close(p_conversation uuid, p_status conversation_status, p_by uuid, p_text text)
    RETURNS void
    LANGUAGE plpgsql
AS $$
DECLARE
    v_company uuid;
BEGIN
    SELECT company_id INTO v_company FROM chatapp_conversations WHERE id = p_conversation;
    UPDATE chatapp_escalations
    SET status = CASE WHEN p_status = 'resolved' THEN 'resolved'::escalation_status
                      ELSE 'returned_to_ai'::escalation_status END,
        resolved_at = now(),
        handle_time = extract(epoch FROM now() - coalesce(assigned_at, created_at))::integer,
        updated_at = now()
    WHERE conversation_id = p_conversation AND status IN ('pending', 'assigned', 'in_progress');
    INSERT INTO chatapp_messages (conversation_id, company_id, role, content, metadata)
    VALUES (p_conversation, v_company, 'system', p_text,
            jsonb_build_object('kind', CASE WHEN p_status = 'resolved' THEN 'resolved' ELSE 'assistant_back' END,
                               'user_id', p_by));
    PERFORM chatapp_append_event(p_conversation,
        CASE WHEN p_status = 'resolved' THEN 'conversation.resolved' ELSE 'conversation.handed_back' END,
        jsonb_build_object('status', p_status, 'by', p_by), false);
    UPDATE chatapp_conversations
    SET status = p_status, assigned_agent_id = NULL, assigned_at = NULL, snoozed_until = NULL,
        is_human_agent = false,
        resolved_at = CASE WHEN p_status = 'resolved' THEN now() ELSE resolved_at END, updated_at = now()
    WHERE id = p_conversation;
    PERFORM chatapp_outbox_add('escalation', jsonb_build_object('company_id', v_company, 'kind', 'drain'));
END
$$;

-- A human reply: the first one sets the escalation's first response time.
CREATE FUNCTION chatapp_handoff_responded(p_conversation uuid) RETURNS void
    LANGUAGE sql
AS $$
    UPDATE chatapp_escalations
    SET status = 'in_progress', first_response_at = coalesce(first_response_at, now()),
        assignee_responded_at = coalesce(assignee_responded_at, now()),
        first_response_time = coalesce(first_response_time,
                                       extract(epoch FROM now() - coalesce(assigned_at, created_at))::integer),
        updated_at = now()
    WHERE conversation_id = p_conversation AND status IN ('assigned', 'in_progress');
$$;

-- SECURITY DEFINER functions: the application role only, never PUBLIC (tests/rls.rs checks).
REVOKE ALL ON FUNCTION chatapp_companies_to_drain() FROM PUBLIC;
REVOKE ALL ON FUNCTION chatapp_track_chat_count() FROM PUBLIC;
REVOKE ALL ON FUNCTION chatapp_handoff_set_owner(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION chatapp_track_chat_count() TO chatapp_app;
GRANT EXECUTE ON FUNCTION chatapp_handoff_set_owner(uuid, uuid) TO chatapp_app;
