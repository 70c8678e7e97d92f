//! Checkpoints of log readers: where each resumes in commit-safe order.

use super::events::LogPosition;
use super::StoreError;
use deadpool_postgres::GenericClient;

/// The relay's checkpoint: the last event the broker confirmed.
pub const RELAY: &str = "relay";

/// The mailer's checkpoint: the last event whose mails were handed over.
pub const MAILER: &str = "mailer";

/// Where reader `name` resumes (the start of the log if it never ran).
pub async fn find_checkpoint(
    c: &impl GenericClient,
    name: &str,
) -> Result<LogPosition, StoreError> {
    let row = c
        .query_opt(
            "SELECT transaction_id::text, position FROM log_checkpoints WHERE name = $1",
            &[&name],
        )
        .await?;
    let Some(row) = row else {
        return Ok(LogPosition::default());
    };
    let txid: String = row.try_get(0)?;
    Ok(LogPosition {
        transaction_id: txid
            .parse()
            .map_err(|_| StoreError::Decode(format!("checkpoint transaction id {txid:?}")))?,
        position: row.try_get(1)?,
    })
}

/// Moves reader `name` forward to `to`; never backwards (a deposed leader
/// finishing late cannot undo its successor's progress).
pub async fn save_checkpoint(
    c: &impl GenericClient,
    name: &str,
    to: LogPosition,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO log_checkpoints (name, transaction_id, position) VALUES ($1, $2::text::xid8, $3) \
         ON CONFLICT (name) DO UPDATE SET transaction_id = EXCLUDED.transaction_id, \
           position = EXCLUDED.position, updated_at = now() \
         WHERE (log_checkpoints.transaction_id, log_checkpoints.position) \
             < (EXCLUDED.transaction_id, EXCLUDED.position)",
        &[&name, &to.transaction_id.to_string(), &to.position],
    )
    .await?;
    Ok(())
}

/// Events after reader `name`'s checkpoint and the age in seconds of the oldest.
pub async fn find_lag(c: &impl GenericClient, name: &str) -> Result<(i64, f64), StoreError> {
    let row = c
        .query_one(
            "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(e.occurred_at))::float8, 0) \
             FROM auth_events e, log_checkpoints c \
             WHERE c.name = $1 AND (e.transaction_id, e.position) > (c.transaction_id, c.position)",
            &[&name],
        )
        .await?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}
