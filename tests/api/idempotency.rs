//! Safe retries: `Idempotency-Key` on state-changing POSTs (API.md).

use crate::helpers::{
    assert_error, id, spawn_app, spawn_app_with, spawn_instance, Response, TestApp, PASSWORD,
};
use serde_json::{json, Value};

/// POSTs `body` with an `Idempotency-Key`.
async fn send(app: &TestApp, path: &str, key: Option<&str>, idem: &str, body: Value) -> Response {
    let mut req = app
        .client
        .post(format!("{}{path}", app.address))
        .insert_header(("Idempotency-Key", idem));
    if let Some(key) = key {
        req = req.insert_header(("Authorization", format!("Bearer {key}")));
    }
    let mut res = req.send_json(&body).await.unwrap();
    let bytes = res.body().limit(1 << 20).await.unwrap();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    Response {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

fn replayed(res: &Response) -> bool {
    res.headers.get("idempotent-replayed").is_some()
}

async fn records(app: &TestApp) -> i64 {
    app.db()
        .await
        .query_one("SELECT count(*) FROM idempotency_records", &[])
        .await
        .unwrap()
        .get(0)
}

#[actix_web::test]
async fn a_retried_key_creation_returns_the_same_key_and_creates_one() {
    let app = spawn_app().await;
    let org = app.create_org("retries", None).await;
    let path = format!("/v1/orgs/{}/keys", id(&org));
    let body = json!({"name": "ci", "scopes": ["deploy"]});
    let first = send(&app, &path, Some(&app.admin_key), "create-1", body.clone()).await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert!(!replayed(&first));
    let again = send(&app, &path, Some(&app.admin_key), "create-1", body.clone()).await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert!(replayed(&again));
    assert_eq!(again.body, first.body);
    assert_eq!(
        again.headers.get("content-type"),
        first.headers.get("content-type")
    );
    assert_eq!(
        app.count_events("api_key.created").await,
        2,
        "bootstrap key + one"
    );

    // The plaintext key is nowhere in the database.
    let secret = first.body["key"].as_str().unwrap().as_bytes().to_vec();
    let stored: Vec<Vec<u8>> = app
        .db()
        .await
        .query("SELECT response FROM idempotency_records", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(stored.len(), 1);
    assert!(stored
        .iter()
        .all(|r| !r.windows(secret.len()).any(|w| w == secret)));

    // Another key is another request.
    let other = send(&app, &path, Some(&app.admin_key), "create-2", body).await;
    assert_eq!(other.status, 201);
    assert_ne!(other.body["id"], first.body["id"]);
    assert_eq!(app.count_events("api_key.created").await, 3);
}

#[actix_web::test]
async fn the_same_key_with_another_body_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let first = send(
        &app,
        "/v1/orgs",
        Some(&app.admin_key),
        "k",
        json!({"name": "A", "slug": "aaa"}),
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.text);
    let other = send(
        &app,
        "/v1/orgs",
        Some(&app.admin_key),
        "k",
        json!({"name": "B", "slug": "bbb"}),
    )
    .await;
    assert_error(&other, 422, "idempotency_key_reused");
    assert_eq!(
        other.body["request_id"],
        other.headers.get("x-request-id").unwrap().to_str().unwrap()
    );
    // Another path with the same key is another request too.
    let path = format!("/v1/orgs/{}/keys", id(&first.body));
    let elsewhere = send(&app, &path, Some(&app.admin_key), "k", json!({"name": "x"})).await;
    assert_error(&elsewhere, 422, "idempotency_key_reused");
    assert_eq!(app.count_events("org.created").await, 2, "system org + one");
}

#[actix_web::test]
async fn keys_are_scoped_to_the_caller() {
    let app = spawn_app().await;
    let (_, token, _) = app.user_session("scope@example.org").await;
    let a = send(
        &app,
        "/v1/orgs",
        Some(&token),
        "same",
        json!({"name": "A", "slug": "user-org"}),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text);
    // The admin key's "same" is its own: it runs, and its body may differ.
    let b = send(
        &app,
        "/v1/orgs",
        Some(&app.admin_key),
        "same",
        json!({"name": "B", "slug": "admin-org"}),
    )
    .await;
    assert_eq!(b.status, 201, "{}", b.text);
    assert!(!replayed(&b));
    // The user again, with a fresh access token: still the same caller.
    let res = app.sign_in("scope@example.org", PASSWORD).await;
    let token2 = res.body["access_token"].as_str().unwrap();
    let again = send(
        &app,
        "/v1/orgs",
        Some(token2),
        "same",
        json!({"name": "A", "slug": "user-org"}),
    )
    .await;
    assert_eq!(again.status, 201);
    assert!(replayed(&again));
    assert_eq!(again.body, a.body);
}

#[actix_web::test]
async fn bad_keys_are_refused_before_anything_runs() {
    let app = spawn_app().await;
    let body = json!({"name": "A", "slug": "bad-keys"});
    for bad in [
        "x".repeat(256),
        "caf\u{e9}".to_owned(),
        "tab\there".to_owned(),
    ] {
        let res = send(&app, "/v1/orgs", Some(&app.admin_key), &bad, body.clone()).await;
        assert_error(&res, 422, "validation_error");
        assert_eq!(res.body["error"]["details"]["field"], "Idempotency-Key");
    }
    let ok = send(
        &app,
        "/v1/orgs",
        Some(&app.admin_key),
        &"k".repeat(255),
        body,
    )
    .await;
    assert_eq!(ok.status, 201, "{}", ok.text);
    assert_eq!(app.count_events("org.created").await, 2);
}

#[actix_web::test]
async fn a_refusal_that_committed_nothing_is_not_kept() {
    let app = spawn_app().await;
    let bad = send(
        &app,
        "/v1/orgs",
        Some(&app.admin_key),
        "k",
        json!({"name": "A", "slug": "-"}),
    )
    .await;
    assert_error(&bad, 422, "validation_error");
    assert_eq!(records(&app).await, 0);
    // Fixed, the same key runs for the first time.
    let good = send(
        &app,
        "/v1/orgs",
        Some(&app.admin_key),
        "k2",
        json!({"name": "A", "slug": "fixed"}),
    )
    .await;
    assert_eq!(good.status, 201);
    assert_eq!(records(&app).await, 1);
}

#[actix_web::test]
async fn sign_up_sign_in_and_refresh_are_answered_once() {
    let app = spawn_app().await;
    let signup = json!({"email": "once@example.org", "password": PASSWORD});
    let user = send(&app, "/v1/users", None, "signup", signup.clone()).await;
    assert_eq!(user.status, 201, "{}", user.text);
    let again = send(&app, "/v1/users", None, "signup", signup).await;
    assert_eq!((again.status, &again.body), (201, &user.body));
    assert_eq!(app.count_events("user.registered").await, 1);

    let creds = json!({"email": "once@example.org", "password": PASSWORD});
    let session = send(&app, "/v1/sessions", None, "signin", creds.clone()).await;
    assert_eq!(session.status, 201, "{}", session.text);
    let again = send(&app, "/v1/sessions", None, "signin", creds).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.body["refresh_token"], session.body["refresh_token"]);
    assert_eq!(again.body["access_token"], session.body["access_token"]);
    assert_eq!(app.count_events("session.started").await, 1);

    // Without the key, a retried refresh would be a reuse and end the session.
    let refresh = json!({"refresh_token": session.body["refresh_token"]});
    let next = send(
        &app,
        "/v1/sessions/refresh",
        None,
        "refresh-1",
        refresh.clone(),
    )
    .await;
    assert_eq!(next.status, 200, "{}", next.text);
    let again = send(&app, "/v1/sessions/refresh", None, "refresh-1", refresh).await;
    assert_eq!((again.status, &again.body), (200, &next.body));
    assert_eq!(app.count_events("session.refreshed").await, 1);
    assert_eq!(app.count_events("session.revoked").await, 0);
    let token = next.body["access_token"].as_str().unwrap();
    assert_eq!(app.get("/v1/me", token).await.status, 200);
}

#[actix_web::test]
async fn a_failed_sign_in_is_replayed_without_another_failure() {
    let app = spawn_app().await;
    app.create_user("fail@example.org").await;
    let creds = json!({"email": "fail@example.org", "password": "not the password"});
    let first = send(&app, "/v1/sessions", None, "attempt", creds.clone()).await;
    assert_error(&first, 401, "invalid_credentials");
    let again = send(&app, "/v1/sessions", None, "attempt", creds).await;
    assert_error(&again, 401, "invalid_credentials");
    assert!(replayed(&again));
    assert!(again.headers.get("www-authenticate").is_some());
    assert_eq!(
        again.body["request_id"],
        again.headers.get("x-request-id").unwrap().to_str().unwrap()
    );
    assert_eq!(app.count_events_eventually("user.login_failed", 1).await, 1);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(app.count_events("user.login_failed").await, 1);

    // An unknown email's refusal is kept the same way.
    let unknown = json!({"email": "nobody@example.org", "password": "not the password"});
    let first = send(&app, "/v1/sessions", None, "unknown", unknown.clone()).await;
    assert_error(&first, 401, "invalid_credentials");
    let again = send(&app, "/v1/sessions", None, "unknown", unknown).await;
    assert_error(&again, 401, "invalid_credentials");
    assert!(replayed(&again));
}

#[actix_web::test]
async fn a_no_op_is_kept_too() {
    let app = spawn_app().await;
    let org = app.create_org("noop", None).await;
    let (key_id, _) = app.create_key(&id(&org), &[]).await;
    let path = format!("/v1/orgs/{}/keys/{key_id}/revoke", id(&org));
    assert_eq!(app.post(&path, &app.admin_key, json!({})).await.status, 200);
    let res = send(&app, &path, Some(&app.admin_key), "noop", json!({})).await;
    assert_eq!(res.status, 200);
    let again = send(&app, &path, Some(&app.admin_key), "noop", json!({})).await;
    assert_eq!((again.status, &again.body), (200, &res.body));
    assert!(replayed(&again));
    assert_eq!(app.count_events("api_key.revoked").await, 1);
}

#[actix_web::test]
async fn a_committed_request_whose_answer_was_lost_is_not_run_again() {
    let app = spawn_app().await;
    let body = json!({"name": "A", "slug": "lost"});
    let first = send(&app, "/v1/orgs", Some(&app.admin_key), "lost", body.clone()).await;
    assert_eq!(first.status, 201);
    // As if the process died between the commit and keeping the response.
    app.db()
        .await
        .execute(
            "UPDATE idempotency_records SET status = NULL, response = NULL, \
             created_at = now() - interval '1 minute'",
            &[],
        )
        .await
        .unwrap();
    let again = send(&app, "/v1/orgs", Some(&app.admin_key), "lost", body).await;
    assert_error(&again, 409, "conflict");
    assert_eq!(app.count_events("org.created").await, 2);
}

async fn concurrent_duplicates(
    instances: &[&TestApp],
    path: &str,
    key: &str,
    n: usize,
) -> Vec<Response> {
    let body = json!({"name": "racer", "scopes": ["a"]});
    let sends = (0..n).map(|i| {
        let app = instances[i % instances.len()];
        send(app, path, Some(key), "race", body.clone())
    });
    futures_util::future::join_all(sends).await
}

fn assert_one_answer(responses: &[Response]) {
    let created: Vec<&Response> = responses.iter().filter(|r| r.status == 201).collect();
    assert!(!created.is_empty());
    for r in responses {
        assert!(
            r.status == 201 || r.status == 409,
            "{} {}",
            r.status,
            r.text
        );
        if r.status == 409 {
            assert_error(r, 409, "conflict");
        }
    }
    assert!(created.iter().all(|r| r.body == created[0].body));
}

#[actix_web::test]
async fn concurrent_duplicates_create_one_key() {
    let app = spawn_app().await;
    let org = app.create_org("racing", None).await;
    let path = format!("/v1/orgs/{}/keys", id(&org));
    let responses = concurrent_duplicates(&[&app], &path, &app.admin_key, 16).await;
    assert_one_answer(&responses);
    assert_eq!(
        app.count_events("api_key.created").await,
        2,
        "bootstrap + one"
    );
    // Once answered, every retry gets the answer.
    let late = concurrent_duplicates(&[&app], &path, &app.admin_key, 4).await;
    assert!(late
        .iter()
        .all(|r| r.status == 201
            && r.body == responses.iter().find(|r| r.status == 201).unwrap().body));
}

#[actix_web::test]
async fn concurrent_duplicates_on_three_instances_create_one_key() {
    let a = spawn_app_with(|_| {}).await;
    let b = spawn_instance(&a, |_| {}).await;
    let c = spawn_instance(&a, |_| {}).await;
    let org = a.create_org("racing-wide", None).await;
    let path = format!("/v1/orgs/{}/keys", id(&org));
    for round in 0..3 {
        let body_key = format!("race-{round}");
        let body = json!({"name": "racer", "scopes": ["a"]});
        let sends = (0..12).map(|i| {
            let app = [&a, &b, &c][i % 3];
            send(app, &path, Some(&a.admin_key), &body_key, body.clone())
        });
        let responses = futures_util::future::join_all(sends).await;
        assert_one_answer(&responses);
    }
    assert_eq!(a.count_events("api_key.created").await, 1 + 3);
}

/// Refreshes without an `Idempotency-Key`; returns the 200 body.
async fn refresh(app: &TestApp, token: &Value) -> Value {
    let res = app.refresh(token).await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.body
}

#[actix_web::test]
async fn a_captured_refresh_replayed_after_rotation_is_reuse_and_ends_the_session() {
    let app = spawn_app().await;
    app.create_user("captured@example.org").await;
    let session = app.sign_in("captured@example.org", PASSWORD).await;
    let captured = json!({"refresh_token": session.body["refresh_token"]});
    let first = send(&app, "/v1/sessions/refresh", None, "k", captured.clone()).await;
    assert_eq!(first.status, 200, "{}", first.text);
    // The client goes on refreshing.
    let second = refresh(&app, &first.body["refresh_token"]).await;
    let third = refresh(&app, &second["refresh_token"]).await;
    let live_token = third["access_token"].as_str().unwrap();
    assert_eq!(app.get("/v1/me", live_token).await.status, 200);

    // The captured request, replayed with its key.
    let replay = send(&app, "/v1/sessions/refresh", None, "k", captured).await;
    assert_error(&replay, 401, "unauthenticated");
    assert!(replay.body.get("access_token").is_none());
    assert!(!replayed(&replay));
    assert_eq!(app.count_revocations("refresh_reuse").await, 1);
    assert_eq!(app.get("/v1/me", live_token).await.status, 401);
}

#[actix_web::test]
async fn a_replayed_refresh_of_an_ended_session_is_refused() {
    let app = spawn_app().await;
    app.create_user("ended@example.org").await;
    let session = app.sign_in("ended@example.org", PASSWORD).await;
    let body = json!({"refresh_token": session.body["refresh_token"]});
    let first = send(&app, "/v1/sessions/refresh", None, "k", body.clone()).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let token = first.body["access_token"].as_str().unwrap();
    assert_eq!(app.delete("/v1/sessions/current", token).await.status, 204);
    let replay = send(&app, "/v1/sessions/refresh", None, "k", body).await;
    assert_error(&replay, 401, "unauthenticated");
    assert!(replay.body.get("refresh_token").is_none());
}

#[actix_web::test]
async fn a_replayed_sign_in_whose_session_ended_hands_out_no_tokens() {
    let app = spawn_app().await;
    app.create_user("signout@example.org").await;
    let creds = json!({"email": "signout@example.org", "password": PASSWORD});
    let first = send(&app, "/v1/sessions", None, "in", creds.clone()).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let token = first.body["access_token"].as_str().unwrap();
    assert_eq!(app.delete("/v1/sessions/current", token).await.status, 204);
    let replay = send(&app, "/v1/sessions", None, "in", creds).await;
    assert_error(&replay, 409, "conflict");
    assert!(replay.body.get("access_token").is_none());
    assert_eq!(app.count_events("session.started").await, 1);
}

#[actix_web::test]
async fn anonymous_clients_that_pick_the_same_key_never_meet() {
    let app = spawn_app().await;
    let ada = json!({"email": "ada@example.org", "password": PASSWORD});
    let bob = json!({"email": "bob@example.org", "password": "another long passphrase"});
    let a = send(&app, "/v1/users", None, "same", ada.clone()).await;
    let b = send(&app, "/v1/users", None, "same", bob.clone()).await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(b.status, 201, "{}", b.text);
    assert!(!replayed(&b));
    assert_ne!(a.body["id"], b.body["id"]);

    let a = send(&app, "/v1/sessions", None, "same", ada).await;
    let b = send(&app, "/v1/sessions", None, "same", bob).await;
    assert_eq!((a.status, b.status), (201, 201), "{} {}", a.text, b.text);
    assert!(!replayed(&b));
    assert_eq!(a.body["user"]["email"], "ada@example.org");
    assert_eq!(b.body["user"]["email"], "bob@example.org");
    assert_ne!(a.body["refresh_token"], b.body["refresh_token"]);

    let ra = json!({"refresh_token": a.body["refresh_token"]});
    let rb = json!({"refresh_token": b.body["refresh_token"]});
    let a = send(&app, "/v1/sessions/refresh", None, "same", ra).await;
    let b = send(&app, "/v1/sessions/refresh", None, "same", rb).await;
    assert_eq!((a.status, b.status), (200, 200), "{} {}", a.text, b.text);
    assert!(!replayed(&b));
    assert_eq!(b.body["user"]["email"], "bob@example.org");
    assert_eq!(app.count_events("session.refreshed").await, 2);
}

#[actix_web::test]
async fn a_sign_in_replay_needs_the_same_credential() {
    let app = spawn_app().await;
    app.create_user("cred@example.org").await;
    let good = json!({"email": "cred@example.org", "password": PASSWORD});
    let first = send(&app, "/v1/sessions", None, "k", good).await;
    assert_eq!(first.status, 201, "{}", first.text);
    // Another password under the same key is another caller: its own refusal.
    let wrong = json!({"email": "cred@example.org", "password": "not the password"});
    let other = send(&app, "/v1/sessions", None, "k", wrong).await;
    assert_error(&other, 401, "invalid_credentials");
    assert!(!replayed(&other));
    assert!(other.body.get("access_token").is_none());
}
