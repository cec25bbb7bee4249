//! PostgreSQL over TLS as a deployment uses it: the local server is switched to a certificate
//! from a CA this test makes, then `sslmode=verify-full` with that CA connects (encrypted),
//! a wrong CA is refused, and `disable` / `require` behave as libpq's do. The server's settings
//! are restored afterwards. The outbound HTTPS clients (reqwest for providers, the AWS SDK's)
//! complete a handshake on ring, the one crypto provider linked, and refuse a wrong CA.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use chatapp::db::tls::connect_once;
use chatapp_tests::{connect, pg_admin_base, TestEnv};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().expect("openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA, and a server certificate it signs for 127.0.0.1 / localhost.
fn make_certificates(dir: &Path, name: &str) {
    let ca_key = format!("{name}-ca.key");
    let ca = format!("{name}-ca.pem");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name} test CA"),
            "-keyout",
            &ca_key,
            "-out",
            &ca,
        ],
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ],
    );
}

/// Writes `contents` to `path` as the PostgreSQL server's OS user (the server must own its key).
async fn write_as_server(admin: &tokio_postgres::Client, path: &str, contents: &str) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(contents);
    admin
        .batch_execute(&format!("COPY (SELECT '{b64}') TO PROGRAM 'rm -f {path} && umask 077 && base64 -d > {path}'"))
        .await
        .unwrap();
}

async fn restore(admin: &tokio_postgres::Client) {
    for stmt in ["ALTER SYSTEM RESET ssl_cert_file", "ALTER SYSTEM RESET ssl_key_file", "SELECT pg_reload_conf()"] {
        admin.batch_execute(stmt).await.unwrap();
    }
}

async fn encrypted(url: &str) -> Result<bool, String> {
    let client = connect_once(url).await.map_err(|e| chatapp::error::error_chain(&e))?;
    let row = client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await.unwrap();
    Ok(row.get(0))
}

