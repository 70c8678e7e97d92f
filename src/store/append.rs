//! One command's write: its events, their read-model changes and its
//! notifications, pipelined in one transaction.
//!
//! The statements are sent back to back (futures are polled, and so sent, in
//! order) and every answer is awaited: when one fails, the later ones fail as
//! an aftermath ("current transaction is aborted"), and the first real error —
//! a version conflict, a taken email — is the one returned.

use super::events::{self, TypedEvent};
use super::pipeline::all;
use super::{projections, StoreError};
use deadpool_postgres::Transaction;

/// Notifies each (channel, payload) pair at commit.
const NOTIFY: &str = "SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS n(c, p)";

/// Inserts `recorded` (setting each event's position), applies it to the read
/// models and sends `notifications` at commit, in one round trip.
pub async fn append_and_project(
    tx: &Transaction<'_>,
    recorded: &mut [TypedEvent],
    notifications: &[(&str, String)],
) -> Result<(), StoreError> {
    let (channels, payloads): (Vec<&str>, Vec<&str>) =
        notifications.iter().map(|(c, p)| (*c, p.as_str())).unzip();
    let (inserted, applied, notified) = futures_util::future::join3(
        events::insert_all(tx, recorded.iter().map(|e| &e.envelope)),
        all(recorded
            .iter()
            .map(|e| projections::apply(tx, &e.envelope, &e.event))),
        async {
            let notify = tx.prepare_cached(NOTIFY).await?;
            tx.execute(&notify, &[&channels, &payloads]).await?;
            Ok::<_, StoreError>(())
        },
    )
    .await;
    let positions = match (inserted, applied, notified) {
        (Ok(positions), Ok(_), Ok(())) => positions,
        (inserted, applied, notified) => {
            let errors = [inserted.err(), applied.err(), notified.err()];
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
