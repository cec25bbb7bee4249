//! What the `agents` function checks of an HTTP action's fields before storing it (the rules
//! are listed in `actions.rs`' module documentation).

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use chatapp::chat::tools::http_action::forbidden_ip;
use chatapp::ApiError;
use serde_json::Value;

const MAX_NAME: usize = 64;
/// The largest `parameters` schema, serialized.
const MAX_PARAMETERS_BYTES: usize = 20 * 1024;
const MAX_URL: usize = 2000;
const MAX_HEADERS: usize = 20;
const MAX_HEADER_VALUE: usize = 4096;
const MIN_TIMEOUT_MS: i64 = 100;
const MAX_TIMEOUT_MS: i64 = 10_000;
/// How deep `parameters` schemas may nest.
const MAX_SCHEMA_DEPTH: usize = 10;
/// The JSON Schema types.
const SCHEMA_TYPES: [&str; 7] = ["string", "number", "integer", "boolean", "object", "array", "null"];
/// The turn's built-in tools (`chatapp::chat::tools`): no action may take their names.
const BUILTIN: [&str; 4] = ["search_knowledge", "rag_search", "request_human_handover", "end_conversation"];
/// Headers the platform sets on every call (besides `x-chatapp-*`).
const RESERVED_HEADERS: [&str; 5] = ["host", "content-length", "content-type", "transfer-encoding", "connection"];

/// The name as given (trimmed): a valid function name that is not a built-in tool's.
pub(super) fn action_name(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    let valid = name.len() <= MAX_NAME
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        return Err(ApiError::validation(
            "name must start with a letter and have at most 64 letters, digits, `_` or `-` (the function name the \
             model calls)",
        ));
    }
    if BUILTIN.iter().any(|b| b.eq_ignore_ascii_case(name)) {
        return Err(ApiError::validation(format!("name: {name} is the name of a built-in tool")));
    }
    Ok(name.to_string())
}

/// A JSON Schema object of the arguments, as the model providers accept it (see the module
/// documentation).
pub(super) fn parameters(schema: Value) -> Result<Value, ApiError> {
    let Some(object) = schema.as_object() else {
        return Err(ApiError::validation(
            "parameters must be a JSON Schema object, e.g. {\"type\": \"object\", \"properties\": {...}}",
        ));
    };
    if object.get("type").and_then(Value::as_str) != Some("object") {
        return Err(ApiError::validation("parameters.type must be \"object\""));
    }
    let size = serde_json::to_vec(&schema).map_err(ApiError::internal)?.len();
    if size > MAX_PARAMETERS_BYTES {
        return Err(ApiError::validation(format!("parameters must be at most {MAX_PARAMETERS_BYTES} bytes as JSON")));
    }
    check_schema("parameters", &schema, 0).map_err(ApiError::validation)?;
    Ok(schema)
}

/// Checks one schema node at `path`, `depth` levels below the top, and the schemas in it; the
/// error names the path.
fn check_schema(path: &str, node: &Value, depth: usize) -> Result<(), String> {
    let Some(object) = node.as_object() else {
        return Err(format!("{path} must be a JSON Schema object"));
    };
    if depth > MAX_SCHEMA_DEPTH {
        return Err(format!("{path}: schemas may be nested at most {MAX_SCHEMA_DEPTH} levels deep"));
    }
    if object.contains_key("$ref") {
        return Err(format!("{path}.$ref: references are not supported; write the schema out in place"));
    }
    if let Some(t) = object.get("type") {
        check_type(&format!("{path}.type"), t)?;
    }
    let properties = match object.get("properties") {
        None => None,
        Some(Value::Object(properties)) => {
            for (name, property) in properties {
                check_schema(&format!("{path}.properties.{name}"), property, depth + 1)?;
            }
            Some(properties)
        }
        Some(_) => return Err(format!("{path}.properties must be an object of JSON Schemas")),
    };
    match object.get("required") {
        None => {}
        Some(Value::Array(names)) => {
            for name in names {
                let Some(name) = name.as_str() else {
                    return Err(format!("{path}.required must be a list of property names"));
                };
                if properties.is_some_and(|p| !p.contains_key(name)) {
                    return Err(format!("{path}.required: {name:?} is not one of the properties"));
                }
            }
        }
        Some(_) => return Err(format!("{path}.required must be a list of property names")),
    }
    match object.get("items") {
        None => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                check_schema(&format!("{path}.items[{i}]"), item, depth + 1)?;
            }
        }
        Some(item) => check_schema(&format!("{path}.items"), item, depth + 1)?,
    }
    for keyword in ["anyOf", "oneOf", "allOf"] {
        match object.get(keyword) {
            None => {}
            Some(Value::Array(list)) if !list.is_empty() => {
                for (i, schema) in list.iter().enumerate() {
                    check_schema(&format!("{path}.{keyword}[{i}]"), schema, depth + 1)?;
                }
            }
            Some(_) => return Err(format!("{path}.{keyword} must be a non-empty list of JSON Schemas")),
        }
    }
    match object.get("additionalProperties") {
        None | Some(Value::Bool(_)) => {}
        Some(schema) => check_schema(&format!("{path}.additionalProperties"), schema, depth + 1)?,
    }
    match object.get("enum") {
        None => {}
        Some(Value::Array(values)) if !values.is_empty() => {}
        Some(_) => return Err(format!("{path}.enum must be a non-empty list of values")),
    }
    match object.get("description") {
        None | Some(Value::String(_)) => Ok(()),
        Some(_) => Err(format!("{path}.description must be a string")),
    }
}

