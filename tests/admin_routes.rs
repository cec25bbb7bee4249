//! Every admin route through its handler: happy path, malformed JSON, wrong types, unknown
//! id, another tenant's id (404, not 403), an audit row per mutation, nothing stored on error.

use chatapp_functions::http_function::HttpFunction::{ApiKeys, Companies, Invitations, Team};
use chatapp_tests::{assert_error, Req, TestEnv, PASSWORD};
use http::StatusCode;
use serde_json::json;
use uuid::Uuid;

const UNKNOWN: &str = "6f1c1d0e-1111-4222-8333-944445555666";

#[tokio::test]
async fn companies_routes() {
    let env = TestEnv::new().await;
    let master = env.master_token().await;
    let a = env.company("alpha", "starter").await;
    let b = env.company("beta", "professional").await;

    // Create: validation before anything is stored.
    let before = env.count("chatapp_companies").await;
    for (body, code) in [
        (Req::post("/admin/companies").token(&master).raw("{"), "invalid_json"),
        (Req::post("/admin/companies").token(&master).json(json!({"name": 1, "slug": "x1"})), "validation_failed"),
        (
            Req::post("/admin/companies").token(&master).json(json!({"name": "X", "slug": "Bad Slug"})),
            "validation_failed",
        ),
        (
            Req::post("/admin/companies").token(&master).json(json!({"name": "X", "slug": "xx", "extra": 1})),
            "validation_failed",
        ),
        (
            Req::post("/admin/companies").token(&master).json(json!({"name": "X", "slug": "xx", "plan": "platinum"})),
            "validation_failed",
        ),
    ] {
        assert_error!(env.send(Companies, body).await, StatusCode::BAD_REQUEST, code);
    }
    assert_error!(
        env.send(Companies, Req::post("/admin/companies").token(&master).json(json!({"name": "Dup", "slug": "alpha"})))
            .await,
        StatusCode::CONFLICT,
        "slug_taken"
    );
    assert_eq!(env.count("chatapp_companies").await, before, "a failed create stored something");
    assert_eq!(env.count("chatapp_company_subscriptions WHERE plan_id IS NULL").await, 0);
    assert_eq!(env.audit_count("company.create").await, 2);
    // Body size limit.
    let huge = format!("{{\"name\":\"{}\",\"slug\":\"huge\"}}", "x".repeat(70 * 1024));
    assert_error!(
        env.send(Companies, Req::post("/admin/companies").token(&master).raw(&huge)).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large"
    );

    // A company admin cannot create, sees only its own company.
    assert_error!(
        env.send(
            Companies,
            Req::post("/admin/companies").token(&a.admin_token).json(json!({"name": "X", "slug": "xx"}))
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden"
    );
    let list = env.send(Companies, Req::get("/admin/companies").token(&a.admin_token)).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["total"], 1);
    assert_eq!(list.body["items"][0]["id"], a.company_id.to_string());
    let all = env.send(Companies, Req::get("/admin/companies?limit=1").token(&master)).await;
    assert_eq!(all.body["total"], 2);
    assert_eq!(all.body["items"].as_array().unwrap().len(), 1);
    assert_error!(
        env.send(Companies, Req::get("/admin/companies?limit=1000").token(&master)).await,
        StatusCode::BAD_REQUEST,
        "validation_failed"
    );

    // Get: own company with limits; another tenant's id and unknown ids are 404.
    let got = env.send(Companies, Req::get(&format!("/admin/companies/{}", a.company_id)).token(&a.admin_token)).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    assert!(got.body["limits"]["supportSeats"].is_number());
    assert_error!(
        env.send(Companies, Req::get(&format!("/admin/companies/{}", b.company_id)).token(&a.admin_token)).await,
        StatusCode::NOT_FOUND,
        "not_found"
    );
    assert_error!(
        env.send(Companies, Req::get(&format!("/admin/companies/{UNKNOWN}")).token(&master)).await,
        StatusCode::NOT_FOUND,
        "not_found"
    );
    assert_error!(
        env.send(Companies, Req::get("/admin/companies/not-a-uuid").token(&master)).await,
        StatusCode::NOT_FOUND,
        "not_found"
    );

    // Update (master only), with before/after in the audit row.
    let up = env
        .send(
            Companies,
            Req::patch(&format!("/admin/companies/{}", a.company_id))
                .token(&master)
                .json(json!({"name": "Alpha Inc", "primary_color": "#112233"})),
        )
        .await;
    assert_eq!(up.status, StatusCode::OK, "{}", up.body);
    assert_eq!(up.body["name"], "Alpha Inc");
    let audit = env
        .owner()
        .await
        .query_one("SELECT details FROM chatapp_audit_logs WHERE action = 'company.update'", &[])
        .await
        .unwrap()
        .get::<_, serde_json::Value>(0);
    assert_eq!(audit["before"]["name"], "Company alpha");
    assert_eq!(audit["after"]["name"], "Alpha Inc");
    assert_error!(
        env.send(
            Companies,
            Req::patch(&format!("/admin/companies/{}", a.company_id))
                .token(&master)
                .json(json!({"primary_color": "red"}))
        )
        .await,
        StatusCode::BAD_REQUEST,
        "validation_failed"
    );
    assert_error!(
        env.send(
            Companies,
            Req::patch(&format!("/admin/companies/{}", a.company_id))
                .token(&a.admin_token)
                .json(json!({"name": "Mine"}))
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden"
    );
    assert_error!(
        env.send(
            Companies,
            Req::patch(&format!("/admin/companies/{UNKNOWN}")).token(&master).json(json!({"name": "x"}))
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found"
    );
    assert_eq!(env.audit_count("company.update").await, 1);

    // Suspend and reactivate.
    let s = env
        .send(
            Companies,
            Req::post(&format!("/admin/companies/{}/suspend", b.company_id))
                .token(&master)
                .json(json!({"reason": "unpaid"})),
        )
        .await;
    assert_eq!(s.body["status"], "suspended");
    let r =
        env.send(Companies, Req::post(&format!("/admin/companies/{}/reactivate", b.company_id)).token(&master)).await;
    assert_eq!(r.body["status"], "active");
    assert_eq!(env.audit_count("company.suspend").await, 1);
    assert_eq!(env.audit_count("company.reactivate").await, 1);
    assert_error!(
        env.send(Companies, Req::get(&format!("/admin/companies/{}/suspend", b.company_id)).token(&master)).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed"
    );
}

#[tokio::test]
async fn team_routes() {
    let env = TestEnv::new().await;
    let a = env.company("teama", "professional").await;
    let b = env.company("teamb", "professional").await;
    let (agent, agent_token) = env.member(&a, "agent@teama.test", "support_agent", json!({})).await;
    let (b_agent, _) = env.member(&b, "agent@teamb.test", "support_agent", json!({})).await;

    let list = env.send(Team, Req::get("/admin/team/users").token(&a.admin_token)).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["total"], 2);
    // Support agents without team permission cannot list; with it they can read but not write.
    assert_error!(
        env.send(Team, Req::get("/admin/team/users").token(&agent_token)).await,
        StatusCode::FORBIDDEN,
        "forbidden"
    );

    let up = env
        .send(
            Team,
            Req::patch(&format!("/admin/team/users/{agent}"))
                .token(&a.admin_token)
                .json(json!({"permissions": {"team": ["read"]}, "name": "Agent Smith"})),
        )
        .await;
    assert_eq!(up.status, StatusCode::OK, "{}", up.body);
    assert_eq!(up.body["permissions"]["team"][0], "read");
    let relog = env.login("agent@teama.test", PASSWORD).await;
    let agent_token = relog.body["access_token"].as_str().unwrap().to_string();
    assert_eq!(env.send(Team, Req::get("/admin/team/users").token(&agent_token)).await.status, StatusCode::OK);
    assert_error!(
        env.send(
            Team,
            Req::patch(&format!("/admin/team/users/{agent}"))
                .token(&agent_token)
                .json(json!({"role": "company_admin"}))
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden"
    );

    // Bad input stores nothing.
    let audit_before = env.audit_count("user.update").await;
    for body in [
        json!({"role": "master_admin"}),
        json!({"role": 7}),
        json!({"permissions": {"nukes": ["read"]}}),
        json!({"permissions": {"team": ["fly"]}}),
        json!({"ip_allowlist": ["not-an-ip"]}),
        json!({"unknown": true}),
    ] {
        let r = env
            .send(Team, Req::patch(&format!("/admin/team/users/{agent}")).token(&a.admin_token).json(body.clone()))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body} -> {}", r.body);
    }
    assert_error!(
        env.send(Team, Req::patch(&format!("/admin/team/users/{agent}")).token(&a.admin_token).raw("nope")).await,
        StatusCode::BAD_REQUEST,
        "invalid_json"
    );
    assert_eq!(env.audit_count("user.update").await, audit_before);
    assert_eq!(env.count(&format!("chatapp_users WHERE id = '{agent}' AND role = 'support_agent'")).await, 1);

    // Another tenant's user and unknown ids are 404 for every verb.
    for req in [
        Req::get(&format!("/admin/team/users/{b_agent}")),
        Req::patch(&format!("/admin/team/users/{b_agent}")).json(json!({"name": "pwned"})),
        Req::post(&format!("/admin/team/users/{b_agent}/deactivate")),
        Req::get(&format!("/admin/team/users/{UNKNOWN}")),
    ] {
        assert_error!(env.send(Team, req.token(&a.admin_token)).await, StatusCode::NOT_FOUND, "not_found");
    }
    assert_eq!(env.count(&format!("chatapp_users WHERE id = '{b_agent}' AND is_active AND name IS NULL")).await, 1);

    // Deactivate (not oneself), then reactivate; both audited.
    assert_error!(
        env.send(Team, Req::post(&format!("/admin/team/users/{}/deactivate", a.admin_id)).token(&a.admin_token)).await,
        StatusCode::BAD_REQUEST,
        "cannot_deactivate_self"
    );
    let d = env.send(Team, Req::post(&format!("/admin/team/users/{agent}/deactivate")).token(&a.admin_token)).await;
    assert_eq!(d.body["is_active"], false);
    assert_eq!(env.count(&format!("chatapp_refresh_tokens WHERE user_id = '{agent}' AND revoked_at IS NULL")).await, 0);
    let r = env.send(Team, Req::post(&format!("/admin/team/users/{agent}/activate")).token(&a.admin_token)).await;
    assert_eq!(r.body["is_active"], true);
    assert_eq!(env.audit_count("user.deactivate").await, 1);
    assert_eq!(env.audit_count("user.activate").await, 1);

    // The master admin acts on a company with ?company_id=.
    let master = env.master_token().await;
    let ml = env.send(Team, Req::get(&format!("/admin/team/users?company_id={}", b.company_id)).token(&master)).await;
    assert_eq!(ml.body["total"], 2);
    assert_error!(
        env.send(Team, Req::get("/admin/team/users").token(&master)).await,
        StatusCode::BAD_REQUEST,
        "validation_failed"
    );
}

#[tokio::test]
async fn invitation_routes_and_seat_limit() {
    let env = TestEnv::new().await;
    let a = env.company("inva", "starter").await;
    let b = env.company("invb", "starter").await;
    let seats = env
        .owner()
        .await
        .query_one("SELECT (limits->>'supportSeats')::int FROM chatapp_subscription_plans WHERE slug = 'starter'", &[])
        .await
        .unwrap()
        .get::<_, i32>(0) as i64;

    // Bad input.
    let before = env.count("chatapp_invitations").await;
    for (req, code) in [
        (Req::post("/admin/invitations").raw("[1,"), "invalid_json"),
        (Req::post("/admin/invitations").json(json!({"email": ["x"]})), "validation_failed"),
        (Req::post("/admin/invitations").json(json!({"email": "bad"})), "validation_failed"),
        (
            Req::post("/admin/invitations").json(json!({"email": "a@b.test", "role": "master_admin"})),
            "validation_failed",
        ),
    ] {
        assert_error!(env.send(Invitations, req.token(&a.admin_token)).await, StatusCode::BAD_REQUEST, code);
    }
    assert_eq!(env.count("chatapp_invitations").await, before);

    // Fill the free plan's seats (the admin holds one), then the next invite is refused.
    let mut ids = Vec::new();
    for i in 1..seats {
        let r = env
            .send(
                Invitations,
                Req::post("/admin/invitations").token(&a.admin_token).json(json!({"email": format!("p{i}@inva.test")})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.body["invitation"]["status"], "pending");
        ids.push(r.body["invitation"]["id"].as_str().unwrap().to_string());
    }
    let over = env
        .send(
            Invitations,
            Req::post("/admin/invitations").token(&a.admin_token).json(json!({"email": "over@inva.test"})),
        )
        .await;
    assert_error!(over, StatusCode::PAYMENT_REQUIRED, "seat_limit_reached");
    assert_eq!(env.audit_count("invitation.create").await, seats - 1); // the first admin's came with company.create
    assert!(seats >= 2, "the test needs a plan with room to invite");
    let list = env.send(Invitations, Req::get("/admin/invitations").token(&a.admin_token)).await;
    assert_eq!(list.body["total"], seats); // includes the accepted first-admin invitation

    // Revoking frees a seat; another tenant's id and unknown ids are 404.
    assert_error!(
        env.send(Invitations, Req::delete(&format!("/admin/invitations/{}", ids[0])).token(&b.admin_token)).await,
        StatusCode::NOT_FOUND,
        "not_found"
    );
    assert_error!(
        env.send(Invitations, Req::delete(&format!("/admin/invitations/{UNKNOWN}")).token(&a.admin_token)).await,
        StatusCode::NOT_FOUND,
        "not_found"
    );
    {
        let first = &ids[0];
        let r = env.send(Invitations, Req::delete(&format!("/admin/invitations/{first}")).token(&a.admin_token)).await;
        assert_eq!(r.body["status"], "revoked", "{}", r.body);
        assert_error!(
            env.send(Invitations, Req::delete(&format!("/admin/invitations/{first}")).token(&a.admin_token)).await,
            StatusCode::CONFLICT,
            "not_pending"
        );
        assert_eq!(env.audit_count("invitation.revoke").await, 1);
        let again = env
            .send(
                Invitations,
                Req::post("/admin/invitations")
                    .token(&a.admin_token)
                    .json(json!({"email": "late@inva.test", "role": "company_admin"})),
            )
            .await;
        assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);

        // Accept: bad token, short password, then success once, then replay refused.
        let token = again.body["token"].as_str().unwrap();
        assert_error!(
            env.send(
                Invitations,
                Req::post("/invitations/accept").json(json!({"token": "nope", "password": PASSWORD}))
            )
            .await,
            StatusCode::BAD_REQUEST,
            "invalid_invitation"
        );
        assert_error!(
            env.send(Invitations, Req::post("/invitations/accept").json(json!({"token": token, "password": "short"})))
                .await,
            StatusCode::BAD_REQUEST,
            "validation_failed"
        );
        let users_before = env.count("chatapp_users").await;
        let ok = env
            .send(
                Invitations,
                Req::post("/invitations/accept").json(json!({"token": token, "password": PASSWORD, "name": "Late"})),
            )
            .await;
        assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
        assert_eq!(ok.body["user"]["role"], "company_admin");
        assert_eq!(env.count("chatapp_users").await, users_before + 1);
        assert_error!(
            env.send(Invitations, Req::post("/invitations/accept").json(json!({"token": token, "password": PASSWORD})))
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_invitation"
        );
        // A revoked invitation cannot be accepted either (its token was never returned to us,
        // so check the state machine through the database).
        assert_eq!(
            env.count(&format!(
                "chatapp_invitations WHERE id = '{first}' AND status = 'revoked' AND accepted_by IS NULL"
            ))
            .await,
            1
        );
    }
    // An expired invitation is refused.
    let r = env
        .send(
            Invitations,
            Req::post("/admin/invitations").token(&b.admin_token).json(json!({"email": "exp@invb.test"})),
        )
        .await;
    let id: Uuid = r.body["invitation"]["id"].as_str().unwrap().parse().unwrap();
    env.owner()
        .await
        .execute("UPDATE chatapp_invitations SET expires_at = now() - interval '1 minute' WHERE id = $1", &[&id])
        .await
        .unwrap();
    let token = r.body["token"].as_str().unwrap();
    assert_error!(
        env.send(Invitations, Req::post("/invitations/accept").json(json!({"token": token, "password": PASSWORD})))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_invitation"
    );
    let listed = env.send(Invitations, Req::get("/admin/invitations").token(&b.admin_token)).await;
    assert!(listed.body["items"].as_array().unwrap().iter().any(|i| i["status"] == "expired"));
}

#[tokio::test]
async fn api_key_routes() {
    let env = TestEnv::new().await;
    let a = env.company("keya", "starter").await;
    let b = env.company("keyb", "starter").await;
    let before = env.count("chatapp_api_keys").await;
    for (req, code) in [
        (Req::post("/admin/api-keys").raw("}"), "invalid_json"),
        (Req::post("/admin/api-keys").json(json!({"name": "k", "scopes": "read:team"})), "validation_failed"),
        (Req::post("/admin/api-keys").json(json!({"name": "k", "scopes": []})), "validation_failed"),
        (Req::post("/admin/api-keys").json(json!({"name": "k", "scopes": ["admin:everything"]})), "validation_failed"),
        (Req::post("/admin/api-keys").json(json!({"name": "", "scopes": ["read:team"]})), "validation_failed"),
        (
            Req::post("/admin/api-keys")
                .json(json!({"name": "k", "scopes": ["read:team"], "expires_at": "2001-01-01T00:00:00Z"})),
            "validation_failed",
        ),
    ] {
        assert_error!(env.send(ApiKeys, req.token(&a.admin_token)).await, StatusCode::BAD_REQUEST, code);
    }
    assert_eq!(env.count("chatapp_api_keys").await, before);

    let r = env
        .send(
            ApiKeys,
            Req::post("/admin/api-keys")
                .token(&a.admin_token)
                .json(json!({"name": "crm", "scopes": ["write:messages", "read:conversations"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let key = r.body["key"].as_str().unwrap();
    assert!(key.starts_with(r.body["api_key"]["key_prefix"].as_str().unwrap()));
    let id = r.body["api_key"]["id"].as_str().unwrap().to_string();
    assert_eq!(env.audit_count("api_key.create").await, 1);
    // The audit row never holds the key.
    assert_eq!(env.count(&format!("chatapp_audit_logs WHERE details::text LIKE '%{key}%'")).await, 0);

    let list = env.send(ApiKeys, Req::get("/admin/api-keys").token(&a.admin_token)).await;
    assert_eq!(list.body["total"], 1);
    assert!(list.body["items"][0].get("key_hash").is_none());
    assert_eq!(env.send(ApiKeys, Req::get("/admin/api-keys").token(&b.admin_token)).await.body["total"], 0);

    // Another tenant cannot revoke it; nor can the key revoke itself.
    assert_error!(
        env.send(ApiKeys, Req::delete(&format!("/admin/api-keys/{id}")).token(&b.admin_token)).await,
        StatusCode::NOT_FOUND,
        "not_found"
    );
    assert_error!(
        env.send(ApiKeys, Req::delete(&format!("/admin/api-keys/{UNKNOWN}")).token(&a.admin_token)).await,
        StatusCode::NOT_FOUND,
        "not_found"
    );
    assert_error!(
        env.send(ApiKeys, Req::delete(&format!("/admin/api-keys/{id}")).token(key)).await,
        StatusCode::FORBIDDEN,
        "forbidden"
    );
    assert_eq!(env.count(&format!("chatapp_api_keys WHERE id = '{id}' AND revoked_at IS NULL")).await, 1);
    let rv = env.send(ApiKeys, Req::delete(&format!("/admin/api-keys/{id}")).token(&a.admin_token)).await;
    assert_eq!(rv.status, StatusCode::OK);
    assert_eq!(rv.body["is_active"], false);
    assert_eq!(env.audit_count("api_key.revoke").await, 1);
    assert_error!(
        env.send(ApiKeys, Req::patch("/admin/api-keys").token(&a.admin_token)).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed"
    );
}
