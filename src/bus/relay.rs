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
use crate::store::events::{read_log, LogPosition, LogQuery, RecordedEvent};
use crate::store::leader::lead_forever;
use crate::store::tail::{Backoff, Tail};
use crate::store::Pool;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, PublisherConfirm,
};
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
    /// Opens personal fields before they are published: subscribers get them
    /// as written, or `"[erased]"` for an erased person.
    pub keyring: crate::pii::keyring::Keyring,
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
    #[error("personal data: {0}")]
    Personal(#[from] crate::pii::keyring::KeyringError),
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
    let database_url = config.database_url.clone();
    lead_forever(&database_url, RELAY_LOCK, "relay", |notifications| {
        let (pool, config, status) = (&pool, &config, &status);
        async move {
            status.leader.store(true, Ordering::SeqCst);
            lead(pool, config, status, notifications).await;
            status.leader.store(false, Ordering::SeqCst);
            status.connected.store(false, Ordering::SeqCst);
        }
    })
    .await;
}

/// Relays while leader, reconnecting to the broker with backoff.
async fn lead(
    pool: &Pool,
    config: &RelayConfig,
    status: &RelayStatus,
    mut notifications: mpsc::UnboundedReceiver<String>,
) {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        match relay_while_connected(pool, config, status, &mut notifications, &mut backoff).await {
            Err(RelayError::LeadershipLost) => return,
            Err(e) => {
                status.connected.store(false, Ordering::SeqCst);
                tracing::warn!(error = %crate::telemetry::error_chain(&e), retry_in_ms = backoff.next().as_millis() as u64, "relay: retrying");
                if !backoff.wait(&mut notifications).await {
                    return;
                }
            }
            Ok(()) => backoff.reset(),
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

/// Waits for a batch's confirms, then moves the checkpoint past it.
async fn checkpoint(pool: &Pool, status: &RelayStatus, batch: InFlight) -> Result<(), RelayError> {
    let count = batch.confirms.len() as u64;
    let last = confirmed(batch).await?;
    save_checkpoint(&pool.get().await?, CHECKPOINT, last).await?;
    status.published.fetch_add(count, Ordering::Relaxed);
    Ok(())
}

async fn relay_while_connected(
    pool: &Pool,
    config: &RelayConfig,
    status: &RelayStatus,
    notifications: &mut mpsc::UnboundedReceiver<String>,
    backoff: &mut Backoff,
) -> Result<(), RelayError> {
    let (connection, channel) = open_channel(config).await?;
    status.connected.store(true, Ordering::SeqCst);
    let outcome = async {
        let mut after = find_checkpoint(&pool.get().await?, CHECKPOINT).await?;
        let mut tail = Tail::default();
        let mut in_flight = None;
        loop {
            let query = LogQuery {
                after,
                limit: config.batch,
                ..LogQuery::default()
            };
            let client = pool.get().await?;
            let mut events = read_log(&client, &query).await?;
            let payloads = events
                .iter_mut()
                .map(|e| crate::pii::keyring::StoredPayload {
                    event_type: &e.event_type,
                    stream_id: e.stream_id,
                    data: &mut e.data,
                    metadata: Some(&mut e.metadata),
                })
                .collect();
            config.keyring.open_payloads(&client, payloads).await?;
            drop(client);
            let Some(last) = events.last().map(RecordedEvent::cursor) else {
                if let Some(batch) = in_flight.take() {
                    checkpoint(pool, status, batch).await?;
                    // A batch the broker confirmed: the next failure starts over.
                    backoff.reset();
                    continue;
                }
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
            // This batch goes out while the broker confirms the one before:
            // two in flight, the checkpoint advanced past each in order once
            // every message of it was confirmed.
            let batch = publish_batch(&channel, &config.exchange, &events, last).await?;
            if let Some(before) = in_flight.replace(batch) {
                checkpoint(pool, status, before).await?;
                backoff.reset();
            }
            after = last;
        }
    }
    .await;
    let _ = connection
        .close(200, ShortString::from("relay stopping"))
        .await;
    outcome
}

/// One event as the relay publishes it: routing key, body and properties.
#[derive(Debug, Clone)]
pub struct Message {
    /// The routing key: the event type.
    pub routing_key: ShortString,
    /// The CloudEvent, serialised.
    pub body: Vec<u8>,
    /// Persistent, with the event's id, type and position.
    pub properties: BasicProperties,
}

/// The message of one event.
pub fn message(e: &RecordedEvent) -> Message {
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
    Message {
        routing_key: ShortString::from(e.event_type.as_str()),
        body: to_cloudevent(e).to_string().into_bytes(),
        properties,
    }
}

/// A published batch whose confirms are still to come.
struct InFlight {
    confirms: Vec<(uuid::Uuid, PublisherConfirm)>,
    last: LogPosition,
}

/// Publishes a batch (mandatory: an unroutable message is a failure) and
/// returns its confirms, to await with [`confirmed`].
async fn publish_batch(
    channel: &Channel,
    exchange: &str,
    events: &[RecordedEvent],
    last: LogPosition,
) -> Result<InFlight, RelayError> {
    let mut confirms = Vec::with_capacity(events.len());
    for e in events {
        let Message {
            routing_key,
            body,
            properties,
        } = message(e);
        let confirm = channel
            .basic_publish(
                ShortString::from(exchange),
                routing_key,
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &body,
                properties,
            )
            .await?;
        confirms.push((e.event_id, confirm));
    }
    Ok(InFlight { confirms, last })
}

/// Waits for every confirm of a batch; any failure fails the batch.
async fn confirmed(batch: InFlight) -> Result<LogPosition, RelayError> {
    let total = batch.confirms.len();
    // Every confirm is awaited, so that one retry reports the batch once.
    let mut unroutable = Vec::new();
    for (event_id, confirm) in batch.confirms {
        match confirm.await? {
            Confirmation::Ack(None) => {}
            Confirmation::Ack(Some(_)) => unroutable.push(event_id),
            Confirmation::Nack(_) | Confirmation::NotRequested => {
                return Err(RelayError::Nacked(event_id.to_string()))
            }
        }
    }
    match unroutable.first() {
        None => Ok(batch.last),
        Some(first) => Err(RelayError::Unroutable {
            count: unroutable.len(),
            batch: total,
            first: first.to_string(),
        }),
    }
}
