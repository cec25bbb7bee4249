//! Lambda entry point of the `chat-api` function; routes and logic are in `handler.rs` beside it.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chatapp_functions::http_function::run_on_lambda(chatapp_functions::http_function::HttpFunction::ChatApi).await
}
