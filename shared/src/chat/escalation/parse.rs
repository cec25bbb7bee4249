//! Reading the agent's `escalation_rules` JSON ([`EscalationConfig::from_agent_json`]) and the
//! escalation rule rows ([`Rule::from_table_row`]): lenient, so a missing or malformed value
//! takes its default instead of failing the turn.

use serde_json::{json, Map, Value};

use super::{EscalationConfig, Priority, Rule};

impl EscalationConfig {
    /// Read the agent JSON, e.g. `{"enabled": true, "keywords": ["lawyer"], "sentimentThreshold":
    /// -0.5, "confidenceThreshold": 0.35, "autoEscalateAfter": 10, "explicitRequest": true}`.
    ///
    /// Every key is optional (snake_case spellings are accepted too); missing, null or
    /// malformed values take the defaults (enabled, explicit requests on, nothing else).
    /// Numbers may be given as strings; keywords as an array or a comma-separated string;
    /// `autoEscalateAfter: 0` means no turn limit.
    pub fn from_agent_json(v: &Value) -> Self {
        let d = EscalationConfig::default();
        EscalationConfig {
            enabled: bool_at(v, &["enabled"]).unwrap_or(d.enabled),
            keywords: field(v, &["keywords"]).map(string_list).unwrap_or_default(),
            sentiment_threshold: f32_at(v, &["sentimentThreshold", "sentiment_threshold"]),
            confidence_threshold: f32_at(v, &["confidenceThreshold", "confidence_threshold"]),
            auto_escalate_after: u32_at(v, &["autoEscalateAfter", "auto_escalate_after"]).filter(|&n| n > 0),
            explicit_request: bool_at(v, &["explicitRequest", "explicit_request"]).unwrap_or(d.explicit_request),
        }
    }
}

impl Rule {
    /// Build a rule from a `chatapp_escalation_rules` row (`trigger_keywords text[]`,
    /// `trigger_conditions jsonb`, `priority int 1..=5`).
    ///
    /// The trigger type is `trigger_conditions.triggerType` (or `trigger_type`/`type`) when
    /// present, else inferred: `keyword` when there are keywords, else `sentiment`,
    /// `confidence` or `turns` by which of `sentimentBelow`, `confidenceBelow`, `afterTurns`
    /// is present, else `explicit_request` when `explicitRequest` is true, else none (never
    /// fires). The row's keywords are merged into `conditions.keywords`, so a rule with
    /// keywords and `sentimentBelow` fires on a keyword in a message below that sentiment.
    pub fn from_table_row(
        id: uuid::Uuid,
        name: &str,
        trigger_keywords: &[String],
        trigger_conditions: &Value,
        priority_level: i32,
        is_active: bool,
    ) -> Self {
        let mut conditions = match trigger_conditions {
            Value::Object(map) => map.clone(),
            _ => Map::new(),
        };
        let mut keywords: Vec<String> = trigger_keywords.iter().map(|k| k.trim().to_string()).collect();
        if let Some(existing) = conditions.get("keywords") {
            keywords.extend(string_list(existing));
        }
        keywords.retain(|k| !k.is_empty());
        let conditions_value = Value::Object(conditions.clone());
        let explicit_type = ["triggerType", "trigger_type", "type"]
            .iter()
            .find_map(|k| conditions.get(*k).and_then(Value::as_str))
            .map(|s| s.trim().to_ascii_lowercase());
        let trigger_type = explicit_type.unwrap_or_else(|| {
            let has = |keys: &[&str]| field(&conditions_value, keys).is_some();
            let inferred = if !keywords.is_empty() {
                "keyword"
            } else if has(&["sentimentBelow", "sentiment_below"]) {
                "sentiment"
            } else if has(&["confidenceBelow", "confidence_below"]) {
                "confidence"
            } else if has(&["afterTurns", "after_turns"]) {
                "turns"
            } else if bool_at(&conditions_value, &["explicitRequest", "explicit_request"]) == Some(true) {
                "explicit_request"
            } else {
                ""
            };
            inferred.to_string()
        });
        if !keywords.is_empty() {
            conditions.insert("keywords".into(), json!(keywords));
        }
        Rule {
            id,
            name: name.to_string(),
            trigger_type,
            conditions: Value::Object(conditions),
            priority: Priority::from_level(priority_level),
            is_active,
        }
    }
}

// --- JSON helpers ---------------------------------------------------------------------------

/// The first of `keys` present (and not null) in the object `v`.
pub(super) fn field<'v>(v: &'v Value, keys: &[&str]) -> Option<&'v Value> {
    keys.iter().find_map(|k| v.get(*k).filter(|x| !x.is_null()))
}

pub(super) fn f32_at(v: &Value, keys: &[&str]) -> Option<f32> {
    let x = field(v, keys)?;
    let n = match x {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    Some(n as f32).filter(|f| f.is_finite())
}

pub(super) fn u32_at(v: &Value, keys: &[&str]) -> Option<u32> {
    let x = field(v, keys)?;
    let n = match x {
        Value::Number(n) => {
            n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0 && f.fract() == 0.0).map(|f| f as u64))?
        }
        Value::String(s) => s.trim().parse::<u64>().ok()?,
        _ => return None,
    };
    u32::try_from(n).ok()
}

fn bool_at(v: &Value, keys: &[&str]) -> Option<bool> {
    match field(v, keys)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Some(true),
            "false" | "no" | "off" | "0" => Some(false),
            _ => None,
        },
        Value::Number(n) => n.as_f64().map(|f| f != 0.0),
        _ => None,
    }
}

/// Strings of an array (non-strings skipped), or the comma-separated parts of a string;
/// trimmed, empty ones dropped.
pub(super) fn string_list(v: &Value) -> Vec<String> {
    let parts: Vec<String> = match v {
        Value::Array(items) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        Value::String(s) => s.split(',').map(str::to_string).collect(),
        _ => Vec::new(),
    };
    parts.into_iter().map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect()
}
