//! Unit tests of `channels::telegram`.

use super::*;

const TEXT: &[u8] = include_bytes!("../../../../tests/fixtures/channels/telegram-text.json");

fn verify_with(header: Option<&str>, secret: &str) -> Result<(), Rejection> {
    let mut headers = http::HeaderMap::new();
    if let Some(h) = header {
        headers.insert(SECRET_HEADER, http::HeaderValue::from_str(h).expect("ascii header"));
    }
    let method = http::Method::POST;
    verify(&RawRequest { method: &method, headers: &headers, query: None, body: TEXT }, secret)
}

fn messages(v: Verdict) -> Vec<Inbound> {
    match v {
        Verdict::Messages { messages, .. } => messages,
        other => panic!("unexpected verdict {other:?}"),
    }
}

/// The fixture with its `message` changed by `f` (and moved under `key`).
fn update_with(key: &str, f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(TEXT).expect("fixture is JSON");
    let mut message = v["message"].take();
    f(&mut message);
    if let Some(obj) = v.as_object_mut() {
        obj.remove("message");
        obj.insert(key.into(), message);
    }
    serde_json::to_vec(&v).expect("serialise")
}

fn group(text: &str) -> impl FnOnce(&mut Value) + '_ {
    move |m: &mut Value| {
        m["chat"] = json!({ "id": -1001575342692i64, "title": "Support", "type": "supergroup" });
        m["text"] = json!(text);
    }
}

#[test]
fn secret_token_ok_wrong_missing() {
    assert_eq!(verify_with(Some("s3cr3t_token-1"), "s3cr3t_token-1"), Ok(()));
    assert!(matches!(verify_with(Some("s3cr3t_token-2"), "s3cr3t_token-1"), Err(Rejection::Forbidden(_))));
    assert!(matches!(verify_with(Some("short"), "s3cr3t_token-1"), Err(Rejection::Forbidden(_))));
    assert!(matches!(verify_with(None, "s3cr3t_token-1"), Err(Rejection::Unauthorized(_))));
    assert!(matches!(verify_with(Some(""), ""), Err(Rejection::Forbidden(_))));
}

#[test]
fn private_text_fixture() {
    let m = messages(parse(TEXT, Some("SupportBot")).expect("parses"));
    assert_eq!(m.len(), 1);
    let m = &m[0];
    assert_eq!(m.provider_message_id, "892252934");
    assert_eq!(m.thread, "218485655");
    assert_eq!(m.sender.id, "218485655");
    assert_eq!(m.sender.name.as_deref(), Some("Waffle"));
    assert_eq!(m.text, "hello there");
    assert_eq!(m.sent_at, Some(1569518342));
    assert!(m.attachments.is_empty());
    assert_eq!(
        m.reply_context,
        json!({ "chat_id": 218485655, "message_id": 6557, "chat_type": "private", "username": "WaffleLapkin" })
    );
}

#[test]
fn group_chat_needs_mention_reply_or_command() {
    let plain = update_with("message", group("just chatting"));
    assert_eq!(parse(&plain, Some("SupportBot")), Ok(Verdict::ignored(1)));
    let other = update_with("message", group("ask @OtherBot or @SupportBotty"));
    assert_eq!(parse(&other, Some("SupportBot")), Ok(Verdict::ignored(1)));

    let mention = update_with("message", |m| {
        group("@supportbot: how do I reset? 🙂")(&mut *m);
        m["entities"] = json!([{ "type": "mention", "offset": 0, "length": 11 }]);
    });
    let m = messages(parse(&mention, Some("@SupportBot")).expect("parses"));
    assert_eq!(m[0].thread, "-1001575342692");
    assert_eq!(m[0].sender.id, "218485655");
    assert_eq!(m[0].text, "how do I reset? 🙂");
    assert_eq!(m[0].reply_context["chat_type"], "supergroup");

    let command = update_with("message", group("/help@SupportBot now"));
    assert_eq!(messages(parse(&command, Some("SupportBot")).expect("parses")).len(), 1);
    let foreign = update_with("message", group("/help@OtherBot"));
    assert_eq!(parse(&foreign, Some("SupportBot")), Ok(Verdict::ignored(1)));

    let reply = update_with("message", |m| {
        group("thanks, and what about refunds?")(&mut *m);
        m["reply_to_message"] = json!({ "message_id": 1, "date": 1, "chat": { "id": -1, "type": "group" },
            "from": { "id": 42, "is_bot": true, "first_name": "Bot", "username": "SupportBot" } });
    });
    assert_eq!(messages(parse(&reply, Some("SupportBot")).expect("parses")).len(), 1);
}

