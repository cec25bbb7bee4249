//! Prompt templates through the `prompt-templates` function: the master admin's CRUD with
//! content and variables checked together (400 naming the field path, nothing stored), company
//! admins reading the active templates only and never their content (the prompt agents hide
//! from them), the render preview (the master admin's only; values checked as an agent's
//! `promptVariables`, one pass), agents that use a template kept consistent with it, the
//! template rendered into the system prompt at each turn, and the audit trail.

use chatapp_functions::http_function::HttpFunction::{Agents, PromptTemplates};
use chatapp_tests::model_server::{model_requests, model_server, openai_answer, Provider};
use chatapp_tests::widget::{say, session, widget_agent};
use chatapp_tests::{assert_error, Req, Resp, TestEnv};
use http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

async fn call(env: &TestEnv, token: &str, req: Req) -> Resp {
    env.send(PromptTemplates, req.token(token)).await
}

fn id_of(r: &Resp) -> String {
    r.body["id"].as_str().unwrap_or_else(|| panic!("no id in {}", r.body)).to_string()
}

fn message(r: &Resp) -> String {
    r.body["error"]["message"].as_str().unwrap_or("").to_string()
}

fn slugs(r: &Resp) -> Vec<String> {
    r.body["items"].as_array().unwrap().iter().map(|m| m["slug"].as_str().unwrap().to_string()).collect()
}

/// Whether a template as answered has a `content` key (the master admin's alone to see).
fn has_content(template: &Value) -> bool {
    template.as_object().unwrap_or_else(|| panic!("not a template: {template}")).contains_key("content")
}

const CONTENT: &str = "You are {{agent_name}} of {{company_name}}. Help {{ customer_name }} with {{product}} \
                       in a {{tone}} tone. Hours: {{business_hours}}.";

/// A template body with every field.
fn greeting() -> Value {
    json!({
        "slug": "support-greeting", "name": "Support greeting", "description": "The default support persona",
        "content": CONTENT,
        "variables": [
            {"name": "product", "required": true, "description": "What the company sells"},
            {"name": "tone", "default": "friendly"}
        ]
    })
}

