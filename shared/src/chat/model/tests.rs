use super::anthropic::{
    anthropic_prompt, normalize_stop_reason, AnthropicDecoder, AnthropicMessage, CONVERSATION_START,
};
use super::extractive::{excerpt, extractive_answer, stream_pieces, EXTRACTIVE_INTRO, EXTRACTIVE_NOTHING_FOUND};
use super::openai::OpenAiDecoder;
use super::prompt::KNOWLEDGE_HEADING;
use super::sse::{SseEvent, SseParser};
use super::transport::{Decoded, Failure, StreamDecoder, MAX_ERROR_BODY_CHARS};
use super::*;
use crate::adapters::retry::{backoff_delay, is_retryable_status, parse_retry_after, truncate_chars, MAX_RETRY_DELAY};
use serde_json::json;
use std::time::Duration;

fn passage(number: usize, source: &str, text: &str, score: f32) -> Passage {
    Passage { number, source: source.to_string(), text: text.to_string(), score }
}

fn msg(role: Role, content: &str) -> ChatMessage {
    ChatMessage { role, content: content.to_string() }
}

fn request(messages: Vec<ChatMessage>, passages: Vec<Passage>) -> ChatRequest {
    ChatRequest { messages, passages, max_tokens: 256, temperature: 0.2, tools: Vec::new(), rounds: Vec::new() }
}

fn ev(event: &str, data: &str) -> SseEvent {
    SseEvent { event: event.to_string(), data: data.to_string() }
}

/// Feeds `input` to a fresh parser in pieces of `size` bytes.
fn parse_in_pieces(input: &[u8], size: usize) -> Vec<SseEvent> {
    let mut parser = SseParser::default();
    let mut events = Vec::new();
    for piece in input.chunks(size) {
        events.extend(parser.push(piece));
    }
    events.extend(parser.finish());
    events
}

#[test]
fn estimates_tokens_as_a_quarter_of_the_characters() {
    assert_eq!(estimate_tokens(""), 0);
    assert_eq!(estimate_tokens("abc"), 1);
    assert_eq!(estimate_tokens("abcd"), 1);
    assert_eq!(estimate_tokens("abcde"), 2);
    assert_eq!(estimate_tokens(&"é".repeat(8)), 2, "characters, not bytes");
}

#[test]
fn sse_events_survive_any_split() {
    let input = concat!(
        "event: message_start\ndata: {\"a\":1}\n\n",
        ": ping\n\n",
        "data: {\"b\":\"é€\"}\r\n\r\n",
        "data: line1\ndata:line2\n\n",
        "id: 7\nretry: 10\ndata: [DONE]\n\n",
    );
    let expected = vec![
        ev("message_start", "{\"a\":1}"),
        ev("message", "{\"b\":\"é€\"}"),
        ev("message", "line1\nline2"),
        ev("message", "[DONE]"),
    ];
    for size in 1..=input.len() {
        assert_eq!(parse_in_pieces(input.as_bytes(), size), expected, "pieces of {size} bytes");
    }
}

#[test]
fn sse_handles_bare_cr_and_a_missing_final_blank_line() {
    assert_eq!(parse_in_pieces(b"data: a\r\rdata: b\r", 1), vec![ev("message", "a"), ev("message", "b")]);
    assert_eq!(parse_in_pieces(b"data: [DONE]", 3), vec![ev("message", "[DONE]")]);
    // Comments and events without data dispatch nothing; the event name does not leak on.
    assert_eq!(parse_in_pieces(b": hi\n\nevent: ping\n\ndata: x\n\n", 4), vec![ev("message", "x")]);
    let mut parser = SseParser::default();
    assert!(parser.push(b"data: partial").is_empty());
    assert!(parser.push(b" line\r").is_empty(), "a CR at the end may be the first half of CRLF");
    assert_eq!(parser.push(b"\n\n"), vec![ev("message", "partial line")]);
    assert!(parser.finish().is_empty());
}

