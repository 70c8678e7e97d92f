//! The mailer: follows the log in commit-safe order and sends the mails
//! request events ask for, then moves its checkpoint past them. At least
//! once: a crash or an outage between a send and the checkpoint resends that
//! event's mails with the same Message-ID, so a receiver can drop the copy.
//!
//! One instance mails at a time, the holder of an advisory lock, as the
//! relay does; an outage of the mail server backs off and retries without
//! skipping anything.

use super::compose::{Composer, Request, MAIL_EVENTS};
use super::transport::{MailTransport, TransportError};
use crate::pii::keyring::{Keyring, KeyringError, StoredPayload};
use crate::store::checkpoints::{find_checkpoint, save_checkpoint, MAILER as CHECKPOINT};
use crate::store::events::{read_log, LogQuery, RecordedEvent};
use crate::store::leader::lead_forever;
use crate::store::tail::{Backoff, Tail};
use crate::store::{orgs, Pool};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Advisory-lock key of the mailer leader ("vouch-ml").
const MAILER_LOCK: i64 = 0x766f_7563_682d_6d6c;

/// Longest wait between two tries while the mail server is away.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What the mailer needs to run.
#[derive(Debug, Clone)]
pub struct MailerConfig {
    /// Postgres URL, for the leader's dedicated connection.
    pub database_url: String,
    /// Where mails go.
    pub transport: MailTransport,
    /// How mails are written.
    pub composer: Composer,
    /// Opens the addresses and tokens of request events.
    pub keyring: Keyring,
    /// Events read per round.
    pub batch: i64,
}

/// The mailer's state, for `/metrics` and tests.
#[derive(Debug, Default)]
pub struct MailerStatus {
    /// Whether this instance is the mailer leader.
    pub leader: AtomicBool,
    /// Mails this instance handed to the transport.
    pub sent: AtomicU64,
    /// Failed sends since the last success.
    pub failing: AtomicU64,
}

/// Why a mailer round stopped.
#[derive(Debug, thiserror::Error)]
enum MailerError {
    #[error("mail transport: {0}")]
    Transport(#[from] TransportError),
    #[error("database: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("personal data: {0}")]
    Personal(#[from] KeyringError),
    #[error("leadership lost")]
    LeadershipLost,
}

/// Runs the mailer forever: campaign for leadership, mail while leader.
pub async fn run(pool: Pool, config: MailerConfig, status: Arc<MailerStatus>) {
    let database_url = config.database_url.clone();
    lead_forever(&database_url, MAILER_LOCK, "mailer", |notifications| {
        let (pool, config, status) = (&pool, &config, &status);
        async move {
            status.leader.store(true, Ordering::SeqCst);
            lead(pool, config, status, notifications).await;
            status.leader.store(false, Ordering::SeqCst);
        }
    })
    .await;
}

/// Mails while leader, backing off while sends or the database fail.
async fn lead(
    pool: &Pool,
    config: &MailerConfig,
    status: &MailerStatus,
    mut notifications: mpsc::UnboundedReceiver<String>,
) {
    let mut backoff = Backoff::new(Duration::from_millis(200), MAX_BACKOFF);
    loop {
        match follow(pool, config, status, &mut notifications, &mut backoff).await {
            Err(MailerError::LeadershipLost) => return,
            Err(e) => {
                status.failing.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %crate::telemetry::error_chain(&e), retry_in_ms = backoff.next().as_millis() as u64, to = %config.transport.describe(), "mailer: retrying");
                if !backoff.wait(&mut notifications).await {
                    return;
                }
            }
            Ok(()) => backoff.reset(),
        }
    }
}

/// Follows the log from the checkpoint, sending each request's mails before
/// the checkpoint moves past it.
async fn follow(
    pool: &Pool,
    config: &MailerConfig,
    status: &MailerStatus,
    notifications: &mut mpsc::UnboundedReceiver<String>,
    backoff: &mut Backoff,
) -> Result<(), MailerError> {
    let mut after = find_checkpoint(&pool.get().await?, CHECKPOINT).await?;
    let mut tail = Tail::default();
    loop {
        let query = LogQuery {
            after,
            limit: config.batch,
            ..LogQuery::default()
        };
        let events = read_log(&pool.get().await?, &query).await?;
        let Some(last) = events.last().map(RecordedEvent::cursor) else {
            if !tail.wait(notifications).await {
                return Err(MailerError::LeadershipLost);
            }
            continue;
        };
        // The events passed over since the last save: saved before a send,
        // so that a mail server that is away shows as lag from that mail on.
        let mut passed = None;
        for mut event in events {
            if !MAIL_EVENTS.contains(&event.event_type.as_str()) {
                passed = Some(event.cursor());
                continue;
            }
            if let Some(cursor) = passed.take() {
                save_checkpoint(&pool.get().await?, CHECKPOINT, cursor).await?;
            }
            // A deposed leader stops before it sends what its successor will.
            if notifications.is_closed() {
                return Err(MailerError::LeadershipLost);
            }
            send_mails(pool, config, &mut event).await?;
            status.failing.store(0, Ordering::Relaxed);
            status.sent.fetch_add(1, Ordering::Relaxed);
            backoff.reset();
            save_checkpoint(&pool.get().await?, CHECKPOINT, event.cursor()).await?;
        }
        save_checkpoint(&pool.get().await?, CHECKPOINT, last).await?;
        after = last;
    }
}

/// Opens one request event and sends its mails.
async fn send_mails(
    pool: &Pool,
    config: &MailerConfig,
    event: &mut RecordedEvent,
) -> Result<(), MailerError> {
    let client = pool.get().await?;
    let payload = StoredPayload {
        event_type: &event.event_type,
        stream_id: event.stream_id,
        data: &mut event.data,
        metadata: None,
    };
    config.keyring.open_payloads(&client, vec![payload]).await?;
    let org_name = match event.stream_type.as_str() {
        "org" => orgs::find_org(&client, event.stream_id)
            .await?
            .map(|o| o.name),
        _ => None,
    };
    drop(client);
    let request = Request {
        event_id: event.event_id,
        event_type: &event.event_type,
        data: &event.data,
        org_name: org_name.as_deref(),
    };
    let now = crate::clock::Clock::now(&crate::clock::SystemClock);
    // Logged by event id and number: a Message-ID (`<event id>.<n>@host`)
    // reads as an address to a log scanner, and addresses are never logged.
    for (n, mail) in config.composer.mails(&request, now).iter().enumerate() {
        match config.composer.message(mail) {
            Ok(message) => match config.transport.send(message).await {
                Ok(()) => {
                    tracing::info!(event_id = %event.event_id, mail = n, to = %config.transport.describe(), "mailer: mail handed over");
                }
                // Refused for good (no such mailbox): sending it again would
                // fail again, and hold back every mail after it.
                Err(e) if e.is_permanent() => {
                    tracing::warn!(event_id = %event.event_id, mail = n, error = %e, "mailer: mail refused for good, skipped");
                }
                Err(e) => return Err(e.into()),
            },
            // An address no message can be built for will never be: skipped,
            // or it would hold back every mail after it.
            Err(e) => {
                tracing::warn!(event_id = %event.event_id, error = %e, "mailer: mail skipped")
            }
        }
    }
    Ok(())
}
