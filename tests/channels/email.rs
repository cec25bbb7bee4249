//! Email: SES receiving through SNS, end to end through the `email` function. SNS messages are
//! signed (SignatureVersion 2, SHA256withRSA) with a test key whose certificate a local server
//! serves at a 127.0.0.1 SigningCertURL; the subscription is confirmed only when signed; a
//! received mail is answered once through SES v2 on moto, threaded under the customer's, and her
//! answer to it continues the same conversation; a mail SES stored in S3 is read from the
//! company's prefix only; forged deliveries and auto-replies store nothing.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chatapp_tests::{Tenant, TestEnv};
use http::StatusCode;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use serde_json::{json, Value};
use uuid::Uuid;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

/// A self-signed certificate and its RSA key: standing in for SNS's signing certificate.
const CERT: &[u8] = include_bytes!("../fixtures/channels/sns-cert.pem");
const KEY: &[u8] = include_bytes!("../fixtures/channels/sns-key.pk8");
const CERT_PATH: &str = "/SimpleNotificationService-test.pem";
/// The topic of the channel's SES receipt rule: the only one allowed to post.
const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:ses-inbound";

fn moto_url() -> String {
    std::env::var("MOTO_URL")
        .expect("MOTO_URL is not set: run the tests through scripts/test.sh, which starts moto_server")
}

/// `env_with_providers` plus replies sent through SES v2 on moto.
async fn email_env(server: &MockServer) -> TestEnv {
    let uri = server.uri();
    let moto = moto_url();
    TestEnv::with(&[
        ("CHANNEL_GRAPH_URL", &format!("{uri}/v21.0")),
        ("CHANNEL_TELEGRAM_URL", &uri),
        ("CHANNEL_SLACK_URL", &format!("{uri}/api")),
        ("CHANNEL_TEAMS_TOKEN_URL", &format!("{uri}/botframework.com/oauth2/v2.0/token")),
        ("CHANNEL_TEAMS_OPENID_URL", &format!("{uri}/v1/.well-known/openidconfiguration")),
        ("CHANNEL_SNS_CERT_HOST", "127.0.0.1"),
        ("PUBLIC_API_URL", "https://hooks.example.test"),
        ("EMAIL_SENDER", "ses"),
        ("AWS_ENDPOINT_URL", &moto),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ])
    .await
}

/// What SNS serves: its signing certificate and the subscription's confirmation URL.
async fn sns_endpoints(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path(CERT_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(CERT.to_vec()))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/confirm"))
        .and(query_param("token", "abc"))
        .respond_with(ResponseTemplate::new(200))
        .mount(server)
        .await;
}

/// An email channel with a mailbox address of its own (moto's SES is shared by every test).
async fn email_channel(env: &TestEnv, slug: &str) -> (Tenant, Uuid, String) {
    let (t, agent) = company_with_agent(env, slug).await;
    let address = format!("support-{}@acme.test", Uuid::new_v4().simple());
    let (id, _) = create_channel(env, &t, agent, "email", json!({"address": address, "topic_arn": TOPIC})).await;
    (t, id, address)
}

/// SES refuses to send from an address not verified: verify it on moto.
async fn verify_sender(address: &str) {
    let sdk = chatapp::adapters::aws::loader()
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new("testing", "testing", None, None, "tests"))
        .endpoint_url(moto_url())
        .load()
        .await;
    aws_sdk_sesv2::Client::new(&sdk)
        .create_email_identity()
        .email_identity(address)
        .send()
        .await
        .expect("an SES identity on moto");
}

/// The raw messages SES (moto) sent from or to `address`.
async fn ses_sent(address: &str) -> Vec<Value> {
    let bytes = chatapp::outbound_http::client()
        .get(format!("{}/moto-api/data.json", moto_url()))
        .send()
        .await
        .expect("moto's data")
        .bytes()
        .await
        .expect("moto's data");
    let data: Value = serde_json::from_slice(&bytes).expect("moto's data is JSON");
    data["ses"]["RawMessage"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["raw_data"].as_str().is_some_and(|raw| raw.contains(address)))
        .cloned()
        .collect()
}

