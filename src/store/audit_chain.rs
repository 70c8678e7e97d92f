//! The audit chain (`audit_chain`: one link per event, in commit-safe order)
//! and its signed checkpoints (`audit_checkpoints`). What is hashed and signed
//! is decided in `audit/`; this is where it is kept.

use super::events::{recorded_from_row, LogPosition, RecordedEvent};
use super::StoreError;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use uuid::Uuid;

/// Advisory-lock key of the chainer ("vouch-ch"): one chains at a time.
pub const CHAIN_LOCK: i64 = 0x766f_7563_682d_6368;

/// The end of the chain.
#[derive(Debug, Clone, Copy)]
pub struct ChainHead {
    /// Links so far.
    pub seq: i64,
    /// The last chained event.
    pub cursor: LogPosition,
    /// Its hash.
    pub hash: [u8; 32],
}

/// A signed checkpoint of the chain.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The link it covers.
    pub seq: i64,
    /// That link's event.
    pub cursor: LogPosition,
    /// That link's hash.
    pub head: [u8; 32],
    /// When it was signed.
    pub signed_at: DateTime<Utc>,
    /// The audit key's id.
    pub key_id: String,
    /// The audit key's public half (base64url).
    pub public_key: String,
    /// The Ed25519 signature (base64url).
    pub signature: String,
}

/// A chained event with its link and the link before it.
#[derive(Debug)]
pub struct ChainedEvent {
    /// The event.
    pub event: RecordedEvent,
    /// Its link's number.
    pub seq: i64,
    /// Its link's hash.
    pub hash: Vec<u8>,
    /// The previous link's hash (none for the first link).
    pub prev_hash: Option<Vec<u8>>,
}

fn hash32(bytes: Vec<u8>, what: &str) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Decode(what.into()))
}

fn position(transaction_id: String, position: i64) -> Result<LogPosition, StoreError> {
    Ok(LogPosition {
        transaction_id: transaction_id
            .parse()
            .map_err(|_| StoreError::Decode("chain transaction id".into()))?,
        position,
    })
}

/// The current end of the chain; `None` before the first link.
pub async fn find_head(c: &impl GenericClient) -> Result<Option<ChainHead>, StoreError> {
    let row = c
        .query_opt(
            "SELECT seq, transaction_id::text, position, hash FROM audit_chain ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(ChainHead {
        seq: row.try_get(0)?,
        cursor: position(row.try_get(1)?, row.try_get(2)?)?,
        hash: hash32(row.try_get(3)?, "chain hash")?,
    }))
}

/// Appends links, each `(seq, event position, hash)`.
pub async fn create_links(
    c: &impl GenericClient,
    links: &[(i64, LogPosition, [u8; 32])],
) -> Result<(), StoreError> {
    // One statement: the transaction that holds it has a transaction id, and
    // every commit-safe reader (the relay) waits for it while it runs.
    let insert = c
        .prepare_cached(
            "INSERT INTO audit_chain (seq, position, transaction_id, hash) \
             SELECT seq, position, transaction_id::xid8, hash \
             FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bytea[]) \
               AS l(seq, position, transaction_id, hash)",
        )
        .await?;
    let seqs: Vec<i64> = links.iter().map(|(seq, _, _)| *seq).collect();
    let positions: Vec<i64> = links.iter().map(|(_, at, _)| at.position).collect();
    let transactions: Vec<String> = links
        .iter()
        .map(|(_, at, _)| at.transaction_id.to_string())
        .collect();
    let hashes: Vec<&[u8]> = links.iter().map(|(_, _, hash)| hash.as_slice()).collect();
    c.execute(&insert, &[&seqs, &positions, &transactions, &hashes])
        .await?;
    Ok(())
}

