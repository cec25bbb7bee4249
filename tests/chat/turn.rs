//! An answered turn: citations and everything it writes, idempotent retries, the provider
//! fallback, the commit that stores a turn's rows together, and global knowledge.

use chatapp_functions::http_function::HttpFunction;
use chatapp_tests::{assert_error, Req, TestEnv};
use http::StatusCode;
use serde_json::json;
use uuid::Uuid;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{say, session, setup};

#[tokio::test]
async fn a_turn_answers_from_the_knowledge_base_with_citations_and_writes_everything() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let chat = setup(&env, &t, json!({}), json!({})).await;
    let r = env.send(HttpFunction::Widget, Req::get(&format!("/widget/agents/{}/config", chat.agent))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["widget"]["title"], "Acme help");
    assert!(r.body["widget"].get("identity_secret").is_none());

    let (conv, token) = session(&env, chat.agent, json!({"name": "Sam", "email": "sam@example.org"})).await;
    assert!(token.len() >= 40, "at least 128 bits of randomness");
    let stored: String = env
        .owner()
        .await
        .query_one("SELECT session_token FROM chatapp_conversations WHERE id = $1", &[&conv])
        .await
        .unwrap()
        .get(0);
    assert_ne!(stored, token, "only the hash is stored");

    // The customer was last seen an hour ago; the turn brings that up to date.
    let seen = "chatapp_customers WHERE name = 'Sam' AND last_seen_at > now() - interval '10 seconds'";
    env.owner()
        .await
        .execute("UPDATE chatapp_customers SET last_seen_at = now() - interval '1 hour'", &[])
        .await
        .unwrap();
    let out = say(&env, conv, &token, "How long do refunds take?").await;
    let reply = &out["reply"];
    assert_eq!(reply["role"], "assistant");
    assert!(reply["content"].as_str().unwrap().contains("five business days"), "{reply}");
    assert_eq!(reply["metadata"]["extractive"], true);
    assert_eq!(out["citations"][0]["file_id"], chat.file.to_string(), "{out}");
    assert_eq!(out["citations"][0]["source"], "policy.md");
    assert!(out["citations"][0]["start_offset"].is_number());
    assert!(out["handoff"] == false && out["escalation"].is_null());

    let owner = env.owner().await;
    let row = owner
        .query_one(
            "SELECT message_count, ai_message_count, average_sentiment IS NOT NULL FROM chatapp_conversations WHERE id = $1",
            &[&conv],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, i32>(0), row.get::<_, i32>(1), row.get::<_, bool>(2)), (2, 1, true));
    let usage = owner
        .query_one(
            "SELECT message_count, ai_response_count FROM chatapp_usage_records WHERE company_id = $1 AND agent_id = $2",
            &[&t.company_id, &chat.agent],
        )
        .await
        .unwrap();
    assert_eq!((usage.get::<_, i32>(0), usage.get::<_, i32>(1)), (1, 1));
    assert_eq!(env.count(seen).await, 1);

    // Seen within the last minute: the next turn leaves the row alone (no write for a timestamp
    // that minute-level presence does not need).
    owner.execute("UPDATE chatapp_customers SET last_seen_at = now() - interval '30 seconds'", &[]).await.unwrap();
    say(&env, conv, &token, "And how do you ship parcels?").await;
    assert_eq!(env.count(seen).await, 0);
    assert_eq!(env.count("chatapp_customers WHERE last_seen_at > now() - interval '1 minute'").await, 1);
    let h =
        env.send(HttpFunction::Widget, Req::get(&format!("/widget/conversations/{conv}/messages")).token(&token)).await;
    let roles: Vec<&str> = h.body["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant"]);
    assert_eq!(h.body["messages"][0]["content"], "How long do refunds take?");

    // Streaming: server-sent events with the pieces, then the whole result.
    let r = env
        .send(
            HttpFunction::Widget,
            Req::post(&format!("/widget/conversations/{conv}/messages"))
                .token(&token)
                .header("accept", "text/event-stream")
                .json(json!({"content": "Do refunds go back to my card?"})),
        )
        .await;
    let body = r.body.as_str().unwrap();
    assert!(body.starts_with("event: delta\n"), "{body}");
    assert!(body.contains("event: done\n"), "{body}");

    // CSAT.
    let r = env
        .send(
            HttpFunction::Widget,
            Req::post(&format!("/widget/conversations/{conv}/end")).token(&token).json(json!({"rating": 5})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = env
        .send(
            HttpFunction::Widget,
            Req::post(&format!("/widget/conversations/{conv}/messages")).token(&token).json(json!({"content": "hi"})),
        )
        .await;
    assert_error!(r, StatusCode::CONFLICT, "conversation_closed");
}

#[tokio::test]
async fn a_retried_send_with_the_same_client_message_id_writes_nothing_new() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let chat = setup(&env, &t, json!({}), json!({})).await;
    let (conv, token) = session(&env, chat.agent, json!({})).await;
    let send = || {
        env.send(
            HttpFunction::Widget,
            Req::post(&format!("/widget/conversations/{conv}/messages"))
                .token(&token)
                .json(json!({"content": "How long do refunds take?", "client_message_id": "m-1"})),
        )
    };
    let first = send().await;
    let second = send().await;
    assert_eq!(second.body["replayed"], true);
    assert_eq!(second.body["reply"]["id"], first.body["reply"]["id"]);
    assert_eq!(env.count(&format!("chatapp_messages WHERE conversation_id = '{conv}'")).await, 2);

    // A first attempt that stored the message and then died: a retry right away is refused
    // (it may still be running); once it cannot be, the retry answers the stored message.
    let owner = env.owner().await;
    owner
        .execute(
            "INSERT INTO chatapp_messages (conversation_id, company_id, role, content, client_message_id)
             SELECT id, company_id, 'user', 'How long do refunds take?', 'm-2' FROM chatapp_conversations WHERE id = $1",
            &[&conv],
        )
        .await
        .unwrap();
    let retry = || {
        env.send(
            HttpFunction::Widget,
            Req::post(&format!("/widget/conversations/{conv}/messages"))
                .token(&token)
                .json(json!({"content": "How long do refunds take?", "client_message_id": "m-2"})),
        )
    };
    assert_error!(retry().await, StatusCode::CONFLICT, "duplicate_message");
    owner
        .execute(
            "UPDATE chatapp_messages SET created_at = now() - interval '5 minutes' WHERE client_message_id = 'm-2'",
            &[],
        )
        .await
        .unwrap();
    let resumed = retry().await;
    assert_eq!(resumed.status, StatusCode::OK, "{}", resumed.body);
    assert_eq!(resumed.body["replayed"], false);
    assert!(resumed.body["reply"]["content"].as_str().unwrap().contains("five business days"));
    assert_eq!(env.count(&format!("chatapp_messages WHERE conversation_id = '{conv}' AND role = 'user'")).await, 2);
    assert_eq!(retry().await.body["replayed"], true, "answered now: a further retry replays");
}

