//! Unit tests of `channels::meta`.

use super::*;
use crate::channels::hmac_sha256_hex;
use http::{HeaderMap, HeaderValue};

const WHATSAPP: &[u8] = include_bytes!("../../../../tests/fixtures/channels/whatsapp-text.json");
const MESSENGER: &[u8] = include_bytes!("../../../../tests/fixtures/channels/messenger-text.json");
const INSTAGRAM: &[u8] = include_bytes!("../../../../tests/fixtures/channels/instagram-text.json");
const SECRET: &str = "app-secret-for-tests";
static POST: http::Method = http::Method::POST;

fn inbound(parsed: &Parsed) -> (&[Inbound], usize) {
    match &parsed.verdict {
        Verdict::Messages { messages, ignored } => (messages, *ignored),
        other => panic!("expected messages, got {other:?}"),
    }
}

fn signature_headers(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("x-hub-signature-256", HeaderValue::from_str(value).expect("header value"));
    headers
}

fn signed(body: &[u8], secret: &str) -> HeaderMap {
    signature_headers(&format!("sha256={}", hmac_sha256_hex(secret.as_bytes(), &[body])))
}

fn request<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> RawRequest<'a> {
    RawRequest { method: &POST, headers, query: None, body }
}

#[test]
fn whatsapp_fixture() {
    let parsed = parse(ChannelKind::Whatsapp, WHATSAPP).expect("parses");
    let (messages, ignored) = inbound(&parsed);
    assert_eq!((messages.len(), ignored), (1, 0));
    let m = &messages[0];
    assert_eq!(m.provider_message_id, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=");
    assert_eq!(m.sender.id, "16505551234");
    assert_eq!(m.sender.phone.as_deref(), Some("+16505551234"));
    assert_eq!(m.sender.name.as_deref(), Some("Sheena Nelson"));
    assert_eq!(m.thread, "16505551234");
    assert_eq!(m.text, "Hello");
    assert_eq!(m.sent_at, Some(1739321024));
    assert_eq!(m.reply_context["phone_number_id"], "106540352242922");
    assert_eq!(m.reply_context["wamid"], m.provider_message_id.as_str());
    assert!(parsed.statuses.is_empty());
}

#[test]
fn messenger_and_instagram_fixtures() {
    let parsed = parse(ChannelKind::Messenger, MESSENGER).expect("parses");
    let (messages, _) = inbound(&parsed);
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].provider_message_id, "mid.1457764197618:41d102a3e1ae206a38");
    assert_eq!((messages[0].sender.id.as_str(), messages[0].thread.as_str()), ("PSID", "PSID"));
    assert_eq!(messages[0].text, "hello, world!");
    assert_eq!(messages[0].sent_at, Some(1458692752));
    assert_eq!(messages[0].reply_context, json!({ "page_id": "PAGE_ID" }));

    let parsed = parse(ChannelKind::Instagram, INSTAGRAM).expect("parses");
    let (messages, _) = inbound(&parsed);
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].provider_message_id, "MESSAGE-ID");
    assert_eq!(messages[0].sender.id, "IGSID");
    assert_eq!(messages[0].text, "MESSAGE-TEXT");
    assert_eq!(messages[0].sent_at, Some(1569262485));
    assert_eq!(messages[0].reply_context, json!({ "page_id": "IGID" }));

    // A fixture under the wrong kind is refused.
    assert!(matches!(parse(ChannelKind::Instagram, MESSENGER), Err(Rejection::BadRequest(_))));
    assert!(matches!(parse(ChannelKind::Telegram, MESSENGER), Err(Rejection::BadRequest(_))));
}

