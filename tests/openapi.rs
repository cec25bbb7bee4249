//! The committed API description (`docs/openapi.json`) is exactly what the routers generate:
//! regenerate it with `cargo run -p chatapp-local -- openapi > docs/openapi.json`.

use chatapp_functions::http_function::{openapi, openapi_json, HttpFunction};

const COMMITTED: &str = include_str!("../docs/openapi.json");

#[test]
fn the_committed_document_is_the_generated_one() {
    let generated = openapi_json();
    assert!(
        COMMITTED.trim_end() == generated.trim_end(),
        "docs/openapi.json is stale: run `cargo run -p chatapp-local -- openapi > docs/openapi.json`"
    );
}

#[test]
fn every_operation_is_documented_with_a_unique_id_a_summary_and_responses() {
    let doc: serde_json::Value = serde_json::to_value(openapi()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut ids = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path}: no operationId"));
            assert!(ids.insert(id.to_string()), "{method} {path}: operationId {id} is not unique");
            assert!(op["summary"].as_str().is_some_and(|s| !s.is_empty()), "{method} {path}: no summary");
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.keys().any(|c| c.starts_with('2')), "{method} {path}: no success response");
            assert!(responses.contains_key("500"), "{method} {path}: error responses missing");
        }
    }
    assert!(ids.len() >= 40, "only {} operations", ids.len());
    // Every HTTP function contributes operations.
    for f in HttpFunction::ALL {
        assert!(!f.openapi().paths.paths.is_empty(), "{f:?} describes no route");
    }
}
