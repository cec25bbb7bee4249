-- The assignment logic of the escalation rule that fired, copied onto its escalation when the
-- turn writes it (shared/src/repo/chat.rs), so the escalation worker (shared/src/handoff/
-- assign.rs) follows it: `round_robin` (least recently assigned first, whatever the load),
-- `least_busy` (the default: fewest conversations first), `specific_agent` (that person while
-- online; anyone when they are away or offline, so a customer never waits on an absent person).
ALTER TABLE chatapp_escalations
    ADD COLUMN assignment_strategy text
        CONSTRAINT chatapp_escalations_assignment_strategy_check
        CHECK (assignment_strategy IN ('round_robin', 'least_busy', 'specific_agent')),
    ADD COLUMN preferred_assignee uuid,
    ADD CONSTRAINT chatapp_escalations_preferred_assignee_fkey FOREIGN KEY (preferred_assignee, company_id)
        REFERENCES chatapp_users (id, company_id) ON DELETE SET NULL (preferred_assignee);
