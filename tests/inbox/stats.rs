//! Per-agent daily statistics: what an agent received, closed and sent, their first response
//! and handle times and the customers' ratings; admins see everyone, a support agent only
//! themselves, another company nothing; bad ranges are 400.

use chatapp_tests::{assert_error, Req};
use http::StatusCode;
use serde_json::{json, Value};

use super::*;

async fn stats(env: &TestEnv, token: &str, query: &str) -> Value {
    let r = send(env, Req::get(&format!("/inbox/stats{query}")).token(token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

#[tokio::test]
async fn stats_count_each_agents_day_and_show_a_support_agent_only_their_own() {
    let env = TestEnv::new().await;
    let ib = inbox(&env, "acme").await;
    let other = inbox(&env, "beta").await;

    // Ana takes two conversations, answers both, resolves one (rated 4) and hands the other back.
    let mut conversations = Vec::new();
    for _ in 0..2 {
        let (conv, _) = waiting(&env, &ib).await;
        assert_eq!(claim(&env, &ib.ana.token, conv).await.status, StatusCode::OK);
        let reply = Req::post(&conv_path(conv, "/messages")).token(&ib.ana.token).json(json!({"content": "On it."}));
        assert_eq!(send(&env, reply).await.status, StatusCode::CREATED);
        conversations.push(conv);
    }
    let resolve = Req::post(&conv_path(conversations[0], "/resolve")).token(&ib.ana.token);
    assert_eq!(send(&env, resolve).await.status, StatusCode::OK);
    env.owner()
        .await
        .execute(
            "UPDATE chatapp_conversations SET context = COALESCE(context, '{}') || '{\"csat_rating\": 4}' WHERE id = $1",
            &[&conversations[0]],
        )
        .await
        .unwrap();
    let handback = Req::post(&conv_path(conversations[1], "/handback")).token(&ib.ana.token);
    assert_eq!(send(&env, handback).await.status, StatusCode::OK);
    // Ben takes one and has not answered yet.
    let (conv, _) = waiting(&env, &ib).await;
    assert_eq!(claim(&env, &ib.ben.token, conv).await.status, StatusCode::OK);

    let today = chrono::Utc::now().date_naive().to_string();
    let all = stats(&env, &ib.tenant.admin_token, "").await;
    assert_eq!(all["to"], today.as_str());
    let items = all["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{all}");
    let of = |user: Uuid| items.iter().find(|i| i["user_id"] == user.to_string()).unwrap().clone();
    let ana = of(ib.ana.id);
    assert_eq!(ana["date"], today.as_str());
    let counts = (&ana["escalations_received"], &ana["conversations_handled"], &ana["messages_sent"]);
    assert_eq!(counts, (&json!(2), &json!(2), &json!(2)), "{ana}");
    assert!(ana["avg_first_response_seconds"].as_f64().is_some_and(|s| s >= 0.0), "{ana}");
    assert!(ana["avg_handle_minutes"].as_f64().is_some_and(|m| m >= 0.0), "{ana}");
    assert_eq!((&ana["csat"], &ana["csat_responses"]), (&json!(4.0), &json!(1)), "{ana}");
    let ben = of(ib.ben.id);
    let counts = (&ben["escalations_received"], &ben["conversations_handled"], &ben["messages_sent"]);
    assert_eq!(counts, (&json!(1), &json!(0), &json!(0)), "{ben}");
    assert_eq!((&ben["avg_first_response_seconds"], &ben["csat"]), (&Value::Null, &Value::Null), "{ben}");

    // One agent, for an admin; a support agent sees only themselves, whatever they ask.
    let one = stats(&env, &ib.tenant.admin_token, &format!("?user_id={}", ib.ben.id)).await;
    assert_eq!(one["items"].as_array().unwrap().len(), 1);
    let own = stats(&env, &ib.ben.token, &format!("?user_id={}", ib.ana.id)).await;
    let users: Vec<&Value> = own["items"].as_array().unwrap().iter().map(|i| &i["user_id"]).collect();
    assert_eq!(users, [&json!(ib.ben.id.to_string())]);
    // Another company sees none of it; a past range has nothing.
    assert_eq!(stats(&env, &other.tenant.admin_token, "").await["items"], json!([]));
    let past = stats(&env, &ib.tenant.admin_token, "?from=2020-01-01&to=2020-01-31").await;
    assert_eq!(past["items"], json!([]));

    for query in ["?from=2026-02-01&to=2026-01-01", "?from=2026-01-01&to=2026-06-01", "?from=yesterday", "?day=1"] {
        let r = send(&env, Req::get(&format!("/inbox/stats{query}")).token(&ib.tenant.admin_token)).await;
        assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
    }
}
