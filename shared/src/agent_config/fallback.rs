//! `fallback_responses`: canned messages the agent sends when it cannot answer.

use serde::{Deserialize, Serialize};

use super::{text, trimmed, Column, ColumnConfig, FieldError};

/// The longest message, in characters (a customer message's limit).
const MAX_MESSAGE_CHARS: usize = crate::chat::turn::MAX_MESSAGE_CHARS;

/// The agent's `fallback_responses`, e.g. `{"error": "Sorry, I can't answer right now."}`.
/// Every key is optional; a missing one takes the built-in message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FallbackResponses {
    /// Sent instead of an answer when the model fails (the chat turn reads it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For when the knowledge base holds nothing relevant to the question.
    #[serde(default, alias = "no_answer", skip_serializing_if = "Option::is_none")]
    pub no_answer: Option<String>,
    /// Sent when the conversation is handed to a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<String>,
}

impl ColumnConfig for FallbackResponses {
    const COLUMN: Column = Column::FallbackResponses;

    fn validate(&self) -> Result<(), FieldError> {
        text("error", self.error.as_deref(), MAX_MESSAGE_CHARS)?;
        text("noAnswer", self.no_answer.as_deref(), MAX_MESSAGE_CHARS)?;
        text("handoff", self.handoff.as_deref(), MAX_MESSAGE_CHARS)?;
        Ok(())
    }

    fn normalized(self) -> Self {
        FallbackResponses {
            error: trimmed(self.error),
            no_answer: trimmed(self.no_answer),
            handoff: trimmed(self.handoff),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::check;
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_and_checks() {
        let v = json!({"error": "Sorry, try again later.", "noAnswer": "I don't know that one.",
                       "handoff": "A person will reply."});
        assert_eq!(check(Column::FallbackResponses, &v), Ok(v.clone()));
        assert_eq!(
            check(Column::FallbackResponses, &json!({"no_answer": " Not sure. "})),
            Ok(json!({"noAnswer": "Not sure."}))
        );
        let error = |v: serde_json::Value| check(Column::FallbackResponses, &v).unwrap_err().to_string();
        assert_eq!(error(json!({"error": " "})), "fallbackResponses.error: must not be empty");
        assert_eq!(
            error(json!({"handoff": "x".repeat(4001)})),
            "fallbackResponses.handoff: must be at most 4000 characters"
        );
        assert!(error(json!({"greeting": "Hi"})).starts_with("fallbackResponses.greeting: unknown field"));
        assert!(error(json!({"error": ["a"]})).starts_with("fallbackResponses.error: invalid type"));
    }
}
