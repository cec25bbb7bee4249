//! `llm_config`: the model and its sampling settings.

use serde::{Deserialize, Serialize};

use super::{between, text, trimmed, Column, ColumnConfig, FieldError};

/// The longest model name, in characters.
const MAX_MODEL_CHARS: usize = 100;

/// The agent's `llm_config`, e.g. `{"model": "claude-3-5-sonnet", "temperature": 0.7,
/// "maxTokens": 4096}`. Every key is optional (the chat turn's defaults apply).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LlmConfig {
    /// A model of the catalog (`chatapp_ai_models.slug`), e.g. `claude-3-5-sonnet`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// 0 to 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// The longest answer, in tokens; 1 to 32000.
    #[serde(default, alias = "max_tokens", skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
}

impl ColumnConfig for LlmConfig {
    const COLUMN: Column = Column::LlmConfig;

    fn validate(&self) -> Result<(), FieldError> {
        text("model", self.model.as_deref(), MAX_MODEL_CHARS)?;
        between("temperature", self.temperature, 0.0, 2.0)?;
        between("maxTokens", self.max_tokens, 1, 32_000)?;
        Ok(())
    }

    fn normalized(self) -> Self {
        LlmConfig { model: trimmed(self.model), ..self }
    }
}

#[cfg(test)]
mod tests {
    use super::super::check;
    use super::*;
    use serde_json::json;

    fn error(v: serde_json::Value) -> String {
        check(Column::LlmConfig, &v).unwrap_err().to_string()
    }

    #[test]
    fn the_seed_example_round_trips() {
        let v = json!({"model": "claude-3-5-sonnet", "temperature": 0.7, "maxTokens": 4096});
        assert_eq!(check(Column::LlmConfig, &v), Ok(v.clone()));
        assert_eq!(
            check(Column::LlmConfig, &json!({"model": " gpt-4o-mini ", "max_tokens": 1024, "temperature": 0})),
            Ok(json!({"model": "gpt-4o-mini", "maxTokens": 1024, "temperature": 0.0}))
        );
    }

    #[test]
    fn ranges() {
        assert_eq!(error(json!({"temperature": 2.5})), "llmConfig.temperature: must be between 0 and 2");
        assert_eq!(error(json!({"temperature": -0.1})), "llmConfig.temperature: must be between 0 and 2");
        assert_eq!(error(json!({"maxTokens": 0})), "llmConfig.maxTokens: must be between 1 and 32000");
        assert_eq!(error(json!({"maxTokens": 32001})), "llmConfig.maxTokens: must be between 1 and 32000");
        assert_eq!(error(json!({"model": "  "})), "llmConfig.model: must not be empty");
        assert!(check(Column::LlmConfig, &json!({"temperature": 2, "maxTokens": 32000})).is_ok());
    }

    #[test]
    fn unknown_fields_and_wrong_types_name_their_path() {
        let e = check(Column::LlmConfig, &json!({"temprature": 0.2})).unwrap_err();
        assert_eq!(e.path, "llmConfig.temprature");
        assert!(e.message.starts_with("unknown field `temprature`"), "{e}");
        let e = check(Column::LlmConfig, &json!({"maxTokens": 10.5})).unwrap_err();
        assert_eq!(e.path, "llmConfig.maxTokens");
        let e = check(Column::LlmConfig, &json!({"model": 4})).unwrap_err();
        assert_eq!(e.path, "llmConfig.model");
    }
}
