//! `inbox` function: the support agents' side of the human in the loop (docs/human-loop.md).
//! A signed-in user (support agent, company admin, or master admin with `?company_id=`).
//!
//! GET  /inbox/conversations?view=mine|unassigned|all&...   lists (`conversations.rs`)
//! GET  /inbox/conversations/{id}                           messages, notes, customer, escalation
//! GET  /inbox/conversations/{id}/events?after=&wait=       the live event stream (long-poll)
//! POST /inbox/conversations/{id}/messages | typing | snooze, PUT .../labels
//! POST /inbox/conversations/{id}/claim | assign | transfer | release | resolve | reopen | handback
//!      ownership changes (`transitions.rs`)
//! GET /inbox/me · PUT /inbox/me/status · POST /inbox/me/heartbeat   presence (`presence.rs`)
//! GET|POST /inbox/conversations/{id}/notes                          internal notes (`notes.rs`)
//! /inbox/canned-responses[/{id}[/render]]                           canned responses (`canned.rs`)
//! GET|PATCH /inbox/settings                                         reassignment time (`settings.rs`)
//! GET /inbox/stats?from=&to=&user_id=                               per-agent daily figures (`stats.rs`)
//!
//! Every change commits with its audit row, then relays what it queued through the outbox
//! (events for outbound webhooks, wake-ups of the assignment worker).

use chatapp::app::AppDeps;
use utoipa_axum::router::OpenApiRouter;

mod canned;
mod conversations;
mod notes;
mod presence;
mod settings;
mod stats;
mod transitions;

/// What this function may do on AWS (ownership changes and replies queue assignment wake-ups and outbound events, relayed from the outbox); template.yaml grants exactly this (tests/iam.rs).
pub const AWS: chatapp::adapters::access::AwsAccess = chatapp::adapters::access::AwsAccess {
    s3: false,
    send: &[
        chatapp::adapters::queue::ESCALATION,
        chatapp::adapters::queue::OUTBOUND,
        chatapp::adapters::queue::CHANNEL_SEND,
    ],
    poll: &[],
    email: false,
};

/// The queues this function's changes write to through the outbox, relayed after each commit.
pub(crate) const RELAY: &[&str] =
    &[chatapp::adapters::queue::ESCALATION, chatapp::adapters::queue::OUTBOUND, chatapp::adapters::queue::CHANNEL_SEND];

pub fn routes() -> OpenApiRouter<AppDeps> {
    conversations::routes()
        .merge(transitions::routes())
        .merge(presence::routes())
        .merge(notes::routes())
        .merge(canned::routes())
        .merge(settings::routes())
        .merge(stats::routes())
}
