use crate::helpers::*;
use crate::scratch::TempPath;

use std::path::PathBuf;
use vouch::audit::chainer::CheckpointPolicy;
use vouch::audit::export::{catch_up, export, ExportFilter, LineSink};
use vouch::audit::key::AuditKey;
use vouch::audit::verify::{verify_export, VerifyError};

struct FileSink(Vec<u8>);

impl LineSink for FileSink {
    async fn send(&mut self, mut line: Vec<u8>) -> std::io::Result<()> {
        line.push(b'\n');
        self.0.extend(line);
        Ok(())
    }
}

fn temp(name: &str) -> TempPath {
    TempPath::new(name)
}

pub(crate) async fn export_to_file(
    app: &TestApp,
    key: &AuditKey,
    filter: ExportFilter,
) -> TempPath {
    let pool = vouch::store::connect(&app.database_url, 2).await.unwrap();
    let policy = CheckpointPolicy {
        every_events: 1000,
        every: std::time::Duration::from_secs(10),
    };
    catch_up(&pool, key, policy).await.unwrap();
    let mut sink = FileSink(vec![]);
    export(&pool, key, &keyring(app), &filter, &mut sink, &|_| {})
        .await
        .unwrap();
    let path = temp("export.jsonl");
    std::fs::write(&path, sink.0).unwrap();
    path
}

fn line_of(path: &PathBuf, needle: &str) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .position(|l| l.contains(needle))
        .expect("needle in export")
        + 1
}

fn tamper(path: &PathBuf, line: usize, from: &str, to: &str) -> TempPath {
    let text = std::fs::read_to_string(path).unwrap();
    let changed: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i + 1 == line {
                l.replacen(from, to, 1)
            } else {
                l.to_owned()
            }
        })
        .collect();
    assert_ne!(
        changed.join("\n") + "\n",
        text,
        "the tamper changed something"
    );
    let out = temp("tampered.jsonl");
    std::fs::write(&out, changed.join("\n") + "\n").unwrap();
    out
}

fn failing_line(result: Result<vouch::audit::verify::Verified, VerifyError>) -> usize {
    match result {
        Err(VerifyError::Line { line, .. }) => line,
        other => panic!("expected a failing line, got {other:?}"),
    }
}

#[actix_web::test]
async fn an_export_verifies_offline_and_any_change_is_caught_at_its_line() {
    let key_file = temp("audit.key");
    let key_path = key_file.clone();
    let app = spawn_app_with(move |s| s.audit_key_file = key_path).await;
    let user = app.create_user("ada@example.org").await;
    let org = app.create_org("acme", Some(&id(&user))).await;
    app.create_key(&id(&org), &["deploy"]).await;
    let key = AuditKey::load_or_create(&key_file).unwrap();

    let path = export_to_file(&app, &key, ExportFilter::default()).await;
    let verified = verify_export(&path, Some(&key.public_key())).unwrap();
    assert_eq!(
        verified.events,
        app.db()
            .await
            .query_one("SELECT count(*) FROM auth_events", &[])
            .await
            .unwrap()
            .get::<_, i64>(0) as u64
    );
    assert!(
        verified.checkpoint_checked,
        "the whole-log export carries a signed checkpoint"
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        !text.contains("argon2"),
        "no password hash leaves the database"
    );
    assert!(
        text.contains("\"password_hash\":\"sha256:"),
        "secrets appear as commitments"
    );

    // One byte of an event line.
    let n = line_of(&path, "\"slug\":\"acme\"");
    assert_eq!(
        failing_line(verify_export(
            &tamper(&path, n, "\"slug\":\"acme\"", "\"slug\":\"acmf\""),
            None
        )),
        n
    );
    // The manifest.
    let last = text.lines().count();
    assert_eq!(
        failing_line(verify_export(
            &tamper(&path, last, "\"count\":", "\"count\":1"),
            None
        )),
        last
    );
    // A line removed from the middle.
    let without: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, l)| l)
        .collect();
    let cut = temp("cut.jsonl");
    std::fs::write(&cut, without.join("\n") + "\n").unwrap();
    assert_eq!(
        failing_line(verify_export(&cut, None)),
        3,
        "the line after the gap breaks the chain"
    );
    // Another signer.
    let other = AuditKey::load_or_create(&temp("other.key")).unwrap();
    assert_eq!(
        failing_line(verify_export(&path, Some(&other.public_key()))),
        last
    );

    // A row changed in the database behind the trigger's back.
    let db = app.db().await;
    db.batch_execute(
        "ALTER TABLE auth_events DISABLE TRIGGER auth_events_no_update_delete; \
         UPDATE auth_events SET data = jsonb_set(data, '{name}', '\"Evil Corp\"') WHERE event_type = 'org.created' AND data->>'slug' = 'acme'; \
         ALTER TABLE auth_events ENABLE TRIGGER auth_events_no_update_delete;",
    )
    .await
    .unwrap();
    let after = export_to_file(&app, &key, ExportFilter::default()).await;
    let n = line_of(&after, "Evil Corp");
    let err = verify_export(&after, None).unwrap_err();
    assert_eq!(failing_line(Err(err.clone())), n, "{err}");
    assert!(err.to_string().contains("chain hash"), "{err}");
}

