//! `vouch audit-consume`: the reference audit subscriber.
//!
//! A durable quorum queue bound to `#`; each message becomes one JSON line,
//! written and fsynced before it is acknowledged. Duplicates (delivery is
//! at-least-once) are dropped by CloudEvent id, also across restarts: the ids
//! already in the output file are loaded at start. On `user.erased` it
//! forgets the person (`bus::forget`) before it acknowledges the message, and
//! again when the message comes back as a duplicate, so a crash in between
//! cannot leave the person remembered.

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Connection, ConnectionProperties};
use std::collections::HashSet;
use std::future::Future;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Duration;

/// How often a poison message is redelivered before the broker drops it.
const DELIVERY_LIMIT: i64 = 20;
/// Most messages written per fsync.
const BATCH: usize = 512;

/// What the subscriber reads and where it writes.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// RabbitMQ URL.
    pub amqp_url: String,
    /// The topic exchange the relay publishes to.
    pub exchange: String,
    /// The durable queue to declare and consume.
    pub queue: String,
    /// The JSON Lines file to append to.
    pub out: PathBuf,
}

/// What a run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Messages received.
    pub received: u64,
    /// Lines written.
    pub written: u64,
    /// Duplicates dropped.
    pub duplicates: u64,
    /// Messages that were not CloudEvents, rejected without requeue.
    pub rejected: u64,
}

/// Why the subscriber stopped.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    /// The broker failed.
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    /// The output file failed.
    #[error("output file: {0}")]
    Io(#[from] std::io::Error),
}

/// Ids already written to `out`.
fn load_seen(out: &PathBuf) -> Result<HashSet<String>, std::io::Error> {
    let mut seen = HashSet::new();
    let file = match std::fs::File::open(out) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(seen),
        Err(e) => return Err(e),
    };
    for line in std::io::BufReader::new(file).lines() {
        if let Some(id) = serde_json::from_str::<serde_json::Value>(&line?)
            .ok()
            .and_then(|v| v["id"].as_str().map(str::to_owned))
        {
            seen.insert(id);
        }
    }
    Ok(seen)
}

/// Consumes until `shutdown` resolves (or the broker cancels), then returns the summary.
pub async fn run(
    config: &ConsumerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<Summary, ConsumeError> {
    let mut seen = load_seen(&config.out)?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&config.out)?;
    let connection = Connection::connect(&config.amqp_url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .basic_qos(BATCH as u16, BasicQosOptions::default())
        .await?;
    super::declare_exchange(&channel, &config.exchange).await?;
    let mut args = FieldTable::default();
    args.insert(
        ShortString::from("x-queue-type"),
        AMQPValue::LongString("quorum".into()),
    );
    args.insert(
        ShortString::from("x-delivery-limit"),
        AMQPValue::LongLongInt(DELIVERY_LIMIT),
    );
    channel
        .queue_declare(
            ShortString::from(config.queue.as_str()),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            args,
        )
        .await?;
    channel
        .queue_bind(
            ShortString::from(config.queue.as_str()),
            ShortString::from(config.exchange.as_str()),
            ShortString::from("#"),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut consumer = channel
        .basic_consume(
            ShortString::from(config.queue.as_str()),
            ShortString::from("vouch-audit-consume"),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!(queue = %config.queue, exchange = %config.exchange, "audit-consume: consuming");
    let mut summary = Summary::default();
    tokio::pin!(shutdown);
    loop {
        let first = tokio::select! {
            _ = &mut shutdown => break,
            d = consumer.next() => d,
        };
        let Some(first) = first else { break };
        let mut batch = vec![first?];
        while batch.len() < BATCH {
            match tokio::time::timeout(Duration::from_millis(2), consumer.next()).await {
                Ok(Some(d)) => batch.push(d?),
                _ => break,
            }
        }
        write_batch(&config.out, &mut file, &mut seen, &batch, &mut summary).await?;
    }
    let _ = connection
        .close(200, ShortString::from("audit-consume stopping"))
        .await;
    Ok(summary)
}

/// Writes new events, fsyncs, forgets the people the batch erased, then
/// acknowledges the whole batch.
async fn write_batch(
    out: &std::path::Path,
    file: &mut std::fs::File,
    seen: &mut HashSet<String>,
    batch: &[Delivery],
    summary: &mut Summary,
) -> Result<(), ConsumeError> {
    let mut lines = Vec::new();
    let mut rejected = Vec::new();
    let mut erased = HashSet::new();
    for d in batch {
        summary.received += 1;
        let event = serde_json::from_slice::<serde_json::Value>(&d.data).ok();
        erased.extend(event.as_ref().and_then(super::forget::erased_person));
        let id = event.and_then(|v| v["id"].as_str().map(str::to_owned));
        match id {
            None => rejected.push(d),
            Some(id) => {
                if seen.insert(id) {
                    lines.extend_from_slice(&d.data);
                    lines.push(b'\n');
                    summary.written += 1;
                } else {
                    summary.duplicates += 1;
                }
            }
        }
    }
    if !lines.is_empty() {
        file.write_all(&lines)?;
        file.sync_data()?;
    }
    if !erased.is_empty() {
        let forgotten = super::forget::forget(out, &erased)?;
        tracing::info!(
            people = erased.len(),
            lines = forgotten,
            "audit-consume: erased people forgotten"
        );
        // The file was replaced: append to the new one.
        *file = std::fs::OpenOptions::new().append(true).open(out)?;
    }
    for d in &rejected {
        summary.rejected += 1;
        tracing::warn!(
            delivery_tag = d.delivery_tag,
            "audit-consume: not a CloudEvent; rejected"
        );
        d.nack(BasicNackOptions {
            requeue: false,
            ..Default::default()
        })
        .await?;
    }
    for d in batch
        .iter()
        .filter(|d| !rejected.iter().any(|r| r.delivery_tag == d.delivery_tag))
    {
        d.ack(BasicAckOptions::default()).await?;
    }
    Ok(())
}
