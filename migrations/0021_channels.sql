-- 0021: messaging channels (issue 21): sealed credentials on the channel configurations, the
-- webhook's pre-tenant lookup, inbound messages stored once per provider message id, and the
-- delivery of every reply written in a channel's conversation.

-- ---------------------------------------------------------------------------
-- Channel configurations: credentials are sealed by the application (AES-256-GCM, the row id
-- and company id as associated data); `credentials_hint` holds only what an admin may see
-- (phone number id, page id, bot name). The old `credentials` / `webhook_secret` columns stay
-- empty: no secret is stored in clear.
-- ---------------------------------------------------------------------------
ALTER TABLE chatapp_channel_configs
    ADD COLUMN name               varchar(255),
    ADD COLUMN credentials_sealed bytea,
    ADD COLUMN credentials_hint   jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN secret_rotated_at  timestamptz,
    ADD COLUMN last_check_at      timestamptz,
    ADD COLUMN last_check_error   text;

-- An inbound email address belongs to one company: replies go out from it.
CREATE UNIQUE INDEX channel_email_address_idx ON chatapp_channel_configs (lower(credentials_hint ->> 'address'))
    WHERE channel = 'email';

-- The webhook knows only the configuration id in its path: this gives it the company (to open a
-- tenant transaction) and the sealed credentials (to verify the request) before anything is
-- stored. Nothing is returned for another channel's id or a deleted company.
CREATE FUNCTION chatapp_channel_for_webhook(p_id uuid, p_channel channel_type)
    RETURNS TABLE (company_id uuid, agent_id uuid, credentials_sealed bytea, is_active boolean, settings jsonb,
                   credentials_hint jsonb)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    RETURN QUERY
        SELECT c.company_id, c.agent_id, c.credentials_sealed, COALESCE(c.is_active, true) AND co.status = 'active', c.settings,
               c.credentials_hint
        FROM chatapp_channel_configs c JOIN chatapp_companies co ON co.id = c.company_id
        WHERE c.id = p_id AND c.channel = p_channel AND co.deleted_at IS NULL;
END
$$;
REVOKE ALL ON FUNCTION chatapp_channel_for_webhook(uuid, channel_type) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION chatapp_channel_for_webhook(uuid, channel_type) TO chatapp_app;

-- ---------------------------------------------------------------------------
-- Inbound messages, once each: the provider's message id is unique per configuration, so a
-- redelivered webhook stores nothing and queues no second turn. The row is the durable record
-- the channel worker turns into a chat turn (and, afterwards, what a reply needs: the latest
-- `reply_context` of the conversation, and when the customer last wrote for the 24-hour rule).
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_channel_inbound (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id          uuid NOT NULL DEFAULT chatapp_current_company_id(),
    channel_config_id   uuid NOT NULL REFERENCES chatapp_channel_configs (id) ON DELETE CASCADE,
    provider_message_id varchar(255) NOT NULL,
    conversation_id     uuid NOT NULL,
    content             text NOT NULL,
    attachments         jsonb NOT NULL DEFAULT '[]'::jsonb,
    sender              jsonb NOT NULL DEFAULT '{}'::jsonb,
    reply_context       jsonb NOT NULL DEFAULT '{}'::jsonb,
    sent_at             timestamptz,
    -- The message that started its conversation (the channel's greeting goes out before its answer).
    opens_conversation  boolean NOT NULL DEFAULT false,
    status              varchar(16) NOT NULL DEFAULT 'queued'
                        CHECK (status IN ('queued', 'answered', 'failed')),
    message_id          uuid,
    error               text,
    received_at         timestamptz NOT NULL DEFAULT now(),
    processed_at        timestamptz,
    CONSTRAINT chatapp_channel_inbound_dedupe UNIQUE (channel_config_id, provider_message_id),
    CONSTRAINT chatapp_channel_inbound_conversation_fkey FOREIGN KEY (conversation_id, company_id)
        REFERENCES chatapp_conversations (id, company_id) ON DELETE CASCADE
);
CREATE INDEX channel_inbound_conversation_idx ON chatapp_channel_inbound (conversation_id, received_at DESC);
CREATE INDEX channel_inbound_company_idx ON chatapp_channel_inbound (company_id);
ALTER TABLE chatapp_channel_inbound ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_channel_inbound FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_channel_inbound FOR ALL
    USING (company_id = chatapp_current_company_id() OR chatapp_is_master_admin())
    WITH CHECK (company_id = chatapp_current_company_id() OR chatapp_is_master_admin());
GRANT SELECT, INSERT, UPDATE, DELETE ON chatapp_channel_inbound TO chatapp_app;

-- ---------------------------------------------------------------------------
-- Deliveries: one row per reply in a channel's conversation (the AI's or a support agent's).
-- The sender claims the row before calling the provider and records each part it sent, so a
-- redelivered job never sends a part twice; receipts (delivered / read) update it by the
-- provider's message id.
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_channel_deliveries (
    message_id           uuid PRIMARY KEY REFERENCES chatapp_messages (id) ON DELETE CASCADE,
    company_id           uuid NOT NULL DEFAULT chatapp_current_company_id()
                         REFERENCES chatapp_companies (id) ON DELETE CASCADE,
    conversation_id      uuid NOT NULL,
    status               varchar(16) NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'sending', 'sent', 'delivered', 'read', 'failed')),
    parts_total          integer,
    parts_sent           integer NOT NULL DEFAULT 0,
    provider_message_ids jsonb NOT NULL DEFAULT '[]'::jsonb,
    attempts             integer NOT NULL DEFAULT 0,
    leased_until         timestamptz,
    error_code           varchar(100),
    error                text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    sent_at              timestamptz,
    delivered_at         timestamptz,
    read_at              timestamptz
);
CREATE INDEX channel_deliveries_company_idx ON chatapp_channel_deliveries (company_id, status);
CREATE INDEX channel_deliveries_provider_ids_idx ON chatapp_channel_deliveries
    USING gin (provider_message_ids jsonb_path_ops);
