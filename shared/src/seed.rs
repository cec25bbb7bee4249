//! Operator-run bootstrap: the master admin (from configuration, never a built-in password),
//! reference data (plans, agent packages, model catalog) and the local demo company. Runs as
//! the schema owner with the master-admin role set for the transaction, since every table
//! forces row-level security.

use tokio_postgres::Client;
use uuid::Uuid;

use crate::auth::{password, tokens};
use crate::config::Config;
use crate::db::DbError;

const REFERENCE_DATA: &str = include_str!("../../migrations/seed/reference_data.sql");

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("database query failed")]
    Query(#[from] tokio_postgres::Error),
    #[error("{0}")]
    Invalid(String),
}

#[allow(clippy::disallowed_methods)] // owner-level connection, not tenant data
async fn owner_client(url: &str) -> Result<Client, SeedError> {
    crate::db::tls::connect_once(url).await.map_err(|e| SeedError::Invalid(crate::error::error_chain(&e)))
}

async fn as_master(client: &Client, sql_body: &str) -> Result<(), SeedError> {
    client
        .batch_execute(&format!(
            "BEGIN; SELECT set_config('app.user_role', 'master_admin', true);\n{sql_body}\n;COMMIT;"
        ))
        .await?;
    Ok(())
}

/// Plans Free/Starter/Professional/Enterprise, default agent packages, model catalog.
pub async fn reference_data(cfg: &Config) -> Result<(), SeedError> {
    let client = owner_client(cfg.migration_database_url.expose()).await?;
    as_master(&client, REFERENCE_DATA).await
}

/// Creates the master admin named by `MASTER_ADMIN_EMAIL` with `MASTER_ADMIN_PASSWORD` or
/// `MASTER_ADMIN_PASSWORD_HASH`, if no user has that email yet. Returns whether one was made.
pub async fn bootstrap_master_admin(cfg: &Config) -> Result<bool, SeedError> {
    let Some(email) = cfg.master_admin_email.as_deref() else { return Ok(false) };
    let hash = match (&cfg.master_admin_password_hash, &cfg.master_admin_password) {
        (Some(h), _) if h.starts_with("$argon2") => h.clone(),
        (Some(_), _) => {
            return Err(SeedError::Invalid("MASTER_ADMIN_PASSWORD_HASH must be an argon2 PHC string".into()))
        }
        (None, Some(p)) => {
            password::check_password_policy(p.expose())
                .map_err(|e| SeedError::Invalid(format!("MASTER_ADMIN_PASSWORD: {e}")))?;
            password::hash_password(p.expose()).map_err(|e| SeedError::Invalid(e.to_string()))?
        }
        (None, None) => {
            return Err(SeedError::Invalid(
                "MASTER_ADMIN_EMAIL is set but neither MASTER_ADMIN_PASSWORD nor MASTER_ADMIN_PASSWORD_HASH".into(),
            ))
        }
    };
    let client = owner_client(cfg.migration_database_url.expose()).await?;
    client.batch_execute("BEGIN; SELECT set_config('app.user_role', 'master_admin', true)").await?;
    let n = client
        .execute(
            "INSERT INTO chatapp_users (email, name, role, password_hash, email_verified)
             SELECT lower($1), 'Master admin', 'master_admin', $2, now()
             WHERE NOT EXISTS (SELECT 1 FROM chatapp_users WHERE lower(email) = lower($1))",
            &[&email, &hash],
        )
        .await?;
    client.batch_execute("COMMIT").await?;
    Ok(n == 1)
}

/// The local demo tenant.
#[derive(Debug, Clone)]
pub struct DemoTenant {
    pub company_id: Uuid,
    pub admin_email: String,
    /// Present only when this call created the admin with a generated password.
    pub generated_password: Option<String>,
    /// The demo assistant behind the demo page's widget.
    pub agent_id: Uuid,
    /// Published help-centre articles still to be indexed (the local runner queues them).
    pub unindexed_articles: Vec<Uuid>,
}

