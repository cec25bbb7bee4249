-- 0017: fewer index entries written per chat turn. Every turn inserts two messages and updates
-- its conversation; each index on those tables is one more entry (and WAL record) per write,
-- and every turn's COMMIT waits for that WAL to reach the disk.

-- Messages: seven indexes maintained on every insert, three of them redundant.
-- (conversation_id) is the prefix of (conversation_id, created_at); the DESC copy of that index
-- is the same B-tree read backwards; `role` has five values and no query filters on it alone.
DROP INDEX messages_conversation_idx;
DROP INDEX idx_messages_conversation_created;
DROP INDEX messages_role_idx;
-- History and summary reads order by (created_at, id): with the id in the index they need no sort.
DROP INDEX messages_conv_created_idx;
CREATE INDEX messages_conversation_order_idx ON chatapp_messages (conversation_id, created_at, id);
-- Only messages written by a human agent have a sender; the rest need no entry. (The foreign
-- key's `sender_id = $1` lookups imply NOT NULL, so they still use it.)
DROP INDEX messages_sender_idx;
CREATE INDEX messages_sender_idx ON chatapp_messages (sender_id) WHERE sender_id IS NOT NULL;

-- Conversations: the turn's counter update sets last_message_at, and an index on it made every
-- such update a non-HOT one, writing a new entry into each of the table's thirteen indexes.
-- Without it the update is HOT (same page, no index entries) while the page has room; the
-- fillfactor keeps room on new pages. Nothing orders by last_message_at yet; an inbox sorted by
-- recency reads one company's conversations through (company_id, ...) indexes and sorts them.
DROP INDEX conversations_last_message_idx;
ALTER TABLE chatapp_conversations SET (fillfactor = 85);
