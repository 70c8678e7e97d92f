//! The message bus: the relay that publishes the log to RabbitMQ, and the
//! reference audit subscriber.

pub mod cloudevent;
pub mod consumer;
pub mod relay;
