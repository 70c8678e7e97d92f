//! Following the log by transaction snapshots: what committed since the last
//! read, exactly, whatever order transactions commit in and however long an
//! older one stays open.
//!
//! A read returns the rows that its own statement's snapshot sees and the
//! previous read's snapshot did not, with that new snapshot. Those are exactly
//! the rows of transactions that the previous snapshot listed as running or
//! that started at or after its `xmax`: every other transaction had ended by
//! then and was either visible or rolled back. Two index ranges on
//! `transaction_id` find them, so a long transaction elsewhere in the cluster
//! (a replay, a backup) never holds a read back, unlike the commit-safe order
//! of `events::read_log`, which waits for it. Nothing here orders events; it
//! only makes sure none is missed or read twice.

use super::StoreError;
use tokio_postgres::GenericClient;
use uuid::Uuid;

/// A transaction snapshot as Postgres prints it (`xmin:xmax:xip,...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSnapshot(String);

/// One event committed since a snapshot: its stored type and stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The stored event type.
    pub event_type: String,
    /// Its stream.
    pub stream_id: Uuid,
}

/// The snapshot to follow from: what is committed now counts as read.
pub async fn snapshot(client: &impl GenericClient) -> Result<LogSnapshot, StoreError> {
    let row = client
        .query_one("SELECT pg_current_snapshot()::text", &[])
        .await?;
    Ok(LogSnapshot(row.try_get(0)?))
}

/// The snapshot and the scan are one statement: `pg_current_snapshot()` is
/// the statement's own snapshot, the one the scan sees rows by.
const COMMITTED_SINCE: &str = "WITH prev AS (SELECT $1::text::pg_snapshot AS s) \
    SELECT pg_current_snapshot()::text, e.event_type, e.stream_id \
    FROM prev LEFT JOIN auth_events e \
      ON (e.transaction_id >= pg_snapshot_xmax(prev.s) \
          OR e.transaction_id = ANY (ARRAY(SELECT pg_snapshot_xip(prev.s)))) \
     AND e.event_type = ANY ($2::text[])";

/// A connection's prepared read of what committed since a snapshot.
pub struct Follower {
    statement: tokio_postgres::Statement,
}

impl Follower {
    /// Prepares the read on `client`, a connection of its own.
    ///
    /// Every read is planned for its own snapshot: a generic plan chosen
    /// while the log was small (a sequential scan) would otherwise stay,
    /// and scan the whole log every few milliseconds once it has grown.
    pub async fn prepare(client: &impl GenericClient) -> Result<Self, StoreError> {
        client
            .batch_execute("SET plan_cache_mode = force_custom_plan")
            .await?;
        let statement = client.prepare(COMMITTED_SINCE).await?;
        Ok(Self { statement })
    }

    /// The events of the `types` given that committed after `since` was
    /// taken, and the snapshot to read from next time.
    pub async fn committed_since(
        &self,
        client: &impl GenericClient,
        since: &LogSnapshot,
        types: &[&str],
    ) -> Result<(LogSnapshot, Vec<Committed>), StoreError> {
        let rows = client.query(&self.statement, &[&since.0, &types]).await?;
        read(&rows, since)
    }
}

fn read(
    rows: &[tokio_postgres::Row],
    since: &LogSnapshot,
) -> Result<(LogSnapshot, Vec<Committed>), StoreError> {
    let mut next = since.clone();
    let mut committed = Vec::new();
    for row in rows {
        next = LogSnapshot(row.try_get(0)?);
        let event_type: Option<String> = row.try_get(1)?;
        let stream_id: Option<Uuid> = row.try_get(2)?;
        if let (Some(event_type), Some(stream_id)) = (event_type, stream_id) {
            committed.push(Committed {
                event_type,
                stream_id,
            });
        }
    }
    Ok((next, committed))
}
