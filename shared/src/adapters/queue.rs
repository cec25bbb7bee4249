//! Job queues linking ingestion and escalation steps: SQS in production, the `chatapp_jobs`
//! table on one machine. Both give at-least-once delivery, a visibility timeout, and a
//! dead-letter destination after a maximum number of receives.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use uuid::Uuid;

use crate::db::Db;

pub const INGEST: &str = "ingest";
pub const ESCALATION: &str = "escalation";
pub const OUTBOUND: &str = "outbound";
/// Inbound channel messages waiting for their chat turn (the `channel-worker`).
pub const CHANNEL_TURN: &str = "channel-turn";
/// Replies waiting to be delivered through a channel's API (the `channel-sender`).
pub const CHANNEL_SEND: &str = "channel-send";

#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    /// Pass back to [`JobQueue::delete`]; a receipt from an earlier delivery is stale.
    pub receipt: String,
    pub payload: Value,
    pub receive_count: i32,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("no queue URL configured for {0}")]
    UnknownQueue(String),
    #[error("queue database access failed")]
    Db(#[from] crate::db::DbError),
    #[error("SQS request failed: {0}")]
    Sqs(String),
    #[error("malformed job: {0}")]
    Malformed(String),
    /// The function did not declare this queue operation (its `AwsAccess`), so its IAM role
    /// does not allow it.
    #[error("this function may not {0} queue {1}")]
    NotPermitted(&'static str, String),
}

#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Enqueues a JSON payload; returns the message id.
    async fn send(&self, queue: &str, payload: &Value) -> Result<String, QueueError>;
    /// Enqueues several payloads in as few requests as the backend allows (the outbox relay).
    async fn send_batch(&self, queue: &str, payloads: &[Value]) -> Result<(), QueueError> {
        for p in payloads {
            self.send(queue, p).await?;
        }
        Ok(())
    }
    /// Whether this process may send to `queue` (a function's role allows only its own queues):
    /// the outbox relay leaves other queues' rows to the functions that may send them.
    fn may_send(&self, _queue: &str) -> bool {
        true
    }
    /// Up to `max` visible jobs, each hidden for the visibility timeout.
    async fn receive(&self, queue: &str, max: i32) -> Result<Vec<Job>, QueueError>;
    /// Acknowledges a job.
    async fn delete(&self, queue: &str, receipt: &str) -> Result<(), QueueError>;
    /// Puts a payload straight onto the queue's dead-letter destination, with the reason; used
    /// for jobs that can never succeed, so they neither retry nor vanish. The caller then
    /// acknowledges the original.
    async fn dead_letter(&self, queue: &str, payload: &Value, error: &str) -> Result<(), QueueError>;
}

/// Embedded: `chatapp_jobs` with `FOR UPDATE SKIP LOCKED`; jobs received `max_receives` times
/// move to `chatapp_failed_jobs` instead of being delivered again.
pub struct PgJobQueue {
    db: Db,
    visibility: Duration,
    max_receives: i32,
}

impl PgJobQueue {
    pub fn new(db: Db, visibility: Duration, max_receives: i32) -> Self {
        Self { db, visibility, max_receives }
    }

    /// Payloads and errors of dead-lettered jobs, oldest first.
    pub async fn failed(&self, queue: &str) -> Result<Vec<(Value, Option<String>)>, QueueError> {
        let conn = self.db.system().await?;
        let rows = conn
            .query("SELECT payload, error FROM chatapp_failed_jobs WHERE queue = $1 ORDER BY failed_at, id", &[&queue])
            .await
            .map_err(crate::db::DbError::from)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Records why a delivery failed (kept with the job, and copied when it dead-letters).
    pub async fn record_error(&self, receipt: &str, error: &str) -> Result<(), QueueError> {
        let (id, _) = parse_receipt(receipt)?;
        let conn = self.db.system().await?;
        conn.execute("UPDATE chatapp_jobs SET last_error = $2 WHERE id = $1", &[&id, &error])
            .await
            .map_err(crate::db::DbError::from)?;
        Ok(())
    }
}

fn parse_receipt(receipt: &str) -> Result<(Uuid, i32), QueueError> {
    let (id, n) = receipt.split_once(':').ok_or_else(|| QueueError::Malformed(receipt.into()))?;
    Ok((
        Uuid::parse_str(id).map_err(|_| QueueError::Malformed(receipt.into()))?,
        n.parse().map_err(|_| QueueError::Malformed(receipt.into()))?,
    ))
}

#[async_trait]
impl JobQueue for PgJobQueue {
    async fn send(&self, queue: &str, payload: &Value) -> Result<String, QueueError> {
        let conn = self.db.system().await?;
        let id: Uuid = conn
            .query_one(
                "INSERT INTO chatapp_jobs (queue, payload, max_receives) VALUES ($1, $2, $3) RETURNING id",
                &[&queue, payload, &self.max_receives],
            )
            .await
            .map_err(crate::db::DbError::from)?
            .get(0);
        Ok(id.to_string())
    }

