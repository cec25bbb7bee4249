use super::triggers::evaluate_rule;
use super::*;
use serde_json::{json, Value};

fn signals(message: &str) -> TurnSignals<'_> {
    TurnSignals { message, sentiment: 0.0, confidence: None, customer_turns: 1 }
}

fn full_config() -> EscalationConfig {
    EscalationConfig::from_agent_json(&json!({
        "enabled": true,
        "keywords": ["lawyer", "chargeback", "cancel my account"],
        "sentimentThreshold": -0.5,
        "confidenceThreshold": 0.35,
        "autoEscalateAfter": 10,
        "explicitRequest": true
    }))
}

fn rule(trigger_type: &str, conditions: Value, priority: Priority) -> Rule {
    Rule {
        id: uuid::Uuid::nil(),
        name: format!("{trigger_type} rule"),
        trigger_type: trigger_type.to_string(),
        conditions,
        priority,
        is_active: true,
    }
}

#[test]
fn config_parsing_and_defaults() {
    let d = EscalationConfig::from_agent_json(&json!({}));
    assert_eq!(d, EscalationConfig::default());
    assert!(d.enabled && d.explicit_request && d.keywords.is_empty());
    assert_eq!(EscalationConfig::from_agent_json(&Value::Null), EscalationConfig::default());

    let c = full_config();
    assert_eq!(c.keywords, ["lawyer", "chargeback", "cancel my account"]);
    assert_eq!(c.sentiment_threshold, Some(-0.5));
    assert_eq!(c.confidence_threshold, Some(0.35));
    assert_eq!(c.auto_escalate_after, Some(10));

    let odd = EscalationConfig::from_agent_json(&json!({
        "enabled": false, "keywords": "refund, , lawyer", "autoEscalateAfter": "0",
        "sentiment_threshold": "-0.4", "explicitRequest": null
    }));
    assert!(!odd.enabled && odd.explicit_request);
    assert_eq!(odd.keywords, ["refund", "lawyer"]);
    assert_eq!(odd.auto_escalate_after, None);
    assert_eq!(odd.sentiment_threshold, Some(-0.4));
}

#[test]
fn priorities() {
    assert_eq!(priority_from_str(" HIGH "), Some(Priority::High));
    assert_eq!(priority_from_str("urgent"), Some(Priority::Urgent));
    assert_eq!(priority_from_str("critical"), None);
    for p in [Priority::Low, Priority::Medium, Priority::High, Priority::Urgent] {
        assert_eq!(priority_from_str(p.as_str()), Some(p));
        assert_eq!(serde_json::to_value(p).ok(), Some(json!(p.as_str())));
    }
    assert!(Priority::Low < Priority::Medium && Priority::High < Priority::Urgent);
    assert_eq!(Priority::from_level(1), Priority::Low);
    assert_eq!(Priority::from_level(4), Priority::High);
    assert_eq!(Priority::from_level(5), Priority::Urgent);
    assert_eq!(Priority::from_level(-3), Priority::Low);
    assert_eq!(serde_json::to_value(Trigger::LowConfidence).ok(), Some(json!("low_confidence")));
    assert_eq!(Trigger::TurnLimit.as_str(), "turn_limit");
}

#[test]
fn nothing_fires_on_a_calm_turn() {
    assert_eq!(detect(&full_config(), &[], &signals("Where is my order?")), None);
}

