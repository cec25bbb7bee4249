//! template.yaml and the functions' routers agree both ways; the local runner serves every
//! function's router at its deployed path; every recorded event in events/ runs through its
//! function's router.

use std::collections::BTreeSet;

use chatapp_functions::http_function::HttpFunction;
use chatapp_local::{serve, TEMPLATE};
use chatapp_tests::TestEnv;
use http::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// `(binary, path)` of every `HttpApi` event in the template, path parameters written `{}`.
fn template_routes() -> BTreeSet<(String, String)> {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(TEMPLATE).unwrap();
    let mut routes = BTreeSet::new();
    for res in doc["Resources"].as_mapping().unwrap().values() {
        let Some(binary) = res["Metadata"]["BuildProperties"]["Binary"].as_str() else { continue };
        let Some(events) = res["Properties"]["Events"].as_mapping() else { continue };
        for ev in events.values().filter(|e| e["Type"].as_str() == Some("HttpApi")) {
            let method = ev["Properties"]["Method"].as_str().unwrap_or("ANY");
            // The router answers every method of its paths (405 with Allow for the wrong one).
            assert_eq!(method, "ANY", "{binary}: route methods belong to the router, not the template");
            routes.insert((binary.to_string(), normalise(ev["Properties"]["Path"].as_str().unwrap())));
        }
    }
    routes
}

fn normalise(path: &str) -> String {
    path.split('/').map(|s| if s.starts_with('{') { "{}" } else { s }).collect::<Vec<_>>().join("/")
}

