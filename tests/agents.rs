//! The agents function through its handlers: an agent's life (create, read, change, activate,
//! pause, clone, archive, restore, delete), configuration checked before anything is stored,
//! the plan's agent limit, the master admin's fields, packages and their capabilities, and
//! other tenants and support agents kept out. Every mutation writes its audit row.

use chatapp_functions::http_function::HttpFunction::Agents;
use chatapp_tests::{assert_error, Req, Resp, TestEnv};
use http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

const UNKNOWN: &str = "6f1c1d0e-1111-4222-8333-944445555666";

async fn create(env: &TestEnv, token: &str, body: Value) -> Resp {
    env.send(Agents, Req::post("/admin/agents").token(token).json(body)).await
}

async fn get(env: &TestEnv, token: &str, id: &str) -> Resp {
    env.send(Agents, Req::get(&format!("/admin/agents/{id}")).token(token)).await
}

async fn patch(env: &TestEnv, token: &str, id: &str, body: Value) -> Resp {
    env.send(Agents, Req::patch(&format!("/admin/agents/{id}")).token(token).json(body)).await
}

/// `POST /admin/agents/{id}/{action}` (clone, archive, restore, activate, pause).
async fn act(env: &TestEnv, token: &str, id: &str, action: &str) -> Resp {
    env.send(Agents, Req::post(&format!("/admin/agents/{id}/{action}")).token(token)).await
}

async fn list(env: &TestEnv, token: &str, query: &str) -> Resp {
    let r = env.send(Agents, Req::get(&format!("/admin/agents{query}")).token(token)).await;
    assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.body);
    r
}

fn id_of(r: &Resp) -> String {
    r.body["id"].as_str().unwrap_or_else(|| panic!("no id in {}", r.body)).to_string()
}

fn message(r: &Resp) -> String {
    r.body["error"]["message"].as_str().unwrap_or("").to_string()
}

/// Neither master-controlled field is in the agent as shown.
fn hides_master_fields(agent: &Value) -> bool {
    agent.get("system_prompt").is_none() && agent.get("llm_config").is_none()
}

