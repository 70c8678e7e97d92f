use crate::helpers::*;
use futures_util::future::join_all;
use rand::{Rng, SeedableRng};
use serde_json::json;
use vouch::app::replay::{Cutoff, Mode, Progress};

pub struct Quiet;

impl Progress for Quiet {
    fn start(&self, _: u64) {}
    fn advance(&self, _: u64) {}
}

/// Users, orgs and then `commands` random cheap commands, ten at a time.
async fn random_history(app: &TestApp, commands: usize, seed: u64) {
    let mut users = vec![];
    for i in 0..6 {
        users.push(id(&app
            .create_user(&format!("u{seed}-{i}@example.org"))
            .await));
    }
    let mut orgs = vec![];
    for (i, owner) in users.iter().take(4).enumerate() {
        orgs.push(id(&app
            .create_org(&format!("org-{seed}-{i}"), Some(owner))
            .await));
    }
    let mut keys: Vec<(String, String)> = vec![];
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut done = 0;
    while done < commands {
        let mut batch = vec![];
        for _ in 0..10 {
            let org = orgs[rng.gen_range(0..orgs.len())].clone();
            let user = users[rng.gen_range(0..users.len())].clone();
            let role = ["member", "admin", "owner"][rng.gen_range(0..3)];
            let (method, path, body) = match rng.gen_range(0..9) {
                0 | 1 => (
                    "POST",
                    format!("/v1/orgs/{org}/keys"),
                    json!({"name": "k", "scopes": ["a", "b"]}),
                ),
                2 if !keys.is_empty() => {
                    let (o, k) = &keys[rng.gen_range(0..keys.len())];
                    ("POST", format!("/v1/orgs/{o}/keys/{k}/revoke"), json!({}))
                }
                3 if !keys.is_empty() => {
                    let (o, k) = &keys[rng.gen_range(0..keys.len())];
                    (
                        "POST",
                        format!("/v1/orgs/{o}/keys/{k}/rotate"),
                        json!({"grace_seconds": 60}),
                    )
                }
                4 => (
                    "POST",
                    format!("/v1/orgs/{org}/members"),
                    json!({"user_id": user, "role": role}),
                ),
                5 => (
                    "PATCH",
                    format!("/v1/orgs/{org}/members/{user}"),
                    json!({"role": role}),
                ),
                6 => (
                    "DELETE",
                    format!("/v1/orgs/{org}/members/{user}"),
                    json!(null),
                ),
                7 => (
                    "PATCH",
                    format!("/v1/orgs/{org}"),
                    json!({"name": format!("Org {}", rng.gen_range(0..5))}),
                ),
                _ => {
                    let action = if rng.gen_bool(0.5) {
                        "disable"
                    } else {
                        "enable"
                    };
                    ("POST", format!("/v1/users/{user}/{action}"), json!({}))
                }
            };
            batch.push((method, path, body));
        }
        let results = join_all(batch.iter().map(|(m, p, b)| {
            let body = (!b.is_null()).then(|| b.clone());
            app.request(m, p, Some(&app.admin_key), body)
        }))
        .await;
        for ((_, path, _), res) in batch.iter().zip(&results) {
            assert!(res.status < 500, "{path}: {}", res.text);
            if (path.ends_with("/rotate") || path.ends_with("/keys")) && res.status == 201 {
                keys.push((
                    res.body["org_id"].as_str().unwrap().to_owned(),
                    id(&res.body),
                ));
            }
        }
        done += batch.len();
    }
}

