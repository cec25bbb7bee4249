//! Typed agent configuration, checked on write.
//!
//! Each JSON column of `chatapp_agents` has a Rust type ([`ResponseStyle`], [`LlmConfig`],
//! [`RagSettings`], [`EscalationRules`], [`BusinessHoursConfig`], [`FallbackResponses`],
//! [`ToolConfig`]): camelCase keys as in the seeds, unknown keys refused, the spellings today's
//! readers accept as aliases. [`check`] reads a value as its column's type, checks its ranges
//! and returns the normalised JSON to store (re-serialised from the typed value: aliases
//! replaced by the canonical keys, text trimmed, the time zone spelled as the tz database
//! does); a bad value is a [`ConfigError`] naming the exact path, e.g.
//! `escalationRules.sentimentThreshold: must be between -1 and 1`, and nothing is stored.
//!
//! `null` reads as `{}` (the columns' default), so a client can clear a column with it.

mod escalation;
mod fallback;
mod hours;
mod llm;
mod rag;
mod style;
mod tools;

use std::fmt::Display;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

pub use escalation::EscalationRules;
pub use fallback::FallbackResponses;
pub use hours::{BusinessHoursConfig, Interval, Schedule, Time};
pub use llm::LlmConfig;
pub use rag::RagSettings;
pub use style::ResponseStyle;
pub use tools::{ToolConfig, ToolSettings};

/// A JSON column of `chatapp_agents`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Column {
    ResponseStyle,
    LlmConfig,
    RagConfig,
    EscalationRules,
    BusinessHours,
    FallbackResponses,
    ToolConfig,
}

impl Column {
    pub const ALL: [Column; 7] = [
        Column::ResponseStyle,
        Column::LlmConfig,
        Column::RagConfig,
        Column::EscalationRules,
        Column::BusinessHours,
        Column::FallbackResponses,
        Column::ToolConfig,
    ];

    /// The API (camelCase) name: `responseStyle`, `llmConfig`, `ragConfig`, `escalationRules`,
    /// `businessHours`, `fallbackResponses`, `toolConfig`.
    pub fn json_name(&self) -> &'static str {
        match self {
            Column::ResponseStyle => "responseStyle",
            Column::LlmConfig => "llmConfig",
            Column::RagConfig => "ragConfig",
            Column::EscalationRules => "escalationRules",
            Column::BusinessHours => "businessHours",
            Column::FallbackResponses => "fallbackResponses",
            Column::ToolConfig => "toolConfig",
        }
    }

    /// The database column: `response_style`, `llm_config`, ...
    pub fn sql_name(&self) -> &'static str {
        match self {
            Column::ResponseStyle => "response_style",
            Column::LlmConfig => "llm_config",
            Column::RagConfig => "rag_config",
            Column::EscalationRules => "escalation_rules",
            Column::BusinessHours => "business_hours",
            Column::FallbackResponses => "fallback_responses",
            Column::ToolConfig => "tool_config",
        }
    }

    /// The column of an API name (camelCase) or a database name (snake_case).
    pub fn from_name(name: &str) -> Option<Column> {
        Column::ALL.into_iter().find(|c| c.json_name() == name || c.sql_name() == name)
    }
}

/// A configuration value that cannot be stored: `path` is the full dotted path, starting
/// with the column's API name (`escalationRules.sentimentThreshold`,
/// `businessHours.schedule.mon[0]`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl From<ConfigError> for crate::error::ApiError {
    fn from(e: ConfigError) -> Self {
        crate::error::ApiError::validation(e.to_string())
    }
}

/// A failed range or consistency check: `path` is relative to the column (`sentimentThreshold`,
/// `schedule`, `keywords[2]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl FieldError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { path: path.into(), message: message.into() }
    }

    /// The error with its path under `column`.
    pub fn under(self, column: Column) -> ConfigError {
        ConfigError { path: join(column.json_name(), &self.path), message: self.message }
    }
}

/// The type of one JSON column.
pub trait ColumnConfig: Serialize + DeserializeOwned {
    const COLUMN: Column;

    /// Range and consistency checks the type alone does not make.
    fn validate(&self) -> Result<(), FieldError>;

    /// The value to store: text trimmed, names canonical. Called after [`validate`](Self::validate).
    fn normalized(self) -> Self {
        self
    }
}

/// Check `value` as `column`'s type; the normalised JSON to store.
pub fn check(column: Column, value: &Value) -> Result<Value, ConfigError> {
    match column {
        Column::ResponseStyle => to_json(read::<ResponseStyle>(value)?),
        Column::LlmConfig => to_json(read::<LlmConfig>(value)?),
        Column::RagConfig => to_json(read::<RagSettings>(value)?),
        Column::EscalationRules => to_json(read::<EscalationRules>(value)?),
        Column::BusinessHours => to_json(read::<BusinessHoursConfig>(value)?),
        Column::FallbackResponses => to_json(read::<FallbackResponses>(value)?),
        Column::ToolConfig => to_json(read::<ToolConfig>(value)?),
    }
}

