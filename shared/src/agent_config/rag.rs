//! `rag_config`: chunking and retrieval settings (overlaid on the company's `ragConfig`).

use serde::{Deserialize, Serialize};

use super::{between, Column, ColumnConfig, FieldError};
use crate::knowledge::service::RagConfig;

/// The agent's `rag_config`, e.g. `{"chunkSize": 500, "overlapSize": 50, "relevanceThreshold":
/// 0.7, "maxResults": 5}`. Every key is optional: the company's `ragConfig`, then the defaults,
/// fill in the rest. `topK` is an alias of `maxResults`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RagSettings {
    /// Characters per chunk; 100 to 8000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_size: Option<u32>,
    /// Characters shared by neighbouring chunks; 0 to 4000, less than `chunkSize`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap_size: Option<u32>,
    /// Minimum cosine similarity of a passage to the question; 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relevance_threshold: Option<f64>,
    /// Passages retrieved per question; 1 to 50.
    #[serde(default, alias = "topK", skip_serializing_if = "Option::is_none")]
    pub max_results: Option<u32>,
}

impl ColumnConfig for RagSettings {
    const COLUMN: Column = Column::RagConfig;

    fn validate(&self) -> Result<(), FieldError> {
        between("chunkSize", self.chunk_size, 100, 8000)?;
        between("overlapSize", self.overlap_size, 0, 4000)?;
        if let (Some(chunk), Some(overlap)) = (self.chunk_size, self.overlap_size) {
            if overlap >= chunk {
                return Err(FieldError::new("overlapSize", "must be less than chunkSize"));
            }
        }
        between("relevanceThreshold", self.relevance_threshold, 0.0, 1.0)?;
        between("maxResults", self.max_results, 1, 50)?;
        Ok(())
    }
}

impl RagSettings {
    /// `base` (the company's settings, or the defaults) with these settings over it.
    pub fn apply_to(&self, base: RagConfig) -> RagConfig {
        RagConfig {
            chunk_size: self.chunk_size.map_or(base.chunk_size, |n| n as usize),
            overlap: self.overlap_size.map_or(base.overlap, |n| n as usize),
            max_results: self.max_results.map_or(base.max_results, |n| n as usize),
            relevance_threshold: self.relevance_threshold.map_or(base.relevance_threshold, |t| t as f32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{check, read};
    use super::*;
    use serde_json::json;

    fn error(v: serde_json::Value) -> String {
        check(Column::RagConfig, &v).unwrap_err().to_string()
    }

    #[test]
    fn the_seed_example_round_trips() {
        let v = json!({"chunkSize": 500, "overlapSize": 50, "relevanceThreshold": 0.7, "maxResults": 5});
        assert_eq!(check(Column::RagConfig, &v), Ok(v.clone()));
        assert_eq!(check(Column::RagConfig, &json!({"topK": 8})), Ok(json!({"maxResults": 8})));
    }

    #[test]
    fn ranges() {
        assert_eq!(error(json!({"maxResults": 0})), "ragConfig.maxResults: must be between 1 and 50");
        assert_eq!(error(json!({"topK": 51})), "ragConfig.maxResults: must be between 1 and 50");
        assert_eq!(error(json!({"chunkSize": 99})), "ragConfig.chunkSize: must be between 100 and 8000");
        assert_eq!(error(json!({"overlapSize": 4001})), "ragConfig.overlapSize: must be between 0 and 4000");
        assert_eq!(
            error(json!({"chunkSize": 300, "overlapSize": 300})),
            "ragConfig.overlapSize: must be less than chunkSize"
        );
        assert_eq!(error(json!({"relevanceThreshold": 1.2})), "ragConfig.relevanceThreshold: must be between 0 and 1");
    }

    #[test]
    fn unknown_fields_and_wrong_types_name_their_path() {
        let e = check(Column::RagConfig, &json!({"chunkSize": 500, "chunk_overlap": 50})).unwrap_err();
        assert_eq!(e.path, "ragConfig.chunk_overlap");
        let e = check(Column::RagConfig, &json!({"maxResults": "5"})).unwrap_err();
        assert_eq!(e.path, "ragConfig.maxResults");
        let e = check(Column::RagConfig, &json!({"topK": -3})).unwrap_err();
        assert_eq!(e.path, "ragConfig.topK", "the key as written");
    }

    #[test]
    fn applies_over_a_base() {
        let s: RagSettings = read(&json!({"maxResults": 3, "relevanceThreshold": 0.5})).unwrap();
        let c = s.apply_to(RagConfig::default());
        assert_eq!((c.chunk_size, c.overlap, c.max_results), (1000, 100, 3));
        assert_eq!(c.relevance_threshold, 0.5);
        let stored = check(Column::RagConfig, &json!({"maxResults": 3, "relevanceThreshold": 0.5})).unwrap();
        assert_eq!(RagConfig::from_json(&stored), c, "the lenient reader agrees");
    }
}
