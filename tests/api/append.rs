//! A command's transaction sent in one pipeline, `COMMIT` included: all of it
//! or nothing, and the connection clean either way.

use crate::helpers::*;
use uuid::Uuid;
use vouch::domain::api_key::ApiKeyEvent;
use vouch::domain::stored::AnyEvent;
use vouch::store::append::commit_pipelined;
use vouch::store::events::{RecordedEvent, TypedEvent};
use vouch::store::{idempotency, StoreError};

fn revocation(stream_id: Uuid, version: i32) -> TypedEvent {
    TypedEvent {
        envelope: RecordedEvent {
            position: 0,
            transaction_id: 0,
            event_id: Uuid::new_v4(),
            stream_type: "api_key".into(),
            stream_id,
            version,
            event_type: "api_key.revoked".into(),
            schema_version: 1,
            org_id: None,
            data: serde_json::json!({}),
            metadata: serde_json::json!({}),
            occurred_at: chrono::DateTime::UNIX_EPOCH,
        },
        event: AnyEvent::ApiKey(ApiKeyEvent::Revoked { reason: None }),
    }
}

async fn count(app: &TestApp, sql: &str, id: &str) -> i64 {
    app.db().await.query_one(sql, &[&id]).await.unwrap().get(0)
}

#[actix_web::test]
async fn a_failing_statement_leaves_nothing_of_the_pipeline_and_a_clean_connection() {
    let app = spawn_app().await;
    let org = id(&app.create_org("acme", None).await);
    let (key_id, _) = app.create_key(&org, &["deploy"]).await;
    let key = Uuid::parse_str(&key_id).unwrap();
    let client = app.app.pool().get().await.unwrap();
    let claim = || {
        Some(idempotency::claim(
            "test",
            "retry-1",
            &[7; 32],
            chrono::DateTime::UNIX_EPOCH,
        ))
    };

    // Version 1 is taken: the insert fails after BEGIN and the claim.
    let mut stale = [revocation(key, 1)];
    let outcome = commit_pipelined(&client, claim(), &mut stale).await;
    assert!(
        matches!(outcome, Err(StoreError::VersionConflict)),
        "{outcome:?}"
    );
    let claims = "SELECT count(*) FROM idempotency_records WHERE key = $1";
    assert_eq!(
        count(&app, claims, "retry-1").await,
        0,
        "the claim rolled back"
    );
    let revoked = "SELECT count(*) FROM api_keys WHERE id::text = $1 AND revoked_at IS NOT NULL";
    assert_eq!(
        count(&app, revoked, &key_id).await,
        0,
        "the projection rolled back"
    );
    // A savepoint outside a transaction block is refused.
    let outside = client.batch_execute("SAVEPOINT probe").await;
    assert!(
        outside.is_err_and(|e| e
            .as_db_error()
            .is_some_and(|db| db.message().contains("transaction blocks"))),
        "the connection is back outside any transaction"
    );

    let mut next = [revocation(key, 2)];
    commit_pipelined(&client, claim(), &mut next).await.unwrap();
    assert!(next[0].envelope.position > 0, "positions are stamped");
    assert_eq!(count(&app, claims, "retry-1").await, 1);
    assert_eq!(count(&app, revoked, &key_id).await, 1);
}
