//! Lambda entry point of the `widget-stream` function (Lambda response streaming behind a
//! function URL). Its routes are the `widget` function's, in `functions/widget/handler.rs`.

// A Lambda instance runs one invocation at a time: one runtime thread, no cross-thread wake-ups.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    chatapp_functions::http_function::run_widget_streaming_on_lambda().await
}
