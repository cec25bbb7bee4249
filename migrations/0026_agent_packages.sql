-- 0026: agent packages managed by the master admin (functions/agent-packages).
--
-- A package may exist without a bundle: `package_url` and `package_hash` become nullable. When
-- the master admin uploads a bundle it is stored in the blob store under its SHA-256
-- (`<nil uuid>/packages/<sha256 hex>`, the platform's own objects) and `package_url` holds that
-- object key; a declared `package_hash` is what an upload must match. Seeded built-in packages
-- keep their `builtin://` URL.
ALTER TABLE chatapp_agent_packages ALTER COLUMN package_url DROP NOT NULL;
ALTER TABLE chatapp_agent_packages ALTER COLUMN package_hash DROP NOT NULL;

-- The tools the package enables; kept equal to `default_config.enabledTools`, which is what an
-- agent made from the package copies.
ALTER TABLE chatapp_agent_packages ADD COLUMN IF NOT EXISTS enabled_tools jsonb NOT NULL DEFAULT '[]'::jsonb;

-- `usage_count` is not maintained by the agents function: the API reports the number of agents
-- made from a package, counted (see chatapp::repo::packages).

-- ---------------------------------------------------------------------------
-- Versions: a snapshot of what each version of a package held. Agents already made from a
-- package keep their own copy of its configuration; a new version changes what new agents get.
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_agent_package_versions (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    package_id      uuid NOT NULL REFERENCES chatapp_agent_packages (id) ON DELETE CASCADE,
    version         varchar(20) NOT NULL,
    capabilities    jsonb NOT NULL DEFAULT '[]'::jsonb,
    default_config  jsonb NOT NULL DEFAULT '{}'::jsonb,
    enabled_tools   jsonb NOT NULL DEFAULT '[]'::jsonb,
    documentation   text,
    changelog       text,
    package_hash    varchar(64),
    package_size    integer,
    created_by      uuid REFERENCES chatapp_users (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chatapp_agent_package_versions_package_version_key UNIQUE (package_id, version)
);
CREATE INDEX agent_package_versions_hash_idx ON chatapp_agent_package_versions (package_hash);
CREATE INDEX agent_packages_hash_idx ON chatapp_agent_packages (package_hash);

-- Global, like the packages: everyone reads, the master admin writes.
ALTER TABLE chatapp_agent_package_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_agent_package_versions FORCE ROW LEVEL SECURITY;
CREATE POLICY global_read ON chatapp_agent_package_versions FOR SELECT USING (true);
CREATE POLICY master_insert ON chatapp_agent_package_versions FOR INSERT WITH CHECK (chatapp_is_master_admin());
CREATE POLICY master_update ON chatapp_agent_package_versions FOR UPDATE
    USING (chatapp_is_master_admin()) WITH CHECK (chatapp_is_master_admin());
CREATE POLICY master_delete ON chatapp_agent_package_versions FOR DELETE USING (chatapp_is_master_admin());
GRANT SELECT, INSERT, UPDATE, DELETE ON chatapp_agent_package_versions TO chatapp_app;

-- Packages that already exist (a database migrated before this file): their tools from their
-- default configuration, and their current version as the first row of their history. Row-level
-- security applies to the owner too (FORCE): act as the master admin for this transaction.
SELECT set_config('app.user_role', 'master_admin', true);
UPDATE chatapp_agent_packages
   SET enabled_tools = default_config -> 'enabledTools'
 WHERE jsonb_typeof(default_config -> 'enabledTools') = 'array';
INSERT INTO chatapp_agent_package_versions
    (package_id, version, capabilities, default_config, enabled_tools, documentation, changelog,
     package_hash, package_size, created_at)
SELECT id, version, COALESCE(capabilities, '[]'::jsonb), COALESCE(default_config, '{}'::jsonb), enabled_tools,
       documentation, changelog, package_hash, package_size, COALESCE(published_at, created_at)
  FROM chatapp_agent_packages
ON CONFLICT (package_id, version) DO NOTHING;
SELECT set_config('app.user_role', '', true);
