-- 0002: core tenancy + identity: companies, users, Auth.js tables, refresh tokens, login attempts.
-- Seed 001 section 2 (+ contract additions: password_hash, refresh tokens, login attempts).

CREATE TYPE user_role AS ENUM ('master_admin', 'company_admin', 'support_agent');

-- ---------------------------------------------------------------------------
-- 2.1 Companies (tenants)
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_companies (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                    varchar(255) NOT NULL,
    slug                    varchar(100) NOT NULL UNIQUE,
    description             text,
    logo_url                varchar(500),
    primary_color           varchar(7) DEFAULT '#007bff',
    secondary_color         varchar(7),
    custom_domain           varchar(255) UNIQUE,
    custom_domain_verified  boolean DEFAULT false,
    timezone                varchar(50) DEFAULT 'UTC',
    locale                  varchar(10) DEFAULT 'en',
    settings                jsonb DEFAULT '{}'::jsonb,
    status                  varchar(20) NOT NULL DEFAULT 'active'
                            CONSTRAINT chatapp_companies_status_check
                            CHECK (status IN ('active', 'suspended', 'pending', 'deleted')),
    api_key_hash            varchar(255),
    api_key_prefix          varchar(10),
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    deleted_at              timestamptz
);

CREATE INDEX companies_status_idx ON chatapp_companies (status);

ALTER TABLE chatapp_companies ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_companies FORCE ROW LEVEL SECURITY;
CREATE POLICY companies_select ON chatapp_companies FOR SELECT
    USING (id = chatapp_current_company_id() OR chatapp_is_master_admin());
CREATE POLICY companies_update ON chatapp_companies FOR UPDATE
    USING (id = chatapp_current_company_id() OR chatapp_is_master_admin())
    WITH CHECK (id = chatapp_current_company_id() OR chatapp_is_master_admin());
CREATE POLICY companies_insert ON chatapp_companies FOR INSERT
    WITH CHECK (chatapp_is_master_admin());
CREATE POLICY companies_delete ON chatapp_companies FOR DELETE
    USING (chatapp_is_master_admin());

