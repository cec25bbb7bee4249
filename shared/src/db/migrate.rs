//! Embedded, checksummed, idempotent migrations. Each file of `migrations/` is applied once,
//! in order, in its own transaction, as the schema owner; a changed file is refused.

use sha2::{Digest, Sha256};
use tokio_postgres::Client;

use super::DbError;

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// One applied or skipped migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationOutcome {
    pub version: String,
    pub applied: bool,
}

pub fn checksum(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

/// Connects as the owner and applies every pending migration.
#[allow(clippy::disallowed_methods)] // owner-level connection, not tenant data
pub async fn run(owner_url: &str) -> Result<Vec<MigrationOutcome>, DbError> {
    let target = super::tls::target(owner_url)?;
    let (client, connection) = target.config.connect(target.tls).await?;
    let conn_task = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::error!(error = %e, "migration connection closed");
        }
    });
    let result = apply_all(&client).await;
    drop(client);
    let _ = conn_task.await;
    result
}

async fn apply_all(client: &Client) -> Result<Vec<MigrationOutcome>, DbError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS chatapp_schema_migrations (
                version text PRIMARY KEY,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            );
            SELECT pg_advisory_lock(727274);",
        )
        .await?;
    let result = apply_pending(client).await;
    client.batch_execute("SELECT pg_advisory_unlock(727274)").await?;
    result
}

async fn apply_pending(client: &Client) -> Result<Vec<MigrationOutcome>, DbError> {
    let mut out = Vec::new();
    for (version, sql) in MIGRATIONS {
        let sum = checksum(sql);
        let row =
            client.query_opt("SELECT checksum FROM chatapp_schema_migrations WHERE version = $1", &[version]).await?;
        if let Some(row) = row {
            let applied: String = row.get(0);
            if applied != sum {
                return Err(DbError::MigrationChanged { version: version.to_string() });
            }
            out.push(MigrationOutcome { version: version.to_string(), applied: false });
            continue;
        }
        client.batch_execute("BEGIN").await?;
        let step = async {
            client.batch_execute(sql).await?;
            client
                .execute("INSERT INTO chatapp_schema_migrations (version, checksum) VALUES ($1, $2)", &[version, &sum])
                .await?;
            Ok::<_, DbError>(())
        }
        .await;
        match step {
            Ok(()) => client.batch_execute("COMMIT").await?,
            Err(e) => {
                client.batch_execute("ROLLBACK").await?;
                return Err(e);
            }
        }
        tracing::info!(version, "migration applied");
        out.push(MigrationOutcome { version: version.to_string(), applied: true });
    }
    Ok(out)
}