#[test]
fn precedence() {
    let cfg = full_config();
    let rules = [rule("keyword", json!({"keywords": ["invoice"]}), Priority::Urgent)];
    let mut s = TurnSignals {
        message: "My lawyer says talk to a human about this invoice",
        sentiment: -0.9,
        confidence: Some(0.1),
        customer_turns: 20,
    };
    let e = detect(&cfg, &rules, &s).map(|e| (e.trigger, e.priority));
    assert_eq!(e, Some((Trigger::ExplicitRequest, Priority::High)));

    s.message = "My lawyer says this invoice is wrong";
    let e = detect(&cfg, &rules, &s).map(|e| (e.trigger, e.priority, e.details));
    assert_eq!(e, Some((Trigger::Keyword, Priority::High, json!({"keyword": "lawyer"}))));

    s.message = "This invoice is wrong";
    let e = detect(&cfg, &rules, &s);
    assert_eq!(e.as_ref().map(|e| (e.trigger, e.priority)), Some((Trigger::Rule, Priority::Urgent)));
    assert_eq!(e.map(|e| e.details["keyword"].clone()), Some(json!("invoice")));

    s.message = "This is wrong";
    let e = detect(&cfg, &rules, &s).map(|e| (e.trigger, e.priority));
    assert_eq!(e, Some((Trigger::Sentiment, Priority::High)));
    s.sentiment = -0.6;
    let e = detect(&cfg, &rules, &s).map(|e| (e.trigger, e.priority));
    assert_eq!(e, Some((Trigger::Sentiment, Priority::Medium)));

    s.sentiment = 0.2;
    let e = detect(&cfg, &rules, &s).map(|e| (e.trigger, e.priority));
    assert_eq!(e, Some((Trigger::LowConfidence, Priority::Medium)));

    s.confidence = Some(0.8);
    let e = detect(&cfg, &rules, &s);
    assert_eq!(e.as_ref().map(|e| (e.trigger, e.priority)), Some((Trigger::TurnLimit, Priority::Low)));
    assert_eq!(e.map(|e| e.details), Some(json!({"turns": 20, "limit": 10})));
}

#[test]
fn disabled_config_keeps_table_rules() {
    let cfg = EscalationConfig { enabled: false, ..full_config() };
    let s =
        TurnSignals { message: "talk to a human, lawyer", sentiment: -1.0, confidence: Some(0.0), customer_turns: 99 };
    assert_eq!(detect(&cfg, &[], &s), None);
    let rules = [rule("sentiment", json!({"below": -0.4}), Priority::Medium)];
    assert_eq!(detect(&cfg, &rules, &s).map(|e| e.trigger), Some(Trigger::Rule));

    let no_explicit = EscalationConfig { explicit_request: false, ..full_config() };
    let e = detect(&no_explicit, &[], &signals("I want to talk to a human"));
    assert_eq!(e, None);
}

#[test]
fn keyword_word_boundaries() {
    let kws: Vec<String> = ["refund", "charge back", "c.o.d", "!!!"].iter().map(|s| s.to_string()).collect();
    assert_eq!(find_keyword("I want a REFUND!", &kws), Some("refund"));
    assert_eq!(find_keyword("refund", &kws), Some("refund"));
    assert_eq!(find_keyword("Refund: now", &kws), Some("refund"));
    assert_eq!(find_keyword("the refunds page", &kws), None);
    assert_eq!(find_keyword("it is nonrefundable", &kws), None);
    assert_eq!(find_keyword("I will do a Charge-Back", &kws), Some("charge back"));
    assert_eq!(find_keyword("a charge\n back", &kws), Some("charge back"));
    assert_eq!(find_keyword("a chargeback", &kws), None);
    assert_eq!(find_keyword("pay C.O.D. please", &kws), Some("c.o.d"));
    assert_eq!(find_keyword("why!!!", &kws), Some("!!!"));
    assert_eq!(find_keyword("anything", &[]), None);
    let unicode = ["réclamation".to_string()];
    assert_eq!(find_keyword("Une RÉCLAMATION urgente", &unicode), Some("réclamation"));
    let apostrophe = ["don't care".to_string()];
    assert_eq!(find_keyword("you dont care", &apostrophe), Some("don't care"));
}

