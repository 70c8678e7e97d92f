//! The personal-data key-encryption key: created once per deployment, recorded
//! by fingerprint, and refused at start-up when it is wrong, foreign or lost.

use crate::helpers::*;
use crate::scratch::TempPath;
use vouch::config::Settings;
use vouch::startup::{Application, StartError};

/// Starts a service on `app`'s database with another key file, and returns
/// why it refused to start.
async fn refusal(app: &TestApp, key_file: &std::path::Path) -> String {
    let mut settings = Settings::for_database(&app.database_url);
    settings.pii_key_file = key_file.to_owned();
    match Application::build(settings).await {
        Err(e @ StartError::PiiKey(_)) => e.to_string(),
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("started with a key file it should refuse"),
    }
}

async fn recorded_fingerprint(app: &TestApp) -> Option<String> {
    app.db()
        .await
        .query_opt("SELECT fingerprint FROM pii_kek", &[])
        .await
        .unwrap()
        .map(|r| r.get(0))
}

#[actix_web::test]
async fn the_key_file_is_created_once_and_recorded_by_fingerprint_only() {
    let app = spawn_app().await;
    let path = Settings::for_database(&app.database_url).pii_key_file;
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.trim().len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let fingerprint = recorded_fingerprint(&app).await.expect("recorded");
    assert_eq!(fingerprint.len(), 64);
    assert!(
        !fingerprint.contains(text.trim()),
        "the key itself is not stored"
    );
    // A second instance with the same file starts and changes nothing.
    let second = spawn_instance(&app, |_| {}).await;
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    assert_eq!(recorded_fingerprint(&second).await, Some(fingerprint));
}

#[actix_web::test]
async fn a_key_file_of_another_deployment_is_refused() {
    let app = spawn_app().await;
    let other = spawn_app().await;
    let foreign = Settings::for_database(&other.database_url).pii_key_file;
    let err = refusal(&app, &foreign).await;
    assert!(err.contains("holds another key"), "{err}");
    // A fresh random key in a new file is just as foreign.
    let path = TempPath::new("pii.key");
    std::fs::write(&path, vouch::auth::api_key::hex(&[9u8; 32])).unwrap();
    let err = refusal(&app, &path).await;
    assert!(err.contains("holds another key"), "{err}");
}

#[actix_web::test]
async fn a_lost_key_file_is_refused_and_never_replaced() {
    let app = spawn_app().await;
    let missing = TempPath::new("missing-pii.key");
    let err = refusal(&app, &missing).await;
    assert!(err.contains("missing"), "{err}");
    assert!(!missing.exists(), "no new key is made over existing data");
}

#[actix_web::test]
async fn a_malformed_key_file_is_refused() {
    let app = spawn_app().await;
    let path = TempPath::new("bad-pii.key");
    std::fs::write(&path, "not a key").unwrap();
    let err = refusal(&app, &path).await;
    assert!(err.contains("not 64 hex characters"), "{err}");
}

#[actix_web::test]
async fn lost_data_keys_are_refused_and_never_read_as_erased() {
    use vouch::pii::keyring::{KeyringError, StoredPayload};
    let app = spawn_app().await;
    let ada = id(&app.create_user("ada@example.org").await);
    let bob = id(&app.create_user("bob@example.org").await);
    let db = app.db().await;
    // One person's key gone (the others kept): reading their fields fails.
    db.execute(
        "DELETE FROM pii_subject_keys WHERE subject_id = $1",
        &[&uuid::Uuid::parse_str(&ada).unwrap()],
    )
    .await
    .unwrap();
    let row = db
        .query_one(
            "SELECT data FROM auth_events WHERE event_type = 'user.registered' AND stream_id = $1",
            &[&uuid::Uuid::parse_str(&ada).unwrap()],
        )
        .await
        .unwrap();
    let mut data: serde_json::Value = row.get(0);
    let payload = StoredPayload {
        event_type: "user.registered",
        stream_id: uuid::Uuid::parse_str(&ada).unwrap(),
        data: &mut data,
        metadata: None,
    };
    let client = app.app.pool().get().await.unwrap();
    let read = keyring(&app).open_payloads(&client, vec![payload]).await;
    assert!(matches!(read, Err(KeyringError::Lost(_))), "{read:?}");
    assert!(
        data["email"].as_str().unwrap().starts_with("pii:v1:"),
        "left as stored"
    );
    // Every key gone: the start is refused.
    db.execute("DELETE FROM pii_subject_keys", &[])
        .await
        .unwrap();
    let path = Settings::for_database(&app.database_url).pii_key_file;
    let err = refusal(&app, &path).await;
    assert!(err.contains("data keys were lost"), "{err}");
    // Bob's is still read.
    let res = app.get(&format!("/v1/users/{bob}"), &app.admin_key).await;
    assert_eq!(res.body["email"], "bob@example.org");
}

