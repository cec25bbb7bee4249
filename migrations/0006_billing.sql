-- 0006: subscription plans (global), company subscriptions and usage records (seed 001 section 6).

CREATE TYPE subscription_status AS ENUM ('trial', 'active', 'past_due', 'grace_period', 'expired', 'cancelled');

-- ---------------------------------------------------------------------------
-- 6.1 Subscription plans (global reference data, master managed)
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_subscription_plans (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name            varchar(255) NOT NULL,
    slug            varchar(100) NOT NULL UNIQUE,
    description     text,
    base_price      numeric(10, 2) NOT NULL,
    setup_fee       numeric(10, 2) DEFAULT 0,
    currency        varchar(3) DEFAULT 'USD',
    billing_cycle   varchar(20) NOT NULL
                    CONSTRAINT chatapp_subscription_plans_billing_cycle_check
                    CHECK (billing_cycle IN ('monthly', 'quarterly', 'semi_annual', 'annual')),
    limits          jsonb NOT NULL DEFAULT '{}'::jsonb,
    features        jsonb DEFAULT '[]'::jsonb,
    is_active       boolean DEFAULT true,
    is_public       boolean DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE chatapp_subscription_plans ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_subscription_plans FORCE ROW LEVEL SECURITY;
CREATE POLICY global_read ON chatapp_subscription_plans FOR SELECT USING (true);
CREATE POLICY master_insert ON chatapp_subscription_plans FOR INSERT WITH CHECK (chatapp_is_master_admin());
CREATE POLICY master_update ON chatapp_subscription_plans FOR UPDATE
    USING (chatapp_is_master_admin()) WITH CHECK (chatapp_is_master_admin());
CREATE POLICY master_delete ON chatapp_subscription_plans FOR DELETE USING (chatapp_is_master_admin());

-- ---------------------------------------------------------------------------
-- 6.2 Company subscriptions (tenant)
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_company_subscriptions (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id              uuid NOT NULL REFERENCES chatapp_companies (id) ON DELETE CASCADE,
    plan_id                 uuid NOT NULL REFERENCES chatapp_subscription_plans (id),
    custom_price            numeric(10, 2),
    custom_setup_fee        numeric(10, 2),
    custom_limits           jsonb DEFAULT '{}'::jsonb,
    status                  subscription_status NOT NULL DEFAULT 'trial',
    trial_ends_at           timestamptz,
    starts_at               timestamptz NOT NULL,
    expires_at              timestamptz NOT NULL,
    grace_period_ends_at    timestamptz,
    cancelled_at            timestamptz,
    grace_period_days       integer DEFAULT 7,
    auto_renew              boolean DEFAULT true,
    notes                   text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_company_idx ON chatapp_company_subscriptions (company_id);
CREATE INDEX subscriptions_status_idx ON chatapp_company_subscriptions (status);
CREATE INDEX subscriptions_expires_at_idx ON chatapp_company_subscriptions (expires_at);
CREATE INDEX subscriptions_plan_idx ON chatapp_company_subscriptions (plan_id);
-- seed 001 section 12
CREATE INDEX idx_subscriptions_company_active ON chatapp_company_subscriptions (company_id)
    WHERE status IN ('active', 'trial');
CREATE INDEX idx_subscriptions_expires_soon ON chatapp_company_subscriptions (expires_at)
    WHERE status = 'active';

ALTER TABLE chatapp_company_subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_company_subscriptions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_company_subscriptions FOR ALL
    USING (company_id = chatapp_current_company_id() OR chatapp_is_master_admin())
    WITH CHECK (company_id = chatapp_current_company_id() OR chatapp_is_master_admin());

-- ---------------------------------------------------------------------------
-- 6.3 Usage records (tenant)
-- ---------------------------------------------------------------------------
CREATE TABLE chatapp_usage_records (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id          uuid NOT NULL REFERENCES chatapp_companies (id) ON DELETE CASCADE,
    agent_id            uuid,
    period_start        timestamptz NOT NULL,
    period_end          timestamptz NOT NULL,
    message_count       integer DEFAULT 0,
    ai_response_count   integer DEFAULT 0,
    token_count         integer DEFAULT 0,
    storage_bytes       bigint DEFAULT 0,
    api_calls           integer DEFAULT 0,
    estimated_cost      numeric(10, 4),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chatapp_usage_records_agent_fkey FOREIGN KEY (agent_id, company_id)
        REFERENCES chatapp_agents (id, company_id) ON DELETE SET NULL (agent_id)
);
CREATE INDEX usage_company_period_idx ON chatapp_usage_records (company_id, period_start);
CREATE INDEX usage_agent_idx ON chatapp_usage_records (agent_id);

ALTER TABLE chatapp_usage_records ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatapp_usage_records FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chatapp_usage_records FOR ALL
    USING (company_id = chatapp_current_company_id() OR chatapp_is_master_admin())
    WITH CHECK (company_id = chatapp_current_company_id() OR chatapp_is_master_admin());
