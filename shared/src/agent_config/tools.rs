//! `tool_config`: settings of the agent's built-in tools (`enabled_tools`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Column, ColumnConfig, FieldError};
use crate::chat::tools::{BUILTIN, RAG_SEARCH, SEARCH_KNOWLEDGE};

/// The most passages one knowledge-search call may return.
pub const MAX_SEARCH_RESULTS: u32 = 20;

/// The agent's `tool_config`: an object keyed by built-in tool name, each value that tool's
/// settings. Only the knowledge search has one today: `{"search_knowledge": {"maxResults": 3}}`
/// (1-20 passages per call, instead of the agent's `ragConfig.maxResults`); the other built-in
/// tools take `{}`. An unknown tool or setting is refused, so a typo is a 400, not a silent
/// default. HTTP actions carry their settings on the action itself.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ToolConfig {
    pub tools: BTreeMap<String, ToolSettings>,
}

/// One built-in tool's settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ToolSettings {
    /// Knowledge search only: passages per call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_results: Option<u32>,
}

impl ToolConfig {
    /// Passages per knowledge-search call, when the agent sets it.
    pub fn search_max_results(&self) -> Option<usize> {
        [SEARCH_KNOWLEDGE, RAG_SEARCH]
            .iter()
            .find_map(|name| self.tools.get(*name).and_then(|s| s.max_results))
            .map(|n| n as usize)
    }
}

impl ColumnConfig for ToolConfig {
    const COLUMN: Column = Column::ToolConfig;

    fn validate(&self) -> Result<(), FieldError> {
        for (name, settings) in &self.tools {
            if !BUILTIN.contains(&name.as_str()) {
                return Err(FieldError::new(
                    name.clone(),
                    format!("is not a built-in tool (one of {})", BUILTIN.join(", ")),
                ));
            }
            if let Some(n) = settings.max_results {
                if name != SEARCH_KNOWLEDGE && name != RAG_SEARCH {
                    return Err(FieldError::new(format!("{name}.maxResults"), "only the knowledge search has it"));
                }
                if !(1..=MAX_SEARCH_RESULTS).contains(&n) {
                    return Err(FieldError::new(
                        format!("{name}.maxResults"),
                        format!("must be between 1 and {MAX_SEARCH_RESULTS}"),
                    ));
                }
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
        let typed: ToolConfig = serde_json::from_value(v).unwrap();
        assert_eq!(typed.search_max_results(), Some(5));
        let e = check(Column::ToolConfig, &json!({"rag_search": true})).unwrap_err();
        assert_eq!(e.path, "toolConfig.rag_search");
        assert!(e.message.starts_with("invalid type: boolean `true`"), "{e}");
        let e = check(Column::ToolConfig, &json!({"serch_knowledge": {}})).unwrap_err();
        assert_eq!(e.path, "toolConfig.serch_knowledge");
        assert!(e.message.starts_with("is not a built-in tool"), "{e}");
        let e = check(Column::ToolConfig, &json!({"search_knowledge": {"maxResult": 3}})).unwrap_err();
        assert!(e.path.starts_with("toolConfig.search_knowledge"), "{e}");
        let e = check(Column::ToolConfig, &json!({"search_knowledge": {"maxResults": 21}})).unwrap_err();
        assert_eq!(
            (e.path.as_str(), e.message.as_str()),
            ("toolConfig.search_knowledge.maxResults", "must be between 1 and 20")
        );
        let e = check(Column::ToolConfig, &json!({"end_conversation": {"maxResults": 2}})).unwrap_err();
        assert_eq!(e.path, "toolConfig.end_conversation.maxResults");
    }
}
