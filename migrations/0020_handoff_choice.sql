-- 0020: the customer may choose a person instead of the AI (issue: "when the agent's settings
-- allow, lets the customer choose AI or a person, tied to business hours").
--
-- A per-widget setting, off by default: a company that has no one to answer (or wants the AI to
-- try first) must opt in before its customers can skip the AI. When it is on, the widget shows
-- "Talk to a person"; within the agent's business hours that queues the conversation for a
-- support agent (escalation trigger `customer_choice`), outside them it offers to leave an email
-- and a message instead (trigger `offline_message`). NOT NULL with a default, so existing rows
-- read false and no code has to tell "unset" from "off".
ALTER TABLE chatapp_widget_configs
    ADD COLUMN human_handoff_button boolean NOT NULL DEFAULT false;