#[tokio::test]
async fn verify_full_connects_with_the_right_ca_and_refuses_a_wrong_one() {
    let env = TestEnv::new().await;
    let admin = connect(&format!("{}/postgres", pg_admin_base())).await;
    let on: String = admin.query_one("SHOW ssl", &[]).await.unwrap().get(0);
    assert_eq!(on, "on", "this test needs ssl = on in the local PostgreSQL (Debian's default)");
    let data: String = admin.query_one("SHOW data_directory", &[]).await.unwrap().get(0);

    let dir = std::env::temp_dir().join(format!("chatapp-tls-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    make_certificates(&dir, "right");
    let wrong = dir.join("wrong");
    std::fs::create_dir_all(&wrong).unwrap();
    make_certificates(&wrong, "wrong");

    let (cert, key) = (format!("{data}/chatapp-test-server.pem"), format!("{data}/chatapp-test-server.key"));
    write_as_server(&admin, &cert, &std::fs::read_to_string(dir.join("server.pem")).unwrap()).await;
    write_as_server(&admin, &key, &std::fs::read_to_string(dir.join("server.key")).unwrap()).await;
    // ALTER SYSTEM cannot run in a transaction block: one statement at a time.
    admin.batch_execute(&format!("ALTER SYSTEM SET ssl_cert_file = '{cert}'")).await.unwrap();
    admin.batch_execute(&format!("ALTER SYSTEM SET ssl_key_file = '{key}'")).await.unwrap();
    admin.batch_execute("SELECT pg_reload_conf()").await.unwrap();

    let base = env.cfg.database_url.expose().clone();
    let right_ca = dir.join("right-ca.pem");
    let wrong_ca = wrong.join("wrong-ca.pem");
    let checks = tokio::spawn(async move {
        let verify_full = format!("{base}?sslmode=verify-full&sslrootcert={}", right_ca.display());
        // The reload is asynchronous: wait until new connections get the new certificate.
        let mut last = Err(String::new());
        for _ in 0..50 {
            last = encrypted(&verify_full).await;
            if last.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(last, Ok(true), "verify-full with the server's CA");
        let refused = encrypted(&format!("{base}?sslmode=verify-full&sslrootcert={}", wrong_ca.display())).await;
        assert!(refused.is_err(), "a wrong CA must be refused: {refused:?}");
        let refused = encrypted(&format!("{base}?sslmode=verify-ca&sslrootcert={}", wrong_ca.display())).await;
        assert!(refused.is_err(), "verify-ca with a wrong CA must be refused: {refused:?}");
        assert_eq!(encrypted(&format!("{base}?sslmode=verify-ca&sslrootcert={}", right_ca.display())).await, Ok(true));
        assert_eq!(encrypted(&format!("{base}?sslmode=require")).await, Ok(true));
        assert_eq!(encrypted(&format!("{base}?sslmode=disable")).await, Ok(false));
        assert_eq!(encrypted(&base).await, Ok(true), "prefer (the default) encrypts when the server offers TLS");
        let no_ca = encrypted(&format!("{base}?sslmode=verify-full")).await.unwrap_err();
        assert!(no_ca.contains("sslrootcert"), "{no_ca}");
    })
    .await;
    restore(&admin).await;
    admin.batch_execute(&format!("COPY (SELECT 1) TO PROGRAM 'rm -f {cert} {key}'")).await.unwrap();
    std::fs::remove_dir_all(&dir).ok();
    if let Err(e) = checks {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// `openssl s_server -www` (an HTTPS server answering any GET with a status page) on a free
/// loopback port, with the certificate `make_certificates` wrote in `dir`.
async fn https_server(dir: &Path) -> (tokio::process::Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = tokio::process::Command::new("openssl")
        .current_dir(dir)
        .args(["s_server", "-quiet", "-www", "-cert", "server.pem", "-key", "server.key"])
        .args(["-accept", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("openssl s_server");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return (child, port);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("openssl s_server did not listen on {port}");
}

#[tokio::test]
async fn outbound_https_clients_handshake_on_ring_and_refuse_a_wrong_ca() {
    let dir = std::env::temp_dir().join(format!("chatapp-https-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(dir.join("wrong")).unwrap();
    make_certificates(&dir, "right");
    make_certificates(&dir.join("wrong"), "wrong");
    let right = std::fs::read(dir.join("right-ca.pem")).unwrap();
    let wrong = std::fs::read(dir.join("wrong/wrong-ca.pem")).unwrap();
    let (_server, port) = https_server(&dir).await;
    let url = format!("https://127.0.0.1:{port}/");

    // reqwest, as every provider call builds it.
    let reqwest_with = |ca: &[u8]| {
        chatapp::outbound_http::client_builder()
            .tls_certs_only([reqwest::Certificate::from_pem(ca).unwrap()])
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    };
    let answer = reqwest_with(&right).get(&url).send().await.expect("a TLS handshake on ring");
    assert_eq!(answer.status(), 200);
    // s_server serves one connection at a time: read this one to its end before the next.
    assert!(answer.text().await.unwrap().contains("<HTML>"));
    assert!(reqwest_with(&wrong).get(&url).send().await.is_err(), "a wrong CA must be refused");

    // The AWS SDK's client, as `chatapp::adapters::aws::loader` builds it. The server is not S3,
    // so a request that got through TLS fails on its answer; a refused handshake fails to dispatch.
    let s3_with = |ca: &[u8]| {
        let trust = chatapp::adapters::aws::TrustStore::empty().with_pem_certificate(ca.to_vec());
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .http_client(chatapp::adapters::aws::https_client(trust))
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new("k", "s", None, None, "tests"))
            .endpoint_url(&url)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    };
    let through = s3_with(&right).list_buckets().send().await.unwrap_err();
    assert!(
        !matches!(through, aws_sdk_s3::error::SdkError::DispatchFailure(_)),
        "the right CA must get through TLS: {through:?}"
    );
    let refused = s3_with(&wrong).list_buckets().send().await.unwrap_err();
    assert!(matches!(refused, aws_sdk_s3::error::SdkError::DispatchFailure(_)), "{refused:?}");
    std::fs::remove_dir_all(&dir).ok();
}
