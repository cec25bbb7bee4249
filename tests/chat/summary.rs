//! The running summary of long conversations.

use chatapp_tests::TestEnv;
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{say, session, setup};

#[tokio::test]
async fn a_long_conversation_keeps_a_running_summary_in_the_prompt() {
    let server = MockServer::start().await;
    let stream = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Noted, thanks.\"}}]}\n\n\
                  data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
                  data: [DONE]\n\n";
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).insert_header("content-type", "text/event-stream").set_body_string(stream),
        )
        .mount(&server)
        .await;
    let base = format!("{}/v1", server.uri());
    let env =
        TestEnv::with(&[("CHAT_PROVIDER", "openai"), ("CHAT_BASE_URL", &base), ("CHAT_MODEL", "gpt-4o-mini")]).await;
    let t = env.company("acme", "starter").await;
    let chat = setup(&env, &t, json!({}), json!({})).await;
    let (conv, token) = session(&env, chat.agent, json!({})).await;
    say(&env, conv, &token, "My parcel 4711 never arrived at my flat in Leeds. Can you check?").await;
    for i in 0..9 {
        say(&env, conv, &token, &format!("Follow-up question number {i} about the delivery.")).await;
    }
    // 20 messages; the next turn's window holds the last 11 and its own, so the 9 before are
    // summarised: 5 after the 8th turn, 4 more after the 10th.
    let row = env
        .owner()
        .await
        .query_one("SELECT summary, summarized_messages FROM chatapp_conversations WHERE id = $1", &[&conv])
        .await
        .unwrap();
    let (summary, covered): (String, i32) = (row.get(0), row.get(1));
    assert_eq!(covered, 9);
    let lines: Vec<&str> = summary.lines().collect();
    assert_eq!(lines.len(), 9, "{summary}");
    assert_eq!(lines[0], "Customer: My parcel 4711 never arrived at my flat in Leeds.");
    assert_eq!(lines[1], "Assistant: Noted, thanks.");
    assert_eq!(lines[7], "Assistant: Noted, thanks.");
    assert_eq!(lines[8], "Customer: Follow-up question number 3 about the delivery.");

    // The next turn's prompt carries the summary; the opening message itself has left the window.
    say(&env, conv, &token, "Any news?").await;
    let requests = server.received_requests().await.unwrap();
    let last: Value = serde_json::from_slice(&requests.last().unwrap().body).unwrap();
    let messages = last["messages"].as_array().unwrap();
    let system = messages[0]["content"].as_str().unwrap();
    assert!(system.contains("Summary of the conversation so far"), "{system}");
    assert!(system.contains("parcel 4711"), "{system}");
    assert!(messages[1..].iter().all(|m| !m["content"].as_str().unwrap().contains("4711")), "{last}");
    // Nothing falls between the summary and the window.
    assert!(system.contains("Follow-up question number 3"), "{system}");
    assert!(messages[1..].iter().any(|m| m["content"] == "Follow-up question number 4 about the delivery."), "{last}");
    assert_eq!(messages.last().unwrap()["content"], "Any news?");
    assert_eq!(messages.len(), 1 + 12, "system prompt plus the window");
}

#[tokio::test]
async fn a_summary_that_fell_behind_catches_up_from_the_stored_messages() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let chat = setup(&env, &t, json!({}), json!({})).await;
    let (conv, token) = session(&env, chat.agent, json!({})).await;
    // 30 messages the summary never saw (an exchange with a support agent, say): more than a
    // turn reads, so the summary's step needs them read back.
    let owner = env.owner().await;
    owner
        .execute(
            "INSERT INTO chatapp_messages (conversation_id, company_id, role, content, created_at)
             SELECT $1, $2, (CASE WHEN g % 2 = 1 THEN 'user' ELSE 'human_agent' END)::message_role,
                    'Earlier message ' || g, now() - interval '1 hour' + g * interval '1 second'
             FROM generate_series(1, 30) g",
            &[&conv, &t.company_id],
        )
        .await
        .unwrap();
    say(&env, conv, &token, "Any news?").await;
    // 32 messages now; the next turn's window holds the last 11, so the 21 before are summarised.
    let row = owner
        .query_one("SELECT summary, summarized_messages FROM chatapp_conversations WHERE id = $1", &[&conv])
        .await
        .unwrap();
    let (summary, covered): (String, i32) = (row.get(0), row.get(1));
    assert_eq!(covered, 21);
    let lines: Vec<&str> = summary.lines().collect();
    assert_eq!(lines.len(), 21, "{summary}");
    assert_eq!(lines[0], "Customer: Earlier message 1");
    assert_eq!(lines[1], "Support agent: Earlier message 2");
    assert_eq!(lines[20], "Customer: Earlier message 21");
}
