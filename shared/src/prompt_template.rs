//! Prompt templates (seed 000 `ai_prompts`; `chatapp_prompt_templates`, migrations 0003 and
//! 0027): a system prompt with `{{variable}}` placeholders, rendered at each chat turn.
//!
//! A placeholder is `{{ name }}` (spaces inside the braces allowed), the name a lowercase letter
//! then up to 63 of `a-z`, `0-9` and `_`. Four names are built in and filled by the turn
//! ([`BUILTIN_VARIABLES`]); any other name must be declared in the template's variables
//! ([`TemplateVariable`]), with an optional default, and an agent using the template supplies
//! the values (`promptVariables`, checked by [`check_values`]). A template whose content uses a
//! name it does not declare is refused on write ([`check_template`]).
//!
//! [`render`] is one pass over the content: a value that itself contains `{{x}}` is inserted as
//! it is, never expanded again.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// The variables every template may use without declaring them; the chat turn fills them.
pub const BUILTIN_VARIABLES: [&str; 4] = ["company_name", "customer_name", "agent_name", "business_hours"];

/// Characters of a template's content.
pub const MAX_CONTENT_CHARS: usize = 50_000;
/// Variables a template may declare.
pub const MAX_VARIABLES: usize = 50;
/// Characters of a variable's value (an agent's `promptVariables`) or default.
pub const MAX_VALUE_CHARS: usize = 2_000;
/// Characters of a variable's description.
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// Bytes of a variable name.
pub const MAX_NAME_LEN: usize = 64;

/// A variable a template declares.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateVariable {
    /// A lowercase letter then up to 63 of a-z, 0-9 and `_`; not one of the built-in names
    /// (`company_name`, `customer_name`, `agent_name`, `business_hours`).
    pub name: String,
    /// An agent using the template must give a value, unless there is a default.
    #[serde(default)]
    pub required: bool,
    /// What the placeholder renders as when the agent gives no value (at most 2,000 characters).
    #[serde(default)]
    pub default: Option<String>,
    /// What the value is for (at most 500 characters).
    #[serde(default)]
    pub description: Option<String>,
}

/// The built-in values of one turn.
#[derive(Clone, Copy, Debug, Default)]
pub struct Builtins<'a> {
    pub company_name: &'a str,
    /// Renders as "the customer" when unknown.
    pub customer_name: Option<&'a str>,
    pub agent_name: &'a str,
    /// Renders as "" when unknown.
    pub business_hours: Option<&'a str>,
}

/// Whether `name` is one of [`BUILTIN_VARIABLES`].
pub fn is_builtin(name: &str) -> bool {
    BUILTIN_VARIABLES.contains(&name)
}

/// Whether `name` is a valid variable name: `^[a-z][a-z0-9_]{0,63}$`.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_NAME_LEN
        && b[0].is_ascii_lowercase()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

/// One `{{ ... }}` of a content: where it starts and ends (byte offsets, the end past the
/// closing braces) and what is between the braces, trimmed.
struct Placeholder<'a> {
    start: usize,
    end: usize,
    inner: &'a str,
}

/// The next placeholder at or after byte `from`: `Ok(None)` when there is none, `Err(start)`
/// when a `{{` at `start` is never closed.
fn next_placeholder(content: &str, from: usize) -> Result<Option<Placeholder<'_>>, usize> {
    let Some(open) = content[from..].find("{{") else { return Ok(None) };
    let start = from + open;
    let body = start + 2;
    match content[body..].find("}}") {
        None => Err(start),
        Some(close) => {
            let inner = content[body..body + close].trim();
            Ok(Some(Placeholder { start, end: body + close + 2, inner }))
        }
    }
}

/// The 1-based character position of byte offset `at` (for messages).
fn position(content: &str, at: usize) -> usize {
    content[..at].chars().count() + 1
}

/// `text` cut to 40 characters for a message.
fn shown(text: &str) -> String {
    let mut out: String = text.chars().take(40).collect();
    if text.chars().nth(40).is_some() {
        out.push('…');
    }
    out
}

