//! Escalation detection: decides, on every customer turn, whether the conversation should go
//! to a human, from the agent's `escalation_rules` JSON ([`EscalationConfig`]) and the
//! company's escalation rule rows ([`Rule`]).
//!
//! [`detect`] returns the first trigger that fires, in this order of precedence:
//!
//! | trigger | fires when | priority |
//! |---|---|---|
//! | [`Trigger::ExplicitRequest`] | the customer asks for a human ([`detect_explicit_request`]) | High |
//! | [`Trigger::Keyword`] | the message holds a configured keyword ([`find_keyword`]) | High |
//! | [`Trigger::Rule`] | an active rule's condition holds (highest rule priority wins) | the rule's |
//! | [`Trigger::Sentiment`] | sentiment `<` `sentimentThreshold` | High below -0.7, else Medium |
//! | [`Trigger::LowConfidence`] | best retrieval score `<` `confidenceThreshold` | Medium |
//! | [`Trigger::TurnLimit`] | customer turns `>=` `autoEscalateAfter` | Low |
//!
//! `"enabled": false` in the agent JSON switches off the agent's own triggers (every row
//! except [`Trigger::Rule`]); rules have their own `is_active` switch. Detection is
//! stateless: a condition that keeps holding (a turn limit, a low average) fires on every
//! turn, so callers skip detection for conversations already escalated.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// The longest `reason` kept (the `chatapp_escalations.reason` column is `varchar(255)`).
const MAX_REASON_CHARS: usize = 255;

/// What made a conversation escalate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Keyword,
    ExplicitRequest,
    Sentiment,
    LowConfidence,
    TurnLimit,
    Rule,
}

impl Trigger {
    /// The serialised name, as stored in `chatapp_escalations.trigger_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Keyword => "keyword",
            Trigger::ExplicitRequest => "explicit_request",
            Trigger::Sentiment => "sentiment",
            Trigger::LowConfidence => "low_confidence",
            Trigger::TurnLimit => "turn_limit",
            Trigger::Rule => "rule",
        }
    }
}

/// Priority of an escalation (the `escalation_priority` enum), ordered `Low < ... < Urgent`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    Medium,
    High,
    Urgent,
}

impl Priority {
    /// The database / JSON name: `low`, `medium`, `high` or `urgent`.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }

    /// Priority of a `chatapp_escalation_rules.priority` level (1..=5): 1 Low, 2 Medium,
    /// 3–4 High, 5 Urgent; out-of-range levels are clamped.
    pub fn from_level(level: i32) -> Self {
        match level {
            i32::MIN..=1 => Priority::Low,
            2 => Priority::Medium,
            3 | 4 => Priority::High,
            _ => Priority::Urgent,
        }
    }
}

/// Parse a priority name, ignoring case and surrounding white space.
pub fn priority_from_str(s: &str) -> Option<Priority> {
    match s.trim().to_ascii_lowercase().as_str() {
        "low" => Some(Priority::Low),
        "medium" => Some(Priority::Medium),
        "high" => Some(Priority::High),
        "urgent" => Some(Priority::Urgent),
        _ => None,
    }
}

/// A decision to escalate: what fired, the evidence, how urgent, and a sentence for people.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Escalation {
    pub trigger: Trigger,
    /// What fired, e.g. `{"keyword": "lawyer"}` or `{"sentiment": -0.8, "threshold": -0.5}`.
    pub details: Value,
    pub priority: Priority,
    /// A short sentence, at most 255 characters.
    pub reason: String,
}

/// The agent's `escalation_rules` JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct EscalationConfig {
    /// Switches the agent's own triggers (not the rule rows); default true.
    pub enabled: bool,
    /// Matched case-insensitively on word boundaries; may be several words.
    pub keywords: Vec<String>,
    /// Escalate when the turn's sentiment is below this (in [-1, 1]).
    pub sentiment_threshold: Option<f32>,
    /// Escalate when the best retrieval score is below this.
    pub confidence_threshold: Option<f32>,
    /// Escalate on this many customer turns (and every later one).
    pub auto_escalate_after: Option<u32>,
    /// Escalate when the customer asks for a human; default true.
    pub explicit_request: bool,
}

impl Default for EscalationConfig {
    fn default() -> Self {
        EscalationConfig {
            enabled: true,
            keywords: Vec::new(),
            sentiment_threshold: None,
            confidence_threshold: None,
            auto_escalate_after: None,
            explicit_request: true,
        }
    }
}

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

