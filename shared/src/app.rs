//! Builds a function's dependencies once per cold start, from configuration.

use std::collections::HashMap;
use std::sync::Arc;

use crate::adapters::aws;
use crate::adapters::blob::{BlobStore, LocalBlobStore, S3BlobStore};
use crate::adapters::queue::{self, JobQueue, PgJobQueue, SqsJobQueue};
use crate::auth::Auth;
use crate::config::{BlobBackend, Config, QueueBackend};
use crate::db::{Db, DbError};

/// Everything an HTTP or queue handler may use, as trait objects where there is a choice.
#[derive(Clone)]
pub struct AppDeps {
    pub cfg: Arc<Config>,
    pub db: Db,
    pub auth: Auth,
    pub blobs: Arc<dyn BlobStore>,
    pub queue: Arc<dyn JobQueue>,
}

impl AppDeps {
    pub async fn from_config(cfg: Config) -> Result<Self, DbError> {
        let db = Db::connect(&cfg.database_url, cfg.db_pool_size)?;
        let needs_aws = matches!(cfg.blob_backend, BlobBackend::S3 { .. }) || cfg.queue_backend == QueueBackend::Sqs;
        let sdk = if needs_aws { Some(aws::sdk_config(&cfg).await) } else { None };
        let blobs: Arc<dyn BlobStore> = match (&cfg.blob_backend, &sdk) {
            (BlobBackend::S3 { bucket }, Some(sdk)) => {
                Arc::new(S3BlobStore::new(aws::s3_client(sdk, cfg.aws_endpoint_url.is_some()), bucket))
            }
            _ => Arc::new(LocalBlobStore::new(cfg.data_dir.join("blobs"))),
        };
        let queue: Arc<dyn JobQueue> = match (&cfg.queue_backend, &sdk) {
            (QueueBackend::Sqs, Some(sdk)) => {
                let urls: HashMap<String, String> = [queue::INGEST, queue::ESCALATION, queue::OUTBOUND]
                    .into_iter()
                    .filter_map(|q| cfg.queue_url(q).map(|u| (q.to_string(), u.to_string())))
                    .collect();
                Arc::new(SqsJobQueue::new(aws::sqs_client(sdk), urls))
            }
            _ => Arc::new(PgJobQueue::new(db.clone(), cfg.queue_visibility_timeout, cfg.queue_max_receives)),
        };
        let auth = Auth::new(db.clone(), &cfg);
        Ok(Self { cfg: Arc::new(cfg), db, auth, blobs, queue })
    }
}

/// JSON logs on Lambda (CloudWatch), plain text locally; `RUST_LOG` filters.
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let on_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    // Lambda adds its own timestamps; ANSI colours would garble CloudWatch.
    let _ = if on_lambda { builder.without_time().with_ansi(false).try_init() } else { builder.try_init() };
}
