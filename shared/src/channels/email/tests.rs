//! Unit tests of `channels::email`.

use super::*;

const OURS: &str = "support@acme.test";
const ARN: &str = "arn:aws:sns:us-east-1:123456789012:inbound";

fn crlf(s: &str) -> Vec<u8> {
    s.replace('\n', "\r\n").into_bytes()
}

const REPLY: &str = "From: \"Jane Doe\" <Jane.Doe@Example.com>
To: support@acme.test
Subject: Re: Order 42
Date: Tue, 1 Jul 2025 10:00:00 +0000
Message-ID: <reply-2@example.com>
In-Reply-To: <reply-1@acme.test>
References: <root-1@example.com> <reply-1@acme.test>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Thanks, that worked!

On Mon, 30 Jun 2025 at 09:00, Support <support@acme.test> wrote:
> Try turning it off and on again.
";

#[test]
fn parses_a_reply() {
    let m = parse_mime(&crlf(REPLY), OURS).unwrap().unwrap();
    assert_eq!(m.provider_message_id, "reply-2@example.com");
    assert_eq!(m.thread, "root-1@example.com");
    assert_eq!(m.sender.id, "jane.doe@example.com");
    assert_eq!(m.sender.email.as_deref(), Some("jane.doe@example.com"));
    assert_eq!(m.sender.name.as_deref(), Some("Jane Doe"));
    assert_eq!(m.text, "Thanks, that worked!");
    assert_eq!(m.sent_at, Some(1_751_364_000));
    assert_eq!(m.reply_context["message_id"], "reply-2@example.com");
    assert_eq!(m.reply_context["references"], json!(["root-1@example.com", "reply-1@acme.test"]));
    assert_eq!(m.reply_context["subject"], "Re: Order 42");
    assert_eq!(m.reply_context["to"], OURS);
}

#[test]
fn first_mail_is_its_own_thread_and_ids_default_to_a_hash() {
    let raw = crlf("From: a@b.test\nSubject: hi\n\nhello\n\n> quoted\n> more\n");
    let m = parse_mime(&raw, OURS).unwrap().unwrap();
    assert_eq!(m.provider_message_id.len(), 64);
    assert_eq!(m.thread, m.provider_message_id);
    assert_eq!(m.text, "hello");
    assert_eq!(m.reply_context["references"], json!([]));
}

#[test]
fn automatic_mail_is_ignored() {
    for extra in ["Auto-Submitted: auto-replied\n", "Precedence: bulk\n", "X-Autoreply: yes\n"] {
        let raw = crlf(&format!("From: a@b.test\n{extra}Subject: Out of office\n\nAway.\n"));
        assert_eq!(parse_mime(&raw, OURS).unwrap(), None, "{extra}");
    }
    let ours = crlf("From: Support <SUPPORT@acme.test>\nSubject: x\n\nloop\n");
    assert_eq!(parse_mime(&ours, OURS).unwrap(), None);
    let daemon = crlf("From: MAILER-DAEMON@mx.test\nSubject: failure\n\nbounced\n");
    assert_eq!(parse_mime(&daemon, OURS).unwrap(), None);
    let human = crlf("From: a@b.test\nAuto-Submitted: no\nSubject: x\n\nhi\n");
    assert!(parse_mime(&human, OURS).unwrap().is_some());
}

#[test]
fn strips_quotes() {
    assert_eq!(strip_quoted("Yes\n\n-----Original Message-----\nFrom: x"), "Yes");
    assert_eq!(strip_quoted("Yes\nOn Mon, 1 Jan 2024 at 10:00, Support <\ns@x.test> wrote:\n> a"), "Yes");
    assert_eq!(strip_quoted("> only a quote"), "> only a quote");
    assert_eq!(strip_quoted("a\n> inline\nb"), "a\n> inline\nb");
    let html = "<p>Hi&nbsp;there</p><style>p{}</style><div>Bye &amp; thanks</div>";
    assert_eq!(html_to_text(html), "Hi there\n\nBye & thanks");
}

#[test]
fn strings_to_sign() {
    let mut n = json!({"Type": "Notification", "MessageId": "m1", "TopicArn": ARN, "Message": "hello",
                       "Timestamp": "2025-07-01T10:00:00.000Z", "SignatureVersion": "2"});
    let expected = format!(
        "Message\nhello\nMessageId\nm1\nTimestamp\n2025-07-01T10:00:00.000Z\nTopicArn\n{ARN}\nType\nNotification\n"
    );
    assert_eq!(string_to_sign(&n).unwrap(), expected);
    n["Subject"] = json!("Amazon SES Email Receipt Notification");
    let with_subject = string_to_sign(&n).unwrap();
    assert!(with_subject.contains("MessageId\nm1\nSubject\nAmazon SES Email Receipt Notification\nTimestamp\n"));
    let c = json!({"Type": "SubscriptionConfirmation", "MessageId": "m2", "Token": "tok", "TopicArn": ARN,
                   "Message": "confirm", "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=x",
                   "Timestamp": "2025-07-01T10:00:00.000Z"});
    let mut expected = String::from("Message\nconfirm\nMessageId\nm2\n");
    expected.push_str("SubscribeURL\nhttps://sns.us-east-1.amazonaws.com/?Action=x\n");
    expected.push_str("Timestamp\n2025-07-01T10:00:00.000Z\nToken\ntok\n");
    expected.push_str(&format!("TopicArn\n{ARN}\nType\nSubscriptionConfirmation\n"));
    assert_eq!(string_to_sign(&c).unwrap(), expected);
    assert_eq!(string_to_sign(&json!({"Type": "Notification"})), None);
    assert_eq!(string_to_sign(&json!({"Type": "Other"})), None);
}