#[test]
fn render_appends_knowledge_to_the_system_message() {
    let req = request(
        vec![msg(Role::System, "You are Acme's support assistant.  \n"), msg(Role::User, "How do I reset it?")],
        vec![passage(1, "kb/reset.md", " Open Settings > Security. ", 0.9), passage(2, "", "Call us.", 0.4)],
    );
    let rendered = render_messages(&req);
    assert_eq!(rendered.len(), 2);
    assert_eq!(rendered[1], req.messages[1]);
    let system = &rendered[0].content;
    assert!(system.starts_with("You are Acme's support assistant.\n\n## Knowledge\n\n"), "{system}");
    assert!(system.contains("Answer only from the numbered passages"), "{system}");
    assert!(system.contains("[1]"), "{system}");
    assert!(system.ends_with("\n\n[1] (kb/reset.md) Open Settings > Security.\n\n[2] Call us."), "{system}");
}

#[test]
fn render_adds_a_system_message_when_missing_and_notes_missing_passages() {
    let req = request(vec![msg(Role::User, "Hi")], Vec::new());
    let rendered = render_messages(&req);
    assert_eq!(rendered.len(), 2);
    assert_eq!(rendered[0].role, Role::System);
    assert!(rendered[0].content.starts_with(KNOWLEDGE_HEADING));
    assert!(rendered[0].content.contains("No passages"), "{}", rendered[0].content);
    assert_eq!(rendered[1], msg(Role::User, "Hi"));
}

#[test]
fn anthropic_roles_alternate_and_start_with_the_user() {
    let (system, messages) = anthropic_prompt(&[
        msg(Role::System, "Be brief."),
        msg(Role::Assistant, "Hello! How can I help?"),
        msg(Role::Assistant, "We are open 9-5."),
        msg(Role::User, "My order"),
        msg(Role::User, "  "),
        msg(Role::User, "is late"),
        msg(Role::System, "Knowledge here."),
        msg(Role::Assistant, "Which order?"),
        msg(Role::User, "#42"),
    ]);
    assert_eq!(system, "Be brief.\n\nKnowledge here.");
    let roles: Vec<&str> = messages.iter().map(|m| m.role).collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant", "user"]);
    assert_eq!(messages[0].content, CONVERSATION_START);
    assert_eq!(messages[1].content, "Hello! How can I help?\n\nWe are open 9-5.");
    assert_eq!(messages[2].content, "My order\n\nis late");
    assert_eq!(messages[4].content, "#42");

    let (system, messages) = anthropic_prompt(&[msg(Role::User, "Hi")]);
    assert_eq!(system, "");
    assert_eq!(messages, vec![AnthropicMessage { role: "user", content: "Hi".to_string() }]);
    let (_, messages) = anthropic_prompt(&[]);
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].role, "user");
}

