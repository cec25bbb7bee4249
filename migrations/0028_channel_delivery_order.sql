-- Replies of one conversation leave in the order they were written (shared/src/channels/
-- outbound.rs sends the earlier unsettled ones first). `seq` is that order: `created_at` cannot
-- be, two replies written in one transaction share it.
ALTER TABLE chatapp_channel_deliveries ADD COLUMN seq bigserial;
GRANT USAGE, SELECT ON SEQUENCE chatapp_channel_deliveries_seq_seq TO chatapp_app;
CREATE INDEX channel_deliveries_unsettled_idx ON chatapp_channel_deliveries (conversation_id, seq)
    WHERE status IN ('pending', 'sending');