#[test]
fn envelope_checks() {
    let creds = Credentials { address: OURS.into(), topic_arn: ARN.into() };
    assert_eq!(creds.validate(), Ok(()));
    let now = chrono::DateTime::parse_from_rfc3339("2025-07-01T10:10:00Z").unwrap().timestamp();
    let mut m = json!({"Type": "Notification", "MessageId": "m1", "TopicArn": ARN, "Message": "{}",
        "Timestamp": "2025-07-01T10:00:00.000Z", "SignatureVersion": "2", "Signature": "AAAA",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem"});
    let check = |m: &Value, h: Option<&str>| check_envelope(m, h, &creds, ".amazonaws.com", now);
    assert_eq!(check(&m, Some("Notification")), Ok(()));
    assert!(matches!(check(&m, None), Err(Rejection::Unauthorized(_))));
    assert!(check(&m, Some("SubscriptionConfirmation")).is_err());
    assert!(check_envelope(&m, Some("Notification"), &creds, ".amazonaws.com", now + 3600).is_err());
    m["SignatureVersion"] = json!("1");
    assert_eq!(check(&m, Some("Notification")), Err(Rejection::Forbidden("set SignatureVersion 2 on the topic")));
    m["SignatureVersion"] = json!("2");
    m["TopicArn"] = json!("arn:aws:sns:us-east-1:123456789012:other");
    assert_eq!(check(&m, Some("Notification")), Err(Rejection::Forbidden("unexpected TopicArn")));
}

#[test]
fn certificate_urls() {
    let ok = |u: &str, s: &str| check_cert_url(u, s).is_ok();
    assert!(ok("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem", ".amazonaws.com"));
    assert!(ok("https://sns.us-gov-west-1.amazonaws.com/a.pem", ".amazonaws.com"));
    assert!(!ok("https://sns.s3.amazonaws.com/a.pem", ".amazonaws.com"));
    assert!(!ok("https://evil.s3.amazonaws.com/a.pem", ".amazonaws.com"));
    assert!(!ok("https://s3.amazonaws.com/sns/a.pem", ".amazonaws.com"));
    assert!(!ok("http://sns.us-east-1.amazonaws.com/a.pem", ".amazonaws.com"));
    assert!(!ok("https://sns.us-east-1.amazonaws.com.evil.test/a.pem", ".amazonaws.com"));
    assert!(!ok("https://sns.us-east-1.amazonaws.com/a.txt", ".amazonaws.com"));
    assert!(ok("http://127.0.0.1:9000/cert.pem", "127.0.0.1"));
    assert!(!ok("http://127.0.0.1:9000/cert.pem", ".amazonaws.com"));
}

#[test]
fn mail_sources() {
    let inline = json!({"notificationType": "Received",
        "receipt": {"spamVerdict": {"status": "PASS"}, "action": {"type": "SNS", "encoding": "BASE64"}},
        "content": "RnJvbTogYUBiLnRlc3QNClN1YmplY3Q6IGhp\nDQoNCmhlbGxvDQo="});
    assert_eq!(mail_source(&inline).unwrap(), MailSource::Inline(crlf("From: a@b.test\nSubject: hi\n\nhello\n")));
    let s3 = json!({"notificationType": "Received",
        "receipt": {"action": {"type": "S3", "bucketName": "mail", "objectKey": "in/abc"}}});
    assert_eq!(mail_source(&s3).unwrap(), MailSource::S3 { bucket: "mail".into(), key: "in/abc".into() });
    let spam = json!({"notificationType": "Received", "receipt": {"spamVerdict": {"status": "FAIL"}}});
    assert_eq!(mail_source(&spam).unwrap(), MailSource::Skip("spam"));
    let setup = json!({"notificationType": "AmazonSnsSubscriptionSucceeded"});
    assert!(matches!(mail_source(&setup).unwrap(), MailSource::Skip(_)));
    assert!(mail_source(&json!({"receipt": {"action": {"type": "Lambda"}}})).is_err());
}

#[test]
fn builds_a_threaded_reply() {
    let inbound = parse_mime(&crlf(REPLY), OURS).unwrap().unwrap();
    let (id, raw) = build_reply(OURS, "jane.doe@example.com", &inbound.reply_context, "Glad to hear it.\nBye");
    assert!(id.ends_with("@acme.test"));
    let text = String::from_utf8(raw.clone()).unwrap();
    assert!(text.contains("\r\nSubject: Re: Order 42\r\n"), "{text}");
    assert!(!text.contains("Re: Re:"));
    assert!(text.contains("In-Reply-To: <reply-2@example.com>\r\n"));
    assert!(text.contains(&format!("Message-ID: <{id}>\r\n")));
    assert!(text.ends_with("\r\n\r\nGlad to hear it.\r\nBye\r\n"));
    let parsed = MessageParser::default().parse(&raw).unwrap();
    let refs: Vec<String> =
        parsed.references().as_text_list().unwrap_or_default().iter().map(|r| r.to_string()).collect();
    assert_eq!(refs, ["root-1@example.com", "reply-1@acme.test", "reply-2@example.com"]);
    assert_eq!(parsed.message_id(), Some(id.as_str()));

    let context = json!({"message_id": "x@y.test", "references": [], "subject": "Bestellung über\r\nBcc: a@b",
                         "to": OURS});
    let (_, raw) = build_reply(OURS, "c@d.test", &context, "Hallo");
    let parsed = MessageParser::default().parse(&raw).unwrap();
    assert_eq!(parsed.subject(), Some("Re: Bestellung über  Bcc: a@b"));
    assert!(parsed.header_raw("Bcc").is_none());
}
