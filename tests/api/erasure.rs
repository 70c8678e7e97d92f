//! `DELETE /v1/users/{id}`: a person is forgotten by every reader, every
//! instance and every byte of the database, while the log stays whole.

use crate::audit::export_to_file;
use crate::bus::Subscriber;
use crate::helpers::*;
use crate::scratch::TempPath;
use serde_json::{json, Value};
use std::time::Duration;
use vouch::app::replay::Mode;
use vouch::audit::export::ExportFilter;
use vouch::audit::key::AuditKey;
use vouch::audit::verify::verify_export;

const EMAIL: &str = "erin.quokka@example.org";
const NAME: &str = "Erin Quokkasdottir";
const RENAMED: &str = "Erin Q. Wallaby";
/// Any address of 127.0.0.0/8 is this machine: the person's requests come
/// from one no other test client uses, so its bytes can be searched for.
const IP: &str = "127.0.0.73";
const AGENT: &str = "QuokkaBrowser/7.3 (erasure probe)";

/// Requests as the person makes them: from their address, with their agent.
struct Person {
    client: awc::Client,
}

impl Person {
    fn new() -> Self {
        let client = awc::Client::builder()
            .local_address(IP.parse().unwrap())
            .add_default_header(("User-Agent", AGENT))
            .timeout(Duration::from_secs(30))
            .finish();
        Self { client }
    }

