//! Following the log: every instance learns of revocations from the log itself,
//! exactly, even when transactions commit out of order or the process that
//! committed one died before it could tell anyone.

use crate::helpers::*;
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;
use vouch::store::follow::{snapshot, Follower};

const TYPES: [&str; 1] = ["api_key.revoked"];

async fn append_revocation(db: &impl tokio_postgres::GenericClient, stream: Uuid) {
    db.execute(
        "INSERT INTO auth_events (event_id, stream_type, stream_id, version, event_type, \
         schema_version, data, metadata) \
         VALUES (gen_random_uuid(), 'api_key', $1, 1, 'api_key.revoked', 1, '{}', '{}')",
        &[&stream],
    )
    .await
    .unwrap();
}

fn streams(committed: &[vouch::store::follow::Committed]) -> Vec<Uuid> {
    committed.iter().map(|c| c.stream_id).collect()
}

#[actix_web::test]
async fn a_follower_reads_each_commit_once_in_whatever_order_they_land() {
    let app = spawn_app().await;
    let (reader, mut early, mut late) = (app.db().await, app.db().await, app.db().await);
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    let follower = Follower::prepare(&reader).await.unwrap();
    let committed_since = |since| follower.committed_since(&reader, since, &TYPES);
    let s0 = snapshot(&reader).await.unwrap();

    // `early` takes its transaction id first and commits last.
    let early = early.transaction().await.unwrap();
    append_revocation(&early, first).await;
    let late = late.transaction().await.unwrap();
    append_revocation(&late, second).await;
    late.commit().await.unwrap();

    let (s1, seen) = committed_since(&s0).await.unwrap();
    assert_eq!(
        streams(&seen),
        [second],
        "the later commit is not held back"
    );
    early.commit().await.unwrap();
    let (s2, seen) = committed_since(&s1).await.unwrap();
    assert_eq!(
        streams(&seen),
        [first],
        "the earlier transaction, once it commits"
    );
    let (_, seen) = committed_since(&s2).await.unwrap();
    assert!(seen.is_empty(), "nothing twice: {seen:?}");
    let (_, seen) = follower
        .committed_since(&reader, &s0, &["session.revoked"])
        .await
        .unwrap();
    assert!(seen.is_empty(), "only the types asked for: {seen:?}");
}

/// A child process that is killed, and reaped, when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A proxy to Postgres that, once armed, forwards the next `COMMIT` and then
/// SIGKILLs the process behind it: a crash right after a commit.
struct KillOnCommit {
    port: u16,
    armed: Arc<Mutex<Option<Process>>>,
    killed_at: Arc<Mutex<Option<Instant>>>,
}

/// A simple-protocol Query message of `COMMIT` (tokio-postgres commits so).
const COMMIT: &[u8] = b"Q\0\0\0\x0bCOMMIT\0";

impl KillOnCommit {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let armed: Arc<Mutex<Option<Process>>> = Arc::default();
        let killed_at: Arc<Mutex<Option<Instant>>> = Arc::default();
        let (trip, stamp) = (armed.clone(), killed_at.clone());
        actix_web::rt::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let (trip, stamp) = (trip.clone(), stamp.clone());
                actix_web::rt::spawn(async move {
                    let Ok(outbound) = TcpStream::connect("127.0.0.1:5432").await else {
                        return;
                    };
                    let (mut from_client, mut to_client) = inbound.into_split();
                    let (mut from_server, mut to_server) = outbound.into_split();
                    let down = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = from_client.read(&mut buf).await.unwrap_or(0);
                            if n == 0 || to_server.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                            let chunk = &buf[..n];
                            if !chunk.windows(COMMIT.len()).any(|w| w == COMMIT) {
                                continue;
                            }
                            let armed = trip.lock().unwrap().take();
                            if let Some(child) = armed {
                                to_server.flush().await.ok();
                                drop(child);
                                *stamp.lock().unwrap() = Some(Instant::now());
                                // The server has the COMMIT; let it finish.
                                tokio::time::sleep(Duration::from_millis(500)).await;
                                return;
                            }
                        }
                    };
                    let up = tokio::io::copy(&mut from_server, &mut to_client);
                    tokio::select! {
                        () = down => {}
                        _ = up => {}
                    }
                });
            }
        });
        Self {
            port,
            armed,
            killed_at,
        }
    }
}

