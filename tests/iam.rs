//! Least privilege: every function's IAM policies in template.yaml are exactly the AWS access
//! its code declares (`pub const AWS` beside its routes), which is all its adapters allow it
//! (a handler test that used anything else would fail with `NotPermitted`).

use std::collections::BTreeSet;

use chatapp::adapters::access::AwsAccess;
use serde_yaml_ng::Value;

const TEMPLATE: &str = include_str!("../template.yaml");

/// The queue each template resource is, in the code's names.
fn queue_name(resource: &str) -> &'static str {
    match resource {
        "IngestQueue" => "ingest",
        "IngestDeadLetterQueue" => "ingest-dead-letter",
        "EscalationQueue" => "escalation",
        "OutboundQueue" => "outbound",
        "ChannelTurnQueue" => "channel-turn",
        "ChannelSendQueue" => "channel-send",
        other => panic!("a policy names queue resource {other}, which the code has no name for"),
    }
}

/// `!GetAtt IngestQueue.QueueName` → `IngestQueue`.
fn get_att_resource(v: &Value) -> String {
    let text = match v {
        Value::Tagged(t) => t.value.as_str().map(str::to_string),
        other => other.as_str().map(str::to_string),
    }
    .unwrap_or_else(|| panic!("QueueName is not !GetAtt <Queue>.QueueName: {v:?}"));
    text.split('.').next().unwrap().to_string()
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Granted {
    s3: bool,
    send: BTreeSet<String>,
    poll: BTreeSet<String>,
    email: bool,
}

impl From<AwsAccess> for Granted {
    fn from(a: AwsAccess) -> Self {
        Granted {
            s3: a.s3,
            send: a.send.iter().map(|s| s.to_string()).collect(),
            poll: a.poll.iter().map(|s| s.to_string()).collect(),
            email: a.email,
        }
    }
}

fn granted(policies: Option<&Value>) -> Granted {
    let mut g = Granted::default();
    for p in policies.and_then(Value::as_sequence).into_iter().flatten() {
        let (name, props) = p.as_mapping().and_then(|m| m.iter().next()).expect("a policy template entry");
        match name.as_str().unwrap() {
            // A function that only reads (the email webhook) gets the read-only template.
            "S3CrudPolicy" | "S3ReadPolicy" => g.s3 = true,
            "SESCrudPolicy" => g.email = true,
            "SQSSendMessagePolicy" => {
                g.send.insert(queue_name(&get_att_resource(&props["QueueName"])).to_string());
            }
            "SQSPollerPolicy" => {
                g.poll.insert(queue_name(&get_att_resource(&props["QueueName"])).to_string());
            }
            other => panic!("policy {other} is not one this test knows how to compare"),
        }
    }
    g
}

#[test]
fn every_function_is_granted_exactly_the_aws_access_its_code_declares() {
    let doc: Value = serde_yaml_ng::from_str(TEMPLATE).unwrap();
    let mut checked = 0;
    for (name, res) in doc["Resources"].as_mapping().unwrap() {
        let Some(binary) = res["Metadata"]["BuildProperties"]["Binary"].as_str() else { continue };
        let declared = chatapp_functions::aws_access(binary)
            .unwrap_or_else(|| panic!("{binary} declares no AWS access (chatapp_functions::aws_access)"));
        let got = granted(res["Properties"].get("Policies"));
        assert_eq!(
            got,
            Granted::from(declared),
            "{}: template.yaml policies differ from the code's",
            name.as_str().unwrap()
        );
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} functions in template.yaml");
}