async fn create(env: &TestEnv, master: &str, body: Value) -> String {
    let r = call(env, master, Req::post("/admin/prompt-templates").json(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    id_of(&r)
}

async fn model_id(env: &TestEnv, slug: &str) -> Uuid {
    env.owner()
        .await
        .query_one("SELECT id FROM chatapp_ai_models WHERE slug = $1", &[&slug])
        .await
        .unwrap_or_else(|e| panic!("seeded model {slug}: {e}"))
        .get(0)
}

#[tokio::test]
async fn the_master_admin_manages_the_templates() {
    let env = TestEnv::new().await;
    let master = env.master_token().await;

    let r = call(&env, &master, Req::post("/admin/prompt-templates").json(greeting())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["slug"], "support-greeting");
    assert_eq!(r.body["content"], CONTENT);
    assert_eq!(r.body["version"], 1);
    assert_eq!(r.body["is_active"], true);
    assert_eq!(r.body["model_id"], Value::Null);
    assert_eq!(
        r.body["variables"],
        json!([
            {"name": "product", "required": true, "default": null, "description": "What the company sells"},
            {"name": "tone", "required": false, "default": "friendly", "description": null}
        ])
    );
    let id = id_of(&r);
    let one = format!("/admin/prompt-templates/{id}");
    assert_eq!(env.audit_count("prompt_template.create").await, 1);

    // The same slug twice is a conflict.
    let r = call(&env, &master, Req::post("/admin/prompt-templates").json(greeting())).await;
    assert_error!(r, StatusCode::CONFLICT, "slug_taken");

    let got = call(&env, &master, Req::get(&one)).await;
    assert_eq!((got.status, got.body["name"].clone()), (StatusCode::OK, json!("Support greeting")), "{}", got.body);
    let listed = call(&env, &master, Req::get("/admin/prompt-templates?active=true")).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert!(slugs(&listed).contains(&"support-greeting".to_string()), "{}", listed.body);

    // A change of name keeps the version; a change of content counts one.
    let r = call(&env, &master, Req::patch(&one).json(json!({"name": "Greeting (EU)", "description": null}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["name"].clone(), r.body["description"].clone()), (json!("Greeting (EU)"), Value::Null));
    assert_eq!((r.body["version"].clone(), r.body["content"].clone()), (json!(1), json!(CONTENT)));
    let r = call(&env, &master, Req::patch(&one).json(json!({"content": "Sell {{product}}, {{ tone }}."}))).await;
    assert_eq!((r.status, r.body["version"].clone()), (StatusCode::OK, json!(2)), "{}", r.body);
    assert_eq!(env.audit_count("prompt_template.update").await, 2);
    let audit: Value = env
        .owner()
        .await
        .query_one(
            "SELECT details FROM chatapp_audit_logs WHERE action = 'prompt_template.update' ORDER BY created_at DESC
             LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!((audit["before"]["version"].clone(), audit["after"]["version"].clone()), (json!(1), json!(2)));
    assert_eq!(audit["after"]["content"], "Sell {{product}}, {{ tone }}.");

    // Content and variables are checked together, whichever of them changes; a refused change
    // stores nothing.
    let r = call(&env, &master, Req::patch(&one).json(json!({"content": "Sell {{product}} to {{region}}."}))).await;
    assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
    assert!(message(&r).starts_with("content: `{{region}}` is not a declared variable"), "{}", r.body);
    let r = call(&env, &master, Req::patch(&one).json(json!({"variables": [{"name": "tone"}]}))).await;
    assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
    assert!(message(&r).contains("content: `{{product}}`"), "{}", r.body);
    let both = json!({"content": "Sell {{product}} to {{region}}.",
                      "variables": [{"name": "product"}, {"name": "region", "default": "Europe"}]});
    let r = call(&env, &master, Req::patch(&one).json(both)).await;
    assert_eq!((r.status, r.body["version"].clone()), (StatusCode::OK, json!(3)), "{}", r.body);
    assert_eq!(env.audit_count("prompt_template.update").await, 3);

    // The model it is written for: one of the catalog, or none.
    let mini = model_id(&env, "gpt-4o-mini").await;
    let r = call(&env, &master, Req::patch(&one).json(json!({"model_id": Uuid::new_v4()}))).await;
    assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
    assert!(message(&r).contains("model_id"), "{}", r.body);
    let r = call(&env, &master, Req::patch(&one).json(json!({"model_id": mini}))).await;
    assert_eq!((r.status, r.body["model_id"].clone()), (StatusCode::OK, json!(mini)), "{}", r.body);
    assert_eq!(r.body["version"], 3, "not a change of the text");
    let r = call(&env, &master, Req::patch(&one).json(json!({"model_id": null}))).await;
    assert_eq!((r.status, r.body["model_id"].clone()), (StatusCode::OK, Value::Null), "{}", r.body);

    // Renaming onto another template's slug is a conflict and changes nothing.
    let mut other = greeting();
    other["slug"] = json!("other-greeting");
    create(&env, &master, other).await;
    let r = call(&env, &master, Req::patch(&one).json(json!({"slug": "other-greeting"}))).await;
    assert_error!(r, StatusCode::CONFLICT, "slug_taken");
    assert_eq!(env.audit_count("prompt_template.update").await, 5);

    let r = call(&env, &master, Req::delete(&one)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(call(&env, &master, Req::get(&one)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(call(&env, &master, Req::delete(&one)).await.status, StatusCode::NOT_FOUND);
    let unknown = format!("/admin/prompt-templates/{}", Uuid::new_v4());
    assert_eq!(
        call(&env, &master, Req::patch(&unknown).json(json!({"name": "x"}))).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(env.audit_count("prompt_template.delete").await, 1);
}

#[tokio::test]
async fn invalid_templates_answer_400_naming_the_field_and_store_nothing() {
    let env = TestEnv::new().await;
    let master = env.master_token().await;
    let with = |field: &str, value: Value| {
        let mut body = greeting();
        body[field] = value;
        body
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        ("an undeclared variable in the content", with("content", json!("Hello {{foo}}")), "content: `{{foo}}`"),
        (
            "a variable declared twice",
            with("variables", json!([{"name": "product"}, {"name": "product"}, {"name": "tone"}])),
            "variables[1].name",
        ),
        (
            "a built-in variable declared",
            with("variables", json!([{"name": "product"}, {"name": "company_name"}, {"name": "tone"}])),
            "variables[1].name",
        ),
        ("a bad variable name", with("variables", json!([{"name": "Product"}])), "variables[0].name"),
        ("an unterminated placeholder", with("content", json!("Sell {{product")), "content"),
        ("a bad placeholder name", with("content", json!("Sell {{ Product }}")), "content"),
        ("empty content", with("content", json!("  ")), "content"),
        ("content too long", with("content", json!("x".repeat(50_001))), "content"),
        ("a default that is not text", with("variables", json!([{"name": "tone", "default": 3}])), "variables[0]"),
        ("an unknown variable field", with("variables", json!([{"name": "tone", "type": "text"}])), "type"),
        ("capital letters in the slug", with("slug", json!("Support Greeting")), "slug"),
        ("an empty name", with("name", json!("   ")), "name"),
        ("an unknown model", with("model_id", json!(Uuid::new_v4())), "model_id"),
        ("an unknown field", with("temperature", json!(0.2)), "temperature"),
    ];
    let count_before = env.count("chatapp_prompt_templates").await;
    for (name, body, field) in cases {
        let r = call(&env, &master, Req::post("/admin/prompt-templates").json(body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name}: {}", r.body);
        assert_eq!(r.code(), "validation_failed", "{name}: {}", r.body);
        assert!(message(&r).contains(field), "{name}: the message should name {field}: {}", r.body);
    }
    assert_eq!(env.count("chatapp_prompt_templates").await, count_before);
    assert_eq!(env.audit_count("prompt_template.create").await, 0);
}

#[tokio::test]
async fn company_admins_read_the_active_templates_and_change_nothing() {
    let env = TestEnv::new().await;
    let master = env.master_token().await;
    let t = env.company("acme", "starter").await;
    let admin = t.admin_token.as_str();
    let active = create(&env, &master, greeting()).await;
    let mut retired = greeting();
    retired["slug"] = json!("retired-greeting");
    retired["is_active"] = json!(false);
    let retired = create(&env, &master, retired).await;
    let count_before = env.count("chatapp_prompt_templates").await;

    // Writes are the master admin's.
    let writes = [
        ("create", Req::post("/admin/prompt-templates").json(json!({"slug": "x", "name": "x", "content": "x"}))),
        ("update", Req::patch(&format!("/admin/prompt-templates/{active}")).json(json!({"name": "Mine"}))),
        ("delete", Req::delete(&format!("/admin/prompt-templates/{active}"))),
    ];
    for (name, req) in writes {
        let r = call(&env, admin, req).await;
        assert_error!(r, StatusCode::FORBIDDEN, "master_only");
        assert!(message(&r).contains("master admin"), "{name}: {}", r.body);
    }
    assert_eq!(env.count("chatapp_prompt_templates").await, count_before);
    let r = call(&env, &master, Req::get(&format!("/admin/prompt-templates/{active}"))).await;
    assert_eq!(r.body["name"], "Support greeting", "unchanged");

    // Reads: the active templates only, whatever the filter asks, and never their content.
    let all = call(&env, admin, Req::get("/admin/prompt-templates?limit=100")).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    let items = all.body["items"].as_array().unwrap();
    assert!(items.iter().all(|m| m["is_active"] == true), "{}", all.body);
    assert!(items.iter().all(|m| !has_content(m)), "no content for a company admin: {}", all.body);
    assert!(slugs(&all).contains(&"support-greeting".to_string()));
    assert!(!slugs(&all).contains(&"retired-greeting".to_string()));
    assert_eq!(all.body["total"], json!(count_before - 1));
    let inactive = call(&env, admin, Req::get("/admin/prompt-templates?active=false")).await;
    assert_eq!(inactive.body["total"], 0, "{}", inactive.body);
    let one = call(&env, admin, Req::get(&format!("/admin/prompt-templates/{active}"))).await;
    assert_eq!((one.status, one.body["slug"].clone()), (StatusCode::OK, json!("support-greeting")));
    assert!(!has_content(&one.body), "no content for a company admin: {}", one.body);
    // What an admin needs to fill an agent's `prompt_variables` stays visible.
    assert_eq!(one.body["name"], "Support greeting");
    assert_eq!(one.body["description"], "The default support persona");
    assert_eq!((one.body["version"].clone(), one.body["is_active"].clone()), (json!(1), json!(true)));
    assert_eq!(
        one.body["variables"],
        json!([
            {"name": "product", "required": true, "default": null, "description": "What the company sells"},
            {"name": "tone", "required": false, "default": "friendly", "description": null}
        ])
    );
    let r = call(&env, admin, Req::get(&format!("/admin/prompt-templates/{retired}"))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);

    // The render preview shows the content: the master admin's only, whichever template.
    for id in [&active, &retired] {
        let render = format!("/admin/prompt-templates/{id}/render");
        let r = call(&env, admin, Req::post(&render).json(json!({"variables": {"product": "W"}}))).await;
        assert_error!(r, StatusCode::FORBIDDEN, "master_only");
        assert!(!r.body.to_string().contains("You are"), "{}", r.body);
    }

    // The master admin sees the retired one, and the content of every template.
    let inactive = call(&env, &master, Req::get("/admin/prompt-templates?active=false")).await;
    assert_eq!(slugs(&inactive), ["retired-greeting"], "{}", inactive.body);
    assert!(inactive.body["items"].as_array().unwrap().iter().all(has_content), "{}", inactive.body);
    let r = call(&env, &master, Req::get(&format!("/admin/prompt-templates/{retired}"))).await;
    assert_eq!((r.status, r.body["content"].clone()), (StatusCode::OK, json!(CONTENT)), "{}", r.body);
    let r = call(&env, &master, Req::get(&format!("/admin/prompt-templates/{active}"))).await;
    assert_eq!((r.status, r.body["content"].clone()), (StatusCode::OK, json!(CONTENT)), "{}", r.body);
    let all = call(&env, &master, Req::get("/admin/prompt-templates?limit=100")).await;
    assert!(all.body["items"].as_array().unwrap().iter().all(has_content), "{}", all.body);

    // A support agent has no business with the catalog.
    let (_, sa) = env.member(&t, "sa@acme.test", "support_agent", json!({})).await;
    assert_eq!(call(&env, &sa, Req::get("/admin/prompt-templates")).await.status, StatusCode::FORBIDDEN);
    let r = call(&env, admin, Req::get("/admin/prompt-templates?active=maybe")).await;
    assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
    let writes = env.audit_count("prompt_template.update").await + env.audit_count("prompt_template.delete").await;
    assert_eq!(writes, 0);
}

#[tokio::test]
async fn the_render_preview_fills_the_template_in_one_pass() {
    let env = TestEnv::new().await;
    let master = env.master_token().await;
    let t = env.company("acme", "starter").await;
    let admin = t.admin_token.as_str();
    let id = create(&env, &master, greeting()).await;
    let render = format!("/admin/prompt-templates/{id}/render");

    let sample = json!({"company_name": "Acme", "agent_name": "Robin", "customer_name": "Dana",
                        "business_hours": "9-17 CET"});
    let body = json!({"variables": {"product": "Widgets"}, "sample": sample});
    // It shows the content, which agents hide from company admins: the master admin's only.
    let r = call(&env, admin, Req::post(&render).json(body.clone())).await;
    assert_error!(r, StatusCode::FORBIDDEN, "master_only");
    let r = call(&env, &master, Req::post(&render).json(body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["rendered"],
        "You are Robin of Acme. Help Dana with Widgets in a friendly tone. Hours: 9-17 CET."
    );
    assert_eq!(r.body["version"], 1);

    // Without samples: markers for the company and agent, the turn's fallbacks for the rest.
    let r = call(&env, &master, Req::post(&render).json(json!({"variables": {"product": "W", "tone": "calm"}}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["rendered"],
        "You are [agent_name] of [company_name]. Help the customer with W in a calm tone. Hours: ."
    );

    // A value holding a placeholder is inserted as it is.
    let r = call(&env, &master, Req::post(&render).json(json!({"variables": {"product": "{{company_name}}"}}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["rendered"].as_str().unwrap().contains("with {{company_name}} in"), "{}", r.body);

    // The values are checked as an agent's are.
    let cases = [
        (json!({}), "variables.product"),
        (json!({"product": "  "}), "variables.product"),
        (json!({"product": "W", "colour": "red"}), "variables.colour: is not a variable of the template"),
        (json!({"product": 7}), "variables.product: must be a string"),
        (json!({"product": "W", "company_name": "X"}), "variables.company_name"),
        (json!({"product": "x".repeat(2_001)}), "variables.product"),
    ];
    for (values, field) in cases {
        let r = call(&env, &master, Req::post(&render).json(json!({"variables": values.clone()}))).await;
        assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
        assert!(message(&r).contains(field), "{values}: {}", r.body);
    }
    let r = call(&env, &master, Req::post(&render)).await;
    assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
    let r = call(&env, &master, Req::post(&render).json(json!({"variables": {"product": "W"}, "sample": {"x": "y"}})))
        .await;
    assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");

    // A template with nothing required renders from an empty body.
    let plain = json!({"slug": "plain", "name": "Plain", "content": "I am {{agent_name}}, {{ mood }}.",
                       "variables": [{"name": "mood", "default": "glad to help"}]});
    let plain = create(&env, &master, plain).await;
    let r = call(&env, &master, Req::post(&format!("/admin/prompt-templates/{plain}/render"))).await;
    assert_eq!((r.status, r.body["rendered"].clone()), (StatusCode::OK, json!("I am [agent_name], glad to help.")));
    let r = call(&env, admin, Req::post(&format!("/admin/prompt-templates/{plain}/render"))).await;
    assert_error!(r, StatusCode::FORBIDDEN, "master_only");
    assert_eq!(
        call(&env, &master, Req::post(&format!("/admin/prompt-templates/{}/render", Uuid::new_v4()))).await.status,
        StatusCode::NOT_FOUND
    );
    // A preview changes nothing.
    assert_eq!(env.count("chatapp_audit_logs WHERE action LIKE 'prompt_template.%'").await, 2);
}

#[tokio::test]
async fn agents_using_a_template_keep_it_consistent() {
    let env = TestEnv::new().await;
    let master = env.master_token().await;
    let t = env.company("acme", "starter").await;
    let id = create(&env, &master, greeting()).await;
    let one = format!("/admin/prompt-templates/{id}");
    let template: Uuid = id.parse().unwrap();
    let owner = env.owner().await;
    let agent: Uuid = owner
        .query_one(
            "INSERT INTO chatapp_agents (company_id, name, status, prompt_template_id, prompt_variables)
             VALUES ($1, 'Ada', 'active', $2, '{\"product\": \"Widgets\", \"tone\": \"calm\"}') RETURNING id",
            &[&t.company_id, &template],
        )
        .await
        .unwrap()
        .get(0);

    // In use: not deleted.
    let r = call(&env, &master, Req::delete(&one)).await;
    assert_error!(r, StatusCode::CONFLICT, "template_in_use");
    assert!(message(&r).contains("is_active"), "{}", r.body);

    // A variable the agent gives a value for is not dropped.
    let drop_tone = json!({"content": "Sell {{product}}.", "variables": [{"name": "product", "required": true}]});
    let r = call(&env, &master, Req::patch(&one).json(drop_tone)).await;
    assert_error!(r, StatusCode::CONFLICT, "variable_in_use");
    assert!(message(&r).contains("`tone`"), "{}", r.body);

    // A new required variable without a default the agent does not give is refused; with a
    // default it is fine.
    let mut variables = greeting()["variables"].clone();
    variables.as_array_mut().unwrap().push(json!({"name": "region", "required": true}));
    let content = format!("{CONTENT} Region: {{{{region}}}}.");
    let body = json!({"content": content.clone(), "variables": variables.clone()});
    let r = call(&env, &master, Req::patch(&one).json(body)).await;
    assert_error!(r, StatusCode::CONFLICT, "variable_required");
    assert!(message(&r).contains("`region`"), "{}", r.body);
    variables[2]["default"] = json!("Europe");
    let r = call(&env, &master, Req::patch(&one).json(json!({"content": content, "variables": variables}))).await;
    assert_eq!((r.status, r.body["version"].clone()), (StatusCode::OK, json!(2)), "{}", r.body);
    assert_eq!(env.audit_count("prompt_template.update").await, 1, "only the accepted change");

    // Retired, it stays named by the agent (which falls back to its own system prompt).
    let r = call(&env, &master, Req::patch(&one).json(json!({"is_active": false}))).await;
    assert_eq!((r.status, r.body["is_active"].clone()), (StatusCode::OK, json!(false)), "{}", r.body);
    let named: Option<Uuid> =
        owner.query_one("SELECT prompt_template_id FROM chatapp_agents WHERE id = $1", &[&agent]).await.unwrap().get(0);
    assert_eq!(named, Some(template));

    // A published configuration that names the template uses it too (what customers are served
    // while the row is a draft).
    owner.execute("UPDATE chatapp_agents SET deleted_at = now() WHERE id = $1", &[&agent]).await.unwrap();
    let published: Uuid = owner
        .query_one(
            "INSERT INTO chatapp_agents (company_id, name, status, published_config)
             VALUES ($1, 'Bo', 'active',
                     jsonb_build_object('promptTemplateId', $2::uuid::text, 'promptVariables', '{}'::jsonb))
             RETURNING id",
            &[&t.company_id, &template],
        )
        .await
        .unwrap()
        .get(0);
    let r = call(&env, &master, Req::delete(&one)).await;
    assert_error!(r, StatusCode::CONFLICT, "template_in_use");
    let drop_region = json!({"content": CONTENT, "variables": greeting()["variables"].clone()});
    let r = call(&env, &master, Req::patch(&one).json(drop_region)).await;
    assert_eq!(r.status, StatusCode::OK, "nothing gives `region` a value: {}", r.body);
    let r =
        call(&env, &master, Req::patch(&one).json(json!({"variables": [{"name": "product"}, {"name": "tone"}]}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = call(
        &env,
        &master,
        Req::patch(&one).json(json!({"variables": [{"name": "product", "required": true}, {"name": "tone"}]})),
    )
    .await;
    assert_error!(r, StatusCode::CONFLICT, "variable_required");

    // Deleted agents do not keep a template: deleting it clears the reference a deleted agent's
    // row still holds.
    owner.execute("UPDATE chatapp_agents SET deleted_at = now() WHERE id = $1", &[&published]).await.unwrap();
    let r = call(&env, &master, Req::delete(&one)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let named: Option<Uuid> =
        owner.query_one("SELECT prompt_template_id FROM chatapp_agents WHERE id = $1", &[&agent]).await.unwrap().get(0);
    assert_eq!(named, None);
    assert_eq!(env.audit_count("prompt_template.delete").await, 1);
}

/// The system prompt of the model request `n` the server received.
async fn system_prompt(server: &wiremock::MockServer, n: usize) -> String {
    let requests = model_requests(server).await;
    let messages = requests[n]["messages"].as_array().unwrap_or_else(|| panic!("no messages: {}", requests[n]));
    assert_eq!(messages[0]["role"], "system", "{}", requests[n]);
    messages[0]["content"].as_str().unwrap().to_string()
}

/// The master admin gives an agent a template and its values through the agents route (a value
/// for a variable the template does not declare is a 400 naming it, and nothing is stored); at
/// each turn the template, as it is then, is rendered into the system prompt the model gets.
#[tokio::test]
async fn an_agents_template_is_rendered_into_the_system_prompt_at_each_turn() {
    let model = model_server(Provider::OpenAi, |_, _| openai_answer("Happy to help.")).await;
    let base = format!("{}/v1", model.uri());
    let env = TestEnv::with(&[
        ("CHAT_PROVIDER", "openai"),
        ("CHAT_BASE_URL", base.as_str()),
        ("CHAT_API_KEY", "sk-test"),
        ("CHAT_MODEL", "gpt-4o-mini"),
    ])
    .await;
    let master = env.master_token().await;
    let t = env.company("acme", "starter").await;
    let company: String = env
        .owner()
        .await
        .query_one("SELECT name FROM chatapp_companies WHERE id = $1", &[&t.company_id])
        .await
        .unwrap()
        .get(0);
    let template = create(&env, &master, greeting()).await;
    let agent = widget_agent(&env, &t, false, json!([])).await;
    let path = format!("/admin/agents/{agent}?company_id={}", t.company_id);

    let versions = env.count("chatapp_agent_versions").await;
    let undeclared = json!({"prompt_template_id": template, "prompt_variables": {"product": "Widgets", "mood": "x"}});
    let r = env.send(Agents, Req::patch(&path).token(&master).json(undeclared)).await;
    assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
    assert!(message(&r).contains("promptVariables.mood"), "{}", r.body);
    let missing = json!({"prompt_template_id": template, "prompt_variables": {"tone": "calm"}});
    let r = env.send(Agents, Req::patch(&path).token(&master).json(missing)).await;
    assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
    assert!(message(&r).contains("promptVariables.product"), "{}", r.body);
    assert_eq!(env.count("chatapp_agent_versions").await, versions, "nothing stored");
    assert_eq!(env.count("chatapp_agents WHERE prompt_template_id IS NOT NULL").await, 0, "nothing stored");

    let valid = json!({"prompt_template_id": template, "prompt_variables": {"product": "Widgets", "tone": "calm"}});
    let r = env.send(Agents, Req::patch(&path).token(&master).json(valid)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["prompt_template_id"], json!(template));

    let (conversation, token) = session(&env, agent).await;
    let reply = say(&env, conversation, &token, "Do you sell gadgets?").await;
    assert_eq!(reply["reply"]["content"], "Happy to help.", "{reply}");
    let system = system_prompt(&model, 0).await;
    let rendered = format!("You are Ada of {company}. Help the customer with Widgets in a calm tone. Hours: .");
    assert!(system.starts_with(&rendered), "{system:?} does not start with {rendered:?}");
    assert!(!system.contains("You help customers of Acme."), "the template stands in for the system prompt");
    assert!(!system.contains("{{"), "{system}");

    // The template changed: the next turn renders the new content.
    let body =
        json!({"content": "Sell {{product}}, {{tone}}ly, for {{company_name}}.", "variables": greeting()["variables"]});
    let r = call(&env, &master, Req::patch(&format!("/admin/prompt-templates/{template}")).json(body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    say(&env, conversation, &token, "And gizmos?").await;
    let system = system_prompt(&model, 1).await;
    assert!(system.starts_with(&format!("Sell Widgets, calmly, for {company}.")), "{system:?}");
}
