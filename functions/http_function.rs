//! The registry of HTTP functions: binary name → handler. `main.rs` files and the local
//! runner both go through it, so a function behaves the same deployed and local.

use axum::Router;
use chatapp::adapters::access::AwsAccess;
use chatapp::app::{AppDeps, Core};
use chatapp::config::Config;
use chatapp::web::routes::without_descriptions;
use utoipa_axum::router::OpenApiRouter;

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
    Inbox,
    Agents,
    AgentActions,
    AgentVersions,
    AgentWidgets,
    EscalationRules,
    Channels,
    Whatsapp,
    Messenger,
    Instagram,
    Telegram,
    Slack,
    Teams,
    Email,
    Models,
    Plans,
    ProviderKeys,
    PromptTemplates,
    AgentPackages,
    AgentPreview,
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
        HttpFunction::Inbox,
        HttpFunction::Agents,
        HttpFunction::AgentActions,
        HttpFunction::AgentVersions,
        HttpFunction::AgentWidgets,
        HttpFunction::EscalationRules,
        HttpFunction::Channels,
        HttpFunction::Whatsapp,
        HttpFunction::Messenger,
        HttpFunction::Instagram,
        HttpFunction::Telegram,
        HttpFunction::Slack,
        HttpFunction::Teams,
        HttpFunction::Email,
        HttpFunction::Models,
        HttpFunction::Plans,
        HttpFunction::ProviderKeys,
        HttpFunction::PromptTemplates,
        HttpFunction::AgentPackages,
        HttpFunction::AgentPreview,
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
            HttpFunction::Inbox => "inbox",
            HttpFunction::Agents => "agents",
            HttpFunction::AgentActions => "agent-actions",
            HttpFunction::AgentVersions => "agent-versions",
            HttpFunction::AgentWidgets => "agent-widgets",
            HttpFunction::EscalationRules => "escalation-rules",
            HttpFunction::Channels => "channels",
            HttpFunction::Whatsapp => "whatsapp",
            HttpFunction::Messenger => "messenger",
            HttpFunction::Instagram => "instagram",
            HttpFunction::Telegram => "telegram",
            HttpFunction::Slack => "slack",
            HttpFunction::Teams => "teams",
            HttpFunction::Email => "email",
            HttpFunction::Models => "models",
            HttpFunction::Plans => "plans",
            HttpFunction::ProviderKeys => "provider-keys",
            HttpFunction::PromptTemplates => "prompt-templates",
            HttpFunction::AgentPackages => "agent-packages",
            HttpFunction::AgentPreview => "agent-preview",
        }
    }

    pub fn from_binary(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|f| f.binary() == name)
    }

    /// The function's OpenAPI description, from its routes.
    fn describe(self) -> utoipa::openapi::OpenApi {
        use chatapp::web::describe;
        match self {
            HttpFunction::Auth => describe(crate::auth::routes()),
            HttpFunction::Companies => describe(crate::companies::routes()),
            HttpFunction::Team => describe(crate::team::routes()),
            HttpFunction::Invitations => describe(crate::invitations::routes()),
            HttpFunction::ApiKeys => describe(crate::api_keys::routes()),
            HttpFunction::KnowledgeCategories => describe(crate::knowledge_categories::routes()),
            HttpFunction::KnowledgeFiles => describe(crate::knowledge_files::routes()),
            HttpFunction::KnowledgeArticles => describe(crate::knowledge_articles::routes()),
            HttpFunction::KnowledgeSearch => describe(crate::knowledge_search::routes()),
            HttpFunction::Widget => describe(crate::widget::routes()),
            HttpFunction::ChatApi => describe(crate::chat_api::routes()),
            HttpFunction::Inbox => describe(crate::inbox::routes()),
            HttpFunction::Agents => describe(crate::agents::routes()),
            HttpFunction::AgentActions => describe(crate::agent_actions::routes()),
            HttpFunction::AgentVersions => describe(crate::agent_versions::routes()),
            HttpFunction::AgentWidgets => describe(crate::agent_widgets::routes()),
            HttpFunction::EscalationRules => describe(crate::escalation_rules::routes()),
            HttpFunction::Channels => describe(crate::channels::routes()),
            HttpFunction::Whatsapp => describe(crate::whatsapp::routes()),
            HttpFunction::Messenger => describe(crate::messenger::routes()),
            HttpFunction::Instagram => describe(crate::instagram::routes()),
            HttpFunction::Telegram => describe(crate::telegram::routes()),
            HttpFunction::Slack => describe(crate::slack::routes()),
            HttpFunction::Teams => describe(crate::teams::routes()),
            HttpFunction::Email => describe(crate::email::routes()),
            HttpFunction::Models => describe(crate::models::routes()),
            HttpFunction::Plans => describe(crate::plans::routes()),
            HttpFunction::ProviderKeys => describe(crate::provider_keys::routes()),
            HttpFunction::PromptTemplates => describe(crate::prompt_templates::routes()),
            HttpFunction::AgentPackages => describe(crate::agent_packages::routes()),
            HttpFunction::AgentPreview => describe(crate::agent_preview::routes()),
        }
    }

    /// The function's routes bound to `deps` (the admin and auth functions take only its
    /// `Core`), without a fallback: what the local runner merges.
    pub fn bound(self, deps: AppDeps) -> Router {
        use chatapp::web::into_router;
        match self {
            HttpFunction::Auth => into_router(crate::auth::routes(), deps.core()),
            HttpFunction::Companies => into_router(crate::companies::routes(), deps.core()),
            HttpFunction::Team => into_router(crate::team::routes(), deps.core()),
            HttpFunction::Invitations => into_router(crate::invitations::routes(), deps.core()),
            HttpFunction::ApiKeys => into_router(crate::api_keys::routes(), deps.core()),
            HttpFunction::KnowledgeCategories => {
                into_router(crate::knowledge_categories::routes(), deps.scoped(crate::knowledge_categories::AWS))
            }
            HttpFunction::KnowledgeFiles => {
                into_router(crate::knowledge_files::routes(), deps.scoped(crate::knowledge_files::AWS))
            }
            HttpFunction::KnowledgeArticles => {
                into_router(crate::knowledge_articles::routes(), deps.scoped(crate::knowledge_articles::AWS))
            }
            HttpFunction::KnowledgeSearch => {
                into_router(crate::knowledge_search::routes(), deps.scoped(crate::knowledge_search::AWS))
            }
            HttpFunction::Widget => crate::widget::router(deps.scoped(crate::widget::AWS)),
            HttpFunction::ChatApi => into_router(crate::chat_api::routes(), deps.scoped(crate::chat_api::AWS)),
            HttpFunction::Inbox => into_router(crate::inbox::routes(), deps.scoped(crate::inbox::AWS)),
            HttpFunction::Agents => into_router(crate::agents::routes(), deps.core()),
            HttpFunction::AgentActions => into_router(crate::agent_actions::routes(), deps.core()),
            HttpFunction::AgentVersions => into_router(crate::agent_versions::routes(), deps.core()),
            HttpFunction::AgentWidgets => into_router(crate::agent_widgets::routes(), deps.core()),
            HttpFunction::EscalationRules => into_router(crate::escalation_rules::routes(), deps.core()),
            HttpFunction::Channels => into_router(crate::channels::routes(), deps.core()),
            HttpFunction::Whatsapp => into_router(crate::whatsapp::routes(), deps.scoped(crate::whatsapp::AWS)),
            HttpFunction::Messenger => into_router(crate::messenger::routes(), deps.scoped(crate::messenger::AWS)),
            HttpFunction::Instagram => into_router(crate::instagram::routes(), deps.scoped(crate::instagram::AWS)),
            HttpFunction::Telegram => into_router(crate::telegram::routes(), deps.scoped(crate::telegram::AWS)),
            HttpFunction::Slack => into_router(crate::slack::routes(), deps.scoped(crate::slack::AWS)),
            HttpFunction::Teams => into_router(crate::teams::routes(), deps.scoped(crate::teams::AWS)),
            HttpFunction::Email => into_router(crate::email::routes(), deps.scoped(crate::email::AWS)),
            HttpFunction::Models => into_router(crate::models::routes(), deps.core()),
            HttpFunction::Plans => into_router(crate::plans::routes(), deps.core()),
            HttpFunction::ProviderKeys => into_router(crate::provider_keys::routes(), deps.core()),
            HttpFunction::PromptTemplates => into_router(crate::prompt_templates::routes(), deps.core()),
            HttpFunction::AgentPackages => {
                into_router(crate::agent_packages::routes(), deps.scoped(crate::agent_packages::AWS))
            }
            HttpFunction::AgentPreview => {
                into_router(crate::agent_preview::routes(), deps.scoped(crate::agent_preview::AWS))
            }
        }
    }

    /// The function's router as Lambda runs it: its routes, and the JSON 404 for anything else.
    pub fn router(self, deps: AppDeps) -> Router {
        chatapp::web::with_not_found(self.bound(deps))
    }

    /// One request through the function's router, as Lambda would pass it (tests and the
    /// recorded events use this).
    pub async fn call(self, deps: &AppDeps, req: lambda_http::Request) -> axum::response::Response {
        use tower::ServiceExt;
        match self.router(deps.clone()).oneshot(req).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }

    /// The function's part of the OpenAPI document. Operation ids are prefixed with the
    /// function (`team_list`), so they stay unique across the whole API.
    pub fn openapi(self) -> utoipa::openapi::OpenApi {
        let mut doc = self.describe();
        let prefix = self.binary().replace('-', "_");
        chatapp::web::openapi::for_each_operation(&mut doc, |op, _| {
            if let Some(id) = &op.operation_id {
                op.operation_id = Some(format!("{prefix}_{id}"));
            }
        });
        doc
    }
}