/// Read `value` as `T`, checked and normalised (`null` reads as `{}`).
pub fn read<T: ColumnConfig>(value: &Value) -> Result<T, ConfigError> {
    let column = T::COLUMN.json_name();
    let empty = Value::Object(Map::new());
    let value = match value {
        Value::Null => &empty,
        Value::Object(_) => value,
        other => {
            return Err(ConfigError {
                path: column.to_string(),
                message: format!("must be a JSON object, not {}", kind(other)),
            })
        }
    };
    let typed: T = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        // The root's path displays as ".".
        let relative = if path == "." { "" } else { path.as_str() };
        ConfigError { path: join(column, relative), message: e.inner().to_string() }
    })?;
    typed.validate().map_err(|e| e.under(T::COLUMN))?;
    Ok(typed.normalized())
}

fn to_json<T: ColumnConfig>(typed: T) -> Result<Value, ConfigError> {
    serde_json::to_value(&typed)
        .map_err(|e| ConfigError { path: T::COLUMN.json_name().to_string(), message: format!("cannot be stored: {e}") })
}

/// The JSON type of a value, for messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `column.path`, or `column[0]...` for a path starting with an index, or `column` alone.
fn join(column: &str, path: &str) -> String {
    if path.is_empty() {
        column.to_string()
    } else if path.starts_with('[') {
        format!("{column}{path}")
    } else {
        format!("{column}.{path}")
    }
}

// --- Checks shared by the column types ------------------------------------------------------

/// `value`, when given, must be in `lo..=hi`: "must be between {lo} and {hi}".
pub(crate) fn between<T: PartialOrd + Display + Copy>(
    path: &str,
    value: Option<T>,
    lo: T,
    hi: T,
) -> Result<(), FieldError> {
    match value {
        Some(v) if !(lo..=hi).contains(&v) => Err(FieldError::new(path, format!("must be between {lo} and {hi}"))),
        _ => Ok(()),
    }
}

/// Text, when given, must not be blank and is at most `max` characters (after trimming).
pub(crate) fn text(path: &str, value: Option<&str>, max: usize) -> Result<(), FieldError> {
    let Some(v) = value else { return Ok(()) };
    let v = v.trim();
    if v.is_empty() {
        return Err(FieldError::new(path, "must not be empty"));
    }
    if v.chars().count() > max {
        return Err(FieldError::new(path, format!("must be at most {max} characters")));
    }
    Ok(())
}

/// Trimmed text; `None` for blank text.
pub(crate) fn trimmed(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn column_names() {
        for c in Column::ALL {
            assert_eq!(Column::from_name(c.json_name()), Some(c));
            assert_eq!(Column::from_name(c.sql_name()), Some(c));
        }
        assert_eq!(Column::EscalationRules.json_name(), "escalationRules");
        assert_eq!(Column::BusinessHours.json_name(), "businessHours");
        assert_eq!(Column::from_name("personality"), None);
    }

    #[test]
    fn null_and_empty_objects_are_the_default() {
        for c in Column::ALL {
            assert_eq!(check(c, &Value::Null), Ok(json!({})), "{c:?}");
            assert_eq!(check(c, &json!({})), Ok(json!({})), "{c:?}");
        }
    }

    #[test]
    fn a_non_object_names_the_column() {
        let e = check(Column::LlmConfig, &json!("fast")).unwrap_err();
        assert_eq!(e.to_string(), "llmConfig: must be a JSON object, not a string");
        let e = check(Column::EscalationRules, &json!([true])).unwrap_err();
        assert_eq!(e.to_string(), "escalationRules: must be a JSON object, not an array");
        let e = check(Column::ToolConfig, &json!(1)).unwrap_err();
        assert_eq!(e.to_string(), "toolConfig: must be a JSON object, not a number");
    }

    #[test]
    fn errors_display_and_become_400s() {
        let e = check(Column::EscalationRules, &json!({"sentimentThreshold": -1.5})).unwrap_err();
        assert_eq!(e.to_string(), "escalationRules.sentimentThreshold: must be between -1 and 1");
        let api: crate::error::ApiError = e.into();
        assert_eq!(api.status(), http::StatusCode::BAD_REQUEST);
        assert_eq!(api.code(), "validation_failed");
        assert_eq!(api.to_string(), "escalationRules.sentimentThreshold: must be between -1 and 1");
    }

    #[test]
    fn join_paths() {
        assert_eq!(join("businessHours", ""), "businessHours");
        assert_eq!(join("businessHours", "schedule.mon[0]"), "businessHours.schedule.mon[0]");
        assert_eq!(join("toolConfig", "[0]"), "toolConfig[0]");
    }
}
