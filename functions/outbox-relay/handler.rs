//! `outbox-relay` function: the scheduled sweep of the transactional outbox. Producers relay
//! their own rows right after they commit; this sends what a producer that crashed (or timed
//! out, or lost its queue) left behind, once the row is old enough that its producer is not
//! still about to send it, and what a producer with no queue access leaves to it on purpose
//! (`companies`: the purge of a deleted company).

use std::time::Duration;

use chatapp::adapters::queue::{CHANNEL_SEND, CHANNEL_TURN, ESCALATION, INGEST, OUTBOUND};
use chatapp::app::AppDeps;
use chatapp::outbox::{self, Relayed};

/// What this function may do on AWS (send to every queue the outbox feeds); template.yaml
/// grants exactly this (tests/iam.rs).
pub const AWS: chatapp::adapters::access::AwsAccess =
    chatapp::adapters::access::AwsAccess { s3: false, send: QUEUES, poll: &[], email: false };

/// Every queue the outbox feeds.
pub const QUEUES: &[&str] = &[INGEST, ESCALATION, OUTBOUND, CHANNEL_TURN, CHANNEL_SEND];
/// Rows younger than this are left to their producer.
pub const MIN_AGE: Duration = Duration::from_secs(10);

/// One sweep: relays every row at least `min_age` old.
pub async fn sweep(deps: &AppDeps, min_age: Duration) -> Result<Relayed, chatapp::adapters::queue::QueueError> {
    let relayed = outbox::relay(&deps.db, deps.queue.as_ref(), QUEUES, min_age).await?;
    if relayed.sent > 0 {
        tracing::info!(sent = relayed.sent, "outbox sweep relayed rows a producer left");
    }
    for (queue, error) in outbox::stuck(&deps.db).await? {
        tracing::error!(%queue, error = error.as_deref().unwrap_or("unknown"), "outbox row given up after repeated failures");
    }
    Ok(relayed)
}

/// The local runner's sweep loop.
pub async fn run_local(deps: &AppDeps, every: Duration) {
    loop {
        if let Err(e) = sweep(deps, MIN_AGE).await {
            tracing::error!(error.chain = %chatapp::error::error_chain(&e), "outbox sweep failed");
        }
        tokio::time::sleep(every).await;
    }
}