fn timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `msg` with the Signature SNS would give it: over exactly the string the handler verifies.
fn signed(mut msg: Value) -> Value {
    let to_sign = chatapp::channels::email::string_to_sign(&msg).expect("the fields SNS signs");
    let key = RsaKeyPair::from_pkcs8(KEY).expect("a PKCS#8 RSA key");
    let mut sig = vec![0; key.public().modulus_len()];
    key.sign(&RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), to_sign.as_bytes(), &mut sig)
        .expect("SHA256withRSA signing");
    msg["Signature"] = json!(STANDARD.encode(sig));
    msg
}

/// `msg` with one field replaced (not re-signed).
fn with(msg: &Value, field: &str, value: &str) -> Value {
    let mut m = msg.clone();
    m[field] = json!(value);
    m
}

fn confirmation(server: &MockServer) -> Value {
    signed(json!({
        "Type": "SubscriptionConfirmation",
        "MessageId": Uuid::new_v4().to_string(),
        "Token": "abc",
        "TopicArn": TOPIC,
        "Message": format!("You have chosen to subscribe to the topic {TOPIC}.\nTo confirm, visit the SubscribeURL."),
        "SubscribeURL": format!("{}/confirm?token=abc", server.uri()),
        "Timestamp": timestamp(),
        "SignatureVersion": "2",
        "SigningCertURL": format!("{}{CERT_PATH}", server.uri()),
    }))
}

/// A signed SNS notification carrying SES's receipt of `mail` (the SNS action, base64), for
/// the mail's `To:` address.
fn notification(server: &MockServer, mail: &[u8]) -> Value {
    let text = String::from_utf8_lossy(mail);
    let to = text
        .lines()
        .find_map(|l| l.strip_prefix("To:"))
        .map(|t| t.trim().rsplit('<').next().unwrap_or("").trim_end_matches('>').trim().to_string())
        .unwrap_or_default();
    notification_to(server, mail, &to)
}

/// The same, with SES's recipient list saying the mail was for `recipient`.
fn notification_to(server: &MockServer, mail: &[u8], recipient: &str) -> Value {
    let ses = json!({
        "notificationType": "Received",
        "receipt": {
            "recipients": [recipient],
            "spamVerdict": {"status": "PASS"},
            "virusVerdict": {"status": "PASS"},
            "action": {"type": "SNS", "topicArn": TOPIC, "encoding": "BASE64"},
        },
        "content": STANDARD.encode(mail),
    });
    signed(json!({
        "Type": "Notification",
        "MessageId": Uuid::new_v4().to_string(),
        "TopicArn": TOPIC,
        "Subject": "Amazon SES Email Receipt Notification",
        "Message": ses.to_string(),
        "Timestamp": timestamp(),
        "SignatureVersion": "2",
        "SigningCertURL": format!("{}{CERT_PATH}", server.uri()),
    }))
}

/// Jane's first mail to `to`, with `extra` headers: (her address, its Message-ID, the raw MIME).
fn customer_mail(to: &str, extra: &str) -> (String, String, Vec<u8>) {
    let id = Uuid::new_v4().simple();
    let (jane, message_id) = (format!("jane-{id}@customer.test"), format!("m1-{id}@customer.test"));
    let raw = format!(
        "From: Jane Customer <{jane}>\r\nTo: {to}\r\nSubject: Order 42\r\nDate: {}\r\nMessage-ID: <{message_id}>\r\n\
         {extra}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nWhere is my order 42?\r\n",
        chrono::Utc::now().to_rfc2822()
    );
    (jane, message_id, raw.into_bytes())
}

/// An SNS POST as SNS sends it (text/plain), with `type_header` as `x-amz-sns-message-type`.
fn sns_post(config: Uuid, msg: &Value, type_header: Option<&str>) -> Req {
    let req =
        Req::post(&format!("/channels/email/{config}")).bytes(msg.to_string().as_bytes(), "text/plain; charset=UTF-8");
    match type_header {
        Some(kind) => req.header("x-amz-sns-message-type", kind),
        None => req,
    }
}

fn delivery(config: Uuid, msg: &Value) -> Req {
    sns_post(config, msg, msg["Type"].as_str())
}