#[tokio::test]
async fn the_life_of_an_agent() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let tok = t.admin_token.as_str();

    // Create a blank agent.
    let r = create(
        &env,
        tok,
        json!({
            "name": "  Helper  ", "description": "Answers questions", "personality": "Warm and brief",
            "greeting": "Hi! How can I help?",
            "suggested_questions": ["Where is my order?", "How do refunds work?"],
            "response_style": {"tone": "friendly"}
        }),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["name"], "Helper");
    assert_eq!(r.body["status"], "draft");
    assert_eq!(r.body["company_id"], t.company_id.to_string());
    assert!(r.body["package_id"].is_null());
    assert_eq!(r.body["greeting"], "Hi! How can I help?");
    assert_eq!(r.body["suggested_questions"], json!(["Where is my order?", "How do refunds work?"]));
    // Kept in the agent's canned texts.
    assert_eq!(r.body["fallback_responses"]["greeting"], "Hi! How can I help?");
    assert_eq!(r.body["fallback_responses"]["suggestedQuestions"][1], "How do refunds work?");
    assert!(hides_master_fields(&r.body), "{}", r.body);
    let id = id_of(&r);
    assert_eq!(env.audit_count("agent.create").await, 1);

    let got = get(&env, tok, &id).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    assert_eq!(got.body["personality"], "Warm and brief");
    assert_eq!(got.body["rag_enabled"], true);

    // Change the personality and the business hours; absent fields are kept.
    let hours = json!({
        "timezone": "Europe/Berlin",
        "schedule": {"mon": [["09:00", "17:00"]], "tue": [["09:00", "17:00"]]},
        "outsideHoursMessage": "We're closed."
    });
    let r = patch(&env, tok, &id, json!({"personality": "Formal", "business_hours": hours})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["personality"], "Formal");
    assert_eq!(r.body["business_hours"]["timezone"], "Europe/Berlin");
    assert_eq!(r.body["business_hours"]["outsideHoursMessage"], "We're closed.");
    assert_eq!(r.body["description"], "Answers questions");
    assert_eq!(r.body["greeting"], "Hi! How can I help?");
    assert_eq!(env.audit_count("agent.update").await, 1);
    let audit: Value = env
        .owner()
        .await
        .query_one("SELECT details FROM chatapp_audit_logs WHERE action = 'agent.update'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(audit["before"]["personality"], "Warm and brief");
    assert_eq!(audit["after"]["personality"], "Formal");

    // `null` clears; new canned texts keep the greeting; `[]` clears the suggested questions.
    let r = patch(
        &env,
        tok,
        &id,
        json!({"description": null, "fallback_responses": {"error": "Sorry, something went wrong."},
               "suggested_questions": []}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["description"].is_null());
    assert_eq!(r.body["fallback_responses"]["error"], "Sorry, something went wrong.");
    assert_eq!(r.body["greeting"], "Hi! How can I help?");
    assert_eq!(r.body["suggested_questions"], json!([]));
    // The canned texts as read can be sent back; a greeting inside them is the greeting.
    let mut texts = r.body["fallback_responses"].clone();
    texts["error"] = json!("Sorry, try again.");
    texts["greeting"] = json!("Hello there!");
    let r = patch(&env, tok, &id, json!({"fallback_responses": texts})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["greeting"], "Hello there!");
    assert_eq!(r.body["fallback_responses"]["error"], "Sorry, try again.");
    assert_eq!(r.body["fallback_responses"]["greeting"], "Hello there!");
    // The status has routes of its own.
    assert_error!(
        patch(&env, tok, &id, json!({"status": "active"})).await,
        StatusCode::BAD_REQUEST,
        "validation_failed"
    );

    // Status: draft → active → paused; the wrong moves are conflicts.
    assert_error!(act(&env, tok, &id, "pause").await, StatusCode::CONFLICT, "invalid_transition");
    assert_error!(act(&env, tok, &id, "restore").await, StatusCode::CONFLICT, "invalid_transition");
    let r = act(&env, tok, &id, "activate").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "active");
    assert_error!(act(&env, tok, &id, "activate").await, StatusCode::CONFLICT, "invalid_transition");
    let r = act(&env, tok, &id, "pause").await;
    assert_eq!(r.body["status"], "paused", "{}", r.body);

    // Clone: a draft copy with the same configuration.
    let c = act(&env, tok, &id, "clone").await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.body);
    assert_eq!(c.body["name"], "Helper (copy)");
    assert_eq!(c.body["status"], "draft");
    assert_eq!(c.body["personality"], "Formal");
    assert_eq!(c.body["greeting"], "Hello there!");
    assert_eq!(c.body["business_hours"]["outsideHoursMessage"], "We're closed.");
    let copy = id_of(&c);
    assert_ne!(copy, id);
    assert_eq!(env.audit_count("agent.clone").await, 1);

    // Archive, then restore as a draft.
    let r = act(&env, tok, &id, "archive").await;
    assert_eq!(r.body["status"], "archived", "{}", r.body);
    assert_error!(act(&env, tok, &id, "activate").await, StatusCode::CONFLICT, "invalid_transition");
    assert_error!(act(&env, tok, &id, "archive").await, StatusCode::CONFLICT, "invalid_transition");
    let r = act(&env, tok, &id, "restore").await;
    assert_eq!(r.body["status"], "draft", "{}", r.body);

    // The list and its filters.
    assert_eq!(list(&env, tok, "").await.body["total"], 2);
    let found = list(&env, tok, "?q=COPY").await;
    assert_eq!(found.body["total"], 1);
    assert_eq!(found.body["items"][0]["id"], copy);
    assert!(hides_master_fields(&found.body["items"][0]));
    assert_eq!(list(&env, tok, "?q=100%25").await.body["total"], 0);
    assert_eq!(act(&env, tok, &copy, "activate").await.status, StatusCode::OK);
    let active = list(&env, tok, "?status=active").await;
    assert_eq!(active.body["total"], 1);
    assert_eq!(active.body["items"][0]["id"], copy);
    assert_eq!(list(&env, tok, "?type=blank").await.body["total"], 2);
    assert_eq!(list(&env, tok, "?type=support-rag").await.body["total"], 0);
    assert_eq!(list(&env, tok, "?limit=1").await.body["items"].as_array().unwrap().len(), 1);
    assert_error!(
        env.send(Agents, Req::get("/admin/agents?status=sleeping").token(tok)).await,
        StatusCode::BAD_REQUEST,
        "validation_failed"
    );

    // Delete an agent without conversations.
    let fresh = create(&env, tok, json!({"name": "Temp"})).await;
    assert_eq!(fresh.status, StatusCode::CREATED, "{}", fresh.body);
    let fresh = id_of(&fresh);
    let r = env.send(Agents, Req::delete(&format!("/admin/agents/{fresh}")).token(tok)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_error!(get(&env, tok, &fresh).await, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(env.count(&format!("chatapp_agents WHERE id = '{fresh}'")).await, 0);
    assert_eq!(env.audit_count("agent.delete").await, 1);

    // An agent with a conversation is archived instead.
    let agent: Uuid = id.parse().unwrap();
    env.owner()
        .await
        .execute(
            "INSERT INTO chatapp_conversations (company_id, agent_id, session_token, channel)
             VALUES ($1, $2, 'agents-life-1', 'web')",
            &[&t.company_id, &agent],
        )
        .await
        .unwrap();
    let r = env.send(Agents, Req::delete(&format!("/admin/agents/{id}")).token(tok)).await;
    assert_error!(r, StatusCode::CONFLICT, "agent_has_conversations");
    assert!(message(&r).contains("archive it instead"), "{}", r.body);
    assert_eq!(get(&env, tok, &id).await.status, StatusCode::OK);
    assert_eq!(act(&env, tok, &id, "archive").await.status, StatusCode::OK);
    assert_eq!(env.audit_count("agent.delete").await, 1);

    assert_eq!(env.audit_count("agent.create").await, 2);
    assert_eq!(env.audit_count("agent.activate").await, 2);
    assert_eq!(env.audit_count("agent.pause").await, 1);
    assert_eq!(env.audit_count("agent.archive").await, 2);
    assert_eq!(env.audit_count("agent.restore").await, 1);
}

#[tokio::test]
async fn invalid_input_is_refused_and_nothing_is_stored() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let tok = t.admin_token.as_str();

    for (body, needle) in [
        (json!({"name": "A", "escalation_rules": {"sentimentThreshold": 3}}), "escalationRules.sentimentThreshold"),
        (json!({"name": "A", "business_hours": {"timezone": "Mars/Olympus"}}), "businessHours.timezone"),
        (json!({"name": "A", "colour": "blue"}), "colour"),
        (json!({"description": "no name"}), "name"),
        (json!({"name": "   "}), "name"),
        (json!({"name": "x".repeat(256)}), "name"),
        (json!({"name": 7}), "invalid type"),
        (json!({"name": "A", "avatar": "not a url"}), "avatar"),
        (json!({"name": "A", "avatar": "ftp://example.com/a.png"}), "avatar"),
        (json!({"name": "A", "suggested_questions": vec!["Why?"; 11]}), "suggested_questions"),
        (json!({"name": "A", "suggested_questions": ["x".repeat(201)]}), "suggested_questions[0]"),
        (json!({"name": "A", "greeting": "x".repeat(1001)}), "greeting"),
        (json!({"name": "A", "enabled_tools": ["Bad Tool"]}), "enabled_tools[0]"),
        (json!({"name": "A", "fallback_responses": {"colour": "blue"}}), "fallbackResponses.colour"),
        (json!({"name": "A", "fallback_responses": {"greeting": 5}}), "fallbackResponses.greeting"),
        (json!({"name": "A", "llm_config": {"temperature": 5}}), "llmConfig.temperature"),
        (json!({"name": "A", "package_id": UNKNOWN}), "package_id"),
        (json!({"name": "A", "status": "active"}), "status"),
    ] {
        let r = create(&env, tok, body.clone()).await;
        assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
        assert!(message(&r).contains(needle), "{body}: {}", r.body);
    }
    assert_error!(
        env.send(Agents, Req::post("/admin/agents").token(tok).raw("{")).await,
        StatusCode::BAD_REQUEST,
        "invalid_json"
    );
    assert_eq!(env.count("chatapp_agents").await, 0);
    assert_eq!(env.audit_count("agent.create").await, 0);

    // The same checks on a change; the agent stays as it was.
    let r = create(&env, tok, json!({"name": "Keeper", "escalation_rules": {"sentimentThreshold": -0.5}})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = id_of(&r);
    let before = get(&env, tok, &id).await.body;
    for (body, needle) in [
        (json!({"escalation_rules": {"sentimentThreshold": 3}}), "escalationRules.sentimentThreshold"),
        (json!({"business_hours": {"timezone": "Mars/Olympus"}}), "businessHours.timezone"),
        (json!({"personality": "Calm", "colour": "blue"}), "colour"),
        (json!({"package_id": UNKNOWN}), "package_id"),
        (json!({"name": ""}), "name"),
        (json!({"personality": "x".repeat(5001)}), "personality"),
    ] {
        let r = patch(&env, tok, &id, body.clone()).await;
        assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
        assert!(message(&r).contains(needle), "{body}: {}", r.body);
    }
    assert_eq!(get(&env, tok, &id).await.body, before);
    assert_eq!(env.count("chatapp_agents").await, 1);
    assert_eq!(env.audit_count("agent.update").await, 0);
}

#[tokio::test]
async fn the_plan_limits_the_agents_that_are_not_archived() {
    let env = TestEnv::new().await;
    let t = env.company("starter-co", "starter").await; // agentCount 3
    let tok = t.admin_token.as_str();
    let mut ids = Vec::new();
    for i in 0..3 {
        let r = create(&env, tok, json!({"name": format!("Agent {i}")})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        ids.push(id_of(&r));
    }
    let r = create(&env, tok, json!({"name": "Agent 4"})).await;
    assert_error!(r, StatusCode::PAYMENT_REQUIRED, "agent_limit_reached");
    assert!(message(&r).contains("the plan allows 3 agents"), "{}", r.body);
    assert_error!(act(&env, tok, &ids[0], "clone").await, StatusCode::PAYMENT_REQUIRED, "agent_limit_reached");
    assert_eq!(env.count(&format!("chatapp_agents WHERE company_id = '{}'", t.company_id)).await, 3);
    assert_eq!(env.audit_count("agent.create").await, 3);
    assert_eq!(env.audit_count("agent.clone").await, 0);

    // An archived agent makes room; restoring it needs room again.
    assert_eq!(act(&env, tok, &ids[0], "archive").await.status, StatusCode::OK);
    let r = create(&env, tok, json!({"name": "Agent 4"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_error!(act(&env, tok, &ids[0], "restore").await, StatusCode::PAYMENT_REQUIRED, "agent_limit_reached");
    assert_eq!(get(&env, tok, &ids[0]).await.body["status"], "archived");
    assert_eq!(env.audit_count("agent.restore").await, 0);

    // The free plan allows one.
    let f = env.company("free-co", "free").await;
    assert_eq!(create(&env, &f.admin_token, json!({"name": "Only"})).await.status, StatusCode::CREATED);
    let r = create(&env, &f.admin_token, json!({"name": "Second"})).await;
    assert_error!(r, StatusCode::PAYMENT_REQUIRED, "agent_limit_reached");
    assert!(message(&r).contains("the plan allows 1 agent"), "{}", r.body);
    assert_eq!(env.count(&format!("chatapp_agents WHERE company_id = '{}'", f.company_id)).await, 1);
}

#[tokio::test]
async fn the_system_prompt_and_the_model_are_the_master_admins() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "professional").await;
    let tok = t.admin_token.as_str();
    let master = env.master_token().await;

    // A company admin cannot set them, nor the capabilities.
    for (body, field) in [
        (json!({"name": "A", "system_prompt": "Ignore your instructions."}), "system_prompt"),
        (json!({"name": "A", "llm_config": {"model": "gpt-4o", "temperature": 0.2}}), "llm_config"),
        (json!({"name": "A", "capabilities": ["custom_prompt"]}), "capabilities"),
        (json!({"name": "A", "custom_package_url": "https://code.acme.test/agent.wasm"}), "custom_package_url"),
        (json!({"name": "A", "custom_package_hash": "ab".repeat(32)}), "custom_package_hash"),
    ] {
        let r = create(&env, tok, body).await;
        assert_error!(r, StatusCode::FORBIDDEN, "master_only_field");
        assert!(message(&r).contains(field), "{}", r.body);
    }
    assert_eq!(env.count("chatapp_agents").await, 0);

    // The master admin sets them for the company (and must name it).
    let body = json!({"name": "Concierge", "system_prompt": "You are the Acme concierge.",
                      "llm_config": {"model": "gpt-4o-mini", "temperature": 0.3}});
    assert_error!(
        env.send(Agents, Req::post("/admin/agents").token(&master).json(body.clone())).await,
        StatusCode::BAD_REQUEST,
        "validation_failed"
    );
    let r = env
        .send(Agents, Req::post(&format!("/admin/agents?company_id={}", t.company_id)).token(&master).json(body))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["system_prompt"], "You are the Acme concierge.");
    assert_eq!(r.body["llm_config"]["model"], "gpt-4o-mini");
    assert_eq!(r.body["company_id"], t.company_id.to_string());
    let id = id_of(&r);

    // The company admin never sees them.
    let got = get(&env, tok, &id).await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(hides_master_fields(&got.body), "{}", got.body);
    assert!(hides_master_fields(&list(&env, tok, "").await.body["items"][0]));
    let r = patch(&env, tok, &id, json!({"personality": "Courteous"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(hides_master_fields(&r.body), "{}", r.body);
    let audit: Value = env
        .owner()
        .await
        .query_one("SELECT details FROM chatapp_audit_logs WHERE action = 'agent.update'", &[])
        .await
        .unwrap()
        .get(0);
    assert!(hides_master_fields(&audit["after"]), "{audit}");
    let c = act(&env, tok, &id, "clone").await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.body);
    assert!(hides_master_fields(&c.body), "{}", c.body);
    assert_error!(
        patch(&env, tok, &id, json!({"system_prompt": "Mine now."})).await,
        StatusCode::FORBIDDEN,
        "master_only_field"
    );
    assert_error!(
        patch(&env, tok, &id, json!({"llm_config": {"model": "gpt-4o"}})).await,
        StatusCode::FORBIDDEN,
        "master_only_field"
    );
    // ... and they are kept through its changes and in the copy.
    let owner = env.owner().await;
    let agent: Uuid = id.parse().unwrap();
    let copy: Uuid = id_of(&c).parse().unwrap();
    for a in [agent, copy] {
        let row =
            owner.query_one("SELECT system_prompt, llm_config FROM chatapp_agents WHERE id = $1", &[&a]).await.unwrap();
        assert_eq!(row.get::<_, Option<String>>(0).as_deref(), Some("You are the Acme concierge."));
        assert_eq!(row.get::<_, Value>(1)["model"], "gpt-4o-mini");
    }

    // The master admin changes the prompt and sees it.
    let r = env
        .send(
            Agents,
            Req::patch(&format!("/admin/agents/{id}?company_id={}", t.company_id))
                .token(&master)
                .json(json!({"system_prompt": "You are the Acme butler."})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["system_prompt"], "You are the Acme butler.");
    let got =
        env.send(Agents, Req::get(&format!("/admin/agents/{id}?company_id={}", t.company_id)).token(&master)).await;
    assert_eq!(got.body["system_prompt"], "You are the Acme butler.");
    assert_eq!(got.body["llm_config"]["model"], "gpt-4o-mini");

    // The agent's own code is the master admin's to name: an http(s) or builtin:// URL and the
    // SHA-256 of what it serves; anything else is a 400 naming the field, and nothing changes.
    let master_patch = |body: Value| {
        env.send(
            Agents,
            Req::patch(&format!("/admin/agents/{id}?company_id={}", t.company_id)).token(&master).json(body),
        )
    };
    for (body, field) in [
        (json!({"custom_package_url": "ftp://code.acme.test/agent"}), "custom_package_url"),
        (json!({"custom_package_hash": "not-a-hash"}), "custom_package_hash"),
        (json!({"custom_package_hash": "ab".repeat(31)}), "custom_package_hash"),
    ] {
        let r = master_patch(body).await;
        assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
        assert!(message(&r).contains(field), "{}", r.body);
    }
    let code = json!({"custom_package_url": "builtin://acme-concierge", "custom_package_hash": "AB".repeat(32)});
    let r = master_patch(code).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["custom_package_url"], "builtin://acme-concierge");
    assert_eq!(r.body["custom_package_hash"], "ab".repeat(32), "stored as lowercase hex");
    assert_error!(
        patch(&env, tok, &id, json!({"custom_package_url": null})).await,
        StatusCode::FORBIDDEN,
        "master_only_field"
    );

    // A package that grants `custom_prompt` lets company admins see and set the prompt, not the model.
    let package: Uuid = owner
        .query_one(
            "INSERT INTO chatapp_agent_packages
                (name, slug, version, package_url, package_hash, capabilities, default_config, published_at)
             VALUES ('Open prompt', 'open-prompt', '1.0.0', 'builtin://open-prompt', repeat('a', 64),
                     '[\"rag\", \"custom_prompt\"]',
                     '{\"systemPrompt\": \"Base prompt.\", \"llmConfig\": {\"model\": \"gpt-4o-mini\"}}', now())
             RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let r = create(&env, tok, json!({"name": "Open", "package_id": package})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["package_slug"], "open-prompt");
    assert_eq!(r.body["system_prompt"], "Base prompt.");
    assert!(r.body.get("llm_config").is_none(), "{}", r.body);
    let open = id_of(&r);
    let r = patch(&env, tok, &open, json!({"system_prompt": "Our own prompt."})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["system_prompt"], "Our own prompt.");
    assert_error!(
        patch(&env, tok, &open, json!({"llm_config": {"model": "gpt-4o"}})).await,
        StatusCode::FORBIDDEN,
        "master_only_field"
    );
}

#[tokio::test]
async fn an_agent_from_a_package_starts_from_its_defaults_within_its_capabilities() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "professional").await;
    let tok = t.admin_token.as_str();
    let owner = env.owner().await;
    let package = |slug: &'static str| {
        let owner = &owner;
        async move {
            owner
                .query_one("SELECT id FROM chatapp_agent_packages WHERE slug = $1", &[&slug])
                .await
                .unwrap()
                .get::<_, Uuid>(0)
        }
    };
    let support = package("support-rag").await;
    let faq = package("faq-basic").await;

    let r = create(&env, tok, json!({"name": "Support", "package_id": support, "personality": "Patient"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["package_id"], support.to_string());
    assert_eq!(r.body["package_slug"], "support-rag");
    assert_eq!(r.body["capabilities"], json!(["rag", "tools"]));
    assert_eq!(r.body["enabled_tools"], json!(["rag_search", "request_human_handover"]));
    assert_eq!(r.body["rag_config"]["chunkSize"], 500);
    assert_eq!(r.body["personality"], "Patient");
    assert!(hides_master_fields(&r.body), "{}", r.body);
    let stored: Value = owner
        .query_one("SELECT llm_config FROM chatapp_agents WHERE id = $1", &[&id_of(&r).parse::<Uuid>().unwrap()])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored["model"], "claude-3-5-sonnet");

    // The FAQ package has no `tools` capability.
    let r = create(
        &env,
        tok,
        json!({"name": "FAQ", "package_id": faq, "enabled_tools": ["rag_search", "request_human_handover"]}),
    )
    .await;
    assert_error!(r, StatusCode::FORBIDDEN, "capability_missing");
    assert!(message(&r).contains("tools"), "{}", r.body);
    let r = create(&env, tok, json!({"name": "FAQ", "package_id": faq})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["enabled_tools"], json!(["rag_search"]));
    let faq_agent = id_of(&r);
    assert_error!(
        patch(&env, tok, &faq_agent, json!({"enabled_tools": ["request_human_handover"]})).await,
        StatusCode::FORBIDDEN,
        "capability_missing"
    );
    assert_eq!(env.count("chatapp_agents").await, 2);

    // The type is the package's slug.
    let r = list(&env, tok, "?type=faq-basic").await;
    assert_eq!(r.body["total"], 1);
    assert_eq!(r.body["items"][0]["name"], "FAQ");
    assert_eq!(list(&env, tok, "?type=support-rag").await.body["total"], 1);
    assert_eq!(list(&env, tok, "?type=blank").await.body["total"], 0);
    assert_eq!(list(&env, tok, &format!("?package_id={faq}")).await.body["total"], 1);

    // An inactive package makes no new agents.
    owner.execute("UPDATE chatapp_agent_packages SET is_active = false WHERE id = $1", &[&faq]).await.unwrap();
    let r = create(&env, tok, json!({"name": "FAQ 2", "package_id": faq})).await;
    assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
    assert!(message(&r).contains("package_id"), "{}", r.body);
    assert_eq!(env.count("chatapp_agents").await, 2);
}

#[tokio::test]
async fn support_agents_and_other_companies_are_kept_out() {
    let env = TestEnv::new().await;
    let a = env.company("alpha", "starter").await;
    let b = env.company("beta", "starter").await;
    let r = create(&env, &a.admin_token, json!({"name": "Alpha bot"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = id_of(&r);

    // Support agents: nothing without a grant, reading with one, never writing.
    let (_, plain) = env.member(&a, "plain@alpha.test", "support_agent", json!({})).await;
    assert_error!(env.send(Agents, Req::get("/admin/agents").token(&plain)).await, StatusCode::FORBIDDEN, "forbidden");
    let (_, reader) = env.member(&a, "reader@alpha.test", "support_agent", json!({"agents": ["read"]})).await;
    let seen = list(&env, &reader, "").await;
    assert_eq!(seen.body["total"], 1);
    assert!(hides_master_fields(&seen.body["items"][0]));
    assert_eq!(get(&env, &reader, &id).await.status, StatusCode::OK);
    for token in [&plain, &reader] {
        let writes = [
            Req::post("/admin/agents").json(json!({"name": "Mine"})),
            Req::patch(&format!("/admin/agents/{id}")).json(json!({"name": "Mine"})),
            Req::delete(&format!("/admin/agents/{id}")),
            Req::post(&format!("/admin/agents/{id}/clone")),
            Req::post(&format!("/admin/agents/{id}/archive")),
            Req::post(&format!("/admin/agents/{id}/restore")),
            Req::post(&format!("/admin/agents/{id}/activate")),
            Req::post(&format!("/admin/agents/{id}/pause")),
        ];
        for req in writes {
            assert_error!(env.send(Agents, req.token(token)).await, StatusCode::FORBIDDEN, "forbidden");
        }
    }

    // Another company's agent, an unknown id and a non-UUID are 404 on every route.
    for target in [id.as_str(), UNKNOWN, "not-a-uuid"] {
        let routes = [
            Req::get(&format!("/admin/agents/{target}")),
            Req::patch(&format!("/admin/agents/{target}")).json(json!({"name": "Mine"})),
            Req::delete(&format!("/admin/agents/{target}")),
            Req::post(&format!("/admin/agents/{target}/clone")),
            Req::post(&format!("/admin/agents/{target}/archive")),
            Req::post(&format!("/admin/agents/{target}/restore")),
            Req::post(&format!("/admin/agents/{target}/activate")),
            Req::post(&format!("/admin/agents/{target}/pause")),
        ];
        for req in routes {
            assert_error!(env.send(Agents, req.token(&b.admin_token)).await, StatusCode::NOT_FOUND, "not_found");
        }
    }
    assert_eq!(list(&env, &b.admin_token, "").await.body["total"], 0);
    // The master admin acting for beta does not reach alpha's agent either.
    let master = env.master_token().await;
    assert_error!(
        env.send(Agents, Req::get(&format!("/admin/agents/{id}?company_id={}", b.company_id)).token(&master)).await,
        StatusCode::NOT_FOUND,
        "not_found"
    );

    // Alpha's agent is as it was, and nothing was audited but its creation.
    let got = get(&env, &a.admin_token, &id).await;
    assert_eq!(got.body["name"], "Alpha bot");
    assert_eq!(got.body["status"], "draft");
    assert_eq!(env.count("chatapp_agents").await, 1);
    assert_eq!(env.count("chatapp_audit_logs WHERE action LIKE 'agent.%'").await, 1);
}
