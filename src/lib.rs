//! vouch: an event-sourced authentication service.
//!
//! Every change is a command that appends immutable events to `auth_events`;
//! inline projections keep the read models the API reads. See `docs/architecture.md`.

pub mod app;
pub mod audit;
pub mod auth;
pub mod bus;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod http;
pub mod instance;
pub mod mail;
pub mod pii;
pub mod startup;
pub mod store;
pub mod telemetry;
