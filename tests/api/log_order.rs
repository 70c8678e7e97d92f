//! Commit-safe reading: a reader paging the log while writers commit out of
//! position order never skips or repeats an event.

use crate::helpers::*;
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;
use uuid::Uuid;

/// A writer that takes a position and holds its transaction open before committing.
async fn slow_sql_writer(app: &TestApp, seed: u64) {
    let mut db = app.db().await;
    for i in 0..10u64 {
        let tx = db.transaction().await.unwrap();
        tx.execute(
            "INSERT INTO auth_events (event_id, stream_type, stream_id, version, event_type, data, metadata) \
             VALUES ($1, 'test', $2, 1, 'test.slow', '{}', '{}')",
            &[&Uuid::new_v4(), &Uuid::new_v4()],
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis((seed * 37 + i * 53) % 150)).await;
        tx.commit().await.unwrap();
    }
}

async fn http_writer(app: &TestApp, org_id: &str) {
    for _ in 0..15 {
        let res = app
            .post(
                &format!("/v1/orgs/{org_id}/keys"),
                &app.admin_key,
                json!({"name": "w"}),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.text);
    }
}

/// Pages through the log by item cursors until `expected` events were read.
async fn read_all(app: &TestApp, expected: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut seen = vec![];
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(c) => format!("/v1/events?limit=7&after={c}"),
            None => "/v1/events?limit=7".to_owned(),
        };
        let res = app.get(&path, &app.admin_key).await;
        assert_eq!(res.status, 200, "{}", res.text);
        let items = res.body["items"].as_array().unwrap();
        for e in items {
            seen.push(e["event_id"].as_str().unwrap().to_owned());
        }
        if let Some(last) = items.last() {
            after = Some(last["cursor"].as_str().unwrap().to_owned());
        } else if seen.len() >= expected {
            return seen;
        } else {
            assert!(
                std::time::Instant::now() < deadline,
                "read {} of {expected} events",
                seen.len()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

#[actix_web::test]
async fn a_paging_reader_sees_every_event_exactly_once_while_writers_commit_late() {
    let app = spawn_app().await;
    let org = app.create_org("acme", None).await;
    let oid = id(&org);
    // Bootstrap (org, key, signing key), acme, then the writers.
    let expected = 3 + 1 + 4 * 15 + 4 * 10;
    let writers = async {
        tokio::join!(
            http_writer(&app, &oid),
            http_writer(&app, &oid),
            http_writer(&app, &oid),
            http_writer(&app, &oid),
            slow_sql_writer(&app, 1),
            slow_sql_writer(&app, 2),
            slow_sql_writer(&app, 3),
            slow_sql_writer(&app, 4),
        );
    };
    let ((), tailed) = tokio::join!(writers, read_all(&app, expected));

    let full = read_all(&app, expected).await;
    assert_eq!(
        full.len(),
        expected,
        "every committed event is in the full read"
    );
    let unique: HashSet<&String> = tailed.iter().collect();
    assert_eq!(
        unique.len(),
        tailed.len(),
        "the tailing reader saw an event twice"
    );
    assert_eq!(
        tailed, full,
        "the tailing reader skipped or reordered events"
    );
}
