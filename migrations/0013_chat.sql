-- 0013: the chat turn over the widget and the public API (issue 4).

-- Identity verification: the site signs the customer's identifier with this secret
-- (hex HMAC-SHA256); when required, a session without a valid signature is refused.
ALTER TABLE chatapp_widget_configs
    ADD COLUMN identity_secret  varchar(64),
    ADD COLUMN require_identity boolean NOT NULL DEFAULT false;

-- A client message id makes a retried send idempotent within its conversation.
ALTER TABLE chatapp_messages ADD COLUMN client_message_id varchar(100);
CREATE UNIQUE INDEX messages_client_message_idx ON chatapp_messages (conversation_id, client_message_id)
    WHERE client_message_id IS NOT NULL;

ALTER TABLE chatapp_customers ADD COLUMN last_seen_at timestamptz;
CREATE UNIQUE INDEX customers_company_external_key ON chatapp_customers (company_id, external_id)
    WHERE external_id IS NOT NULL;

-- One usage row per company, agent and calendar month (UTC).
CREATE UNIQUE INDEX usage_records_period_idx ON chatapp_usage_records
    (company_id, COALESCE(agent_id, '00000000-0000-0000-0000-000000000000'::uuid), period_start);
