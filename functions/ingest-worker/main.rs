//! Lambda entry point of the `ingest-worker` function; the logic is in `handler.rs` beside it.

use aws_lambda_events::sqs::SqsEvent;
use chatapp::app::AppDeps;
use chatapp::config::Config;
use lambda_runtime::{service_fn, LambdaEvent};

// A Lambda instance runs one invocation at a time: one runtime thread, no cross-thread wake-ups.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    chatapp::app::init_tracing();
    let deps = AppDeps::from_config(Config::from_env()?).await?.scoped(chatapp_functions::ingest_worker::AWS);
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, lambda_runtime::Error>(chatapp_functions::ingest_worker::handle(deps, event.payload).await)
    }))
    .await
}