#[test]
fn every_function_directory_is_in_the_template() {
    let dirs: BTreeSet<String> = std::fs::read_dir(format!("{ROOT}/functions"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "local")
        .collect();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(TEMPLATE).unwrap();
    let binaries: BTreeSet<String> = doc["Resources"]
        .as_mapping()
        .unwrap()
        .values()
        .filter_map(|r| r["Metadata"]["BuildProperties"]["Binary"].as_str().map(str::to_string))
        .collect();
    assert_eq!(dirs, binaries, "functions/ and template.yaml disagree");
}

#[test]
fn the_template_declares_exactly_the_routes_each_function_serves() {
    let declared = template_routes();
    let served: BTreeSet<(String, String)> = HttpFunction::ALL
        .iter()
        .flat_map(|f| f.openapi().paths.paths.into_keys().map(move |p| (f.binary().to_string(), normalise(&p))))
        .collect();
    let missing: Vec<_> = served.difference(&declared).collect();
    let extra: Vec<_> = declared.difference(&served).collect();
    assert!(missing.is_empty(), "routes served but not in template.yaml: {missing:?}");
    assert!(extra.is_empty(), "template.yaml routes no router serves: {extra:?}");
}

/// Deployed functions build their routers without the OpenAPI description (`routes!` inside
/// `without_descriptions`): the same paths with the same methods, and no operations.
#[tokio::test]
async fn routers_built_without_descriptions_serve_the_same_paths_and_methods() {
    use chatapp::web::routes::without_descriptions;
    use tower::ServiceExt;
    let env = TestEnv::new().await;
    let mut checked = 0;
    for f in HttpFunction::ALL {
        let lean_doc = without_descriptions(|| f.openapi());
        for (path, item) in &lean_doc.paths.paths {
            assert_eq!(serde_json::to_value(item).unwrap(), json!({}), "{f:?} {path}: an operation is still described");
        }
        let described = f.router(env.deps.clone());
        let lean = without_descriptions(|| f.router(env.deps.clone()));
        for path in f.openapi().paths.paths.keys() {
            let uri: String = path
                .split('/')
                .map(|s| if s.starts_with('{') { "00000000-0000-4000-8000-000000000001" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            let request =
                || http::Request::builder().method("TRACE").uri(&uri).body(axum::body::Body::empty()).unwrap();
            let a = described.clone().oneshot(request()).await.unwrap();
            let b = lean.clone().oneshot(request()).await.unwrap();
            assert_eq!(a.status(), StatusCode::METHOD_NOT_ALLOWED, "{f:?} {path}");
            assert_eq!(b.status(), a.status(), "{f:?} {path}");
            assert_eq!(b.headers().get("allow"), a.headers().get("allow"), "{f:?} {path}: methods differ");
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} paths checked");
}

#[tokio::test]
async fn a_wrong_method_is_a_json_405_with_allow_and_an_unknown_path_a_json_404() {
    let env = TestEnv::new().await;
    let r = env.send(HttpFunction::Team, chatapp_tests::Req::new("TRACE", "/admin/team/users")).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{}", r.body);
    assert_eq!(r.code(), "method_not_allowed");
    assert_eq!(r.headers.get("allow").and_then(|v| v.to_str().ok()), Some("GET,HEAD"));
    let r = env.send(HttpFunction::Team, chatapp_tests::Req::get("/admin/team/nothing")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "not_found");
    // A path id that is not a UUID cannot name a row (once the caller is authenticated).
    let tenant = env.company("ids", "starter").await;
    let r = env
        .send(HttpFunction::Team, chatapp_tests::Req::get("/admin/team/users/not-a-uuid").token(&tenant.admin_token))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

async fn http_call(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    let status: u16 = text.split(' ').nth(1).unwrap().parse().unwrap();
    let (_, payload) = text.split_once("\r\n\r\n").unwrap();
    (status, serde_json::from_str(payload).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_local_runner_serves_functions_at_their_template_paths() {
    let env = TestEnv::new().await;
    let tenant = env.company("runner", "starter").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve(listener, env.deps.clone()));

    let (s, login) = http_call(
        addr,
        "POST",
        "/auth/login",
        None,
        Some(json!({"email": tenant.admin_email, "password": chatapp_tests::PASSWORD})),
    )
    .await;
    assert_eq!(s, 200, "{login}");
    let token = login["access_token"].as_str().unwrap();
    let (s, company) =
        http_call(addr, "GET", &format!("/admin/companies/{}", tenant.company_id), Some(token), None).await;
    assert_eq!(s, 200, "{company}");
    assert_eq!(company["company"]["slug"], "runner");
    let (s, keys) =
        http_call(addr, "POST", "/admin/api-keys", Some(token), Some(json!({"name": "n", "scopes": ["read:team"]})))
            .await;
    assert_eq!(s, 201, "{keys}");
    let (s, err) = http_call(addr, "GET", "/no/such/route", None, None).await;
    assert_eq!(s, 404);
    assert_eq!(err["error"]["code"], "not_found");
    // The runner reports the peer address as the source IP, as API Gateway would.
    assert!(env.count("chatapp_login_attempts WHERE ip_address = '127.0.0.1' AND succeeded").await >= 1);
    // Oversized bodies are refused before reaching a handler.
    let (s, err) = http_call(addr, "POST", "/auth/login", None, Some(json!({"email": "x".repeat(70 * 1024)}))).await;
    assert_eq!(s, 413, "{err}");
    server.abort();
}

#[tokio::test]
async fn recorded_events_run_through_their_handlers() {
    let env = TestEnv::with(&[("DEMO_ADMIN_PASSWORD", "demo-password-123")]).await;
    chatapp::seed::demo_tenant(&env.cfg).await.unwrap();
    let expect = [
        (HttpFunction::Auth, StatusCode::OK),
        (HttpFunction::Companies, StatusCode::UNAUTHORIZED),
        (HttpFunction::Team, StatusCode::UNAUTHORIZED),
        (HttpFunction::Invitations, StatusCode::BAD_REQUEST),
        (HttpFunction::ApiKeys, StatusCode::UNAUTHORIZED),
        (HttpFunction::KnowledgeCategories, StatusCode::UNAUTHORIZED),
        (HttpFunction::KnowledgeFiles, StatusCode::UNAUTHORIZED),
        (HttpFunction::KnowledgeArticles, StatusCode::UNAUTHORIZED),
        (HttpFunction::KnowledgeSearch, StatusCode::UNAUTHORIZED),
        (HttpFunction::Widget, StatusCode::NOT_FOUND),
        (HttpFunction::ChatApi, StatusCode::UNAUTHORIZED),
        (HttpFunction::Inbox, StatusCode::UNAUTHORIZED),
        (HttpFunction::Agents, StatusCode::UNAUTHORIZED),
        (HttpFunction::AgentActions, StatusCode::UNAUTHORIZED),
        (HttpFunction::AgentVersions, StatusCode::UNAUTHORIZED),
        (HttpFunction::AgentWidgets, StatusCode::UNAUTHORIZED),
        (HttpFunction::EscalationRules, StatusCode::UNAUTHORIZED),
        (HttpFunction::Channels, StatusCode::UNAUTHORIZED),
        (HttpFunction::Models, StatusCode::UNAUTHORIZED),
        (HttpFunction::Plans, StatusCode::UNAUTHORIZED),
        (HttpFunction::PromptTemplates, StatusCode::UNAUTHORIZED),
        (HttpFunction::AgentPackages, StatusCode::UNAUTHORIZED),
        (HttpFunction::AgentPreview, StatusCode::UNAUTHORIZED),
        (HttpFunction::ProviderKeys, StatusCode::UNAUTHORIZED),
        // The webhooks' recorded events name a configuration that does not exist here.
        (HttpFunction::Whatsapp, StatusCode::NOT_FOUND),
        (HttpFunction::Messenger, StatusCode::NOT_FOUND),
        (HttpFunction::Instagram, StatusCode::NOT_FOUND),
        (HttpFunction::Telegram, StatusCode::NOT_FOUND),
        (HttpFunction::Slack, StatusCode::NOT_FOUND),
        (HttpFunction::Teams, StatusCode::NOT_FOUND),
        (HttpFunction::Email, StatusCode::NOT_FOUND),
    ];
    for (f, status) in expect {
        let path = format!("{ROOT}/events/{}.json", f.binary());
        let raw = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let request = lambda_http::request::from_str(&raw).unwrap_or_else(|e| panic!("{path}: {e}"));
        let response = f.call(&env.deps, request).await;
        assert_eq!(response.status(), status, "{path}");
    }
    // The login event's sourceIp (from requestContext) is what the rate limiter saw.
    let event: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{ROOT}/events/auth.json")).unwrap()).unwrap();
    let ip = event["requestContext"]["http"]["sourceIp"].as_str().unwrap();
    assert_eq!(env.count(&format!("chatapp_login_attempts WHERE ip_address = '{ip}'")).await, 1);
    // The migrate event: a no-op on a migrated database.
    let _: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{ROOT}/events/migrate.json")).unwrap()).unwrap();
    let out = chatapp_functions::migrate::run(&env.cfg).await.unwrap();
    assert_eq!(out["applied"], json!([]));
}
