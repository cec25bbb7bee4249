//! Presence: the caller's status round trip, bad input, capacity bounds, the drain job going
//! online queues, heartbeats, and the team's presence for the transfer picker.

use chatapp_functions::http_function::HttpFunction::Inbox;
use chatapp_tests::{assert_error, Req, TestEnv};
use http::StatusCode;
use serde_json::{json, Value};

/// Escalation jobs written: still in the outbox, or relayed to the queue already.
async fn escalation_jobs(env: &TestEnv) -> i64 {
    env.count("chatapp_outbox WHERE queue = 'escalation'").await
        + env.count("chatapp_jobs WHERE queue = 'escalation'").await
}

async fn me(env: &TestEnv, token: &str) -> Value {
    let r = env.send(Inbox, Req::get("/inbox/me").token(token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

async fn set_status(env: &TestEnv, token: &str, body: Value) -> Value {
    let r = env.send(Inbox, Req::put("/inbox/me/status").token(token).json(body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

#[tokio::test]
async fn status_round_trip_bad_input_and_capacity_bounds() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "professional").await;
    let (sam, sam_token) = env.member(&t, "sam@acme.test", "support_agent", json!({})).await;

    // First use makes the row: offline, capacity 5, nothing owned.
    let first = me(&env, &sam_token).await;
    assert_eq!(first["user_id"], sam.to_string());
    assert_eq!(first["status"], "offline");
    assert_eq!(first["max_concurrent_chats"], 5);
    assert_eq!(first["current_chat_count"], 0);
    assert!(first["status_message"].is_null());
    assert_eq!(me(&env, &sam_token).await, first, "a second read changes nothing");
    assert_eq!(env.count(&format!("chatapp_support_agent_status WHERE user_id = '{sam}'")).await, 1);

    // A new status moves status_changed_at; the same status with a new capacity does not.
    let busy = set_status(&env, &sam_token, json!({"status": "busy", "status_message": " At lunch "})).await;
    assert_eq!(busy["status"], "busy");
    assert_eq!(busy["status_message"], "At lunch");
    assert_eq!(busy["max_concurrent_chats"], 5);
    assert_ne!(busy["status_changed_at"], first["status_changed_at"]);
    let again = set_status(&env, &sam_token, json!({"status": "busy", "max_concurrent_chats": 3})).await;
    assert_eq!(again["status_changed_at"], busy["status_changed_at"]);
    assert_eq!(again["max_concurrent_chats"], 3);
    assert!(again["status_message"].is_null(), "the message goes with the status: {again}");
    assert_eq!(me(&env, &sam_token).await, again);
    assert_eq!(env.audit_count("support_agent.status").await, 2);

    // Bad input: 400 naming the field, the row unchanged, no audit row, no job.
    let long = "x".repeat(256);
    for body in [
        json!({"status": "sleeping"}),
        json!({"status": "ONLINE"}),
        json!({"status": 1}),
        json!({}),
        json!({"status": "online", "max_concurrent_chats": 101}),
        json!({"status": "online", "max_concurrent_chats": -1}),
        json!({"status": "online", "max_concurrent_chats": "5"}),
        json!({"status": "online", "status_message": long}),
        json!({"status": "online", "extra": true}),
    ] {
        let r = env.send(Inbox, Req::put("/inbox/me/status").token(&sam_token).json(body)).await;
        assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
    }
    let r = env.send(Inbox, Req::put("/inbox/me/status").token(&sam_token).json(json!({"status": "sleeping"}))).await;
    assert!(r.body["error"]["message"].as_str().unwrap().contains("status"), "{}", r.body);
    let r = env
        .send(
            Inbox,
            Req::put("/inbox/me/status").token(&sam_token).json(json!({"status": "busy", "max_concurrent_chats": 101})),
        )
        .await;
    assert!(r.body["error"]["message"].as_str().unwrap().contains("max_concurrent_chats"), "{}", r.body);
    assert_error!(
        env.send(Inbox, Req::put("/inbox/me/status").token(&sam_token).raw("{")).await,
        StatusCode::BAD_REQUEST,
        "invalid_json"
    );
    assert_eq!(me(&env, &sam_token).await, again, "a refused change stored something");
    assert_eq!(env.audit_count("support_agent.status").await, 2);
    assert_eq!(escalation_jobs(&env).await, 0);

    // The bounds themselves are accepted.
    let zero = set_status(&env, &sam_token, json!({"status": "away", "max_concurrent_chats": 0})).await;
    assert_eq!(zero["max_concurrent_chats"], 0);
    let hundred = set_status(&env, &sam_token, json!({"status": "away", "max_concurrent_chats": 100})).await;
    assert_eq!(hundred["max_concurrent_chats"], 100);
    let message = "m".repeat(255);
    let full = set_status(&env, &sam_token, json!({"status": "away", "status_message": message})).await;
    assert_eq!(full["status_message"].as_str().unwrap().len(), 255);

    // Not signed in: 401. A master admin belongs to no company: no presence of their own.
    assert_eq!(env.send(Inbox, Req::get("/inbox/me")).await.status, StatusCode::UNAUTHORIZED);
    let master = env.master_token().await;
    assert_error!(
        env.send(Inbox, Req::get(&format!("/inbox/me?company_id={}", t.company_id)).token(&master)).await,
        StatusCode::FORBIDDEN,
        "forbidden"
    );
    assert_error!(
        env.send(
            Inbox,
            Req::put(&format!("/inbox/me/status?company_id={}", t.company_id))
                .token(&master)
                .json(json!({"status": "online"}))
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden"
    );
}

#[tokio::test]
async fn going_online_queues_exactly_one_drain_job() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "professional").await;
    let (_, sam_token) = env.member(&t, "sam@acme.test", "support_agent", json!({})).await;

    set_status(&env, &sam_token, json!({"status": "busy"})).await;
    assert_eq!(escalation_jobs(&env).await, 0, "busy takes no conversations");
    set_status(&env, &sam_token, json!({"status": "online"})).await;
    assert_eq!(escalation_jobs(&env).await, 1, "going online wakes the assignment once");
    let owner = env.owner().await;
    let payloads: Vec<Value> = owner
        .query(
            "SELECT payload FROM chatapp_outbox WHERE queue = 'escalation'
             UNION ALL SELECT payload FROM chatapp_jobs WHERE queue = 'escalation'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(payloads.len(), 1);
    let text = payloads[0].to_string();
    assert!(text.contains("drain") && text.contains(&t.company_id.to_string()), "{text}");

    // Online again with the same (or a smaller) capacity: nothing new to assign.
    set_status(&env, &sam_token, json!({"status": "online"})).await;
    set_status(&env, &sam_token, json!({"status": "online", "max_concurrent_chats": 2})).await;
    assert_eq!(escalation_jobs(&env).await, 1);
    // More capacity while online: another drain.
    set_status(&env, &sam_token, json!({"status": "online", "max_concurrent_chats": 4})).await;
    assert_eq!(escalation_jobs(&env).await, 2);
    // Away and back: one more.
    set_status(&env, &sam_token, json!({"status": "away"})).await;
    assert_eq!(escalation_jobs(&env).await, 2);
    set_status(&env, &sam_token, json!({"status": "online"})).await;
    assert_eq!(escalation_jobs(&env).await, 3);
    assert_eq!(env.audit_count("support_agent.status").await, 7);
}

#[tokio::test]
async fn heartbeats_keep_presence_alive_and_end_auto_away() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "professional").await;
    let (sam, sam_token) = env.member(&t, "sam@acme.test", "support_agent", json!({})).await;
    let owner = env.owner().await;

    // A first heartbeat makes the row too.
    let r = env.send(Inbox, Req::post("/inbox/me/heartbeat").token(&sam_token)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(env.count(&format!("chatapp_support_agent_status WHERE user_id = '{sam}'")).await, 1);

    // last_active_at moves to now.
    owner
        .execute(
            "UPDATE chatapp_support_agent_status SET last_active_at = now() - interval '1 hour' WHERE user_id = $1",
            &[&sam],
        )
        .await
        .unwrap();
    let r = env.send(Inbox, Req::post("/inbox/me/heartbeat").token(&sam_token)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(
        env.count(&format!(
            "chatapp_support_agent_status WHERE user_id = '{sam}' AND last_active_at > now() - interval '1 minute'"
        ))
        .await,
        1
    );
    let now = me(&env, &sam_token).await;
    assert_eq!(now["status"], "offline", "a heartbeat does not sign anyone in");
    assert_eq!(env.audit_count("support_agent.status").await, 0, "heartbeats are not audited");
    assert_eq!(escalation_jobs(&env).await, 0);

    // Away by choice stays away.
    set_status(&env, &sam_token, json!({"status": "away", "status_message": "brb"})).await;
    env.send(Inbox, Req::post("/inbox/me/heartbeat").token(&sam_token)).await;
    assert_eq!(me(&env, &sam_token).await["status"], "away");

    // Away for missed heartbeats (what the presence sweep sets): back online, and a drain.
    owner
        .execute(
            "UPDATE chatapp_support_agent_status SET status = 'away', status_message = 'auto-away',
                    last_active_at = now() - interval '10 minutes'
             WHERE user_id = $1",
            &[&sam],
        )
        .await
        .unwrap();
    let r = env.send(Inbox, Req::post("/inbox/me/heartbeat").token(&sam_token)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let back = me(&env, &sam_token).await;
    assert_eq!(back["status"], "online");
    assert!(back["status_message"].is_null(), "{back}");
    assert_eq!(escalation_jobs(&env).await, 1);
    // The next heartbeat changes nothing more.
    env.send(Inbox, Req::post("/inbox/me/heartbeat").token(&sam_token)).await;
    assert_eq!(escalation_jobs(&env).await, 1);
    assert_eq!(me(&env, &sam_token).await["status_changed_at"], back["status_changed_at"]);
}

#[tokio::test]
async fn the_transfer_picker_lists_the_company_support_team() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "professional").await;
    let other = env.company("beta", "professional").await;
    let (sam, sam_token) = env.member(&t, "sam@acme.test", "support_agent", json!({})).await;
    let (kim, kim_token) = env.member(&t, "kim@acme.test", "support_agent", json!({})).await;
    let (gone, _) = env.member(&t, "gone@acme.test", "support_agent", json!({})).await;
    env.member(&other, "eve@beta.test", "support_agent", json!({})).await;
    env.owner().await.execute("UPDATE chatapp_users SET is_active = false WHERE id = $1", &[&gone]).await.unwrap();

    set_status(&env, &kim_token, json!({"status": "online", "max_concurrent_chats": 2})).await;

    // A support agent sees every active colleague (and the admin), online first.
    let r = env.send(Inbox, Req::get("/inbox/agents").token(&sam_token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["total"], 3, "{}", r.body);
    let items = r.body["items"].as_array().unwrap();
    let ids: Vec<&str> = items.iter().map(|i| i["user_id"].as_str().unwrap()).collect();
    assert_eq!(ids[0], kim.to_string(), "online first: {}", r.body);
    assert!(ids.contains(&sam.to_string().as_str()) && ids.contains(&t.admin_id.to_string().as_str()));
    assert!(!ids.contains(&gone.to_string().as_str()), "a deactivated user is not offered");
    assert_eq!(items[0]["status"], "online");
    assert_eq!(items[0]["available"], true);
    assert_eq!(items[0]["max_concurrent_chats"], 2);
    assert_eq!(items[0]["current_chat_count"], 0);
    assert_eq!(items[0]["display_name"], "kim");
    let sam_row = items.iter().find(|i| i["user_id"] == sam.to_string()).unwrap();
    assert_eq!(sam_row["status"], "offline", "never opened the inbox: offline");
    assert_eq!(sam_row["available"], false);

    // Paged; the same list for the admin and for a master admin acting for the company.
    let page = env.send(Inbox, Req::get("/inbox/agents?limit=1&offset=1").token(&sam_token)).await;
    assert_eq!(page.body["total"], 3);
    assert_eq!(page.body["items"].as_array().unwrap().len(), 1);
    let admin = env.send(Inbox, Req::get("/inbox/agents").token(&t.admin_token)).await;
    assert_eq!(admin.body["total"], 3);
    let master = env.master_token().await;
    let m = env.send(Inbox, Req::get(&format!("/inbox/agents?company_id={}", t.company_id)).token(&master)).await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.body);
    assert_eq!(m.body["total"], 3);
    // The other company sees only its own people.
    let b = env.send(Inbox, Req::get("/inbox/agents").token(&other.admin_token)).await;
    assert_eq!(b.body["total"], 2, "{}", b.body);
    assert_error!(
        env.send(Inbox, Req::get("/inbox/agents?limit=0").token(&sam_token)).await,
        StatusCode::BAD_REQUEST,
        "validation_failed"
    );
}