/// One row of the escalation rules table.
///
/// `trigger_type` and `conditions`:
///
/// | `trigger_type` | `conditions` | fires when |
/// |---|---|---|
/// | `keyword` | `{"keywords": ["refund", "charge back"]}` | a keyword is in the message |
/// | `sentiment` | `{"below": -0.4}` | sentiment `<` below |
/// | `confidence` | `{"below": 0.3}` | a retrieval ran and its best score `<` below |
/// | `turns` | `{"after": 8}` | customer turns `>=` after |
/// | `explicit_request` | `{}` | the customer asks for a human |
///
/// Aliases: `keywords`/`low_confidence`/`turn_limit` for the types; `sentimentBelow`,
/// `confidenceBelow`, `threshold`, `afterTurns`, `turns` for the condition keys. Any rule may
/// further narrow itself with `sentimentBelow`, `confidenceBelow` or `minTurns`, which must
/// then hold as well. An unknown `trigger_type` never fires.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub id: uuid::Uuid,
    pub name: String,
    pub trigger_type: String,
    pub conditions: Value,
    pub priority: Priority,
    pub is_active: bool,
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

/// What is known about the current customer turn.
#[derive(Clone, Copy, Debug)]
pub struct TurnSignals<'a> {
    pub message: &'a str,
    /// Sentiment of this message in [-1, 1] (see [`super::sentiment::score`]).
    pub sentiment: f32,
    /// Best retrieval score of this turn; `None` when no retrieval ran.
    pub confidence: Option<f32>,
    /// Customer turns in the conversation, this one included.
    pub customer_turns: u32,
}

/// The first trigger that fires for this turn, by the precedence in the
/// [module documentation](self); `None` when the conversation can stay with the AI.
pub fn detect(cfg: &EscalationConfig, rules: &[Rule], s: &TurnSignals) -> Option<Escalation> {
    explicit_trigger(cfg, s)
        .or_else(|| keyword_trigger(cfg, s))
        .or_else(|| rule_trigger(rules, s))
        .or_else(|| sentiment_trigger(cfg, s))
        .or_else(|| confidence_trigger(cfg, s))
        .or_else(|| turn_trigger(cfg, s))
}

fn escalation(trigger: Trigger, details: Value, priority: Priority, reason: String) -> Escalation {
    let reason = match reason.char_indices().nth(MAX_REASON_CHARS) {
        Some((cut, _)) => reason[..cut].to_string(),
        None => reason,
    };
    Escalation { trigger, details, priority, reason }
}

