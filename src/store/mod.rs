//! Postgres: the pool, migrations, the event store and the read-model SQL.

pub mod append;
mod bulk;
pub mod checkpoints;
pub mod credentials;
mod error;
pub mod events;
pub mod idempotency;
pub mod leader;
pub mod listen;
pub mod migrate;
mod pool;
pub mod projections;
pub mod queries;
pub mod replay;

pub use error::{StoreError, UniqueConstraint};
pub use pool::{connect, connect_in_schema, Pool};
