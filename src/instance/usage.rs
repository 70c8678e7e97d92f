//! `last_used_at` of API keys: not an event (a look-up is not a decision), but
//! remembered in memory per use and written to the read model in batches.

use super::Stop;
use crate::store::{api_keys, Pool, StoreError};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// Uses seen since the last flush: the latest time per key.
#[derive(Debug, Default)]
pub struct KeyUsage {
    seen: Mutex<HashMap<Uuid, DateTime<Utc>>>,
}

impl KeyUsage {
    /// Notes that `key_id` was used at `at`.
    pub fn record(&self, key_id: Uuid, at: DateTime<Utc>) {
        if let Ok(mut seen) = self.seen.lock() {
            let latest = seen.entry(key_id).or_insert(at);
            *latest = (*latest).max(at);
        }
    }

    /// Takes every use noted so far.
    pub fn take(&self) -> Vec<(Uuid, DateTime<Utc>)> {
        self.seen
            .lock()
            .map(|mut seen| seen.drain().collect())
            .unwrap_or_default()
    }

    /// Puts uses back after a failed write, keeping newer ones.
    fn restore(&self, uses: Vec<(Uuid, DateTime<Utc>)>) {
        for (id, at) in uses {
            self.record(id, at);
        }
    }
}

/// Writes the uses noted since the last flush in one statement; on failure
/// they are kept for the next flush.
pub async fn flush(pool: &Pool, usage: &KeyUsage) -> Result<usize, StoreError> {
    let uses = usage.take();
    if uses.is_empty() {
        return Ok(0);
    }
    let written = async {
        let client = pool.get().await?;
        api_keys::save_key_usage(&client, &uses).await?;
        Ok::<_, StoreError>(uses.len())
    }
    .await;
    if written.is_err() {
        usage.restore(uses);
    }
    written
}

/// Flushes key usage every `every` until the instance stops, then once more:
/// no use noted before the stop is lost.
pub async fn run(pool: Pool, usage: Arc<KeyUsage>, every: Duration, mut stop: Stop) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            () = stop.stopped() => true,
        };
        if let Err(e) = flush(&pool, &usage).await {
            tracing::warn!(error = %crate::telemetry::error_chain(&e), "writing key usage failed; kept for the next flush");
        }
        if stopping {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_use_per_key() {
        let usage = KeyUsage::default();
        let id = Uuid::from_u128(1);
        let t = DateTime::<Utc>::UNIX_EPOCH;
        usage.record(id, t + chrono::Duration::seconds(5));
        usage.record(id, t);
        assert_eq!(usage.take(), vec![(id, t + chrono::Duration::seconds(5))]);
        assert!(usage.take().is_empty());
    }
}
