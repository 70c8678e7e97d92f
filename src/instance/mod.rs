//! What a running instance holds in memory and keeps fresh, and the tasks that
//! do so: the credential cache and the log follower that invalidates it, the
//! coalesced notifier, the key-usage buffer and its flusher, the signing-key ring. None of it is
//! shared with other instances; the database is the truth behind each.

pub mod cache;
pub mod invalidation;
pub mod key_ring;
pub mod notifier;
pub mod usage;
pub mod workers;

pub use workers::{Stop, Workers, WorkersHandle};