/// A schema's `type`: one of [`SCHEMA_TYPES`], or a non-empty list of them.
fn check_type(path: &str, t: &Value) -> Result<(), String> {
    let known = |v: &Value| v.as_str().is_some_and(|name| SCHEMA_TYPES.contains(&name));
    let valid = match t {
        Value::Array(list) => !list.is_empty() && list.iter().all(known),
        other => known(other),
    };
    if valid {
        return Ok(());
    }
    let unknown = match t {
        Value::Array(list) => list.iter().find(|v| !known(v)),
        other => Some(other),
    };
    match unknown {
        Some(v) => Err(format!("{path}: {v} is not a JSON Schema type (use {})", SCHEMA_TYPES.join(", "))),
        None => Err(format!("{path} must be a JSON Schema type or a non-empty list of them")),
    }
}

/// An absolute http(s) URL (trimmed) without credentials or fragment; unless `allow_private`,
/// not to an IP address [`forbidden_ip`] refuses.
pub(super) fn action_url(raw: &str, allow_private: bool) -> Result<String, ApiError> {
    let s = raw.trim();
    let not_http =
        || ApiError::validation(format!("url must be an absolute http or https URL of at most {MAX_URL} characters"));
    if s.is_empty() || s.len() > MAX_URL {
        return Err(not_http());
    }
    let url = url::Url::parse(s).map_err(|_| not_http())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(not_http());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ApiError::validation("url must not carry credentials (give them as headers, which are sealed)"));
    }
    if url.fragment().is_some() {
        return Err(ApiError::validation("url must not have a fragment"));
    }
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    };
    if !allow_private && ip.is_some_and(forbidden_ip) {
        return Err(ApiError::validation(
            "url must point at a public address, not a loopback, private, link-local or other internal one",
        ));
    }
    Ok(s.to_string())
}

/// An HTTP token character (RFC 9110).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The headers checked (names as given, values trimmed), by name. Errors name the header,
/// never quote its value.
pub(super) fn headers(map: BTreeMap<String, String>) -> Result<Vec<(String, String)>, ApiError> {
    if map.len() > MAX_HEADERS {
        return Err(ApiError::validation(format!("headers must have at most {MAX_HEADERS} entries")));
    }
    let mut seen = HashSet::with_capacity(map.len());
    let mut out = Vec::with_capacity(map.len());
    for (name, value) in map {
        if name.is_empty() || name.len() > 256 || !name.bytes().all(is_tchar) {
            return Err(ApiError::validation(format!("headers.{name}: not a valid header name")));
        }
        let lower = name.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&lower.as_str()) || lower.starts_with("x-chatapp-") {
            return Err(ApiError::validation(format!("headers.{name}: set by the platform, it cannot be given")));
        }
        if !seen.insert(lower) {
            return Err(ApiError::validation(format!(
                "headers.{name}: given twice (header names are case-insensitive)"
            )));
        }
        let value = value.trim();
        if value.is_empty()
            || value.len() > MAX_HEADER_VALUE
            || !value.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
        {
            return Err(ApiError::validation(format!(
                "headers.{name}: the value must be 1-{MAX_HEADER_VALUE} printable ASCII characters"
            )));
        }
        out.push((name, value.to_string()));
    }
    Ok(out)
}

pub(super) fn timeout(ms: i64) -> Result<i32, ApiError> {
    match i32::try_from(ms) {
        Ok(t) if (MIN_TIMEOUT_MS..=MAX_TIMEOUT_MS).contains(&ms) => Ok(t),
        _ => Err(ApiError::validation(format!(
            "timeout_ms must be between {MIN_TIMEOUT_MS} and {MAX_TIMEOUT_MS} (milliseconds)"
        ))),
    }
}