#[actix_web::test]
async fn the_http_export_is_signed_and_stays_in_the_org() {
    let key_file = temp("audit.key");
    let key_path = key_file.clone();
    let app = spawn_app_with(move |s| s.audit_key_file = key_path).await;
    let acme = app.create_org("acme", None).await;
    let other = app.create_org("other", None).await;
    let (_, auditor) = app.create_key(&id(&acme), &["vouch:audit:read"]).await;
    let (_, plain) = app.create_key(&id(&acme), &["deploy"]).await;
    app.create_key(&id(&other), &[]).await;
    let key = AuditKey::load_or_create(&key_file).unwrap();

    let res = app.get("/v1/audit/export", &app.admin_key).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(
        res.headers.get("content-type").unwrap(),
        "application/x-ndjson"
    );
    let whole = temp("whole.jsonl");
    std::fs::write(&whole, &res.text).unwrap();
    assert!(verify_export(&whole, Some(&key.public_key())).is_ok());

    let res = app
        .get(&format!("/v1/audit/export?org_id={}", id(&acme)), &auditor)
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let lines: Vec<serde_json::Value> = res
        .text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (events, manifest) = lines.split_at(lines.len() - 1);
    assert_eq!(events.len(), 3, "org.created and two keys");
    assert!(events.iter().all(|l| l["event"]["org_id"] == acme["id"]));
    assert_eq!(manifest[0]["manifest"]["org_id"], acme["id"]);
    let part = temp("org.jsonl");
    std::fs::write(&part, &res.text).unwrap();
    assert_eq!(
        verify_export(&part, Some(&key.public_key()))
            .unwrap()
            .events,
        3
    );

    assert_error(
        &app.get("/v1/audit/export", &auditor).await,
        403,
        "forbidden",
    );
    assert_error(
        &app.get(&format!("/v1/audit/export?org_id={}", id(&acme)), &plain)
            .await,
        403,
        "forbidden",
    );
    assert_error(
        &app.get(&format!("/v1/audit/export?org_id={}", id(&other)), &auditor)
            .await,
        404,
        "not_found",
    );
    let res = app
        .get(
            "/v1/audit/export?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            &app.admin_key,
        )
        .await;
    assert_error(&res, 422, "validation_error");
}