-- ---------------------------------------------------------------------------
-- 2.2 Users
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_users (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email               varchar(255) NOT NULL UNIQUE,
    email_verified      timestamptz,
    name                varchar(255),
    image               varchar(500),
    company_id          uuid REFERENCES chatapp_companies (id) ON DELETE CASCADE,
    role                user_role NOT NULL DEFAULT 'support_agent',
    phone               varchar(20),
    avatar_url          varchar(500),
    permissions         jsonb DEFAULT '{}'::jsonb,
    is_active           boolean NOT NULL DEFAULT true,
    last_login_at       timestamptz,
    ip_allowlist        jsonb DEFAULT '[]'::jsonb,
    access_expires_at   timestamptz,
    password_hash       text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz,
    -- master admins are platform users (no tenant); everybody else belongs to exactly one company
    CONSTRAINT chatapp_users_role_company_check CHECK (
        (role = 'master_admin' AND company_id IS NULL)
        OR (role <> 'master_admin' AND company_id IS NOT NULL)
    ),
    -- target for tenant-consistent composite foreign keys (user must belong to the row's company)
    CONSTRAINT chatapp_users_id_company_key UNIQUE (id, company_id)
);

CREATE UNIQUE INDEX users_email_lower_key ON chatapp_users (lower(email));
CREATE INDEX users_company_idx ON chatapp_users (company_id);
CREATE INDEX users_role_idx ON chatapp_users (role);

ALTER TABLE chatapp_users ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_users FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_users FOR ALL
    USING (company_id = chatapp_current_company_id() OR chatapp_is_master_admin())
    WITH CHECK (company_id = chatapp_current_company_id() OR chatapp_is_master_admin());
-- A user can always read (not modify) their own row, e.g. a master admin (company_id NULL).
CREATE POLICY self_read ON chatapp_users FOR SELECT
    USING (id = chatapp_current_user_id());

-- ---------------------------------------------------------------------------
-- 2.3 Auth.js tables (kept from seed 001; they hang off users)
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_accounts (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id             uuid NOT NULL REFERENCES chatapp_users (id) ON DELETE CASCADE,
    type                varchar(255) NOT NULL,
    provider            varchar(255) NOT NULL,
    provider_account_id varchar(255) NOT NULL,
    refresh_token       text,
    access_token        text,
    expires_at          integer,
    token_type          varchar(255),
    scope               varchar(255),
    id_token            text,
    session_state       varchar(255)
);
CREATE UNIQUE INDEX accounts_provider_idx ON chatapp_accounts (provider, provider_account_id);
CREATE INDEX accounts_user_idx ON chatapp_accounts (user_id);

CREATE TABLE chatapp_sessions (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    session_token   varchar(255) NOT NULL UNIQUE,
    user_id         uuid NOT NULL REFERENCES chatapp_users (id) ON DELETE CASCADE,
    expires         timestamptz NOT NULL
);
CREATE INDEX sessions_user_idx ON chatapp_sessions (user_id);

CREATE TABLE chatapp_verification_tokens (
    identifier  varchar(255) NOT NULL,
    token       varchar(255) NOT NULL UNIQUE,
    expires     timestamptz NOT NULL,
    PRIMARY KEY (identifier, token)
);

-- OAuth accounts / sessions carry provider secrets: owner (or master admin) only.
ALTER TABLE chatapp_accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_accounts FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_access ON chatapp_accounts FOR ALL
    USING (user_id = chatapp_current_user_id() OR chatapp_is_master_admin())
    WITH CHECK (user_id = chatapp_current_user_id() OR chatapp_is_master_admin());

ALTER TABLE chatapp_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_access ON chatapp_sessions FOR ALL
    USING (user_id = chatapp_current_user_id() OR chatapp_is_master_admin())
    WITH CHECK (user_id = chatapp_current_user_id() OR chatapp_is_master_admin());

-- Not tied to a user row; pre-auth use needs a SECURITY DEFINER function (none yet).
ALTER TABLE chatapp_verification_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_verification_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY master_only ON chatapp_verification_tokens FOR ALL
    USING (chatapp_is_master_admin())
    WITH CHECK (chatapp_is_master_admin());

-- ---------------------------------------------------------------------------
-- Refresh tokens (contract addition; rotation families)
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_refresh_tokens (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES chatapp_users (id) ON DELETE CASCADE,
    company_id  uuid REFERENCES chatapp_companies (id) ON DELETE CASCADE,
    token_hash  varchar(64) NOT NULL UNIQUE
                CONSTRAINT chatapp_refresh_tokens_hash_check CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    family_id   uuid NOT NULL,
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    replaced_by uuid,
    ip_address  inet,
    user_agent  varchar(500),
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- a tenant token must carry its user's company
    CONSTRAINT chatapp_refresh_tokens_user_company_fkey FOREIGN KEY (user_id, company_id)
        REFERENCES chatapp_users (id, company_id) ON DELETE CASCADE
);
CREATE INDEX refresh_tokens_company_idx ON chatapp_refresh_tokens (company_id);
CREATE INDEX refresh_tokens_user_idx ON chatapp_refresh_tokens (user_id);
CREATE INDEX refresh_tokens_family_idx ON chatapp_refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expires_idx ON chatapp_refresh_tokens (expires_at);

ALTER TABLE chatapp_refresh_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_refresh_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_refresh_tokens FOR ALL
    USING (company_id = chatapp_current_company_id() OR chatapp_is_master_admin()
           OR user_id = chatapp_current_user_id())
    WITH CHECK (company_id = chatapp_current_company_id() OR chatapp_is_master_admin()
                OR user_id = chatapp_current_user_id());

-- ---------------------------------------------------------------------------
-- Login attempts (infrastructure, pre-auth; intentionally NO RLS)
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_login_attempts (
    id          bigserial PRIMARY KEY,
    email       varchar(255) NOT NULL,
    ip_address  inet,
    succeeded   boolean NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_attempts_email_created_idx ON chatapp_login_attempts (email, created_at);
CREATE INDEX login_attempts_ip_created_idx ON chatapp_login_attempts (ip_address, created_at);
