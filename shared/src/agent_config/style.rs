//! `response_style`: how the agent words its answers (given to the model in the system prompt).

use serde::{Deserialize, Serialize};

use super::{text, trimmed, Column, ColumnConfig, FieldError};

/// The longest tone, formality or verbosity, in characters.
const MAX_STYLE_CHARS: usize = 100;

/// The agent's `response_style`, e.g. `{"tone": "friendly", "formality": "casual", "verbosity":
/// "concise", "language": "en"}`. Every key is optional; the words are free text (the model
/// reads them), the language a tag such as `en` or `pt-BR`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResponseStyle {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formality: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verbosity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

impl ColumnConfig for ResponseStyle {
    const COLUMN: Column = Column::ResponseStyle;

    fn validate(&self) -> Result<(), FieldError> {
        text("tone", self.tone.as_deref(), MAX_STYLE_CHARS)?;
        text("formality", self.formality.as_deref(), MAX_STYLE_CHARS)?;
        text("verbosity", self.verbosity.as_deref(), MAX_STYLE_CHARS)?;
        if let Some(language) = &self.language {
            if !is_language_tag(language.trim()) {
                return Err(FieldError::new("language", "must be a language tag such as \"en\" or \"pt-BR\""));
            }
        }
        Ok(())
    }

    fn normalized(self) -> Self {
        ResponseStyle {
            tone: trimmed(self.tone),
            formality: trimmed(self.formality),
            verbosity: trimmed(self.verbosity),
            language: trimmed(self.language),
        }
    }
}

/// A BCP 47-like tag: 2 or 3 letters, then `-` separated subtags of 1 to 8 letters or digits
/// (`en`, `de-AT`, `zh-Hant-TW`, `es-419`).
fn is_language_tag(s: &str) -> bool {
    let mut parts = s.split('-');
    let primary = parts.next().unwrap_or("");
    (2..=3).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::super::check;
    use super::*;
    use serde_json::json;

    #[test]
    fn the_seed_example_round_trips() {
        let v = json!({"tone": "friendly", "formality": "casual", "verbosity": "concise", "language": "en"});
        assert_eq!(check(Column::ResponseStyle, &v), Ok(v.clone()));
        assert_eq!(
            check(Column::ResponseStyle, &json!({"tone": " warm ", "language": "pt-BR"})),
            Ok(json!({"tone": "warm", "language": "pt-BR"}))
        );
    }

    #[test]
    fn checks() {
        let error = |v: serde_json::Value| check(Column::ResponseStyle, &v).unwrap_err().to_string();
        assert_eq!(error(json!({"tone": ""})), "responseStyle.tone: must not be empty");
        assert_eq!(
            error(json!({"verbosity": "x".repeat(101)})),
            "responseStyle.verbosity: must be at most 100 characters"
        );
        assert_eq!(
            error(json!({"language": "English"})),
            "responseStyle.language: must be a language tag such as \"en\" or \"pt-BR\""
        );
        assert!(error(json!({"emoji": true})).starts_with("responseStyle.emoji: unknown field `emoji`"));
        assert!(error(json!({"tone": 3})).starts_with("responseStyle.tone: invalid type"));
        for tag in ["en", "de-AT", "zh-Hant-TW", "es-419", "fil"] {
            assert!(check(Column::ResponseStyle, &json!({"language": tag})).is_ok(), "{tag}");
        }
    }
}
