//! Subscription plans through the `plans` function: the master admin's CRUD with every field
//! checked (400 naming it, nothing stored), what company admins may read, a plan in use kept,
//! the audit trail; and moving a company to another plan, whose limits the agents function then
//! enforces.

use chatapp_functions::http_function::HttpFunction::{self, Plans};
use chatapp_tests::{assert_error, Req, Resp, TestEnv};
use http::StatusCode;
use serde_json::{json, Value};

async fn call(env: &TestEnv, token: &str, req: Req) -> Resp {
    env.send(Plans, req.token(token)).await
}

fn id_of(r: &Resp) -> String {
    r.body["id"].as_str().unwrap_or_else(|| panic!("no id in {}", r.body)).to_string()
}

fn message(r: &Resp) -> String {
    r.body["error"]["message"].as_str().unwrap_or("").to_string()
}

fn slugs(r: &Resp) -> Vec<String> {
    r.body["items"].as_array().unwrap().iter().map(|p| p["slug"].as_str().unwrap().to_string()).collect()
}

fn growth() -> Value {
    json!({
        "name": "Growth", "slug": "growth", "description": "Between starter and professional.",
        "base_price": 59.999, "setup_fee": 10, "currency": "EUR", "billing_cycle": "quarterly",
        "limits": {"messagesPerMonth": 20000, "maxAgents": 5, "storageGb": 10, "maxFileSize": 20971520},
        "features": ["web_widget", "knowledge_base", "whatsapp"], "is_public": true
    })
}

async fn plan_rows(env: &TestEnv) -> i64 {
    env.count("chatapp_subscription_plans").await
}

