//! Repository functions: the only code that runs SQL against tenant data. Each takes the
//! [`TenantTx`](crate::db::TenantTx), which carries the acting [`TenantCtx`](crate::tenant::TenantCtx).

pub mod actions;
pub mod agent_versions;
pub mod agents;
pub mod api_keys;
pub mod channels;
pub mod chat;
pub mod companies;
pub mod escalation_rules;
pub mod inbox;
pub mod invitations;
pub mod knowledge;
pub mod models;
pub mod packages;
pub mod plans;
pub mod prompt_templates;
pub mod provider_keys;
pub mod refresh_tokens;
pub mod users;
pub mod widget_configs;
