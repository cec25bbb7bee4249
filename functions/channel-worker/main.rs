//! Lambda entry point of the `channel-worker` function; the logic is in `handler.rs` beside it.

use chatapp::app::AppDeps;
use chatapp::config::Config;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

// A Lambda instance runs one invocation at a time: one runtime thread, no cross-thread wake-ups.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    chatapp::app::init_tracing();
    let deps = AppDeps::from_config(Config::from_env()?).await?.scoped(chatapp_functions::channel_worker::AWS);
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        chatapp_functions::channel_worker::handle(deps, event.payload)
            .await
            .map_err(|e| lambda_runtime::Error::from(e.to_string()))
    }))
    .await
}
