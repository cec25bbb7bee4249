-- A channel reply's delivery status is a state change of its conversation: each change to
-- sent, delivered, read or failed appends a `message.delivery` event (seq, LISTEN/NOTIFY, and
-- through the outbox to the company's outbound webhooks subscribed to it), so the inbox and
-- integrators learn that a customer got (or did not get) a reply without polling.
-- `pending` and `sending` are the sender's own bookkeeping and make no event.
--
-- Deferred to the commit: the event takes the conversation's row lock, and taking it while the
-- transaction still goes on to lock other delivery rows (a webhook applying several receipts,
-- the sender recording a part) would lock delivery then conversation where other transactions
-- lock them the other way round. At commit no further delivery row is waited for.
CREATE FUNCTION chatapp_delivery_event() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM chatapp_append_event(NEW.conversation_id, 'message.delivery', jsonb_build_object(
        'message_id', NEW.message_id, 'status', NEW.status, 'parts_sent', NEW.parts_sent,
        'parts_total', NEW.parts_total, 'error_code', NEW.error_code, 'error', NEW.error), false);
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER channel_delivery_event
    AFTER UPDATE OF status ON chatapp_channel_deliveries
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.status IN ('sent', 'delivered', 'read', 'failed'))
    EXECUTE FUNCTION chatapp_delivery_event();