impl DemoTenant {
    /// Queues the ingestion of the articles not indexed yet.
    pub async fn queue_ingestion(
        &self,
        queue: &dyn crate::adapters::queue::JobQueue,
    ) -> Result<(), crate::adapters::queue::QueueError> {
        for article in &self.unindexed_articles {
            let job = crate::knowledge::service::IngestJob {
                company_id: self.company_id,
                file_id: None,
                article_id: Some(*article),
                category_id: None,
                purge: false,
                event_id: None,
            };
            queue.send(crate::adapters::queue::INGEST, &job.to_json()).await?;
        }
        Ok(())
    }
}

pub const DEMO_SLUG: &str = "demo";
pub const DEMO_ADMIN_EMAIL: &str = "admin@demo.chatapp.local";

/// Creates (once) the demo company on the Professional plan and its admin, whose password
/// comes from `DEMO_ADMIN_PASSWORD` or is generated and returned so the runner can print it.
pub async fn demo_tenant(cfg: &Config) -> Result<DemoTenant, SeedError> {
    let client = owner_client(cfg.migration_database_url.expose()).await?;
    client.batch_execute("BEGIN; SELECT set_config('app.user_role', 'master_admin', true)").await?;
    let company_id: Uuid = client
        .query_one(
            "WITH ins AS (
                INSERT INTO chatapp_companies (name, slug, description)
                VALUES ('Demo Company', $1, 'Local demo tenant') ON CONFLICT (slug) DO NOTHING RETURNING id)
             SELECT id FROM ins UNION ALL SELECT id FROM chatapp_companies WHERE slug = $1 LIMIT 1",
            &[&DEMO_SLUG],
        )
        .await?
        .get(0);
    client
        .execute(
            "INSERT INTO chatapp_company_subscriptions (company_id, plan_id, status, starts_at, expires_at)
             SELECT $1, p.id, 'active', now(), now() + interval '1 year'
             FROM chatapp_subscription_plans p
             WHERE p.slug = 'professional'
               AND NOT EXISTS (SELECT 1 FROM chatapp_company_subscriptions WHERE company_id = $1)",
            &[&company_id],
        )
        .await?;
    let exists =
        client.query_opt("SELECT 1 FROM chatapp_users WHERE lower(email) = $1", &[&DEMO_ADMIN_EMAIL]).await?.is_some();
    let mut generated = None;
    if !exists {
        let pw = match &cfg.demo_admin_password {
            Some(p) => p.expose().clone(),
            None => {
                let p = tokens::random_secret()[..20].to_string();
                generated = Some(p.clone());
                p
            }
        };
        let hash = password::hash_password(&pw).map_err(|e| SeedError::Invalid(e.to_string()))?;
        client
            .execute(
                "INSERT INTO chatapp_users (email, name, company_id, role, password_hash, email_verified)
                 VALUES ($1, 'Demo admin', $2, 'company_admin', $3, now())",
                &[&DEMO_ADMIN_EMAIL, &company_id, &hash],
            )
            .await?;
    }
    let (agent_id, unindexed_articles) = demo_agent(&client, company_id).await?;
    client.batch_execute("COMMIT").await?;
    Ok(DemoTenant {
        company_id,
        admin_email: DEMO_ADMIN_EMAIL.into(),
        generated_password: generated,
        agent_id,
        unindexed_articles,
    })
}

/// The demo help centre: articles a newcomer can ask about offline.
const DEMO_ARTICLES: &[(&str, &str)] = &[
    (
        "Refunds",
        "You can ask for a refund within 30 days of delivery, from your order page or by replying here. \
         Refunds go back to the original payment method and take five business days to arrive.",
    ),
    (
        "Shipping",
        "We ship with DHL. Orders placed before 14:00 leave the warehouse the same day. Delivery takes two to \
         three business days in Germany and up to ten business days internationally.",
    ),
    (
        "Opening hours",
        "Our human support team answers Monday to Friday, 9:00 to 17:00 (Berlin time). The assistant answers \
         around the clock and hands over to a person when you ask for one.",
    ),
];

