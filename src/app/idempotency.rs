//! Safe retries (API.md): what a request sent with an `Idempotency-Key`
//! leaves behind, and how a retry finds it.
//!
//! The claim on `(scope, key)` is written in the same transaction as the
//! command's events (see `App::commit`), so a command and its claim commit
//! together or not at all: a retry after a crash either finds the claim or
//! runs the command for the first time; it never runs it twice. The response
//! is stored, sealed, right after. Two requests racing on one key: the same
//! process refuses the second at once; across processes the second's claim
//! waits on the first's transaction and fails, rolling its own command back.

use super::{App, AppError};
use crate::store::idempotency::{self, IdempotencyRecord};
use chrono::Duration;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use subtle::ConstantTimeEq;

/// How long a response is kept for retries.
pub fn retention() -> Duration {
    Duration::hours(24)
}

/// How long a committed claim may wait for its response before it counts as
/// lost (its process died between the commit and storing the response).
pub fn answer_bound() -> Duration {
    Duration::seconds(30)
}

/// A request carrying an `Idempotency-Key`, as its commands see it.
#[derive(Debug)]
pub struct Claim {
    /// Whose key it is: `key:<id>`, `user:<id>` or `anonymous`.
    pub scope: String,
    /// The client's `Idempotency-Key`.
    pub key: String,
    /// Keyed hash of the request (see `auth::seal`).
    pub fingerprint: [u8; 32],
    committed: AtomicBool,
}

impl Claim {
    /// A claim not yet written.
    pub fn new(scope: String, key: String, fingerprint: [u8; 32]) -> Self {
        Self {
            scope,
            key,
            fingerprint,
            committed: AtomicBool::new(false),
        }
    }

    /// Whether a command of this request committed the claim.
    pub fn is_committed(&self) -> bool {
        self.committed.load(Ordering::Acquire)
    }

    pub(crate) fn mark_committed(&self) {
        self.committed.store(true, Ordering::Release);
    }
}

/// What an earlier request with the same scope and key left.
#[derive(Debug, PartialEq, Eq)]
pub enum Earlier {
    /// Nothing (or only something older than the retention).
    Nothing,
    /// The same request; its stored status and sealed response.
    Answered {
        /// The original status.
        status: u16,
        /// The sealed response.
        sealed: Vec<u8>,
    },
    /// The same request, committed or running, without a stored response yet.
    Pending,
    /// The same request committed long ago, but its response was never
    /// stored: it is applied, and what it answered is lost.
    Lost,
    /// Another request under the same key.
    OtherRequest,
}

fn classify(
    record: Option<IdempotencyRecord>,
    fingerprint: &[u8; 32],
    now: chrono::DateTime<chrono::Utc>,
) -> Earlier {
    let Some(record) = record else {
        return Earlier::Nothing;
    };
    if !bool::from(record.fingerprint.as_slice().ct_eq(fingerprint)) {
        return Earlier::OtherRequest;
    }
    match record.response {
        Some((status, sealed)) => Earlier::Answered { status, sealed },
        None if now - record.created_at > answer_bound() => Earlier::Lost,
        None => Earlier::Pending,
    }
}

/// The `(scope, key)` pairs this process is running now.
#[derive(Debug, Default)]
pub struct InFlight(Mutex<HashSet<(String, String)>>);

/// Holds a pair in [`InFlight`] until dropped (also when the request is cancelled).
#[derive(Debug)]
pub struct InFlightGuard {
    set: Arc<InFlight>,
    entry: (String, String),
}

impl InFlight {
    /// Marks the pair as running; `None` if it is running already.
    pub fn enter(self: &Arc<Self>, scope: &str, key: &str) -> Option<InFlightGuard> {
        let entry = (scope.to_owned(), key.to_owned());
        let mut set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        set.insert(entry.clone()).then(|| InFlightGuard {
            set: self.clone(),
            entry,
        })
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let mut set = self.set.0.lock().unwrap_or_else(|p| p.into_inner());
        set.remove(&self.entry);
    }
}

