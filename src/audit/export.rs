//! Exports: JSON Lines of events in their audit form, each with its chain link,
//! ending with a manifest signed by the audit key. Streamed page by page, so
//! memory stays flat however long the log.

use super::canonical::{audit_form, canonical};
use super::chainer::{chain_pending, find_head, CheckpointPolicy, CHAIN_LOCK};
use super::key::AuditKey;
use crate::auth::api_key::hex;
use crate::store::events::{find_log_end, recorded_from_row};
use crate::store::{Pool, StoreError};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The format name in every manifest.
pub const FORMAT: &str = "vouch-export/1";

/// What to export.
#[derive(Debug, Clone, Default)]
pub struct ExportFilter {
    /// Only this org's events.
    pub org_id: Option<Uuid>,
    /// Events that occurred at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Events that occurred at or before this time.
    pub to: Option<DateTime<Utc>>,
}

impl ExportFilter {
    fn is_whole_log(&self) -> bool {
        self.org_id.is_none() && self.from.is_none() && self.to.is_none()
    }
}

/// Where export lines go.
pub trait LineSink {
    /// Takes one line (without its newline).
    fn send(&mut self, line: Vec<u8>) -> impl Future<Output = std::io::Result<()>>;
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The sink failed.
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
    /// The chain did not catch up with the log in time.
    #[error("the audit chain is behind the log; is the chainer running?")]
    ChainBehind,
}

impl From<deadpool_postgres::PoolError> for ExportError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Self::Store(e.into())
    }
}

impl From<tokio_postgres::Error> for ExportError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Store(e.into())
    }
}

/// Makes sure every event committed before this call is chained: chains them
/// itself when no chainer runs, otherwise waits for the chainer. Events of
/// transactions still older than the commit-safe bound are waited for, so an
/// export is complete as of the moment it started.
pub async fn catch_up(
    pool: &Pool,
    key: &AuditKey,
    policy: CheckpointPolicy,
) -> Result<(), ExportError> {
    let client = pool.get().await?;
    // As in replay: plans must not depend on autovacuum having seen a bulk load.
    client.batch_execute("ANALYZE auth_events").await?;
    let Some(end) = find_log_end(&client).await? else {
        return Ok(());
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // A session lock, not a transaction one: chaining a long log takes longer
        // than a connection may sit idle in a transaction.
        let locked: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&CHAIN_LOCK])
            .await?
            .try_get(0)?;
        if locked {
            let chained = chain_pending(pool, key, policy).await;
            client
                .execute("SELECT pg_advisory_unlock($1)", &[&CHAIN_LOCK])
                .await?;
            chained?;
        }
        if find_head(&client).await?.cursor >= end {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(ExportError::ChainBehind);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const PAGE: &str = "SELECT e.position, e.transaction_id::text, e.event_id, e.stream_type, e.stream_id, e.version, \
    e.event_type, e.schema_version, e.org_id, e.data, e.metadata, e.occurred_at, c.seq, c.hash, p.hash \
    FROM audit_chain c JOIN auth_events e ON e.position = c.position \
    LEFT JOIN audit_chain p ON p.seq = c.seq - 1 \
    WHERE c.seq > $1 AND ($2::uuid IS NULL OR e.org_id = $2) \
      AND ($3::timestamptz IS NULL OR e.occurred_at >= $3) \
      AND ($4::timestamptz IS NULL OR e.occurred_at <= $4) \
    ORDER BY c.seq LIMIT 2000";

/// Writes an export of the chained events matching `filter`; returns the event count.
pub async fn export(
    pool: &Pool,
    key: &AuditKey,
    filter: &ExportFilter,
    sink: &mut impl LineSink,
    progress: &dyn Fn(u64),
) -> Result<u64, ExportError> {
    let client = pool.get().await?;
    let stmt = client.prepare_cached(PAGE).await?;
    let mut body = Sha256::new();
    let (mut count, mut after, mut first_seq, mut last_hash) = (0u64, 0i64, None, None::<String>);
    loop {
        let rows = client
            .query(&stmt, &[&after, &filter.org_id, &filter.from, &filter.to])
            .await?;
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            let event = recorded_from_row(r)?;
            let seq: i64 = r.try_get(12)?;
            let hash: Vec<u8> = r.try_get(13)?;
            let prev: Option<Vec<u8>> = r.try_get(14)?;
            let prev = prev.unwrap_or_else(|| super::canonical::GENESIS.to_vec());
            let line = serde_json::to_vec(&json!({
                "seq": seq,
                "prev_hash": hex(&prev),
                "hash": hex(&hash),
                "event": audit_form(&event),
            }))
            .map_err(|e| StoreError::Decode(e.to_string()))?;
            body.update(&line);
            body.update(b"\n");
            sink.send(line).await?;
            first_seq.get_or_insert(seq);
            last_hash = Some(hex(&hash));
            after = seq;
            count += 1;
        }
        progress(rows.len() as u64);
    }
    let checkpoint = match filter.is_whole_log() {
        true => find_checkpoint_within(&client, after).await?,
        false => None,
    };
    let manifest = json!({
        "format": FORMAT,
        "count": count,
        "org_id": filter.org_id,
        "from": filter.from,
        "to": filter.to,
        "first_seq": first_seq,
        "last_seq": (count > 0).then_some(after),
        "body_sha256": hex(&body.finalize()),
        "whole_log": filter.is_whole_log(),
        "chain_head": if filter.is_whole_log() { last_hash.map(Value::String) } else { None },
        "checkpoint": checkpoint,
        "exported_at": crate::app::Clock.now(),
        "key_id": key.key_id(),
        "public_key": key.public_key(),
    });
    let signature = key.sign(&canonical(&manifest));
    let line = serde_json::to_vec(&json!({"manifest": manifest, "signature": signature}))
        .map_err(|e| StoreError::Decode(e.to_string()))?;
    sink.send(line).await?;
    Ok(count)
}

/// The newest signed checkpoint at or before `seq`.
async fn find_checkpoint_within(
    c: &deadpool_postgres::Client,
    seq: i64,
) -> Result<Option<Value>, StoreError> {
    let row = c
        .query_opt(
            "SELECT seq, transaction_id::text, position, head, signed_at, key_id, public_key, signature \
             FROM audit_checkpoints WHERE seq <= $1 ORDER BY seq DESC LIMIT 1",
            &[&seq],
        )
        .await?;
    let Some(r) = row else { return Ok(None) };
    let head: Vec<u8> = r.try_get(3)?;
    let signed_at: DateTime<Utc> = r.try_get(4)?;
    Ok(Some(json!({
        "seq": r.try_get::<_, i64>(0)?,
        "transaction_id": r.try_get::<_, String>(1)?,
        "position": r.try_get::<_, i64>(2)?,
        "head": hex(&head),
        "signed_at": signed_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "key_id": r.try_get::<_, String>(5)?,
        "public_key": r.try_get::<_, String>(6)?,
        "signature": r.try_get::<_, String>(7)?,
    })))
}
