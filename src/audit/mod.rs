//! The audit trail: a SHA-256 hash chain over the log in commit-safe order,
//! Ed25519-signed checkpoints, and signed, offline-verifiable exports.
//! The byte-exact format is specified in `docs/audit-format.md`.

pub mod canonical;
pub mod chainer;
pub mod export;
pub mod key;
pub mod verify;
