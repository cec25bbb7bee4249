//! Lambda entry point of the `plans` function; routes and logic are in `handler.rs` beside it.

// A Lambda instance runs one invocation at a time: one runtime thread, no cross-thread wake-ups.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    chatapp_functions::http_function::run_core(chatapp_functions::plans::routes).await
}