/// The demo agent (active, with a widget and a help-centre category of published articles);
/// returns its id and the articles not indexed yet (the runner queues them).
async fn demo_agent(client: &tokio_postgres::Client, company: Uuid) -> Result<(Uuid, Vec<Uuid>), SeedError> {
    let agent: Uuid = client
        .query_one(
            "WITH ins AS (
                INSERT INTO chatapp_agents (company_id, name, status, system_prompt, escalation_rules)
                SELECT $1, 'Demo assistant', 'active',
                       'You are the Acme Store assistant. Answer from the help centre and cite your sources.',
                       '{\"keywords\": [\"lawyer\", \"chargeback\"], \"sentimentThreshold\": -0.6}'::jsonb
                WHERE NOT EXISTS (SELECT 1 FROM chatapp_agents WHERE company_id = $1 AND name = 'Demo assistant')
                RETURNING id)
             SELECT id FROM ins UNION ALL
             SELECT id FROM chatapp_agents WHERE company_id = $1 AND name = 'Demo assistant' LIMIT 1",
            &[&company],
        )
        .await?
        .get(0);
    client
        .execute(
            "INSERT INTO chatapp_widget_configs (company_id, agent_id, title, subtitle, welcome_message,
                                                 placeholder_text, primary_color)
             VALUES ($1, $2, 'Acme Store help', 'We usually answer at once',
                     'Hi! I am the Acme Store assistant. Ask me about refunds, shipping or opening hours.',
                     'Type your question…', '#0f766e')
             ON CONFLICT (agent_id) DO NOTHING",
            &[&company, &agent],
        )
        .await?;
    let category: Uuid = client
        .query_one(
            "WITH ins AS (
                INSERT INTO chatapp_knowledge_categories (company_id, name, slug)
                VALUES ($1, 'Help centre', 'help-centre') ON CONFLICT (company_id, slug) DO NOTHING RETURNING id)
             SELECT id FROM ins UNION ALL
             SELECT id FROM chatapp_knowledge_categories WHERE company_id = $1 AND slug = 'help-centre' LIMIT 1",
            &[&company],
        )
        .await?
        .get(0);
    client
        .execute(
            "INSERT INTO chatapp_agent_knowledge_categories (agent_id, category_id) VALUES ($1, $2)
             ON CONFLICT (agent_id, category_id) DO NOTHING",
            &[&agent, &category],
        )
        .await?;
    for (title, content) in DEMO_ARTICLES {
        client
            .execute(
                "INSERT INTO chatapp_knowledge_articles (company_id, category_id, title, content, status, published_at)
                 SELECT $1, $2, $3::text, $4::text, 'published', now()
                 WHERE NOT EXISTS (SELECT 1 FROM chatapp_knowledge_articles WHERE company_id = $1 AND title = $3::text)",
                &[&company, &category, title, content],
            )
            .await?;
    }
    let pending = client
        .query(
            "SELECT id FROM chatapp_knowledge_articles
             WHERE company_id = $1 AND category_id = $2 AND status = 'published' AND indexed_at IS NULL",
            &[&company, &category],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok((agent, pending))
}

/// Applies migrations, reference data and the master admin: what `migrate` does.
pub async fn migrate_and_bootstrap(cfg: &Config) -> Result<Vec<crate::db::migrate::MigrationOutcome>, SeedError> {
    let outcomes = crate::db::migrate::run(cfg.migration_database_url.expose()).await?;
    reference_data(cfg).await?;
    if bootstrap_master_admin(cfg).await? {
        tracing::info!("master admin created");
    }
    Ok(outcomes)
}