#[test]
fn explicit_request_positive() {
    for m in [
        "talk to a human",
        "Can I TALK TO A HUMAN please?",
        "I want to speak with a real person.",
        "let me talk to someone",
        "talk-to-a-human!!",
        "Please connect me with one of your agents",
        "transfer me to a representative",
        "I'd like to speak to the manager",
        "put me through to customer service",
        "I want a human",
        "i need a real agent now",
        "Can I get a human?",
        "is there a human I can talk to",
        "Is there someone I can talk to?",
        "human please",
        "Human pls!!",
        "Operator",
        "operator!!!",
        "Agent?",
        "live agent",
        "I'd prefer a live agent",
        "customer service representative",
        "customer service please",
        "real person now",
        "Please escalate this",
        "this bot is useless, get me a real person",
        "speak to your supervisor",
        "Is there anyone I can talk to",
        "Why won't you let me talk to a human?",
        "Can't I just talk to a human?",
        "I can't reach a person",
    ] {
        assert!(detect_explicit_request(m).is_some(), "should fire: {m}");
    }
    assert_eq!(
        detect_explicit_request("I'd like to speak with a real person").as_deref(),
        Some("speak with a real person")
    );
    assert_eq!(detect_explicit_request("Is there someone I can talk to?").as_deref(), Some("someone i can talk to"));
}

#[test]
fn explicit_request_negative() {
    for m in [
        "",
        "That's not very humane",
        "the agent said I would get a refund",
        "Your representative told me to wait",
        "I spoke to someone yesterday",
        "Am I talking to a human?",
        "Are you a real person?",
        "are you a human",
        "I don't want to talk to a human",
        "no need to speak to an agent",
        "I do not want a live agent",
        "Please don't escalate this",
        "talk to you later",
        "I'll talk to my wife",
        "I need help with my order",
        "Can someone help me with a refund?",
        "the human resources department",
        "I need a travel agent",
        "Which agency handles this?",
        "I need the agent to reset my password",
        "agent please help me reset my password",
        "support",
    ] {
        assert_eq!(detect_explicit_request(m), None, "should not fire: {m}");
    }
}

#[test]
fn rule_conditions() {
    let s =
        TurnSignals { message: "I am going to sue you", sentiment: -0.45, confidence: Some(0.25), customer_turns: 8 };
    let fires = |r: Rule| evaluate_rule(&r, &s).is_some();

    assert!(fires(rule("keyword", json!({"keywords": ["sue"]}), Priority::High)));
    assert!(fires(rule("keywords", json!({"keywords": "court, sue"}), Priority::High)));
    assert!(!fires(rule("keyword", json!({"keywords": ["suede"]}), Priority::High)));
    assert!(!fires(rule("keyword", json!({}), Priority::High)));
    assert!(fires(rule("sentiment", json!({"below": -0.4}), Priority::High)));
    assert!(!fires(rule("sentiment", json!({"below": -0.5}), Priority::High)));
    assert!(fires(rule("confidence", json!({"below": 0.3}), Priority::High)));
    assert!(!fires(rule("confidence", json!({"below": 0.2}), Priority::High)));
    assert!(fires(rule("turns", json!({"after": 8}), Priority::High)));
    assert!(!fires(rule("turns", json!({"after": 9}), Priority::High)));
    assert!(!fires(rule("turns", json!({"after": 0}), Priority::High)));
    assert!(!fires(rule("explicit_request", json!({}), Priority::High)));
    assert!(!fires(rule("mystery", json!({"below": 1.0}), Priority::High)));
    // Narrowing conditions must hold as well.
    assert!(fires(rule("keyword", json!({"keywords": ["sue"], "sentimentBelow": -0.4}), Priority::High)));
    assert!(!fires(rule("keyword", json!({"keywords": ["sue"], "sentimentBelow": -0.5}), Priority::High)));
    assert!(!fires(rule("keyword", json!({"keywords": ["sue"], "minTurns": 9}), Priority::High)));

    let no_retrieval = TurnSignals { confidence: None, ..s };
    assert!(evaluate_rule(&rule("confidence", json!({"below": 0.9}), Priority::High), &no_retrieval).is_none());
}

