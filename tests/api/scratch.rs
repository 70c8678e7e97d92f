//! What a test creates outside its own process (databases, broker exchanges
//! and queues, files such as private audit keys) is removed when the test
//! ends, whether it passed or failed: each is held by a guard whose `Drop`
//! removes it.
//!
//! A guard's `Drop` runs on the test's thread while its runtime is blocked, so
//! the removal runs to completion on a thread and runtime of its own.

use std::future::Future;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use uuid::Uuid;

const ADMIN_DATABASE: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Runs `work` to completion on a fresh thread with a runtime of its own.
fn finish<F: Future<Output = ()> + Send + 'static>(work: F) {
    let _ = std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(work);
        }
    })
    .join();
}

/// The prefix of this run's databases: `VOUCH_TEST_DB_PREFIX` (CI makes it
/// unique per run, to remove only its own leftovers), else `vouch_test_`.
fn database_prefix() -> String {
    std::env::var("VOUCH_TEST_DB_PREFIX")
        .ok()
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .unwrap_or_else(|| "vouch_test_".into())
}

/// A database of one test: created by the first service started on it,
/// dropped (with its connections) when the last holder of the guard goes.
/// Also removes the key files the test settings derive from its URL.
#[derive(Debug)]
pub struct TempDatabase {
    pub url: String,
    name: String,
}

impl TempDatabase {
    pub fn new() -> Self {
        let name = format!("{}{}", database_prefix(), Uuid::new_v4().simple());
        Self {
            url: format!("{}/{name}", crate::helpers::PG),
            name,
        }
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        let settings = vouch::config::Settings::for_database(&self.url);
        let _ = std::fs::remove_file(settings.audit_key_file);
        let _ = std::fs::remove_file(settings.pii_key_file);
        finish(async move {
            let Ok((client, conn)) =
                tokio_postgres::connect(ADMIN_DATABASE, tokio_postgres::NoTls).await
            else {
                return;
            };
            tokio::spawn(conn);
            let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
            let _ = client.batch_execute(&sql).await;
        });
    }
}

/// A file or directory of one test, removed when the guard goes.
#[derive(Debug)]
pub struct TempPath(PathBuf);

impl TempPath {
    /// A fresh path in the temporary directory, ending in `name`.
    pub fn new(name: &str) -> Self {
        Self(std::env::temp_dir().join(format!("vouch-{}-{name}", Uuid::new_v4().simple())))
    }
}

impl Deref for TempPath {
    type Target = PathBuf;

    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl AsRef<Path> for TempPath {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if self.0.is_dir() {
            let _ = std::fs::remove_dir_all(&self.0);
        } else {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// Broker objects of one test, deleted when the guard goes.
#[derive(Debug, Default)]
pub struct BrokerObjects {
    pub exchanges: Vec<String>,
    pub queues: Vec<String>,
}

impl Drop for BrokerObjects {
    fn drop(&mut self) {
        let (exchanges, queues) = (self.exchanges.clone(), self.queues.clone());
        finish(async move {
            use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
            let Ok(connection) =
                lapin::Connection::connect(AMQP, lapin::ConnectionProperties::default()).await
            else {
                return;
            };
            let Ok(channel) = connection.create_channel().await else {
                return;
            };
            for queue in queues {
                let _ = channel
                    .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                    .await;
            }
            for exchange in exchanges {
                let _ = channel
                    .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
                    .await;
            }
            let _ = connection.close(200, "test done".into()).await;
        });
    }
}
