//! Builds a function's dependencies once per cold start, from configuration.

use std::collections::HashMap;
use std::sync::Arc;

use crate::adapters::access::{AwsAccess, ScopedBlobStore, ScopedJobQueue, ScopedMailSender};
use crate::adapters::aws;
use crate::adapters::blob::{BlobStore, LocalBlobStore, S3BlobStore};
use crate::adapters::mail::{MailSender, NoMailSender, SesMailSender};
use crate::adapters::queue::{self, JobQueue, PgJobQueue, SqsJobQueue};
use crate::auth::Auth;
use crate::chat::model::{
    AnthropicChatConfig, AnthropicChatModel, ChatModel, ExtractiveModel, OpenAiChatConfig, OpenAiChatModel,
};
use crate::config::{BlobBackend, ChatProvider, Config, EmbedderBackend, QueueBackend, VectorBackend};
use crate::db::{Db, DbError};
use crate::knowledge::embed::{Embedder, OpenAiEmbedder, OpenAiEmbedderConfig};
use crate::knowledge::vector::{DeleteTarget, IndexedChunk, QueryVector, Scope, ScoredChunk, VectorError, VectorIndex};
use crate::knowledge::vector_qdrant::QdrantServerIndex;
use crate::tenant::CompanyId;

/// What the admin and auth functions use: configuration, the database and the auth code.
/// Building it touches no AWS SDK, vector index or model, so those functions link none of them.
#[derive(Clone)]
pub struct Core {
    pub cfg: Arc<Config>,
    pub db: Db,
    pub auth: Auth,
}

impl Core {
    pub fn from_config(cfg: Config) -> Result<Self, InitError> {
        let db = Db::connect(cfg.database_url.expose(), cfg.db_pool_size, cfg.db_pool_timeout)?;
        let auth = Auth::new(db.clone(), &cfg);
        Ok(Self { cfg: Arc::new(cfg), db, auth })
    }
}

/// Everything an HTTP or queue handler may use, as trait objects where there is a choice.
#[derive(Clone)]
pub struct AppDeps {
    pub cfg: Arc<Config>,
    pub db: Db,
    pub auth: Auth,
    pub blobs: Arc<dyn BlobStore>,
    pub queue: Arc<dyn JobQueue>,
    pub embedder: Arc<dyn Embedder>,
    pub vectors: Arc<dyn VectorIndex>,
    pub chat: Arc<dyn ChatModel>,
    /// Email replies (SES, or none).
    pub mail: Arc<dyn MailSender>,
}

impl AppDeps {
    pub async fn from_config(cfg: Config) -> Result<Self, InitError> {
        let db = Db::connect(cfg.database_url.expose(), cfg.db_pool_size, cfg.db_pool_timeout)?;
        let needs_aws = matches!(cfg.blob_backend, BlobBackend::S3 { .. })
            || cfg.queue_backend == QueueBackend::Sqs
            || cfg.email_sender_ses;
        let sdk = if needs_aws { Some(aws::sdk_config(&cfg).await) } else { None };
        let blobs: Arc<dyn BlobStore> = match (&cfg.blob_backend, &sdk) {
            (BlobBackend::S3 { bucket }, Some(sdk)) => {
                Arc::new(S3BlobStore::new(aws::s3_client(sdk, cfg.aws_endpoint_url.is_some()), bucket))
            }
            _ => Arc::new(LocalBlobStore::new(cfg.data_dir.join("blobs"))),
        };
        let queue: Arc<dyn JobQueue> = match (&cfg.queue_backend, &sdk) {
            (QueueBackend::Sqs, Some(sdk)) => {
                let urls: HashMap<String, String> =
                    [queue::INGEST, queue::ESCALATION, queue::OUTBOUND, queue::CHANNEL_TURN, queue::CHANNEL_SEND]
                        .into_iter()
                        .filter_map(|q| cfg.queue_url(q).map(|u| (q.to_string(), u.to_string())))
                        .collect();
                Arc::new(SqsJobQueue::new(aws::sqs_client(sdk), urls))
            }
            _ => Arc::new(PgJobQueue::new(db.clone(), cfg.queue_visibility_timeout, cfg.queue_max_receives)),
        };
        let mail: Arc<dyn MailSender> = match (&sdk, cfg.email_sender_ses) {
            (Some(sdk), true) => Arc::new(SesMailSender::new(aws::ses_client(sdk))),
            _ => Arc::new(NoMailSender),
        };
        let auth = Auth::new(db.clone(), &cfg);
        let embedder: Arc<dyn Embedder> = match &cfg.embedder {
            #[cfg(feature = "embedded")]
            EmbedderBackend::Local { model_dir } => {
                let dir = crate::knowledge::embed::locate_model_dir(model_dir.as_deref())
                    .or_else(|| model_dir.clone())
                    .unwrap_or_else(|| cfg.data_dir.join("models/all-MiniLM-L6-v2"));
                Arc::new(crate::knowledge::embed::LocalEmbedder::new(dir))
            }
            #[cfg(not(feature = "embedded"))]
            EmbedderBackend::Local { .. } => return Err(InitError::NotBuiltIn("EMBEDDER=local")),
            EmbedderBackend::OpenAi { base_url, api_key, model, dimensions } => {
                Arc::new(OpenAiEmbedder::new(OpenAiEmbedderConfig {
                    base_url: base_url.clone(),
                    api_key: api_key.as_ref().map(|k| k.expose().clone()),
                    model: model.clone(),
                    dimensions: *dimensions,
                    ..Default::default()
                })?)
            }
        };
        let vectors = Arc::new(LazyVectors {
            backend: cfg.vectors.clone(),
            dir: cfg.data_dir.join("vectors"),
            dims: embedder.dimensions(),
            index: tokio::sync::OnceCell::new(),
        });
        let chat: Arc<dyn ChatModel> = match &cfg.chat {
            ChatProvider::Extractive => Arc::new(ExtractiveModel),
            ChatProvider::OpenAi { base_url, api_key, model } => Arc::new(OpenAiChatModel::new(OpenAiChatConfig {
                base_url: base_url.clone(),
                api_key: api_key.as_ref().map(|k| k.expose().clone()),
                model: model.clone(),
                ..Default::default()
            })?),
            ChatProvider::Anthropic { base_url, api_key, model } => {
                Arc::new(AnthropicChatModel::new(AnthropicChatConfig {
                    base_url: base_url.clone(),
                    api_key: api_key.as_ref().map(|k| k.expose().clone()),
                    model: model.clone(),
                    ..Default::default()
                })?)
            }
        };
        Ok(Self { cfg: Arc::new(cfg), db, auth, blobs, queue, embedder, vectors, chat, mail })
    }