async fn table_json(app: &TestApp, schema: &str, table: &str) -> Vec<String> {
    let sql =
        format!("SELECT (to_jsonb(t) - 'last_used_at')::text FROM {schema}.{table} t ORDER BY 1");
    app.db()
        .await
        .query(&sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[actix_web::test]
async fn verify_finds_no_drift_after_thousands_of_concurrent_commands_and_rebuild_repairs_drift() {
    let app = spawn_app().await;
    random_history(&app, 1500, 7).await;
    let report = app.replay(Mode::Verify).await.unwrap();
    assert!(report.events > 1000, "{} events", report.events);
    assert_eq!(report.drift, vec![], "no drift");

    // A read model changed behind the log's back is drift, and a rebuild repairs it.
    let db = app.db().await;
    db.batch_execute("UPDATE orgs SET name = 'tampered' WHERE slug = 'org-7-0'")
        .await
        .unwrap();
    let report = app.replay(Mode::Verify).await.unwrap();
    assert_eq!(report.drift.len(), 2, "{:?}", report.drift);
    assert!(report
        .drift
        .iter()
        .any(|(t, side, row)| t == "orgs" && *side == "live" && row.contains("tampered")));
    app.replay(Mode::Rebuild).await.unwrap();
    let report = app.replay(Mode::Verify).await.unwrap();
    assert_eq!(report.drift, vec![]);
    let name: String = db
        .query_one("SELECT name FROM orgs WHERE slug = 'org-7-0'", &[])
        .await
        .unwrap()
        .get(0);
    assert_ne!(name, "tampered");
    // The service goes on against the swapped-in tables.
    let org = app.create_org("after-rebuild", None).await;
    assert_eq!(
        app.get(&format!("/v1/orgs/{}", id(&org)), &app.admin_key)
            .await
            .status,
        200
    );
}

#[actix_web::test]
async fn the_state_until_a_past_position_equals_the_live_state_then() {
    let app = spawn_app().await;
    random_history(&app, 200, 11).await;
    let db = app.db().await;
    let position: i64 = db
        .query_one("SELECT max(position) FROM auth_events", &[])
        .await
        .unwrap()
        .get(0);
    let mut then = vec![];
    for t in vouch::app::replay::read_models() {
        then.push(table_json(&app, "public", t).await);
    }
    random_history(&app, 200, 12).await;
    // Replay reads in commit-safe order: under load, another test's open
    // transaction can hold the newest events back for a moment.
    let total: i64 = db
        .query_one("SELECT count(*) FROM auth_events", &[])
        .await
        .unwrap()
        .get(0);
    let readable = app
        .events_eventually("/v1/events?limit=1000", &app.admin_key, total as usize)
        .await;
    assert_eq!(
        readable.body["items"].as_array().map(Vec::len),
        Some(total as usize)
    );
    let mode = Mode::Until {
        cutoff: Cutoff::Position(position),
        schema: "as_of_then".into(),
    };
    let report = app.replay(mode).await.unwrap();
    assert!(report.applied < report.events);
    for (t, expected) in vouch::app::replay::read_models().iter().zip(&then) {
        assert_eq!(
            &table_json(&app, "as_of_then", t).await,
            expected,
            "{t} as of position {position}"
        );
    }
    let again = Mode::Until {
        cutoff: Cutoff::Position(position),
        schema: "as_of_then".into(),
    };
    assert!(
        app.replay(again).await.is_err(),
        "an existing schema is refused"
    );
    let bad = Mode::Until {
        cutoff: Cutoff::Position(1),
        schema: "public".into(),
    };
    assert!(app.replay(bad).await.is_err());
}

#[actix_web::test]
async fn a_rebuild_swaps_in_while_writers_run() {
    let app = spawn_app().await;
    let org = app.create_org("acme", None).await;
    let oid = id(&org);
    let writers = async {
        for _ in 0..60 {
            let res = app
                .post(
                    &format!("/v1/orgs/{oid}/keys"),
                    &app.admin_key,
                    json!({"name": "w"}),
                )
                .await;
            assert_eq!(res.status, 201, "{}", res.text);
        }
    };
    let rebuild = async {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        app.replay(Mode::Rebuild).await.unwrap()
    };
    tokio::join!(writers, rebuild);
    let db = app.db().await;
    let keys: i64 = db
        .query_one("SELECT count(*) FROM api_keys", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(keys, app.count_events("api_key.created").await);
    let report = app.replay(Mode::Verify).await.unwrap();
    assert_eq!(report.drift, vec![]);
}

#[actix_web::test]
async fn a_stored_v1_payload_is_read_as_v2_by_replay_and_by_commands() {
    let app = spawn_app().await;
    let org = app.create_org("acme", None).await;
    let oid: uuid::Uuid = id(&org).parse().unwrap();
    let key = vouch::auth::api_key::PresentedKey::generate();
    let key_id = uuid::Uuid::new_v4();
    // A payload as version 1 wrote it: no hash_algorithm.
    let v1 = json!({
        "org_id": oid, "name": "legacy", "prefix": key.display_prefix(), "key_hash": key.hash(),
        "scopes": ["deploy"], "expires_at": null,
    });
    app.db()
        .await
        .execute(
            "INSERT INTO auth_events (event_id, stream_type, stream_id, version, event_type, schema_version, org_id, data, metadata) \
             VALUES ($1, 'api_key', $2, 1, 'api_key.created', 1, $3, $4, '{}')",
            &[&uuid::Uuid::new_v4(), &key_id, &oid, &v1],
        )
        .await
        .unwrap();
    app.replay(Mode::Rebuild).await.unwrap();
    let res = app
        .post(
            "/v1/keys/verify",
            &app.admin_key,
            json!({"key": key.expose()}),
        )
        .await;
    assert_eq!(res.body["valid"], true, "{}", res.text);
    let res = app
        .post(
            &format!("/v1/orgs/{oid}/keys/{key_id}/revoke"),
            &app.admin_key,
            json!({}),
        )
        .await;
    assert_eq!(
        res.status, 200,
        "the aggregate loads the v1 event: {}",
        res.text
    );
    let res = app
        .post(
            "/v1/keys/verify",
            &app.admin_key,
            json!({"key": key.expose()}),
        )
        .await;
    assert_eq!(res.body["code"], "revoked");
    let stored: i16 = app
        .db()
        .await
        .query_one(
            "SELECT schema_version FROM auth_events WHERE event_type = 'api_key.revoked'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 2, "new events are written at the current version");
    assert_eq!(app.replay(Mode::Verify).await.unwrap().drift, vec![]);
}

#[actix_web::test]
async fn sessions_and_key_usage_survive_a_rebuild() {
    let app = spawn_app().await;
    // Sessions started, refreshed and revoked: replay copies the starts in
    // bulk and applies the rest row by row, in log order.
    let mut kept = vec![];
    for i in 0..4 {
        let email = format!("s{i}@example.org");
        let (_, access, refresh) = app.user_session(&email).await;
        let again = app.sign_in(&email, PASSWORD).await;
        assert_eq!(again.status, 201, "{}", again.text);
        let res = app.refresh(&json!(refresh)).await;
        assert_eq!(res.status, 200, "{}", res.text);
        if i % 2 == 0 {
            let access = res.body["access_token"]
                .as_str()
                .unwrap_or(&access)
                .to_owned();
            assert_eq!(
                app.delete("/v1/sessions/current", &access).await.status,
                204
            );
        }
        let res = app.refresh(&again.body["refresh_token"]).await;
        assert_eq!(res.status, 200, "{}", res.text);
        kept.push(res.body["refresh_token"].clone());
    }
    // last_used_at is no event: a rebuild carries it over from the live rows.
    let org = id(&app.create_org("usage", None).await);
    let used = id(&app
        .post(
            &format!("/v1/orgs/{org}/keys"),
            &app.admin_key,
            json!({"name": "u"}),
        )
        .await
        .body);
    let db = app.db().await;
    db.execute(
        "UPDATE api_keys SET last_used_at = '2026-01-02T03:04:05.678901Z' WHERE id = $1::text::uuid",
        &[&used],
    )
    .await
    .unwrap();
    let sessions_before = table_json(&app, "public", "sessions").await;
    let tokens_before = table_json(&app, "public", "session_refresh_tokens").await;

    app.replay(Mode::Rebuild).await.unwrap();

    assert_eq!(
        table_json(&app, "public", "sessions").await,
        sessions_before
    );
    assert_eq!(
        table_json(&app, "public", "session_refresh_tokens").await,
        tokens_before
    );
    let at: String = db
        .query_one(
            "SELECT last_used_at::text FROM api_keys WHERE id = $1::text::uuid",
            &[&used],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(at, "2026-01-02 03:04:05.678901+00");
    let report = app.replay(Mode::Verify).await.unwrap();
    assert_eq!(report.drift, vec![]);
    // The rebuilt sessions still refresh.
    for token in kept {
        let res = app.refresh(&token).await;
        assert_eq!(res.status, 200, "{}", res.text);
    }
}
