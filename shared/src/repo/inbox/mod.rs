//! The support agents' inbox: conversations and their ownership transitions, private notes,
//! canned responses, and support agents' presence.

pub mod canned;
pub mod conversations;
pub mod notes;
pub mod presence;
pub mod stats;
