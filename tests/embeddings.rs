//! The OpenAI-compatible embeddings client against a local HTTP server speaking the
//! `/v1/embeddings` wire format (wiremock): retries on 429, batching, ordering, errors, and
//! the whole ingestion pipeline running on it.

use std::time::Duration;

use chatapp::knowledge::embed::{EmbedError, Embedder, OpenAiEmbedder, OpenAiEmbedderConfig};
use chatapp_functions::http_function::HttpFunction;
use chatapp_tests::{Req, TestEnv};
use http::StatusCode;
use serde_json::{json, Value};
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const DIMS: usize = 8;

/// A deterministic stand-in model: letter counts folded into 8 dimensions, answered in reverse
/// order (with correct `index` fields) so the client must reorder.
struct LetterModel;

fn letters(text: &str) -> Vec<f32> {
    let mut v = vec![0.0f32; DIMS];
    for c in text.to_lowercase().chars().filter(char::is_ascii_lowercase) {
        v[(c as usize - 'a' as usize) % DIMS] += 1.0;
    }
    v[DIMS - 1] += 0.5; // never the zero vector
    v
}

impl Respond for LetterModel {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        let inputs: Vec<String> = serde_json::from_value(body["input"].clone()).unwrap();
        let mut data: Vec<Value> = inputs
            .iter()
            .enumerate()
            .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": letters(t)}))
            .collect();
        data.reverse();
        ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "data": data, "model": body["model"],
            "usage": {"prompt_tokens": 3 * inputs.len(), "total_tokens": 3 * inputs.len()}
        }))
    }
}

fn client(server: &MockServer, batch_size: usize) -> OpenAiEmbedder {
    OpenAiEmbedder::new(OpenAiEmbedderConfig {
        base_url: format!("{}/v1", server.uri()),
        api_key: Some("sk-test".into()),
        model: "text-embedding-3-small".into(),
        dimensions: DIMS,
        send_dimensions: false,
        batch_size,
        max_retries: 3,
        initial_backoff: Duration::from_millis(10),
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

#[tokio::test]
async fn a_429_is_retried_then_the_answer_is_used_in_input_order() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/embeddings"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "0")
                .set_body_json(json!({"error": {"message": "Rate limit reached", "type": "requests"}})),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/embeddings"))
        .and(header("authorization", "Bearer sk-test"))
        .and(body_partial_json(json!({"model": "text-embedding-3-small", "encoding_format": "float"})))
        .respond_with(LetterModel)
        .expect(1)
        .mount(&server)
        .await;
    let texts = vec!["aaaa".to_string(), "bbbb bbbb".to_string(), "abc".to_string()];
    let got = client(&server, 96).embed(&texts).await.unwrap();
    assert_eq!(got.len(), 3);
    for (v, t) in got.iter().zip(&texts) {
        assert!((norm(v) - 1.0).abs() < 1e-5, "normalised");
        let want = letters(t);
        let cos: f32 = v.iter().zip(&want).map(|(a, b)| a * b).sum::<f32>() / norm(&want);
        assert!(cos > 0.9999, "{t}: the vector of its own input, not another's");
    }
}

#[tokio::test]
async fn inputs_are_batched_and_client_errors_are_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).and(path("/v1/embeddings")).respond_with(LetterModel).expect(3).mount(&server).await;
    let texts: Vec<String> = (0..5).map(|i| format!("text number {i}")).collect();
    assert_eq!(client(&server, 2).embed(&texts).await.unwrap().len(), 5);
    assert!(client(&server, 2).embed(&[]).await.unwrap().is_empty());
    server.verify().await;

    let bad = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {"message": "bad model"}})))
        .expect(1)
        .mount(&bad)
        .await;
    match client(&bad, 2).embed(&["x".to_string()]).await {
        Err(EmbedError::Status { status: 400, body }) => assert!(body.contains("bad model")),
        other => panic!("expected a 400 status error, got {other:?}"),
    }

    // 5xx keeps failing: retried max_retries times, then the error surfaces.
    let down = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(503)).expect(4).mount(&down).await;
    assert!(matches!(client(&down, 2).embed(&["x".to_string()]).await, Err(EmbedError::Status { status: 503, .. })));
}

#[tokio::test]
async fn the_pipeline_runs_on_an_openai_compatible_provider() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).and(path("/v1/embeddings")).respond_with(LetterModel).mount(&server).await;
    let base = format!("{}/v1", server.uri());
    let env = TestEnv::with(&[
        ("EMBEDDER", "openai"),
        ("EMBEDDING_BASE_URL", &base),
        ("EMBEDDING_MODEL", "text-embedding-3-small"),
        ("EMBEDDING_DIMENSIONS", "8"),
    ])
    .await;
    assert_eq!(env.deps.embedder.dimensions(), DIMS);
    let t = env.company("acme", "starter").await;
    let r = env
        .send(
            HttpFunction::KnowledgeCategories,
            Req::post("/admin/knowledge/categories").token(&t.admin_token).json(json!({"name": "Docs"})),
        )
        .await;
    let cat = r.body["id"].as_str().unwrap().to_string();
    let text = b"# Returns\n\nReturns are accepted within 14 days with the receipt.";
    let r = env
        .send(
            HttpFunction::KnowledgeFiles,
            Req::post("/admin/knowledge/files")
                .token(&t.admin_token)
                .json(json!({"filename": "returns.md", "category_id": cat, "size": text.len()})),
        )
        .await;
    let id = r.body["file"]["id"].as_str().unwrap().to_string();
    let r = env
        .send(
            HttpFunction::KnowledgeFiles,
            Req::put(&format!("/admin/knowledge/files/{id}/content"))
                .token(&t.admin_token)
                .bytes(text, "text/markdown"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    chatapp_functions::ingest_worker::drain(&env.deps).await.unwrap();
    let r = env
        .send(HttpFunction::KnowledgeFiles, Req::get(&format!("/admin/knowledge/files/{id}")).token(&t.admin_token))
        .await;
    assert_eq!(r.body["status"], "indexed", "{}", r.body);
    assert_eq!(r.body["metadata"]["embedding_model"], "text-embedding-3-small");
    let r = env
        .send(
            HttpFunction::KnowledgeSearch,
            Req::post("/admin/knowledge/search").token(&t.admin_token).json(json!({"query": "receipt returns"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["results"][0]["file_id"], id);
    assert!(!server.received_requests().await.unwrap().is_empty());
}
