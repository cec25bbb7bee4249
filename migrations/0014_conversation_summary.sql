-- 0014: the running summary of long conversations (issue 4). `summary` (0005) holds it;
-- this counts the messages, oldest first, that it already covers, so each turn folds in only
-- what has newly left the model's history window.
ALTER TABLE chatapp_conversations ADD COLUMN summarized_messages integer NOT NULL DEFAULT 0;
