-- 0001: application role, per-transaction tenant context helpers, shared trigger functions.
-- Applied once, inside a transaction, by the migration runner (owner / superuser role).

-- Application login role. Roles are cluster-wide, so it may already exist.
DO $$
DECLARE
    r record;
BEGIN
    SELECT rolsuper, rolbypassrls INTO r FROM pg_roles WHERE rolname = 'chatapp_app';
    IF NOT FOUND THEN
        CREATE ROLE chatapp_app WITH LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    ELSIF r.rolsuper OR r.rolbypassrls THEN
        -- RLS would silently not apply; refuse to continue rather than ship an open database.
        RAISE EXCEPTION 'role chatapp_app exists but is SUPERUSER or BYPASSRLS; fix the role before migrating';
    END IF;
END
$$;

-- Tenant context. The application sets these with set_config(..., true) (transaction-local)
-- at the start of every transaction. Missing / empty settings mean "no tenant", which makes
-- every tenant-scoped policy evaluate to false.
CREATE OR REPLACE FUNCTION chatapp_current_company_id() RETURNS uuid
    LANGUAGE sql STABLE
AS $$ SELECT NULLIF(current_setting('app.current_company_id', true), '')::uuid $$;

CREATE OR REPLACE FUNCTION chatapp_current_user_id() RETURNS uuid
    LANGUAGE sql STABLE
AS $$ SELECT NULLIF(current_setting('app.current_user_id', true), '')::uuid $$;

CREATE OR REPLACE FUNCTION chatapp_current_role() RETURNS text
    LANGUAGE sql STABLE
AS $$ SELECT COALESCE(current_setting('app.user_role', true), '') $$;

CREATE OR REPLACE FUNCTION chatapp_is_master_admin() RETURNS boolean
    LANGUAGE sql STABLE
AS $$ SELECT chatapp_current_role() = 'master_admin' $$;

-- Generic updated_at maintenance: bumps updated_at on UPDATE unless the statement set it
-- explicitly. Attached to every table with an updated_at column in the last migration file.
CREATE OR REPLACE FUNCTION chatapp_set_updated_at() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$;