    /// The same dependencies with the blob store and the queue limited to `access`: what a
    /// function's IAM role allows it (see `adapters::access`).
    pub fn scoped(&self, access: AwsAccess) -> AppDeps {
        let mut deps = self.clone();
        deps.blobs = Arc::new(ScopedBlobStore::new(self.blobs.clone(), access));
        deps.queue = Arc::new(ScopedJobQueue::new(self.queue.clone(), access));
        deps.mail = Arc::new(ScopedMailSender::new(self.mail.clone(), access));
        deps
    }

    pub fn core(&self) -> Core {
        Core { cfg: self.cfg.clone(), db: self.db.clone(), auth: self.auth.clone() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Embedder(#[from] crate::knowledge::embed::EmbedError),
    #[error(transparent)]
    Chat(#[from] crate::chat::model::ChatError),
    /// A backend the configuration asks for that this build left out.
    #[error("{0}: this build has no embedded backends (cargo feature `embedded`)")]
    NotBuiltIn(&'static str),
}

/// Opens the configured vector index on first use, so functions that never touch vectors
/// (auth, team, ...) pay nothing for it at cold start.
struct LazyVectors {
    backend: VectorBackend,
    #[cfg_attr(not(feature = "embedded"), allow(dead_code))]
    dir: std::path::PathBuf,
    dims: usize,
    index: tokio::sync::OnceCell<Arc<dyn VectorIndex>>,
}

impl LazyVectors {
    async fn get(&self) -> Result<&Arc<dyn VectorIndex>, VectorError> {
        self.index
            .get_or_try_init(|| async {
                Ok::<Arc<dyn VectorIndex>, VectorError>(match &self.backend {
                    #[cfg(feature = "embedded")]
                    VectorBackend::Edge => {
                        let (dir, dims) = (self.dir.clone(), self.dims);
                        let idx = tokio::task::spawn_blocking(move || {
                            crate::knowledge::vector_edge::EdgeVectorIndex::open(&dir, dims)
                        })
                        .await
                        .map_err(|e| VectorError::Backend(e.to_string()))??;
                        Arc::new(idx)
                    }
                    #[cfg(not(feature = "embedded"))]
                    VectorBackend::Edge => {
                        return Err(VectorError::Backend(
                            "VECTOR_BACKEND=edge: this build has no embedded backends (feature `embedded`)".into(),
                        ))
                    }
                    VectorBackend::Qdrant { url, api_key, collection } => Arc::new(
                        QdrantServerIndex::connect(
                            url,
                            api_key.as_ref().map(|k| k.expose().as_str()),
                            collection,
                            self.dims,
                        )
                        .await?,
                    ),
                })
            })
            .await
    }
}

#[async_trait::async_trait]
impl VectorIndex for LazyVectors {
    async fn upsert(&self, company: CompanyId, chunks: Vec<IndexedChunk>) -> Result<(), VectorError> {
        self.get().await?.upsert(company, chunks).await
    }
    async fn search(
        &self,
        company: CompanyId,
        scope: &Scope,
        query: QueryVector<'_>,
        limit: usize,
    ) -> Result<Vec<ScoredChunk>, VectorError> {
        self.get().await?.search(company, scope, query, limit).await
    }
    async fn delete(&self, company: CompanyId, target: DeleteTarget) -> Result<(), VectorError> {
        self.get().await?.delete(company, target).await
    }
    async fn count(&self, company: CompanyId) -> Result<u64, VectorError> {
        self.get().await?.count(company).await
    }
}

/// JSON logs when Lambda asks for them (`AWS_LAMBDA_LOG_FORMAT=JSON`, set by the template's
/// `LoggingConfig`), plain text otherwise. `RUST_LOG` (`info`, or `warn,chatapp=debug`) filters,
/// else Lambda's `AWS_LAMBDA_LOG_LEVEL`, else `info`.
pub fn init_tracing() {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let spec = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL").map(|l| l.to_lowercase()))
        .unwrap_or_else(|_| "info".into());
    let filter: Targets = spec.parse().unwrap_or_else(|_| Targets::new().with_default(tracing::Level::INFO));
    let registry = tracing_subscriber::registry().with(filter);
    let on_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let layer = tracing_subscriber::fmt::layer().with_target(false);
    // Lambda adds its own timestamps; ANSI colours would garble CloudWatch.
    let _ = match (json, on_lambda) {
        (true, _) => registry.with(layer.json().flatten_event(true).without_time().with_ansi(false)).try_init(),
        (false, true) => registry.with(layer.without_time().with_ansi(false)).try_init(),
        (false, false) => registry.with(layer).try_init(),
    };
}
