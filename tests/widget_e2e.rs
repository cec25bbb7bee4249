//! The embeddable widget end to end in headless Chromium: the local runner serves the demo
//! page, `widget.js` and every function; the demo help centre is indexed; a Playwright script
//! (tests/e2e/widget.mjs, playwright-core driving Debian's chromium) opens the page, asks a
//! question, sees the streamed answer citing the seeded knowledge, and leaves a CSAT rating.
//! scripts/test.sh installs chromium and playwright-core.

use std::process::Command;

use chatapp_local::{serve_site, Site};
use chatapp_tests::TestEnv;
use tokio::net::TcpListener;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_page_answers_a_question_with_a_citation_in_chromium() {
    // A second server plays the `widget-stream` function URL: the widget config names it as
    // `stream_url`, so the page (served by the first) must send its chat turn there, cross-origin.
    let stream_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stream_url = format!("http://{}", stream_listener.local_addr().unwrap());
    let env = TestEnv::with(&[("DEMO_ADMIN_PASSWORD", "demo-password-123"), ("WIDGET_STREAM_URL", &stream_url)]).await;
    let demo = chatapp::seed::demo_tenant(&env.cfg).await.unwrap();
    demo.queue_ingestion(env.deps.queue.as_ref()).await.unwrap();
    let drained = chatapp_functions::ingest_worker::drain(&env.deps).await.unwrap();
    assert_eq!((drained.received, drained.failed), (3, 0));

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve_site(listener, env.deps.clone(), Site { demo_agent: Some(demo.agent_id) }));
    let stream_server = tokio::spawn(serve_site(stream_listener, env.deps.clone(), Site::default()));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/e2e/widget.mjs");
    let url = format!("http://{addr}/demo");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .env("EXPECT_TURN_ORIGIN", &stream_url)
            .args([script, &url, "How long do refunds take?", "five business days", "Refunds"])
            .output()
            .expect("node must be installed (scripts/test.sh installs it with chromium and playwright-core)")
    })
    .await
    .unwrap();
    server.abort();
    stream_server.abort();
    let log = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "widget e2e failed:\n{log}");
    assert_eq!(env.count("chatapp_messages WHERE role = 'assistant'").await, 1, "{log}");
    assert_eq!(
        env.count("chatapp_conversations WHERE status = 'resolved' AND context ->> 'csat_rating' = '5'").await,
        1,
        "{log}"
    );
}
