//! `tool_config`: per-tool settings of the agent's tools (`enabled_tools`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Column, ColumnConfig, FieldError};

/// The longest tool name.
const MAX_TOOL_NAME: usize = 64;

/// The agent's `tool_config`: an object keyed by tool name (`rag_search`,
/// `request_human_handover`, ...: lowercase letters, digits and `_`, starting with a letter),
/// each value an object of that tool's settings, e.g. `{"rag_search": {"maxResults": 5}}`.
/// The settings themselves belong to the tool's package and are kept as given.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ToolConfig {
    pub tools: BTreeMap<String, Map<String, Value>>,
}

impl ColumnConfig for ToolConfig {
    const COLUMN: Column = Column::ToolConfig;

    fn validate(&self) -> Result<(), FieldError> {
        for name in self.tools.keys() {
            let mut bytes = name.bytes();
            let valid = name.len() <= MAX_TOOL_NAME
                && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
                && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !valid {
                return Err(FieldError::new(
                    name.clone(),
                    format!("is not a tool name (lowercase letters, digits and _, at most {MAX_TOOL_NAME})"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::check;
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_and_checks() {
        let v = json!({"rag_search": {"maxResults": 5}, "request_human_handover": {}});
        assert_eq!(check(Column::ToolConfig, &v), Ok(v.clone()));
        let e = check(Column::ToolConfig, &json!({"rag_search": true})).unwrap_err();
        assert_eq!(e.path, "toolConfig.rag_search");
        assert!(e.message.starts_with("invalid type: boolean `true`"), "{e}");
        let e = check(Column::ToolConfig, &json!({"Rag Search": {}})).unwrap_err();
        assert_eq!(e.path, "toolConfig.Rag Search");
    }
}