    async fn send_batch(&self, queue: &str, payloads: &[Value]) -> Result<(), QueueError> {
        let conn = self.db.system().await?;
        conn.execute(
            "INSERT INTO chatapp_jobs (queue, payload, max_receives) SELECT $1, p, $3 FROM unnest($2::jsonb[]) p",
            &[&queue, &payloads, &self.max_receives],
        )
        .await
        .map_err(crate::db::DbError::from)?;
        Ok(())
    }

    async fn receive(&self, queue: &str, max: i32) -> Result<Vec<Job>, QueueError> {
        let conn = self.db.system().await?;
        let secs = self.visibility.as_secs_f64();
        // One statement: dead-letter exhausted jobs, then lease the next visible ones.
        let rows = conn
            .query(
                "WITH dead AS (
                    DELETE FROM chatapp_jobs
                    WHERE id IN (SELECT id FROM chatapp_jobs
                                 WHERE queue = $1 AND visible_at <= now() AND receive_count >= max_receives
                                 FOR UPDATE SKIP LOCKED)
                    RETURNING *
                 ), moved AS (
                    INSERT INTO chatapp_failed_jobs (id, queue, payload, receive_count, error, original_created_at)
                    SELECT id, queue, payload, receive_count, last_error, created_at FROM dead
                 ), picked AS (
                    SELECT id FROM chatapp_jobs
                    WHERE queue = $1 AND visible_at <= now() AND receive_count < max_receives
                    ORDER BY visible_at, created_at
                    LIMIT $2
                    FOR UPDATE SKIP LOCKED
                 )
                 UPDATE chatapp_jobs j
                 SET receive_count = j.receive_count + 1,
                     visible_at = now() + make_interval(secs => $3)
                 FROM picked WHERE j.id = picked.id
                 RETURNING j.id, j.payload, j.receive_count",
                &[&queue, &i64::from(max.max(1)), &secs],
            )
            .await
            .map_err(crate::db::DbError::from)?;
        Ok(rows
            .iter()
            .map(|r| {
                let id: Uuid = r.get(0);
                let n: i32 = r.get(2);
                Job { id: id.to_string(), receipt: format!("{id}:{n}"), payload: r.get(1), receive_count: n }
            })
            .collect())
    }

    async fn dead_letter(&self, queue: &str, payload: &Value, error: &str) -> Result<(), QueueError> {
        let conn = self.db.system().await?;
        conn.execute(
            "INSERT INTO chatapp_failed_jobs (id, queue, payload, receive_count, error, original_created_at)
             VALUES (gen_random_uuid(), $1, $2, 1, $3, now())",
            &[&queue, payload, &error],
        )
        .await
        .map_err(crate::db::DbError::from)?;
        Ok(())
    }

    async fn delete(&self, _queue: &str, receipt: &str) -> Result<(), QueueError> {
        let (id, n) = parse_receipt(receipt)?;
        let conn = self.db.system().await?;
        conn.execute("DELETE FROM chatapp_jobs WHERE id = $1 AND receive_count = $2", &[&id, &n])
            .await
            .map_err(crate::db::DbError::from)?;
        Ok(())
    }
}

/// Production: Amazon SQS. Dead-lettering is the queue's redrive policy (template.yaml).
pub struct SqsJobQueue {
    client: aws_sdk_sqs::Client,
    urls: HashMap<String, String>,
    /// Queue URL → its dead-letter queue's URL, read once from the redrive policy.
    dlq_urls: tokio::sync::Mutex<HashMap<String, String>>,
}

impl SqsJobQueue {
    pub fn new(client: aws_sdk_sqs::Client, urls: HashMap<String, String>) -> Self {
        Self { client, urls, dlq_urls: Default::default() }
    }

