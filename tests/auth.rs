//! Authentication through the handlers: every refusal is a JSON 401/403/429, and tokens,
//! refresh rotation, logout and API keys behave as a security review expects.

use chatapp_functions::http_function::HttpFunction::{self, ApiKeys, Auth, Companies, Team};
use chatapp_tests::{assert_error, Req, TestEnv, PASSWORD};
use http::StatusCode;
use serde_json::json;

#[tokio::test]
async fn login_refuses_wrong_password_unknown_email_and_bad_input() {
    let env = TestEnv::new().await;
    let t = env.company("acme", "starter").await;
    assert_error!(env.login(&t.admin_email, "wrong-password-x").await, StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert_error!(env.login("nobody@acme.test", PASSWORD).await, StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert_error!(
        env.send(Auth, Req::post("/auth/login").raw("{not json")).await,
        StatusCode::BAD_REQUEST,
        "invalid_json"
    );
    assert_error!(
        env.send(Auth, Req::post("/auth/login").json(json!({"email": 5, "password": "x"}))).await,
        StatusCode::BAD_REQUEST,
        "validation_failed"
    );
    assert_error!(
        env.send(Auth, Req::post("/auth/login").json(json!({"email": "not-an-email", "password": "x"}))).await,
        StatusCode::BAD_REQUEST,
        "validation_failed"
    );
    assert_error!(env.send(Auth, Req::get("/auth/login")).await, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    // Success sets last_login_at and writes an audit row.
    let ok = env.login(&t.admin_email, PASSWORD).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body["token_type"], "Bearer");
    assert!(env.count(&format!("chatapp_users WHERE id = '{}' AND last_login_at IS NOT NULL", t.admin_id)).await == 1);
    assert!(env.audit_count("user.login").await >= 1);
}

#[tokio::test]
async fn a_login_flood_gets_429_even_with_the_right_password() {
    let env = TestEnv::with(&[("LOGIN_MAX_FAILURES", "3")]).await;
    let t = env.company("flood", "starter").await;
    for _ in 0..3 {
        assert_error!(
            env.login(&t.admin_email, "wrong-password-x").await,
            StatusCode::UNAUTHORIZED,
            "invalid_credentials"
        );
    }
    let r = env.login(&t.admin_email, PASSWORD).await;
    assert_error!(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    // Per address too: one IP spraying many accounts.
    for i in 0..12 {
        env.send(
            Auth,
            Req::post("/auth/login")
                .ip("10.9.9.9")
                .json(json!({"email": format!("u{i}@x.test"), "password": "nope-nope-1"})),
        )
        .await;
    }
    let r = env
        .send(
            Auth,
            Req::post("/auth/login").ip("10.9.9.9").json(json!({"email": "fresh@x.test", "password": "nope-nope-1"})),
        )
        .await;
    assert_error!(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
}

#[tokio::test]
async fn inactive_expired_and_ip_restricted_users_are_refused() {
    let env = TestEnv::new().await;
    let t = env.company("states", "professional").await;
    let (agent_id, agent_token) = env.member(&t, "agent@states.test", "support_agent", json!({})).await;
    let me = env.send(Auth, Req::get("/auth/me").token(&agent_token)).await;
    assert_eq!(me.status, StatusCode::OK);

    // IP allowlist: applies to the issued token at once and to new logins.
    let r = env
        .send(
            Team,
            Req::patch(&format!("/admin/team/users/{agent_id}"))
                .token(&t.admin_token)
                .json(json!({"ip_allowlist": ["10.0.0.0/8"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_error!(
        env.send(Auth, Req::get("/auth/me").token(&agent_token)).await,
        StatusCode::FORBIDDEN,
        "ip_not_allowed"
    );
    assert_eq!(env.send(Auth, Req::get("/auth/me").token(&agent_token).ip("10.1.2.3")).await.status, StatusCode::OK);
    assert_error!(env.login("agent@states.test", PASSWORD).await, StatusCode::FORBIDDEN, "ip_not_allowed");
    env.send(
        Team,
        Req::patch(&format!("/admin/team/users/{agent_id}")).token(&t.admin_token).json(json!({"ip_allowlist": []})),
    )
    .await;

    // Access expiry.
    let r = env
        .send(
            Team,
            Req::patch(&format!("/admin/team/users/{agent_id}"))
                .token(&t.admin_token)
                .json(json!({"access_expires_at": "2020-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_error!(
        env.send(Auth, Req::get("/auth/me").token(&agent_token)).await,
        StatusCode::UNAUTHORIZED,
        "access_expired"
    );
    assert_error!(env.login("agent@states.test", PASSWORD).await, StatusCode::UNAUTHORIZED, "access_expired");
    env.send(
        Team,
        Req::patch(&format!("/admin/team/users/{agent_id}"))
            .token(&t.admin_token)
            .json(json!({"access_expires_at": null})),
    )
    .await;
    assert_eq!(env.send(Auth, Req::get("/auth/me").token(&agent_token)).await.status, StatusCode::OK);

    // Deactivation.
    let r = env.send(Team, Req::post(&format!("/admin/team/users/{agent_id}/deactivate")).token(&t.admin_token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_error!(
        env.send(Auth, Req::get("/auth/me").token(&agent_token)).await,
        StatusCode::UNAUTHORIZED,
        "account_inactive"
    );
    assert_error!(env.login("agent@states.test", PASSWORD).await, StatusCode::UNAUTHORIZED, "account_inactive");

    // A suspended company's users are locked out.
    let master = env.master_token().await;
    let r = env.send(Companies, Req::post(&format!("/admin/companies/{}/suspend", t.company_id)).token(&master)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_error!(
        env.send(Auth, Req::get("/auth/me").token(&t.admin_token)).await,
        StatusCode::FORBIDDEN,
        "company_suspended"
    );
}

#[tokio::test]
async fn bad_tokens_are_401_json() {
    let env = TestEnv::new().await;
    let t = env.company("tok", "starter").await;
    assert_error!(env.send(Auth, Req::get("/auth/me")).await, StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_error!(
        env.send(Auth, Req::get("/auth/me").token("garbage")).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated"
    );
    let mut forged = t.admin_token.clone();
    forged.pop();
    forged.push(if t.admin_token.ends_with('A') { 'B' } else { 'A' });
    assert_error!(
        env.send(Auth, Req::get("/auth/me").token(&forged)).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated"
    );
    // A token signed with another key.
    let other = TestEnv::with(&[("JWT_SECRET", "another-secret-another-secret-another-1")]).await;
    let foreign = other.master_token().await;
    assert_error!(
        env.send(Auth, Req::get("/auth/me").token(&foreign)).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated"
    );
    // An expired access token.
    let short = TestEnv::with(&[("ACCESS_TOKEN_TTL_SECS", "1")]).await;
    let tok = short.master_token().await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_error!(short.send(Auth, Req::get("/auth/me").token(&tok)).await, StatusCode::UNAUTHORIZED, "token_expired");
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family_and_logout_ends_sessions() {
    let env = TestEnv::new().await;
    let t = env.company("rot", "starter").await;
    let login = env.login(&t.admin_email, PASSWORD).await;
    let r1 = login.body["refresh_token"].as_str().unwrap().to_string();
    let next = env.send(Auth, Req::post("/auth/refresh").json(json!({"refresh_token": r1}))).await;
    assert_eq!(next.status, StatusCode::OK, "{}", next.body);
    let r2 = next.body["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2);
    assert_eq!(
        env.send(Auth, Req::get("/auth/me").token(next.body["access_token"].as_str().unwrap())).await.status,
        StatusCode::OK
    );
    // Replaying r1 is theft: the whole family (r2 included) dies.
    assert_error!(
        env.send(Auth, Req::post("/auth/refresh").json(json!({"refresh_token": r1}))).await,
        StatusCode::UNAUTHORIZED,
        "refresh_token_reused"
    );
    assert_error!(
        env.send(Auth, Req::post("/auth/refresh").json(json!({"refresh_token": r2}))).await,
        StatusCode::UNAUTHORIZED,
        "refresh_token_reused"
    );
    assert_error!(
        env.send(Auth, Req::post("/auth/refresh").json(json!({"refresh_token": "made-up"}))).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token"
    );
    // Logout revokes the session's refresh token.
    let s = env.login(&t.admin_email, PASSWORD).await;
    let (access, refresh) = (s.body["access_token"].as_str().unwrap(), s.body["refresh_token"].as_str().unwrap());
    let out = env.send(Auth, Req::post("/auth/logout").token(access).json(json!({"refresh_token": refresh}))).await;
    assert_eq!(out.status, StatusCode::OK, "{}", out.body);
    assert_eq!(out.body["revoked_sessions"], 1);
    assert_eq!(env.audit_count("user.logout").await, 1);
    let after = env.send(Auth, Req::post("/auth/refresh").json(json!({"refresh_token": refresh}))).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn api_keys_authenticate_with_scopes_and_die_when_revoked_or_expired() {
    let env = TestEnv::new().await;
    let t = env.company("keys", "starter").await;
    let create = |scopes: serde_json::Value, expires: Option<&str>| {
        let mut body = json!({"name": "integration", "scopes": scopes});
        if let Some(e) = expires {
            body["expires_at"] = json!(e);
        }
        Req::post("/admin/api-keys").token(&t.admin_token).json(body)
    };
    let r = env.send(ApiKeys, create(json!(["read:team"]), None)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let key = r.body["key"].as_str().unwrap().to_string();
    let key_id = r.body["api_key"]["id"].as_str().unwrap().to_string();
    // Only the hash is stored.
    assert_eq!(
        env.count(&format!("chatapp_api_keys WHERE key_hash = '{}'", chatapp::auth::tokens::sha256_hex(&key))).await,
        1
    );
    assert_eq!(env.count(&format!("chatapp_api_keys WHERE key_hash = '{key}'")).await, 0);

    // The scope allows reading the team, nothing more.
    let team = env.send(Team, Req::get("/admin/team/users").token(&key)).await;
    assert_eq!(team.status, StatusCode::OK, "{}", team.body);
    assert_eq!(team.body["total"], 1);
    assert_error!(env.send(ApiKeys, Req::get("/admin/api-keys").token(&key)).await, StatusCode::FORBIDDEN, "forbidden");
    assert_error!(
        env.send(
            HttpFunction::Invitations,
            Req::post("/admin/invitations").token(&key).json(json!({"email": "x@y.test"}))
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden"
    );
    assert_eq!(env.count(&format!("chatapp_api_keys WHERE id = '{key_id}' AND last_used_at IS NOT NULL")).await, 1);

    // A wrong secret with a real prefix.
    let mut wrong = key.clone();
    wrong.push('x');
    assert_error!(
        env.send(Team, Req::get("/admin/team/users").token(&wrong)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_api_key"
    );

    // Revoked.
    let rv = env.send(ApiKeys, Req::delete(&format!("/admin/api-keys/{key_id}")).token(&t.admin_token)).await;
    assert_eq!(rv.status, StatusCode::OK, "{}", rv.body);
    assert_error!(
        env.send(Team, Req::get("/admin/team/users").token(&key)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_api_key"
    );

    // Expired: make one that expires in a moment, then push its expiry into the past.
    let r = env.send(ApiKeys, create(json!(["read:team"]), Some("2099-01-01T00:00:00Z"))).await;
    let expiring = r.body["key"].as_str().unwrap().to_string();
    assert_eq!(env.send(Team, Req::get("/admin/team/users").token(&expiring)).await.status, StatusCode::OK);
    env.owner()
        .await
        .execute(
            "UPDATE chatapp_api_keys SET expires_at = now() - interval '1 second' WHERE id = $1",
            &[&r.body["api_key"]["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap()],
        )
        .await
        .unwrap();
    assert_error!(
        env.send(Team, Req::get("/admin/team/users").token(&expiring)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_api_key"
    );
}
