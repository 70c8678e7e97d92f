use crate::helpers::*;
use serde_json::json;

#[actix_web::test]
async fn health_ready_metrics_and_request_ids() {
    let app = spawn_app().await;
    let res = app.request("GET", "/healthz", None, None).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body, json!({"status": "ok"}));
    assert!(res.headers.get("x-request-id").is_some());

    let res = app.request("GET", "/readyz", None, None).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body["database"], "up");
    assert_eq!(res.body["status"], "ready");

    let res = app.request("GET", "/metrics", None, None).await;
    assert_eq!(res.status, 200);
    assert!(
        res.text.contains("vouch_http_requests_total"),
        "{}",
        res.text
    );
}

#[actix_web::test]
async fn a_sane_client_request_id_is_echoed_and_a_bad_one_replaced() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(format!("{}/v1/orgs", app.address))
        .insert_header(("X-Request-Id", "client-abc.123"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers().get("x-request-id").unwrap(), "client-abc.123");
    let res = app
        .client
        .get(format!("{}/healthz", app.address))
        .insert_header(("X-Request-Id", "bad id with spaces"))
        .send()
        .await
        .unwrap();
    assert_ne!(
        res.headers().get("x-request-id").unwrap(),
        "bad id with spaces"
    );
}

#[actix_web::test]
async fn unknown_routes_are_json_404s() {
    let app = spawn_app().await;
    let res = app.request("GET", "/nope", None, None).await;
    assert_error(&res, 404, "not_found");
    let res = app.get("/v1/orgs/not-a-uuid", &app.admin_key).await;
    assert_error(&res, 404, "not_found");
}

#[actix_web::test]
async fn another_method_on_a_known_path_is_405_with_allow() {
    let app = spawn_app().await;
    let org = "0192f0c1-0000-7000-8000-000000000000";
    for (method, path, allow) in [
        ("PUT", "/v1/orgs".to_owned(), "GET, POST"),
        ("TRACE", format!("/v1/orgs/{org}/keys"), "GET, POST"),
        ("DELETE", format!("/v1/orgs/{org}"), "GET, PATCH"),
        ("GET", "/v1/sessions/current".to_owned(), "DELETE"),
        ("POST", "/healthz".to_owned(), "GET"),
        // Routed before /v1/sessions/{id}, which it also matches.
        ("GET", "/v1/sessions/refresh".to_owned(), "POST"),
        ("DELETE", "/v1/sessions/refresh".to_owned(), "POST"),
    ] {
        let res = app.request(method, &path, Some(&app.admin_key), None).await;
        assert_error(&res, 405, "method_not_allowed");
        assert_eq!(res.headers.get("allow").unwrap(), allow, "{method} {path}");
    }
    // Unknown paths stay 404, whatever the method.
    let res = app.request("PUT", "/v1/nope", None, None).await;
    assert_error(&res, 404, "not_found");
    assert!(res.headers.get("allow").is_none());
}

#[actix_web::test]
async fn openapi_documents_every_route() {
    let app = spawn_app().await;
    let res = app.request("GET", "/openapi.json", None, None).await;
    assert_eq!(res.status, 200);
    assert!(res.body["openapi"].as_str().unwrap().starts_with("3."));
    let expected = [
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
        ("post", "/v1/users"),
        ("get", "/v1/users/{id}"),
        ("patch", "/v1/users/{id}"),
        ("post", "/v1/users/{id}/disable"),
        ("post", "/v1/users/{id}/enable"),
        ("post", "/v1/orgs"),
        ("get", "/v1/orgs"),
        ("get", "/v1/orgs/{org_id}"),
        ("patch", "/v1/orgs/{org_id}"),
        ("get", "/v1/orgs/{org_id}/members"),
        ("post", "/v1/orgs/{org_id}/members"),
        ("patch", "/v1/orgs/{org_id}/members/{user_id}"),
        ("delete", "/v1/orgs/{org_id}/members/{user_id}"),
        ("post", "/v1/orgs/{org_id}/keys"),
        ("get", "/v1/orgs/{org_id}/keys"),
        ("get", "/v1/orgs/{org_id}/keys/{key_id}"),
        ("post", "/v1/orgs/{org_id}/keys/{key_id}/revoke"),
        ("post", "/v1/orgs/{org_id}/keys/{key_id}/rotate"),
        ("post", "/v1/keys/verify"),
        ("get", "/v1/events"),
        ("get", "/v1/orgs/{org_id}/events"),
        ("get", "/v1/orgs/{org_id}/access"),
        ("get", "/v1/audit/export"),
        ("post", "/v1/sessions"),
        ("get", "/v1/sessions"),
        ("post", "/v1/sessions/refresh"),
        ("delete", "/v1/sessions/current"),
        ("delete", "/v1/sessions/{id}"),
        ("get", "/v1/me"),
        ("post", "/v1/introspect"),
        ("post", "/v1/users/{id}/password"),
        ("get", "/.well-known/jwks.json"),
    ];
    for (method, path) in expected {
        assert!(
            res.body["paths"][path][method].is_object(),
            "{method} {path} is not documented"
        );
    }
    // Every documented operation is also routed: none lands on the default service.
    for (path, operations) in res.body["paths"].as_object().unwrap() {
        let concrete = path
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    "0192f0c1-0000-7000-8000-000000000000"
                } else {
                    seg
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in operations.as_object().unwrap().keys() {
            app.request(&method.to_uppercase(), &concrete, None, None)
                .await;
        }
    }
    let metrics = app.request("GET", "/metrics", None, None).await;
    assert!(
        !metrics.text.contains("route=\"unmatched\""),
        "an operation is documented but not routed"
    );
}

