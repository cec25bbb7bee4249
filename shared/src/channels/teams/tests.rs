//! Unit tests of `channels::teams`.

use super::*;

const FIXTURE: &[u8] = include_bytes!("../../../../tests/fixtures/channels/teams-message.json");
const NOW: i64 = 1_700_000_000;
const SERVICE: &str = "https://smba.trafficmanager.net/amer/";

fn jwt(header: Value, claims: Value) -> String {
    let h = B64URL.encode(header.to_string());
    let c = B64URL.encode(claims.to_string());
    format!("{h}.{c}.{}", B64URL.encode(b"sig"))
}

fn claims() -> Value {
    json!({"iss": "https://api.botframework.com", "aud": "app-1", "exp": NOW + 3600, "nbf": NOW - 10,
           "serviceurl": "https://smba.trafficmanager.net/amer"})
}

fn claims_ok(c: &Value) -> Result<(), Rejection> {
    check_claims(c, "https://api.botframework.com", "app-1", SERVICE, NOW)
}

#[test]
fn parses_the_fixture() {
    let Verdict::Messages { messages, ignored } = parse(FIXTURE).unwrap() else { panic!("not messages") };
    assert_eq!(ignored, 0);
    let m = &messages[0];
    let conv = "a:17I0kl9EkpE1O9PH5TWrzrLNwnWWcfrU7QZjKR0WSfOpzbfcAg2IaydGElSo10tVr4C7Fc6GtieTJX663WuJCc1uA83n4CSrHSgGBj5XNYLcVlJAs2ZX8DbYBPck201w-";
    assert_eq!(m.provider_message_id, format!("{conv}/1485983408511"));
    assert_eq!(m.thread, conv);
    assert_eq!(m.sender.id, "7faf8ab2-3d56-4244-b585-20c8a42ed2b8");
    assert_eq!(m.sender.name.as_deref(), Some("Megan Bowen"));
    assert_eq!(m.text, "Hello Teams TestBot");
    assert_eq!(m.sent_at, Some(1_485_983_407));
    assert!(m.attachments.is_empty());
    assert_eq!(m.reply_context["service_url"], SERVICE);
    assert_eq!(m.reply_context["activity_id"], "1485983408511");
    assert_eq!(m.reply_context["recipient"]["id"], "28:c9e8c047-2a74-40a2-b28a-b162d5f5327c");
    assert_eq!(m.reply_context["tenant_id"], "72f988bf-86f1-41af-91ab-2d7cd011db47");
    assert_eq!(service_url(FIXTURE).unwrap(), SERVICE);
}

#[test]
fn ignores_other_activities_and_bots() {
    let mut a: Value = serde_json::from_slice(FIXTURE).unwrap();
    a["type"] = json!("conversationUpdate");
    assert_eq!(parse(a.to_string().as_bytes()).unwrap(), Verdict::ignored(1));
    a["type"] = json!("message");
    a["from"]["role"] = json!("bot");
    assert_eq!(parse(a.to_string().as_bytes()).unwrap(), Verdict::ignored(1));
    a["from"] = a["recipient"].clone();
    assert_eq!(parse(a.to_string().as_bytes()).unwrap(), Verdict::ignored(1));
    assert!(matches!(parse(b"not json"), Err(Rejection::BadRequest(_))));
    assert!(matches!(service_url(b"{"), Err(Rejection::BadRequest(_))));
    assert!(matches!(parse(b"[1]"), Err(Rejection::BadRequest(_))));
}

#[test]
fn strips_mentions_and_keeps_attachments() {
    assert_eq!(strip_mentions("<at>Support Bot</at> where is my order?"), "where is my order?");
    assert_eq!(strip_mentions("hi <AT id=\"0\">Bot</AT> there"), "hi there");
    assert_eq!(strip_mentions("<attention> <at>unclosed"), "<attention> <at>unclosed");
    assert_eq!(strip_mentions("ünïcødé <at>Bot</at>"), "ünïcødé");
    let mut a: Value = serde_json::from_slice(FIXTURE).unwrap();
    a["attachments"] = json!([
        {"contentType": "text/html", "content": "<p>Hello</p>"},
        {"contentType": "image/png", "contentUrl": "https://x.test/i.png", "name": "i.png"},
        {"contentType": FILE_DOWNLOAD_INFO, "name": "a.pdf", "content": {"downloadUrl": "https://d.test/a"}}
    ]);
    let Verdict::Messages { messages, .. } = parse(a.to_string().as_bytes()).unwrap() else { panic!() };
    let atts = &messages[0].attachments;
    assert_eq!(atts.len(), 2);
    assert_eq!(atts[0].kind, "image");
    assert_eq!(atts[1].url.as_deref(), Some("https://d.test/a"));
    assert_eq!(atts[1].file_name.as_deref(), Some("a.pdf"));
}