#[tokio::test]
async fn a_subscription_is_confirmed_only_when_sns_signed_it() {
    let server = MockServer::start().await;
    sns_endpoints(&server).await;
    let env = email_env(&server).await;
    let (t, id, _) = email_channel(&env, "mail-sub").await;

    // Signed by nothing: the SubscribeURL must not be visited (it would subscribe anyone's topic).
    let forged = with(&confirmation(&server), "Signature", &STANDARD.encode([7u8; 256]));
    let r = env.send(function("email"), delivery(id, &forged)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(received(&server, "/confirm").await.is_empty(), "a forged confirmation was followed");

    let r = env.send(function("email"), delivery(id, &confirmation(&server))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["ignored"], 1);
    assert_eq!(received(&server, "/confirm").await.len(), 1, "the SubscribeURL fetched once");
    assert_eq!(count_for(&env, "chatapp_channel_inbound", t.company_id).await, 0);
}

#[tokio::test]
async fn a_received_mail_is_answered_once_through_ses_threaded_under_the_customers() {
    let server = MockServer::start().await;
    sns_endpoints(&server).await;
    let env = email_env(&server).await;
    let (t, id, address) = email_channel(&env, "mail-flow").await;
    verify_sender(&address).await;
    let (jane, m1, raw) = customer_mail(&address, "");
    let msg = notification(&server, &raw);

    let r = env.send(function("email"), delivery(id, &msg)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["stored"], 1);
    assert_eq!(run_workers(&env).await, (1, 1));
    assert_eq!(deliveries(&env, t.company_id).await, vec![("sent".to_string(), 1, None)]);

    let sent = ses_sent(&address).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let reply = sent[0]["raw_data"].as_str().unwrap();
    assert!(reply.contains(&format!("To: {jane}")), "{reply}");
    assert!(reply.contains("Subject: Re: Order 42"), "{reply}");
    assert!(reply.contains(&format!("In-Reply-To: <{m1}>")), "{reply}");
    // Her mail is the root of the thread: the reply's References cite it.
    assert!(reply.contains(&format!("References: <{m1}>")), "{reply}");
    let body = reply.split_once("\r\n\r\n").map(|(_, b)| b.trim()).unwrap_or_default();
    assert!(!body.is_empty(), "an empty reply: {reply}");
    assert!(sent[0]["destinations"].to_string().contains(&jane), "{}", sent[0]);

    // Our Message-ID is what the delivery records: her answer will cite it.
    let owner = env.owner().await;
    let ids: Value = owner
        .query_one(
            "SELECT provider_message_ids FROM chatapp_channel_deliveries WHERE company_id = $1",
            &[&t.company_id],
        )
        .await
        .unwrap()
        .get(0);
    let ours = ids[0].as_str().expect("the reply's Message-ID recorded");
    assert!(reply.contains(&format!("Message-ID: <{ours}>")), "{ours} not in {reply}");
    let customer: Option<String> = owner
        .query_one("SELECT customer_email FROM chatapp_conversations WHERE company_id = $1", &[&t.company_id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(customer.as_deref(), Some(jane.as_str()));

    // SNS redelivers (same MessageId, same bytes): stored once, answered once.
    let again = env.send(function("email"), delivery(id, &msg)).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!((again.body["stored"].clone(), again.body["duplicates"].clone()), (json!(0), json!(1)));
    assert_eq!(run_workers(&env).await, (0, 0));
    assert_eq!(ses_sent(&address).await.len(), 1, "a second reply went out");
    assert_eq!(count_for(&env, "chatapp_channel_inbound", t.company_id).await, 1);

    // Her answer to our reply (In-Reply-To ours, References the thread) continues the same
    // conversation, and our next reply threads under it.
    let m2 = format!("m2-{}@customer.test", Uuid::new_v4().simple());
    let follow_up = format!(
        "From: Jane Customer <{jane}>\r\nTo: {address}\r\nSubject: Re: Order 42\r\nDate: {}\r\n\
         Message-ID: <{m2}>\r\nIn-Reply-To: <{ours}>\r\nReferences: <{m1}> <{ours}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nThanks. And when will it arrive?\r\n",
        chrono::Utc::now().to_rfc2822()
    );
    let r = env.send(function("email"), delivery(id, &notification(&server, follow_up.as_bytes()))).await;
    assert_eq!((r.status, r.body["stored"].clone()), (StatusCode::OK, json!(1)), "{}", r.body);
    assert_eq!(run_workers(&env).await, (1, 1));
    assert_eq!(count_for(&env, "chatapp_conversations", t.company_id).await, 1, "one thread, one conversation");
    let sent = ses_sent(&address).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    let second = sent[1]["raw_data"].as_str().unwrap();
    assert!(second.contains(&format!("In-Reply-To: <{m2}>")), "{second}");
    for id in [&m1, &ours.to_string(), &m2] {
        assert!(second.contains(&format!("<{id}>")), "References must cite {id}: {second}");
    }
}

#[tokio::test]
async fn forged_sns_deliveries_are_rejected_and_store_nothing() {
    let server = MockServer::start().await;
    sns_endpoints(&server).await;
    let env = email_env(&server).await;
    let (t, id, address) = email_channel(&env, "mail-forge").await;
    let (_, _, raw) = customer_mail(&address, "");
    let good = notification(&server, &raw);

    let message = good["Message"].as_str().unwrap().replacen("Received", "Receivee", 1);
    let mut unsigned = good.clone();
    unsigned.as_object_mut().unwrap().remove("Signature");
    let cases: Vec<(&str, Req, StatusCode)> = vec![
        ("flipped byte in Message", delivery(id, &with(&good, "Message", &message)), StatusCode::FORBIDDEN),
        // Correctly signed, but by another topic: any AWS account can sign through SNS.
        (
            "another topic",
            delivery(id, &signed(with(&good, "TopicArn", "arn:aws:sns:us-east-1:210987654321:someone-elses"))),
            StatusCode::FORBIDDEN,
        ),
        ("SignatureVersion 1", delivery(id, &with(&good, "SignatureVersion", "1")), StatusCode::FORBIDDEN),
        (
            "certificate from another host",
            delivery(id, &with(&good, "SigningCertURL", "http://example.com/cert.pem")),
            StatusCode::FORBIDDEN,
        ),
        ("header names another type", sns_post(id, &good, Some("SubscriptionConfirmation")), StatusCode::FORBIDDEN),
        ("no type header", sns_post(id, &good, None), StatusCode::UNAUTHORIZED),
        ("no signature", delivery(id, &unsigned), StatusCode::UNAUTHORIZED),
    ];
    for (name, req, want) in cases {
        let r = env.send(function("email"), req).await;
        assert_eq!(r.status, want, "{name}: {}", r.body);
        let code = if want == StatusCode::FORBIDDEN { "webhook_forbidden" } else { "webhook_unauthorized" };
        assert_eq!(r.code(), code, "{name}: {}", r.body);
    }
    assert_eq!(count_for(&env, "chatapp_channel_inbound", t.company_id).await, 0);
    assert_eq!(count_for(&env, "chatapp_conversations", t.company_id).await, 0);
    assert_eq!(env.count("chatapp_outbox").await, 0);

    // The untouched original passes: each rejection above was its forgery's.
    let r = env.send(function("email"), delivery(id, &good)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["stored"], 1);
}

#[tokio::test]
async fn an_auto_reply_is_ignored_and_never_answered() {
    let server = MockServer::start().await;
    sns_endpoints(&server).await;
    let env = email_env(&server).await;
    let (t, id, address) = email_channel(&env, "mail-auto").await;
    // Answering an out-of-office would start a mail loop between two robots.
    let (_, _, raw) = customer_mail(&address, "Auto-Submitted: auto-replied\r\n");
    let r = env.send(function("email"), delivery(id, &notification(&server, &raw))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["stored"].clone(), r.body["ignored"].clone()), (json!(0), json!(1)));
    assert_eq!(count_for(&env, "chatapp_channel_inbound", t.company_id).await, 0);
    assert_eq!(count_for(&env, "chatapp_conversations", t.company_id).await, 0);
    assert_eq!(run_workers(&env).await, (0, 0));
}

#[tokio::test]
async fn mail_for_another_address_on_the_same_topic_is_not_this_channels() {
    let server = MockServer::start().await;
    sns_endpoints(&server).await;
    let env = email_env(&server).await;
    let (t, id, address) = email_channel(&env, "mail-other").await;
    // One SES rule serving several companies: this notification is for someone else's address.
    let (_, _, raw) = customer_mail(&address, "");
    let r = env
        .send(function("email"), delivery(id, &notification_to(&server, &raw, "support@another-company.test")))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["stored"].clone(), r.body["ignored"].clone()), (json!(0), json!(1)));
    assert_eq!(count_for(&env, "chatapp_channel_inbound", t.company_id).await, 0);
}

