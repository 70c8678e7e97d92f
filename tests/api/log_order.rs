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

/// Events written by transactions whose ids have fewer digits than the
/// service's own (99, 100 and all nines one digit shorter than the server's
/// ids): transaction ids of long-finished transactions, below every reader's
/// bound. A fresh cluster's ids may have only four digits, so they are
/// chosen from the server's current id, not fixed.
async fn events_of_old_transactions(app: &TestApp) -> Vec<String> {
    let db = app.db().await;
    // Each statement outside a transaction block takes an id of its own.
    let mut current: u64 = 0;
    for _ in 0..2000 {
        let row = db
            .query_one("SELECT pg_current_xact_id()::text", &[])
            .await
            .unwrap();
        current = row.get::<_, String>(0).parse().unwrap();
        if current >= 1000 {
            break;
        }
    }
    let digits = current.to_string().len() as u32;
    let nines = (10u64.pow(digits - 1) - 1).to_string();
    for txid in [nines.as_str(), "99", "100"] {
        db.execute(
            "INSERT INTO auth_events (transaction_id, event_id, stream_type, stream_id, version, event_type, data, metadata) \
             VALUES ($1::text::xid8, $2, 'test', $3, 1, 'test.old', '{}', '{}')",
            &[&txid, &Uuid::new_v4(), &Uuid::new_v4()],
        )
        .await
        .unwrap();
    }
    // Commit-safe order, computed on the column itself.
    db.query(
        "SELECT event_id::text FROM auth_events ORDER BY transaction_id, position",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[actix_web::test]
async fn transaction_ids_are_ordered_as_numbers_not_as_text() {
    let app = spawn_app().await;
    app.create_org("acme", None).await;
    let expected = events_of_old_transactions(&app).await;
    assert!(expected.len() >= 7, "{expected:?}");

    // The feed shows an event once every older transaction on the server ended.
    let page = app
        .events_eventually("/v1/events?limit=1000", &app.admin_key, expected.len())
        .await;
    let ids: Vec<String> = page.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids, expected,
        "one page of the feed is in commit-safe order"
    );
    assert_eq!(
        read_all(&app, expected.len()).await,
        expected,
        "a paging reader sees every event once, in order"
    );

    let pool = vouch::store::connect(&app.database_url, 2).await.unwrap();
    let end = vouch::store::events::find_log_end(&pool.get().await.unwrap())
        .await
        .unwrap();
    let last: (String, i64) = {
        let row = app
            .db()
            .await
            .query_one(
                "SELECT max(transaction_id)::text, max(position) FILTER \
                   (WHERE transaction_id = (SELECT max(transaction_id) FROM auth_events)) \
                 FROM auth_events",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    let end = end.expect("a log with events has an end");
    assert_eq!(
        (end.transaction_id.to_string(), end.position),
        last,
        "the end of the log is its greatest transaction id"
    );
}

#[actix_web::test]
async fn the_chainer_links_transactions_of_every_length_in_order() {
    let app = spawn_app().await;
    let expected = events_of_old_transactions(&app).await;
    let pool = vouch::store::connect(&app.database_url, 2).await.unwrap();
    let key_file = crate::scratch::TempPath::new("chain.key");
    let key = vouch::audit::key::AuditKey::load_or_create(&key_file).unwrap();
    let policy = vouch::audit::chainer::CheckpointPolicy {
        every_events: 1000,
        every: Duration::from_secs(10),
    };
    // Chains what is readable, as the chainer does on every commit, until
    // `n` events are linked.
    let chain_until = |n: usize| {
        let (pool, key) = (&pool, &key);
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            let mut linked = 0;
            while linked < n && std::time::Instant::now() < deadline {
                linked += vouch::audit::chainer::chain_pending(pool, key, policy)
                    .await
                    .expect("the chainer goes on after its head")
                    as usize;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            linked
        }
    };
    assert_eq!(chain_until(expected.len()).await, expected.len());
    // A later event is chained after them.
    app.create_org("acme", None).await;
    assert_eq!(chain_until(1).await, 1, "the org.created of acme");
    let chained: Vec<String> = app
        .db()
        .await
        .query(
            "SELECT e.event_id::text FROM audit_chain c JOIN auth_events e USING (position) ORDER BY c.seq",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        &chained[..expected.len()],
        &expected[..],
        "chain order is commit-safe order"
    );
    let _ = std::fs::remove_file(key_file);
}
