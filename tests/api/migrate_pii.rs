//! `vouch migrate-pii`: a log written before sealing is sealed once, its
//! chain recomputed, and the head it replaced kept, signed.

use crate::audit::export_to_file;
use crate::helpers::*;
use crate::scratch::TempPath;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use vouch::app::migrate_pii::{migrate_pii, MigratePiiError, PiiMigration};
use vouch::app::replay::Mode;
use vouch::audit::chainer::{rewrite_message, CheckpointPolicy};
use vouch::audit::export::ExportFilter;
use vouch::audit::key::{verify_signature, AuditKey};
use vouch::audit::verify::verify_export;
use vouch::config::Settings;
use vouch::startup::Application;

const AGENT: &str = "LegacyAgent/0.9 (before sealing)";

fn policy() -> CheckpointPolicy {
    CheckpointPolicy {
        every_events: 1000,
        every: Duration::from_secs(10),
    }
}

/// Runs the migration once the stopped service's connections are gone.
async fn migrate(url: &str, key: &AuditKey) -> PiiMigration {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match migrate_pii(url, &pii_key_file(url), key, policy()).await {
            Err(MigratePiiError::InUse(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other.unwrap(),
        }
    }
}

/// Every payload and metadata of the log, as stored.
async fn log_text(app: &TestApp) -> String {
    app.db()
        .await
        .query_one(
            "SELECT string_agg(data::text || metadata::text, ' ') FROM auth_events",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// Rewrites the log as vouch wrote it before personal fields were sealed:
/// every field in the clear (`[erased]` ones as given in `erased`), a
/// refresh's caller anonymous, no data keys of the living, no chain.
async fn as_written_before_sealing(app: &TestApp, erased: &[(&str, &str, Value)]) {
    let db = app.db().await;
    let logged: i64 = db
        .query_one("SELECT count(*) FROM auth_events", &[])
        .await
        .unwrap()
        .get(0);
    // Every event, once no transaction older than them is open.
    let events = app
        .events_eventually("/v1/events?limit=1000", &app.admin_key, logged as usize)
        .await;
    db.batch_execute("ALTER TABLE auth_events DISABLE TRIGGER auth_events_no_update_delete")
        .await
        .unwrap();
    for e in events.body["items"].as_array().unwrap() {
        let (mut data, mut metadata) = (e["data"].clone(), e["metadata"].clone());
        if e["type"] == "session.refreshed" {
            metadata["actor"] = json!({"type": "anonymous"});
        }
        for (stream, field, value) in erased {
            if e["stream_id"] == json!(stream) && e["type"] == "user.registered" {
                data[*field] = value.clone();
            }
        }
        // The API redacts hashes: keep the stored ones.
        db.execute(
            "UPDATE auth_events SET metadata = $2, \
               data = $3::jsonb || jsonb_strip_nulls(jsonb_build_object( \
                 'password_hash', data->'password_hash', \
                 'refresh_token_hash', data->'refresh_token_hash', \
                 'key_hash', data->'key_hash')) \
             WHERE event_id = $1",
            &[
                &uuid::Uuid::parse_str(e["event_id"].as_str().unwrap()).unwrap(),
                &metadata,
                &data,
            ],
        )
        .await
        .unwrap();
    }
    db.batch_execute(
        "ALTER TABLE auth_events ENABLE TRIGGER auth_events_no_update_delete; \
         DELETE FROM pii_subject_keys WHERE wrapped_key IS NOT NULL; \
         DELETE FROM audit_checkpoints; DELETE FROM audit_chain;",
    )
    .await
    .unwrap();
    let text = log_text(app).await;
    assert!(
        text.contains("legacy@example.org") && text.contains(AGENT),
        "{text}"
    );
    assert!(!text.contains("pii:v1:"), "nothing sealed any more");
}

#[actix_web::test]
async fn a_log_from_before_sealing_is_sealed_once_and_the_replaced_head_is_kept_signed() {
    let key_file = TempPath::new("audit.key");
    let key_path = key_file.clone();
    let app = spawn_app_with(move |s| s.audit_key_file = key_path).await;
    let key = AuditKey::load_or_create(&key_file).unwrap();
    let res = app
        .request(
            "POST",
            "/v1/users",
            None,
            Some(json!({"email": "legacy@example.org", "password": PASSWORD, "name": "Lea Gacy"})),
        )
        .await;
    let user = id(&res.body);
    let signed_in = app
        .client
        .post(format!("{}/v1/sessions", app.address))
        .insert_header(("User-Agent", AGENT))
        .send_json(&json!({"email": "legacy@example.org", "password": PASSWORD}))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let refreshed = app
        .client
        .post(format!("{}/v1/sessions/refresh", app.address))
        .insert_header(("User-Agent", AGENT))
        .send_json(&json!({"refresh_token": signed_in["refresh_token"]}))
        .await
        .unwrap();
    assert_eq!(refreshed.status().as_u16(), 200);
    // Someone erased before the migration: their old fields are erased by it.
    let gone = id(&app.create_user("gone@example.org").await);
    assert_eq!(
        app.delete(&format!("/v1/users/{gone}"), &app.admin_key)
            .await
            .status,
        204
    );
    as_written_before_sealing(&app, &[(gone.as_str(), "email", json!("gone@example.org"))]).await;
    let before = export_to_file(&app, &key, ExportFilter::default()).await;
    verify_export(&before, Some(&key.public_key())).unwrap();
    let before_head = std::fs::read_to_string(&before)
        .unwrap()
        .lines()
        .last()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["manifest"]["chain_head"].clone())
        .unwrap();

    // Refused while the service runs: nothing changes.
    let url = app.database_url.clone();
    let refused = migrate_pii(&url, &pii_key_file(&url), &key, policy()).await;
    assert!(
        matches!(refused, Err(MigratePiiError::InUse(_))),
        "{refused:?}"
    );
    let (database, admin_key) = (app.database.clone(), app.admin_key.clone());
    app.stop.stop().await;
    drop(app);

    let done = migrate(&url, &key).await;
    // Registered and signed-in (payload and caller), refreshed (caller), the
    // sign-up of the person erased since.
    assert_eq!(done.rewritten, 4, "{done:?}");
    let rewrite = done.rewrite.unwrap();
    assert_eq!(
        json!(vouch::auth::api_key::hex(&rewrite.replaced_head)),
        before_head
    );
    assert!(verify_signature(
        &key.public_key(),
        &rewrite_message(&rewrite),
        &rewrite.signature
    ));
    let again = migrate(&url, &key).await;
    assert_eq!((again.rewritten, again.rewrite.is_none()), (0, true));

    // The log holds nothing in the clear, and reads as written.
    let app = restart(database, admin_key, key_file.clone()).await;
    let text = log_text(&app).await;
    for plain in ["legacy@example.org", "Lea Gacy", AGENT, "gone@example.org"] {
        assert!(!text.contains(plain), "{plain} in the log");
    }
    let stream = app
        .get(&format!("/v1/events?stream_id={user}"), &app.admin_key)
        .await;
    assert_eq!(
        stream.body["items"][0]["data"]["email"],
        "legacy@example.org"
    );
    let refreshes = app
        .get("/v1/events?type=session.refreshed", &app.admin_key)
        .await;
    assert_eq!(refreshes.body["items"][0]["metadata"]["user_agent"], AGENT);
    let gone_stream = app
        .get(&format!("/v1/events?stream_id={gone}"), &app.admin_key)
        .await;
    assert_eq!(gone_stream.body["items"][0]["data"]["email"], "[erased]");
    assert_eq!(
        app.sign_in("legacy@example.org", PASSWORD).await.status,
        201
    );
    // The new chain verifies; the read models are what the log says.
    let after = export_to_file(&app, &key, ExportFilter::default()).await;
    verify_export(&after, Some(&key.public_key())).unwrap();
    assert_eq!(app.replay(Mode::Verify).await.unwrap().drift, vec![]);
    let rewrites: i64 = app
        .db()
        .await
        .query_one("SELECT count(*) FROM audit_rewrites", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rewrites, 1);
}

/// The service started again on a database it bootstrapped before.
async fn restart(
    database: std::sync::Arc<crate::scratch::TempDatabase>,
    admin_key: String,
    audit_key: std::path::PathBuf,
) -> TestApp {
    let database_url = database.url.clone();
    let mut settings = Settings::for_database(&database_url);
    settings.audit_key_file = audit_key;
    let application = Application::build(settings).await.expect("restarts");
    let address = format!("http://127.0.0.1:{}", application.port());
    let app = application.app().clone();
    let (relay, stop) = (application.relay_status(), application.stop_handle());
    actix_web::rt::spawn(application.run_until_stopped());
    TestApp {
        database,
        app,
        management: None,
        relay,
        stop,
        address,
        database_url,
        admin_key,
        client: awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .finish(),
    }
}