impl App {
    /// The requests with an `Idempotency-Key` this process is running.
    pub fn in_flight(&self) -> &Arc<InFlight> {
        &self.in_flight
    }

    /// What an earlier request under the claim's scope and key left.
    pub async fn find_earlier(&self, claim: &Claim) -> Result<Earlier, AppError> {
        let client = self.pool.get().await?;
        let now = self.clock.now();
        let record =
            idempotency::find_record(&client, &claim.scope, &claim.key, now - retention()).await?;
        Ok(classify(record, &claim.fingerprint, now))
    }

    /// Stores the sealed response of the request holding `claim`; false if
    /// another request under the same key stored one first.
    pub async fn save_response(
        &self,
        claim: &Claim,
        status: u16,
        sealed: &[u8],
    ) -> Result<bool, AppError> {
        let client = self.pool.get().await?;
        Ok(idempotency::save_response(
            &client,
            &claim.scope,
            &claim.key,
            &claim.fingerprint,
            self.clock.now(),
            status,
            sealed,
        )
        .await?)
    }

    /// Writes the claim of a request inside its command's transaction, once.
    pub(crate) async fn write_claim(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        claim: &Claim,
    ) -> Result<(), AppError> {
        if claim.is_committed() {
            return Ok(());
        }
        let now = self.clock.now();
        idempotency::create_claim(tx, &claim.scope, &claim.key, &claim.fingerprint, now).await?;
        Ok(())
    }

    /// Commits the request's claim on its own, for a refusal that a retry must
    /// get again although it appended nothing with the request (a failed
    /// sign-in, whose event is recorded apart). Nothing without a claim.
    pub(crate) async fn commit_claim(&self, ctx: &super::Ctx) -> Result<(), AppError> {
        let Some(claim) = ctx.idempotency.as_deref() else {
            return Ok(());
        };
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        self.write_claim(&tx, claim).await?;
        tx.commit().await?;
        claim.mark_committed();
        Ok(())
    }

    /// Forgets responses older than the retention.
    pub async fn prune_idempotency(&self) -> Result<u64, AppError> {
        let client = self.pool.get().await?;
        let before = self.clock.now() - retention();
        Ok(idempotency::delete_expired(&client, before).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
    }

    fn record(
        fingerprint: [u8; 32],
        age: i64,
        response: Option<(u16, Vec<u8>)>,
    ) -> Option<IdempotencyRecord> {
        Some(IdempotencyRecord {
            fingerprint: fingerprint.to_vec(),
            created_at: now() - Duration::seconds(age),
            response,
        })
    }

    #[test]
    fn an_earlier_request_is_told_apart_by_its_fingerprint() {
        let fp = [1; 32];
        let t = now();
        assert_eq!(classify(None, &fp, t), Earlier::Nothing);
        assert_eq!(
            classify(record([2; 32], 0, None), &fp, t),
            Earlier::OtherRequest
        );
        assert_eq!(
            classify(record([2; 32], 0, Some((201, vec![9]))), &fp, t),
            Earlier::OtherRequest
        );
        assert_eq!(classify(record(fp, 1, None), &fp, t), Earlier::Pending);
        assert_eq!(classify(record(fp, 31, None), &fp, t), Earlier::Lost);
        assert_eq!(
            classify(record(fp, 3600, Some((201, vec![9]))), &fp, t),
            Earlier::Answered {
                status: 201,
                sealed: vec![9]
            }
        );
    }

    #[test]
    fn a_pair_runs_once_at_a_time_and_is_released_on_drop() {
        let set = Arc::new(InFlight::default());
        let first = set.enter("user:1", "k");
        assert!(first.is_some());
        assert!(set.enter("user:1", "k").is_none());
        assert!(set.enter("user:2", "k").is_some());
        drop(first);
        assert!(set.enter("user:1", "k").is_some());
    }
}
