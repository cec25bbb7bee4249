//! chatapp's common crate: schema types, tenant auth and adapters shared by every function.

pub mod adapters;
pub mod agent_config;
pub mod app;
pub mod audit;
pub mod auth;
pub mod channels;
pub mod chat;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod handoff;
pub mod ids;
pub mod knowledge;
pub mod outbound_http;
pub mod outbox;
pub mod prompt_template;
pub mod repo;
pub mod sealed;
pub mod seed;
pub mod status;
pub mod tenant;
pub mod web;

pub use error::ApiError;
pub use tenant::TenantCtx;