#[test]
fn inactive_and_highest_priority_rule_wins() {
    let s = TurnSignals { message: "urgent refund", sentiment: -0.6, confidence: None, customer_turns: 1 };
    let mut inactive = rule("keyword", json!({"keywords": ["urgent"]}), Priority::Urgent);
    inactive.is_active = false;
    let low = rule("sentiment", json!({"below": -0.5}), Priority::Low);
    let high = Rule { name: "Refunds".into(), ..rule("keyword", json!({"keywords": ["refund"]}), Priority::High) };
    let e = detect(&EscalationConfig::default(), &[inactive, low, high], &s);
    assert_eq!(e.as_ref().map(|e| e.priority), Some(Priority::High));
    assert_eq!(e.as_ref().map(|e| e.reason.as_str()), Some("Escalation rule \"Refunds\" matched"));
    assert_eq!(e.map(|e| e.details["rule_name"].clone()), Some(json!("Refunds")));
}

#[test]
fn rule_from_table_row() {
    let id = uuid::Uuid::nil();
    let r = Rule::from_table_row(
        id,
        "Refunds",
        &["refund".to_string(), "chargeback".to_string()],
        &json!({"sentimentBelow": -0.5}),
        4,
        true,
    );
    assert_eq!(r.trigger_type, "keyword");
    assert_eq!(r.priority, Priority::High);
    assert_eq!(r.conditions["keywords"], json!(["refund", "chargeback"]));
    let angry = TurnSignals { message: "refund now", sentiment: -0.8, confidence: None, customer_turns: 1 };
    let calm = TurnSignals { sentiment: 0.1, ..angry };
    assert!(evaluate_rule(&r, &angry).is_some());
    assert!(evaluate_rule(&r, &calm).is_none());

    let sentiment = Rule::from_table_row(id, "Angry", &[], &json!({"sentimentBelow": -0.5}), 3, true);
    assert_eq!(sentiment.trigger_type, "sentiment");
    assert!(evaluate_rule(&sentiment, &angry).is_some());
    let typed = Rule::from_table_row(id, "Long", &[], &json!({"triggerType": "turns", "after": 5}), 1, true);
    assert_eq!((typed.trigger_type.as_str(), typed.priority), ("turns", Priority::Low));
    let empty = Rule::from_table_row(id, "Empty", &[], &json!({}), 2, true);
    assert!(evaluate_rule(&empty, &angry).is_none());
}

#[test]
fn turn_limit() {
    let cfg = EscalationConfig { auto_escalate_after: Some(3), ..EscalationConfig::default() };
    let at = |customer_turns| detect(&cfg, &[], &TurnSignals { customer_turns, ..signals("hello") });
    assert_eq!(at(2), None);
    assert_eq!(at(3).map(|e| e.trigger), Some(Trigger::TurnLimit));
    assert_eq!(at(4).map(|e| e.trigger), Some(Trigger::TurnLimit));
}

#[test]
fn confidence_none_does_not_fire() {
    let cfg = EscalationConfig { confidence_threshold: Some(0.35), ..EscalationConfig::default() };
    assert_eq!(detect(&cfg, &[], &signals("hello")), None);
    let low = TurnSignals { confidence: Some(0.2), ..signals("hello") };
    let e = detect(&cfg, &[], &low);
    assert_eq!(e.as_ref().map(|e| e.trigger), Some(Trigger::LowConfidence));
    assert_eq!(e.map(|e| e.details["threshold"].as_f64().map(|t| (t - 0.35).abs() < 1e-6)), Some(Some(true)));
}

#[test]
fn sentiment_threshold_is_strict_and_nan_safe() {
    let cfg = EscalationConfig { sentiment_threshold: Some(-0.5), ..EscalationConfig::default() };
    let at = |sentiment| detect(&cfg, &[], &TurnSignals { sentiment, ..signals("hello") }).map(|e| e.trigger);
    assert_eq!(at(-0.5), None);
    assert_eq!(at(f32::NAN), None);
    assert_eq!(at(-0.51), Some(Trigger::Sentiment));
}

#[test]
fn reason_is_bounded() {
    let long = "x".repeat(400);
    let cfg = EscalationConfig { keywords: vec![long.clone()], ..EscalationConfig::default() };
    let e = detect(&cfg, &[], &signals(&long));
    assert_eq!(e.map(|e| e.reason.chars().count()), Some(MAX_REASON_CHARS));
}
