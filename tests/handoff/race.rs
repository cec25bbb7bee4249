//! The AI/human race: a support agent takes the conversation while the model is still
//! answering; the AI's reply is dropped (checked under the conversation's lock in the reply's
//! transaction), and the AI stays silent afterwards.

use std::sync::Arc;

use async_trait::async_trait;
use chatapp::chat::model::{ChatAnswer, ChatError, ChatModel, ChatRequest, DeltaSink, Usage};
use chatapp_functions::http_function::HttpFunction;
use chatapp_tests::{Req, TestEnv};
use http::StatusCode;
use serde_json::json;
use tokio::sync::{Mutex, Notify};

use super::{company_with_agent, online_agent, session};

/// A model that tells the test it was called, then answers only when the test lets it.
struct GatedModel {
    called: Arc<Notify>,
    release: Arc<Notify>,
    calls: Mutex<u32>,
}

#[async_trait]
impl ChatModel for GatedModel {
    fn name(&self) -> &str {
        "gated"
    }

    async fn complete(&self, _req: &ChatRequest, on_delta: DeltaSink<'_>) -> Result<ChatAnswer, ChatError> {
        *self.calls.lock().await += 1;
        self.called.notify_one();
        self.release.notified().await;
        let text = "The AI's late answer".to_string();
        on_delta(&text);
        Ok(ChatAnswer {
            text,
            model: "gated".into(),
            usage: Usage { input_tokens: 10, output_tokens: 5 },
            finish_reason: Some("stop".into()),
            extractive: true,
            tool_calls: Vec::new(),
        })
    }
}

#[tokio::test]
async fn a_human_taking_over_during_generation_drops_the_ai_reply() {
    let env = TestEnv::new().await;
    let (t, agent) = company_with_agent(&env, "acme").await;
    let (ann, _) = online_agent(&env, &t, "ann", 2).await;
    let (conv, token) = session(&env, agent).await;
    let model = Arc::new(GatedModel {
        called: Arc::new(Notify::new()),
        release: Arc::new(Notify::new()),
        calls: Mutex::new(0),
    });
    let mut deps = env.deps.clone();
    deps.chat = model.clone() as Arc<dyn ChatModel>;

    let r = http::Request::builder()
        .method("POST")
        .uri(format!("/widget/conversations/{conv}/messages"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(lambda_http::Body::Text(json!({"content": "How long do refunds take?"}).to_string()))
        .unwrap();
    let turn = async {
        let response = HttpFunction::Widget.call(&deps, r).await;
        let status = response.status();
        let bytes = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
        (status, serde_json::from_slice::<serde_json::Value>(&bytes).unwrap())
    };
    // While the model is answering, Ann takes the conversation over and commits.
    let takeover = async {
        model.called.notified().await;
        super::as_admin(
            &env,
            &t,
            &format!("SELECT chatapp_handoff_assign('{conv}', '{ann}', '{ann}', 'conversation.assigned')"),
        )
        .await;
        model.release.notify_one();
    };
    let ((status, body), ()) = tokio::join!(turn, takeover);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["reply"].is_null(), "the AI's reply was stored after the takeover: {body}");
    assert_eq!(body["handoff"], true);
    assert_eq!(
        env.count(&format!("chatapp_messages WHERE conversation_id = '{conv}' AND role = 'assistant'")).await,
        0
    );
    assert_eq!(
        env.count(&format!(
            "chatapp_conversations WHERE id = '{conv}' AND status = 'with_human' AND assigned_agent_id = '{ann}'"
        ))
        .await,
        1
    );
    // The next message: the AI is not even asked.
    let r = env
        .send(
            HttpFunction::Widget,
            Req::post(&format!("/widget/conversations/{conv}/messages"))
                .token(&token)
                .json(json!({"content": "Hello?"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["reply"].is_null());
    assert_eq!(*model.calls.lock().await, 1);
}