fn free_port() -> u16 {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    free.local_addr().unwrap().port()
}

/// Starts `vouch serve` as a process of its own, its database behind `proxy`.
async fn serve_process(
    of: &TestApp,
    proxy: &KillOnCommit,
    dir: &std::path::Path,
) -> (Process, String) {
    let port = free_port();
    let url = of
        .database_url
        .replace("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port));
    let child = Process(
        Command::new(env!("CARGO_BIN_EXE_vouch"))
            .arg("serve")
            .env("VOUCH_DATABASE_URL", url)
            .env("VOUCH_BIND", format!("127.0.0.1:{port}"))
            .env("VOUCH_RELAY", "false")
            .env("VOUCH_CHAINER", "false")
            .env("VOUCH_AUDIT_KEY_FILE", dir.join("audit.key"))
            // The deployment's personal-data key: a process with another is refused.
            .env(
                "VOUCH_PII_KEY_FILE",
                vouch::config::Settings::for_database(&of.database_url).pii_key_file,
            )
            .env("VOUCH_LOG", "off")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let address = format!("http://127.0.0.1:{port}");
    let client = awc::Client::default();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let up = client.get(format!("{address}/healthz")).send().await;
        if up.is_ok_and(|r| r.status().is_success()) {
            return (child, address);
        }
        assert!(Instant::now() < deadline, "the instance never came up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether a verify of `key` on `app` is answered from its cache within a few
/// seconds: the cache serves once its follower has read the log, and a busy
/// machine may delay that read.
async fn served_from_memory(app: &TestApp, key: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let hits = app.app.cache().counts().0;
        assert!(app.is_valid(key).await);
        if app.app.cache().counts().0 > hits {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[actix_web::test]
async fn a_revocation_reaches_the_other_instance_when_its_instance_dies_right_after_the_commit() {
    let b = spawn_app().await;
    let dir = crate::scratch::TempPath::new("kill-after-commit");
    std::fs::create_dir_all(&*dir).unwrap();
    let proxy = KillOnCommit::start().await;
    let org = id(&b.create_org("acme", None).await);
    let mut took = Vec::new();
    for round in 0..5 {
        let (key_id, key) = b.create_key(&org, &["deploy"]).await;
        assert!(b.is_valid(&key).await);
        assert!(
            served_from_memory(&b, &key).await,
            "B serves the key from memory"
        );

        let (child, a) = serve_process(&b, &proxy, &dir).await;
        *proxy.killed_at.lock().unwrap() = None;
        *proxy.armed.lock().unwrap() = Some(child);
        let revoke = awc::Client::default()
            .post(format!("{a}/v1/orgs/{org}/keys/{key_id}/revoke"))
            .insert_header(("Authorization", format!("Bearer {}", b.admin_key)))
            .send_json(&json!({}))
            .await;
        assert!(
            revoke.is_err(),
            "round {round}: A died before it could answer"
        );
        let killed = proxy
            .killed_at
            .lock()
            .unwrap()
            .expect("A was killed at its commit");
        let deadline = killed + Duration::from_secs(5);
        while b.is_valid(&key).await {
            assert!(
                Instant::now() < deadline,
                "round {round}: B still accepts a key revoked 5 s ago"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        took.push(killed.elapsed());
        let revoked = b
            .db()
            .await
            .query_one(
                "SELECT count(*) FROM auth_events WHERE stream_id = $1 AND event_type = 'api_key.revoked'",
                &[&Uuid::parse_str(&key_id).unwrap()],
            )
            .await
            .unwrap()
            .get::<_, i64>(0);
        assert_eq!(revoked, 1, "round {round}: the revocation committed once");
    }
    // The bound is one poll of the follower (25 ms) plus a read; far below
    // the cache's 60 s TTL, the only other way an entry leaves.
    took.sort();
    println!("kill after commit -> B refuses: {took:?}");
    assert!(took.iter().all(|t| *t < Duration::from_secs(1)), "{took:?}");
}
