//! What a function may do on AWS. Each function declares it beside its routes (`pub const
//! AWS`); the adapters it is given refuse anything else, so a handler that uses an undeclared
//! store or queue fails its tests, and `tests/iam.rs` checks that template.yaml grants each
//! function exactly its declaration.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::Value;

use super::blob::{BlobError, BlobStore, ObjectKey, PresignedUpload};
use super::queue::{Job, JobQueue, QueueError};
use crate::tenant::CompanyId;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AwsAccess {
    /// Objects of the knowledge bucket: read, write, list, delete (SAM's `S3CrudPolicy`).
    pub s3: bool,
    /// Queues it sends to (`SQSSendMessagePolicy` each); `<queue>-dead-letter` for a queue's
    /// dead-letter queue.
    pub send: &'static [&'static str],
    /// Queues it receives from and acknowledges on (`SQSPollerPolicy` each).
    pub poll: &'static [&'static str],
    /// Sends email through SES (SAM's `SESCrudPolicy` on the configured identity).
    pub email: bool,
}

impl AwsAccess {
    pub const NONE: AwsAccess = AwsAccess { s3: false, send: &[], poll: &[], email: false };
    /// Everything: the local runner and tests that drive workers directly.
    pub const ALL: AwsAccess = AwsAccess {
        s3: true,
        send: &["ingest", "escalation", "outbound", "ingest-dead-letter", "channel-turn", "channel-send"],
        poll: &["ingest", "escalation", "outbound", "channel-turn", "channel-send"],
        email: true,
    };
}

/// A blob store that refuses everything when the function declared no S3 access.
pub struct ScopedBlobStore {
    inner: Arc<dyn BlobStore>,
    allowed: bool,
}

impl ScopedBlobStore {
    pub fn new(inner: Arc<dyn BlobStore>, access: AwsAccess) -> Self {
        Self { inner, allowed: access.s3 }
    }

    fn check(&self) -> Result<&dyn BlobStore, BlobError> {
        if self.allowed {
            Ok(self.inner.as_ref())
        } else {
            Err(BlobError::NotPermitted)
        }
    }
}

#[async_trait]
impl BlobStore for ScopedBlobStore {
    async fn presign_put(
        &self,
        key: &ObjectKey,
        content_type: &str,
        size: u64,
        ttl: std::time::Duration,
    ) -> Result<Option<PresignedUpload>, BlobError> {
        self.check()?.presign_put(key, content_type, size, ttl).await
    }
    async fn put(&self, key: &ObjectKey, bytes: Bytes, content_type: &str) -> Result<(), BlobError> {
        self.check()?.put(key, bytes, content_type).await
    }
    async fn get(&self, key: &ObjectKey) -> Result<Option<Bytes>, BlobError> {
        self.check()?.get(key).await
    }
    async fn list(&self, company: CompanyId, prefix: &str) -> Result<Vec<ObjectKey>, BlobError> {
        self.check()?.list(company, prefix).await
    }
    async fn delete(&self, key: &ObjectKey) -> Result<(), BlobError> {
        self.check()?.delete(key).await
    }
    async fn delete_prefix(&self, company: CompanyId, prefix: &str) -> Result<usize, BlobError> {
        self.check()?.delete_prefix(company, prefix).await
    }
}

/// A job queue that allows only the declared sends and polls.
pub struct ScopedJobQueue {
    inner: Arc<dyn JobQueue>,
    access: AwsAccess,
}

impl ScopedJobQueue {
    pub fn new(inner: Arc<dyn JobQueue>, access: AwsAccess) -> Self {
        Self { inner, access }
    }

    fn may(&self, op: &'static str, allowed: &[&str], queue: &str) -> Result<&dyn JobQueue, QueueError> {
        if allowed.contains(&queue) {
            Ok(self.inner.as_ref())
        } else {
            Err(QueueError::NotPermitted(op, queue.to_string()))
        }
    }
}

#[async_trait]
impl JobQueue for ScopedJobQueue {
    fn may_send(&self, queue: &str) -> bool {
        self.access.send.contains(&queue)
    }
    async fn send(&self, queue: &str, payload: &Value) -> Result<String, QueueError> {
        self.may("send to", self.access.send, queue)?.send(queue, payload).await
    }
    async fn send_batch(&self, queue: &str, payloads: &[Value]) -> Result<(), QueueError> {
        self.may("send to", self.access.send, queue)?.send_batch(queue, payloads).await
    }
    async fn receive(&self, queue: &str, max: i32) -> Result<Vec<Job>, QueueError> {
        self.may("receive from", self.access.poll, queue)?.receive(queue, max).await
    }
    async fn delete(&self, queue: &str, receipt: &str) -> Result<(), QueueError> {
        self.may("acknowledge on", self.access.poll, queue)?.delete(queue, receipt).await
    }
    async fn dead_letter(&self, queue: &str, payload: &Value, error: &str) -> Result<(), QueueError> {
        let dlq = format!("{queue}-dead-letter");
        self.may("send to", self.access.send, &dlq)?.dead_letter(queue, payload, error).await
    }
}

/// A mail sender that refuses everything when the function declared no email access.
pub struct ScopedMailSender {
    inner: Arc<dyn crate::adapters::mail::MailSender>,
    allowed: bool,
}

impl ScopedMailSender {
    pub fn new(inner: Arc<dyn crate::adapters::mail::MailSender>, access: AwsAccess) -> Self {
        Self { inner, allowed: access.email }
    }
}

#[async_trait]
impl crate::adapters::mail::MailSender for ScopedMailSender {
    async fn send_raw(&self, from: &str, to: &str, raw: &[u8]) -> Result<Option<String>, crate::channels::SendError> {
        if !self.allowed {
            return Err(crate::channels::SendError::Permanent {
                code: "not_permitted".into(),
                message: "this function may not send email".into(),
            });
        }
        self.inner.send_raw(from, to, raw).await
    }
}
