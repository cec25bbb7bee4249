-- 0004: knowledge base. Seed 001 section 5 + 3.3, authored text articles (seed 000) and
-- platform-wide global knowledge (seed 003: company_id IS NULL) for articles and their chunks.
-- Vectors live in Qdrant (seed 001); chunks only keep metadata + qdrant_id.

CREATE TYPE file_status AS ENUM ('pending', 'processing', 'indexed', 'failed');
CREATE TYPE article_status AS ENUM ('draft', 'published');

-- ---------------------------------------------------------------------------
-- 5.1 Knowledge categories (tenant)
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_knowledge_categories (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id  uuid NOT NULL REFERENCES chatapp_companies (id) ON DELETE CASCADE,
    name        varchar(255) NOT NULL,
    slug        varchar(100) NOT NULL,
    description text,
    parent_id   uuid,
    sort_order  integer DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chatapp_knowledge_categories_id_company_key UNIQUE (id, company_id),
    CONSTRAINT chatapp_knowledge_categories_parent_fkey FOREIGN KEY (parent_id, company_id)
        REFERENCES chatapp_knowledge_categories (id, company_id) ON DELETE SET NULL (parent_id)
);
CREATE INDEX knowledge_cat_company_idx ON chatapp_knowledge_categories (company_id);
CREATE UNIQUE INDEX knowledge_cat_company_slug_idx ON chatapp_knowledge_categories (company_id, slug);
CREATE INDEX knowledge_cat_parent_idx ON chatapp_knowledge_categories (parent_id);

ALTER TABLE chatapp_knowledge_categories ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_knowledge_categories FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_knowledge_categories FOR ALL
    USING (company_id = chatapp_current_company_id() OR chatapp_is_master_admin())
    WITH CHECK (company_id = chatapp_current_company_id() OR chatapp_is_master_admin());

