//! `migrate` function: applies pending migrations, reference data and the configured master
//! admin. Invoked once per deploy (Lambda) or from the shell (`cargo run --bin migrate`).

use chatapp::config::Config;
use chatapp::seed::{self, SeedError};
use serde_json::{json, Value};

/// What this function may do on AWS: nothing (template.yaml gives it no policy; tests/iam.rs).
pub const AWS: chatapp::adapters::access::AwsAccess = chatapp::adapters::access::AwsAccess::NONE;

pub async fn run(cfg: &Config) -> Result<Value, SeedError> {
    let outcomes = seed::migrate_and_bootstrap(cfg).await?;
    let applied: Vec<&str> = outcomes.iter().filter(|o| o.applied).map(|o| o.version.as_str()).collect();
    Ok(json!({
        "applied": applied,
        "already_applied": outcomes.len() - applied.len(),
    }))
}
