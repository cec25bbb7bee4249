//! Structured text: CSV records and JSON leaves become one `label: value` line each.

use serde_json::Value;

use super::{collapse_whitespace, corrupt, ExtractError};

/// JSON nesting below this depth is written as compact JSON on one line.
const MAX_JSON_DEPTH: usize = 10;

// ---------------------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------------------

/// One line per record: `Header1: value1; Header2: value2` (empty values skipped).
pub(super) fn csv_to_text(text: &str) -> Result<String, ExtractError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .delimiter(sniff_csv_delimiter(text))
        .from_reader(text.as_bytes());
    let headers: Vec<String> =
        reader.headers().map_err(|e| corrupt("csv", e.to_string()))?.iter().map(collapse_whitespace).collect();
    let mut lines = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| corrupt("csv", e.to_string()))?;
        let mut parts = Vec::with_capacity(record.len());
        for (i, value) in record.iter().enumerate() {
            let value = collapse_whitespace(value);
            if value.is_empty() {
                continue;
            }
            match headers.get(i).filter(|h| !h.is_empty()) {
                Some(header) => parts.push(format!("{header}: {value}")),
                None => parts.push(value),
            }
        }
        if !parts.is_empty() {
            lines.push(parts.join("; "));
        }
    }
    if lines.is_empty() {
        // Only a header row: keep it rather than calling the file empty.
        return Ok(headers.into_iter().filter(|h| !h.is_empty()).collect::<Vec<_>>().join("; "));
    }
    Ok(lines.join("\n"))
}

/// Comma unless the first line has more semicolons or tabs.
fn sniff_csv_delimiter(text: &str) -> u8 {
    let first = text.lines().next().unwrap_or("");
    let count = |d: char| first.chars().filter(|c| *c == d).count();
    let (comma, semicolon, tab) = (count(','), count(';'), count('\t'));
    if semicolon > comma && semicolon >= tab {
        b';'
    } else if tab > comma && tab > semicolon {
        b'\t'
    } else {
        b','
    }
}

// ---------------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------------

/// `path.to.key: value` lines (arrays as `path[0]`); a top-level array of objects becomes one
/// block per element, separated by blank lines.
pub(super) fn json_to_text(text: &str) -> Result<String, ExtractError> {
    let value: Value = serde_json::from_str(text).map_err(|e| corrupt("json", e.to_string()))?;
    match &value {
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
            let blocks: Vec<String> = items
                .iter()
                .map(|item| {
                    let mut lines = Vec::new();
                    flatten_json(item, "", 0, &mut lines);
                    lines.join("\n")
                })
                .filter(|block| !block.is_empty())
                .collect();
            Ok(blocks.join("\n\n"))
        }
        _ => {
            let mut lines = Vec::new();
            flatten_json(&value, "", 0, &mut lines);
            Ok(lines.join("\n"))
        }
    }
}

fn flatten_json(value: &Value, path: &str, depth: usize, out: &mut Vec<String>) {
    fn line(out: &mut Vec<String>, path: &str, value: &str) {
        if path.is_empty() {
            out.push(value.to_owned());
        } else {
            out.push(format!("{path}: {value}"));
        }
    }
    match value {
        Value::Null => {}
        Value::Bool(b) => line(out, path, if *b { "true" } else { "false" }),
        Value::Number(n) => line(out, path, &n.to_string()),
        Value::String(s) => {
            let s = s.trim();
            if !s.is_empty() {
                line(out, path, s);
            }
        }
        Value::Array(_) | Value::Object(_) if depth >= MAX_JSON_DEPTH => line(out, path, &value.to_string()),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                flatten_json(item, &format!("{path}[{i}]"), depth + 1, out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                flatten_json(item, &child, depth + 1, out);
            }
        }
    }
}