/// The whole API's OpenAPI document (what `docs/openapi.json` holds).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = chatapp::web::openapi::base();
    for f in HttpFunction::ALL {
        doc.merge(f.openapi());
    }
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc
}

/// The document as committed in `docs/openapi.json`: pretty JSON with every object's keys
/// sorted, so the text does not depend on which serde_json features a build unified.
pub fn openapi_json() -> String {
    fn sorted(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<_> = map.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
            }
            serde_json::Value::Array(items) => serde_json::Value::Array(items.into_iter().map(sorted).collect()),
            other => other,
        }
    }
    let value = serde_json::to_value(openapi()).expect("the OpenAPI document serialises");
    serde_json::to_string_pretty(&sorted(value)).expect("a JSON value serialises")
}

/// The `main` of a function that needs only the `Core` (admin and auth functions): tracing,
/// the core once per cold start, then its router (without its OpenAPI description, which only
/// the document needs) on the Lambda Runtime API. Each `main.rs` names its own routes, so a
/// binary links only the code those routes reach.
pub async fn run_core(routes: fn() -> OpenApiRouter<Core>) -> Result<(), lambda_http::Error> {
    chatapp::app::init_tracing();
    let core = Core::from_config(Config::from_env()?)?;
    let routes = without_descriptions(routes);
    chatapp::web::run_on_lambda(chatapp::web::with_not_found(chatapp::web::into_router(routes, core))).await
}

