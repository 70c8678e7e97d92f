use chrono::{DateTime, SubsecRound, Utc};
use uuid::Uuid;

/// The one source of time and ids outside the domain (which takes them as inputs).
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock;

impl Clock {
    /// Now, at the microsecond precision Postgres stores.
    #[allow(clippy::disallowed_methods)]
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }

    /// A new time-ordered id (UUID v7).
    #[allow(clippy::disallowed_methods)]
    pub fn new_id(&self) -> Uuid {
        Uuid::now_v7()
    }
}