#[test]
fn whatsapp_batch_walks_every_entry_and_change() {
    let value = |messages: Value, statuses: Value| {
        json!({ "field": "messages", "value": {
            "metadata": { "phone_number_id": "111" },
            "contacts": [{ "profile": { "name": "Ana" }, "wa_id": "34600000001" }],
            "messages": messages, "statuses": statuses } })
    };
    let body = json!({ "object": "whatsapp_business_account", "entry": [
        { "id": "1", "changes": [value(json!([
            { "from": "34600000001", "id": "wamid.1", "timestamp": "10", "type": "text", "text": { "body": "hi" } },
            { "from": "34600000002", "id": "wamid.2", "timestamp": "11", "type": "image",
              "image": { "id": "media-1", "mime_type": "image/jpeg", "caption": "look" } }
        ]), json!([]))] },
        { "id": "2", "changes": [value(json!([
            { "from": "34600000003", "id": "wamid.3", "timestamp": "12", "type": "interactive",
              "interactive": { "type": "button_reply", "button_reply": { "id": "b1", "title": "Yes" } } },
            { "from": "34600000004", "id": "wamid.4", "timestamp": "13", "type": "location",
              "location": { "latitude": 40.5, "longitude": -3.25, "name": "Office" } }
        ]), json!([{ "id": "wamid.out", "status": "failed", "timestamp": "14", "recipient_id": "34600000001",
                     "errors": [{ "code": 131047, "title": "Re-engagement message" }] }]))] }
    ]});
    let parsed = parse(ChannelKind::Whatsapp, &serde_json::to_vec(&body).expect("json")).expect("parses");
    let (messages, ignored) = inbound(&parsed);
    assert_eq!((messages.len(), ignored), (4, 1));
    let ids: Vec<&str> = messages.iter().map(|m| m.provider_message_id.as_str()).collect();
    assert_eq!(ids, ["wamid.1", "wamid.2", "wamid.3", "wamid.4"]);
    assert_eq!(messages[0].sender.name.as_deref(), Some("Ana"));
    assert_eq!(messages[1].sender.name, None);
    assert_eq!(messages[1].text, "look");
    assert_eq!(messages[1].attachments[0].media_id.as_deref(), Some("media-1"));
    assert_eq!(messages[1].attachments[0].mime_type.as_deref(), Some("image/jpeg"));
    assert_eq!(messages[2].text, "Yes");
    assert_eq!(messages[3].attachments[0].kind, "location");
    assert_eq!(messages[3].attachments[0].media_id, None);
    assert_eq!(messages[3].attachments[0].url.as_deref(), Some("geo:40.5,-3.25"));
    assert_eq!(
        parsed.statuses,
        [StatusUpdate {
            provider_message_id: "wamid.out".into(),
            status: "failed".into(),
            error: Some("131047: Re-engagement message".into()),
        }]
    );
}

#[test]
fn echoes_deliveries_and_own_account_are_not_messages() {
    let body = json!({ "object": "page", "entry": [{ "id": "PAGE", "messaging": [
        { "sender": { "id": "PAGE" }, "recipient": { "id": "PSID" }, "timestamp": 1,
          "message": { "mid": "m.echo", "is_echo": true, "app_id": 123, "text": "our reply" } },
        { "sender": { "id": "PSID" }, "recipient": { "id": "PAGE" }, "timestamp": 2,
          "delivery": { "mids": ["m.out1", "m.out2"], "watermark": 2 } },
        { "sender": { "id": "PSID" }, "recipient": { "id": "PAGE" }, "timestamp": 3, "read": { "watermark": 3 } },
        { "sender": { "id": "PSID" }, "recipient": { "id": "PAGE" }, "timestamp": 4000,
          "postback": { "title": "Talk to us", "payload": "START" } }
    ]}]});
    let parsed = parse(ChannelKind::Messenger, &serde_json::to_vec(&body).expect("json")).expect("parses");
    let (messages, ignored) = inbound(&parsed);
    assert_eq!((messages.len(), ignored), (1, 3));
    assert_eq!(messages[0].provider_message_id, "postback:PSID:4000");
    assert_eq!(messages[0].text, "Talk to us");
    let delivered: Vec<&str> = parsed.statuses.iter().map(|s| s.provider_message_id.as_str()).collect();
    assert_eq!(delivered, ["m.out1", "m.out2"]);

    // Instagram: the business account's own message, without is_echo.
    let body = br#"{"object":"instagram","entry":[{"id":"IGID","messaging":[{"sender":{"id":"IGID"},"recipient":{"id":"IGSID"},"timestamp":1,"message":{"mid":"x","text":"hi"}}]}]}"#;
    let parsed = parse(ChannelKind::Instagram, body).expect("parses");
    let (messages, ignored) = inbound(&parsed);
    assert!(messages.is_empty());
    assert_eq!(ignored, 1);
}

#[test]
fn odd_shapes_never_panic() {
    let bodies: [&[u8]; 9] = [
        b"",
        b"[]",
        b"\"page\"",
        br#"{"object":"page","entry":5}"#,
        br#"{"object":"page","entry":[{"messaging":[1,null,{"message":5},{"message":{"mid":7,"text":"t"}}]}]}"#,
        br#"{"object":"page","entry":[{"messaging":[{"sender":{"id":"p"},"message":{"mid":"m","attachments":[1,{"type":"image"}]}}]}]}"#,
        br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":[]}]}]}"#,
        br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"messages":[{"id":"w","from":1,"type":"image","image":"x"},{"type":"text"}],"statuses":[{"id":"s","status":"failed","errors":{}}]}}]}]}"#,
        br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"messages":[{"id":"w","from":"1","timestamp":"99999999999999999999","type":"reaction"}]}}]}]}"#,
    ];
    for body in bodies {
        for kind in [ChannelKind::Whatsapp, ChannelKind::Messenger, ChannelKind::Instagram] {
            let _ = parse(kind, body);
        }
    }
    assert!(matches!(parse(ChannelKind::Messenger, b"not json"), Err(Rejection::BadRequest(_))));
}

