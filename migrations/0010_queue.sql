-- 0010: embedded job queue (infrastructure; NO RLS - payloads carry company ids and workers
-- set tenant context per job). Pattern from seed 002 jobs / failed_jobs.

CREATE TABLE chatapp_jobs (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    queue           varchar(100) NOT NULL,
    payload         jsonb NOT NULL,
    receive_count   integer NOT NULL DEFAULT 0,
    max_receives    integer NOT NULL DEFAULT 5,
    visible_at      timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_error      text
);
-- dequeue: WHERE queue = $1 AND visible_at <= now() ORDER BY visible_at FOR UPDATE SKIP LOCKED
CREATE INDEX jobs_queue_visible_idx ON chatapp_jobs (queue, visible_at);

CREATE TABLE chatapp_failed_jobs (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),   -- normally the original job id
    queue               varchar(100) NOT NULL,
    payload             jsonb NOT NULL,
    receive_count       integer NOT NULL DEFAULT 0,
    error               text,
    failed_at           timestamptz NOT NULL DEFAULT now(),
    original_created_at timestamptz
);
CREATE INDEX failed_jobs_queue_failed_idx ON chatapp_failed_jobs (queue, failed_at);
