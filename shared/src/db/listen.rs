//! One LISTEN connection per process for `chatapp_events`, fanned out to every waiting
//! request. It is opened on the first wait and reopened after a failure; while it is down,
//! waiters fall back to polling, so a lost notification costs latency, never an event.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, Mutex};
use tokio_postgres::AsyncMessage;
use tokio_postgres_rustls::MakeRustlsConnect;
use uuid::Uuid;

/// The channel `chatapp_append_event` notifies, with payload `<conversation id>:<seq>`.
pub const EVENTS_CHANNEL: &str = "chatapp_events";

/// A committed event: its conversation and sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Notified {
    pub conversation: Uuid,
    pub seq: i64,
}

pub struct Listener {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    /// The fan-out and the client of the live LISTEN connection (dropped when it is lost).
    live: Mutex<Option<(broadcast::Sender<Notified>, tokio_postgres::Client)>>,
}

impl Listener {
    pub(crate) fn new(config: tokio_postgres::Config, tls: MakeRustlsConnect) -> Arc<Self> {
        Arc::new(Self { config, tls, live: Mutex::new(None) })
    }

    /// Notifications from now on; `None` when no LISTEN connection can be had (poll instead).
    // The LISTEN connection runs no query on tenant data: it only receives notifications.
    #[allow(clippy::disallowed_methods)]
    pub async fn subscribe(self: &Arc<Self>) -> Option<broadcast::Receiver<Notified>> {
        let mut live = self.live.lock().await;
        if let Some((tx, _)) = live.as_ref() {
            return Some(tx.subscribe());
        }
        let connect = self.config.connect(self.tls.clone());
        let (client, mut connection) = match tokio::time::timeout(Duration::from_secs(5), connect).await {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "LISTEN connection failed; waiting by polling");
                return None;
            }
            Err(_) => {
                tracing::warn!("LISTEN connection timed out; waiting by polling");
                return None;
            }
        };
        let (tx, rx) = broadcast::channel(4096);
        let sender = tx.clone();
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = futures_util::StreamExt::next(&mut messages).await {
                match message {
                    Ok(AsyncMessage::Notification(n)) => {
                        if let Some(parsed) = parse(n.payload()) {
                            // No receivers is fine: nobody waits right now.
                            let _ = tx.send(parsed);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "LISTEN connection lost");
                        break;
                    }
                }
            }
            // Dropping the sender wakes every waiter (they re-read), and the next wait reconnects.
            *this.live.lock().await = None;
        });
        if let Err(e) = client.batch_execute(&format!("LISTEN {EVENTS_CHANNEL}")).await {
            tracing::warn!(error = %e, "LISTEN failed; waiting by polling");
            return None;
        }
        *live = Some((sender, client));
        Some(rx)
    }
}

fn parse(payload: &str) -> Option<Notified> {
    let (conversation, seq) = payload.split_once(':')?;
    Some(Notified { conversation: conversation.parse().ok()?, seq: seq.parse().ok()? })
}
