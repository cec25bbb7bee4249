//! `chatapp-local`: the whole platform on one machine with embedded defaults. Creates the
//! database if needed, migrates, seeds (plans, packages, demo company), and serves every HTTP
//! function's router on 127.0.0.1. `chatapp-local openapi` prints the OpenAPI document.

use chatapp::app::AppDeps;
use chatapp::config::Config;
use chatapp_local as local;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // `chatapp-local openapi`: the OpenAPI document (what docs/openapi.json holds), then exit.
    if std::env::args().nth(1).as_deref() == Some("openapi") {
        println!("{}", chatapp_functions::http_function::openapi_json());
        return Ok(());
    }
    chatapp::app::init_tracing();
    let cfg = Config::from_env()?;
    if let Err(e) = chatapp::db::tls::ensure_database(cfg.migration_database_url.expose()).await {
        eprintln!(
            "PostgreSQL is not reachable at {}: {e}\n\
             Start it with:  pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n\
             (or install it: apt-get install -y postgresql), or point MIGRATION_DATABASE_URL and\n\
             DATABASE_URL at a running server.",
            chatapp::db::tls::redact(cfg.migration_database_url.expose())
        );
        std::process::exit(2);
    }
    chatapp_functions::migrate::run(&cfg).await?;
    let demo = chatapp::seed::demo_tenant(&cfg).await?;
    let listener = TcpListener::bind(&cfg.local_bind).await?;
    let addr = listener.local_addr()?;
    let deps = AppDeps::from_config(cfg).await?;
    println!("chatapp is running at http://{addr}");
    for f in chatapp_functions::http_function::HttpFunction::ALL {
        for path in f.openapi().paths.paths.keys() {
            println!("  http://{addr}{path}  -> functions/{}", f.binary());
        }
    }
    println!("API reference: http://{addr}/docs (OpenAPI document at /openapi.json)");
    println!("Demo company {} — sign in with POST /auth/login as {}", demo.company_id, demo.admin_email);
    match &demo.generated_password {
        Some(p) => println!("  generated password (shown once): {p}"),
        None => println!("  password: as set in DEMO_ADMIN_PASSWORD or when first seeded"),
    }
    // The demo help centre's articles: indexed by the worker below on first start.
    demo.queue_ingestion(deps.queue.as_ref()).await?;
    println!("Demo chat (offline, extractive answers with citations): http://{addr}/demo");
    println!("Support agents' inbox: http://{addr}/agent (sign in as a support agent or the demo admin)");
    // The queue consumers run in-process here (on AWS, SQS event source mappings drive them).
    let worker = deps.clone();
    tokio::spawn(async move {
        chatapp_functions::ingest_worker::run_local(&worker, std::time::Duration::from_millis(500)).await
    });
    let worker = deps.scoped(chatapp_functions::escalation_worker::AWS);
    tokio::spawn(async move {
        chatapp_functions::escalation_worker::run_local(&worker, std::time::Duration::from_millis(250)).await
    });
    let worker = deps.scoped(chatapp_functions::channel_worker::AWS);
    tokio::spawn(async move {
        chatapp_functions::channel_worker::run_local(&worker, std::time::Duration::from_millis(250)).await
    });
    let worker = deps.scoped(chatapp_functions::channel_sender::AWS);
    tokio::spawn(async move {
        chatapp_functions::channel_sender::run_local(&worker, std::time::Duration::from_millis(250)).await
    });
    let relay = deps.scoped(chatapp_functions::outbox_relay::AWS);
    tokio::spawn(
        async move { chatapp_functions::outbox_relay::run_local(&relay, std::time::Duration::from_secs(5)).await },
    );
    local::serve_site(listener, deps, local::Site { demo_agent: Some(demo.agent_id) }).await;
    Ok(())
}
