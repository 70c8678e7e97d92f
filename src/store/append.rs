//! One command's write: its events and their read-model changes, pipelined in
//! one transaction. No NOTIFY: a notifying transaction's commit queues on the
//! server's one notification lock (see `instance::notifier`).
//!
//! The statements are sent back to back (futures are polled, and so sent, in
//! order) and every answer is awaited: when one fails, the later ones fail as
//! an aftermath ("current transaction is aborted"), and the first real error —
//! a version conflict, a taken email — is the one returned.

use super::events::{self, TypedEvent};
use super::pipeline::all;
use super::{projections, StoreError};
use deadpool_postgres::Transaction;

/// Inserts `recorded` (setting each event's position) and applies it to the
/// read models, in one round trip.
pub async fn append_and_project(
    tx: &Transaction<'_>,
    recorded: &mut [TypedEvent],
) -> Result<(), StoreError> {
    let (inserted, applied) = futures_util::future::join(
        events::insert_all(tx, recorded.iter().map(|e| &e.envelope)),
        all(recorded
            .iter()
            .map(|e| projections::apply(tx, &e.envelope, &e.event))),
    )
    .await;
    let positions = match (inserted, applied) {
        (Ok(positions), Ok(_)) => positions,
        (inserted, applied) => {
            let errors = [inserted.err(), applied.err()];
            return Err(StoreError::first_cause(errors.into_iter().flatten())
                .unwrap_or_else(|| StoreError::Decode("pipelined append failed".into())));
        }
    };
    for (event, at) in recorded.iter_mut().zip(positions) {
        let envelope = &mut event.envelope;
        (envelope.position, envelope.transaction_id) = (at.position, at.transaction_id);
    }
    Ok(())
}
