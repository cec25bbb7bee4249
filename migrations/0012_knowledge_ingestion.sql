-- 0012: knowledge ingestion state (issue 3).
-- 'queued' = uploaded and waiting for the ingestion worker; 'pending' stays "awaiting upload".
ALTER TYPE file_status ADD VALUE IF NOT EXISTS 'queued' AFTER 'pending';

-- SHA-256 of the uploaded bytes / of each chunk's text: identical content is never embedded twice.
ALTER TABLE chatapp_knowledge_files
    ADD COLUMN content_hash    varchar(64),
    ADD COLUMN ingest_attempts integer NOT NULL DEFAULT 0;
ALTER TABLE chatapp_knowledge_chunks
    ADD COLUMN content_hash varchar(64),
    ADD COLUMN category_id  uuid;
CREATE INDEX knowledge_chunks_company_hash_idx ON chatapp_knowledge_chunks (company_id, content_hash);

-- Embeddings by content hash and model, per company (never shared across tenants).
CREATE TABLE chatapp_embedding_cache (
    company_id   uuid NOT NULL REFERENCES chatapp_companies (id) ON DELETE CASCADE,
    model        varchar(100) NOT NULL,
    content_hash varchar(64) NOT NULL,
    embedding    real[] NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, model, content_hash)
);
ALTER TABLE chatapp_embedding_cache ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_embedding_cache FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_embedding_cache FOR ALL
    USING (company_id = chatapp_current_company_id() OR chatapp_is_master_admin())
    WITH CHECK (company_id = chatapp_current_company_id() OR chatapp_is_master_admin());
GRANT SELECT, INSERT, UPDATE, DELETE ON chatapp_embedding_cache TO chatapp_app;