#[test]
fn edits_bots_and_other_updates_ignored() {
    let edited = update_with("edited_message", |_| {});
    assert_eq!(parse(&edited, None), Ok(Verdict::ignored(1)));
    let bot = update_with("message", |m| m["from"]["is_bot"] = json!(true));
    assert_eq!(parse(&bot, None), Ok(Verdict::ignored(1)));
    let callback = br#"{"update_id":5,"callback_query":{"id":"1","data":"x"}}"#;
    assert_eq!(parse(callback, None), Ok(Verdict::ignored(1)));
}

#[test]
fn business_message_and_topic_context() {
    let body = update_with("business_message", |m| {
        m["business_connection_id"] = json!("bc1");
        m["message_thread_id"] = json!(77);
        m["is_topic_message"] = json!(true);
    });
    let m = messages(parse(&body, None).expect("parses"));
    assert_eq!(m[0].reply_context["business_connection_id"], "bc1");
    assert_eq!(m[0].reply_context["message_thread_id"], 77);
}

#[test]
fn media_attachments() {
    let body = update_with("message", |m| {
        if let Some(obj) = m.as_object_mut() {
            obj.remove("text");
        }
        m["caption"] = json!("see photo");
        m["photo"] = json!([{ "file_id": "small", "file_size": 10, "width": 90, "height": 90 },
            { "file_id": "big", "file_size": 999, "width": 800, "height": 800 }]);
        m["document"] =
            json!({ "file_id": "doc", "file_name": "a.pdf", "mime_type": "application/pdf", "file_size": 5 });
        m["location"] = json!({ "latitude": 1.5, "longitude": -2.0 });
    });
    let m = messages(parse(&body, None).expect("parses"));
    let a = &m[0].attachments;
    assert_eq!(m[0].text, "see photo");
    assert_eq!((a[0].kind.as_str(), a[0].media_id.as_deref(), a[0].size), ("image", Some("big"), Some(999)));
    assert_eq!((a[1].kind.as_str(), a[1].file_name.as_deref()), ("document", Some("a.pdf")));
    assert_eq!(a[2].kind, "location");
}

#[test]
fn garbage_is_rejected_not_panicking() {
    let bodies: [&[u8]; 5] = [b"\xff\x00", b"[]", b"{}", br#"{"update_id":"x"}"#, br#"{"update_id":1,"message":{}}"#];
    for body in bodies {
        assert!(matches!(parse(body, None), Err(Rejection::BadRequest(_))));
    }
    assert!(!contains_handle("ü@", "bot"));
    assert_eq!(strip_leading_mention("@bö", Some("b")), "@bö");
}

#[test]
fn credentials_validate_and_redact() {
    let good: Credentials =
        serde_json::from_value(json!({ "bot_token": "123456:AAH-x_y", "secret_token": "abc-DEF_1" })).expect("ok");
    assert_eq!(good.validate(), Ok(()));
    assert!(!format!("{good:?}").contains("AAH"));
    let bad: Credentials = serde_json::from_value(json!({ "bot_token": "nocolon" })).expect("ok");
    assert!(bad.validate().is_err());
    assert!(serde_json::from_value::<Credentials>(json!({ "bot_token": "1:a", "extra": 1 })).is_err());
}

#[test]
fn api_error_classification() {
    let limited = api_error(
        429,
        r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#,
    );
    assert!(matches!(limited, SendError::Retryable { status: Some(429), retry_after: Some(7), .. }));
    let blocked =
        api_error(403, r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#);
    assert!(matches!(blocked, SendError::Permanent { ref code, .. } if code == "403"));
    let entities = api_error(
        400,
        r#"{"ok":false,"error_code":400,"description":"Bad Request: can't parse entities: Character '.' is reserved"}"#,
    );
    assert!(matches!(entities, SendError::Permanent { ref code, .. } if code == "parse_entities"));
    assert!(matches!(api_error(502, "<html>Bad Gateway</html>"), SendError::Retryable { status: Some(502), .. }));
    assert!(matches!(api_error(400, "not json"), SendError::Permanent { ref code, .. } if code == "400"));
}