#[actix_web::test]
async fn data_keys_without_a_record_of_their_key_are_refused() {
    let app = spawn_app().await;
    let db = app.db().await;
    db.batch_execute(
        "DELETE FROM pii_kek; \
         INSERT INTO pii_subject_keys (subject_id, wrapped_key) VALUES (gen_random_uuid(), '\\x00')",
    )
    .await
    .unwrap();
    let path = Settings::for_database(&app.database_url).pii_key_file;
    let err = refusal(&app, &path).await;
    assert!(err.contains("no record of the key"), "{err}");
    // And without the file as well: still refused, still no new key.
    let missing = TempPath::new("missing-pii.key");
    let err = refusal(&app, &missing).await;
    assert!(err.contains("missing"), "{err}");
    assert!(!missing.exists());
}

#[actix_web::test]
async fn a_persons_data_key_is_made_once_and_erasure_destroys_it() {
    use serde_json::json;
    use vouch::pii::fields::{open_payload, seal_payload, ERASED};
    let app = spawn_app().await;
    let ring = keyring(&app);
    let pool = vouch::store::connect(&app.database_url, 8).await.unwrap();
    let (ada, bob) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());

    // Eight writers race to make Bob's key: they all get the one that was stored.
    let racers = (0..8).map(|_| async {
        let c = pool.get().await.unwrap();
        ring.key_for_writing(&c, bob).await.unwrap().unwrap()
    });
    let keys = futures_util::future::join_all(racers).await;
    let mut sealed = json!({"email": "bob@example.org"});
    seal_payload(&keys[0], bob, "user.registered", &mut sealed);
    for key in &keys {
        let mut opened = sealed.clone();
        open_payload(Some(key), bob, "user.registered", &mut opened).unwrap();
        assert_eq!(opened["email"], "bob@example.org");
    }

    let c = pool.get().await.unwrap();
    let key = ring.key_for_writing(&c, ada).await.unwrap().unwrap();
    let mut stored = json!({"email": "ada@example.org", "name": "Ada"});
    seal_payload(&key, ada, "user.registered", &mut stored);
    let wrapped: Vec<u8> = c
        .query_one(
            "SELECT wrapped_key FROM pii_subject_keys WHERE subject_id = $1",
            &[&ada],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(wrapped.len(), 24 + 32 + 16, "nonce, wrapped key, tag");

    assert!(ring.erase(&c, ada).await.unwrap());
    assert!(!ring.erase(&c, ada).await.unwrap(), "erased already");
    let row = c
        .query_one(
            "SELECT wrapped_key IS NULL, erased_at IS NOT NULL FROM pii_subject_keys WHERE subject_id = $1",
            &[&ada],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0) && row.get::<_, bool>(1));
    assert!(
        ring.key_for_writing(&c, ada).await.unwrap().is_none(),
        "no new key after erasure"
    );
    let keys = ring.keys_for_reading(&c, &[ada, bob]).await.unwrap();
    assert!(keys[&ada].is_none());
    assert!(keys[&bob].is_some(), "Bob is untouched");
    let mut shown = stored.clone();
    open_payload(keys[&ada].as_ref(), ada, "user.registered", &mut shown).unwrap();
    assert_eq!(shown, json!({"email": ERASED, "name": ERASED}));

    // Someone never seen is recorded as erased, so nothing of theirs is sealed later.
    let stranger = uuid::Uuid::new_v4();
    assert!(ring.erase(&c, stranger).await.unwrap());
    assert!(ring.key_for_writing(&c, stranger).await.unwrap().is_none());
}

