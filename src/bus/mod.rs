//! The message bus: the relay that publishes the log to RabbitMQ, and the
//! reference audit subscriber.

pub mod cloudevent;
pub mod consumer;
pub mod forget;
pub mod relay;

use lapin::options::ExchangeDeclareOptions;
use lapin::types::{FieldTable, ShortString};
use lapin::{Channel, ExchangeKind};

/// Declares vouch's durable topic exchange (idempotent; the relay and
/// subscribers both declare it, so either may start first).
pub async fn declare_exchange(channel: &Channel, exchange: &str) -> Result<(), lapin::Error> {
    channel
        .exchange_declare(
            ShortString::from(exchange),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
}
