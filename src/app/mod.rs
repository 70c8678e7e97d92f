//! Command handlers and queries: where a request becomes events.
//!
//! Each command loads its stream(s), lets the pure domain decide, and appends
//! the events together with the inline read-model updates in one short
//! transaction, retrying a version conflict from a fresh load.

pub mod access;
mod bootstrap;
mod clock;
mod context;
mod error;
pub mod events;
pub mod keys;
pub mod orgs;
mod pages;
mod runner;
pub mod users;

pub use bootstrap::Bootstrap;
pub use clock::Clock;
pub use context::{Caller, Ctx};
pub use error::AppError;
pub use pages::{parse_limit as pages_limit, Page, PageCursor, DEFAULT_LIMIT, MAX_LIMIT};

use crate::store::Pool;

/// Application-level settings that change behaviour (not wiring).
#[derive(Debug, Clone)]
pub struct Policy {
    /// Whether anyone may sign up.
    pub open_signup: bool,
}

/// The application: a pool, a clock and the policy. Cheap to clone.
#[derive(Clone)]
pub struct App {
    pool: Pool,
    clock: Clock,
    policy: Policy,
}

impl App {
    /// Builds the application on an open pool.
    pub fn new(pool: Pool, policy: Policy) -> Self {
        Self {
            pool,
            clock: Clock,
            policy,
        }
    }

    /// The connection pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Whether the database answers.
    pub async fn is_database_up(&self) -> bool {
        match self.pool.get().await {
            Ok(client) => client.simple_query("SELECT 1").await.is_ok(),
            Err(_) => false,
        }
    }
}