#[test]
fn header_check_refuses_other_algorithms() {
    let none = jwt(json!({"alg": "none", "kid": "k"}), claims());
    assert_eq!(check_header(&none).unwrap_err(), Rejection::Forbidden("token algorithm is not RS256"));
    let hs = jwt(json!({"alg": "HS256", "kid": "k"}), claims());
    assert_eq!(check_header(&hs).unwrap_err(), Rejection::Forbidden("token algorithm is not RS256"));
    let no_kid = jwt(json!({"alg": "RS256"}), claims());
    assert!(check_header(&no_kid).is_err());
    for junk in ["", "a.b", "a.b.c.d", "!!.??.##", "..", "e30.e30."] {
        assert!(check_header(junk).is_err(), "{junk}");
    }
    let good = jwt(json!({"alg": "RS256", "kid": "k1", "typ": "JWT"}), claims());
    let (kid, input, sig) = check_header(&good).unwrap();
    assert_eq!(kid, "k1");
    assert_eq!(sig, b"sig");
    assert_eq!(decode_claims(input).unwrap(), claims());
}

#[test]
fn claim_checks() {
    assert_eq!(claims_ok(&claims()), Ok(()));
    let with = |k: &str, v: Value| {
        let mut c = claims();
        c[k] = v;
        c
    };
    assert!(claims_ok(&with("aud", json!("other"))).is_err());
    assert_eq!(claims_ok(&with("aud", json!(["x", "app-1"]))), Ok(()));
    assert!(claims_ok(&with("iss", json!("https://evil.test"))).is_err());
    assert!(claims_ok(&with("serviceurl", json!("https://evil.test/amer/"))).is_err());
    // Skew edges: exp must be later than now - 300, nbf at most now + 300.
    assert!(claims_ok(&with("exp", json!(NOW - 300))).is_err());
    assert_eq!(claims_ok(&with("exp", json!(NOW - 299))), Ok(()));
    assert_eq!(claims_ok(&with("nbf", json!(NOW + 300))), Ok(()));
    assert!(claims_ok(&with("nbf", json!(NOW + 301))).is_err());
    let mut camel = claims();
    camel.as_object_mut().unwrap().remove("serviceurl");
    assert!(claims_ok(&camel).is_err());
    camel["serviceUrl"] = json!(SERVICE);
    assert_eq!(claims_ok(&camel), Ok(()));
    let mut no_exp = claims();
    no_exp.as_object_mut().unwrap().remove("exp");
    assert!(claims_ok(&no_exp).is_err());
}

#[test]
fn service_urls_and_segments() {
    assert_eq!(checked_service_url(SERVICE).unwrap(), "https://smba.trafficmanager.net/amer");
    assert!(checked_service_url("http://smba.trafficmanager.net/amer/").is_err());
    assert!(checked_service_url("http://127.0.0.1:9000/").is_ok());
    assert!(checked_service_url("http://localhost:9000").is_ok());
    assert!(checked_service_url("ftp://x.test/").is_err());
    assert_eq!(encode_segment("19:ab@thread.skype;messageid=1"), "19%3Aab%40thread.skype%3Bmessageid%3D1");
}

#[test]
fn credentials() {
    let creds: Credentials =
        serde_json::from_value(json!({"app_id": "c9e8c047-2a74", "app_password": "hunter2", "tenant_id": "t-1"}))
            .unwrap();
    assert!(!format!("{creds:?}").contains("hunter2"));
    assert_eq!(creds.validate(), Ok(()));
    let ep = Endpoints::default();
    assert_eq!(token_url(&ep, &creds).unwrap(), "https://login.microsoftonline.com/t-1/oauth2/v2.0/token");
    let bad: Credentials =
        serde_json::from_value(json!({"app_id": "x", "app_password": "p", "tenant_id": "../x"})).unwrap();
    assert!(bad.validate().is_err());
    assert!(serde_json::from_value::<Credentials>(json!({"app_id": "x", "app_password": "p", "y": 1})).is_err());
}