    async fn dlq_url(&self, queue_url: &str) -> Result<String, QueueError> {
        if let Some(u) = self.dlq_urls.lock().await.get(queue_url) {
            return Ok(u.clone());
        }
        use aws_sdk_sqs::types::QueueAttributeName;
        let attrs = self
            .client
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .map_err(sqs_err)?;
        let policy = attrs
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy))
            .ok_or_else(|| QueueError::Sqs(format!("{queue_url} has no redrive policy (dead-letter queue)")))?;
        let arn = serde_json::from_str::<Value>(policy)
            .ok()
            .and_then(|p| p.get("deadLetterTargetArn").and_then(Value::as_str).map(str::to_string))
            .ok_or_else(|| QueueError::Sqs(format!("unreadable redrive policy {policy}")))?;
        // Queue URLs are `<endpoint>/<account>/<name>` (on AWS and on moto alike), and a DLQ
        // lives in the same account, so no GetQueueUrl call (or IAM permission) is needed.
        let name = arn.rsplit(':').next().unwrap_or_default();
        let (base, _) =
            queue_url.rsplit_once('/').ok_or_else(|| QueueError::Sqs(format!("unexpected queue URL {queue_url}")))?;
        let url = format!("{base}/{name}");
        self.dlq_urls.lock().await.insert(queue_url.to_string(), url.clone());
        Ok(url)
    }

    fn url(&self, queue: &str) -> Result<&str, QueueError> {
        self.urls.get(queue).map(String::as_str).ok_or_else(|| QueueError::UnknownQueue(queue.into()))
    }
}

fn sqs_err<E: std::error::Error + 'static>(e: aws_sdk_sqs::error::SdkError<E>) -> QueueError {
    QueueError::Sqs(crate::error::error_chain(&e))
}

#[async_trait]
impl JobQueue for SqsJobQueue {
    async fn send(&self, queue: &str, payload: &Value) -> Result<String, QueueError> {
        let out = self
            .client
            .send_message()
            .queue_url(self.url(queue)?)
            .message_body(payload.to_string())
            .send()
            .await
            .map_err(sqs_err)?;
        Ok(out.message_id().unwrap_or_default().to_string())
    }

    async fn send_batch(&self, queue: &str, payloads: &[Value]) -> Result<(), QueueError> {
        use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
        let url = self.url(queue)?;
        // SQS takes at most ten messages per batch.
        for chunk in payloads.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(p.to_string())
                        .build()
                        .map_err(|e| QueueError::Sqs(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(sqs_err)?;
            if let Some(failed) = out.failed().first() {
                return Err(QueueError::Sqs(format!(
                    "batch entry {} failed: {}",
                    failed.id(),
                    failed.message().unwrap_or(failed.code())
                )));
            }
        }
        Ok(())
    }

    async fn receive(&self, queue: &str, max: i32) -> Result<Vec<Job>, QueueError> {
        use aws_sdk_sqs::types::MessageSystemAttributeName as Attr;
        let out = self
            .client
            .receive_message()
            .queue_url(self.url(queue)?)
            .max_number_of_messages(max.clamp(1, 10))
            .wait_time_seconds(0)
            .message_system_attribute_names(Attr::ApproximateReceiveCount)
            .send()
            .await
            .map_err(sqs_err)?;
        out.messages()
            .iter()
            .map(|m| {
                let body = m.body().unwrap_or_default();
                Ok(Job {
                    id: m.message_id().unwrap_or_default().to_string(),
                    receipt: m.receipt_handle().unwrap_or_default().to_string(),
                    payload: serde_json::from_str(body).map_err(|e| QueueError::Malformed(e.to_string()))?,
                    receive_count: m
                        .attributes()
                        .and_then(|a| a.get(&Attr::ApproximateReceiveCount))
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(1),
                })
            })
            .collect()
    }

    async fn dead_letter(&self, queue: &str, payload: &Value, error: &str) -> Result<(), QueueError> {
        use aws_sdk_sqs::types::MessageAttributeValue;
        let dlq = self.dlq_url(self.url(queue)?).await?;
        let reason: String = error.chars().take(1000).collect();
        let attr = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(if reason.is_empty() { "unknown".to_string() } else { reason })
            .build()
            .map_err(|e| QueueError::Sqs(e.to_string()))?;
        self.client
            .send_message()
            .queue_url(dlq)
            .message_body(payload.to_string())
            .message_attributes("error", attr)
            .send()
            .await
            .map_err(sqs_err)?;
        Ok(())
    }

    async fn delete(&self, queue: &str, receipt: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(self.url(queue)?)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(sqs_err)?;
        Ok(())
    }
}
