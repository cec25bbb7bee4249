//! `escalation_rules`: when the agent hands a conversation to a person.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::{between, Column, ColumnConfig, FieldError};
use crate::chat::escalation::EscalationConfig;

/// The most keywords an agent may have.
const MAX_KEYWORDS: usize = 200;
/// The longest keyword, in characters.
const MAX_KEYWORD_CHARS: usize = 100;

/// The agent's `escalation_rules`, e.g. `{"keywords": ["refund", "cancel"], "sentimentThreshold":
/// -0.5, "confidenceThreshold": 0.3, "autoEscalateAfter": 5}`. Every key is optional; the
/// snake_case spellings the chat turn's reader accepts are aliases.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EscalationRules {
    /// Switches the agent's own triggers (not the rule rows); default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Matched case-insensitively on word boundaries. A comma-separated string is read as a list.
    #[serde(default, deserialize_with = "keywords", skip_serializing_if = "Option::is_none")]
    pub keywords: Option<Vec<String>>,
    /// Escalate when a message's sentiment is below this; -1 to 1.
    #[serde(default, alias = "sentiment_threshold", skip_serializing_if = "Option::is_none")]
    pub sentiment_threshold: Option<f64>,
    /// Escalate when the best retrieval score is below this; 0 to 1.
    #[serde(default, alias = "confidence_threshold", skip_serializing_if = "Option::is_none")]
    pub confidence_threshold: Option<f64>,
    /// Escalate on this many customer turns; 1 to 100 (`null` or absent: no limit).
    #[serde(default, alias = "auto_escalate_after", skip_serializing_if = "Option::is_none")]
    pub auto_escalate_after: Option<u32>,
    /// Escalate when the customer asks for a person; default true.
    #[serde(default, alias = "explicit_request", skip_serializing_if = "Option::is_none")]
    pub explicit_request: Option<bool>,
}

impl ColumnConfig for EscalationRules {
    const COLUMN: Column = Column::EscalationRules;

    fn validate(&self) -> Result<(), FieldError> {
        if let Some(keywords) = &self.keywords {
            if keywords.len() > MAX_KEYWORDS {
                return Err(FieldError::new("keywords", format!("must hold at most {MAX_KEYWORDS} keywords")));
            }
            for (i, k) in keywords.iter().enumerate() {
                let k = k.trim();
                if k.is_empty() {
                    return Err(FieldError::new(format!("keywords[{i}]"), "must not be empty"));
                }
                if k.chars().count() > MAX_KEYWORD_CHARS {
                    return Err(FieldError::new(
                        format!("keywords[{i}]"),
                        format!("must be at most {MAX_KEYWORD_CHARS} characters"),
                    ));
                }
            }
        }
        between("sentimentThreshold", self.sentiment_threshold, -1.0, 1.0)?;
        between("confidenceThreshold", self.confidence_threshold, 0.0, 1.0)?;
        between("autoEscalateAfter", self.auto_escalate_after, 1, 100)?;
        Ok(())
    }

    fn normalized(mut self) -> Self {
        if let Some(keywords) = &mut self.keywords {
            for k in keywords.iter_mut() {
                *k = k.trim().to_string();
            }
        }
        self
    }
}

impl EscalationRules {
    /// The detector's configuration (what [`EscalationConfig::from_agent_json`] reads from the
    /// same JSON).
    pub fn to_escalation_config(&self) -> EscalationConfig {
        let d = EscalationConfig::default();
        EscalationConfig {
            enabled: self.enabled.unwrap_or(d.enabled),
            keywords: self.keywords.iter().flatten().map(|k| k.trim().to_string()).filter(|k| !k.is_empty()).collect(),
            sentiment_threshold: self.sentiment_threshold.map(|t| t as f32),
            confidence_threshold: self.confidence_threshold.map(|t| t as f32),
            auto_escalate_after: self.auto_escalate_after.filter(|&n| n > 0),
            explicit_request: self.explicit_request.unwrap_or(d.explicit_request),
        }
    }
}

/// `keywords`: a list of strings, or one comma-separated string; `null` is absent.
fn keywords<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<String>>, D::Error> {
    struct Keywords(Vec<String>);

    impl<'de> Deserialize<'de> for Keywords {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_any(KeywordsVisitor)
        }
    }

    struct KeywordsVisitor;

    impl<'de> Visitor<'de> for KeywordsVisitor {
        type Value = Keywords;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of keywords or a comma-separated string")
        }

        fn visit_str<E: de::Error>(self, s: &str) -> Result<Keywords, E> {
            Ok(Keywords(s.split(',').map(|k| k.trim().to_string()).filter(|k| !k.is_empty()).collect()))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Keywords, A::Error> {
            let mut out = Vec::new();
            while let Some(k) = seq.next_element::<String>()? {
                out.push(k);
            }
            Ok(Keywords(out))
        }
    }

    Ok(Option::<Keywords>::deserialize(deserializer)?.map(|k| k.0))
}

#[cfg(test)]
mod tests {
    use super::super::{check, read};
    use super::*;
    use serde_json::json;

    fn error(v: serde_json::Value) -> String {
        check(Column::EscalationRules, &v).unwrap_err().to_string()
    }

