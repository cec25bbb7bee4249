//! Lambda entry point of the `outbox-relay` function; the logic is in `handler.rs` beside it.

use chatapp::app::AppDeps;
use chatapp::config::Config;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Value};

// A Lambda instance runs one invocation at a time: one runtime thread, no cross-thread wake-ups.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    chatapp::app::init_tracing();
    let deps = AppDeps::from_config(Config::from_env()?).await?.scoped(chatapp_functions::outbox_relay::AWS);
    let deps = &deps;
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| async move {
        let relayed = chatapp_functions::outbox_relay::sweep(deps, chatapp_functions::outbox_relay::MIN_AGE).await?;
        Ok::<_, lambda_runtime::Error>(json!({"sent": relayed.sent}))
    }))
    .await
}
