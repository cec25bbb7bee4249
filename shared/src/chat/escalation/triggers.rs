//! The triggers [`detect`](super::detect) tries, in its order, and the evaluation of one rule
//! row against the turn.

use serde_json::{json, Map, Value};

use super::matching::{detect_explicit_request, find_keyword};
use super::parse::{f32_at, field, string_list, u32_at};
use super::{Escalation, EscalationConfig, Priority, Rule, Trigger, TurnSignals, MAX_REASON_CHARS};

fn escalation(trigger: Trigger, details: Value, priority: Priority, reason: String) -> Escalation {
    let reason = match reason.char_indices().nth(MAX_REASON_CHARS) {
        Some((cut, _)) => reason[..cut].to_string(),
        None => reason,
    };
    Escalation { trigger, details, priority, reason }
}

pub(super) fn explicit_trigger(cfg: &EscalationConfig, s: &TurnSignals) -> Option<Escalation> {
    if !cfg.enabled || !cfg.explicit_request {
        return None;
    }
    let phrase = detect_explicit_request(s.message)?;
    Some(escalation(
        Trigger::ExplicitRequest,
        json!({ "phrase": phrase }),
        Priority::High,
        "Customer asked to speak to a human".to_string(),
    ))
}

pub(super) fn keyword_trigger(cfg: &EscalationConfig, s: &TurnSignals) -> Option<Escalation> {
    if !cfg.enabled {
        return None;
    }
    let keyword = find_keyword(s.message, &cfg.keywords)?;
    Some(escalation(
        Trigger::Keyword,
        json!({ "keyword": keyword }),
        Priority::High,
        format!("Message contains the escalation keyword \"{keyword}\""),
    ))
}

pub(super) fn rule_trigger(rules: &[Rule], s: &TurnSignals) -> Option<Escalation> {
    let mut best: Option<(&Rule, Value)> = None;
    for rule in rules.iter().filter(|r| r.is_active) {
        if best.as_ref().is_some_and(|(b, _)| b.priority >= rule.priority) {
            continue;
        }
        if let Some(evidence) = evaluate_rule(rule, s) {
            best = Some((rule, evidence));
        }
    }
    let (rule, evidence) = best?;
    let mut details = Map::new();
    details.insert("rule_id".into(), json!(rule.id.to_string()));
    details.insert("rule_name".into(), json!(rule.name));
    details.insert("rule_type".into(), json!(rule.trigger_type));
    if let Value::Object(fields) = evidence {
        details.extend(fields);
    }
    Some(escalation(
        Trigger::Rule,
        Value::Object(details),
        rule.priority,
        format!("Escalation rule \"{}\" matched", rule.name),
    ))
}

pub(super) fn sentiment_trigger(cfg: &EscalationConfig, s: &TurnSignals) -> Option<Escalation> {
    if !cfg.enabled {
        return None;
    }
    let threshold = cfg.sentiment_threshold?;
    if !below(s.sentiment, threshold) {
        return None;
    }
    let priority = if s.sentiment < -0.7 { Priority::High } else { Priority::Medium };
    Some(escalation(
        Trigger::Sentiment,
        json!({ "sentiment": s.sentiment, "threshold": threshold }),
        priority,
        format!("Customer sentiment {:.2} is below the threshold {:.2}", s.sentiment, threshold),
    ))
}

pub(super) fn confidence_trigger(cfg: &EscalationConfig, s: &TurnSignals) -> Option<Escalation> {
    if !cfg.enabled {
        return None;
    }
    let threshold = cfg.confidence_threshold?;
    let confidence = s.confidence.filter(|&c| below(c, threshold))?;
    Some(escalation(
        Trigger::LowConfidence,
        json!({ "confidence": confidence, "threshold": threshold }),
        Priority::Medium,
        format!("Answer confidence {confidence:.2} is below the threshold {threshold:.2}"),
    ))
}

pub(super) fn turn_trigger(cfg: &EscalationConfig, s: &TurnSignals) -> Option<Escalation> {
    if !cfg.enabled {
        return None;
    }
    let limit = cfg.auto_escalate_after.filter(|&n| n > 0 && s.customer_turns >= n)?;
    Some(escalation(
        Trigger::TurnLimit,
        json!({ "turns": s.customer_turns, "limit": limit }),
        Priority::Low,
        format!("Conversation reached {} customer turns (limit {limit})", s.customer_turns),
    ))
}

/// `value < threshold`, false for NaN or infinite inputs.
fn below(value: f32, threshold: f32) -> bool {
    value.is_finite() && threshold.is_finite() && value < threshold
}

/// A retrieval ran and its best score is below `threshold`.
fn confidence_below(confidence: Option<f32>, threshold: f32) -> bool {
    confidence.is_some_and(|c| below(c, threshold))
}

/// Evidence (a JSON object) when `rule`'s condition holds for this turn.
pub(super) fn evaluate_rule(rule: &Rule, s: &TurnSignals) -> Option<Value> {
    let c = &rule.conditions;
    let evidence = match rule.trigger_type.trim().to_ascii_lowercase().as_str() {
        "keyword" | "keywords" => {
            let keywords = field(c, &["keywords"]).map(string_list).unwrap_or_default();
            let keyword = find_keyword(s.message, &keywords)?;
            json!({ "keyword": keyword })
        }
        "sentiment" => {
            let threshold = f32_at(c, &["below", "sentimentBelow", "sentiment_below", "threshold"])?;
            if !below(s.sentiment, threshold) {
                return None;
            }
            json!({ "sentiment": s.sentiment, "threshold": threshold })
        }
        "confidence" | "low_confidence" => {
            let threshold = f32_at(c, &["below", "confidenceBelow", "confidence_below", "threshold"])?;
            let confidence = s.confidence.filter(|&x| below(x, threshold))?;
            json!({ "confidence": confidence, "threshold": threshold })
        }
        "turns" | "turn_limit" => {
            let after = u32_at(c, &["after", "afterTurns", "after_turns", "turns"]).filter(|&n| n > 0)?;
            if s.customer_turns < after {
                return None;
            }
            json!({ "turns": s.customer_turns, "limit": after })
        }
        "explicit_request" | "explicit" => {
            let phrase = detect_explicit_request(s.message)?;
            json!({ "phrase": phrase })
        }
        _ => return None,
    };
    // Narrowing conditions, whatever the rule type.
    if f32_at(c, &["sentimentBelow", "sentiment_below"]).is_some_and(|t| !below(s.sentiment, t)) {
        return None;
    }
    if f32_at(c, &["confidenceBelow", "confidence_below"]).is_some_and(|t| !confidence_below(s.confidence, t)) {
        return None;
    }
    if u32_at(c, &["minTurns", "min_turns"]).is_some_and(|n| s.customer_turns < n) {
        return None;
    }
    Some(evidence)
}