#[tokio::test]
async fn a_provider_failure_sends_the_fallback_and_keeps_the_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(500)).mount(&server).await;
    let base = format!("{}/v1", server.uri());
    let env =
        TestEnv::with(&[("CHAT_PROVIDER", "openai"), ("CHAT_BASE_URL", &base), ("CHAT_MODEL", "gpt-4o-mini")]).await;
    let t = env.company("acme", "starter").await;
    let chat = setup(&env, &t, json!({}), json!({})).await;
    let (conv, token) = session(&env, chat.agent, json!({})).await;
    let out = say(&env, conv, &token, "How long do refunds take?").await;
    assert_eq!(out["reply"]["metadata"]["kind"], "fallback", "{out}");
    assert!(out["reply"]["content"].as_str().unwrap().contains("saved"));
    assert_eq!(out["message"]["content"], "How long do refunds take?");
    assert_eq!(env.count(&format!("chatapp_messages WHERE conversation_id = '{conv}' AND role = 'user'")).await, 1);
    assert!(server.received_requests().await.unwrap().len() >= 2, "retried before giving up");
}

async fn insert_user(
    tx: &chatapp::db::TenantTx,
    conversation: Uuid,
    content: &str,
) -> Result<chatapp::repo::chat::Message, chatapp::db::DbError> {
    chatapp::repo::chat::insert_message(tx, conversation, "user", content, None, &json!({}), None).await
}

