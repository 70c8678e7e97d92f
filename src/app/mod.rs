//! Command handlers and queries: where a request becomes events.
//!
//! Each command loads its stream(s), lets the pure domain decide, and appends
//! the events together with the inline read-model updates in one short
//! transaction, retrying a version conflict from a fresh load.

pub mod access;
pub mod access_review;
mod bootstrap;
mod context;
mod erasure;
mod error;
pub mod events;
pub mod export;
pub mod idempotency;
pub mod introspection;
pub mod invitations;
pub mod keys;
mod lifecycle;
pub mod maintenance;
pub mod mfa;
pub mod migrate_pii;
pub mod orgs;
mod pages;
mod passkeys;
mod passwords;
mod personal;
pub mod replay;
mod runner;
pub mod sessions;
pub mod signing;
mod throttle;
pub mod users;

pub use bootstrap::Bootstrap;
pub use context::{Caller, Ctx};
pub use error::AppError;
pub use pages::{parse_limit as pages_limit, Page, PageCursor, DEFAULT_LIMIT, MAX_LIMIT};

use crate::clock::{Clock, SystemClock};
use crate::config::AuthSettings;
use crate::instance::cache;
use crate::instance::key_ring::KeyRing;
use crate::instance::usage;
use crate::store::Pool;
use std::sync::Arc;

/// Application-level settings that change behaviour (not wiring).
#[derive(Debug, Clone)]
pub struct Policy {
    /// Whether anyone may sign up.
    pub open_signup: bool,
    /// Sessions, tokens and throttling.
    pub auth: AuthSettings,
    /// The credential cache's bounds.
    pub cache: cache::CacheLimits,
    /// The passkeys' relying party (`None`: `VOUCH_PUBLIC_URL` names no
    /// domain, and passkeys are off).
    pub passkeys: Option<crate::auth::passkey::RelyingParty>,
}

impl Policy {
    /// The policy part of the settings.
    pub fn from_settings(settings: &crate::config::Settings) -> Self {
        Self {
            open_signup: settings.open_signup,
            auth: settings.auth.clone(),
            cache: cache::CacheLimits::from_settings(settings),
            passkeys: crate::auth::passkey::RelyingParty::from_public_url(
                &settings.mail.public_url,
            )
            .inspect_err(|e| tracing::warn!(error = %e, "passkeys are off"))
            .ok(),
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            open_signup: true,
            auth: AuthSettings::default(),
            cache: cache::CacheLimits::default(),
            passkeys: None,
        }
    }
}

/// The application: a pool, a clock, the policy and the signing keys. Cheap to clone.
#[derive(Clone)]
pub struct App {
    pool: Pool,
    clock: Arc<dyn Clock>,
    policy: Arc<Policy>,
    keys: Arc<KeyRing>,
    cache: Arc<cache::CredentialCache>,
    usage: Arc<usage::KeyUsage>,
    in_flight: Arc<idempotency::InFlight>,
    wakeups: Arc<crate::instance::notifier::Wakeups>,
    pii: Option<crate::pii::keyring::Keyring>,
    ceremonies: Option<crate::auth::seal::ResponseSeal>,
}

impl App {
    /// Builds the application on an open pool, on the system's clock.
    pub fn new(pool: Pool, policy: Policy) -> Self {
        Self::with_clock(pool, policy, Arc::new(SystemClock))
    }

    /// Builds the application on an open pool and a clock of the caller's.
    pub fn with_clock(pool: Pool, policy: Policy, clock: Arc<dyn Clock>) -> Self {
        Self {
            pool,
            clock,
            cache: Arc::new(cache::CredentialCache::new(policy.cache)),
            policy: Arc::new(policy),
            keys: Arc::new(KeyRing::default()),
            usage: Arc::default(),
            in_flight: Arc::default(),
            wakeups: Arc::default(),
            pii: None,
            ceremonies: None,
        }
    }

    /// The same application, sealing and opening personal fields with
    /// `keyring`. Without one, commands that write personal data, and reads
    /// of events that hold any, fail.
    pub fn with_personal_data(mut self, keyring: crate::pii::keyring::Keyring) -> Self {
        self.pii = Some(keyring);
        self
    }

    /// The same application, sealing the state of passkey ceremonies with
    /// `seal` (without one, passkeys are off).
    pub fn with_ceremony_seal(mut self, seal: crate::auth::seal::ResponseSeal) -> Self {
        self.ceremonies = Some(seal);
        self
    }

    /// The time now, on this application's clock.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// The connection pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The credential cache of this process.
    pub fn cache(&self) -> &Arc<cache::CredentialCache> {
        &self.cache
    }

    /// The commits this process has yet to announce to the log's followers.
    pub fn wakeups(&self) -> &Arc<crate::instance::notifier::Wakeups> {
        &self.wakeups
    }

    /// The key uses this process noted and has not written yet.
    pub fn key_usage(&self) -> &Arc<usage::KeyUsage> {
        &self.usage
    }

    /// Writes the key uses noted since the last flush.
    pub async fn flush_key_usage(&self) -> Result<usize, AppError> {
        Ok(usage::flush(&self.pool, &self.usage).await?)
    }

    /// Whether the database answers.
    pub async fn is_database_up(&self) -> bool {
        crate::store::is_up(&self.pool).await
    }
}
