//! The one source of time and ids outside the domain (which takes them as
//! inputs): the system's in service, a fixed one in tests.

use chrono::{DateTime, SubsecRound, Utc};
use std::sync::Mutex;
use uuid::Uuid;

/// Where time and new ids come from.
pub trait Clock: std::fmt::Debug + Send + Sync {
    /// Now, at the microsecond precision Postgres stores.
    fn now(&self) -> DateTime<Utc>;

    /// A new time-ordered id (UUID v7).
    fn new_id(&self) -> Uuid;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }

    #[allow(clippy::disallowed_methods)]
    fn new_id(&self) -> Uuid {
        Uuid::now_v7()
    }
}

/// A clock that stands still until it is moved: for tests of time rules.
#[derive(Debug)]
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    /// A clock standing at `at`.
    pub fn at(at: DateTime<Utc>) -> Self {
        Self(Mutex::new(at.trunc_subsecs(6)))
    }

    /// Moves the clock forward (or back) by `by`.
    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A v7 id of the clock's time, its random part fresh: ids stay unique
    /// while time stands still.
    fn new_id(&self) -> Uuid {
        let now = self.now();
        let nanos = now.timestamp_subsec_nanos();
        let ts = uuid::Timestamp::from_unix(uuid::NoContext, now.timestamp().max(0) as u64, nanos);
        Uuid::new_v7(ts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_clock_stands_still_until_moved_and_its_ids_stay_unique() {
        let start = DateTime::from_timestamp(1_800_000_000, 123_456_789).unwrap_or_default();
        let clock = FixedClock::at(start);
        assert_eq!(clock.now(), start.trunc_subsecs(6));
        assert_eq!(clock.now(), clock.now());
        assert_ne!(clock.new_id(), clock.new_id());
        assert_eq!(clock.new_id().get_version_num(), 7);
        clock.advance(chrono::Duration::seconds(90));
        assert_eq!(
            clock.now() - start.trunc_subsecs(6),
            chrono::Duration::seconds(90)
        );
    }
}
