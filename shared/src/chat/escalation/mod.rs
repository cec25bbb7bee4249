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

mod matching;
mod parse;
#[cfg(test)]
mod tests;
mod triggers;

pub use matching::{detect_explicit_request, find_keyword};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use triggers::{confidence_trigger, explicit_trigger, keyword_trigger, rule_trigger, sentiment_trigger, turn_trigger};

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
