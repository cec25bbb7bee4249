-- 0018: messages carry their company, so their tenant check is a column comparison.
-- Until now a message was visible when its conversation was: the policy's EXISTS subquery ran
-- once per message row read, an index lookup each (a chat turn's history and message count of
-- a 40-message conversation paid 56 of them, about a third of those statements' time).
-- The company now sits on the row, kept equal to its conversation's by a composite foreign key
-- (FK checks bypass RLS, so a message cannot point into another tenant's conversation even by
-- uuid); the conversation lookup stays only for support agents, whose scope is per conversation.

ALTER TABLE chatapp_messages ADD COLUMN company_id uuid;
UPDATE chatapp_messages m SET company_id = c.company_id FROM chatapp_conversations c WHERE c.id = m.conversation_id;
-- Inside a tenant transaction the company need not be named; the WITH CHECK below insists on it anyway.
ALTER TABLE chatapp_messages
    ALTER COLUMN company_id SET DEFAULT chatapp_current_company_id(),
    ALTER COLUMN company_id SET NOT NULL;

ALTER TABLE chatapp_messages DROP CONSTRAINT chatapp_messages_conversation_id_fkey;
ALTER TABLE chatapp_messages ADD CONSTRAINT chatapp_messages_conversation_fkey
    FOREIGN KEY (conversation_id, company_id) REFERENCES chatapp_conversations (id, company_id) ON DELETE CASCADE;
-- Deleting a company cascades through its conversations (the composite FK above); no index of
-- its own is needed on company_id, since every message query goes by conversation.

DROP POLICY tenant_isolation ON chatapp_messages;
CREATE POLICY tenant_isolation ON chatapp_messages FOR ALL
    USING (company_id = chatapp_current_company_id() OR chatapp_is_master_admin())
    WITH CHECK (company_id = chatapp_current_company_id() OR chatapp_is_master_admin());
-- A support agent sees the messages of the conversations they see (their own or unassigned).
CREATE POLICY support_agent_scope ON chatapp_messages AS RESTRICTIVE FOR ALL
    USING (chatapp_current_role() <> 'support_agent'
           OR EXISTS (SELECT 1 FROM chatapp_conversations c WHERE c.id = conversation_id))
    WITH CHECK (chatapp_current_role() <> 'support_agent'
                OR EXISTS (SELECT 1 FROM chatapp_conversations c WHERE c.id = conversation_id));
