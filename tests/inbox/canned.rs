//! Canned responses: create, list, read, change and delete; company and personal scopes;
//! shortcut conflicts; who may change what; rendering with variables; bad input.

use chatapp_functions::http_function::HttpFunction::Inbox;
use chatapp_tests::{assert_error, Req, TestEnv};
use http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use super::notes::{widget_agent, widget_session};

const PATH: &str = "/inbox/canned-responses";

fn one(id: &Value) -> String {
    format!("{PATH}/{}", id.as_str().unwrap())
}

async fn create(env: &TestEnv, token: &str, body: Value) -> Value {
    let r = env.send(Inbox, Req::post(PATH).token(token).json(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body
}

#[tokio::test]
async fn canned_responses_crud_scopes_and_conflicts() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "professional").await;
    let other = env.company("beta", "professional").await;
    let (sam, sam_token) = env.member(&t, "sam@acme.test", "support_agent", json!({})).await;
    let (_, kim_token) = env.member(&t, "kim@acme.test", "support_agent", json!({})).await;

    // An admin shares one with the company.
    let greeting = create(
        &env,
        &t.admin_token,
        json!({"title": " Greeting ", "content": "Hi {{customer_name}}!", "shortcut": "Hello",
               "category": "general", "tags": ["intro", "intro", " polite "], "scope": "company"}),
    )
    .await;
    assert_eq!(greeting["title"], "Greeting");
    assert_eq!(greeting["shortcut"], "hello");
    assert_eq!(greeting["scope"], "company");
    assert_eq!(greeting["tags"], json!(["intro", "polite"]));
    assert_eq!(greeting["usage_count"], 0);
    assert!(greeting["last_used_at"].is_null());
    assert_eq!(greeting["created_by"], t.admin_id.to_string());

    // The same shortcut again in the company scope: 409 `conflict`, without schema names.
    let r = env
        .send(
            Inbox,
            Req::post(PATH)
                .token(&t.admin_token)
                .json(json!({"title": "Dup", "content": "x", "shortcut": "HELLO", "scope": "company"})),
        )
        .await;
    assert_error!(r, StatusCode::CONFLICT, "conflict");
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("hello") && !message.contains("canned_responses"), "{message}");

    // Personal ones (the default scope): the same shortcut is free per author.
    let mine = create(&env, &sam_token, json!({"title": "My hello", "content": "Hey!", "shortcut": "hello"})).await;
    assert_eq!(mine["scope"], "personal");
    assert_eq!(mine["created_by"], sam.to_string());
    assert_error!(
        env.send(
            Inbox,
            Req::post(PATH).token(&sam_token).json(json!({"title": "Again", "content": "x", "shortcut": "hello"}))
        )
        .await,
        StatusCode::CONFLICT,
        "conflict"
    );
    let kims = create(&env, &kim_token, json!({"title": "Kim's hello", "content": "Yo", "shortcut": "hello"})).await;
    let refund = create(
        &env,
        &sam_token,
        json!({"title": "Refund steps", "content": "Refunds take 5 days.", "category": "billing", "scope": "personal"}),
    )
    .await;
    assert!(refund["shortcut"].is_null());

    // A support agent cannot share with the company.
    assert_error!(
        env.send(
            Inbox,
            Req::post(PATH).token(&sam_token).json(json!({"title": "T", "content": "C", "scope": "company"}))
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden"
    );

    // Bad input: 400, nothing stored.
    let before = env.count("chatapp_canned_responses").await;
    let many_tags: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
    for bad in [
        json!({"title": "", "content": "c"}),
        json!({"title": "t".repeat(256), "content": "c"}),
        json!({"title": "t", "content": "  "}),
        json!({"title": "t", "content": "c".repeat(5001)}),
        json!({"title": "t", "content": "c", "shortcut": "has space"}),
        json!({"title": "t", "content": "c", "shortcut": ""}),
        json!({"title": "t", "content": "c", "shortcut": "s".repeat(51)}),
        json!({"title": "t", "content": "c", "category": "k".repeat(101)}),
        json!({"title": "t", "content": "c", "tags": many_tags}),
        json!({"title": "t", "content": "c", "tags": [""]}),
        json!({"title": "t", "content": "c", "scope": "team"}),
        json!({"title": "t", "content": "c", "agent_ids": []}),
        json!({"content": "c"}),
    ] {
        assert_error!(
            env.send(Inbox, Req::post(PATH).token(&sam_token).json(bad)).await,
            StatusCode::BAD_REQUEST,
            "validation_failed"
        );
    }
    assert_eq!(env.count("chatapp_canned_responses").await, before);
    assert_eq!(env.audit_count("canned_response.create").await, 4);

    // The list: the company's and the caller's own, by title.
    let list = env.send(Inbox, Req::get(PATH).token(&sam_token)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert_eq!(list.body["total"], 3, "{}", list.body);
    let titles: Vec<&str> =
        list.body["items"].as_array().unwrap().iter().map(|i| i["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["Greeting", "My hello", "Refund steps"]);
    let search = |q: &str| {
        let token = sam_token.clone();
        let path = format!("{PATH}?{q}");
        let env = &env;
        async move {
            let r = env.send(Inbox, Req::get(&path).token(&token)).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            r.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["title"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(search("q=REFUND").await, ["Refund steps"]);
    assert_eq!(search("q=5%25").await, Vec::<String>::new(), "a % is a character, not a wildcard");
    assert_eq!(search("shortcut=HEL").await, ["Greeting", "My hello"]);
    assert_eq!(search("category=Billing").await, ["Refund steps"]);
    assert_eq!(search("limit=1&offset=1").await, ["My hello"]);
    // Kim's personal one is hers alone: not listed for sam, 404 for sam and even for the admin.
    assert_error!(
        env.send(Inbox, Req::get(&one(&kims["id"])).token(&sam_token)).await,
        StatusCode::NOT_FOUND,
        "not_found"
    );
    assert_error!(
        env.send(Inbox, Req::get(&one(&kims["id"])).token(&t.admin_token)).await,
        StatusCode::NOT_FOUND,
        "not_found"
    );
    let got = env.send(Inbox, Req::get(&one(&kims["id"])).token(&kim_token)).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    assert_eq!(got.body["title"], "Kim's hello");
    // The company's one for everyone in it; nobody else.
    let got = env.send(Inbox, Req::get(&one(&greeting["id"])).token(&kim_token)).await;
    assert_eq!(got.body, greeting);
    assert_error!(
        env.send(Inbox, Req::get(&one(&greeting["id"])).token(&other.admin_token)).await,
        StatusCode::NOT_FOUND,
        "not_found"
    );
    assert_eq!(env.send(Inbox, Req::get(PATH).token(&other.admin_token)).await.body["total"], 0);
    assert_error!(
        env.send(Inbox, Req::get(&format!("{PATH}/{}", Uuid::new_v4())).token(&sam_token)).await,
        StatusCode::NOT_FOUND,
        "not_found"
    );

    // Changes: a support agent changes only their own personal ones.
    assert_error!(
        env.send(Inbox, Req::patch(&one(&greeting["id"])).token(&sam_token).json(json!({"title": "Mine now"}))).await,
        StatusCode::FORBIDDEN,
        "forbidden"
    );
    assert_error!(
        env.send(Inbox, Req::patch(&one(&kims["id"])).token(&sam_token).json(json!({"title": "Mine now"}))).await,
        StatusCode::NOT_FOUND,
        "not_found"
    );
    assert_error!(
        env.send(Inbox, Req::patch(&one(&mine["id"])).token(&sam_token).json(json!({"scope": "company"}))).await,
        StatusCode::FORBIDDEN,
        "forbidden"
    );
    let r = env
        .send(
            Inbox,
            Req::patch(&one(&mine["id"]))
                .token(&sam_token)
                .json(json!({"title": "Hello (sam)", "shortcut": null, "tags": ["x"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["title"], "Hello (sam)");
    assert!(r.body["shortcut"].is_null());
    assert_eq!(r.body["content"], "Hey!", "absent fields are kept");
    assert_eq!(r.body["tags"], json!(["x"]));
    // The admin changes the company's; a shortcut taken in the scope is a 409 there too.
    create(&env, &t.admin_token, json!({"title": "Bye", "content": "Bye!", "shortcut": "bye", "scope": "company"}))
        .await;
    assert_error!(
        env.send(Inbox, Req::patch(&one(&greeting["id"])).token(&t.admin_token).json(json!({"shortcut": "BYE"}))).await,
        StatusCode::CONFLICT,
        "conflict"
    );
    for bad in [json!({"title": ""}), json!({"shortcut": "no way"}), json!({"scope": "all"}), json!({"usage_count": 9})]
    {
        assert_error!(
            env.send(Inbox, Req::patch(&one(&greeting["id"])).token(&t.admin_token).json(bad)).await,
            StatusCode::BAD_REQUEST,
            "validation_failed"
        );
    }
    let r = env
        .send(
            Inbox,
            Req::patch(&one(&greeting["id"]))
                .token(&t.admin_token)
                .json(json!({"content": "Hello {{customer_name}}."})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["shortcut"], "hello");
    assert_eq!(r.body["scope"], "company");
    assert_eq!(env.audit_count("canned_response.update").await, 2);

    // Delete (soft): the same rule; the shortcut is free again afterwards.
    assert_error!(
        env.send(Inbox, Req::delete(&one(&greeting["id"])).token(&sam_token)).await,
        StatusCode::FORBIDDEN,
        "forbidden"
    );
    let r = env.send(Inbox, Req::delete(&one(&refund["id"])).token(&sam_token)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_error!(
        env.send(Inbox, Req::get(&one(&refund["id"])).token(&sam_token)).await,
        StatusCode::NOT_FOUND,
        "not_found"
    );
    assert_error!(
        env.send(Inbox, Req::delete(&one(&refund["id"])).token(&sam_token)).await,
        StatusCode::NOT_FOUND,
        "not_found"
    );
    let r = env.send(Inbox, Req::delete(&one(&greeting["id"])).token(&t.admin_token)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(env.count("chatapp_canned_responses WHERE NOT is_active").await, 2, "deleted softly");
    create(
        &env,
        &t.admin_token,
        json!({"title": "New greeting", "content": "Hi", "shortcut": "hello", "scope": "company"}),
    )
    .await;
    assert_eq!(env.audit_count("canned_response.delete").await, 2);
}

#[tokio::test]
async fn rendering_fills_variables_and_counts_uses() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "professional").await;
    let other = env.company("beta", "professional").await;
    let (_, sam_token) = env.member(&t, "sam@acme.test", "support_agent", json!({})).await;
    let agent = widget_agent(&env, &t).await;
    let (dana, _) = widget_session(&env, agent, json!({"name": "Dana", "email": "dana@example.com"})).await;
    let (anonymous, _) = widget_session(&env, agent, json!({})).await;
    let other_agent = widget_agent(&env, &other).await;
    let (foreign, _) = widget_session(&env, other_agent, json!({"name": "Eve"})).await;

    let canned = create(
        &env,
        &t.admin_token,
        json!({"title": "Welcome", "scope": "company",
               "content": "Hi {{customer_name}} ({{ customer_email }}), I'm {{agent_name}} from {{company_name}}. {{order_id}}"}),
    )
    .await;
    let render = |conv: Uuid, token: String| {
        let path = format!("{}/render", one(&canned["id"]));
        let env = &env;
        async move { env.send(Inbox, Req::post(&path).token(&token).json(json!({"conversation_id": conv}))).await }
    };

    let r = render(dana, sam_token.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["content"], "Hi Dana (dana@example.com), I'm sam from Company acme. {{order_id}}");
    let r = render(anonymous, t.admin_token.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["content"], "Hi there (), I'm Admin from Company acme. {{order_id}}");

    // Each render counts a use; no audit row for it.
    let got = env.send(Inbox, Req::get(&one(&canned["id"])).token(&sam_token)).await;
    assert_eq!(got.body["usage_count"], 2);
    assert!(got.body["last_used_at"].is_string());
    assert_eq!(env.audit_count("canned_response.use").await, 0);

    // Another tenant's conversation, an unknown canned response, bad bodies: nothing counted.
    assert_error!(render(foreign, sam_token.clone()).await, StatusCode::NOT_FOUND, "not_found");
    assert_error!(render(Uuid::new_v4(), sam_token.clone()).await, StatusCode::NOT_FOUND, "not_found");
    assert_error!(
        env.send(
            Inbox,
            Req::post(&format!("{PATH}/{}/render", Uuid::new_v4()))
                .token(&sam_token)
                .json(json!({"conversation_id": dana}))
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found"
    );
    for bad in [json!({}), json!({"conversation_id": "nope"}), json!({"conversation_id": dana, "x": 1})] {
        assert_error!(
            env.send(Inbox, Req::post(&format!("{}/render", one(&canned["id"]))).token(&sam_token).json(bad)).await,
            StatusCode::BAD_REQUEST,
            "validation_failed"
        );
    }
    // A conversation a colleague owns is not the support agent's to answer.
    env.owner()
        .await
        .execute(
            "UPDATE chatapp_conversations SET status = 'with_human', assigned_agent_id = $2 WHERE id = $1",
            &[&dana, &t.admin_id],
        )
        .await
        .unwrap();
    assert_error!(render(dana, sam_token.clone()).await, StatusCode::NOT_FOUND, "not_found");
    let got = env.send(Inbox, Req::get(&one(&canned["id"])).token(&sam_token)).await;
    assert_eq!(got.body["usage_count"], 2);
}

#[tokio::test]
async fn a_nul_character_in_a_filter_is_a_clear_400() {
    // Found by schemathesis: PostgreSQL text cannot hold NUL, and the list answered 500.
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    let (_, sam_token) = env.member(&t, "sam@acme.test", "support_agent", json!({})).await;
    let r = env.send(Inbox, Req::get(&format!("{PATH}?shortcut=ab%00c&q=")).token(&sam_token)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("shortcut"), "{}", r.body);
}
