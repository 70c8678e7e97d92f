//! Postgres: the pool, migrations, the event store and the read-model SQL.

pub mod api_keys;
pub mod append;
pub mod attempts;
pub mod audit_chain;
mod bulk;
pub mod channels;
pub mod checkpoints;
pub mod credentials;
mod error;
pub mod events;
pub mod follow;
pub mod idempotency;
pub mod invitations;
pub mod leader;
pub mod listen;
pub mod memberships;
pub mod migrate;
pub mod orgs;
pub mod passkeys;
pub mod pii_keys;
pub mod pii_migration;
pub mod pipeline;
mod pool;
pub mod projections;
pub mod replay;
mod rows;
pub mod sessions;
pub mod signing_keys;
pub mod tail;
pub mod users;

pub use error::{StoreError, UniqueConstraint};
pub use pool::{connect, connect_in_schema, is_up, Pool};