#[test]
fn anthropic_body_shape() {
    let model = AnthropicChatModel::new(AnthropicChatConfig {
        api_key: Some("sk-ant-secret".to_string()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(model.endpoint(), "https://api.anthropic.com/v1/messages");
    assert!(!format!("{model:?}").contains("sk-ant-secret"));
    let req = ChatRequest { temperature: 1.7, ..request(vec![msg(Role::User, "Hi")], Vec::new()) };
    let (system, messages) = anthropic_prompt(&render_messages(&req));
    let body = model.request_body(&system, &messages, &req);
    assert_eq!(body["model"], "claude-3-5-haiku-latest");
    assert_eq!(body["max_tokens"], 256);
    assert_eq!(body["stream"], true);
    assert_eq!(body["temperature"], 1.0);
    assert!(body["system"].as_str().unwrap().starts_with(KNOWLEDGE_HEADING));
    assert_eq!(body["messages"], json!([{"role": "user", "content": "Hi"}]));

    let v1 = AnthropicChatModel::new(AnthropicChatConfig {
        base_url: "http://127.0.0.1:9/v1/".to_string(),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(v1.endpoint(), "http://127.0.0.1:9/v1/messages");
}

#[test]
fn openai_body_shape_and_endpoint() {
    let model = OpenAiChatModel::new(OpenAiChatConfig {
        base_url: "http://localhost:11434/v1/".to_string(),
        api_key: Some("sk-secret".to_string()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(model.endpoint(), "http://localhost:11434/v1/chat/completions");
    assert_eq!(model.name(), "gpt-4o-mini");
    assert!(!format!("{model:?}").contains("sk-secret"));
    let req = request(vec![msg(Role::System, "S"), msg(Role::User, "Q")], vec![passage(1, "a", "b", 1.0)]);
    let messages = render_messages(&req);
    let body = model.request_body(&messages, &req);
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][1], json!({"role": "user", "content": "Q"}));
    assert_eq!(body["max_tokens"], 256);
    assert!(matches!(
        OpenAiChatModel::new(OpenAiChatConfig { base_url: "ftp://x".into(), ..Default::default() }),
        Err(ChatError::Http(_))
    ));
}

#[test]
fn openai_decoder_reads_deltas_usage_and_done() {
    let mut decoder = OpenAiDecoder::new("configured", 10);
    let first = decoder
        .event(&ev(
            "message",
            r#"{"model":"gpt-x","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
        ))
        .unwrap();
    assert_eq!(first, Decoded::default());
    let text = decoder
        .event(&ev(
            "message",
            r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}],"usage":null}"#,
        ))
        .unwrap();
    assert_eq!(text.text, "Hi");
    decoder.event(&ev("message", r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1}}"#)).unwrap();
    assert!(decoder.event(&ev("message", "[DONE]")).unwrap().done);
    let answer = decoder.finish("Hi".to_string(), true).unwrap();
    assert_eq!(answer.model, "gpt-x");
    assert_eq!(answer.usage, Usage { input_tokens: 5, output_tokens: 1 });
    assert_eq!(answer.finish_reason.as_deref(), Some("stop"));

    // Two payloads in one event, no usage: estimates.
    let mut decoder = OpenAiDecoder::new("m", 10);
    let both = decoder
        .event(&ev(
            "message",
            "{\"choices\":[{\"delta\":{\"content\":\"ab\"}}]}\n{\"choices\":[{\"delta\":{\"content\":\"cdef\"}}]}\n[DONE]",
        ))
        .unwrap();
    assert_eq!(both, Decoded { text: "abcdef".to_string(), done: true });
    let answer = decoder.finish("abcdef".to_string(), true).unwrap();
    assert_eq!(answer.usage, Usage { input_tokens: 10, output_tokens: 2 });

    // An error chunk, and a stream that stops without an end marker.
    let mut decoder = OpenAiDecoder::new("m", 0);
    let failure = decoder.event(&ev("message", r#"{"error":{"message":"boom","code":503}}"#)).unwrap_err();
    assert!(failure.retryable);
    assert!(matches!(failure.error, ChatError::Status { status: 503, .. }));
    assert!(matches!(decoder.clone().finish(String::new(), false), Err(Failure { retryable: true, .. })));
    assert!(matches!(
        decoder.event(&ev("message", "{not json")),
        Err(Failure { error: ChatError::Malformed(_), retryable: false, .. })
    ));
}

#[test]
fn anthropic_decoder_reads_events() {
    let mut decoder = AnthropicDecoder::new("configured", 0);
    let events = [
        r#"{"type":"message_start","message":{"id":"msg_1","model":"claude-x","usage":{"input_tokens":25,"output_tokens":1}}}"#,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        r#"{"type": "ping"}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" there"}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}"#,
    ];
    let mut text = String::new();
    for data in events {
        let decoded = decoder.event(&ev("message", data)).unwrap();
        assert!(!decoded.done);
        text.push_str(&decoded.text);
    }
    assert_eq!(text, "Hello there");
    assert!(decoder.event(&ev("message_stop", r#"{"type":"message_stop"}"#)).unwrap().done);
    let answer = decoder.finish(text, true).unwrap();
    assert_eq!(answer.model, "claude-x");
    assert_eq!(answer.usage, Usage { input_tokens: 25, output_tokens: 15 });
    assert_eq!(answer.finish_reason.as_deref(), Some("stop"));

    let mut decoder = AnthropicDecoder::new("m", 0);
    let failure = decoder
        .event(&ev("error", r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#))
        .unwrap_err();
    assert!(failure.retryable);
    match failure.error {
        ChatError::Status { status, body } => {
            assert_eq!(status, 529);
            assert!(body.contains("Overloaded"), "{body}");
        }
        other => panic!("expected Status, got {other:?}"),
    }
    assert_eq!(normalize_stop_reason("max_tokens"), "length");
    assert_eq!(normalize_stop_reason("tool_use"), "tool_calls");
    assert_eq!(normalize_stop_reason("pause_turn"), "pause_turn");
}

#[test]
fn extractive_quotes_the_best_passages() {
    let passages = vec![
        passage(1, "a.md", "Low relevance.", 0.2),
        passage(2, "b.md", "Reset your password under Settings.\nThen sign in again.", 0.9),
        passage(3, "c.md", "You can also ask an agent.", 0.5),
        passage(4, "d.md", "Fourth.", 0.46),
        passage(5, "e.md", "Fifth.", 0.45),
    ];
    let answer = extractive_answer(&passages);
    assert_eq!(
        answer,
        "Here is what I found in our knowledge base:\n\n\
         > Reset your password under Settings.\n> Then sign in again. [2]\n\n\
         > You can also ask an agent. [3]\n\n\
         > Fourth. [4]"
    );
    assert_eq!(extractive_answer(&[]), EXTRACTIVE_NOTHING_FOUND);
    assert_eq!(extractive_answer(&[passage(1, "a", "  ", 1.0)]), EXTRACTIVE_NOTHING_FOUND);
    // Non-positive scores (e.g. some rerankers): just the best.
    let negative = [passage(1, "a", "One.", -2.0), passage(2, "b", "Two.", -1.0)];
    assert_eq!(extractive_answer(&negative), format!("{EXTRACTIVE_INTRO}\n\n> Two. [2]"));
}

#[test]
fn excerpts_are_cut_at_sentence_or_word_boundaries() {
    assert_eq!(excerpt("  short  ", 600), "short");
    let sentences = "This is one sentence. ".repeat(40);
    let cut = excerpt(&sentences, 600);
    assert!(cut.ends_with("sentence. …"), "{cut}");
    assert!(cut.chars().count() <= 602 && cut.chars().count() > 300);
    let words = "word ".repeat(200);
    let cut = excerpt(&words, 600);
    assert!(cut.ends_with("word…") && cut.chars().count() <= 601, "{cut}");
    let solid = "x".repeat(1000);
    assert_eq!(excerpt(&solid, 600).chars().count(), 601);
}

#[test]
fn stream_pieces_concatenate_to_the_text() {
    let text = "Here is what I found:\n\n> One. Two! Three? e.g.x [1]\n\n> Four [2]";
    let pieces = stream_pieces(text);
    assert!(pieces.len() >= 5, "{pieces:?}");
    assert_eq!(pieces.concat(), text);
    assert!(stream_pieces("").is_empty());
}

#[tokio::test]
async fn extractive_model_streams_its_answer() {
    let req = request(
        vec![msg(Role::System, "S"), msg(Role::User, "How do I reset my password?")],
        vec![passage(1, "kb/reset.md", "Open Settings. Choose Reset.", 0.8)],
    );
    let mut deltas: Vec<String> = Vec::new();
    let mut sink = |d: &str| deltas.push(d.to_string());
    let answer = ExtractiveModel.complete(&req, &mut sink).await.unwrap();
    assert!(deltas.len() > 1, "{deltas:?}");
    assert_eq!(deltas.concat(), answer.text);
    assert_eq!(answer.text, format!("{EXTRACTIVE_INTRO}\n\n> Open Settings. Choose Reset. [1]"));
    assert!(answer.extractive);
    assert_eq!(answer.model, "extractive");
    assert_eq!(ExtractiveModel.name(), "extractive");
    assert_eq!(answer.usage.output_tokens, estimate_tokens(&answer.text));
    assert!(answer.usage.input_tokens > 0);
    assert_eq!(answer.finish_reason.as_deref(), Some("stop"));
}

#[test]
fn retry_helpers() {
    for status in [429, 500, 503, 529] {
        assert!(is_retryable_status(status), "{status}");
    }
    for status in [400, 401, 404, 413] {
        assert!(!is_retryable_status(status), "{status}");
    }
    assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
    assert_eq!(parse_retry_after("999"), Some(MAX_RETRY_DELAY));
    assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    let initial = Duration::from_millis(100);
    assert_eq!(backoff_delay(initial, 0, 0.0), initial);
    assert_eq!(backoff_delay(initial, 2, 0.0), Duration::from_millis(400));
    assert!(backoff_delay(initial, 1, 1.0) <= Duration::from_millis(240));
    assert_eq!(backoff_delay(initial, 40, 1.0), MAX_RETRY_DELAY);
    assert_eq!(truncate_chars(&"é".repeat(600), MAX_ERROR_BODY_CHARS).chars().count(), 500);
}

fn call(id: &str, name: &str, arguments: serde_json::Value) -> ToolCall {
    ToolCall { id: id.to_string(), name: name.to_string(), arguments }
}

#[test]
fn openai_body_carries_tools_and_rounds() {
    let model = OpenAiChatModel::new(OpenAiChatConfig::default()).unwrap();
    let mut req = request(vec![msg(Role::User, "Q")], Vec::new());
    let body = model.request_body(&render_messages(&req), &req);
    assert!(body.get("tools").is_none() && body.get("tool_choice").is_none(), "{body}");
    assert_eq!(super::estimate_tool_context(&req), 0);

    req.tools = vec![ToolSpec { name: "f".into(), description: "d".into(), parameters: json!({"type": "object"}) }];
    req.rounds = vec![ToolRound {
        text: "Let me look.".into(),
        calls: vec![call("call_1", "f", json!("{broken"))],
        results: vec![ToolResult { call_id: "call_1".into(), content: "bad arguments".into(), is_error: true }],
    }];
    let body = model.request_body(&render_messages(&req), &req);
    assert_eq!(body["tool_choice"], "auto");
    assert_eq!(
        body["tools"],
        json!([{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}])
    );
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 4, "{body}");
    assert_eq!(messages[1], json!({"role": "user", "content": "Q"}));
    // Arguments that were not JSON go back as the model wrote them.
    assert_eq!(
        messages[2],
        json!({"role": "assistant", "content": "Let me look.", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{broken"}}
        ]})
    );
    assert_eq!(messages[3], json!({"role": "tool", "tool_call_id": "call_1", "content": "Error: bad arguments"}));
    assert!(super::estimate_tool_context(&req) > 20);
}

#[test]
fn openai_decoder_reads_whole_and_unindexed_tool_calls() {
    // A whole (non-streamed) response: complete calls without an index.
    let mut decoder = OpenAiDecoder::new("m", 0);
    let body = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[
        {"id":"call_a","type":"function","function":{"name":"get_order","arguments":"{\"order\":\"42\"}"}},
        {"id":"call_b","type":"function","function":{"name":"list_orders","arguments":""}}]},
        "finish_reason":"tool_calls"}]}"#;
    let text = decoder.whole(body).unwrap();
    assert_eq!(text, "");
    let answer = decoder.finish(text, true).unwrap();
    assert_eq!(
        answer.tool_calls,
        vec![call("call_a", "get_order", json!({"order": "42"})), call("call_b", "list_orders", json!({}))]
    );
    assert_eq!(answer.finish_reason.as_deref(), Some("tool_calls"));
    assert!(answer.usage.output_tokens > 5, "estimated from the calls: {:?}", answer.usage);

    // Streamed without an index, arguments as an object, ended with "stop" (some servers).
    let mut decoder = OpenAiDecoder::new("m", 0);
    let chunks = [
        r#"{"choices":[{"delta":{"content":"Checking."}}]}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"id":"call_c","function":{"name":"f","arguments":{"a":1}}}]}}]}"#,
        r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#,
    ];
    let mut text = String::new();
    for data in chunks {
        text.push_str(&decoder.event(&ev("message", data)).unwrap().text);
    }
    assert_eq!(text, "Checking.");
    let answer = decoder.finish(text, false).unwrap();
    assert_eq!(answer.tool_calls, vec![call("call_c", "f", json!({"a": 1}))]);
    assert_eq!(answer.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(answer.text, "Checking.");

    assert_eq!(super::parse_tool_arguments("{\"a\""), json!("{\"a\""));
    assert_eq!(super::parse_tool_arguments(" "), json!({}));
}

#[test]
fn anthropic_decoder_reads_tool_use_blocks() {
    let mut decoder = AnthropicDecoder::new("m", 0);
    let body = br#"{"type":"message","model":"claude-x","content":[
        {"type":"text","text":"Let me check."},
        {"type":"tool_use","id":"toolu_1","name":"get_order","input":{"order":"42"}}],
        "stop_reason":"tool_use","usage":{"input_tokens":10,"output_tokens":5}}"#;
    let text = decoder.whole(body).unwrap();
    assert_eq!(text, "Let me check.");
    let answer = decoder.finish(text, true).unwrap();
    assert_eq!(answer.tool_calls, vec![call("toolu_1", "get_order", json!({"order": "42"}))]);
    assert_eq!(answer.finish_reason.as_deref(), Some("tool_calls"));

    // Streamed: a block without input deltas keeps its start input; deltas go by index.
    let mut decoder = AnthropicDecoder::new("m", 0);
    let events = [
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_a","name":"now","input":{}}}"#,
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_b","name":"get","input":{}}}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"order\": "}}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\"42\"}"}}"#,
        r#"{"type":"content_block_stop","index":1}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":30}}"#,
    ];
    for data in events {
        assert_eq!(decoder.event(&ev("message", data)).unwrap(), Decoded::default(), "{data}");
    }
    let answer = decoder.finish(String::new(), false).unwrap();
    assert_eq!(
        answer.tool_calls,
        vec![call("toolu_a", "now", json!({})), call("toolu_b", "get", json!({"order": "42"}))]
    );
    assert_eq!(answer.usage.output_tokens, 30);
    assert_eq!(answer.finish_reason.as_deref(), Some("tool_calls"));
}

#[test]
fn anthropic_rounds_keep_roles_alternating() {
    let model = AnthropicChatModel::new(AnthropicChatConfig::default()).unwrap();
    let mut req = request(vec![msg(Role::User, "Where is #42?"), msg(Role::Assistant, "Checking.")], Vec::new());
    req.rounds = vec![ToolRound {
        text: "  ".to_string(),
        calls: vec![call("toolu_1", "get_order", json!("not an object"))],
        results: vec![ToolResult { call_id: "toolu_1".into(), content: "shipped".into(), is_error: false }],
    }];
    let (system, messages) = anthropic_prompt(&render_messages(&req));
    let body = model.request_body(&system, &messages, &req);
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": "Where is #42?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_order", "input": {"value": "not an object"}}
            ]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "shipped"}]}
        ])
    );
    assert!(body.get("tools").is_none(), "{body}");
}