#[test]
fn signature() {
    assert_eq!(verify(&request(&signed(WHATSAPP, SECRET), WHATSAPP), SECRET), Ok(()));

    let mut flipped = WHATSAPP.to_vec();
    flipped[10] ^= 1;
    let forbidden = Err(Rejection::Forbidden("X-Hub-Signature-256 does not match"));
    assert_eq!(verify(&request(&signed(WHATSAPP, SECRET), &flipped), SECRET), forbidden);
    assert_eq!(verify(&request(&signed(WHATSAPP, "another secret"), WHATSAPP), SECRET), forbidden);

    let none = HeaderMap::new();
    assert!(matches!(verify(&request(&none, WHATSAPP), SECRET), Err(Rejection::Unauthorized(_))));
    let bad = signature_headers("sha1=0123");
    assert!(matches!(verify(&request(&bad, WHATSAPP), SECRET), Err(Rejection::Unauthorized(_))));

    // Meta sends escaped unicode; re-serialising the parsed JSON changes the bytes.
    let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messages":[{"from":"1","id":"w","timestamp":"1","type":"text","text":{"body":"Caf\u00e9 \ud83d\ude00 a\/b"}}]}}]}]}"#;
    let headers = signed(body, SECRET);
    assert_eq!(verify(&request(&headers, body), SECRET), Ok(()));
    let parsed = parse(ChannelKind::Whatsapp, body).expect("parses");
    assert_eq!(inbound(&parsed).0[0].text, "Café 😀 a/b");
    let reserialised = serde_json::to_vec(&serde_json::from_slice::<Value>(body).expect("json")).expect("json");
    assert_ne!(reserialised.as_slice(), body.as_slice());
    assert_eq!(verify(&request(&headers, &reserialised), SECRET), forbidden);
}

#[test]
fn handshake_checks_mode_and_token() {
    let query = "hub.mode=subscribe&hub.verify_token=tok%20en&hub.challenge=1158201444";
    assert_eq!(handshake(Some(query), "tok en"), Ok(Verdict::Challenge("1158201444".into())));
    assert_eq!(handshake(Some(query), "other"), Err(Rejection::Forbidden("wrong hub.verify_token")));
    assert!(matches!(handshake(Some(query), ""), Err(Rejection::Forbidden(_))));
    let unsubscribe = "hub.mode=unsubscribe&hub.verify_token=tok%20en&hub.challenge=1";
    assert!(matches!(handshake(Some(unsubscribe), "tok en"), Err(Rejection::Forbidden(_))));
    assert!(matches!(handshake(Some("hub.mode=subscribe"), "tok en"), Err(Rejection::BadRequest(_))));
    assert!(matches!(handshake(None, "tok en"), Err(Rejection::BadRequest(_))));
}

#[test]
fn graph_errors_are_classified() {
    let body = |code: i64, subcode: Option<i64>| {
        json!({ "error": { "message": format!("(#{code}) boom"), "code": code, "error_subcode": subcode } }).to_string()
    };
    assert!(matches!(
        graph_error(429, Some(30), ""),
        SendError::Retryable { status: Some(429), retry_after: Some(30), .. }
    ));
    assert!(matches!(graph_error(503, None, "<html>"), SendError::Retryable { status: Some(503), .. }));
    for code in [4, 613, 130429, 131056] {
        assert!(matches!(graph_error(400, None, &body(code, None)), SendError::Retryable { .. }), "{code}");
    }
    let outside = |e: SendError| matches!(e, SendError::Permanent { code, .. } if code == "outside_window");
    assert!(outside(graph_error(400, None, &body(131047, None))));
    assert!(outside(graph_error(400, None, &body(10, Some(2018278)))));
    assert_eq!(
        graph_error(401, None, &body(190, None)),
        SendError::Permanent { code: "190".into(), message: "(#190) boom".into() }
    );
    assert!(matches!(graph_error(403, None, "nope"), SendError::Permanent { code, .. } if code == "403"));
}

#[test]
fn credentials_validate_and_hide_secrets() {
    let creds: Credentials =
        serde_json::from_value(json!({ "access_token": "EAAtoken", "app_secret": "s3cret" })).expect("parses");
    assert!(creds.validate(ChannelKind::Messenger).is_ok());
    assert!(creds.validate(ChannelKind::Whatsapp).is_err());
    assert!(creds.validate(ChannelKind::Slack).is_err());
    let debug = format!("{creds:?}");
    assert!(!debug.contains("EAAtoken") && !debug.contains("s3cret"), "{debug}");

    let whatsapp: Credentials = serde_json::from_value(
        json!({ "access_token": "EAAtoken", "app_secret": "s3cret", "phone_number_id": "106540352242922" }),
    )
    .expect("parses");
    assert!(whatsapp.validate(ChannelKind::Whatsapp).is_ok());
    let pasted: Credentials =
        serde_json::from_value(json!({ "access_token": "EAA token\n", "app_secret": "s" })).expect("parses");
    assert!(pasted.validate(ChannelKind::Messenger).is_err());
    let unknown_field = json!({ "access_token": "a", "app_secret": "b", "x": 1 });
    assert!(serde_json::from_value::<Credentials>(unknown_field).is_err());
}