ALTER TABLE chatapp_channel_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_channel_deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_channel_deliveries FOR ALL
    USING (company_id = chatapp_current_company_id() OR chatapp_is_master_admin())
    WITH CHECK (company_id = chatapp_current_company_id() OR chatapp_is_master_admin());
GRANT SELECT, INSERT, UPDATE, DELETE ON chatapp_channel_deliveries TO chatapp_app;

-- Customers are matched per channel by the provider's id of the person: an exact key, so the
-- lookup is one index probe however many customers the company has, and two first messages of
-- one person cannot make two customers. (`chatapp_customers.channel_ids` mirrors it for display.)
CREATE TABLE chatapp_channel_identities (
    company_id       uuid NOT NULL DEFAULT chatapp_current_company_id()
                     REFERENCES chatapp_companies (id) ON DELETE CASCADE,
    channel          channel_type NOT NULL,
    external_user_id varchar(255) NOT NULL,
    customer_id      uuid NOT NULL REFERENCES chatapp_customers (id) ON DELETE CASCADE,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, channel, external_user_id)
);
CREATE INDEX channel_identities_customer_idx ON chatapp_channel_identities (customer_id);
ALTER TABLE chatapp_channel_identities ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_channel_identities FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_channel_identities FOR ALL
    USING (company_id = chatapp_current_company_id() OR chatapp_is_master_admin())
    WITH CHECK (company_id = chatapp_current_company_id() OR chatapp_is_master_admin());
GRANT SELECT, INSERT, UPDATE, DELETE ON chatapp_channel_identities TO chatapp_app;

-- Every reply stored in a messaging channel's conversation, whichever code path stores it (the
-- AI's turn, a support agent's reply), gets a delivery row and a `channel-send` job in the same
-- transaction. Widget and API conversations pay one primary-key read of the conversation.
CREATE OR REPLACE FUNCTION chatapp_message_event() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    v_channel channel_type;
BEGIN
    PERFORM chatapp_append_event(NEW.conversation_id, 'message.created', jsonb_build_object(
        'id', NEW.id, 'role', NEW.role, 'content', NEW.content, 'sender_id', NEW.sender_id,
        'kind', NEW.metadata ->> 'kind', 'created_at', NEW.created_at), NEW.role = 'tool');
    IF NEW.role IN ('assistant', 'human_agent') THEN
        SELECT channel INTO v_channel FROM chatapp_conversations WHERE id = NEW.conversation_id;
        IF v_channel NOT IN ('web', 'custom') THEN
            INSERT INTO chatapp_channel_deliveries (message_id, company_id, conversation_id)
            VALUES (NEW.id, NEW.company_id, NEW.conversation_id);
            PERFORM chatapp_outbox_add('channel-send', jsonb_build_object(
                'company_id', NEW.company_id, 'message_id', NEW.id));
        END IF;
    END IF;
    RETURN NULL;
END
$$;