#[actix_web::test]
async fn protected_routes_need_a_valid_credential() {
    let app = spawn_app().await;
    for key in [
        None,
        Some("garbage"),
        Some("vk_short"),
        Some("eyJhbGciOiJub25lIn0.e30."),
    ] {
        let res = app.request("GET", "/v1/orgs", key, None).await;
        assert_error(&res, 401, "unauthenticated");
        assert_eq!(res.headers.get("www-authenticate").unwrap(), "Bearer");
    }
    // A well-formed key, checksum and all, that was never issued.
    let never_issued = vouch::auth::api_key::PresentedKey::generate();
    let res = app.get("/v1/orgs", never_issued.expose()).await;
    assert_error(&res, 401, "unauthenticated");
}

#[actix_web::test]
async fn three_instances_starting_together_migrate_once() {
    let database = fresh_database();
    let url = database.url.clone();
    let build = |url: String| async move {
        vouch::startup::Application::build(vouch::config::Settings::for_database(url)).await
    };
    let (a, b, c) = tokio::join!(build(url.clone()), build(url.clone()), build(url.clone()));
    let apps = [a.unwrap(), b.unwrap(), c.unwrap()];
    let created = apps
        .iter()
        .filter(|a| matches!(a.bootstrap(), vouch::app::Bootstrap::Created(_)))
        .count();
    assert_eq!(created, 1, "exactly one instance bootstraps");
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    actix_web::rt::spawn(conn);
    let applied: i64 = client
        .query_one("SELECT count(*) FROM refinery_schema_history", &[])
        .await
        .unwrap()
        .get(0);
    let files = std::fs::read_dir("migrations").unwrap().count() as i64;
    assert_eq!(applied, files);
    let orgs: i64 = client
        .query_one("SELECT count(*) FROM orgs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(orgs, 1);
}

#[actix_web::test]
async fn an_operator_mints_a_fresh_admin_key_recorded_as_events() {
    let app = spawn_app().await;
    let pool = vouch::store::connect(&app.database_url, 2).await.unwrap();
    let operator = vouch::app::App::new(pool, vouch::app::Policy::default());
    let issued = operator.mint_admin_key("operator").await.unwrap();
    let key = issued.key.expose().to_owned();
    assert_ne!(key, app.admin_key);
    let res = app.get("/v1/events?type=api_key.created", &key).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let created = app
        .events_eventually("/v1/events?type=api_key.created", &key, 2)
        .await;
    let items = created.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[1]["data"]["scopes"], json!(["vouch:admin"]));
    assert_eq!(items[1]["metadata"]["actor"]["type"], "system");
}

/// Series of the request counter in a `/metrics` text.
fn request_series(metrics: &str) -> usize {
    metrics
        .lines()
        .filter(|l| l.starts_with("vouch_http_requests_total{"))
        .count()
}

