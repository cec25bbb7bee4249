//! Row-level security, run as the application role: tenant A cannot read, change or delete
//! tenant B's rows in any tenant table; support agents see only their own or unassigned
//! conversations; the master admin sees everything; a pooled connection carries nothing over.

use chatapp::repo;
use chatapp_functions::http_function::HttpFunction;
use chatapp_tests::{bearer, Req, TestEnv};
use http::StatusCode;
use tokio_postgres::Client;
use uuid::Uuid;

const A: &str = "aaaaaaaa-0000-0000-0000-000000000001";
const B: &str = "bbbbbbbb-0000-0000-0000-000000000002";
const ADMIN_A: &str = "aaaaaaaa-0000-0000-0000-0000000000a1";
const AGENT_A2: &str = "aaaaaaaa-0000-0000-0000-0000000000a2";
const MASTER: &str = "00000000-0000-0000-0000-0000000000ff";

async fn fixture() -> TestEnv {
    let env = TestEnv::new().await;
    let sql = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/two_tenants.sql")).unwrap();
    env.owner().await.batch_execute(&sql).await.unwrap();
    env
}

/// Opens a transaction on a raw app-role connection with the settings `Db::begin` applies.
async fn begin_as(c: &Client, company: Option<&str>, user: &str, role: &str) {
    c.batch_execute("BEGIN").await.unwrap();
    c.execute(
        "SELECT set_config('app.current_company_id', $1, true), set_config('app.current_user_id', $2, true),
                set_config('app.user_role', $3, true)",
        &[&company.unwrap_or(""), &user, &role],
    )
    .await
    .unwrap();
}

