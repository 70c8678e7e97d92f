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
