//! Unit tests of `channels::slack`.

use super::*;
use crate::channels::hmac_sha256_hex;
use serde_json::json;

const MESSAGE: &[u8] = include_bytes!("../../../../tests/fixtures/channels/slack-message.json");
const URL_VERIFICATION: &[u8] = include_bytes!("../../../../tests/fixtures/channels/slack-url-verification.json");

// Slack's published example (docs.slack.dev, "Verifying requests from Slack").
const VECTOR_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const VECTOR_TS: i64 = 1531420618;
const VECTOR_SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
const VECTOR_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";

fn check_sig(ts: Option<&str>, sig: Option<&str>, body: &[u8], secret: &str, now: i64) -> Result<(), Rejection> {
    let mut headers = http::HeaderMap::new();
    if let Some(ts) = ts {
        headers.insert(TIMESTAMP_HEADER, http::HeaderValue::from_str(ts).expect("ascii"));
    }
    if let Some(sig) = sig {
        headers.insert(SIGNATURE_HEADER, http::HeaderValue::from_str(sig).expect("ascii"));
    }
    let method = http::Method::POST;
    verify(&RawRequest { method: &method, headers: &headers, query: None, body }, secret, now)
}

fn vector(body: &[u8], secret: &str, now: i64) -> Result<(), Rejection> {
    check_sig(Some(&VECTOR_TS.to_string()), Some(VECTOR_SIG), body, secret, now)
}

fn messages(v: Verdict) -> Vec<Inbound> {
    match v {
        Verdict::Messages { messages, .. } => messages,
        other => panic!("unexpected verdict {other:?}"),
    }
}

/// The message fixture with its `event` changed by `f`.
fn event_with(f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(MESSAGE).expect("fixture is JSON");
    f(&mut v["event"]);
    serde_json::to_vec(&v).expect("serialise")
}

#[test]
fn published_test_vector() {
    assert_eq!(vector(VECTOR_BODY.as_bytes(), VECTOR_SECRET, VECTOR_TS), Ok(()));
    let ts = VECTOR_TS.to_string();
    let parts = ["v0:".as_bytes(), ts.as_bytes(), ":".as_bytes(), VECTOR_BODY.as_bytes()];
    assert_eq!(format!("v0={}", hmac_sha256_hex(VECTOR_SECRET.as_bytes(), &parts)), VECTOR_SIG);
}

#[test]
fn replay_window() {
    let body = VECTOR_BODY.as_bytes();
    assert_eq!(vector(body, VECTOR_SECRET, VECTOR_TS + MAX_SKEW_SECS), Ok(()));
    assert_eq!(vector(body, VECTOR_SECRET, VECTOR_TS - MAX_SKEW_SECS), Ok(()));
    let stale = Err(Rejection::Forbidden("stale timestamp"));
    assert_eq!(vector(body, VECTOR_SECRET, VECTOR_TS + MAX_SKEW_SECS + 1), stale);
    assert_eq!(vector(body, VECTOR_SECRET, VECTOR_TS - MAX_SKEW_SECS - 1), stale);
    assert_eq!(check_sig(Some("soon"), Some(VECTOR_SIG), body, VECTOR_SECRET, VECTOR_TS), stale);
    assert_eq!(check_sig(Some("-9223372036854775808"), Some(VECTOR_SIG), body, VECTOR_SECRET, i64::MAX), stale);
}

#[test]
fn tampering_and_missing_headers() {
    let mut flipped = VECTOR_BODY.as_bytes().to_vec();
    flipped[10] ^= 0x01;
    let bad = Err(Rejection::Forbidden("bad signature"));
    assert_eq!(vector(&flipped, VECTOR_SECRET, VECTOR_TS), bad);
    assert_eq!(vector(VECTOR_BODY.as_bytes(), "8f742231b10e8888abcd99yyyzzz85a6", VECTOR_TS), bad);
    let ts = VECTOR_TS.to_string();
    let body = VECTOR_BODY.as_bytes();
    assert_eq!(check_sig(Some(&ts), Some(&VECTOR_SIG[3..]), body, VECTOR_SECRET, VECTOR_TS), bad);
    assert!(matches!(check_sig(Some(&ts), None, body, VECTOR_SECRET, VECTOR_TS), Err(Rejection::Unauthorized(_))));
    assert!(matches!(
        check_sig(None, Some(VECTOR_SIG), body, VECTOR_SECRET, VECTOR_TS),
        Err(Rejection::Unauthorized(_))
    ));
    assert!(matches!(vector(body, "", VECTOR_TS), Err(Rejection::Forbidden(_))));
}

#[test]
fn signature_covers_raw_bytes_not_reserialised_json() {
    let ts = "1355517600";
    let parts = ["v0:".as_bytes(), ts.as_bytes(), ":".as_bytes(), MESSAGE];
    let sig = format!("v0={}", hmac_sha256_hex(b"secret", &parts));
    assert_eq!(check_sig(Some(ts), Some(&sig), MESSAGE, "secret", 1355517600), Ok(()));
    let value: Value = serde_json::from_slice(MESSAGE).expect("fixture is JSON");
    let reserialised = serde_json::to_vec_pretty(&value).expect("serialise");
    assert_ne!(reserialised, MESSAGE);
    assert_eq!(
        check_sig(Some(ts), Some(&sig), &reserialised, "secret", 1355517600),
        Err(Rejection::Forbidden("bad signature"))
    );
}

#[test]
fn url_verification_challenge() {
    assert_eq!(
        parse(URL_VERIFICATION, None),
        Ok(Verdict::Challenge("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P".into()))
    );
}