/// Two URLs of the same origin (scheme, host and port).
pub(super) fn same_origin(a: &str, b: &str) -> bool {
    match (url::Url::parse(a), url::Url::parse(b)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pairs(list: &[(&str, &str)]) -> BTreeMap<String, String> {
        list.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    fn message(e: ApiError) -> String {
        e.to_string()
    }

    #[test]
    fn names_are_function_names_and_not_built_ins() {
        assert_eq!(action_name(" lookup_order ").unwrap(), "lookup_order");
        let longest = format!("a{}", "b".repeat(63));
        let too_long = format!("{longest}c");
        assert!(action_name("a").is_ok() && action_name(&longest).is_ok());
        for bad in ["", "1abc", "_x", "with space", "dot.ted", "é", too_long.as_str()] {
            assert!(message(action_name(bad).unwrap_err()).starts_with("name"), "{bad}");
        }
        for builtin in ["search_knowledge", "Rag_Search", "request_human_handover", "END_CONVERSATION"] {
            assert!(message(action_name(builtin).unwrap_err()).contains("built-in"), "{builtin}");
        }
    }

    #[test]
    fn parameters_are_object_schemas() {
        let ok = json!({"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]});
        assert_eq!(parameters(ok.clone()).unwrap(), ok);
        for (bad, field) in [
            (json!([1]), "parameters"),
            (json!({"properties": {}}), "parameters.type"),
            (json!({"type": "string"}), "parameters.type"),
            (json!({"type": "object", "properties": []}), "parameters.properties"),
            (json!({"type": "object", "properties": {"id": "string"}}), "parameters.properties.id"),
            (json!({"type": "object", "required": "id"}), "parameters.required"),
            (json!({"type": "object", "description": "x".repeat(21_000)}), "parameters"),
        ] {
            let e = message(parameters(bad).unwrap_err());
            assert!(e.starts_with(field), "{field}: {e}");
        }
    }

    #[test]
    fn parameters_are_checked_all_the_way_down() {
        let ok = json!({
            "type": "object",
            "description": "An order query",
            "properties": {
                "order_id": {"type": "string", "description": "The order number", "pattern": "^A-[0-9]+$"},
                "quantity": {"type": ["integer", "null"], "minimum": 1},
                "status": {"type": "string", "enum": ["open", "shipped"]},
                "lines": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]}
                },
                "pair": {"type": "array", "items": [{"type": "number"}, {"type": "boolean"}]},
                "when": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "meta": {"type": "object", "additionalProperties": {"type": "string"}},
                "strict": {"type": "object", "additionalProperties": false},
                "anything": {}
            },
            "required": ["order_id"],
            "additionalProperties": false
        });
        assert_eq!(parameters(ok.clone()).unwrap(), ok);
        // Required names without properties are the model's business.
        assert!(parameters(json!({"type": "object", "required": ["x"]})).is_ok());

        let with = |name: &str, schema: Value| json!({"type": "object", "properties": {name: schema}});
        let cases = [
            (
                with("order_id", json!({"type": "strin"})),
                "parameters.properties.order_id.type: \"strin\" is not a JSON Schema type",
            ),
            (with("order_id", json!({"type": 5})), "parameters.properties.order_id.type: 5 is not"),
            (with("q", json!({"type": ["string", "text"]})), "parameters.properties.q.type: \"text\" is not"),
            (with("q", json!({"type": []})), "parameters.properties.q.type must be"),
            (with("q", json!("string")), "parameters.properties.q must be a JSON Schema object"),
            (
                with("q", json!({"type": "object", "properties": {"a": {"type": "object", "properties": 3}}})),
                "parameters.properties.q.properties.a.properties must be",
            ),
            (
                json!({"type": "object", "properties": {"a": {}}, "required": ["a", "b"]}),
                "parameters.required: \"b\" is not one of the properties",
            ),
            (json!({"type": "object", "required": ["a", 1]}), "parameters.required must be"),
            (with("list", json!({"type": "array", "items": "string"})), "parameters.properties.list.items must be"),
            (
                with("list", json!({"type": "array", "items": [{"type": "string"}, {"type": "nope"}]})),
                "parameters.properties.list.items[1].type",
            ),
            (with("s", json!({"type": "string", "enum": []})), "parameters.properties.s.enum must be"),
            (with("s", json!({"type": "string", "enum": "a"})), "parameters.properties.s.enum must be"),
            (with("s", json!({"type": "string", "description": 7})), "parameters.properties.s.description must be"),
            (json!({"type": "object", "description": ["x"]}), "parameters.description must be"),
            (
                with("m", json!({"type": "object", "additionalProperties": "yes"})),
                "parameters.properties.m.additionalProperties must be",
            ),
            (
                with("m", json!({"type": "object", "additionalProperties": {"type": "str"}})),
                "parameters.properties.m.additionalProperties.type",
            ),
            (with("w", json!({"anyOf": []})), "parameters.properties.w.anyOf must be"),
            (with("w", json!({"oneOf": [{"type": "string"}, 1]})), "parameters.properties.w.oneOf[1] must be"),
            (with("r", json!({"$ref": "#/$defs/order"})), "parameters.properties.r.$ref: references are not supported"),
            (json!({"type": "object", "$ref": "#"}), "parameters.$ref"),
        ];
        for (bad, expected) in cases {
            let e = message(parameters(bad.clone()).unwrap_err());
            assert!(e.starts_with(expected), "{bad}: {e}");
        }

        // At most 10 levels below the top.
        let nested = |levels: usize| {
            let mut schema = json!({"type": "string"});
            for _ in 0..levels {
                schema = json!({"type": "object", "properties": {"a": schema}});
            }
            schema
        };
        assert!(parameters(nested(10)).is_ok(), "the top and 10 levels below it");
        let e = message(parameters(nested(11)).unwrap_err());
        assert!(e.contains("at most 10 levels"), "{e}");
        assert!(e.starts_with(&format!("parameters{}", ".properties.a".repeat(11))), "{e}");
    }

    #[test]
    fn urls_are_absolute_http_without_credentials() {
        for allow_private in [false, true] {
            let ok = action_url(" https://api.example.com/orders?x=1 ", allow_private).unwrap();
            assert_eq!(ok, "https://api.example.com/orders?x=1");
            // A name is checked at each call, not here.
            assert!(action_url("http://localhost:8080/hook", allow_private).is_ok());
            for bad in [
                "",
                "/relative",
                "ftp://example.com/x",
                "https://user:pw@example.com/",
                "https://example.com/#frag",
                "mailto:someone@example.com",
            ] {
                assert!(message(action_url(bad, allow_private).unwrap_err()).starts_with("url"), "{bad}");
            }
            assert!(action_url(&format!("https://example.com/{}", "a".repeat(2000)), allow_private).is_err());
        }
        let internal = [
            "http://127.0.0.1:8080/hook",
            "http://10.0.0.1/",
            "http://172.20.1.1/",
            "http://192.168.0.10/",
            "http://100.64.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[fe80::1]/",
            "http://[fd00:ec2::254]/",
            "http://[::1]/",
            "http://[::ffff:169.254.169.254]/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
            "http://255.255.255.255/",
            "http://224.0.0.1/",
            // The URL parser reads these as 127.0.0.1.
            "http://2130706433/",
            "http://0x7f.1/",
        ];
        for url in internal {
            assert!(message(action_url(url, false).unwrap_err()).starts_with("url"), "{url}");
            assert!(action_url(url, true).is_ok(), "{url} is allowed when private addresses are");
        }
        assert!(action_url("http://8.8.8.8/x", false).is_ok());
        assert!(action_url("http://[2606:4700:4700::1111]/x", false).is_ok());
    }

    #[test]
    fn headers_are_tokens_the_platform_does_not_set() {
        let ok = headers(pairs(&[("X-Api-Key", " secret-1 "), ("Authorization", "Bearer t")])).unwrap();
        let expected = vec![
            ("Authorization".to_string(), "Bearer t".to_string()),
            ("X-Api-Key".to_string(), "secret-1".to_string()),
        ];
        assert_eq!(ok, expected);
        for (list, name) in [
            (vec![("Host", "x")], "Host"),
            (vec![("content-length", "1")], "content-length"),
            (vec![("X-Chatapp-Signature", "x")], "X-Chatapp-Signature"),
            (vec![("Bad Name", "x")], "Bad Name"),
            (vec![("X-Key", "line\nbreak")], "X-Key"),
            (vec![("X-Key", "")], "X-Key"),
            (vec![("X-Key", "a"), ("x-key", "b")], "x-key"),
        ] {
            let e = message(headers(pairs(&list)).unwrap_err());
            assert!(e.starts_with(&format!("headers.{name}")), "{e}");
            assert!(!e.contains("line\nbreak"), "values are never quoted");
        }
        let many: Vec<(String, String)> = (0..21).map(|i| (format!("X-H{i}"), "v".to_string())).collect();
        assert!(headers(many.into_iter().collect()).is_err());
    }

    #[test]
    fn timeouts_and_origins() {
        assert_eq!(timeout(100).unwrap(), 100);
        assert_eq!(timeout(10_000).unwrap(), 10_000);
        assert!(timeout(99).is_err() && timeout(10_001).is_err() && timeout(i64::MAX).is_err());
        assert!(same_origin("https://a.test/x", "https://a.test/y?z=1"));
        assert!(!same_origin("https://a.test/x", "https://b.test/x"));
        assert!(!same_origin("https://a.test/x", "http://a.test/x"));
    }
}
