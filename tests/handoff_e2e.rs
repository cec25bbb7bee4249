//! The human handoff end to end in headless Chromium: the local runner serves the demo page
//! (the widget) and the inbox page (`/agent`) and every function; the escalation worker and the
//! outbox relay run in-process as `chatapp-local` runs them. A Playwright script
//! (tests/e2e/handoff.mjs, playwright-core driving Debian's chromium) plays a customer who asks
//! for a person and a support agent who signs in, claims the conversation from the Queue with
//! the button (still offline, so the worker assigns it to nobody), goes online, replies (the
//! customer sees it live), writes an internal note (the customer never sees it) and hands
//! the conversation back to the AI, which answers the customer's next question.
//! scripts/test.sh installs chromium and playwright-core.

use std::process::Command;
use std::time::Duration;

use chatapp_local::{serve_site, Site};
use chatapp_tests::TestEnv;
use tokio::net::TcpListener;
use uuid::Uuid;

const AGENT_EMAIL: &str = "dana@demo.chatapp.local";
const AGENT_PASSWORD: &str = "dana-support-password-1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_is_handed_to_a_support_agent_and_back_in_chromium() {
    let env = TestEnv::with(&[("DEMO_ADMIN_PASSWORD", "demo-password-123")]).await;
    let demo = chatapp::seed::demo_tenant(&env.cfg).await.unwrap();
    demo.queue_ingestion(env.deps.queue.as_ref()).await.unwrap();
    let drained = chatapp_functions::ingest_worker::drain(&env.deps).await.unwrap();
    assert_eq!((drained.received, drained.failed), (3, 0));

    // Dana, a support agent of the demo company, offline until she says otherwise.
    let hash = chatapp::auth::password::hash_password(AGENT_PASSWORD).unwrap();
    let owner = env.owner().await;
    owner.batch_execute("BEGIN; SELECT set_config('app.user_role', 'master_admin', true)").await.unwrap();
    let dana: Uuid = owner
        .query_one(
            "INSERT INTO chatapp_users (email, name, company_id, role, password_hash, email_verified)
             VALUES ($1, 'Dana', $2, 'support_agent', $3, now()) RETURNING id",
            &[&AGENT_EMAIL, &demo.company_id, &hash],
        )
        .await
        .unwrap()
        .get(0);
    owner
        .execute(
            "INSERT INTO chatapp_support_agent_status (user_id, company_id, status) VALUES ($1, $2, 'offline')
             ON CONFLICT (user_id) DO NOTHING",
            &[&dana, &demo.company_id],
        )
        .await
        .unwrap();
    owner.batch_execute("COMMIT").await.unwrap();

    // The queue consumers, in-process as chatapp-local runs them (on AWS, SQS drives them).
    let worker = env.deps.clone();
    let escalations = tokio::spawn(async move {
        chatapp_functions::escalation_worker::run_local(&worker, Duration::from_millis(200)).await
    });
    let relay_deps = env.deps.clone();
    let relay = tokio::spawn(async move {
        chatapp_functions::outbox_relay::run_local(&relay_deps, Duration::from_millis(200)).await
    });

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve_site(listener, env.deps.clone(), Site { demo_agent: Some(demo.agent_id) }));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/e2e/handoff.mjs");
    let demo_url = format!("http://{addr}/demo");
    let agent_url = format!("http://{addr}/agent");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .args([script, &demo_url, &agent_url, AGENT_EMAIL, AGENT_PASSWORD])
            .output()
            .expect("node must be installed (scripts/test.sh installs it with chromium and playwright-core)")
    })
    .await
    .unwrap();
    server.abort();
    escalations.abort();
    relay.abort();
    let log = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "handoff e2e failed:\n{log}");

    // What the browsers saw is what was stored.
    assert_eq!(
        env.count("chatapp_messages WHERE role = 'human_agent' AND content = 'Hello from Dana in support'").await,
        1,
        "{log}"
    );
    assert_eq!(env.count("chatapp_conversation_notes WHERE content = 'secret-note-xyz'").await, 1, "{log}");
    // The agent took it with the claim button, not from the worker.
    assert_eq!(env.audit_count("conversation.claim").await, 1, "{log}");
    assert_eq!(env.count("chatapp_audit_logs WHERE action = 'conversation.assign'").await, 0, "{log}");
    assert_eq!(
        env.count(&format!(
            "chatapp_escalations WHERE status = 'returned_to_ai' AND assigned_to = '{dana}' \
             AND first_response_time IS NOT NULL"
        ))
        .await,
        1,
        "{log}"
    );
    assert_eq!(
        env.count("chatapp_conversations WHERE status = 'active' AND assigned_agent_id IS NULL").await,
        1,
        "{log}"
    );
    // The handoff message and the answer after the handback.
    assert_eq!(env.count("chatapp_messages WHERE role = 'assistant'").await, 2, "{log}");
    assert_eq!(
        env.count("chatapp_messages WHERE role = 'assistant' AND content ILIKE '%five business days%'").await,
        1,
        "{log}"
    );
    // The note's event is internal: no customer ever reads it.
    assert_eq!(env.count("chatapp_conversation_events WHERE type = 'note.created' AND internal").await, 1, "{log}");
}
