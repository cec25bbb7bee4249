//! `scripts/replay-channel` against the local runner (served here in-process) and its own
//! provider stand-in (`--serve-provider`, a child process): a WhatsApp, a Teams and an email
//! message replayed, signed as the providers would (Teams and email with the stand-in's test
//! keys, which the platform trusts because its OpenID and certificate URLs point there),
//! stored, answered, and the replies accepted by the stand-in.

use std::process::Stdio;
use std::time::Duration;

use chatapp_tests::TestEnv;
use serde_json::json;
use tokio::process::Command;
use uuid::Uuid;

use super::*;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/replay-channel");
const APP_ID: &str = "5b1c6a4e-3f2d-4c8b-9a7e-0d1e2f3a4b5c";
const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:replay-inbound";

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Runs the script with `args`; its output, which must say it succeeded.
async fn replay(args: &[&str]) -> String {
    let out = Command::new("python3").arg(SCRIPT).args(args).output().await.expect("python3");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "replay-channel {args:?} failed:\n{text}");
    assert!(text.contains("HTTP 200"), "{text}");
    text
}

#[tokio::test]
async fn replayed_whatsapp_teams_and_email_messages_are_answered_through_the_stand_in() {
    let port = free_port();
    let mut stand_in = Command::new("python3")
        .arg(SCRIPT)
        .args(["--serve-provider", &port.to_string()])
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("python3");
    let provider = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the stand-in did not start: {:?}", stand_in.try_wait());

    let openid = format!("{provider}/v1/.well-known/openidconfiguration");
    let token = format!("{provider}/botframework.com/oauth2/v2.0/token");
    let graph = format!("{provider}/v21.0");
    let env = TestEnv::with(&[
        ("CHANNEL_GRAPH_URL", graph.as_str()),
        ("CHANNEL_TEAMS_OPENID_URL", openid.as_str()),
        ("CHANNEL_TEAMS_TOKEN_URL", token.as_str()),
        ("CHANNEL_SNS_CERT_HOST", "127.0.0.1"),
        ("PUBLIC_API_URL", "https://hooks.example.test"),
        ("EMAIL_SENDER", "ses"),
        ("AWS_ENDPOINT_URL", provider.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
    ])
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(chatapp_local::serve(listener, env.deps.clone()));
    let (t, agent) = company_with_agent(&env, "replay").await;

    let whatsapp =
        json!({"access_token": "EAAG-local", "app_secret": "local-app-secret", "phone_number_id": "106540352242922"});
    let (wa, _) = create_channel(&env, &t, agent, "whatsapp", whatsapp).await;
    let (teams, _) =
        create_channel(&env, &t, agent, "teams", json!({"app_id": APP_ID, "app_password": "local-password"})).await;
    let address = format!("support-{}@acme.test", Uuid::new_v4().simple());
    let (mail, _) = create_channel(&env, &t, agent, "email", json!({"address": address, "topic_arn": TOPIC})).await;

    let (wa, teams, mail) = (wa.to_string(), teams.to_string(), mail.to_string());
    replay(&["whatsapp", &wa, "--secret", "local-app-secret", "--fresh", "--base", &base]).await;
    replay(&["teams", &teams, "--app-id", APP_ID, "--fresh", "--base", &base, "--provider", &provider]).await;
    replay(&["email", &mail, "--to", &address, "--topic", TOPIC, "--base", &base, "--provider", &provider]).await;
    assert_eq!(count_for(&env, "chatapp_channel_inbound", t.company_id).await, 3);

    // Answered, and each reply accepted by the stand-in speaking the provider's API.
    assert_eq!(run_workers(&env).await, (3, 3));
    let sent: Vec<(String, i32, Option<String>)> = deliveries(&env, t.company_id).await;
    assert_eq!(sent, vec![("sent".to_string(), 1, None); 3], "{sent:?}");

    // A Teams token for another bot is refused: the key is trusted, the audience is not.
    let out = Command::new("python3")
        .arg(SCRIPT)
        .args(["teams", &teams, "--app-id", "00000000-0000-4000-8000-000000000000", "--fresh", "--base", &base])
        .args(["--provider", &provider])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("HTTP 403"), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(count_for(&env, "chatapp_channel_inbound", t.company_id).await, 3);

    server.abort();
    stand_in.kill().await.ok();
}