#[actix_web::test]
async fn personal_fields_are_sealed_in_the_log_and_read_as_written() {
    use serde_json::json;
    use vouch::app::replay::Mode;
    let app = spawn_app().await;
    let (email, name, renamed) = (
        "grace.hopper@example.org",
        "Grace Brewster Hopper",
        "Amazing Grace",
    );
    let agent = "HopperBrowser/1.0 (COBOL; FLOW-MATIC)";
    let res = app
        .request(
            "POST",
            "/v1/users",
            None,
            Some(json!({"email": email, "password": PASSWORD, "name": name})),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let user = id(&res.body);
    let signed_in = app
        .client
        .post(format!("{}/v1/sessions", app.address))
        .insert_header(("User-Agent", agent))
        .send_json(&json!({"email": email, "password": PASSWORD}))
        .await
        .unwrap();
    assert_eq!(signed_in.status().as_u16(), 201);
    let rename = || async {
        let path = format!("/v1/users/{user}");
        let res = app
            .patch(&path, &app.admin_key, json!({"name": renamed}))
            .await;
        assert_eq!(res.status, 200, "{}", res.text);
    };
    rename().await;

    // The log's payloads hold none of it, only sealed values.
    let db = app.db().await;
    let payloads: String = db
        .query_one(
            "SELECT string_agg(data::text || ' ' || metadata::text, ' ') FROM auth_events",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    for plain in [email, name, renamed, agent] {
        assert!(
            !payloads.contains(plain),
            "{plain} in the log's payloads or metadata"
        );
    }
    let sealed: i64 = db
        .query_one(
            "SELECT count(*) FROM auth_events WHERE data->>'email' LIKE 'pii:v1:%' \
               OR data->>'name' LIKE 'pii:v1:%' OR data->>'user_agent' LIKE 'pii:v1:%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(sealed, 3, "registered, renamed, session started");

    // Every reader gets them as written: the events API...
    let events = app
        .events_eventually(&format!("/v1/events?stream_id={user}"), &app.admin_key, 2)
        .await;
    let items = events.body["items"].as_array().unwrap();
    assert_eq!(items[0]["data"]["email"], email);
    assert_eq!(items[0]["data"]["name"], name);
    assert_eq!(items[1]["data"]["name"], renamed);
    let started = app
        .events_eventually("/v1/events?type=session.started", &app.admin_key, 1)
        .await;
    assert_eq!(started.body["items"][0]["data"]["user_agent"], agent);
    // The caller's agent in the metadata is the signing-in person's, sealed for them.
    assert_eq!(started.body["items"][0]["metadata"]["user_agent"], agent);
    let sealed_callers: (i64, i64) = db
        .query_one(
            "SELECT count(*) FILTER (WHERE metadata->>'ip' LIKE 'pii:v1:%'), \
                    count(*) FILTER (WHERE metadata->>'user_agent' LIKE 'pii:v1:%') \
             FROM auth_events",
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    // The sign-up's and the sign-in's address; only the sign-in sent an agent.
    assert_eq!(sealed_callers, (2, 1));
    // ...the commands, which fold the stream (renaming to the same name is no change)...
    rename().await;
    assert_eq!(app.count_events("user.renamed").await, 1);
    // ...and replay: the rebuilt read model is the live one, and signs in.
    let report = app.replay(Mode::Verify).await.unwrap();
    assert_eq!(report.drift, vec![]);
    app.replay(Mode::Rebuild).await.unwrap();
    let res = app.get(&format!("/v1/users/{user}"), &app.admin_key).await;
    assert_eq!(
        (res.body["email"].as_str(), res.body["name"].as_str()),
        (Some(email), Some(renamed))
    );
    assert_eq!(app.sign_in(email, PASSWORD).await.status, 201);
}

#[actix_web::test]
async fn replay_refuses_another_deployments_key() {
    use vouch::app::replay::{replay, Mode};
    let app = spawn_app().await;
    let other = spawn_app().await;
    let err = replay(
        &app.database_url,
        &pii_key_file(&other.database_url),
        Mode::Verify,
        &crate::replay::Quiet,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("holds another key"), "{err}");
}
