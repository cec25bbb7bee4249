//! Private notes: mentions of colleagues, never shown to the customer (history or events) nor
//! put in the model's prompt, visibility (another tenant's conversation, a colleague's), bad input.

use chatapp_functions::http_function::HttpFunction::{Inbox, Widget};
use chatapp_tests::{assert_error, Req, Tenant, TestEnv};
use http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

/// An active AI agent of `t` with a widget (as the chat tests set one up).
pub(super) async fn widget_agent(env: &TestEnv, t: &Tenant) -> Uuid {
    let owner = env.owner().await;
    let agent: Uuid = owner
        .query_one(
            "INSERT INTO chatapp_agents (company_id, name, status, system_prompt)
             VALUES ($1, 'Ada', 'active', 'You help customers of Acme.') RETURNING id",
            &[&t.company_id],
        )
        .await
        .unwrap()
        .get(0);
    owner
        .execute(
            "INSERT INTO chatapp_widget_configs (company_id, agent_id, title, welcome_message)
             VALUES ($1, $2, 'Acme help', 'Hi! Ask me anything.')",
            &[&t.company_id, &agent],
        )
        .await
        .unwrap();
    agent
}

/// A conversation a customer started on the widget: (conversation id, session token).
pub(super) async fn widget_session(env: &TestEnv, agent: Uuid, customer: Value) -> (Uuid, String) {
    let r = env.send(Widget, Req::post(&format!("/widget/agents/{agent}/sessions")).json(customer)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    (r.body["conversation_id"].as_str().unwrap().parse().unwrap(), r.body["session_token"].as_str().unwrap().into())
}

fn notes_path(conv: Uuid) -> String {
    format!("/inbox/conversations/{conv}/notes")
}

#[tokio::test]
async fn notes_mention_colleagues_and_never_reach_the_customer() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "professional").await;
    let other = env.company("beta", "professional").await;
    let (sam, sam_token) = env.member(&t, "sam@acme.test", "support_agent", json!({})).await;
    let (gone, _) = env.member(&t, "gone@acme.test", "support_agent", json!({})).await;
    env.owner().await.execute("UPDATE chatapp_users SET is_active = false WHERE id = $1", &[&gone]).await.unwrap();
    let agent = widget_agent(&env, &t).await;
    let (conv, session) = widget_session(&env, agent, json!({"name": "Dana", "email": "dana@example.com"})).await;

    // Mentions: an active colleague (any case), the admin; not an unknown address, a
    // deactivated colleague, or someone of another company. All of them stay in the text.
    let content = format!(
        "  Refund approved (zebrafinch). @SAM@acme.test please confirm, cc @{}, @ghost@acme.test, \
         @gone@acme.test, @{} and @sam@acme.test again.  ",
        t.admin_email, other.admin_email
    );
    let r = env.send(Inbox, Req::post(&notes_path(conv)).token(&t.admin_token).json(json!({"content": content}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let note = r.body;
    assert_eq!(note["content"], content.trim());
    assert_eq!(note["conversation_id"], conv.to_string());
    assert_eq!(note["user_id"], t.admin_id.to_string());
    assert_eq!(note["author_name"], "Admin");
    assert_eq!(note["mentions"], json!([sam.to_string(), t.admin_id.to_string()]));
    assert!(note["content"].as_str().unwrap().contains("@ghost@acme.test"));

    // A support agent notes on an unassigned conversation too; the list is oldest first.
    let r = env
        .send(Inbox, Req::post(&notes_path(conv)).token(&sam_token).json(json!({"content": "On it, no mentions."})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["mentions"], json!([]));
    assert_eq!(r.body["author_name"], "sam");
    let list = env.send(Inbox, Req::get(&notes_path(conv)).token(&sam_token)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], note["id"]);
    assert_eq!(items[1]["content"], "On it, no mentions.");
    assert_eq!(env.audit_count("conversation.note").await, 2);
    // Each note is an internal event for the inbox.
    assert_eq!(
        env.count(&format!(
            "chatapp_conversation_events WHERE conversation_id = '{conv}' AND type = 'note.created' AND internal"
        ))
        .await,
        2
    );

    // The customer sees neither note: not in the history, not in the events.
    let history = env.send(Widget, Req::get(&format!("/widget/conversations/{conv}/messages")).token(&session)).await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.body);
    assert!(!history.body.to_string().contains("zebrafinch"), "{}", history.body);
    assert!(!history.body.to_string().contains("On it"), "{}", history.body);
    let events = env
        .send(Widget, Req::get(&format!("/widget/conversations/{conv}/events?after=0&wait=0")).token(&session))
        .await;
    assert_eq!(events.status, StatusCode::OK, "{}", events.body);
    let text = events.body.to_string();
    assert!(!text.contains("zebrafinch") && !text.contains("note.created"), "{text}");
    // A session token is not an inbox user.
    assert_eq!(env.send(Inbox, Req::get(&notes_path(conv)).token(&session)).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn notes_on_invisible_conversations_and_bad_notes_are_refused() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "professional").await;
    let other = env.company("beta", "professional").await;
    let (_, sam_token) = env.member(&t, "sam@acme.test", "support_agent", json!({})).await;
    let agent = widget_agent(&env, &t).await;
    let (conv, _) = widget_session(&env, agent, json!({})).await;
    let body = json!({"content": "A private remark."});

    // Another tenant's conversation, an unknown id, a malformed id: 404, nothing stored.
    assert_error!(
        env.send(Inbox, Req::post(&notes_path(conv)).token(&other.admin_token).json(body.clone())).await,
        StatusCode::NOT_FOUND,
        "not_found"
    );
    assert_error!(
        env.send(Inbox, Req::get(&notes_path(conv)).token(&other.admin_token)).await,
        StatusCode::NOT_FOUND,
        "not_found"
    );
    assert_error!(
        env.send(Inbox, Req::post(&notes_path(Uuid::new_v4())).token(&t.admin_token).json(body.clone())).await,
        StatusCode::NOT_FOUND,
        "not_found"
    );
    assert_error!(
        env.send(Inbox, Req::get("/inbox/conversations/not-a-uuid/notes").token(&t.admin_token)).await,
        StatusCode::NOT_FOUND,
        "not_found"
    );

    // Bad notes: 400 naming the field, nothing stored.
    for bad in [
        json!({"content": ""}),
        json!({"content": "   \n\t "}),
        json!({"content": "x".repeat(10_001)}),
        json!({"content": 5}),
        json!({}),
        json!({"content": "fine", "pinned": true}),
    ] {
        assert_error!(
            env.send(Inbox, Req::post(&notes_path(conv)).token(&sam_token).json(bad)).await,
            StatusCode::BAD_REQUEST,
            "validation_failed"
        );
    }
    let r = env.send(Inbox, Req::post(&notes_path(conv)).token(&sam_token).json(json!({"content": " "}))).await;
    assert!(r.body["error"]["message"].as_str().unwrap().contains("content"), "{}", r.body);
    assert_eq!(env.count("chatapp_conversation_notes").await, 0);
    assert_eq!(env.count("chatapp_conversation_events WHERE type = 'note.created'").await, 0);
    assert_eq!(env.audit_count("conversation.note").await, 0);

    // 10000 characters is the limit, not past it.
    let r = env
        .send(Inbox, Req::post(&notes_path(conv)).token(&sam_token).json(json!({"content": "y".repeat(10_000)})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // Once a colleague owns the conversation, a support agent no longer sees it: 404.
    env.owner()
        .await
        .execute(
            "UPDATE chatapp_conversations SET status = 'with_human', assigned_agent_id = $2 WHERE id = $1",
            &[&conv, &t.admin_id],
        )
        .await
        .unwrap();
    assert_error!(
        env.send(Inbox, Req::post(&notes_path(conv)).token(&sam_token).json(body.clone())).await,
        StatusCode::NOT_FOUND,
        "not_found"
    );
    assert_error!(
        env.send(Inbox, Req::get(&notes_path(conv)).token(&sam_token)).await,
        StatusCode::NOT_FOUND,
        "not_found"
    );
    // Its owner still can.
    let r = env.send(Inbox, Req::post(&notes_path(conv)).token(&t.admin_token).json(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(env.count("chatapp_conversation_notes").await, 2);
}

#[tokio::test]
async fn notes_never_reach_the_models_prompt() {
    use chatapp_tests::model_server::{model_requests, model_server, openai_answer, Provider};
    let model = model_server(Provider::OpenAi, |_, _| openai_answer("We open at nine.")).await;
    let base = format!("{}/v1", model.uri());
    let env = TestEnv::with(&[
        ("CHAT_PROVIDER", "openai"),
        ("CHAT_BASE_URL", base.as_str()),
        ("CHAT_API_KEY", "sk-test"),
        ("CHAT_MODEL", "gpt-4o-mini"),
    ])
    .await;
    let t = env.company("acme", "professional").await;
    let (_, sam_token) = env.member(&t, "sam@acme.test", "support_agent", json!({})).await;
    let agent = widget_agent(&env, &t).await;
    let (conv, session) = widget_session(&env, agent, json!({"name": "Dana"})).await;
    let turn = super::say(&env, conv, &session, "I want to talk to a human please").await;
    assert_eq!(turn["handoff"], true, "{turn}");

    // Sam takes it, notes something private, answers, and hands back to the AI.
    let inbox = |req: Req| env.send(Inbox, req.token(&sam_token));
    let conv_at = |rest: &str| format!("/inbox/conversations/{conv}{rest}");
    assert_eq!(inbox(Req::post(&conv_at("/claim"))).await.status, StatusCode::OK);
    let note = json!({"content": "Private: kingfisher account, do not mention the refund."});
    assert_eq!(inbox(Req::post(&notes_path(conv)).json(note)).await.status, StatusCode::CREATED);
    let reply = json!({"content": "Hello Dana, Sam here. Your parcel left today."});
    assert_eq!(inbox(Req::post(&conv_at("/messages")).json(reply)).await.status, StatusCode::CREATED);
    assert_eq!(inbox(Req::post(&conv_at("/handback"))).await.status, StatusCode::OK);

    // The AI's next turn sees the conversation, Sam's reply included, but never the note.
    let earlier = model_requests(&model).await.len();
    let turn = super::say(&env, conv, &session, "When do you open?").await;
    assert_eq!(turn["reply"]["content"], "We open at nine.", "{turn}");
    let requests = model_requests(&model).await;
    assert!(requests.len() > earlier);
    for request in &requests[earlier..] {
        let sent = request.to_string();
        assert!(sent.contains("Your parcel left today."), "the history is in the prompt: {sent}");
        assert!(!sent.contains("kingfisher"), "a note reached the model: {sent}");
    }
}
