//! The human side of a handoff: conversation events with per-conversation sequence numbers
//! (what the widget and the inbox read live), and the assignment of waiting conversations to
//! support agents (what the escalation worker runs).

pub mod assign;
pub mod events;
pub mod queue_position;