/// The newest checkpoint's link and signing time.
pub async fn find_last_checkpoint(
    c: &impl GenericClient,
) -> Result<Option<(i64, DateTime<Utc>)>, StoreError> {
    let row = c
        .query_opt(
            "SELECT seq, signed_at FROM audit_checkpoints ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .await?;
    Ok(match row {
        Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
        None => None,
    })
}

/// Stores a checkpoint (once per link).
pub async fn create_checkpoint(c: &impl GenericClient, cp: &Checkpoint) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO audit_checkpoints (seq, transaction_id, position, head, signed_at, key_id, public_key, signature) \
         VALUES ($1, $2::text::xid8, $3, $4, $5, $6, $7, $8) ON CONFLICT (seq) DO NOTHING",
        &[
            &cp.seq,
            &cp.cursor.transaction_id.to_string(),
            &cp.cursor.position,
            &cp.head.as_slice(),
            &cp.signed_at,
            &cp.key_id,
            &cp.public_key,
            &cp.signature,
        ],
    )
    .await?;
    Ok(())
}

/// The newest checkpoint at or before link `seq`.
pub async fn find_checkpoint_within(
    c: &impl GenericClient,
    seq: i64,
) -> Result<Option<Checkpoint>, StoreError> {
    let row = c
        .query_opt(
            "SELECT seq, transaction_id::text, position, head, signed_at, key_id, public_key, signature \
             FROM audit_checkpoints WHERE seq <= $1 ORDER BY seq DESC LIMIT 1",
            &[&seq],
        )
        .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(Checkpoint {
        seq: r.try_get(0)?,
        cursor: position(r.try_get(1)?, r.try_get(2)?)?,
        head: hash32(r.try_get(3)?, "checkpoint head")?,
        signed_at: r.try_get(4)?,
        key_id: r.try_get(5)?,
        public_key: r.try_get(6)?,
        signature: r.try_get(7)?,
    }))
}

/// Takes the chainer's lock for this session if it is free (an export that
/// chains on its own); a session lock, because chaining a long log takes
/// longer than a connection may sit idle in a transaction.
pub async fn try_lock_chain(c: &impl GenericClient) -> Result<bool, StoreError> {
    Ok(
        c.query_one("SELECT pg_try_advisory_lock($1)", &[&CHAIN_LOCK])
            .await?
            .try_get(0)?,
    )
}

/// Releases the lock of [`try_lock_chain`].
pub async fn unlock_chain(c: &impl GenericClient) -> Result<(), StoreError> {
    c.execute("SELECT pg_advisory_unlock($1)", &[&CHAIN_LOCK])
        .await?;
    Ok(())
}

/// What a page of chained events is narrowed to.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChainFilter {
    /// Only this org's events.
    pub org_id: Option<Uuid>,
    /// Events that occurred at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Events that occurred at or before this time.
    pub to: Option<DateTime<Utc>>,
}

const PAGE: &str = "SELECT e.position, e.transaction_id::text, e.event_id, e.stream_type, e.stream_id, e.version, \
    e.event_type, e.schema_version, e.org_id, e.data, e.metadata, e.occurred_at, c.seq, c.hash, p.hash \
    FROM audit_chain c JOIN auth_events e ON e.position = c.position \
    LEFT JOIN audit_chain p ON p.seq = c.seq - 1 \
    WHERE c.seq > $1 AND ($2::uuid IS NULL OR e.org_id = $2) \
      AND ($3::timestamptz IS NULL OR e.occurred_at >= $3) \
      AND ($4::timestamptz IS NULL OR e.occurred_at <= $4) \
    ORDER BY c.seq LIMIT 2000";

/// The next page of chained events after link `after` that match `filter`.
pub async fn find_chained_page(
    c: &impl GenericClient,
    after: i64,
    filter: ChainFilter,
) -> Result<Vec<ChainedEvent>, StoreError> {
    let stmt = c.prepare_cached(PAGE).await?;
    let rows = c
        .query(&stmt, &[&after, &filter.org_id, &filter.from, &filter.to])
        .await?;
    rows.iter()
        .map(|r| {
            Ok(ChainedEvent {
                event: recorded_from_row(r)?,
                seq: r.try_get(12)?,
                hash: r.try_get(13)?,
                prev_hash: r.try_get(14)?,
            })
        })
        .collect()
}