async fn tenant_tables(owner: &Client) -> Vec<String> {
    owner
        .query(
            "SELECT table_name::text FROM information_schema.columns
             WHERE table_schema = 'public' AND column_name = 'company_id' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn tenant_a_cannot_touch_tenant_b_rows_in_any_table() {
    let env = fixture().await;
    let owner = env.owner().await;
    let tables = tenant_tables(&owner).await;
    assert!(tables.len() >= 25, "{tables:?}");
    let app = env.app_client().await;
    for t in &tables {
        let b_rows: i64 =
            owner.query_one(&format!("SELECT count(*) FROM {t} WHERE company_id = '{B}'"), &[]).await.unwrap().get(0);
        assert!(b_rows > 0, "fixture has no B row in {t}");
        begin_as(&app, Some(A), ADMIN_A, "company_admin").await;
        let seen_b: i64 =
            app.query_one(&format!("SELECT count(*) FROM {t} WHERE company_id = '{B}'"), &[]).await.unwrap().get(0);
        let seen_a: i64 =
            app.query_one(&format!("SELECT count(*) FROM {t} WHERE company_id = '{A}'"), &[]).await.unwrap().get(0);
        let updated =
            app.execute(&format!("UPDATE {t} SET company_id = company_id WHERE company_id = '{B}'"), &[]).await;
        let deleted = app.execute(&format!("DELETE FROM {t} WHERE company_id = '{B}'"), &[]).await;
        app.batch_execute("ROLLBACK").await.unwrap();
        assert_eq!(seen_b, 0, "A sees B rows in {t}");
        assert!(seen_a > 0, "A cannot see its own rows in {t}");
        // Either refused outright (no UPDATE/DELETE policy) or zero rows touched.
        assert!(updated.map_or(true, |n| n == 0), "A updated B rows in {t}");
        assert!(deleted.map_or(true, |n| n == 0), "A deleted B rows in {t}");
    }
    // Nothing of B's was changed.
    for t in &tables {
        let after: i64 =
            owner.query_one(&format!("SELECT count(*) FROM {t} WHERE company_id = '{B}'"), &[]).await.unwrap().get(0);
        assert!(after > 0, "{t} lost B rows");
    }
}

#[tokio::test]
async fn child_tables_follow_their_parent_and_writes_into_b_are_refused() {
    let env = fixture().await;
    let owner = env.owner().await;
    let app = env.app_client().await;
    for (table, parent_sql) in [
        ("chatapp_messages", "conversation_id IN (SELECT id FROM chatapp_conversations WHERE company_id = '{B}')"),
        (
            "chatapp_conversation_notes",
            "conversation_id IN (SELECT id FROM chatapp_conversations WHERE company_id = '{B}')",
        ),
        ("chatapp_agent_knowledge_categories", "agent_id IN (SELECT id FROM chatapp_agents WHERE company_id = '{B}')"),
    ] {
        let filter = parent_sql.replace("{B}", B);
        let b_ids: Vec<Uuid> = owner
            .query(&format!("SELECT id FROM {table} WHERE {filter}"), &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(!b_ids.is_empty(), "fixture has no B rows in {table}");
        begin_as(&app, Some(A), ADMIN_A, "company_admin").await;
        let seen: i64 =
            app.query_one(&format!("SELECT count(*) FROM {table} WHERE id = ANY($1)"), &[&b_ids]).await.unwrap().get(0);
        let total: i64 = app.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.unwrap().get(0);
        let deleted = app.execute(&format!("DELETE FROM {table} WHERE id = ANY($1)"), &[&b_ids]).await;
        app.batch_execute("ROLLBACK").await.unwrap();
        assert_eq!(seen, 0, "{table}");
        assert!(total > 0, "{table}: A sees none of its own");
        assert!(deleted.map_or(true, |n| n == 0), "{table}");
    }
    // Inserting a row that claims company B is refused by WITH CHECK.
    begin_as(&app, Some(A), ADMIN_A, "company_admin").await;
    let insert =
        app.execute(&format!("INSERT INTO chatapp_agents (company_id, name) VALUES ('{B}', 'intruder')"), &[]).await;
    app.batch_execute("ROLLBACK").await.unwrap();
    assert!(insert.is_err(), "A inserted an agent into B");
    // Moving one's own row into B is refused too.
    begin_as(&app, Some(A), ADMIN_A, "company_admin").await;
    let moved = app
        .execute(&format!("UPDATE chatapp_knowledge_categories SET company_id = '{B}' WHERE company_id = '{A}'"), &[])
        .await;
    app.batch_execute("ROLLBACK").await.unwrap();
    assert!(moved.is_err(), "A moved a row into B");
    // No settings at all: no tenant rows.
    let none: i64 = app.query_one("SELECT count(*) FROM chatapp_users", &[]).await.unwrap().get(0);
    assert_eq!(none, 0);
}

/// Messages carry their company (0018): whichever company a message names, it cannot land in,
/// or be moved into, another tenant's conversation, and the company need not be named at all
/// inside a tenant transaction.
#[tokio::test]
async fn messages_cannot_be_written_into_another_tenants_conversation() {
    const CONV_A1: &str = "aaaaaaaa-0000-0000-0007-000000000001";
    const CONV_B1: &str = "bbbbbbbb-0000-0000-0007-000000000001";
    const MSG_A1: &str = "aaaaaaaa-0000-0000-0008-000000000001";
    let env = fixture().await;
    let owner = env.owner().await;
    let app = env.app_client().await;
    let attempts = [
        // A's company on B's conversation: the composite foreign key.
        format!("INSERT INTO chatapp_messages (conversation_id, company_id, role, content) VALUES ('{CONV_B1}', '{A}', 'user', 'x')"),
        // B's company on B's conversation: WITH CHECK.
        format!("INSERT INTO chatapp_messages (conversation_id, company_id, role, content) VALUES ('{CONV_B1}', '{B}', 'user', 'x')"),
        // No company named: the default is A's, so the foreign key again.
        format!("INSERT INTO chatapp_messages (conversation_id, role, content) VALUES ('{CONV_B1}', 'user', 'x')"),
        // A's own message moved into B's conversation, or into B.
        format!("UPDATE chatapp_messages SET conversation_id = '{CONV_B1}' WHERE id = '{MSG_A1}'"),
        format!("UPDATE chatapp_messages SET conversation_id = '{CONV_B1}', company_id = '{B}' WHERE id = '{MSG_A1}'"),
    ];
    for sql in &attempts {
        begin_as(&app, Some(A), ADMIN_A, "company_admin").await;
        let result = app.execute(sql.as_str(), &[]).await;
        app.batch_execute("ROLLBACK").await.unwrap();
        assert!(result.is_err(), "allowed: {sql}");
    }
    let b_messages: i64 = owner
        .query_one(&format!("SELECT count(*) FROM chatapp_messages WHERE conversation_id = '{CONV_B1}'"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(b_messages, 1, "B's conversation changed");
    // Into its own conversation, without naming the company: stored under A.
    begin_as(&app, Some(A), ADMIN_A, "company_admin").await;
    let company: Uuid = app
        .query_one(
            &format!(
                "INSERT INTO chatapp_messages (conversation_id, role, content) VALUES ('{CONV_A1}', 'user', 'x') RETURNING company_id"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    app.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(company.to_string(), A);
    // A support agent of A cannot write into A's conversation assigned to a colleague.
    begin_as(&app, Some(A), AGENT_A2, "support_agent").await;
    let result = app
        .execute(
            &format!("INSERT INTO chatapp_messages (conversation_id, role, content) VALUES ('{CONV_A1}', 'human_agent', 'x')"),
            &[],
        )
        .await;
    app.batch_execute("ROLLBACK").await.unwrap();
    assert!(result.is_err(), "a2 wrote into a3's conversation");
}

#[tokio::test]
async fn support_agents_see_only_their_own_or_unassigned_conversations() {
    let env = fixture().await;
    let app = env.app_client().await;
    begin_as(&app, Some(A), AGENT_A2, "support_agent").await;
    let conversations: Vec<Option<Uuid>> = app
        .query("SELECT assigned_agent_id FROM chatapp_conversations", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let messages: i64 = app
        .query_one(
            "SELECT count(*) FROM chatapp_messages m JOIN chatapp_conversations c ON c.id = m.conversation_id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let all_messages: i64 = app.query_one("SELECT count(*) FROM chatapp_messages", &[]).await.unwrap().get(0);
    app.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(conversations, vec![None], "a2 sees only the unassigned conversation");
    assert!(messages > 0);
    assert_eq!(messages, all_messages, "messages of invisible conversations leak");
    // The company admin sees both of A's conversations.
    begin_as(&app, Some(A), ADMIN_A, "company_admin").await;
    let n: i64 = app.query_one("SELECT count(*) FROM chatapp_conversations", &[]).await.unwrap().get(0);
    app.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(n, 2);
}

#[tokio::test]
async fn master_admin_sees_every_tenant() {
    let env = fixture().await;
    let owner = env.owner().await;
    let app = env.app_client().await;
    for t in tenant_tables(&owner).await {
        let total: i64 = owner.query_one(&format!("SELECT count(*) FROM {t}"), &[]).await.unwrap().get(0);
        begin_as(&app, None, MASTER, "master_admin").await;
        let seen: i64 = app.query_one(&format!("SELECT count(*) FROM {t}"), &[]).await.unwrap().get(0);
        app.batch_execute("ROLLBACK").await.unwrap();
        assert_eq!(seen, total, "master misses rows of {t}");
    }
}

/// Through the real pool: one connection serves tenant A, then tenant B (after a commit and
/// after an abandoned transaction), and B never sees A's identity or rows.
#[tokio::test]
async fn a_pooled_connection_carries_nothing_between_tenants() {
    let env = TestEnv::with(&[("DB_POOL_SIZE", "1")]).await;
    let a = env.company("pool-a", "starter").await;
    let b = env.company("pool-b", "starter").await;
    let ctx_a = env.deps.auth.authenticate(Some(&bearer(&a.admin_token)), &Default::default()).await.unwrap();
    let ctx_b = env.deps.auth.authenticate(Some(&bearer(&b.admin_token)), &Default::default()).await.unwrap();
    let page = chatapp::web::Page { limit: 100, offset: 0 };

    let tx = env.deps.db.begin(&ctx_a).await.unwrap();
    let (seen, _) = repo::companies::list(&tx, page, None).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(seen.iter().map(|c| c.id).collect::<Vec<_>>(), vec![a.company_id]);

    let tx = env.deps.db.begin(&ctx_b).await.unwrap();
    let (seen, _) = repo::companies::list(&tx, page, None).await.unwrap();
    let (users, _) = repo::users::list(&tx, a.company_id, page).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(seen.iter().map(|c| c.id).collect::<Vec<_>>(), vec![b.company_id]);
    assert!(users.is_empty(), "B sees A's users");

    // A transaction dropped mid-way (an error path) must not leak A's settings either.
    let tx = env.deps.db.begin(&ctx_a).await.unwrap();
    drop(tx);
    let tx = env.deps.db.begin(&ctx_b).await.unwrap();
    let (seen, _) = repo::companies::list(&tx, page, None).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(seen.iter().map(|c| c.id).collect::<Vec<_>>(), vec![b.company_id]);

    // And through a handler: B's admin asking for A's company gets 404.
    let r = env
        .send(HttpFunction::Companies, Req::get(&format!("/admin/companies/{}", a.company_id)).token(&b.admin_token))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// The SECURITY DEFINER lookups run with the owner's rights and bypass RLS: each must pin its
/// search_path (so no schema the caller controls can shadow a table or function) and be
/// executable by the application role only, never by PUBLIC.
#[tokio::test]
async fn definer_functions_pin_search_path_and_are_not_public() {
    let env = TestEnv::new().await;
    let rows = env
        .owner()
        .await
        .query(
            "SELECT p.proname,
                    COALESCE(array_to_string(p.proconfig, ','), '') LIKE '%search_path=%',
                    p.proacl IS NOT NULL AND NOT EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0),
                    has_function_privilege('chatapp_app', p.oid, 'EXECUTE')
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = 'public' AND p.prosecdef ORDER BY p.proname",
            &[],
        )
        .await
        .unwrap();
    let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert!(names.contains(&"chatapp_resolve_widget_session".to_string()), "{names:?}");
    assert!(!names.contains(&"chatapp_resolve_conversation_session".to_string()), "superseded: {names:?}");
    for r in &rows {
        let name: String = r.get(0);
        assert!(r.get::<_, bool>(1), "{name} does not pin search_path");
        assert!(r.get::<_, bool>(2), "{name} is executable by PUBLIC");
        assert!(r.get::<_, bool>(3), "{name} is not executable by chatapp_app");
    }
}