/// Statements committed in the same round trip as their COMMIT: when one of them fails, the
/// server turns the COMMIT into a rollback and none of them is stored; when all succeed, all are.
#[tokio::test]
async fn a_pipelined_commit_stores_all_or_nothing() {
    use chatapp::repo::chat as repo;
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let chat = setup(&env, &t, json!({}), json!({})).await;
    let (conv, _) = session(&env, chat.agent, json!({})).await;
    let ctx = chatapp::auth::worker_ctx(t.company_id);

    let tx = env.deps.db.begin(&ctx).await.unwrap();
    repo::prepare_turn_start(&tx).await.unwrap();
    let failed = tx
        .commit_alongside(async {
            // The second insert names no conversation (foreign key violation).
            tokio::try_join!(
                biased;
                insert_user(&tx, conv, "first"),
                insert_user(&tx, Uuid::new_v4(), "second"),
            )
        })
        .await;
    assert!(failed.is_err());
    drop(tx);
    assert_eq!(env.count(&format!("chatapp_messages WHERE conversation_id = '{conv}'")).await, 0);

    let tx = env.deps.db.begin(&ctx).await.unwrap();
    repo::prepare_turn_start(&tx).await.unwrap();
    tx.commit_alongside(async {
        tokio::try_join!(
            biased;
            insert_user(&tx, conv, "first"),
            insert_user(&tx, conv, "second"),
        )
    })
    .await
    .unwrap();
    drop(tx);
    assert_eq!(env.count(&format!("chatapp_messages WHERE conversation_id = '{conv}'")).await, 2);
}

#[tokio::test]
async fn a_turn_cites_global_knowledge_beside_the_company_knowledge() {
    use chatapp::knowledge::lexical::LexicalEncoder;
    use chatapp::knowledge::vector::{chunk_point_id, ChunkPayload, IndexedChunk};
    use chatapp::tenant::CompanyId;

    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let chat = setup(&env, &t, json!({}), json!({})).await;
    // A platform-wide article (no company): its row and its vector, as global ingestion writes them.
    const STATUS: &str = "Service status: outages and maintenance windows are announced on status.example.com.";
    let owner = env.owner().await;
    let article: Uuid = owner
        .query_one(
            "INSERT INTO chatapp_knowledge_articles (company_id, title, content, status, published_at)
             VALUES (NULL, 'Platform status', $1, 'published', now()) RETURNING id",
            &[&STATUS],
        )
        .await
        .unwrap()
        .get(0);
    let chunk = chunk_point_id(article, 0);
    owner
        .execute(
            "INSERT INTO chatapp_knowledge_chunks (id, article_id, company_id, chunk_index, content, start_offset,
                                                   end_offset, qdrant_id)
             VALUES ($1, $2, NULL, 0, $3, 0, length($3), $4)",
            &[&chunk, &article, &STATUS, &chunk.to_string()],
        )
        .await
        .unwrap();
    let dense = env.deps.embedder.embed(&[STATUS.to_string()]).await.unwrap().remove(0);
    let point = IndexedChunk {
        id: chunk,
        dense,
        sparse: LexicalEncoder::default().document(STATUS),
        payload: ChunkPayload {
            company_id: Uuid::nil(),
            file_id: None,
            article_id: Some(article),
            category_id: None,
            chunk_index: 0,
            text: STATUS.into(),
        },
    };
    env.deps.vectors.upsert(CompanyId::GLOBAL, vec![point]).await.unwrap();

    let (conv, token) = session(&env, chat.agent, json!({})).await;
    let out = say(&env, conv, &token, "Where are outages and maintenance windows announced?").await;
    let citations = out["citations"].as_array().unwrap();
    assert_eq!(citations[0]["article_id"], json!(article), "{out}");
    assert_eq!(citations[0]["source"], "Platform status");
    assert!(out["reply"]["content"].as_str().unwrap().contains("status.example.com"), "{out}");
    // The company's own knowledge still answers its own questions.
    let out = say(&env, conv, &token, "How long do refunds take?").await;
    assert_eq!(out["citations"][0]["file_id"], json!(chat.file), "{out}");
}
