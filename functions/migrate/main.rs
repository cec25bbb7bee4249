//! Lambda entry point of `migrate`; run without a Lambda runtime it is the migration CLI.

use chatapp::config::Config;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

// A Lambda instance runs one invocation at a time: one runtime thread, no cross-thread wake-ups.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    chatapp::app::init_tracing();
    let cfg = Config::from_env()?;
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        // From a shell, create the database first, as the local runner does.
        chatapp::db::tls::ensure_database(cfg.migration_database_url.expose()).await?;
        let out = chatapp_functions::migrate::run(&cfg).await?;
        println!("{out}");
        return Ok(());
    }
    let cfg = &cfg;
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<Value>| async move {
        chatapp_functions::migrate::run(cfg).await.map_err(|e| -> lambda_runtime::Error { Box::new(e) })
    }))
    .await
}
