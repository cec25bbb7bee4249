//! Escalation rules through the agents function's handlers: create, list (filters, pages), read,
//! change and delete with an audit row each; bodies checked to what the chat turn understands
//! (400 naming the field, nothing stored); other companies' rules and agents not found; support
//! agents kept out; and a rule's keyword handing a widget conversation to a person.

use chatapp_functions::http_function::HttpFunction::Widget;
use chatapp_tests::{assert_error, Req, Resp, TestEnv};
use http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

const RULES: &str = "/admin/escalation-rules";
const UNKNOWN: &str = "6f1c1d0e-1111-4222-8333-944445555666";

/// An active agent of the company, made in the database.
async fn add_agent(env: &TestEnv, company: Uuid, name: &str) -> Uuid {
    env.owner()
        .await
        .query_one(
            "INSERT INTO chatapp_agents (company_id, name, status, system_prompt)
             VALUES ($1, $2, 'active', 'You help customers.') RETURNING id",
            &[&company, &name],
        )
        .await
        .unwrap()
        .get(0)
}

/// A request to the function serving its path, as the holder of `token`.
async fn call(env: &TestEnv, token: &str, req: Req) -> Resp {
    env.send(chatapp_tests::agent_admin_function(req.path()), req.token(token)).await
}

async fn create(env: &TestEnv, token: &str, body: Value) -> Resp {
    call(env, token, Req::post(RULES).json(body)).await
}

async fn list(env: &TestEnv, token: &str, query: &str) -> Resp {
    call(env, token, Req::get(&format!("{RULES}{query}"))).await
}

fn rule(id: &str) -> String {
    format!("{RULES}/{id}")
}

fn id_of(r: &Resp) -> String {
    r.body["id"].as_str().unwrap_or_else(|| panic!("no id in {}", r.body)).to_string()
}