    async fn send(
        &self,
        app: &TestApp,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (u16, Value) {
        let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .client
            .request(method, format!("{}{path}", app.address));
        if let Some(token) = token {
            req = req.insert_header(("Authorization", format!("Bearer {token}")));
        }
        let mut res = req.send_json(&body).await.unwrap();
        let bytes = res.body().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (res.status().as_u16(), body)
    }
}

/// Every byte of a `pg_dump` of the database.
fn pg_dump(app: &TestApp) -> Vec<u8> {
    let out = std::process::Command::new("pg_dump")
        .arg("--dbname")
        .arg(&app.database_url)
        .output()
        .expect("pg_dump runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[actix_web::test]
async fn an_erased_person_is_forgotten_everywhere_and_the_log_stays_whole() {
    let key_file = TempPath::new("audit.key");
    let key_path = key_file.clone();
    let subscriber = Subscriber::start().await;
    let exchange = subscriber.exchange.clone();
    let app = spawn_app_with(move |s| {
        s.audit_key_file = key_path;
        s.relay = true;
        s.exchange = exchange;
    })
    .await;
    let exchange = subscriber.exchange.clone();
    let other = spawn_instance(&app, move |s| {
        s.relay = true;
        s.exchange = exchange;
    })
    .await;
    let person = Person::new();

    // The person signs up and in from their address, renames themself,
    // founds an org and joins another, and signs in once more.
    let (status, user) = person
        .send(
            &app,
            "POST",
            "/v1/users",
            None,
            json!({"email": EMAIL, "password": PASSWORD, "name": NAME}),
        )
        .await;
    assert_eq!(status, 201, "{user}");
    let user_id = id(&user);
    let sign_in = || {
        person.send(
            &app,
            "POST",
            "/v1/sessions",
            None,
            json!({"email": EMAIL, "password": PASSWORD}),
        )
    };
    let (status, first) = sign_in().await;
    assert_eq!(status, 201, "{first}");
    let token = first["access_token"].as_str().unwrap().to_owned();
    let path = format!("/v1/users/{user_id}");
    let (status, _) = person
        .send(&app, "PATCH", &path, Some(&token), json!({"name": RENAMED}))
        .await;
    assert_eq!(status, 200);
    let (status, founded) = person
        .send(
            &app,
            "POST",
            "/v1/orgs",
            Some(&token),
            json!({"name": "Quokka Co", "slug": "quokka-co"}),
        )
        .await;
    assert_eq!(status, 201, "{founded}");
    let founded = id(&founded);
    let joined = id(&app.create_org("wallaby-co", None).await);
    let res = app
        .post(
            &format!("/v1/orgs/{joined}/members"),
            &app.admin_key,
            json!({"user_id": user_id, "role": "member"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let (status, second) = sign_in().await;
    assert_eq!(status, 201);
    // A refresh is made with the session's token alone: its caller is the person too.
    let (status, second) = person
        .send(
            &app,
            "POST",
            "/v1/sessions/refresh",
            None,
            json!({"refresh_token": second["refresh_token"]}),
        )
        .await;
    assert_eq!(status, 200, "{second}");
    // Their requests did come from their address and agent.
    let (status, sessions) = person
        .send(&app, "GET", "/v1/sessions", Some(&token), Value::Null)
        .await;
    assert_eq!(status, 200);
    assert_eq!(sessions["items"][0]["ip"], IP, "{sessions}");
    assert_eq!(sessions["items"][0]["user_agent"], AGENT);
    let key = AuditKey::load_or_create(&key_file).unwrap();
    let before = export_to_file(&app, &key, ExportFilter::default()).await;

    // Refused, and nothing changes: a wrong or missing password, another
    // user, an org key, and the last owner of an org.
    let count = || async {
        app.db()
            .await
            .query_one("SELECT count(*) FROM auth_events", &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    let (_, stranger, _) = app.user_session("stranger@example.org").await;
    let (_, org_key) = app.create_key(&joined, &["vouch:org:admin"]).await;
    let logged = count().await;
    let (app_ref, person_ref, path_ref) = (&app, &person, &path);
    let erase = |token: String, body: Value| async move {
        person_ref
            .send(app_ref, "DELETE", path_ref, Some(&token), body)
            .await
    };
    let (status, body) = erase(
        token.clone(),
        json!({"current_password": "not the password"}),
    )
    .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (401, &json!("invalid_credentials"))
    );
    let (status, body) = erase(token.clone(), json!({})).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (403, &json!("forbidden")),
        "{body}"
    );
    let (status, body) = erase(stranger, json!({})).await;
    assert_eq!((status, &body["error"]["code"]), (404, &json!("not_found")));
    let (status, _) = erase(org_key, json!({})).await;
    assert_eq!(status, 404);
    let (status, body) = erase(token.clone(), json!({"current_password": PASSWORD})).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("last_owner")),
        "{body}"
    );
    assert_eq!(count().await, logged, "a refused erasure appends nothing");
    assert_eq!(app.get(&path, &app.admin_key).await.status, 200);

    // With a second owner, the person erases themself.
    let heir = app.create_user("heir@example.org").await;
    let res = app
        .post(
            &format!("/v1/orgs/{founded}/members"),
            &app.admin_key,
            json!({"user_id": id(&heir), "role": "owner"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let (status, body) = erase(token.clone(), json!({"current_password": PASSWORD})).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(app.count_events("user.erased").await, 1);

    // Gone for everyone, on every instance: the user, their tokens, their
    // refresh tokens, their memberships and their sign-in.
    for instance in [&app, &other] {
        assert_error(
            &instance.get(&path, &instance.admin_key).await,
            404,
            "not_found",
        );
        for session in [&first, &second] {
            let access = session["access_token"].as_str().unwrap();
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            loop {
                let res = instance.get("/v1/me", access).await;
                if res.status == 401 || std::time::Instant::now() > deadline {
                    assert_error(&res, 401, "unauthenticated");
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert_error(
                &instance.refresh(&session["refresh_token"]).await,
                401,
                "unauthenticated",
            );
        }
        assert_error(
            &instance.sign_in(EMAIL, PASSWORD).await,
            401,
            "invalid_credentials",
        );
        for org in [&founded, &joined] {
            let members = instance
                .get(&format!("/v1/orgs/{org}/members"), &instance.admin_key)
                .await;
            assert!(!members.text.contains(&user_id), "{}", members.text);
        }
    }
    assert_eq!(app.count_revocations("user_erased").await, 2);
    // Erased already: not found, for the admin too.
    assert_error(&app.delete(&path, &app.admin_key).await, 404, "not_found");

    // Every reader shows the person's fields erased, never as ciphertext.
    let stream = app
        .events_eventually(
            &format!("/v1/events?stream_id={user_id}"),
            &app.admin_key,
            3,
        )
        .await;
    let items = stream.body["items"].as_array().unwrap();
    assert_eq!(items[0]["data"]["email"], "[erased]");
    assert_eq!(items[0]["data"]["name"], "[erased]");
    assert_eq!(items[0]["metadata"]["ip"], "[erased]");
    assert_eq!(items.last().unwrap()["type"], "user.erased");
    // Two sign-ins of theirs and the stranger's.
    let started = app
        .events_eventually("/v1/events?type=session.started", &app.admin_key, 3)
        .await;
    let theirs: Vec<&Value> = started.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["data"]["user_id"] == json!(user_id))
        .collect();
    assert_eq!(theirs.len(), 2);
    for e in theirs {
        assert_eq!(
            (&e["data"]["ip"], &e["data"]["user_agent"]),
            (&json!("[erased]"), &json!("[erased]"))
        );
    }

    // The reference subscriber got everything as written, then forgot them.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let bytes = subscriber.bytes();
        if contains(&bytes, "vouch.user.erased") && !contains(&bytes, EMAIL) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the subscriber did not forget: {}",
            String::from_utf8_lossy(&bytes)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let consumed = subscriber.bytes();
    assert!(contains(&consumed, "heir@example.org"), "the living stay");
    for plain in [EMAIL, NAME, RENAMED, IP, AGENT] {
        assert!(
            !contains(&consumed, plain),
            "{plain} in the audit-consume output"
        );
    }

    // No byte of the database holds anything of theirs.
    let dump = pg_dump(&app);
    assert!(
        contains(&dump, "heir@example.org"),
        "the dump holds the living"
    );
    for plain in [EMAIL, NAME, RENAMED, IP, AGENT] {
        assert!(!contains(&dump, plain), "{plain} in pg_dump");
    }

    // The log is whole: exports before and after verify, and replay is clean.
    let after = export_to_file(&app, &key, ExportFilter::default()).await;
    verify_export(&before, Some(&key.public_key())).unwrap();
    verify_export(&after, Some(&key.public_key())).unwrap();
    // Both show the person's fields readable, as written then and as erased
    // now, never as ciphertext; the links they verify against are the same.
    let (before, after) = (
        std::fs::read_to_string(&before).unwrap(),
        std::fs::read_to_string(&after).unwrap(),
    );
    let registration = |export: &str| -> Value {
        export
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|l| l["event"]["stream_id"] == json!(user_id))
            .unwrap()
    };
    let (then, now) = (registration(&before), registration(&after));
    assert_eq!(then["event"]["data"]["email"], EMAIL);
    assert_eq!(now["event"]["data"]["email"], "[erased]");
    assert_eq!(now["event"]["metadata"]["ip"], "[erased]");
    assert_eq!(
        (&then["hash"], &then["sealed"]),
        (&now["hash"], &now["sealed"])
    );
    assert!(then["sealed"]["data.email"]
        .as_str()
        .unwrap()
        .starts_with("pii:v1:sha256:"));
    for export in [&before, &after] {
        let ciphertexts = export.matches("pii:v1:").count();
        let digests = export.matches("pii:v1:sha256:").count();
        assert_eq!(ciphertexts, digests, "a sealed value in an export");
    }
    for plain in [EMAIL, NAME, RENAMED, IP, AGENT] {
        assert!(
            !after.contains(plain),
            "{plain} in the export after erasure"
        );
    }
    assert_eq!(app.replay(Mode::Verify).await.unwrap().drift, vec![]);
    app.replay(Mode::Rebuild).await.unwrap();
    assert_eq!(app.replay(Mode::Verify).await.unwrap().drift, vec![]);
    assert_error(&app.get(&path, &app.admin_key).await, 404, "not_found");

    // The email is free for someone new.
    let again = app.create_user(EMAIL).await;
    assert_ne!(id(&again), user_id);
    assert_eq!(app.sign_in(EMAIL, PASSWORD).await.status, 201);
}

#[actix_web::test]
async fn an_admin_erases_without_a_password_and_unknown_users_are_not_found() {
    let app = spawn_app().await;
    let (user_id, token, refresh) = app.user_session("ada@example.org").await;
    let path = format!("/v1/users/{user_id}");
    let unknown = format!("/v1/users/{}", uuid::Uuid::now_v7());
    assert_error(
        &app.delete(&unknown, &app.admin_key).await,
        404,
        "not_found",
    );
    let res = app.delete(&path, &app.admin_key).await;
    assert_eq!(res.status, 204, "{}", res.text);
    assert_error(&app.get("/v1/me", &token).await, 401, "unauthenticated");
    assert_error(&app.refresh(&json!(refresh)).await, 401, "unauthenticated");
    assert_error(&app.delete(&path, &app.admin_key).await, 404, "not_found");
    // Commands on the erased user find no one, and append nothing.
    let res = app
        .patch(&path, &app.admin_key, json!({"name": "Ada"}))
        .await;
    assert_error(&res, 404, "not_found");
    let res = app
        .post(&format!("{path}/disable"), &app.admin_key, json!({}))
        .await;
    assert_error(&res, 404, "not_found");
    assert_eq!(app.count_events("user.renamed").await, 0);
    assert_eq!(app.count_events("user.disabled").await, 0);
}