#[actix_web::test]
async fn made_up_methods_and_paths_add_no_series() {
    let app = spawn_app().await;
    // Every status a made-up request can get, once, so that only growth shows.
    let warm_up = [
        ("GET", "/nowhere"),
        ("POST", "/nowhere"),
        ("FROB", "/nowhere"),
        ("FROB", "/healthz"),
        ("GET", "/metrics"),
    ];
    for (method, path) in warm_up {
        app.request(method, path, None, None).await;
    }
    let before = request_series(&app.request("GET", "/metrics", None, None).await.text);
    for i in 0..40 {
        app.request(&format!("M{i}X"), "/healthz", None, None).await;
        app.request(&format!("M{i}Y"), &format!("/made/up/{i}"), None, None)
            .await;
        app.request("GET", &format!("/made/up/{i}"), None, None)
            .await;
        app.request("POST", &format!("/v1/nothing-{i}"), None, None)
            .await;
    }
    let metrics = app.request("GET", "/metrics", None, None).await.text;
    let after = request_series(&metrics);
    eprintln!("request series: {before} before 160 made-up requests, {after} after");
    assert_eq!(after, before, "made-up methods and paths added series");
    assert!(metrics.contains("method=\"other\""));
    assert!(!metrics.contains("M1X") && !metrics.contains("/made/up"));
}

#[actix_web::test]
async fn metrics_can_leave_the_public_port() {
    let app = spawn_app_with(|s| s.metrics_bind = "127.0.0.1:0".into()).await;
    let management = app.management.clone().expect("a management listener");
    assert_error(
        &app.request("GET", "/metrics", None, None).await,
        404,
        "not_found",
    );
    let mut res = app
        .client
        .get(format!("{management}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let text = String::from_utf8(res.body().await.unwrap().to_vec()).unwrap();
    assert!(text.contains("vouch_http_requests_total"), "{text}");
    let res = app
        .client
        .get(format!("{management}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    // The API stays on the public port only.
    let res = app
        .client
        .get(format!("{management}/v1/orgs"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
    // The stop handle stops both listeners.
    app.stop.stop().await;
    assert!(app
        .client
        .get(format!("{management}/healthz"))
        .send()
        .await
        .is_err());
}

/// Whether the database at `url` holds any event.
async fn has_events(url: &str) -> bool {
    let pool = vouch::store::connect(url, 1).await.unwrap();
    !vouch::store::events::is_log_empty(&pool.get().await.unwrap())
        .await
        .unwrap()
}

#[actix_web::test]
async fn a_start_that_cannot_use_its_key_file_or_address_commits_no_admin_key() {
    // A key file in a directory that does not exist (an image without a
    // writable working directory).
    let database = fresh_database();
    let url = database.url.clone();
    let mut settings = vouch::config::Settings::for_database(&url);
    settings.audit_key_file = std::path::PathBuf::from("/nonexistent-vouch-dir/vouch-audit.key");
    let outcome = vouch::startup::Application::build(settings).await;
    assert!(
        matches!(outcome, Err(vouch::startup::StartError::AuditKey(_))),
        "{:?}",
        outcome.err()
    );
    // An address that is taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut settings = vouch::config::Settings::for_database(&url);
    settings.bind = taken.local_addr().unwrap().to_string();
    let outcome = vouch::startup::Application::build(settings).await;
    assert!(
        matches!(outcome, Err(vouch::startup::StartError::Bind { .. })),
        "{:?}",
        outcome.err()
    );
    // Nothing was bootstrapped: the next start that works prints the first key.
    let app = spawn_app_on(database, |_| {}).await;
    assert!(has_events(&url).await);
    assert!(app.admin_key.starts_with("vk_"));
}

#[actix_web::test]
async fn the_healthcheck_command_answers_for_the_container() {
    let app = spawn_app().await;
    let bind = app
        .address
        .trim_start_matches("http://")
        .replace("127.0.0.1", "0.0.0.0");
    // On the blocking pool: the service runs on this test's runtime.
    let run = |args: Vec<String>| async move {
        actix_web::rt::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_vouch"))
                .arg("healthcheck")
                .args(args)
                .env("VOUCH_LOG", "off")
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    };
    let args = |list: &[&str]| list.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let out = run(args(&["--bind", &bind])).await;
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("/healthz: 200"));
    let out = run(args(&["--bind", &bind, "--ready"])).await;
    assert!(out.status.success(), "{out:?}");
    // Nothing listens there.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let out = run(args(&["--bind", &format!("127.0.0.1:{port}")])).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}