fn names(r: &Resp) -> Vec<String> {
    r.body["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_string()).collect()
}

fn message(r: &Resp) -> String {
    r.body["error"]["message"].as_str().unwrap_or("").to_string()
}

async fn rules_of(env: &TestEnv, company: Uuid) -> i64 {
    env.count(&format!("chatapp_escalation_rules WHERE company_id = '{company}'")).await
}

#[tokio::test]
async fn the_life_of_an_escalation_rule() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let tok = t.admin_token.as_str();
    let agent = add_agent(&env, t.company_id, "Ada").await;
    let (support, _) = env.member(&t, "sa@acme.test", "support_agent", json!({})).await;

    let r = create(
        &env,
        tok,
        json!({"name": " Legal threats ", "description": "People who mention lawyers", "agent_id": agent,
               "trigger_keywords": ["lawyer", " attorney "], "priority": 5,
               "assignment_logic": {"strategy": "round_robin"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["name"], "Legal threats");
    assert_eq!(r.body["trigger_keywords"], json!(["lawyer", "attorney"]));
    assert_eq!(r.body["trigger_conditions"], json!({}));
    assert_eq!(r.body["assignment_logic"], json!({"strategy": "round_robin"}));
    assert_eq!(r.body["priority"], 5);
    assert_eq!(r.body["is_active"], true);
    assert_eq!(r.body["agent_id"], agent.to_string());
    assert_eq!(r.body["created_by"], t.admin_id.to_string());
    let legal = id_of(&r);

    // Company-wide, on sentiment; the turn's snake_case keys are stored under their canonical names.
    let r = create(
        &env,
        tok,
        json!({"name": "Angry", "trigger_conditions": {"sentiment_below": -0.6, "min_turns": 2}, "priority": 3}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(r.body["agent_id"].is_null());
    assert_eq!(r.body["trigger_conditions"], json!({"sentimentBelow": -0.6, "minTurns": 2}));
    assert_eq!(r.body["priority"], 3);

    // A turn limit going to one support agent, inactive.
    let r = create(
        &env,
        tok,
        json!({"name": "Long chats", "trigger_conditions": {"triggerType": "turn_limit", "after": 10},
               "assignment_logic": {"strategy": "specific_agent", "agent_id": support}, "is_active": false}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["trigger_conditions"], json!({"triggerType": "turns", "after": 10}));
    assert_eq!(r.body["assignment_logic"]["agent_id"], support.to_string());
    assert_eq!(r.body["priority"], 1, "the default");
    assert_eq!(r.body["is_active"], false);
    assert_eq!(env.audit_count("escalation_rule.create").await, 3);

    // Lists: highest priority first, filtered, paged.
    let r = list(&env, tok, "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["total"], 3);
    assert_eq!(names(&r), ["Legal threats", "Angry", "Long chats"]);
    assert_eq!(names(&list(&env, tok, &format!("?agent_id={agent}")).await), ["Legal threats"]);
    assert_eq!(names(&list(&env, tok, "?active=false").await), ["Long chats"]);
    assert_eq!(names(&list(&env, tok, "?active=true").await), ["Legal threats", "Angry"]);
    let r = list(&env, tok, "?limit=1&offset=1").await;
    assert_eq!((names(&r), r.body["total"].clone()), (vec!["Angry".to_string()], json!(3)));
    assert_error!(list(&env, tok, "?active=maybe").await, StatusCode::BAD_REQUEST, "validation_failed");
    assert_error!(list(&env, tok, "?agent_id=nope").await, StatusCode::BAD_REQUEST, "validation_failed");

    let r = call(&env, tok, Req::get(&rule(&legal))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["description"], "People who mention lawyers");

    // Change: absent fields kept, `null` clears the description and makes the rule company-wide.
    let r = call(
        &env,
        tok,
        Req::patch(&rule(&legal)).json(json!({"priority": 4, "description": null, "agent_id": null,
                                              "trigger_keywords": ["lawyer", "solicitor"]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["priority"], 4);
    assert!(r.body["description"].is_null() && r.body["agent_id"].is_null(), "{}", r.body);
    assert_eq!(r.body["trigger_keywords"], json!(["lawyer", "solicitor"]));
    assert_eq!(r.body["name"], "Legal threats");
    assert_eq!(r.body["assignment_logic"], json!({"strategy": "round_robin"}));
    let r = call(&env, tok, Req::patch(&rule(&legal)).json(json!({"agent_id": agent, "is_active": false}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["agent_id"].clone(), r.body["is_active"].clone()), (json!(agent.to_string()), json!(false)));
    assert_eq!(env.audit_count("escalation_rule.update").await, 2);
    let audit: Value = env
        .owner()
        .await
        .query_one(
            "SELECT details FROM chatapp_audit_logs WHERE action = 'escalation_rule.update'
             ORDER BY created_at LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(audit["before"]["priority"], 5);
    assert_eq!(audit["after"]["priority"], 4);

    // Delete.
    let r = call(&env, tok, Req::delete(&rule(&legal))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_error!(call(&env, tok, Req::get(&rule(&legal))).await, StatusCode::NOT_FOUND, "not_found");
    assert_error!(call(&env, tok, Req::delete(&rule(&legal))).await, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(env.audit_count("escalation_rule.delete").await, 1);
    assert_eq!(rules_of(&env, t.company_id).await, 2);
}

#[tokio::test]
async fn invalid_rules_are_refused_naming_the_field_and_nothing_is_stored() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let tok = t.admin_token.as_str();
    let kw = |body: Value| {
        let mut b = json!({"name": "Rule", "trigger_keywords": ["refund"]});
        for (k, v) in body.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let many: Vec<String> = (0..101).map(|i| format!("word{i}")).collect();
    let cases: Vec<(Value, &str)> = vec![
        (kw(json!({"priority": 6})), "priority"),
        (kw(json!({"priority": 0})), "priority"),
        (kw(json!({"priority": "high"})), "priority"),
        (kw(json!({"name": ""})), "name"),
        (kw(json!({"name": "x".repeat(256)})), "name"),
        (kw(json!({"description": "x".repeat(5001)})), "description"),
        (kw(json!({"trigger_conditions": {"sentimentTreshold": -0.5}})), "trigger_conditions.sentimentTreshold"),
        (kw(json!({"trigger_conditions": {"escalate": true}})), "trigger_conditions.escalate"),
        (kw(json!({"trigger_conditions": {"sentimentBelow": -1.5}})), "trigger_conditions.sentimentBelow"),
        (kw(json!({"trigger_conditions": {"sentimentBelow": "-0.5"}})), "trigger_conditions.sentimentBelow"),
        (kw(json!({"trigger_conditions": {"confidenceBelow": 2}})), "trigger_conditions.confidenceBelow"),
        (kw(json!({"trigger_conditions": {"minTurns": 0}})), "trigger_conditions.minTurns"),
        (kw(json!({"trigger_conditions": {"triggerType": "moon"}})), "trigger_conditions.triggerType"),
        (kw(json!({"trigger_conditions": {"keywords": ["refund"]}})), "trigger_conditions.keywords"),
        (kw(json!({"trigger_conditions": {"below": -0.5}})), "trigger_conditions.below"),
        (kw(json!({"trigger_conditions": "angry"})), "trigger_conditions"),
        (json!({"name": "R", "trigger_conditions": {"triggerType": "turns", "after": 0}}), "trigger_conditions.after"),
        (json!({"name": "R", "trigger_conditions": {"triggerType": "sentiment"}}), "trigger_conditions.sentimentBelow"),
        (json!({"name": "R", "trigger_conditions": {"afterTurns": 1001}}), "trigger_conditions.afterTurns"),
        (kw(json!({"trigger_conditions": {"triggerType": "sentiment", "below": -0.5}})), "trigger_keywords"),
        (json!({"name": "Never fires"}), "trigger_keywords"),
        (json!({"name": "R", "trigger_conditions": {"triggerType": "keyword"}}), "trigger_keywords"),
        (kw(json!({"trigger_keywords": ["refund", "Refund"]})), "trigger_keywords[1]"),
        (kw(json!({"trigger_keywords": ["lawyer", "  "]})), "trigger_keywords[1]"),
        (kw(json!({"trigger_keywords": ["x".repeat(101)]})), "trigger_keywords[0]"),
        (kw(json!({"trigger_keywords": many})), "trigger_keywords"),
        (kw(json!({"assignment_logic": {"strategy": "random"}})), "assignment_logic.strategy"),
        (kw(json!({"assignment_logic": {"strategy": "specific_agent"}})), "assignment_logic.agent_id"),
        (
            kw(json!({"assignment_logic": {"strategy": "round_robin", "agent_id": UNKNOWN}})),
            "assignment_logic.agent_id",
        ),
        (
            kw(json!({"assignment_logic": {"strategy": "specific_agent", "agent_id": UNKNOWN}})),
            "assignment_logic.agent_id",
        ),
        (kw(json!({"assignment_logic": {"team": "billing"}})), "assignment_logic.team"),
        (kw(json!({"extra": 1})), "extra"),
    ];
    for (body, field) in cases {
        let r = create(&env, tok, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        assert_eq!(r.code(), "validation_failed", "{body}: {}", r.body);
        assert!(message(&r).contains(field), "{body}: the message should name {field}: {}", message(&r));
    }
    assert_eq!(rules_of(&env, t.company_id).await, 0);
    assert_eq!(env.audit_count("escalation_rule.create").await, 0);

    // A change is checked as a whole: bad fields, and a result that could never fire.
    let r = create(&env, tok, kw(json!({}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = id_of(&r);
    for (body, field) in [
        (json!({"priority": 6}), "priority"),
        (json!({"trigger_conditions": {"sentimentTreshold": -0.5}}), "trigger_conditions.sentimentTreshold"),
        (json!({"trigger_keywords": []}), "trigger_keywords"),
        (json!({"trigger_keywords": ["a", "A"]}), "trigger_keywords[1]"),
        (json!({"name": null, "colour": "red"}), "colour"),
    ] {
        let r = call(&env, tok, Req::patch(&rule(&id)).json(body.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        assert!(message(&r).contains(field), "{body}: the message should name {field}: {}", message(&r));
    }
    let r = call(&env, tok, Req::get(&rule(&id))).await;
    assert_eq!((r.body["priority"].clone(), r.body["trigger_keywords"].clone()), (json!(1), json!(["refund"])));
    assert_eq!(env.audit_count("escalation_rule.update").await, 0);
}

#[tokio::test]
async fn other_companies_rules_and_agents_are_not_found_and_support_agents_are_kept_out() {
    let env = TestEnv::new().await;
    let a = env.company("alpha", "starter").await;
    let b = env.company("beta", "starter").await;
    let a_agent = add_agent(&env, a.company_id, "Ada").await;
    let b_agent = add_agent(&env, b.company_id, "Bea").await;
    let (b_support, _) = env.member(&b, "sa@beta.test", "support_agent", json!({})).await;
    let r = create(&env, &a.admin_token, json!({"name": "Legal", "agent_id": a_agent, "trigger_keywords": ["lawyer"]}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = id_of(&r);

    // B cannot see, change or delete A's rule.
    for req in [
        Req::get(&rule(&id)),
        Req::patch(&rule(&id)).json(json!({"priority": 5})),
        Req::delete(&rule(&id)),
        Req::get(&rule(UNKNOWN)),
        Req::get(&rule("not-a-uuid")),
    ] {
        assert_error!(call(&env, &b.admin_token, req).await, StatusCode::NOT_FOUND, "not_found");
    }
    let r = call(&env, &b.admin_token, Req::get(RULES)).await;
    assert_eq!(r.body["total"], 0, "{}", r.body);
    // Nor attach a rule to A's agent; nor A to B's.
    let r = create(&env, &b.admin_token, json!({"name": "Mine", "agent_id": a_agent, "trigger_keywords": ["x"]})).await;
    assert_error!(r, StatusCode::NOT_FOUND, "not_found");
    let r = call(&env, &a.admin_token, Req::patch(&rule(&id)).json(json!({"agent_id": b_agent}))).await;
    assert_error!(r, StatusCode::NOT_FOUND, "not_found");
    // Another company's support agent cannot be assigned.
    let r = call(
        &env,
        &a.admin_token,
        Req::patch(&rule(&id)).json(json!({"assignment_logic": {"strategy": "specific_agent", "agent_id": b_support}})),
    )
    .await;
    assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
    assert!(message(&r).contains("assignment_logic.agent_id"), "{}", r.body);
    let r = call(&env, &a.admin_token, Req::get(&rule(&id))).await;
    assert_eq!(r.body["agent_id"], a_agent.to_string());
    assert_eq!(r.body["priority"], 1);
    assert_eq!(rules_of(&env, b.company_id).await, 0);

    // A support agent needs the agents permissions: none, then read only.
    let (_, plain) = env.member(&a, "plain@alpha.test", "support_agent", json!({})).await;
    let (_, reader) = env.member(&a, "reader@alpha.test", "support_agent", json!({"agents": ["read"]})).await;
    let body = json!({"name": "Sneaky", "trigger_keywords": ["x"]});
    for req in [
        Req::get(RULES),
        Req::get(&rule(&id)),
        Req::post(RULES).json(body.clone()),
        Req::patch(&rule(&id)).json(json!({"priority": 5})),
        Req::delete(&rule(&id)),
    ] {
        assert_error!(call(&env, &plain, req).await, StatusCode::FORBIDDEN, "forbidden");
    }
    assert_eq!(call(&env, &reader, Req::get(RULES)).await.status, StatusCode::OK);
    assert_eq!(call(&env, &reader, Req::get(&rule(&id))).await.status, StatusCode::OK);
    assert_error!(call(&env, &reader, Req::post(RULES).json(body)).await, StatusCode::FORBIDDEN, "forbidden");
    assert_error!(call(&env, &reader, Req::delete(&rule(&id))).await, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(rules_of(&env, a.company_id).await, 1);
    assert_eq!(env.audit_count("escalation_rule.create").await, 1);
    assert_eq!(env.audit_count("escalation_rule.update").await, 0);
    assert_eq!(env.audit_count("escalation_rule.delete").await, 0);
}

/// Starts a widget session and sends one message; the turn's result.
async fn widget_turn(env: &TestEnv, agent: Uuid, content: &str) -> Value {
    let r = env.send(Widget, Req::post(&format!("/widget/agents/{agent}/sessions")).json(json!({}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let conv = r.body["conversation_id"].as_str().unwrap().to_string();
    let token = r.body["session_token"].as_str().unwrap().to_string();
    let r = env
        .send(
            Widget,
            Req::post(&format!("/widget/conversations/{conv}/messages"))
                .token(&token)
                .json(json!({"content": content})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

#[tokio::test]
async fn a_rule_keyword_hands_a_widget_conversation_to_a_person() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let agent = add_agent(&env, t.company_id, "Ada").await;
    let r = create(
        &env,
        &t.admin_token,
        json!({"name": "Legal", "agent_id": agent, "trigger_keywords": ["lawyer"], "priority": 4, "is_active": false}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = id_of(&r);
    let message = "I will call my lawyer about this refund";

    // Inactive, the rule does nothing.
    let out = widget_turn(&env, agent, message).await;
    assert_eq!(out["handoff"], false, "{out}");
    assert!(out["escalation"].is_null(), "{out}");

    // Active, the turn hands over, naming the rule.
    let r = call(&env, &t.admin_token, Req::patch(&rule(&id)).json(json!({"is_active": true}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let out = widget_turn(&env, agent, message).await;
    assert_eq!(out["handoff"], true, "{out}");
    assert_eq!(out["escalation"]["trigger"], "rule", "{out}");
    assert_eq!(out["escalation"]["details"]["rule_name"], "Legal", "{out}");
    assert_eq!(out["escalation"]["details"]["keyword"], "lawyer", "{out}");
    assert_eq!(out["escalation"]["priority"], "high", "priority 4 is high: {out}");
    assert_eq!(env.count("chatapp_escalations WHERE trigger_type = 'rule'").await, 1);
    assert_eq!(env.count("chatapp_conversations WHERE status = 'waiting_human'").await, 1);
}
