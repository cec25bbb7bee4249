//! The schema: migrations apply to an empty database, re-apply as a no-op, refuse edited
//! files, create every table and enum of seed 001, and leave no tenant table unprotected.

use chatapp_tests::TestEnv;

const SEED_001_TABLES: &[&str] = &[
    "chatapp_accounts",
    "chatapp_agent_knowledge_categories",
    "chatapp_agent_packages",
    "chatapp_agents",
    "chatapp_api_keys",
    "chatapp_audit_logs",
    "chatapp_canned_responses",
    "chatapp_channel_configs",
    "chatapp_companies",
    "chatapp_company_subscriptions",
    "chatapp_conversation_notes",
    "chatapp_conversations",
    "chatapp_customers",
    "chatapp_daily_analytics",
    "chatapp_escalations",
    "chatapp_invitations",
    "chatapp_knowledge_categories",
    "chatapp_knowledge_chunks",
    "chatapp_knowledge_files",
    "chatapp_messages",
    "chatapp_rate_limit_records",
    "chatapp_sessions",
    "chatapp_subscription_plans",
    "chatapp_support_agent_status",
    "chatapp_usage_records",
    "chatapp_users",
    "chatapp_verification_tokens",
    "chatapp_webhooks",
    "chatapp_widget_configs",
];

/// Kept from the other seeds (escalation rules, daily stats, prompt templates, model catalog,
/// articles, conversation analytics, integrations, refresh tokens, queue tables).
const ADDED_TABLES: &[&str] = &[
    "chatapp_escalation_rules",
    "chatapp_support_agent_daily_stats",
    "chatapp_prompt_templates",
    "chatapp_ai_models",
    "chatapp_knowledge_articles",
    "chatapp_conversation_analytics",
    "chatapp_integrations",
    "chatapp_refresh_tokens",
    "chatapp_login_attempts",
    "chatapp_jobs",
    "chatapp_failed_jobs",
    "chatapp_outbox",
    "chatapp_conversation_events",
    "chatapp_agent_versions",
    "chatapp_agent_actions",
    "chatapp_agent_package_versions",
];

const SEED_001_ENUMS: &[&str] = &[
    "agent_status",
    "channel_type",
    "conversation_status",
    "escalation_priority",
    "escalation_status",
    "file_status",
    "invitation_status",
    "message_role",
    "subscription_status",
    "support_agent_status",
    "user_role",
];

#[tokio::test]
async fn migrations_apply_once_and_reapply_as_noop() {
    let env = TestEnv::new().await;
    // TestEnv::new applied everything; a second run applies nothing.
    let again = chatapp::db::migrate::run(env.cfg.migration_database_url.expose()).await.unwrap();
    assert!(!again.is_empty());
    assert!(again.iter().all(|o| !o.applied), "{again:?}");
    let owner = env.owner().await;
    let recorded: i64 = owner.query_one("SELECT count(*) FROM chatapp_schema_migrations", &[]).await.unwrap().get(0);
    assert_eq!(recorded as usize, again.len());
    // Reference data is idempotent too.
    chatapp::seed::reference_data(&env.cfg).await.unwrap();
    let plans: Vec<String> = owner
        .query("SELECT slug FROM chatapp_subscription_plans ORDER BY base_price", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(plans, ["free", "starter", "professional", "enterprise"]);
}

#[tokio::test]
async fn an_edited_migration_is_refused() {
    let env = TestEnv::new().await;
    env.owner()
        .await
        .execute("UPDATE chatapp_schema_migrations SET checksum = 'tampered' WHERE version = '0002_core'", &[])
        .await
        .unwrap();
    let err = chatapp::db::migrate::run(env.cfg.migration_database_url.expose()).await.unwrap_err();
    assert!(err.to_string().contains("0002_core"), "{err}");
}

#[tokio::test]
async fn every_seed_table_and_enum_exists() {
    let env = TestEnv::new().await;
    let owner = env.owner().await;
    for t in SEED_001_TABLES.iter().chain(ADDED_TABLES) {
        let found = owner
            .query_opt("SELECT 1 FROM pg_tables WHERE schemaname = 'public' AND tablename = $1", &[t])
            .await
            .unwrap();
        assert!(found.is_some(), "table {t} missing");
    }
    for e in SEED_001_ENUMS {
        let found = owner.query_opt("SELECT 1 FROM pg_type WHERE typname = $1 AND typtype = 'e'", &[e]).await.unwrap();
        assert!(found.is_some(), "enum {e} missing");
    }
}

#[tokio::test]
async fn every_tenant_table_forces_rls_and_the_app_role_cannot_bypass_it() {
    let env = TestEnv::new().await;
    let owner = env.owner().await;
    let unprotected: Vec<String> = owner
        .query(
            "SELECT c.relname FROM pg_class c
             WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace
               AND NOT (c.relrowsecurity AND c.relforcerowsecurity)
             ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    // Only infrastructure tables that hold no tenant data.
    assert_eq!(
        unprotected,
        ["chatapp_failed_jobs", "chatapp_jobs", "chatapp_login_attempts", "chatapp_schema_migrations"]
    );
    let role = owner
        .query_one("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = 'chatapp_app'", &[])
        .await
        .unwrap();
    assert!(!role.get::<_, bool>(0) && !role.get::<_, bool>(1));
    let owned: i64 = owner
        .query_one(
            "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
             WHERE r.rolname = 'chatapp_app' AND c.relnamespace = 'public'::regnamespace",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(owned, 0, "chatapp_app must own nothing");
    // The schema owner's migration bookkeeping is not writable by the app.
    let app = env.app_client().await;
    assert!(app.execute("DELETE FROM chatapp_schema_migrations", &[]).await.is_err());
}