-- ---------------------------------------------------------------------------
-- 5.2 Knowledge files (tenant)
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_knowledge_files (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id          uuid NOT NULL REFERENCES chatapp_companies (id) ON DELETE CASCADE,
    category_id         uuid NOT NULL,
    filename            varchar(255) NOT NULL,
    original_filename   varchar(255) NOT NULL,
    mime_type           varchar(100) NOT NULL,
    size                integer NOT NULL,
    storage_path        varchar(500) NOT NULL,
    storage_url         varchar(500),
    status              file_status NOT NULL DEFAULT 'pending',
    processing_error    text,
    chunk_count         integer DEFAULT 0,
    qdrant_collection   varchar(255),
    metadata            jsonb DEFAULT '{}'::jsonb,
    uploaded_by         uuid REFERENCES chatapp_users (id) ON DELETE SET NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    indexed_at          timestamptz,
    CONSTRAINT chatapp_knowledge_files_id_company_key UNIQUE (id, company_id),
    CONSTRAINT chatapp_knowledge_files_category_fkey FOREIGN KEY (category_id, company_id)
        REFERENCES chatapp_knowledge_categories (id, company_id) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX knowledge_files_company_idx ON chatapp_knowledge_files (company_id);
CREATE INDEX knowledge_files_category_idx ON chatapp_knowledge_files (category_id);
CREATE INDEX knowledge_files_status_idx ON chatapp_knowledge_files (status);
-- seed 001 section 12: processing queue
CREATE INDEX idx_knowledge_files_pending ON chatapp_knowledge_files (created_at) WHERE status = 'pending';

ALTER TABLE chatapp_knowledge_files ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_knowledge_files FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_knowledge_files FOR ALL
    USING (company_id = chatapp_current_company_id() OR chatapp_is_master_admin())
    WITH CHECK (company_id = chatapp_current_company_id() OR chatapp_is_master_admin());

-- ---------------------------------------------------------------------------
-- Knowledge articles: authored text (draft/published). company_id NULL = global knowledge.
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_knowledge_articles (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id          uuid REFERENCES chatapp_companies (id) ON DELETE CASCADE,
    category_id         uuid,
    title               varchar(255) NOT NULL,
    content             text NOT NULL,
    tags                jsonb NOT NULL DEFAULT '[]'::jsonb,
    status              article_status NOT NULL DEFAULT 'draft',
    is_active           boolean NOT NULL DEFAULT true,
    effectiveness_score numeric(5, 2) NOT NULL DEFAULT 0,
    usage_count         integer NOT NULL DEFAULT 0,
    chunk_count         integer NOT NULL DEFAULT 0,
    created_by          uuid REFERENCES chatapp_users (id) ON DELETE SET NULL,
    updated_by          uuid REFERENCES chatapp_users (id) ON DELETE SET NULL,
    published_at        timestamptz,
    indexed_at          timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chatapp_knowledge_articles_id_company_key UNIQUE (id, company_id),
    -- tenant categories only; global articles are uncategorised (tags instead)
    CONSTRAINT chatapp_knowledge_articles_global_category_check
        CHECK (company_id IS NOT NULL OR category_id IS NULL),
    CONSTRAINT chatapp_knowledge_articles_category_fkey FOREIGN KEY (category_id, company_id)
        REFERENCES chatapp_knowledge_categories (id, company_id) ON DELETE SET NULL (category_id)
);
CREATE INDEX knowledge_articles_company_idx ON chatapp_knowledge_articles (company_id);
CREATE INDEX knowledge_articles_company_status_idx ON chatapp_knowledge_articles (company_id, status);
CREATE INDEX knowledge_articles_category_idx ON chatapp_knowledge_articles (category_id);
CREATE INDEX knowledge_articles_global_idx ON chatapp_knowledge_articles (status)
    WHERE company_id IS NULL AND is_active;

ALTER TABLE chatapp_knowledge_articles ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_knowledge_articles FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_knowledge_articles FOR ALL
    USING (company_id = chatapp_current_company_id() OR chatapp_is_master_admin())
    WITH CHECK (company_id = chatapp_current_company_id() OR chatapp_is_master_admin());
-- global knowledge: readable by everyone, writable only through tenant_isolation (= master)
CREATE POLICY global_read ON chatapp_knowledge_articles FOR SELECT
    USING (company_id IS NULL);

-- ---------------------------------------------------------------------------
-- 5.3 Knowledge chunks (metadata for Qdrant points). Source = file OR article.
-- company_id NULL only for chunks of global articles.
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_knowledge_chunks (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    file_id         uuid,
    article_id      uuid REFERENCES chatapp_knowledge_articles (id) ON DELETE CASCADE,
    company_id      uuid REFERENCES chatapp_companies (id) ON DELETE CASCADE,
    chunk_index     integer NOT NULL,
    content         text NOT NULL,
    start_offset    integer,
    end_offset      integer,
    page_number     integer,
    section_title   varchar(255),
    qdrant_id       varchar(36),
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chatapp_knowledge_chunks_one_source_check CHECK (num_nonnulls(file_id, article_id) = 1),
    CONSTRAINT chatapp_knowledge_chunks_global_source_check CHECK (company_id IS NOT NULL OR file_id IS NULL),
    CONSTRAINT chatapp_knowledge_chunks_file_fkey FOREIGN KEY (file_id, company_id)
        REFERENCES chatapp_knowledge_files (id, company_id) ON DELETE CASCADE,
    CONSTRAINT chatapp_knowledge_chunks_article_company_fkey FOREIGN KEY (article_id, company_id)
        REFERENCES chatapp_knowledge_articles (id, company_id) ON DELETE CASCADE
);
CREATE INDEX knowledge_chunks_file_idx ON chatapp_knowledge_chunks (file_id);
CREATE INDEX knowledge_chunks_article_idx ON chatapp_knowledge_chunks (article_id);
CREATE INDEX knowledge_chunks_company_idx ON chatapp_knowledge_chunks (company_id);
CREATE INDEX knowledge_chunks_qdrant_idx ON chatapp_knowledge_chunks (qdrant_id);

-- A global chunk (company_id NULL) escapes the composite FKs above (MATCH SIMPLE), so make
-- sure it can only belong to a global article (never leak tenant text as global knowledge).
CREATE OR REPLACE FUNCTION chatapp_knowledge_chunks_check_global() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF NEW.company_id IS NULL AND NOT EXISTS (
        SELECT 1 FROM chatapp_knowledge_articles a
        WHERE a.id = NEW.article_id AND a.company_id IS NULL
    ) THEN
        RAISE EXCEPTION 'global knowledge chunk must reference a global article (article_id %)', NEW.article_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER knowledge_chunks_check_global
    BEFORE INSERT OR UPDATE OF company_id, article_id ON chatapp_knowledge_chunks
    FOR EACH ROW EXECUTE FUNCTION chatapp_knowledge_chunks_check_global();

ALTER TABLE chatapp_knowledge_chunks ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_knowledge_chunks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_knowledge_chunks FOR ALL
    USING (company_id = chatapp_current_company_id() OR chatapp_is_master_admin())
    WITH CHECK (company_id = chatapp_current_company_id() OR chatapp_is_master_admin());
CREATE POLICY global_read ON chatapp_knowledge_chunks FOR SELECT
    USING (company_id IS NULL);

-- ---------------------------------------------------------------------------
-- 3.3 Agent <-> knowledge category assignments (tenant child; no company_id in seed 001)
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_agent_knowledge_categories (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id    uuid NOT NULL REFERENCES chatapp_agents (id) ON DELETE CASCADE,
    category_id uuid NOT NULL REFERENCES chatapp_knowledge_categories (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX agent_knowledge_cat_idx ON chatapp_agent_knowledge_categories (agent_id, category_id);
CREATE INDEX agent_knowledge_cat_category_idx ON chatapp_agent_knowledge_categories (category_id);

-- seed 001 has no company_id here, so guard that agent and category belong to the same tenant
CREATE OR REPLACE FUNCTION chatapp_agent_knowledge_categories_check_tenant() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF (SELECT company_id FROM chatapp_agents WHERE id = NEW.agent_id)
       IS DISTINCT FROM
       (SELECT company_id FROM chatapp_knowledge_categories WHERE id = NEW.category_id) THEN
        RAISE EXCEPTION 'agent % and knowledge category % belong to different companies', NEW.agent_id, NEW.category_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER agent_knowledge_categories_check_tenant
    BEFORE INSERT OR UPDATE ON chatapp_agent_knowledge_categories
    FOR EACH ROW EXECUTE FUNCTION chatapp_agent_knowledge_categories_check_tenant();

-- Follows both parents (their RLS applies inside EXISTS): both must be visible, i.e. same tenant.
ALTER TABLE chatapp_agent_knowledge_categories ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_agent_knowledge_categories FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_agent_knowledge_categories FOR ALL
    USING (EXISTS (SELECT 1 FROM chatapp_agents a WHERE a.id = agent_id)
           AND EXISTS (SELECT 1 FROM chatapp_knowledge_categories k WHERE k.id = category_id))
    WITH CHECK (EXISTS (SELECT 1 FROM chatapp_agents a WHERE a.id = agent_id)
                AND EXISTS (SELECT 1 FROM chatapp_knowledge_categories k WHERE k.id = category_id));
