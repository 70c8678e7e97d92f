//! The relay: publishes the log to RabbitMQ in commit-safe order, with
//! publisher confirms, and advances its checkpoint only after the broker
//! confirmed. The log is the outbox: while the broker is away nothing is lost,
//! the relay retries with backoff and catches up when it returns.
//!
//! One instance relays at a time: the holder of a Postgres advisory lock on a
//! dedicated connection. If that connection (or the process) dies, the lock is
//! released and another instance takes over within about a second.

use super::cloudevent::{to_cloudevent, CONTENT_TYPE};
use crate::store::checkpoints::{find_checkpoint, save_checkpoint, RELAY as CHECKPOINT};
use crate::store::events::{read_log, LogQuery, RecordedEvent};
use crate::store::leader::campaign;
use crate::store::tail::Tail;
use crate::store::Pool;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Advisory-lock key of the relay leader ("vouch-rl").
const RELAY_LOCK: i64 = 0x766f_7563_682d_726c;

/// What the relay needs to run.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Postgres URL, for the leader's dedicated connection.
    pub database_url: String,
    /// RabbitMQ URL.
    pub amqp_url: String,
    /// The topic exchange.
    pub exchange: String,
    /// Events per publish batch.
    pub batch: i64,
}

/// The relay's state, for `/readyz` and `/metrics`.
#[derive(Debug, Default)]
pub struct RelayStatus {
    /// Whether this instance is the relay leader.
    pub leader: AtomicBool,
    /// Whether the leader's broker connection is up.
    pub connected: AtomicBool,
    /// Events published and confirmed by this instance.
    pub published: AtomicU64,
}

/// Why a relay round stopped.
#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error("database: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("the broker returned {count} of {batch} events as unroutable (the first: {first}): bind a queue to the exchange with '#'")]
    Unroutable {
        count: usize,
        batch: usize,
        first: String,
    },
    #[error("the broker refused event {0}")]
    Nacked(String),
    #[error("leadership lost")]
    LeadershipLost,
    #[error("broker connection lost")]
    Disconnected,
}

/// Runs the relay forever: campaign for leadership, relay while leader.
pub async fn run(pool: Pool, config: RelayConfig, status: Arc<RelayStatus>) {
    loop {
        match campaign(
            &config.database_url,
            RELAY_LOCK,
            crate::store::channels::EVENTS,
        )
        .await
        {
            Ok(Some(leadership)) => {
                status.leader.store(true, Ordering::SeqCst);
                tracing::info!("relay: leader");
                lead(&pool, &config, &status, leadership.notifications).await;
                status.leader.store(false, Ordering::SeqCst);
                status.connected.store(false, Ordering::SeqCst);
                drop(leadership.client);
                tracing::warn!("relay: no longer leader");
            }
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "relay: campaign failed"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Relays while leader, reconnecting to the broker with backoff.
async fn lead(
    pool: &Pool,
    config: &RelayConfig,
    status: &RelayStatus,
    mut notifications: mpsc::UnboundedReceiver<String>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match relay_while_connected(pool, config, status, &mut notifications).await {
            Err(RelayError::LeadershipLost) => return,
            Err(e) => {
                status.connected.store(false, Ordering::SeqCst);
                tracing::warn!(error = %crate::telemetry::error_chain(&e), retry_in_ms = backoff.as_millis() as u64, "relay: retrying");
                // Keep draining notifications while waiting; stop if the lock is gone.
                let wait = tokio::time::sleep(backoff);
                tokio::pin!(wait);
                loop {
                    tokio::select! {
                        _ = &mut wait => break,
                        n = notifications.recv() => if n.is_none() { return },
                    }
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Ok(()) => backoff = Duration::from_millis(100),
        }
    }
}

async fn open_channel(config: &RelayConfig) -> Result<(Connection, Channel), lapin::Error> {
    let connection = Connection::connect(&config.amqp_url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    super::declare_exchange(&channel, &config.exchange).await?;
    Ok((connection, channel))
}

async fn relay_while_connected(
    pool: &Pool,
    config: &RelayConfig,
    status: &RelayStatus,
    notifications: &mut mpsc::UnboundedReceiver<String>,
) -> Result<(), RelayError> {
    let (connection, channel) = open_channel(config).await?;
    status.connected.store(true, Ordering::SeqCst);
    let outcome = async {
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
                // Idle, but a dead broker connection must still show in /readyz.
                if !connection.status().connected() || !channel.status().connected() {
                    return Err(RelayError::Disconnected);
                }
                // Wake on the notifier's announcement, or look again (see `store::tail`).
                if !tail.wait(notifications).await {
                    return Err(RelayError::LeadershipLost);
                }
                continue;
            };
            publish_batch(&channel, &config.exchange, &events).await?;
            save_checkpoint(&pool.get().await?, CHECKPOINT, last).await?;
            status
                .published
                .fetch_add(events.len() as u64, Ordering::Relaxed);
            after = last;
        }
    }
    .await;
    let _ = connection
        .close(200, ShortString::from("relay stopping"))
        .await;
    outcome
}

/// Publishes a batch and waits for every confirm; any failure fails the batch.
async fn publish_batch(
    channel: &Channel,
    exchange: &str,
    events: &[RecordedEvent],
) -> Result<(), RelayError> {
    let mut confirms = Vec::with_capacity(events.len());
    for e in events {
        let body = to_cloudevent(e).to_string();
        let mut headers = FieldTable::default();
        headers.insert(
            ShortString::from("position"),
            AMQPValue::LongLongInt(e.position),
        );
        let properties = BasicProperties::default()
            .with_content_type(ShortString::from(CONTENT_TYPE))
            .with_message_id(ShortString::from(e.event_id.to_string()))
            .with_type(ShortString::from(e.event_type.as_str()))
            .with_app_id(ShortString::from("vouch"))
            .with_timestamp(e.occurred_at.timestamp().max(0) as u64)
            .with_delivery_mode(2)
            .with_headers(headers);
        let confirm = channel
            .basic_publish(
                ShortString::from(exchange),
                ShortString::from(e.event_type.as_str()),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                body.as_bytes(),
                properties,
            )
            .await?;
        confirms.push((e.event_id, confirm));
    }
    // Every confirm is awaited, so that one retry reports the batch once.
    let mut unroutable = Vec::new();
    for (event_id, confirm) in confirms {
        match confirm.await? {
            Confirmation::Ack(None) => {}
            Confirmation::Ack(Some(_)) => unroutable.push(event_id),
            Confirmation::Nack(_) | Confirmation::NotRequested => {
                return Err(RelayError::Nacked(event_id.to_string()))
            }
        }
    }
    match unroutable.first() {
        None => Ok(()),
        Some(first) => Err(RelayError::Unroutable {
            count: unroutable.len(),
            batch: events.len(),
            first: first.to_string(),
        }),
    }
}
