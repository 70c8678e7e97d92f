//! SQL of `vouch migrate-pii`: the one rewrite of the log (see
//! `app::migrate_pii`). Nothing else here may run while an instance serves.

use super::events::LogPosition;
use super::StoreError;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde_json::Value;

/// Other client sessions on this database: an instance, or anyone else,
/// that must be gone before the log is rewritten.
pub async fn count_other_sessions(c: &impl GenericClient) -> Result<i64, StoreError> {
    let row = c
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
            &[],
        )
        .await?;
    Ok(row.try_get(0)?)
}

/// One stored event as the rewrite needs it.
#[derive(Debug)]
pub struct StoredRow {
    /// Its position (the row's key).
    pub position: i64,
    /// Stored type.
    pub event_type: String,
    /// Its stream.
    pub stream_id: uuid::Uuid,
    /// The payload.
    pub data: Value,
    /// The metadata.
    pub metadata: Value,
}

/// Events after `after` by position, `limit` at most.
pub async fn find_rows_after(
    c: &impl GenericClient,
    after: i64,
    limit: i64,
) -> Result<Vec<StoredRow>, StoreError> {
    let rows = c
        .query(
            "SELECT position, event_type, stream_id, data, metadata FROM auth_events \
             WHERE position > $1 ORDER BY position LIMIT $2",
            &[&after, &limit],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(StoredRow {
                position: r.try_get(0)?,
                event_type: r.try_get(1)?,
                stream_id: r.try_get(2)?,
                data: r.try_get(3)?,
                metadata: r.try_get(4)?,
            })
        })
        .collect()
}

/// Lets this transaction change stored events (the append-only trigger is
/// off until [`protect_log`]; `ALTER TABLE` holds the table exclusively).
pub async fn unprotect_log(c: &impl GenericClient) -> Result<(), StoreError> {
    c.batch_execute("ALTER TABLE auth_events DISABLE TRIGGER auth_events_no_update_delete")
        .await?;
    Ok(())
}

/// Puts the append-only trigger back.
pub async fn protect_log(c: &impl GenericClient) -> Result<(), StoreError> {
    c.batch_execute("ALTER TABLE auth_events ENABLE TRIGGER auth_events_no_update_delete")
        .await?;
    Ok(())
}

/// Replaces a stored event's payload and metadata.
pub async fn save_row(c: &impl GenericClient, row: &StoredRow) -> Result<(), StoreError> {
    let stmt = c
        .prepare_cached("UPDATE auth_events SET data = $2, metadata = $3 WHERE position = $1")
        .await?;
    c.execute(&stmt, &[&row.position, &row.data, &row.metadata])
        .await?;
    Ok(())
}

/// The signed record of a replaced chain head.
#[derive(Debug, Clone)]
pub struct Rewrite {
    /// Why the log was rewritten.
    pub reason: String,
    /// The replaced chain's length.
    pub replaced_seq: i64,
    /// Its last event.
    pub replaced_cursor: LogPosition,
    /// Its head.
    pub replaced_head: [u8; 32],
    /// Events rewritten.
    pub rewritten_events: i64,
    /// When.
    pub rewritten_at: DateTime<Utc>,
    /// The audit key's id.
    pub key_id: String,
    /// The audit key's public key.
    pub public_key: String,
    /// Its signature of the record.
    pub signature: String,
}

/// Records a rewrite, moves the old chain's checkpoints beside it, and
/// empties the chain for the chainer to compute again.
pub async fn replace_chain(c: &impl GenericClient, rewrite: &Rewrite) -> Result<i64, StoreError> {
    let id: i64 = c
        .query_one(
            "INSERT INTO audit_rewrites (reason, replaced_seq, replaced_transaction_id, \
               replaced_position, replaced_head, rewritten_events, rewritten_at, key_id, \
               public_key, signature) \
             VALUES ($1, $2, $3::text::xid8, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            &[
                &rewrite.reason,
                &rewrite.replaced_seq,
                &rewrite.replaced_cursor.transaction_id.to_string(),
                &rewrite.replaced_cursor.position,
                &rewrite.replaced_head.as_slice(),
                &rewrite.rewritten_events,
                &rewrite.rewritten_at,
                &rewrite.key_id,
                &rewrite.public_key,
                &rewrite.signature,
            ],
        )
        .await?
        .try_get(0)?;
    c.execute(
        "INSERT INTO audit_replaced_checkpoints \
           SELECT $1, seq, transaction_id, position, head, signed_at, key_id, public_key, signature \
           FROM audit_checkpoints",
        &[&id],
    )
    .await?;
    c.batch_execute("DELETE FROM audit_checkpoints; DELETE FROM audit_chain;")
        .await?;
    Ok(id)
}

/// The rewrites recorded, oldest first.
pub async fn find_rewrites(c: &impl GenericClient) -> Result<Vec<Rewrite>, StoreError> {
    let rows = c
        .query(
            "SELECT reason, replaced_seq, replaced_transaction_id::text, replaced_position, \
               replaced_head, rewritten_events, rewritten_at, key_id, public_key, signature \
             FROM audit_rewrites ORDER BY id",
            &[],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let txid: String = r.try_get(2)?;
            let head: Vec<u8> = r.try_get(4)?;
            Ok(Rewrite {
                reason: r.try_get(0)?,
                replaced_seq: r.try_get(1)?,
                replaced_cursor: LogPosition {
                    transaction_id: txid
                        .parse()
                        .map_err(|_| StoreError::Decode("xid8 text".into()))?,
                    position: r.try_get(3)?,
                },
                replaced_head: head
                    .try_into()
                    .map_err(|_| StoreError::Decode("a chain head is 32 bytes".into()))?,
                rewritten_events: r.try_get(5)?,
                rewritten_at: r.try_get(6)?,
                key_id: r.try_get(7)?,
                public_key: r.try_get(8)?,
                signature: r.try_get(9)?,
            })
        })
        .collect()
}

/// Vacuums and analyzes the log (outside any transaction).
pub async fn vacuum_log(c: &tokio_postgres::Client) -> Result<(), StoreError> {
    c.batch_execute("VACUUM (ANALYZE) auth_events").await?;
    Ok(())
}
