//! The credential cache: revocation stays immediate on the revoking instance,
//! reaches the others through the log, and `last_used_at` is written in batches.

use crate::helpers::*;
use serde_json::json;
use std::time::{Duration, Instant};
use vouch::app::replay::Mode;

/// Waits until the instance's invalidation listener is up (the cache serves then).
async fn listening(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !app.app.cache().is_following() {
        assert!(Instant::now() < deadline, "the listener never came up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[actix_web::test]
async fn a_revoked_key_is_refused_by_the_revoking_instance_at_once() {
    let app = spawn_app().await;
    listening(&app).await;
    let org = id(&app.create_org("acme", None).await);
    let (key_id, key) = app.create_key(&org, &["deploy"]).await;
    assert!(app.is_valid(&key).await);
    let (hits, _) = app.app.cache().counts();
    assert!(app.is_valid(&key).await);
    assert!(
        app.app.cache().counts().0 > hits,
        "the second verify came from memory"
    );

    let res = app
        .post(
            &format!("/v1/orgs/{org}/keys/{key_id}/revoke"),
            &app.admin_key,
            json!({}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let res = app
        .post("/v1/keys/verify", &app.admin_key, json!({ "key": key }))
        .await;
    assert_eq!(res.body, json!({"valid": false, "code": "revoked"}));
    let res = app.get(&format!("/v1/orgs/{org}/keys"), &key).await;
    assert_error(&res, 401, "unauthenticated");
}

#[actix_web::test]
async fn revocations_and_logouts_reach_the_other_instance() {
    let a = spawn_app().await;
    let b = spawn_instance(&a, |_| {}).await;
    listening(&a).await;
    listening(&b).await;
    let org = id(&a.create_org("acme", None).await);
    let (key_id, key) = a.create_key(&org, &["deploy"]).await;
    let (_, token, _) = a.user_session("ada@example.org").await;
    for _ in 0..2 {
        assert!(b.is_valid(&key).await);
        assert_eq!(b.get("/v1/me", &token).await.status, 200);
    }
    assert!(
        b.app.cache().len().0 >= 1 && b.app.cache().len().1 >= 1,
        "B caches both"
    );

    let res = a
        .post(
            &format!("/v1/orgs/{org}/keys/{key_id}/revoke"),
            &a.admin_key,
            json!({}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(a.delete("/v1/sessions/current", &token).await.status, 204);

    let deadline = Instant::now() + Duration::from_secs(5);
    while b.is_valid(&key).await || b.get("/v1/me", &token).await.status != 401 {
        assert!(
            Instant::now() < deadline,
            "B still accepts a revoked key or session"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[actix_web::test]
async fn a_replay_empties_every_cache() {
    let app = spawn_app().await;
    listening(&app).await;
    let org = id(&app.create_org("acme", None).await);
    let (_, key) = app.create_key(&org, &[]).await;
    assert!(app.is_valid(&key).await);
    assert!(app.app.cache().len().0 >= 1);
    app.replay(Mode::Rebuild).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.app.cache().len().0 > 0 {
        assert!(
            Instant::now() < deadline,
            "the swap's notification never emptied the cache"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        app.is_valid(&key).await,
        "the rebuilt tables still know the key"
    );
}

#[actix_web::test]
async fn last_used_at_is_written_in_batches_without_events() {
    let app = spawn_app().await;
    let org = id(&app.create_org("acme", None).await);
    let (key_id, key) = app.create_key(&org, &[]).await;
    let events = app.count_events("api_key.created").await;
    let path = format!("/v1/orgs/{org}/keys/{key_id}");
    assert_eq!(
        app.get(&path, &app.admin_key).await.body["last_used_at"],
        json!(null)
    );
    for _ in 0..3 {
        assert!(app.is_valid(&key).await);
    }
    assert!(app.app.flush_key_usage().await.unwrap() >= 1);
    let used = app.get(&path, &app.admin_key).await.body["last_used_at"].clone();
    assert!(used.is_string(), "last_used_at set: {used}");
    assert_eq!(app.count_events("api_key.created").await, events);
    let total: i64 = app
        .db()
        .await
        .query_one("SELECT count(*) FROM auth_events", &[])
        .await
        .unwrap()
        .get(0);
    assert!(total < 10, "no event per verification ({total} events)");
}

#[actix_web::test]
async fn the_last_key_uses_are_written_when_the_instance_stops() {
    // A flush period no test waits for: only the stop writes.
    let app = spawn_app_with(|s| s.key_usage_flush_seconds = 3600).await;
    let org = id(&app.create_org("acme", None).await);
    let (key_id, key) = app.create_key(&org, &[]).await;
    assert!(app.is_valid(&key).await);
    app.stop.stop().await;
    let used: Option<chrono::DateTime<chrono::Utc>> = app
        .db()
        .await
        .query_one(
            "SELECT last_used_at FROM api_keys WHERE id = $1",
            &[&uuid::Uuid::parse_str(&key_id).unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert!(used.is_some(), "the use noted before the stop was written");
}