/// The `main` of a function that uses the adapters (blob store, queue, vectors, models),
/// limited to the AWS access it declares.
pub async fn run_with_adapters(
    routes: fn() -> OpenApiRouter<AppDeps>,
    aws: AwsAccess,
) -> Result<(), lambda_http::Error> {
    let deps = adapters_for(aws).await?;
    let routes = without_descriptions(routes);
    chatapp::web::run_on_lambda(chatapp::web::with_not_found(chatapp::web::into_router(routes, deps))).await
}

/// Tracing, then the adapters once per cold start, limited to `aws`.
async fn adapters_for(aws: AwsAccess) -> Result<AppDeps, lambda_http::Error> {
    chatapp::app::init_tracing();
    Ok(AppDeps::from_config(Config::from_env()?).await?.scoped(aws))
}

/// The `widget` function: its routes with the per-agent CORS layer.
pub async fn run_widget() -> Result<(), lambda_http::Error> {
    let deps = adapters_for(crate::widget::AWS).await?;
    chatapp::web::run_on_lambda(without_descriptions(|| HttpFunction::Widget.router(deps))).await
}

/// The `widget-stream` function: the widget's routes with Lambda response streaming, so a chat
/// turn's server-sent events reach the browser as they are produced (deployed behind a
/// function URL in `RESPONSE_STREAM` mode; API Gateway would buffer them).
pub async fn run_widget_streaming_on_lambda() -> Result<(), lambda_http::Error> {
    serve_widget_streaming(adapters_for(crate::widget::AWS).await?).await
}

/// Polls the Lambda Runtime API (`AWS_LAMBDA_RUNTIME_API`) and answers each event with a
/// streamed response. Split from the entry point so tests can run it against their own deps.
pub async fn serve_widget_streaming(deps: AppDeps) -> Result<(), lambda_http::Error> {
    lambda_http::run_with_streaming_response(without_descriptions(|| HttpFunction::Widget.router(deps))).await
}
