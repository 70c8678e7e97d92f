//! One command's write: its events and their read-model changes, pipelined.
//! No NOTIFY: a notifying transaction's commit queues on the server's one
//! notification lock (see `instance::notifier`).
//!
//! The statements are sent back to back (see `store::pipeline`) and every
//! answer is awaited: when one fails, the later ones fail as an aftermath
//! ("current transaction is aborted"), and the first real error — a version
//! conflict, a taken email — is the one returned.

use super::events::{self, LogPosition, TypedEvent};
use super::pipeline::{self, all, Write};
use super::{projections, StoreError};
use deadpool_postgres::{GenericClient, Transaction};

/// Inserts `recorded` (setting each event's position) and applies it to the
/// read models inside a transaction the caller holds, in one round trip.
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
    stamp(recorded, positions);
    Ok(())
}

/// A whole command transaction in one round trip: `BEGIN`, `first` (the
/// request's idempotency claim), the events, their read-model writes and
/// `COMMIT`, sent back to back on an idle connection.
///
/// Every statement is prepared before anything is sent, so each request is
/// queued in this order on the first poll: `COMMIT` can never overtake a
/// statement of its transaction. When a statement fails the transaction is
/// aborted and `COMMIT` ends it as a rollback: nothing of it is stored. And
/// once sent, the transaction ends on the server whether or not this future
/// is still awaited, so the connection goes back to the pool clean.
pub async fn commit_pipelined(
    client: &impl GenericClient,
    first: Option<Write>,
    recorded: &mut [TypedEvent],
) -> Result<(), StoreError> {
    let claim_writes: Vec<Write> = first.into_iter().collect();
    let model_writes: Vec<Write> = recorded
        .iter()
        .flat_map(|e| projections::writes(&e.envelope, &e.event))
        .collect();
    let claim_statements = pipeline::prepare(client, &claim_writes).await?;
    let model_statements = pipeline::prepare(client, &model_writes).await?;
    let insert = events::prepare_insert(client).await?;
    // From here on every request is queued before anything is awaited.
    let (begun, claimed, inserted, applied, committed) = futures_util::future::join5(
        client.batch_execute("BEGIN"),
        pipeline::send(client, &claim_writes, &claim_statements),
        futures_util::future::join_all(events::insert_with(
            client,
            &insert,
            recorded.iter().map(|e| &e.envelope),
        )),
        pipeline::send(client, &model_writes, &model_statements),
        client.batch_execute("COMMIT"),
    )
    .await;
    let mut errors = Vec::new();
    errors.extend(begun.err().map(StoreError::from));
    errors.extend(claimed.into_iter().filter_map(Result::err));
    let mut positions = Vec::with_capacity(inserted.len());
    for outcome in inserted {
        match outcome {
            Ok(at) => positions.push(at),
            Err(e) => errors.push(e),
        }
    }
    errors.extend(applied.into_iter().filter_map(Result::err));
    errors.extend(committed.err().map(StoreError::from));
    if let Some(cause) = StoreError::first_cause(errors) {
        return Err(cause);
    }
    stamp(recorded, positions);
    Ok(())
}

fn stamp(recorded: &mut [TypedEvent], positions: Vec<LogPosition>) {
    for (event, at) in recorded.iter_mut().zip(positions) {
        let envelope = &mut event.envelope;
        (envelope.position, envelope.transaction_id) = (at.position, at.transaction_id);
    }
}
