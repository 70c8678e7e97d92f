//! Postgres: the pool, migrations, the event store and the read-model SQL.

pub mod checkpoints;
mod error;
pub mod events;
pub mod migrate;
mod pool;
pub mod projections;
pub mod queries;

pub use error::{StoreError, UniqueConstraint};
pub use pool::{connect, Pool};