#[actix_web::test]
async fn the_chainer_links_every_event_and_signs_checkpoints() {
    let key_file = temp("audit.key");
    let key_path = key_file.clone();
    let app = spawn_app_with(move |s| {
        s.audit_key_file = key_path;
        s.chainer = true;
        s.checkpoint_events = 5;
    })
    .await;
    for i in 0..4 {
        app.create_org(&format!("org-{i}"), None).await;
    }
    let db = app.db().await;
    let count = |sql: &'static str| {
        let db = &db;
        async move { db.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    // The checkpoint is signed in a step after the links: wait for both. The
    // deadline is generous because a loaded machine delays everything.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while count("SELECT count(*) FROM audit_chain").await
        < count("SELECT count(*) FROM auth_events").await
        || count("SELECT count(*) FROM audit_checkpoints").await == 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the chainer did not catch up and sign"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let key = AuditKey::load_or_create(&key_file).unwrap();
    let row = db
        .query_one(
            "SELECT seq, transaction_id::text, position, head, signed_at, key_id, public_key, signature \
             FROM audit_checkpoints ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    let head: Vec<u8> = row.get(3);
    let txid: String = row.get(1);
    let message = vouch::audit::chainer::checkpoint_message(
        row.get(0),
        vouch::store::events::LogPosition {
            transaction_id: txid.parse().unwrap(),
            position: row.get(2),
        },
        &head.try_into().unwrap(),
        row.get(4),
        &row.get::<_, String>(5),
    );
    assert_eq!(
        row.get::<_, String>(6),
        key.public_key(),
        "signed with the key from the file"
    );
    assert!(vouch::audit::key::verify_signature(
        &key.public_key(),
        &message,
        &row.get::<_, String>(7)
    ));
    assert!(count("SELECT count(*) FROM audit_checkpoints").await >= 1);
}

/// Runs `vouch verify-export` on `path` with `args`; (exit status, stdout + stderr).
fn verify_cli(path: &PathBuf, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vouch"))
        .arg("verify-export")
        .arg(path)
        .args(args)
        .env("VOUCH_LOG", "off")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[actix_web::test]
async fn an_unpinned_verification_says_the_origin_was_not_checked() {
    let app = spawn_app().await;
    app.create_org("acme", None).await;
    // An export signed by a key that is not vouch's: a forgery, as far as
    // anyone who pins vouch's key is concerned.
    let forger_file = temp("forger.key");
    let forger = AuditKey::load_or_create(&forger_file).unwrap();
    let forged = export_to_file(&app, &forger, ExportFilter::default()).await;
    let vouch_file = temp("vouch.key");
    let vouch_key = AuditKey::load_or_create(&vouch_file).unwrap();

    let (status, text) = verify_cli(&forged, &[]);
    assert_eq!(status, 3, "{text}");
    assert!(text.contains("ORIGIN NOT CHECKED"), "{text}");
    let (status, text) = verify_cli(&forged, &["--unpinned"]);
    assert_eq!(status, 0, "{text}");
    assert!(
        text.contains("integrity ok") && text.contains("ORIGIN NOT CHECKED"),
        "{text}"
    );
    let (status, text) = verify_cli(&forged, &["--public-key", &vouch_key.public_key()]);
    assert_eq!(status, 1, "{text}");
    assert!(text.contains("another key"), "{text}");
    let (status, text) = verify_cli(&forged, &["--public-key", &forger.public_key()]);
    assert_eq!(status, 0, "{text}");
    assert!(text.contains("signed by the pinned key"), "{text}");
}

#[actix_web::test]
async fn a_pinned_key_that_starts_with_a_dash_is_taken_as_a_key() {
    use base64::Engine;
    let app = spawn_app().await;
    app.create_org("acme", None).await;
    let forger = AuditKey::load_or_create(&temp("forger.key")).unwrap();
    let forged = export_to_file(&app, &forger, ExportFilter::default()).await;
    // Base64url spells a first byte of 0xF8 to 0xFB as `-`.
    let dashed = (0u8..=255)
        .map(|seed| ed25519_dalek::SigningKey::from_bytes(&[seed; 32]).verifying_key())
        .find(|key| (0xF8..=0xFB).contains(&key.as_bytes()[0]))
        .unwrap();
    let pinned = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(dashed.as_bytes());
    assert!(pinned.starts_with('-'), "{pinned}");
    let (status, text) = verify_cli(&forged, &["--public-key", &pinned]);
    assert_eq!(status, 1, "{text}");
    assert!(text.contains("another key"), "{text}");
}

#[actix_web::test]
async fn personal_fields_show_opened_and_are_covered_by_chain_and_signature() {
    let key_file = temp("audit.key");
    let key_path = key_file.clone();
    let app = spawn_app_with(move |s| s.audit_key_file = key_path).await;
    app.create_user("ada@example.org").await;
    let key = AuditKey::load_or_create(&key_file).unwrap();
    let path = export_to_file(&app, &key, ExportFilter::default()).await;
    verify_export(&path, Some(&key.public_key())).unwrap();
    let line = line_of(&path, "ada@example.org");
    let text = std::fs::read_to_string(&path).unwrap();
    let registered: serde_json::Value =
        serde_json::from_str(text.lines().nth(line - 1).unwrap()).unwrap();
    let digest = registered["sealed"]["data.email"].as_str().unwrap();
    assert!(digest.starts_with("pii:v1:sha256:"), "{registered}");

    // The digest is what was chained: another one breaks the line's link.
    let other = format!("{}0", &digest[..digest.len() - 1]);
    let other = if other == digest {
        format!("{}1", &digest[..digest.len() - 1])
    } else {
        other
    };
    assert_eq!(
        failing_line(verify_export(&tamper(&path, line, digest, &other), None)),
        line
    );
    // A sealed entry naming a field that is not personal is refused.
    let renamed = tamper(&path, line, "\"data.email\"", "\"data.password_hash\"");
    assert_eq!(failing_line(verify_export(&renamed, None)), line);
    // The shown value is covered by the signed body hash.
    let shown = tamper(&path, line, "ada@example.org", "eve@example.org");
    let manifest = text.lines().count();
    assert_eq!(failing_line(verify_export(&shown, None)), manifest);
}