/// The notification of a mail the receipt rule stored in S3 at `key` (SES's `S3` action: the
/// content is not in the notification).
fn s3_notification(server: &MockServer, recipient: &str, key: &str) -> Value {
    let ses = json!({
        "notificationType": "Received",
        "receipt": {
            "recipients": [recipient],
            "spamVerdict": {"status": "PASS"},
            "virusVerdict": {"status": "PASS"},
            "action": {"type": "S3", "topicArn": TOPIC, "bucketName": "chatapp-files", "objectKey": key},
        },
        "mail": {"messageId": Uuid::new_v4().to_string()},
    });
    signed(json!({
        "Type": "Notification",
        "MessageId": Uuid::new_v4().to_string(),
        "TopicArn": TOPIC,
        "Subject": "Amazon SES Email Receipt Notification",
        "Message": ses.to_string(),
        "Timestamp": timestamp(),
        "SignatureVersion": "2",
        "SigningCertURL": format!("{}{CERT_PATH}", server.uri()),
    }))
}

#[tokio::test]
async fn a_mail_stored_in_s3_is_read_from_the_companys_prefix_only() {
    use chatapp::adapters::blob::ObjectKey;

    let server = MockServer::start().await;
    sns_endpoints(&server).await;
    let env = email_env(&server).await;
    let (t, id, address) = email_channel(&env, "mail-s3").await;
    let (other, _, _) = email_channel(&env, "mail-s3-other").await;
    verify_sender(&address).await;
    let (jane, _, raw) = customer_mail(&address, "");
    let put = |company: Uuid, rest: &'static str, bytes: Vec<u8>| {
        let blobs = env.deps.blobs.clone();
        async move {
            let key = ObjectKey::parse_full(&format!("{company}/{rest}")).unwrap();
            blobs.put(&key, bytes::Bytes::from(bytes), "message/rfc822").await.unwrap();
            key.full()
        }
    };
    let ours = put(t.company_id, "inbound-email/m1", raw.clone()).await;
    let theirs = put(other.company_id, "inbound-email/m1", raw.clone()).await;

    // Another company's object, or a key outside any company's prefix: refused, nothing stored.
    for key in [theirs.as_str(), "inbound-email/m1"] {
        let r = env.send(function("email"), delivery(id, &s3_notification(&server, &address, key))).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{key}: {}", r.body);
    }
    assert_eq!(count_for(&env, "chatapp_channel_inbound", t.company_id).await, 0);

    // Its own: read from the bucket, stored once, answered once.
    let msg = s3_notification(&server, &address, &ours);
    let r = env.send(function("email"), delivery(id, &msg)).await;
    assert_eq!((r.status, r.body["stored"].clone()), (StatusCode::OK, json!(1)), "{}", r.body);
    let r = env.send(function("email"), delivery(id, &msg)).await;
    assert_eq!((r.status, r.body["stored"].clone()), (StatusCode::OK, json!(0)), "a redelivery: {}", r.body);
    assert_eq!(run_workers(&env).await, (1, 1));
    let sent = ses_sent(&address).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0]["raw_data"].as_str().unwrap().contains(&format!("To: {jane}")), "{}", sent[0]);
    let content: String = env
        .owner()
        .await
        .query_one(
            "SELECT m.content FROM chatapp_messages m JOIN chatapp_conversations c ON c.id = m.conversation_id
             WHERE c.company_id = $1 AND m.role = 'user'",
            &[&t.company_id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(content.contains("Where is my order 42?"), "{content}");
}