/// The variable names `content` uses, each once, in order of first use. An unterminated `{{`
/// or a placeholder whose name is not valid is an error saying where it is.
pub fn placeholders(content: &str) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = Vec::new();
    let mut from = 0;
    loop {
        match next_placeholder(content, from) {
            Ok(None) => return Ok(names),
            Err(start) => {
                return Err(format!("the `{{{{` at character {} is not closed by `}}}}`", position(content, start)))
            }
            Ok(Some(p)) => {
                if !valid_name(p.inner) {
                    return Err(format!(
                        "`{{{{{}}}}}` at character {}: a variable name is a lowercase letter then up to 63 of \
                         a-z, 0-9 and _",
                        shown(p.inner),
                        position(content, p.start)
                    ));
                }
                if !names.iter().any(|n| n == p.inner) {
                    names.push(p.inner.to_string());
                }
                from = p.end;
            }
        }
    }
}

/// Checks a template as it would be stored: content of 1 to 50,000 characters whose
/// placeholders are all declared or built in; at most 50 variables, each with a valid name
/// that is neither built in nor declared twice, a default and a description of sensible size.
/// The error is the field path (`content`, `variables[2].name`) and what is wrong with it.
pub fn check_template(content: &str, variables: &[TemplateVariable]) -> Result<(), (String, String)> {
    if variables.len() > MAX_VARIABLES {
        return Err(("variables".into(), format!("a template declares at most {MAX_VARIABLES} variables")));
    }
    for (i, v) in variables.iter().enumerate() {
        if !valid_name(&v.name) {
            return Err((
                format!("variables[{i}].name"),
                format!(
                    "`{}` is not a variable name: a lowercase letter then up to 63 of a-z, 0-9 and _",
                    shown(&v.name)
                ),
            ));
        }
        if is_builtin(&v.name) {
            return Err((
                format!("variables[{i}].name"),
                format!("`{}` is built in (the platform fills it at each turn): do not declare it", v.name),
            ));
        }
        if variables[..i].iter().any(|earlier| earlier.name == v.name) {
            return Err((format!("variables[{i}].name"), format!("`{}` is declared twice", v.name)));
        }
        if v.default.as_deref().is_some_and(|d| d.chars().count() > MAX_VALUE_CHARS) {
            return Err((format!("variables[{i}].default"), format!("must be at most {MAX_VALUE_CHARS} characters")));
        }
        if v.description.as_deref().is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_CHARS) {
            return Err((
                format!("variables[{i}].description"),
                format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
            ));
        }
    }
    if content.trim().is_empty() {
        return Err(("content".into(), "must not be empty".into()));
    }
    if content.chars().count() > MAX_CONTENT_CHARS {
        return Err(("content".into(), format!("must be at most {MAX_CONTENT_CHARS} characters")));
    }
    for name in placeholders(content).map_err(|e| ("content".to_string(), e))? {
        if !is_builtin(&name) && !variables.iter().any(|v| v.name == name) {
            return Err((
                "content".into(),
                format!(
                    "`{{{{{name}}}}}` is not a declared variable (declare it in variables, or use a built-in one: {})",
                    BUILTIN_VARIABLES.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Checks the values an agent gives a template's variables (its `promptVariables`): each key
/// a declared variable (not a built-in one), each value a string of at most 2,000 characters,
/// and every required variable without a default given. The error is the field path
/// (`promptVariables.<name>`) and what is wrong with it.
pub fn check_values(variables: &[TemplateVariable], values: &Map<String, Value>) -> Result<(), (String, String)> {
    for (key, value) in values {
        let field = format!("promptVariables.{}", shown(key));
        if is_builtin(key) {
            return Err((field, "is built in: the platform fills it at each turn".into()));
        }
        if !variables.iter().any(|v| &v.name == key) {
            return Err((field, "is not a variable of the template".into()));
        }
        match value {
            Value::String(s) if s.chars().count() > MAX_VALUE_CHARS => {
                return Err((field, format!("must be at most {MAX_VALUE_CHARS} characters")));
            }
            Value::String(_) => {}
            _ => return Err((field, "must be a string".into())),
        }
    }
    for v in variables {
        // A built-in name declared by a row written before the checks (the turn fills it).
        if !v.required || v.default.is_some() || is_builtin(&v.name) {
            continue;
        }
        let given = values.get(&v.name).and_then(Value::as_str).is_some_and(|s| !s.trim().is_empty());
        if !given {
            return Err((format!("promptVariables.{}", v.name), "is required by the template".into()));
        }
    }
    Ok(())
}

/// `content` with every placeholder replaced, in one pass: a built-in name by the turn's value
/// (an unknown customer is "the customer", unknown business hours ""), a declared variable by
/// the agent's value, else its default, else "". Text that is not a valid placeholder (only in
/// a row that was never checked) is kept as it is.
pub fn render(
    content: &str,
    variables: &[TemplateVariable],
    values: &Map<String, Value>,
    builtins: &Builtins,
) -> String {
    let mut out = String::with_capacity(content.len() + content.len() / 4);
    let mut from = 0;
    while let Ok(Some(p)) = next_placeholder(content, from) {
        out.push_str(&content[from..p.start]);
        if valid_name(p.inner) {
            out.push_str(value_of(p.inner, variables, values, builtins));
        } else {
            out.push_str(&content[p.start..p.end]);
        }
        from = p.end;
    }
    out.push_str(&content[from..]);
    out
}

/// What placeholder `name` renders as.
fn value_of<'v>(
    name: &str,
    variables: &'v [TemplateVariable],
    values: &'v Map<String, Value>,
    builtins: &'v Builtins,
) -> &'v str {
    match name {
        "company_name" => builtins.company_name,
        "customer_name" => builtins.customer_name.unwrap_or("the customer"),
        "agent_name" => builtins.agent_name,
        "business_hours" => builtins.business_hours.unwrap_or(""),
        _ => match values.get(name).and_then(Value::as_str) {
            Some(given) => given,
            None => variables.iter().find(|v| v.name == name).and_then(|v| v.default.as_deref()).unwrap_or(""),
        },
    }
}

/// The variables as stored (a JSON array), read leniently: an element without a string `name`
/// is skipped, other fields of the wrong type are taken as absent.
pub fn variables_from_json(stored: &Value) -> Vec<TemplateVariable> {
    let Some(items) = stored.as_array() else { return Vec::new() };
    items
        .iter()
        .filter_map(|item| {
            let name = item.get("name")?.as_str()?;
            Some(TemplateVariable {
                name: name.to_string(),
                required: item.get("required").and_then(Value::as_bool).unwrap_or(false),
                default: item.get("default").and_then(Value::as_str).map(str::to_string),
                description: item.get("description").and_then(Value::as_str).map(str::to_string),
            })
        })
        .collect()
}

/// The variables as they are stored (a JSON array).
pub fn variables_to_json(variables: &[TemplateVariable]) -> Value {
    Value::Array(
        variables
            .iter()
            .map(|v| {
                serde_json::json!({
                    "name": v.name, "required": v.required, "default": v.default, "description": v.description
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn var(name: &str, required: bool, default: Option<&str>) -> TemplateVariable {
        TemplateVariable { name: name.into(), required, default: default.map(str::to_string), description: None }
    }

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    const BUILTINS: Builtins<'static> = Builtins {
        company_name: "Acme",
        customer_name: Some("Dana"),
        agent_name: "Robin",
        business_hours: Some("9-17 CET"),
    };

    #[test]
    fn placeholders_are_found_once_each_in_order_with_spaces_allowed() {
        let names = placeholders("Hi {{customer_name}}, {{ tone }} and {{tone}}; {{\tplan_2 \n}} at {{company_name}}.");
        assert_eq!(names.unwrap(), ["customer_name", "tone", "plan_2", "company_name"]);
        assert_eq!(placeholders("no placeholders { here } or {single}").unwrap(), Vec::<String>::new());
        assert_eq!(placeholders("").unwrap(), Vec::<String>::new());
        assert_eq!(placeholders("{{a}}}").unwrap(), ["a"], "a stray closing brace is text");
    }

    #[test]
    fn bad_placeholders_say_where_they_are() {
        let e = placeholders("Hello {{name}} and {{oops").unwrap_err();
        assert!(e.contains("character 20") && e.contains("not closed"), "{e}");
        for (content, at) in [
            ("{{}}", "character 1"),
            ("ab {{ Name }}", "character 4"),
            ("é {{1abc}}", "character 3"),
            ("{{a-b}}", "character 1"),
            ("{{a b}}", "character 1"),
            ("{{{x}}}", "character 1"),
        ] {
            let e = placeholders(content).unwrap_err();
            assert!(e.contains(at) && e.contains("variable name"), "{content}: {e}");
        }
        let long = format!("{{{{{}}}}}", "a".repeat(65));
        assert!(placeholders(&long).is_err(), "a name of 65 characters");
        let longest = format!("{{{{{}}}}}", "a".repeat(64));
        assert_eq!(placeholders(&longest).unwrap().len(), 1, "a name of 64 characters");
    }

    #[test]
    fn a_template_uses_only_declared_or_builtin_variables() {
        let vars = [var("tone", false, Some("friendly")), var("product", true, None)];
        assert_eq!(check_template("{{company_name}} {{agent_name}} {{tone}} {{product}}", &vars), Ok(()));
        assert_eq!(check_template("Unused variables are fine: {{customer_name}}", &vars), Ok(()));
        let (field, message) = check_template("Hi {{foo}}", &vars).unwrap_err();
        assert_eq!(field, "content");
        assert!(message.contains("`{{foo}}` is not a declared variable"), "{message}");
        let (field, message) = check_template("Hi {{foo", &vars).unwrap_err();
        assert_eq!(field, "content");
        assert!(message.contains("character 4"), "{message}");
        assert_eq!(check_template("   ", &[]).unwrap_err().0, "content");
        assert_eq!(check_template(&"x".repeat(MAX_CONTENT_CHARS), &[]), Ok(()));
        assert_eq!(check_template(&"x".repeat(MAX_CONTENT_CHARS + 1), &[]).unwrap_err().0, "content");
    }

    #[test]
    fn declared_variables_are_valid_unique_and_not_builtin() {
        let content = "{{a}}";
        let long_default = "d".repeat(MAX_VALUE_CHARS + 1);
        let cases = [
            (vec![var("a", false, None), var("a", true, None)], "variables[1].name", "declared twice"),
            (vec![var("a", false, None), var("Bad", false, None)], "variables[1].name", "not a variable name"),
            (vec![var("", false, None)], "variables[0].name", "not a variable name"),
            (vec![var("a", false, None), var("agent_name", false, None)], "variables[1].name", "built in"),
            (vec![var("a", false, Some(long_default.as_str()))], "variables[0].default", "at most"),
        ];
        for (vars, field, says) in cases {
            let (f, m) = check_template(content, &vars).unwrap_err();
            assert_eq!(f, field, "{m}");
            assert!(m.contains(says), "{field}: {m}");
        }
        let mut described = var("a", false, None);
        described.description = Some("x".repeat(MAX_DESCRIPTION_CHARS + 1));
        assert_eq!(check_template(content, &[described]).unwrap_err().0, "variables[0].description");
        let many: Vec<_> = (0..=MAX_VARIABLES).map(|i| var(&format!("v{i}"), false, None)).collect();
        assert_eq!(check_template("x", &many).unwrap_err().0, "variables");
    }

    #[test]
    fn variables_deserialise_strictly() {
        let v: TemplateVariable = serde_json::from_value(json!({"name": "tone"})).unwrap();
        assert_eq!(v, var("tone", false, None));
        assert!(serde_json::from_value::<TemplateVariable>(json!({"name": "tone", "type": "text"})).is_err());
    }

    #[test]
    fn values_are_declared_strings_and_required_ones_are_given() {
        let vars = [var("tone", false, Some("friendly")), var("product", true, None), var("region", true, Some("EU"))];
        assert_eq!(check_values(&vars, &map(json!({"product": "Widgets"}))), Ok(()));
        assert_eq!(check_values(&vars, &map(json!({"product": "W", "tone": "dry", "region": "US"}))), Ok(()));
        let cases = [
            (json!({"product": "W", "colour": "red"}), "promptVariables.colour", "is not a variable of the template"),
            (json!({"product": "W", "company_name": "X"}), "promptVariables.company_name", "built in"),
            (json!({"product": 3}), "promptVariables.product", "must be a string"),
            (json!({"product": "W", "tone": null}), "promptVariables.tone", "must be a string"),
            (json!({"product": "x".repeat(MAX_VALUE_CHARS + 1)}), "promptVariables.product", "at most"),
            (json!({}), "promptVariables.product", "required"),
            (json!({"product": "  "}), "promptVariables.product", "required"),
        ];
        for (values, field, says) in cases {
            let (f, m) = check_values(&vars, &map(values.clone())).unwrap_err();
            assert_eq!(f, field, "{values}: {m}");
            assert!(m.contains(says), "{values}: {m}");
        }
        // A built-in name declared by an old row is filled by the turn, never required.
        assert_eq!(check_values(&[var("company_name", true, None)], &Map::new()), Ok(()));
    }

    #[test]
    fn render_fills_builtins_values_and_defaults() {
        let vars = [var("tone", false, Some("friendly")), var("product", true, None), var("extra", false, None)];
        let content = "You are {{agent_name}} of {{ company_name }}, helping {{customer_name}} with {{product}}. \
                       Be {{tone}}.{{extra}} Hours: {{business_hours}}.";
        let out = render(content, &vars, &map(json!({"product": "Widgets"})), &BUILTINS);
        assert_eq!(out, "You are Robin of Acme, helping Dana with Widgets. Be friendly. Hours: 9-17 CET.");
        let out = render(content, &vars, &map(json!({"product": "W", "tone": "terse"})), &BUILTINS);
        assert!(out.contains("Be terse."), "{out}");
        let unknown = Builtins { customer_name: None, business_hours: None, ..BUILTINS };
        let out = render("Help {{customer_name}}. Hours: {{business_hours}}.", &[], &Map::new(), &unknown);
        assert_eq!(out, "Help the customer. Hours: .");
    }

    #[test]
    fn render_is_a_single_pass() {
        let vars = [var("product", false, None)];
        let values = map(json!({"product": "{{company_name}} {{product}}"}));
        let out = render("About {{product}} at {{company_name}}", &vars, &values, &BUILTINS);
        assert_eq!(out, "About {{company_name}} {{product}} at Acme");
        let evil = Builtins { customer_name: Some("{{agent_name}}"), ..BUILTINS };
        assert_eq!(render("Hi {{customer_name}}", &[], &Map::new(), &evil), "Hi {{agent_name}}");
    }

    #[test]
    fn render_keeps_what_is_not_a_placeholder() {
        let out = render("é {{ Not Valid }} {{agent_name}} {{unclosed", &[], &Map::new(), &BUILTINS);
        assert_eq!(out, "é {{ Not Valid }} Robin {{unclosed");
        assert_eq!(render("", &[], &Map::new(), &BUILTINS), "");
        assert_eq!(render("{{agent_name}}{{agent_name}}", &[], &Map::new(), &BUILTINS), "RobinRobin");
    }

    #[test]
    fn stored_variables_round_trip_and_read_leniently() {
        let vars = [var("tone", false, Some("friendly")), var("product", true, None)];
        assert_eq!(variables_from_json(&variables_to_json(&vars)), vars);
        let stored =
            json!([{"name": "company_name", "required": true}, {"required": true}, {"name": "x", "default": 3}]);
        assert_eq!(variables_from_json(&stored), [var("company_name", true, None), var("x", false, None)]);
        assert_eq!(variables_from_json(&json!(null)), Vec::<TemplateVariable>::new());
    }
}