    #[test]
    fn the_seed_example_round_trips() {
        let v = json!({"keywords": ["refund", "cancel", "urgent"], "sentimentThreshold": -0.5,
                       "confidenceThreshold": 0.3, "autoEscalateAfter": 5});
        assert_eq!(check(Column::EscalationRules, &v), Ok(v.clone()));
        let all = json!({"enabled": false, "keywords": ["lawyer"], "sentimentThreshold": -1, "confidenceThreshold": 1,
                         "autoEscalateAfter": 100, "explicitRequest": false});
        let stored = check(Column::EscalationRules, &all).unwrap();
        assert_eq!(
            stored,
            json!({"enabled": false, "keywords": ["lawyer"], "sentimentThreshold": -1.0,
                                  "confidenceThreshold": 1.0, "autoEscalateAfter": 100, "explicitRequest": false})
        );
        assert_eq!(check(Column::EscalationRules, &stored), Ok(stored.clone()), "stable");
    }

    #[test]
    fn aliases_and_keyword_strings_are_normalised() {
        let v = json!({"sentiment_threshold": -0.25, "auto_escalate_after": 3, "explicit_request": true,
                       "confidence_threshold": 0.5, "keywords": " refund, charge back ,,"});
        assert_eq!(
            check(Column::EscalationRules, &v),
            Ok(json!({"sentimentThreshold": -0.25, "autoEscalateAfter": 3, "explicitRequest": true,
                      "confidenceThreshold": 0.5, "keywords": ["refund", "charge back"]}))
        );
        assert_eq!(
            check(Column::EscalationRules, &json!({"keywords": ["  lawyer "], "sentimentThreshold": null})),
            Ok(json!({"keywords": ["lawyer"]}))
        );
    }

    #[test]
    fn ranges() {
        assert_eq!(
            error(json!({"sentimentThreshold": -1.5})),
            "escalationRules.sentimentThreshold: must be between -1 and 1"
        );
        assert_eq!(
            error(json!({"sentimentThreshold": 1.01})),
            "escalationRules.sentimentThreshold: must be between -1 and 1"
        );
        assert_eq!(
            error(json!({"confidenceThreshold": -0.1})),
            "escalationRules.confidenceThreshold: must be between 0 and 1"
        );
        assert_eq!(
            error(json!({"confidenceThreshold": 2})),
            "escalationRules.confidenceThreshold: must be between 0 and 1"
        );
        assert_eq!(
            error(json!({"autoEscalateAfter": 0})),
            "escalationRules.autoEscalateAfter: must be between 1 and 100"
        );
        assert_eq!(
            error(json!({"autoEscalateAfter": 101})),
            "escalationRules.autoEscalateAfter: must be between 1 and 100"
        );
        assert_eq!(error(json!({"keywords": ["ok", "  "]})), "escalationRules.keywords[1]: must not be empty");
        let long = "x".repeat(101);
        assert_eq!(error(json!({"keywords": [long]})), "escalationRules.keywords[0]: must be at most 100 characters");
        // An alias reports the canonical name.
        assert_eq!(
            error(json!({"sentiment_threshold": 3})),
            "escalationRules.sentimentThreshold: must be between -1 and 1"
        );
    }

    #[test]
    fn unknown_fields_and_wrong_types_name_their_path() {
        let e = check(Column::EscalationRules, &json!({"keywords": ["a"], "sentimentTreshold": -0.5})).unwrap_err();
        assert_eq!(e.path, "escalationRules.sentimentTreshold");
        assert!(e.message.starts_with("unknown field `sentimentTreshold`"), "{e}");
        let e = check(Column::EscalationRules, &json!({"sentimentThreshold": "-0.5"})).unwrap_err();
        assert_eq!(e.path, "escalationRules.sentimentThreshold");
        assert!(e.message.starts_with("invalid type: string"), "{e}");
        let e = check(Column::EscalationRules, &json!({"keywords": ["a", 7]})).unwrap_err();
        assert_eq!(e.path, "escalationRules.keywords[1]");
        let e = check(Column::EscalationRules, &json!({"autoEscalateAfter": -1})).unwrap_err();
        assert_eq!(e.path, "escalationRules.autoEscalateAfter");
        let e = check(Column::EscalationRules, &json!({"enabled": "yes"})).unwrap_err();
        assert_eq!(e.path, "escalationRules.enabled");
    }

    #[test]
    fn to_the_detector_config() {
        let rules: EscalationRules =
            read(&json!({"keywords": ["lawyer"], "sentimentThreshold": -0.5, "autoEscalateAfter": 4})).unwrap();
        let cfg = rules.to_escalation_config();
        assert!(cfg.enabled && cfg.explicit_request);
        assert_eq!(cfg.keywords, vec!["lawyer".to_string()]);
        assert_eq!(cfg.sentiment_threshold, Some(-0.5));
        assert_eq!(cfg.confidence_threshold, None);
        assert_eq!(cfg.auto_escalate_after, Some(4));
        let same = EscalationConfig::from_agent_json(
            &check(
                Column::EscalationRules,
                &json!({"keywords": "lawyer",
            "sentimentThreshold": -0.5, "autoEscalateAfter": 4}),
            )
            .unwrap(),
        );
        assert_eq!(cfg, same, "the lenient reader reads the stored value the same way");
        assert_eq!(EscalationRules::default().to_escalation_config(), EscalationConfig::default());
    }
}
