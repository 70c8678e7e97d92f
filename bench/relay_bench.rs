//! Relay throughput (events/s with publisher confirms) and end-to-end latency
//! (commit to subscriber), against a running `vouch serve` with its relay on.
//!
//! `cargo run --release --example relay_bench -- DATABASE_URL AMQP_URL EXCHANGE [EVENTS]`

use futures_util::StreamExt;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{Connection, ConnectionProperties};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tokio_postgres::NoTls;

type Error = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let [_, database_url, amqp_url, exchange, rest @ ..] = args.as_slice() else {
        return Err("usage: relay_bench DATABASE_URL AMQP_URL EXCHANGE [EVENTS]".into());
    };
    let total: i64 = rest.first().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let (db, conn) = tokio_postgres::connect(database_url, NoTls).await?;
    tokio::spawn(conn);
    let amqp = Connection::connect(amqp_url, ConnectionProperties::default()).await?;
    let channel = amqp.create_channel().await?;
    channel
        .exchange_declare(
            ShortString::from(exchange.as_str()),
            lapin::ExchangeKind::Topic,
            lapin::options::ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    let queue = channel
        .queue_declare(
            ShortString::from(""),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_bind(
            queue.name().clone(),
            ShortString::from(exchange.as_str()),
            ShortString::from("#"),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    // No acknowledgements: the subscriber's own cost must not bound the figures.
    let mut deliveries = channel
        .basic_consume(
            queue.name().clone(),
            ShortString::from("bench"),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    // Wait for the bootstrap events (org, admin key, signing key): the relay is then idle.
    for _ in 0..3 {
        tokio::time::timeout(Duration::from_secs(30), deliveries.next())
            .await?
            .ok_or("consumer cancelled")??;
    }

    // Ceiling: the broker and this subscriber alone, no database and no vouch:
    // the relay's own messages (`relay::message` of events like the ones
    // appended below: same body size, same properties), persistent and
    // mandatory, in batches of 500 with two batches' confirms outstanding, as
    // the relay publishes, received by this subscriber as they arrive.
    let publisher = amqp.create_channel().await?;
    publisher
        .confirm_select(lapin::options::ConfirmSelectOptions::default())
        .await?;
    let started = Instant::now();
    let publish = async {
        let mut outstanding: Option<Vec<lapin::PublisherConfirm>> = None;
        let mut sent = 0;
        while sent < total {
            let mut confirms = Vec::new();
            for i in sent..(sent + 500).min(total) {
                let m = vouch::bus::relay::message(&like_the_load(i));
                let options = lapin::options::BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                };
                let exchange = ShortString::from(exchange.as_str());
                let confirm = publisher
                    .basic_publish(exchange, m.routing_key, options, &m.body, m.properties)
                    .await?;
                confirms.push(confirm);
            }
            sent += confirms.len() as i64;
            for confirm in outstanding.replace(confirms).unwrap_or_default() {
                confirm.await?;
            }
        }
        for confirm in outstanding.unwrap_or_default() {
            confirm.await?;
        }
        Ok::<_, Error>(())
    };
    let receive = async {
        for _ in 0..total {
            tokio::time::timeout(Duration::from_secs(60), deliveries.next())
                .await?
                .ok_or("consumer cancelled")??;
        }
        Ok::<_, Error>(())
    };
    futures_util::future::try_join(publish, receive).await?;
    let elapsed = started.elapsed();
    println!(
        "broker ceiling: {total} messages published with confirms and received after {:.2} s: {:.0} messages/s",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );

    // Throughput: append in bulk, then count until every event arrived.
    // Each append commits on its own and is announced after, as vouch does.
    let started = Instant::now();
    let mut appended = 0;
    while appended < total {
        let n = (total - appended).min(5000);
        db.execute(
            "INSERT INTO auth_events (event_id, stream_type, stream_id, version, event_type, data, metadata) \
             SELECT gen_random_uuid(), 'bench', gen_random_uuid(), 1, 'bench.load', '{\"n\": 1}', '{}' \
             FROM generate_series(1, $1::int)",
            &[&(n as i32)],
        )
        .await?;
        // As vouch's notifier does after a commit.
        db.batch_execute("NOTIFY vouch_events").await?;
        appended += n;
    }
    let appended_in = started.elapsed();
    let mut seen = HashSet::new();
    while (seen.len() as i64) < total {
        let d = tokio::time::timeout(Duration::from_secs(60), deliveries.next())
            .await?
            .ok_or("consumer cancelled")??;
        if let Some(id) = d.properties.message_id() {
            seen.insert(id.to_string());
        }
    }
    let elapsed = started.elapsed();
    println!(
        "relay throughput: {total} events appended in {:.2} s, all confirmed and received after {:.2} s: {:.0} events/s",
        appended_in.as_secs_f64(),
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );

    // Latency: one committed event at a time, commit to delivery.
    let mut latencies = Vec::new();
    for _ in 0..300 {
        let id = uuid::Uuid::new_v4();
        db.batch_execute(&format!(
            "BEGIN; INSERT INTO auth_events (event_id, stream_type, stream_id, version, event_type, data, metadata) \
             VALUES ('{id}', 'bench', gen_random_uuid(), 1, 'bench.ping', '{{}}', '{{}}'); \
             COMMIT; NOTIFY vouch_events;"
        ))
        .await?;
        let committed = Instant::now();
        loop {
            let d = tokio::time::timeout(Duration::from_secs(10), deliveries.next())
                .await?
                .ok_or("consumer cancelled")??;
            let hit = d
                .properties
                .message_id()
                .as_ref()
                .is_some_and(|m| m.as_str() == id.to_string());
            if hit {
                break;
            }
        }
        latencies.push(committed.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "commit to subscriber: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} events",
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        pct(1.0).as_secs_f64() * 1e3,
        latencies.len()
    );
    Ok(())
}

/// An event like the ones the throughput run appends.
fn like_the_load(i: i64) -> vouch::store::events::RecordedEvent {
    vouch::store::events::RecordedEvent {
        position: i,
        transaction_id: 1,
        event_id: uuid::Uuid::new_v4(),
        stream_type: "bench".into(),
        stream_id: uuid::Uuid::new_v4(),
        version: 1,
        event_type: "bench.load".into(),
        schema_version: 1,
        org_id: None,
        data: serde_json::json!({ "n": 1 }),
        metadata: serde_json::json!({}),
        occurred_at: chrono::DateTime::UNIX_EPOCH,
    }
}
