//! Database faults: Postgres cut off (through a proxy the test controls)
//! under load gives 503 `unavailable`, never a 500, and vouch recovers on
//! its own once the database is back.

use crate::helpers::{assert_error, id, spawn_app_with, Response, TestApp};
use crate::proxy::Proxy;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vouch::app::replay::Mode;

#[derive(Default)]
struct Tally {
    by_status: Mutex<BTreeMap<u16, usize>>,
    created_keys: Mutex<Vec<String>>,
    sent: AtomicUsize,
}

impl Tally {
    fn record(&self, res: &Response) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        *self
            .by_status
            .lock()
            .unwrap()
            .entry(res.status)
            .or_default() += 1;
        assert!(
            res.status < 500 || res.status == 503,
            "only 503 while the database is away: {} {}",
            res.status,
            res.text
        );
        if res.status == 503 {
            assert_error(res, 503, "unavailable");
        }
    }
}

/// One client's mix of writes and reads until `stop`.
async fn client(app: &TestApp, org: &str, key: &str, n: usize, tally: &Tally, stop: &AtomicBool) {
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let res = match i % 4 {
            0 => {
                let res = app
                    .post(
                        &format!("/v1/orgs/{org}/keys"),
                        &app.admin_key,
                        json!({"name": format!("k-{n}-{i}")}),
                    )
                    .await;
                if res.status == 201 {
                    tally.created_keys.lock().unwrap().push(id(&res.body));
                }
                res
            }
            1 => {
                app.post("/v1/keys/verify", &app.admin_key, json!({"key": key}))
                    .await
            }
            2 => app.get(&format!("/v1/orgs/{org}/keys?limit=5"), &app.admin_key).await,
            _ => {
                app.request(
                    "POST",
                    "/v1/users",
                    None,
                    Some(json!({"email": format!("u{n}-{i}@example.org"), "password": "a long enough passphrase"})),
                )
                .await
            }
        };
        tally.record(&res);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn status_of(app: &TestApp, path: &str) -> u16 {
    app.request("GET", path, None, None).await.status
}

#[actix_web::test]
async fn a_database_cut_under_load_is_503_and_recovers_without_restart() {
    let proxy = Proxy::start("127.0.0.1:5432").await;
    let port = proxy.port;
    let app = spawn_app_with(|s| {
        s.database_url = s
            .database_url
            .replace("127.0.0.1:5432", &format!("127.0.0.1:{port}"));
        s.auth.signup_ip_attempts = 100_000;
    })
    .await;
    let org = id(&app.create_org("faults", None).await);
    let (_, key) = app.create_key(&org, &["deploy"]).await;
    let tally = Tally::default();
    let stop = AtomicBool::new(false);

    let load =
        futures_util::future::join_all((0..6).map(|n| client(&app, &org, &key, n, &tally, &stop)));
    let (readiness_during, readiness_after, recovered_in) = {
        let scenario = async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            proxy.cut();
            let mut during = Vec::new();
            let cut_at = Instant::now();
            while cut_at.elapsed() < Duration::from_secs(3) {
                during.push(status_of(&app, "/readyz").await);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            proxy.restore();
            let back_at = Instant::now();
            // Recovery: a write succeeds again, without a restart.
            loop {
                let res = app
                    .post(
                        &format!("/v1/orgs/{org}/keys"),
                        &app.admin_key,
                        json!({"name": "after"}),
                    )
                    .await;
                tally.record(&res);
                if res.status == 201 {
                    break;
                }
                assert!(
                    back_at.elapsed() < Duration::from_secs(15),
                    "no recovery: {}",
                    res.text
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let recovered_in = back_at.elapsed();
            tokio::time::sleep(Duration::from_millis(500)).await;
            stop.store(true, Ordering::Relaxed);
            (during, status_of(&app, "/readyz").await, recovered_in)
        };
        let (_, outcome) = tokio::join!(load, scenario);
        outcome
    };
    let by_status = tally.by_status.lock().unwrap().clone();
    eprintln!(
        "faults: {} requests, by status {by_status:?}, recovered {recovered_in:?} after restore",
        tally.sent.load(Ordering::Relaxed)
    );
    assert!(
        by_status.get(&503).copied().unwrap_or(0) > 0,
        "the cut was felt: {by_status:?}"
    );
    assert!(readiness_during.contains(&503), "{readiness_during:?}");
    assert_eq!(readiness_after, 200);

    // Nothing a client was told about is lost, and the read models match the log.
    let created = tally.created_keys.lock().unwrap().clone();
    let db = app.db().await;
    for key_id in &created {
        let n: i64 = db
            .query_one(
                "SELECT count(*) FROM auth_events WHERE event_type = 'api_key.created' AND stream_id = $1::text::uuid",
                &[key_id],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 1, "key {key_id} answered 201 but is not in the log");
    }
    let report = app.replay(Mode::Verify).await.unwrap();
    assert!(report.drift.is_empty(), "{:?}", report.drift);
}

#[actix_web::test]
async fn every_route_answers_503_not_500_while_the_database_is_away() {
    let proxy = Arc::new(Proxy::start("127.0.0.1:5432").await);
    let port = proxy.port;
    let app = spawn_app_with(|s| {
        s.database_url = s
            .database_url
            .replace("127.0.0.1:5432", &format!("127.0.0.1:{port}"));
    })
    .await;
    let org = id(&app.create_org("away", None).await);
    let (key_id, key) = app.create_key(&org, &["vouch:org:admin"]).await;
    let (user_id, token, refresh) = app.user_session("away@example.org").await;
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let calls: Vec<(&str, String, Option<&str>, Option<serde_json::Value>)> = vec![
        (
            "POST",
            "/v1/users".into(),
            None,
            Some(json!({"email": "x@example.org", "password": "a long enough passphrase"})),
        ),
        (
            "POST",
            "/v1/sessions".into(),
            None,
            Some(json!({"email": "away@example.org", "password": "a long enough passphrase"})),
        ),
        (
            "POST",
            "/v1/sessions/refresh".into(),
            None,
            Some(json!({"refresh_token": refresh})),
        ),
        ("GET", format!("/v1/users/{user_id}"), Some(&token), None),
        ("GET", "/v1/orgs".into(), Some(&app.admin_key), None),
        (
            "POST",
            "/v1/orgs".into(),
            Some(&app.admin_key),
            Some(json!({"name": "n", "slug": "new-org"})),
        ),
        ("GET", format!("/v1/orgs/{org}/members"), Some(&key), None),
        (
            "POST",
            format!("/v1/orgs/{org}/keys"),
            Some(&app.admin_key),
            Some(json!({"name": "n"})),
        ),
        (
            "POST",
            format!("/v1/orgs/{org}/keys/{key_id}/revoke"),
            Some(&app.admin_key),
            Some(json!({})),
        ),
        (
            "GET",
            format!("/v1/orgs/{org}/keys"),
            Some(&app.admin_key),
            None,
        ),
        ("GET", "/v1/events".into(), Some(&app.admin_key), None),
    ];
    for (method, path, credential, body) in &calls {
        let res = app.request(method, path, *credential, body.clone()).await;
        // A credential seen before may still be served from memory, so a
        // read can succeed; what never happens is a 500.
        assert!(
            res.status == 503 || res.status < 500,
            "{method} {path}: {} {}",
            res.status,
            res.text
        );
        if res.status >= 500 {
            assert_eq!(
                res.body["error"]["code"], "unavailable",
                "{method} {path}: {}",
                res.text
            );
        }
    }
    let ready = app.request("GET", "/readyz", None, None).await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.body["database"], "down", "{}", ready.text);
    assert_eq!(ready.body["status"], "unavailable", "{}", ready.text);
    assert_eq!(app.request("GET", "/healthz", None, None).await.status, 200);
    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(15);
    while status_of(&app, "/readyz").await != 200 {
        assert!(Instant::now() < deadline, "not ready again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let res = app
        .get(&format!("/v1/orgs/{org}/keys"), &app.admin_key)
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
}
