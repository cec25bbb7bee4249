//! The registry of HTTP functions: binary name → handler. `main.rs` files and the local
//! runner both go through it, so a function behaves the same deployed and local.

use std::convert::Infallible;

use chatapp::app::AppDeps;
use chatapp::config::Config;
use chatapp::http::HandlerResult;
use lambda_http::{Body, Request, Response};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpFunction {
    Auth,
    Companies,
    Team,
    Invitations,
    ApiKeys,
    KnowledgeCategories,
    KnowledgeFiles,
    KnowledgeArticles,
    KnowledgeSearch,
    Widget,
    ChatApi,
}

impl HttpFunction {
    pub const ALL: &'static [HttpFunction] = &[
        HttpFunction::Auth,
        HttpFunction::Companies,
        HttpFunction::Team,
        HttpFunction::Invitations,
        HttpFunction::ApiKeys,
        HttpFunction::KnowledgeCategories,
        HttpFunction::KnowledgeFiles,
        HttpFunction::KnowledgeArticles,
        HttpFunction::KnowledgeSearch,
        HttpFunction::Widget,
        HttpFunction::ChatApi,
    ];

    /// The binary name, which is also the directory under `functions/`.
    pub fn binary(self) -> &'static str {
        match self {
            HttpFunction::Auth => "auth",
            HttpFunction::Companies => "companies",
            HttpFunction::Team => "team",
            HttpFunction::Invitations => "invitations",
            HttpFunction::ApiKeys => "api-keys",
            HttpFunction::KnowledgeCategories => "knowledge-categories",
            HttpFunction::KnowledgeFiles => "knowledge-files",
            HttpFunction::KnowledgeArticles => "knowledge-articles",
            HttpFunction::KnowledgeSearch => "knowledge-search",
            HttpFunction::Widget => "widget",
            HttpFunction::ChatApi => "chat-api",
        }
    }

    pub fn from_binary(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|f| f.binary() == name)
    }

    /// Runs the handler; errors become their JSON response here, once.
    pub async fn call(self, deps: &AppDeps, req: Request) -> Response<Body> {
        let result: HandlerResult = match self {
            HttpFunction::Auth => crate::auth::handle(deps, req).await,
            HttpFunction::Companies => crate::companies::handle(deps, req).await,
            HttpFunction::Team => crate::team::handle(deps, req).await,
            HttpFunction::Invitations => crate::invitations::handle(deps, req).await,
            HttpFunction::ApiKeys => crate::api_keys::handle(deps, req).await,
            HttpFunction::KnowledgeCategories => crate::knowledge_categories::handle(deps, req).await,
            HttpFunction::KnowledgeFiles => crate::knowledge_files::handle(deps, req).await,
            HttpFunction::KnowledgeArticles => crate::knowledge_articles::handle(deps, req).await,
            HttpFunction::KnowledgeSearch => crate::knowledge_search::handle(deps, req).await,
            HttpFunction::Widget => crate::widget::handle(deps, req).await,
            HttpFunction::ChatApi => crate::chat_api::handle(deps, req).await,
        };
        result.unwrap_or_else(|e| e.into_response())
    }
}

/// What every HTTP `main.rs` does: tracing, adapters once per cold start, then serve.
pub async fn run_on_lambda(function: HttpFunction) -> Result<(), lambda_http::Error> {
    chatapp::app::init_tracing();
    let deps = AppDeps::from_config(Config::from_env()?).await?;
    let deps = &deps;
    lambda_http::run(lambda_http::service_fn(move |req: Request| async move {
        Ok::<_, Infallible>(function.call(deps, req).await)
    }))
    .await
}

/// The `widget-stream` function: the widget's routes with Lambda response streaming, so a chat
/// turn's server-sent events reach the browser as they are produced (deployed behind a
/// function URL in `RESPONSE_STREAM` mode; API Gateway would buffer them).
pub async fn run_widget_streaming_on_lambda() -> Result<(), lambda_http::Error> {
    chatapp::app::init_tracing();
    let deps = AppDeps::from_config(Config::from_env()?).await?;
    serve_widget_streaming(&deps).await
}

/// Polls the Lambda Runtime API (`AWS_LAMBDA_RUNTIME_API`) and answers each event with a
/// streamed response. Split from the entry point so tests can run it against their own deps.
pub async fn serve_widget_streaming(deps: &AppDeps) -> Result<(), lambda_http::Error> {
    lambda_http::run_with_streaming_response(lambda_http::service_fn(move |req: Request| async move {
        Ok::<_, Infallible>(crate::widget::respond(deps, req).await.map(crate::widget::WidgetBody::into_streaming_body))
    }))
    .await
}
