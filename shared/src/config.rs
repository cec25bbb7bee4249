//! Configuration layered from embedded defaults and the environment (zero2prod style).
//! Every variable is listed in README.md; defaults run the platform on one machine.

use std::path::PathBuf;
use std::time::Duration;

/// A value that must never reach a log: `Debug` prints `***`. Read it with `expose()`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }
    pub fn expose(&self) -> &T {
        &self.0
    }
}

/// Read from input (channel credentials); there is deliberately no `Serialize`, so a secret
/// cannot end up in a response body by deriving one.
impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Secret<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Secret)
    }
}

impl<T> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobBackend {
    /// Files under `<data_dir>/blobs` (embedded default).
    Local,
    /// An S3 bucket through aws-sdk-s3.
    S3 { bucket: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueBackend {
    /// The `chatapp_jobs` table with `FOR UPDATE SKIP LOCKED` (embedded default).
    Postgres,
    /// Amazon SQS; queue names map to queue URLs below.
    Sqs,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EmbedderBackend {
    /// all-MiniLM-L6-v2 run in-process with candle from local files (embedded default).
    Local { model_dir: Option<PathBuf> },
    /// An OpenAI-compatible `/v1/embeddings` endpoint.
    OpenAi { base_url: String, api_key: Option<Secret<String>>, model: String, dimensions: usize },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatProvider {
    /// Offline: answers with the best retrieved passages, labelled as such (embedded default).
    Extractive,
    /// An OpenAI-compatible `/v1/chat/completions` (OpenAI, vLLM, Ollama, llama.cpp server).
    OpenAi { base_url: String, api_key: Option<Secret<String>>, model: String },
    /// Anthropic's Messages API.
    Anthropic { base_url: String, api_key: Option<Secret<String>>, model: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VectorBackend {
    /// qdrant-edge in-process, on disk under `<data_dir>/vectors` (embedded default).
    Edge,
    /// A Qdrant server (gRPC URL, e.g. http://localhost:6334).
    Qdrant { url: String, api_key: Option<Secret<String>>, collection: String },
}

#[derive(Clone, Debug)]
pub struct Config {
    /// Connection string of the application role (`chatapp_app`, subject to RLS).
    pub database_url: Secret<String>,
    /// Connection string of the schema owner, used only by `migrate`.
    pub migration_database_url: Secret<String>,
    pub db_pool_size: usize,
    /// Longest wait for a pooled connection (or a new one) before answering 503 `busy`.
    pub db_pool_timeout: Duration,
    pub jwt_secret: Secret<Vec<u8>>,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub login_max_failures: i64,
    pub login_window: Duration,
    /// How long a process reuses a widget session it resolved (0: look it up on every request).
    pub widget_session_cache: Duration,
    pub max_body_bytes: usize,
    /// Largest file the direct upload route accepts (plans may allow less; Lambda caps at 6 MB).
    pub max_upload_bytes: usize,
    /// Base URL of the streaming `widget-stream` function (its Lambda function URL): the widget
    /// sends chat turns there so the answer arrives as it is generated. Unset: the widget
    /// sends them to its API base (the local runner streams there; API Gateway buffers).
    pub widget_stream_url: Option<String>,
    pub blob_backend: BlobBackend,
    pub queue_backend: QueueBackend,
    pub data_dir: PathBuf,
    pub aws_endpoint_url: Option<String>,
    pub ingest_queue_url: Option<String>,
    pub escalation_queue_url: Option<String>,
    pub outbound_queue_url: Option<String>,
    pub channel_turn_queue_url: Option<String>,
    pub channel_send_queue_url: Option<String>,
    /// How email replies are sent: `none` (they fail, recorded) or `ses` (`EMAIL_SENDER`).
    pub email_sender_ses: bool,
    pub queue_visibility_timeout: Duration,
    pub queue_max_receives: i32,
    /// Wait for conversation events with LISTEN/NOTIFY (one connection per process: right for a
    /// long-running server); `false` polls instead (Lambda, where an instance serves one request).
    pub events_listen: bool,
    pub master_admin_email: Option<String>,
    pub master_admin_password: Option<Secret<String>>,
    pub master_admin_password_hash: Option<String>,
    pub demo_admin_password: Option<Secret<String>>,
    pub local_bind: String,
    pub embedder: EmbedderBackend,
    pub vectors: VectorBackend,
    /// Seconds a presigned upload URL stays valid.
    pub upload_url_ttl: Duration,
    pub chat: ChatProvider,
    /// AES-256-GCM key sealing channel credentials and provider keys (`SECRETS_KEY`, base64 of
    /// 32 bytes; required on Lambda, a published development key otherwise).
    pub secrets_key: Secret<[u8; 32]>,
    /// Public base URL of the HTTP API (`PUBLIC_API_URL`): channel webhook URLs shown to admins
    /// start with it. Unset: `http://<LOCAL_BIND>`.
    pub public_api_url: String,
    /// The providers' API base URLs (`CHANNEL_*_URL`; tests point them at local servers).
    pub channel_endpoints: crate::channels::Endpoints,
    /// `HTTP_ACTIONS_ALLOW_PRIVATE` (`true`/`false`): agents' HTTP actions may call loopback,
    /// private, link-local and other internal addresses. Off (the default on AWS Lambda), saving
    /// an action refuses a URL whose host is such an address, and every call refuses one, whether
    /// written in the URL or resolved from its host name
    /// (`crate::chat::tools::http_action::forbidden_ip`). On (the default elsewhere: local
    /// development and the tests call local servers), addresses are not checked.
    pub http_actions_allow_private: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

const DEV_JWT_SECRET: &str = "chatapp-local-development-secret-change-me";
/// Only for one machine: anything sealed under it is readable by anyone with this source.
const DEV_SECRETS_KEY: [u8; 32] = *b"chatapp-local-dev-key-change-me!";

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Builds a configuration from any key lookup (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let database_url =
            get("DATABASE_URL").unwrap_or_else(|| "postgres://chatapp_app@127.0.0.1:5432/chatapp".to_string());
        let migration_database_url =
            get("MIGRATION_DATABASE_URL").unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/chatapp".to_string());
        let on_lambda = get("AWS_LAMBDA_FUNCTION_NAME").is_some();
        let jwt_secret = match get("JWT_SECRET") {
            Some(s) if s.len() >= 32 => s.into_bytes(),
            Some(_) => {
                return Err(ConfigError::Invalid { name: "JWT_SECRET", reason: "must be at least 32 bytes".into() })
            }
            // A deployed function must never sign tokens with a published key.
            None if on_lambda => {
                return Err(ConfigError::Invalid {
                    name: "JWT_SECRET",
                    reason: "required when running on AWS Lambda".into(),
                })
            }
            None => DEV_JWT_SECRET.as_bytes().to_vec(),
        };
        let secrets_key = match get("SECRETS_KEY") {
            Some(s) => {
                use base64::Engine;
                let bytes = base64::engine::general_purpose::STANDARD.decode(s.trim()).unwrap_or_default();
                <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| ConfigError::Invalid {
                    name: "SECRETS_KEY",
                    reason: "must be 32 bytes, base64-encoded".into(),
                })?
            }
            None if on_lambda => {
                return Err(ConfigError::Invalid {
                    name: "SECRETS_KEY",
                    reason: "required when running on AWS Lambda".into(),
                })
            }
            None => DEV_SECRETS_KEY,
        };
        let defaults = crate::channels::Endpoints::default();
        let channel_endpoints = crate::channels::Endpoints {
            graph: get("CHANNEL_GRAPH_URL").unwrap_or(defaults.graph),
            telegram: get("CHANNEL_TELEGRAM_URL").unwrap_or(defaults.telegram),
            slack: get("CHANNEL_SLACK_URL").unwrap_or(defaults.slack),
            teams_token: get("CHANNEL_TEAMS_TOKEN_URL").unwrap_or(defaults.teams_token),
            teams_openid: get("CHANNEL_TEAMS_OPENID_URL").unwrap_or(defaults.teams_openid),
            teams_issuer: get("CHANNEL_TEAMS_ISSUER").unwrap_or(defaults.teams_issuer),
            sns_cert_host_suffix: get("CHANNEL_SNS_CERT_HOST").unwrap_or(defaults.sns_cert_host_suffix),
        };
        let blob_backend = match get("BLOB_BACKEND").as_deref().unwrap_or("local") {
            "local" => BlobBackend::Local,
            "s3" => BlobBackend::S3 {
                bucket: get("KNOWLEDGE_BUCKET").ok_or(ConfigError::Invalid {
                    name: "KNOWLEDGE_BUCKET",
                    reason: "required when BLOB_BACKEND=s3".into(),
                })?,
            },
            other => {
                return Err(ConfigError::Invalid {
                    name: "BLOB_BACKEND",
                    reason: format!("expected local or s3, got {other:?}"),
                })
            }
        };
        let queue_backend = match get("QUEUE_BACKEND").as_deref().unwrap_or("postgres") {
            "postgres" => QueueBackend::Postgres,
            "sqs" => QueueBackend::Sqs,
            other => {
                return Err(ConfigError::Invalid {
                    name: "QUEUE_BACKEND",
                    reason: format!("expected postgres or sqs, got {other:?}"),
                })
            }
        };
        let embedder = match get("EMBEDDER").as_deref().unwrap_or("local") {
            "local" => EmbedderBackend::Local { model_dir: get("EMBEDDING_MODEL_DIR").map(PathBuf::from) },
            "openai" => EmbedderBackend::OpenAi {
                base_url: get("EMBEDDING_BASE_URL").unwrap_or_else(|| "https://api.openai.com/v1".into()),
                api_key: get("EMBEDDING_API_KEY").map(Secret::new),
                model: get("EMBEDDING_MODEL").unwrap_or_else(|| "text-embedding-3-small".into()),
                dimensions: num(&get, "EMBEDDING_DIMENSIONS", 1536)?,
            },
            other => {
                return Err(ConfigError::Invalid {
                    name: "EMBEDDER",
                    reason: format!("expected local or openai, got {other:?}"),
                })
            }
        };
        let vectors = match get("VECTOR_BACKEND").as_deref().unwrap_or("edge") {
            "edge" => VectorBackend::Edge,
            "qdrant" => VectorBackend::Qdrant {
                url: get("QDRANT_URL").ok_or(ConfigError::Invalid {
                    name: "QDRANT_URL",
                    reason: "required when VECTOR_BACKEND=qdrant".into(),
                })?,
                api_key: get("QDRANT_API_KEY").map(Secret::new),
                collection: get("QDRANT_COLLECTION").unwrap_or_else(|| "chatapp_knowledge".into()),
            },
            other => {
                return Err(ConfigError::Invalid {
                    name: "VECTOR_BACKEND",
                    reason: format!("expected edge or qdrant, got {other:?}"),
                })
            }
        };
        let chat = match get("CHAT_PROVIDER").as_deref().unwrap_or("extractive") {
            "extractive" => ChatProvider::Extractive,
            "openai" => ChatProvider::OpenAi {
                base_url: get("CHAT_BASE_URL").unwrap_or_else(|| "https://api.openai.com/v1".into()),
                api_key: get("CHAT_API_KEY").map(Secret::new),
                model: get("CHAT_MODEL").unwrap_or_else(|| "gpt-4o-mini".into()),
            },
            "anthropic" => ChatProvider::Anthropic {
                base_url: get("CHAT_BASE_URL").unwrap_or_else(|| "https://api.anthropic.com".into()),
                api_key: get("CHAT_API_KEY").map(Secret::new),
                model: get("CHAT_MODEL").unwrap_or_else(|| "claude-3-5-haiku-latest".into()),
            },
            other => {
                return Err(ConfigError::Invalid {
                    name: "CHAT_PROVIDER",
                    reason: format!("expected extractive, openai or anthropic, got {other:?}"),
                })
            }
        };
        Ok(Self {
            database_url: Secret::new(database_url),
            migration_database_url: Secret::new(migration_database_url),
            db_pool_size: num(&get, "DB_POOL_SIZE", 4)?,
            db_pool_timeout: Duration::from_millis(num(&get, "DB_POOL_TIMEOUT_MS", 5000)?),
            jwt_secret: Secret::new(jwt_secret),
            access_token_ttl: Duration::from_secs(num(&get, "ACCESS_TOKEN_TTL_SECS", 900)?),
            refresh_token_ttl: Duration::from_secs(num(&get, "REFRESH_TOKEN_TTL_SECS", 30 * 24 * 3600)?),
            login_max_failures: num(&get, "LOGIN_MAX_FAILURES", 5)?,
            login_window: Duration::from_secs(num(&get, "LOGIN_WINDOW_SECS", 900)?),
            widget_session_cache: Duration::from_secs(num(&get, "WIDGET_SESSION_CACHE_SECS", 30)?),
            max_body_bytes: num(&get, "MAX_BODY_BYTES", 64 * 1024)?,
            max_upload_bytes: num(&get, "MAX_UPLOAD_BYTES", 50 * 1024 * 1024)?,
            widget_stream_url: get("WIDGET_STREAM_URL").map(|u| u.trim_end_matches('/').to_string()),
            blob_backend,
            queue_backend,
            data_dir: get("DATA_DIR").map(PathBuf::from).unwrap_or_else(|| ".data".into()),
            aws_endpoint_url: get("AWS_ENDPOINT_URL"),
            ingest_queue_url: get("INGEST_QUEUE_URL"),
            escalation_queue_url: get("ESCALATION_QUEUE_URL"),
            outbound_queue_url: get("OUTBOUND_QUEUE_URL"),
            channel_turn_queue_url: get("CHANNEL_TURN_QUEUE_URL"),
            channel_send_queue_url: get("CHANNEL_SEND_QUEUE_URL"),
            email_sender_ses: match get("EMAIL_SENDER").as_deref().unwrap_or("none") {
                "none" => false,
                "ses" => true,
                other => {
                    return Err(ConfigError::Invalid {
                        name: "EMAIL_SENDER",
                        reason: format!("expected none or ses, got {other:?}"),
                    })
                }
            },
            queue_visibility_timeout: Duration::from_secs(num(&get, "QUEUE_VISIBILITY_TIMEOUT_SECS", 60)?),
            queue_max_receives: num(&get, "QUEUE_MAX_RECEIVES", 5)?,
            events_listen: num(&get, "EVENTS_LISTEN", true)?,
            master_admin_email: get("MASTER_ADMIN_EMAIL"),
            master_admin_password: get("MASTER_ADMIN_PASSWORD").map(Secret::new),
            master_admin_password_hash: get("MASTER_ADMIN_PASSWORD_HASH"),
            demo_admin_password: get("DEMO_ADMIN_PASSWORD").map(Secret::new),
            public_api_url: get("PUBLIC_API_URL")
                .map(|u| u.trim_end_matches('/').to_string())
                .unwrap_or_else(|| format!("http://{}", get("LOCAL_BIND").unwrap_or_else(|| "127.0.0.1:3000".into()))),
            local_bind: get("LOCAL_BIND").unwrap_or_else(|| "127.0.0.1:3000".into()),
            embedder,
            vectors,
            upload_url_ttl: Duration::from_secs(num(&get, "UPLOAD_URL_TTL_SECS", 900)?),
            chat,
            secrets_key: Secret::new(secrets_key),
            channel_endpoints,
            http_actions_allow_private: num(&get, "HTTP_ACTIONS_ALLOW_PRIVATE", !on_lambda)?,
        })
    }

    /// The SQS queue URL configured for a logical queue name.
    pub fn queue_url(&self, queue: &str) -> Option<&str> {
        match queue {
            crate::adapters::queue::INGEST => self.ingest_queue_url.as_deref(),
            crate::adapters::queue::ESCALATION => self.escalation_queue_url.as_deref(),
            crate::adapters::queue::OUTBOUND => self.outbound_queue_url.as_deref(),
            crate::adapters::queue::CHANNEL_TURN => self.channel_turn_queue_url.as_deref(),
            crate::adapters::queue::CHANNEL_SEND => self.channel_send_queue_url.as_deref(),
            _ => None,
        }
    }
}

fn num<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match get(name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|e: T::Err| ConfigError::Invalid { name, reason: e.to_string() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults_are_embedded() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.blob_backend, BlobBackend::Local);
        assert_eq!(c.queue_backend, QueueBackend::Postgres);
        assert_eq!(c.access_token_ttl, Duration::from_secs(900));
    }

    #[test]
    fn lambda_requires_a_real_jwt_secret() {
        assert!(cfg(&[("AWS_LAMBDA_FUNCTION_NAME", "auth")]).is_err());
        assert!(cfg(&[("JWT_SECRET", "short")]).is_err());
        assert!(cfg(&[("BLOB_BACKEND", "s3")]).is_err());
        assert!(cfg(&[("DB_POOL_SIZE", "many")]).is_err());
    }
}
