//! Integration tests: each test gets its own database and a server on a free port.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_methods,
    missing_docs
)]

mod append;
mod audit;
mod bus;
mod cache;
mod concurrency;
mod erasure;
mod events;
mod faults;
mod follow;
mod fuzz_regressions;
mod hardening;
mod helpers;
mod idempotency;
mod instances;
mod invitations;
mod keys;
mod lifecycle;
mod log_capture;
mod log_order;
mod mfa;
mod migrate_pii;
mod ops;
mod orgs;
mod passkeys;
mod personal_data;
mod pii;
mod proxy;
mod races;
mod replay;
mod scratch;
mod security;
mod sessions;
mod smtp;
mod throttles;
mod tokens;
mod users;
