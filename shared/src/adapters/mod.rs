//! One trait per capability, each with a production and an embedded implementation side by
//! side; configuration picks one when a function starts.

pub mod access;
pub mod aws;
pub mod blob;
pub mod mail;
pub mod queue;
pub mod retry;