#[tokio::test]
async fn the_master_admin_manages_the_plans_and_company_admins_see_the_offered_ones() {
    let env = TestEnv::new().await;
    let master = env.master_token().await;
    let t = env.company("acme", "starter").await;

    let r = call(&env, &master, Req::post("/admin/plans").json(growth())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["base_price"], 60.0, "stored as numeric(10, 2): {}", r.body);
    assert_eq!((r.body["currency"].clone(), r.body["billing_cycle"].clone()), (json!("EUR"), json!("quarterly")));
    // `maxAgents` is stored under the name the enforcing code reads.
    assert_eq!(
        r.body["limits"],
        json!({"messagesPerMonth": 20000, "agentCount": 5, "storageGb": 10, "maxFileSize": 20971520})
    );
    assert_eq!(r.body["features"], json!(["web_widget", "knowledge_base", "whatsapp"]));
    let id = id_of(&r);
    assert_eq!(env.audit_count("plan.create").await, 1);
    let r = call(&env, &master, Req::post("/admin/plans").json(growth())).await;
    assert_error!(r, StatusCode::CONFLICT, "slug_taken");

    // A private plan, offered to no one.
    let mut private = growth();
    private["slug"] = json!("acme-special");
    private["is_public"] = json!(false);
    let r = call(&env, &master, Req::post("/admin/plans").json(private)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let private_id = id_of(&r);

    // Company admins read the active public plans; writing is the master admin's.
    let tok = t.admin_token.as_str();
    let offered = slugs(&call(&env, tok, Req::get("/admin/plans?limit=100")).await);
    assert!(offered.contains(&"growth".to_string()) && offered.contains(&"starter".to_string()), "{offered:?}");
    assert!(!offered.contains(&"acme-special".to_string()), "{offered:?}");
    assert_eq!(call(&env, tok, Req::get(&format!("/admin/plans/{id}"))).await.status, StatusCode::OK);
    assert_error!(
        call(&env, tok, Req::get(&format!("/admin/plans/{private_id}"))).await,
        StatusCode::NOT_FOUND,
        "not_found"
    );
    assert_error!(
        call(&env, tok, Req::post("/admin/plans").json(growth())).await,
        StatusCode::FORBIDDEN,
        "master_only"
    );
    let r = call(&env, tok, Req::patch(&format!("/admin/plans/{id}")).json(json!({"base_price": 0}))).await;
    assert_error!(r, StatusCode::FORBIDDEN, "master_only");
    assert_error!(
        call(&env, tok, Req::delete(&format!("/admin/plans/{id}"))).await,
        StatusCode::FORBIDDEN,
        "master_only"
    );

    // A change replaces the limits whole and keeps what it does not name.
    let r = call(
        &env,
        &master,
        Req::patch(&format!("/admin/plans/{id}")).json(json!({"limits": {"agentCount": 6}, "is_active": false})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["limits"], json!({"agentCount": 6}));
    assert_eq!((r.body["name"].clone(), r.body["is_active"].clone()), (json!("Growth"), json!(false)));
    assert_eq!(env.audit_count("plan.update").await, 1);
    // Inactive: no longer offered, still the master admin's to see.
    assert!(!slugs(&call(&env, tok, Req::get("/admin/plans?limit=100")).await).contains(&"growth".to_string()));
    assert_eq!(slugs(&call(&env, &master, Req::get("/admin/plans?active=false")).await), vec!["growth".to_string()]);
    assert_error!(
        call(&env, &master, Req::get("/admin/plans?active=maybe")).await,
        StatusCode::BAD_REQUEST,
        "validation_failed"
    );

    // A plan no subscription used goes; one in use stays.
    let r = call(&env, &master, Req::delete(&format!("/admin/plans/{private_id}"))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(env.audit_count("plan.delete").await, 1);
    let starter = call(&env, &master, Req::get("/admin/plans?limit=100")).await.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["slug"] == "starter")
        .map(|p| p["id"].as_str().unwrap().to_string())
        .unwrap();
    assert_error!(
        call(&env, &master, Req::delete(&format!("/admin/plans/{starter}"))).await,
        StatusCode::CONFLICT,
        "plan_in_use"
    );
    assert_error!(
        call(&env, &master, Req::delete(&format!("/admin/plans/{private_id}"))).await,
        StatusCode::NOT_FOUND,
        "not_found"
    );
}

#[tokio::test]
async fn invalid_plans_answer_400_naming_the_field_and_store_nothing() {
    let env = TestEnv::new().await;
    let master = env.master_token().await;
    let before = plan_rows(&env).await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({"limits": {"storageGb": -1}}), "limits.storageGb"),
        (json!({"limits": {"storageGB": 1}}), "storageGB"),
        (json!({"limits": {"agentCount": "five"}}), "agentCount"),
        (json!({"features": ["whatsapp", "fax"]}), "features[1]"),
        (json!({"features": ["slack", "slack"]}), "features[1]"),
        (json!({"billing_cycle": "weekly"}), "billing_cycle"),
        (json!({"currency": "euro"}), "currency"),
        (json!({"base_price": -5}), "base_price"),
        (json!({"slug": "Growth Plan"}), "slug"),
        (json!({"name": "  "}), "name"),
        (json!({"colour": "green"}), "colour"),
    ];
    for (change, field) in cases {
        let mut body = growth();
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = call(&env, &master, Req::post("/admin/plans").json(body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{change}: {}", r.body);
        assert!(message(&r).contains(field), "{change}: {}", r.body);
    }
    assert_eq!(plan_rows(&env).await, before);
    assert_eq!(env.audit_count("plan.create").await, 0);
}

#[tokio::test]
async fn moving_a_company_to_another_plan_changes_the_limits_enforced() {
    let env = TestEnv::new().await;
    let master = env.master_token().await;
    let t = env.company("acme", "starter").await;
    let other = env.company("globex", "starter").await;
    let subscription = format!("/admin/companies/{}/subscription", t.company_id);

    // The company admin reads its own subscription, not another company's.
    let r = call(&env, &t.admin_token, Req::get(&subscription)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["plan"]["slug"], "starter");
    assert_eq!(r.body["limits"]["agentCount"], 3);
    let r = call(&env, &other.admin_token, Req::get(&subscription)).await;
    assert_error!(r, StatusCode::NOT_FOUND, "not_found");

    // Only the master admin moves it, to an active plan, with valid custom limits.
    let body = json!({"plan": "free", "custom_limits": {"agentCount": 2}});
    assert_error!(
        call(&env, &t.admin_token, Req::put(&subscription).json(body.clone())).await,
        StatusCode::FORBIDDEN,
        "master_only"
    );
    let r = call(&env, &master, Req::put(&subscription).json(json!({"plan": "no-such-plan"}))).await;
    assert_error!(r, StatusCode::BAD_REQUEST, "validation_failed");
    let r =
        call(&env, &master, Req::put(&subscription).json(json!({"plan": "free", "custom_limits": {"agentCount": -2}})))
            .await;
    assert!(message(&r).contains("custom_limits.agentCount"), "{}", r.body);
    let missing = format!("/admin/companies/{}/subscription", uuid::Uuid::new_v4());
    assert_error!(call(&env, &master, Req::put(&missing).json(body.clone())).await, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(env.audit_count("subscription.change").await, 0);

    let r = call(&env, &master, Req::put(&subscription).json(body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["plan"]["slug"].clone(), r.body["status"].clone()), (json!("free"), json!("active")));
    assert_eq!(r.body["custom_limits"], json!({"agentCount": 2}));
    assert_eq!(r.body["limits"]["agentCount"], 2, "the custom limit over the plan's 1");
    assert_eq!(r.body["limits"]["messagesPerMonth"], 1000, "the rest is the free plan's");
    assert_eq!(env.audit_count("subscription.change").await, 1);
    let open = format!(
        "chatapp_company_subscriptions WHERE company_id = '{}' AND status IN ('active', 'trial')",
        t.company_id
    );
    assert_eq!(env.count(&open).await, 1, "the starter subscription ended");

    // The agents function enforces the new limit: two agents, not three.
    let agent = |name: &str| Req::post("/admin/agents").token(&t.admin_token).json(json!({"name": name}));
    for name in ["One", "Two"] {
        let r = env.send(HttpFunction::Agents, agent(name)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let r = env.send(HttpFunction::Agents, agent("Three")).await;
    assert_error!(r, StatusCode::PAYMENT_REQUIRED, "agent_limit_reached");
    // The other company is untouched.
    let r =
        call(&env, &other.admin_token, Req::get(&format!("/admin/companies/{}/subscription", other.company_id))).await;
    assert_eq!(r.body["plan"]["slug"], "starter");
}