fn explicit_trigger(cfg: &EscalationConfig, s: &TurnSignals) -> Option<Escalation> {
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

fn keyword_trigger(cfg: &EscalationConfig, s: &TurnSignals) -> Option<Escalation> {
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

fn rule_trigger(rules: &[Rule], s: &TurnSignals) -> Option<Escalation> {
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

fn sentiment_trigger(cfg: &EscalationConfig, s: &TurnSignals) -> Option<Escalation> {
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

fn confidence_trigger(cfg: &EscalationConfig, s: &TurnSignals) -> Option<Escalation> {
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

fn turn_trigger(cfg: &EscalationConfig, s: &TurnSignals) -> Option<Escalation> {
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
fn evaluate_rule(rule: &Rule, s: &TurnSignals) -> Option<Value> {
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

// --- JSON helpers ---------------------------------------------------------------------------

/// The first of `keys` present (and not null) in the object `v`.
fn field<'v>(v: &'v Value, keys: &[&str]) -> Option<&'v Value> {
    keys.iter().find_map(|k| v.get(*k).filter(|x| !x.is_null()))
}

fn f32_at(v: &Value, keys: &[&str]) -> Option<f32> {
    let x = field(v, keys)?;
    let n = match x {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    Some(n as f32).filter(|f| f.is_finite())
}

fn u32_at(v: &Value, keys: &[&str]) -> Option<u32> {
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
fn string_list(v: &Value) -> Vec<String> {
    let parts: Vec<String> = match v {
        Value::Array(items) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        Value::String(s) => s.split(',').map(str::to_string).collect(),
        _ => Vec::new(),
    };
    parts.into_iter().map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect()
}

// --- Text matching --------------------------------------------------------------------------

/// A lowercase word (apostrophes removed: `don't` → `dont`) and its clause number; sentence
/// punctuation and line breaks start a new clause.
#[derive(Debug)]
struct Word {
    text: String,
    clause: u32,
}

fn words(text: &str) -> Vec<Word> {
    fn flush(current: &mut String, clause: u32, out: &mut Vec<Word>) {
        if !current.is_empty() {
            out.push(Word { text: std::mem::take(current), clause });
        }
    }
    let mut out = Vec::new();
    let mut clause = 0u32;
    let mut current = String::new();
    for ch in text.chars() {
        if ch.is_alphanumeric() {
            current.extend(ch.to_lowercase());
        } else if ch != '\'' && ch != '\u{2019}' {
            // Apostrophes are dropped (`don't` → `dont`); anything else ends the word.
            flush(&mut current, clause, &mut out);
            if matches!(ch, '.' | ',' | ';' | ':' | '!' | '?' | '\n' | '\r') {
                clause += 1;
            }
        }
    }
    flush(&mut current, clause, &mut out);
    out
}

/// The first of `keywords` (in their order) that occurs in `message`, ignoring case, on word
/// boundaries: "refund" matches "Refund!" and "a refund." but not "refunds" or "nonrefundable";
/// "charge back" matches "charge-back" and "CHARGE  BACK". A keyword without any letter or
/// digit (e.g. "!!!") matches as a plain case-insensitive substring.
pub fn find_keyword<'k>(message: &str, keywords: &'k [String]) -> Option<&'k str> {
    let message_words: Vec<String> = words(message).into_iter().map(|w| w.text).collect();
    let lowered = message.to_lowercase();
    keywords.iter().map(String::as_str).find(|keyword| {
        let wanted: Vec<String> = words(keyword).into_iter().map(|w| w.text).collect();
        if wanted.is_empty() {
            let k = keyword.trim().to_lowercase();
            return !k.is_empty() && lowered.contains(&k);
        }
        message_words.windows(wanted.len()).any(|window| window == wanted.as_slice())
    })
}

/// Nouns naming a person who can take over the conversation.
const PEOPLE: &[&str] = &[
    "human",
    "humans",
    "person",
    "persons",
    "people",
    "agent",
    "agents",
    "representative",
    "representatives",
    "rep",
    "reps",
    "operator",
    "operators",
    "supervisor",
    "supervisors",
    "manager",
    "managers",
    "staff",
    "employee",
    "employees",
    "advisor",
    "advisors",
    "adviser",
    "advisers",
    "specialist",
    "specialists",
];

/// Vaguer targets, accepted only after a verb of contact ("talk to someone", "connect me
/// with support").
const VAGUE_PEOPLE: &[&str] = &["someone", "somebody", "anyone", "anybody", "support", "service", "team", "department"];

/// Verbs of contact: a person (or a vague target) may follow after fillers, "the" included.
const CONTACT_CUES: &[&[&str]] = &[
    &["talk"],
    &["speak"],
    &["chat", "with"],
    &["chat", "to"],
    &["connect", "me"],
    &["transfer", "me"],
    &["put", "me", "through"],
    &["pass", "me"],
    &["forward", "me"],
    &["redirect", "me"],
    &["hand", "me", "over"],
];

/// Words of wanting: a person (not a vague target) may follow after fillers, "the" excluded
/// ("I want a human", but not "I need the agent to ...").
const REQUEST_CUES: &[&[&str]] = &[
    &["want"],
    &["wanna"],
    &["need"],
    &["id", "like"],
    &["i", "would", "like"],
    &["get"],
    &["give", "me"],
    &["find", "me"],
    &["bring", "me"],
    &["is", "there"],
    &["are", "there"],
    &["request"],
    &["requesting"],
    &["contact"],
    &["reach"],
];

/// Words allowed between a contact verb and its target.
const CONTACT_FILLERS: &[&str] = &[
    "to",
    "with",
    "a",
    "an",
    "the",
    "me",
    "real",
    "actual",
    "live",
    "human",
    "your",
    "some",
    "one",
    "of",
    "customer",
    "support",
    "service",
    "sales",
    "billing",
    "technical",
    "tech",
    "account",
    "please",
    "just",
    "another",
    "proper",
    "through",
    "over",
    "now",
];

/// Words allowed between a request word and its target.
const REQUEST_FILLERS: &[&str] = &[
    "a", "an", "to", "me", "real", "actual", "live", "human", "proper", "please", "just", "some", "one", "of", "your",
];

/// Phrases that ask for a human wherever they occur (unless in a question about identity).
const PHRASES: &[&[&str]] = &[
    &["live", "agent"],
    &["live", "person"],
    &["live", "human"],
    &["live", "support"],
    &["live", "representative"],
    &["live", "operator"],
    &["human", "agent"],
    &["human", "representative"],
    &["human", "operator"],
    &["human", "support"],
    &["real", "person"],
    &["real", "human"],
    &["actual", "person"],
    &["actual", "human"],
    &["customer", "service", "representative"],
    &["customer", "service", "rep"],
    &["customer", "service", "agent"],
    &["customer", "support", "representative"],
    &["customer", "support", "agent"],
    &["customer", "care", "representative"],
    &["customer", "care", "agent"],
];

/// Words a very short message ("Operator!", "human please", "real agent now") may hold besides
/// a person.
const SHORT_FILLERS: &[&str] = &[
    "please",
    "pls",
    "plz",
    "a",
    "an",
    "the",
    "real",
    "live",
    "actual",
    "now",
    "asap",
    "just",
    "me",
    "i",
    "want",
    "need",
    "get",
    "give",
    "talk",
    "speak",
    "to",
    "with",
    "customer",
    "service",
    "support",
    "care",
    "any",
    "here",
    "there",
    "is",
    "urgently",
    "immediately",
];

const POLITE: &[&str] = &["please", "pls", "plz"];

/// Two-word openings of a question about who is answering ("are you a real person?").
const IDENTITY_QUESTIONS: &[[&str; 2]] = &[["are", "you"], ["r", "u"], ["is", "this"], ["is", "that"], ["am", "i"]];

fn is_person(w: &str) -> bool {
    PEOPLE.contains(&w)
}

fn starts_with(ws: &[Word], at: usize, seq: &[&str]) -> bool {
    let clause = ws[at].clause;
    ws.get(at..at + seq.len())
        .is_some_and(|window| window.iter().zip(seq).all(|(w, s)| w.clause == clause && w.text == *s))
}

fn phrase(ws: &[Word], from: usize, to: usize) -> String {
    ws[from..=to].iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" ")
}

/// A negation ("don't", "not", "never", "no need") within the three words before `at`, same
/// clause. A negation followed by "you" is a reproach, not a refusal ("why won't you let me
/// talk to a human"), and "can't" is a complaint ("I can't reach a person"): neither counts.
fn negated_before(ws: &[Word], at: usize) -> bool {
    let clause = ws[at].clause;
    (at.saturating_sub(3)..at).any(|j| {
        let w = &ws[j];
        let next = ws.get(j + 1).map(|n| n.text.as_str());
        w.clause == clause
            && !matches!(next, Some("you" | "u"))
            && (matches!(
                w.text.as_str(),
                "not" | "dont" | "doesnt" | "didnt" | "never" | "wont" | "wouldnt" | "shouldnt"
            ) || (w.text == "no" && next == Some("need")))
    })
}

/// The clause before `at` opens a question about identity ("are you a human?").
fn identity_question_before(ws: &[Word], at: usize) -> bool {
    let clause = ws[at].clause;
    let start = (0..at).rev().take_while(|&j| ws[j].clause == clause).last().unwrap_or(at);
    (start..at).any(|j| IDENTITY_QUESTIONS.iter().any(|q| starts_with(ws, j, q)))
}

/// After a cue ending before `from`: the index of the target reached through at most four
/// fillers, within the clause.
fn target_after(ws: &[Word], from: usize, fillers: &[&str], vague_ok: bool) -> Option<usize> {
    let clause = ws.get(from)?.clause;
    for (j, w) in ws.iter().enumerate().skip(from).take(5) {
        if w.clause != clause {
            return None;
        }
        if is_person(&w.text) || (vague_ok && VAGUE_PEOPLE.contains(&w.text.as_str())) {
            return Some(j);
        }
        if !fillers.contains(&w.text.as_str()) {
            return None;
        }
    }
    None
}

/// For a contact cue at `cue` ending before `from` and followed only by fillers to the end of
/// its clause: a person (or vague target) up to four words before the cue, and the clause's
/// last word. "is there someone I can talk to?", "a real person to speak with".
fn target_before(ws: &[Word], cue: usize, from: usize) -> Option<(usize, usize)> {
    let clause = ws[cue].clause;
    let mut end = from - 1;
    for (j, w) in ws.iter().enumerate().skip(from) {
        if w.clause != clause {
            break;
        }
        if !matches!(w.text.as_str(), "to" | "with" | "please" | "now" | "asap") {
            return None;
        }
        end = j;
    }
    let start = (cue.saturating_sub(4)..cue)
        .rev()
        .find(|&j| ws[j].clause == clause && (is_person(&ws[j].text) || VAGUE_PEOPLE.contains(&ws[j].text.as_str())))?;
    Some((start, end))
}

/// Whether the customer explicitly asks for a human, and the words that say so.
///
/// English only. After lower-casing and splitting into words (punctuation ignored, so
/// "talk-to-a-HUMAN!!" reads as "talk to a human"), a request is:
///
/// 1. a contact verb ("talk", "speak", "chat with", "connect me", "transfer me", "put me
///    through", ...) followed, through at most four fillers ("to", "with", "a", "the", "real",
///    "live", "one of your", "customer service", ...), by a person ("human", "person", "agent",
///    "representative", "operator", "manager", ...) or a vaguer target ("someone", "support",
///    "team"): "talk to a human", "speak with a real person", "talk to someone", "connect me
///    with one of your agents"; or a contact verb ending its clause after a person named just
///    before it: "is there someone I can talk to?";
/// 2. a request word ("I want", "I need", "I'd like", "get", "give me", "is there", "contact",
///    ...) followed through fillers other than "the" by a person: "I want a human", "can I get
///    a real agent", "is there a human";
/// 3. "escalate", in any sentence;
/// 4. a phrase such as "live agent", "real person", "human agent", "customer service
///    representative", unless the clause asks about identity ("are you a real person?");
/// 5. a person followed by "please" at the end of a clause: "human please";
/// 6. a message of at most four words made of a person and fillers only: "Operator!",
///    "Agent?", "real person now", "customer service please".
///
/// 1–4 do not fire when negated within the three words before ("I don't want to talk to a
/// human", "no need to speak to an agent"), though "why won't you let me talk to a human" and
/// "I can't reach a person" do. Words merely containing a target do not fire
/// ("humane", "agency"), nor does a person mentioned without a request ("the agent said ...",
/// "your representative told me"), nor questions about who is answering ("am I talking to a
/// human?").
pub fn detect_explicit_request(message: &str) -> Option<String> {
    let ws = words(message);
    if ws.is_empty() {
        return None;
    }

    for (i, word) in ws.iter().enumerate() {
        for cue in CONTACT_CUES {
            if starts_with(&ws, i, cue) && !negated_before(&ws, i) {
                let from = i + cue.len();
                if let Some(t) = target_after(&ws, from, CONTACT_FILLERS, true) {
                    return Some(phrase(&ws, i, t));
                }
                if let Some((start, end)) = target_before(&ws, i, from) {
                    return Some(phrase(&ws, start, end));
                }
            }
        }
        for cue in REQUEST_CUES {
            if starts_with(&ws, i, cue) && !negated_before(&ws, i) {
                if let Some(t) = target_after(&ws, i + cue.len(), REQUEST_FILLERS, false) {
                    return Some(phrase(&ws, i, t));
                }
            }
        }
        if word.text == "escalate" && !negated_before(&ws, i) {
            return Some(word.text.clone());
        }
    }

    for (i, word) in ws.iter().enumerate() {
        for p in PHRASES {
            if starts_with(&ws, i, p) && !identity_question_before(&ws, i) && !negated_before(&ws, i) {
                return Some(phrase(&ws, i, i + p.len() - 1));
            }
        }
        if is_person(&word.text)
            && ws.get(i + 1).is_some_and(|n| n.clause == word.clause && POLITE.contains(&n.text.as_str()))
            && ws.get(i + 2).is_none_or(|after| after.clause != word.clause)
            && !identity_question_before(&ws, i)
        {
            return Some(phrase(&ws, i, i + 1));
        }
    }

    if ws.len() <= 4 {
        let has_person = ws.iter().enumerate().any(|(j, w)| {
            is_person(&w.text)
                || (matches!(w.text.as_str(), "service" | "support" | "care") && j > 0 && ws[j - 1].text == "customer")
        });
        let rest_filler = ws.iter().all(|w| is_person(&w.text) || SHORT_FILLERS.contains(&w.text.as_str()));
        if has_person && rest_filler {
            return Some(phrase(&ws, 0, ws.len() - 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let s = TurnSignals {
            message: "talk to a human, lawyer",
            sentiment: -1.0,
            confidence: Some(0.0),
            customer_turns: 99,
        };
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
        assert_eq!(
            detect_explicit_request("Is there someone I can talk to?").as_deref(),
            Some("someone i can talk to")
        );
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
        let s = TurnSignals {
            message: "I am going to sue you",
            sentiment: -0.45,
            confidence: Some(0.25),
            customer_turns: 8,
        };
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
}
