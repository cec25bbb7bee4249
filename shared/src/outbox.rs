//! The transactional outbox: jobs and events are written in the transaction of the change that
//! causes them ([`add`], or the SQL function `chatapp_outbox_add`), and relayed to their queue
//! after it commits ([`relay_now`]); the `outbox-relay` function's schedule relays what a
//! crashed producer left ([`relay`] with an age). A rolled-back change leaves no row, so no job.
//!
//! Delivery is at least once: a relay that dies after sending and before deleting leaves the
//! row to be sent again when its lease ends. Every payload carries `event_id` (the row id), and
//! consumers are idempotent.

use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;

use crate::adapters::queue::{JobQueue, QueueError};
use crate::app::AppDeps;
use crate::db::{Db, DbError, TenantTx};

/// How long a relay owns the rows it took before another may send them.
const LEASE_SECS: f64 = 30.0;
/// Rows taken per round trip.
const BATCH: i64 = 100;
/// A row sent this many times without being deleted (its queue keeps refusing it) is left for
/// an operator: [`stuck`] counts them and the sweep logs them, so one poison row never blocks
/// the relay nor loops forever.
pub const MAX_ATTEMPTS: i32 = 20;

/// Adds a job or event for `queue` to the transaction; returns its `event_id`.
pub async fn add(tx: &TenantTx, queue: &str, payload: &Value) -> Result<Uuid, DbError> {
    let row = tx.client().query_one("SELECT chatapp_outbox_add($1, $2)", &[&queue, payload]).await?;
    Ok(row.get(0))
}

/// What one relay pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Relayed {
    pub sent: usize,
}

/// Sends the outbox rows for `queues` that are at least `min_age` old and not leased, oldest
/// first, until none is left (or a send fails), and deletes each one sent.
pub async fn relay(db: &Db, queue: &dyn JobQueue, queues: &[&str], min_age: Duration) -> Result<Relayed, QueueError> {
    relay_batches(db, queue, queues, min_age, usize::MAX).await
}

async fn relay_batches(
    db: &Db,
    queue: &dyn JobQueue,
    queues: &[&str],
    min_age: Duration,
    max_batches: usize,
) -> Result<Relayed, QueueError> {
    let mut batches = 0;
    let queues: Vec<String> = queues.iter().filter(|q| queue.may_send(q)).map(|q| q.to_string()).collect();
    if queues.is_empty() {
        return Ok(Relayed::default());
    }
    let mut total = Relayed::default();
    loop {
        let conn = db.system().await?;
        let rows = conn
            .query(
                "UPDATE chatapp_outbox o
                 SET leased_until = now() + make_interval(secs => $4), attempts = o.attempts + 1
                 FROM (SELECT id FROM chatapp_outbox
                       WHERE queue = ANY($1) AND created_at <= now() - make_interval(secs => $2)
                         AND (leased_until IS NULL OR leased_until < now()) AND attempts < $5
                       ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED) picked
                 WHERE o.id = picked.id
                 RETURNING o.id, o.queue, o.payload",
                &[&queues, &min_age.as_secs_f64(), &BATCH, &LEASE_SECS, &MAX_ATTEMPTS],
            )
            .await
            .map_err(DbError::from)?;
        drop(conn);
        if rows.is_empty() {
            return Ok(total);
        }
        // Grouped by queue, one batch each, in the order taken.
        let mut groups: Vec<(String, Vec<Uuid>, Vec<Value>)> = Vec::new();
        for row in &rows {
            let (id, name, payload): (Uuid, String, Value) = (row.get(0), row.get(1), row.get(2));
            match groups.iter_mut().find(|(q, _, _)| *q == name) {
                Some((_, ids, payloads)) => {
                    ids.push(id);
                    payloads.push(payload);
                }
                None => groups.push((name, vec![id], vec![payload])),
            }
        }
        let mut sent: Vec<Uuid> = Vec::with_capacity(rows.len());
        let mut failure = None;
        for (name, ids, payloads) in &groups {
            match queue.send_batch(name, payloads).await {
                Ok(()) => sent.extend(ids),
                Err(e) => {
                    failure = Some((ids.clone(), e));
                    break;
                }
            }
        }
        let conn = db.system().await?;
        conn.execute("DELETE FROM chatapp_outbox WHERE id = ANY($1)", &[&sent]).await.map_err(DbError::from)?;
        total.sent += sent.len();
        if let Some((ids, e)) = failure {
            // The failed rows (and any not tried) stay leased; the sweep retries them after the lease.
            let reason = crate::error::error_chain(&e);
            conn.execute("UPDATE chatapp_outbox SET last_error = $2 WHERE id = ANY($1)", &[&ids, &reason])
                .await
                .map_err(DbError::from)?;
            return Err(e);
        }
        batches += 1;
        if (rows.len() as i64) < BATCH || batches >= max_batches {
            return Ok(total);
        }
    }
}

/// Relays this function's rows right after a commit: one batch, oldest first (its own rows,
/// and any a crashed producer left); a backlog beyond that is the sweep's, so a request never
/// pays for it. Best effort: a failure is logged and the rows stay for the scheduled sweep, so
/// the caller's committed change is never reported failed.
pub async fn relay_now(deps: &AppDeps, queues: &[&str]) {
    if let Err(e) = relay_batches(&deps.db, deps.queue.as_ref(), queues, Duration::ZERO, 1).await {
        tracing::warn!(error.chain = %crate::error::error_chain(&e), "outbox relay failed; the sweep will retry");
    }
}

/// Rows the relay gave up on after [`MAX_ATTEMPTS`], with their queue and last error.
pub async fn stuck(db: &Db) -> Result<Vec<(String, Option<String>)>, DbError> {
    let conn = db.system().await?;
    let rows = conn
        .query(
            "SELECT queue, last_error FROM chatapp_outbox WHERE attempts >= $1 ORDER BY created_at LIMIT 100",
            &[&MAX_ATTEMPTS],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Rows still waiting in the outbox for `queue` (tests and the relay's metrics).
pub async fn pending(db: &Db, queue: &str) -> Result<i64, DbError> {
    let conn = db.system().await?;
    Ok(conn.query_one("SELECT count(*) FROM chatapp_outbox WHERE queue = $1", &[&queue]).await?.get(0))
}