-- Stores one inbound message in the caller's tenant transaction, in one round trip: the
-- conversation's thread is locked (two messages of one thread never open two conversations),
-- a provider id already stored returns no row (a redelivery: nothing written, no second turn),
-- the sender is matched to the company's customer by the channel's id of the person (then by
-- phone or email), the open conversation of the thread is reused or a new one started, and
-- the turn's job goes into the outbox with the row.
CREATE FUNCTION chatapp_channel_store_inbound(
    p_config uuid, p_agent uuid, p_channel channel_type, p_provider_id text, p_thread text,
    p_sender_id text, p_sender_name text, p_sender_phone text, p_sender_email text,
    p_content text, p_attachments jsonb, p_sender jsonb, p_reply_context jsonb, p_sent_at timestamptz,
    p_session_token text)
    RETURNS TABLE (inbound_id uuid, conversation_id uuid, new_conversation boolean)
    LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    v_company  uuid := chatapp_current_company_id();
    v_customer uuid;
    v_conv     uuid;
    v_new      boolean := false;
    v_id       uuid;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_config::text || ':' || p_thread, 0));
    IF EXISTS (SELECT 1 FROM chatapp_channel_inbound i
               WHERE i.channel_config_id = p_config AND i.provider_message_id = p_provider_id) THEN
        RETURN;
    END IF;
    SELECT c.id INTO v_conv FROM chatapp_conversations c
    WHERE c.company_id = v_company AND c.channel = p_channel AND c.external_id = p_thread
      AND c.context ->> 'channel_config_id' = p_config::text
      AND c.status NOT IN ('resolved', 'abandoned') AND c.deleted_at IS NULL
    ORDER BY c.created_at DESC LIMIT 1;
    IF v_conv IS NULL THEN
        SELECT ci.customer_id INTO v_customer FROM chatapp_channel_identities ci
        WHERE ci.company_id = v_company AND ci.channel = p_channel AND ci.external_user_id = p_sender_id;
        IF v_customer IS NULL AND p_sender_phone IS NOT NULL THEN
            SELECT cu.id INTO v_customer FROM chatapp_customers cu
            WHERE cu.company_id = v_company AND cu.phone = p_sender_phone ORDER BY cu.created_at LIMIT 1;
        END IF;
        IF v_customer IS NULL AND p_sender_email IS NOT NULL THEN
            SELECT cu.id INTO v_customer FROM chatapp_customers cu
            WHERE cu.company_id = v_company AND lower(cu.email) = lower(p_sender_email) ORDER BY cu.created_at LIMIT 1;
        END IF;
        IF v_customer IS NULL THEN
            INSERT INTO chatapp_customers (company_id, name, phone, email, channel_ids, last_seen_at,
                                           total_conversations, last_conversation_at)
            VALUES (v_company, p_sender_name, p_sender_phone, p_sender_email,
                    jsonb_build_object(p_channel::text, p_sender_id), now(), 1, now())
            RETURNING id INTO v_customer;
        ELSE
            UPDATE chatapp_customers
            SET channel_ids = COALESCE(channel_ids, '{}'::jsonb) || jsonb_build_object(p_channel::text, p_sender_id),
                name = COALESCE(name, p_sender_name), phone = COALESCE(phone, p_sender_phone),
                email = COALESCE(email, p_sender_email), last_seen_at = now(), last_conversation_at = now(),
                total_conversations = COALESCE(total_conversations, 0) + 1, updated_at = now()
            WHERE id = v_customer;
        END IF;
        INSERT INTO chatapp_channel_identities (company_id, channel, external_user_id, customer_id)
        VALUES (v_company, p_channel, p_sender_id, v_customer) ON CONFLICT DO NOTHING;
        INSERT INTO chatapp_conversations (company_id, agent_id, session_token, channel, customer_id, customer_name,
                                           customer_email, customer_phone, external_id, context)
        VALUES (v_company, p_agent, p_session_token, p_channel, v_customer::text, p_sender_name, p_sender_email,
                p_sender_phone, p_thread, jsonb_build_object('channel_config_id', p_config))
        RETURNING id INTO v_conv;
        -- The agent's conversation counter is bumped by the caller after commit: every new
        -- conversation of an agent would otherwise queue on that one row for its whole
        -- transaction.
        v_new := true;
    END IF;
    INSERT INTO chatapp_channel_inbound (company_id, channel_config_id, provider_message_id, conversation_id, content,
                                         attachments, sender, reply_context, sent_at, opens_conversation)
    VALUES (v_company, p_config, p_provider_id, v_conv, p_content, p_attachments, p_sender, p_reply_context, p_sent_at,
            v_new)
    RETURNING id INTO v_id;
    PERFORM chatapp_outbox_add('channel-turn', jsonb_build_object('company_id', v_company, 'inbound_id', v_id));
    RETURN QUERY SELECT v_id, v_conv, v_new;
END
$$;
GRANT EXECUTE ON FUNCTION chatapp_channel_store_inbound(uuid, uuid, channel_type, text, text, text, text, text, text,
    text, jsonb, jsonb, jsonb, timestamptz, text) TO chatapp_app;