#[test]
fn channel_message_fixture() {
    let m = messages(parse(MESSAGE, Some("UBOT")).expect("parses"));
    assert_eq!(m.len(), 1);
    let m = &m[0];
    assert_eq!(m.provider_message_id, "Ev123ABC456");
    assert_eq!(m.sender.id, "U123ABC456");
    assert_eq!(m.thread, "C123ABC456:1355517523.000005");
    assert_eq!(m.text, "Live long and prospect.");
    assert_eq!(m.sent_at, Some(1355517523));
    assert_eq!(
        m.reply_context,
        json!({ "channel": "C123ABC456", "thread_ts": "1355517523.000005", "ts": "1355517523.000005",
            "team": "T123ABC456", "channel_type": "channel" })
    );
}

#[test]
fn threaded_message_maps_to_its_thread() {
    let body = event_with(|e| e["thread_ts"] = json!("1355517000.000001"));
    let m = messages(parse(&body, None).expect("parses"));
    assert_eq!(m[0].thread, "C123ABC456:1355517000.000001");
    assert_eq!(m[0].reply_context["thread_ts"], "1355517000.000001");
    assert_eq!(m[0].reply_context["ts"], "1355517523.000005");
}

#[test]
fn direct_message_is_one_conversation() {
    let body = event_with(|e| {
        e["channel"] = json!("D024BE91L");
        e["channel_type"] = json!("im");
    });
    let m = messages(parse(&body, None).expect("parses"));
    assert_eq!(m[0].thread, "D024BE91L");
    assert!(m[0].reply_context.get("thread_ts").is_none());
    let threaded = event_with(|e| {
        e["channel"] = json!("D024BE91L");
        e["channel_type"] = json!("im");
        e["thread_ts"] = json!("1355517000.000001");
    });
    let m = messages(parse(&threaded, None).expect("parses"));
    assert_eq!(m[0].thread, "D024BE91L");
    assert_eq!(m[0].reply_context["thread_ts"], "1355517000.000001");
}

#[test]
fn bots_own_user_edits_ignored() {
    let bot = event_with(|e| e["bot_id"] = json!("B123"));
    assert_eq!(parse(&bot, None), Ok(Verdict::ignored(1)));
    let bot_message = event_with(|e| e["subtype"] = json!("bot_message"));
    assert_eq!(parse(&bot_message, None), Ok(Verdict::ignored(1)));
    assert_eq!(parse(MESSAGE, Some("U123ABC456")), Ok(Verdict::ignored(1)));
    let changed = event_with(|e| e["subtype"] = json!("message_changed"));
    assert_eq!(parse(&changed, None), Ok(Verdict::ignored(1)));
    let reaction = event_with(|e| e["type"] = json!("reaction_added"));
    assert_eq!(parse(&reaction, None), Ok(Verdict::ignored(1)));
    assert_eq!(parse(br#"{"type":"app_rate_limited"}"#, None), Ok(Verdict::ignored(1)));
}

#[test]
fn app_mention_strips_the_bot_and_message_duplicate_dropped() {
    let mention = event_with(|e| {
        e["type"] = json!("app_mention");
        e["text"] = json!("<@UBOT> where is my order?");
        if let Some(obj) = e.as_object_mut() {
            obj.remove("channel_type");
        }
    });
    let m = messages(parse(&mention, Some("UBOT")).expect("parses"));
    assert_eq!(m[0].text, "where is my order?");
    assert_eq!(messages(parse(&mention, None).expect("parses"))[0].text, "where is my order?");
    let duplicate = event_with(|e| e["text"] = json!("<@UBOT> where is my order?"));
    assert_eq!(parse(&duplicate, Some("UBOT")), Ok(Verdict::ignored(1)));
}

#[test]
fn files_become_attachments() {
    let body = event_with(|e| {
        e["subtype"] = json!("file_share");
        e["files"] = json!([{ "id": "F1", "name": "shot.png", "mimetype": "image/png", "size": 12,
            "url_private": "https://files.slack.com/F1" }, 7]);
    });
    let m = messages(parse(&body, None).expect("parses"));
    let a = &m[0].attachments;
    assert_eq!(a.len(), 1);
    assert_eq!((a[0].kind.as_str(), a[0].media_id.as_deref(), a[0].size), ("image", Some("F1"), Some(12)));
}

#[test]
fn garbage_does_not_panic() {
    assert!(matches!(parse(b"token=x&command=%2Fhelp", None), Err(Rejection::BadRequest(_))));
    assert!(matches!(parse(br#"{"type":"event_callback"}"#, None), Err(Rejection::BadRequest(_))));
    assert_eq!(parse(b"[1,2]", None), Ok(Verdict::ignored(1)));
    assert_eq!(strip_leading_mention("<@U\u{e9}", Some("U"), true), "<@U\u{e9}");
}

#[test]
fn api_error_classification() {
    let limited = api_error(429, Some(30), "");
    assert!(matches!(limited, SendError::Retryable { status: Some(429), retry_after: Some(30), .. }));
    let soft = api_error(200, None, r#"{"ok":false,"error":"ratelimited"}"#);
    assert!(matches!(soft, SendError::Retryable { status: Some(429), .. }));
    let gone = api_error(200, None, r#"{"ok":false,"error":"channel_not_found"}"#);
    assert!(matches!(gone, SendError::Permanent { ref code, .. } if code == "channel_not_found"));
    assert!(matches!(api_error(503, None, "<html>"), SendError::Retryable { status: Some(503), .. }));
    assert!(matches!(api_error(200, None, "<html>"), SendError::Permanent { ref code, .. } if code == "bad_response"));
}
