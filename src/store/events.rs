//! The event store: append with an expected version, read a stream, read the
//! log in commit-safe order.

use super::StoreError;
use crate::domain::stored::AnyEvent;
use crate::domain::StreamType;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde_json::Value;
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{Row, Statement};
use uuid::Uuid;

/// One event to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Unique id (idempotency; `message_id` on the bus).
    pub event_id: Uuid,
    /// Stored type, e.g. `api_key.revoked`.
    pub event_type: String,
    /// Payload schema version.
    pub schema_version: i16,
    /// The event's payload, as stored (JSON).
    pub data: Value,
    /// The event itself, for the projections and the code after the commit.
    pub event: AnyEvent,
}

/// An event as a command appends it: its envelope (as stored) and the typed
/// event it was decided as. Nothing is serialised and parsed back within one
/// command: the projections and the code after the commit match the typed event.
#[derive(Debug, Clone)]
pub struct TypedEvent {
    /// The envelope and payload as stored.
    pub envelope: RecordedEvent,
    /// The event.
    pub event: AnyEvent,
}

/// New events for one stream, appended only if the stream is still at `expected_version`.
#[derive(Debug, Clone)]
pub struct StreamChange {
    /// The stream's type.
    pub stream_type: StreamType,
    /// The stream (aggregate) id.
    pub stream_id: Uuid,
    /// The version the decision was based on (0 for a new stream).
    pub expected_version: i32,
    /// The tenant the events belong to.
    pub org_id: Option<Uuid>,
    /// The events, in order.
    pub events: Vec<NewEvent>,
}

/// An event as stored in the log.
#[derive(Debug, Clone)]
pub struct RecordedEvent {
    /// Insertion position (not commit order).
    pub position: i64,
    /// Writing transaction; with `position`, the commit-safe sort key.
    pub transaction_id: u64,
    /// Unique event id.
    pub event_id: Uuid,
    /// Stream type.
    pub stream_type: String,
    /// Stream id.
    pub stream_id: Uuid,
    /// Version within the stream.
    pub version: i32,
    /// Stored type.
    pub event_type: String,
    /// Payload schema version.
    pub schema_version: i16,
    /// The org the event belongs to, if any.
    pub org_id: Option<Uuid>,
    /// Payload (unredacted: redact before it leaves the process).
    pub data: Value,
    /// Actor, request id and other context.
    pub metadata: Value,
    /// When the command was decided.
    pub occurred_at: DateTime<Utc>,
}

impl RecordedEvent {
    /// The commit-safe position of this event.
    pub fn cursor(&self) -> LogPosition {
        LogPosition {
            transaction_id: self.transaction_id,
            position: self.position,
        }
    }
}

/// A point in the commit-safe order: `(transaction_id, position)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogPosition {
    /// Writing transaction id.
    pub transaction_id: u64,
    /// Position within the log.
    pub position: i64,
}

const INSERT_EVENT: &str = "INSERT INTO auth_events \
    (event_id, stream_type, stream_id, version, event_type, schema_version, org_id, data, metadata, occurred_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
    RETURNING position, transaction_id::text";

/// The events `changes` will append, stamped with `metadata` and `occurred_at`;
/// `position` and `transaction_id` are set once [`insert_all`] returns them.
pub fn record(
    changes: &[StreamChange],
    metadata: &Value,
    occurred_at: DateTime<Utc>,
) -> Vec<TypedEvent> {
    let mut recorded = Vec::new();
    for change in changes {
        for (i, event) in change.events.iter().enumerate() {
            let envelope = RecordedEvent {
                position: 0,
                transaction_id: 0,
                event_id: event.event_id,
                stream_type: change.stream_type.as_str().to_owned(),
                stream_id: change.stream_id,
                version: change.expected_version + 1 + i as i32,
                event_type: event.event_type.clone(),
                schema_version: event.schema_version,
                org_id: change.org_id,
                data: event.data.clone(),
                metadata: metadata.clone(),
                occurred_at,
            };
            recorded.push(TypedEvent {
                envelope,
                event: event.event.clone(),
            });
        }
    }
    recorded
}

/// Inserts recorded events inside `tx`, pipelined, and returns where each landed.
/// A stream that moved on since it was read gives [`StoreError::VersionConflict`]
/// (the unique `(stream_id, version)` decides).
pub async fn insert_all(
    tx: &impl GenericClient,
    events: impl Iterator<Item = &RecordedEvent>,
) -> Result<Vec<LogPosition>, StoreError> {
    let stmt = prepare_insert(tx).await?;
    let events: Vec<&RecordedEvent> = events.collect();
    super::pipeline::all(insert_with(tx, &stmt, events.iter().map(|e| &**e))).await
}

/// The event insert, prepared on `client` for [`insert_with`].
pub async fn prepare_insert(client: &impl GenericClient) -> Result<Statement, StoreError> {
    Ok(client.prepare_cached(INSERT_EVENT).await?)
}

/// One insert per event with a prepared statement: each request is queued
/// when its future is first polled (see `store::pipeline`).
pub fn insert_with<'a>(
    client: &'a impl GenericClient,
    stmt: &'a Statement,
    events: impl Iterator<Item = &'a RecordedEvent>,
) -> impl Iterator<Item = impl std::future::Future<Output = Result<LogPosition, StoreError>> + 'a> {
    events.map(move |e| async move {
        let row = client
            .query_one(
                stmt,
                &[
                    &e.event_id,
                    &e.stream_type,
                    &e.stream_id,
                    &e.version,
                    &e.event_type,
                    &e.schema_version,
                    &e.org_id,
                    &e.data,
                    &e.metadata,
                    &e.occurred_at,
                ],
            )
            .await?;
        Ok::<_, StoreError>(LogPosition {
            position: row.try_get(0)?,
            transaction_id: parse_xid(row.try_get(1)?)?,
        })
    })
}

/// One stored event of a stream, before decoding.
#[derive(Debug, Clone)]
pub struct StreamEvent {
    /// Version within the stream.
    pub version: i32,
    /// Stored type.
    pub event_type: String,
    /// Payload schema version.
    pub schema_version: i16,
    /// The event's payload, as stored (JSON).
    pub data: Value,
}

/// Reads all events of one stream of `stream_type`, in version order.
pub async fn read_stream(
    client: &impl GenericClient,
    stream_type: StreamType,
    stream_id: Uuid,
) -> Result<Vec<StreamEvent>, StoreError> {
    let stmt = client
        .prepare_cached(
            "SELECT version, event_type, schema_version, data FROM auth_events \
             WHERE stream_id = $1 AND stream_type = $2 ORDER BY version",
        )
        .await?;
    let rows = client
        .query(&stmt, &[&stream_id, &stream_type.as_str()])
        .await?;
    rows.iter()
        .map(|r| {
            Ok(StreamEvent {
                version: r.try_get(0)?,
                event_type: r.try_get(1)?,
                schema_version: r.try_get(2)?,
                data: r.try_get(3)?,
            })
        })
        .collect()
}

/// What to read from the log.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// Read strictly after this point.
    pub after: LogPosition,
    /// At most this many events.
    pub limit: i64,
    /// Only this tenant's events.
    pub org_id: Option<Uuid>,
    /// Only events of this type.
    pub event_type: Option<String>,
    /// Only events of this stream.
    pub stream_id: Option<Uuid>,
    /// Read every committed row, not only those older than every running
    /// transaction. Only for a reader that holds locks which keep the writers
    /// it cares about out (the replay's final catch-up).
    pub unbounded: bool,
}

const LOG_COLUMNS: &str =
    "position, transaction_id::text, event_id, stream_type, stream_id, version, \
    event_type, schema_version, org_id, data, metadata, occurred_at";

/// Reads the log after a point in commit-safe order.
///
/// Only rows of transactions older than every transaction still running are
/// returned (`transaction_id < pg_snapshot_xmin(pg_current_snapshot())`, taken
/// in this same statement), so a row that becomes visible later always sorts
/// after everything already returned: a cursor never skips or repeats.
pub async fn read_log(
    client: &impl GenericClient,
    q: &LogQuery,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let rows = query_log(client, q, LOG_COLUMNS).await?;
    rows.iter().map(recorded_from_row).collect()
}

/// Every event concerning a person, in commit-safe order: their user
/// stream, their sessions' streams, events naming them (`user_id`,
/// `created_by`) and events they caused as a signed-in user. For a request
/// of access; a scan of the log, not a hot path.
pub async fn read_concerning(
    client: &impl GenericClient,
    user_id: Uuid,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let sql = format!(
        "SELECT {LOG_COLUMNS} FROM auth_events e \
         WHERE e.stream_id = $1 \
            OR e.stream_id IN (SELECT s.stream_id FROM auth_events s \
                 WHERE s.event_type = 'session.started' AND s.data->>'user_id' = $2) \
            OR e.data->>'user_id' = $2 OR e.data->>'created_by' = $2 \
            OR (e.metadata->'actor'->>'type' = 'user' AND e.metadata->'actor'->>'id' = $2) \
         ORDER BY e.transaction_id, e.position"
    );
    let rows = client
        .query(&sql, &[&user_id, &user_id.to_string()])
        .await?;
    rows.iter().map(recorded_from_row).collect()
}

/// Reads the log as [`read_log`] does, for replay: each event decoded from its
/// payload's JSON text, and the envelope without `data` and `metadata` (left
/// `Null`: the projections never read them, and neither is fetched). An event
/// with personal fields is not decoded here: its payload is left parsed in
/// `data`, for the caller to open its sealed fields and decode it.
pub async fn read_log_decoded(
    client: &impl GenericClient,
    q: &LogQuery,
) -> Result<Vec<(RecordedEvent, Option<AnyEvent>)>, StoreError> {
    let rows = query_log(client, q, DECODED_COLUMNS).await?;
    rows.iter()
        .map(|r| {
            let mut envelope = recorded_with(r, Value::Null, Value::Null)?;
            let JsonText(json) = r.try_get(9)?;
            if !crate::pii::fields::personal_fields(&envelope.event_type).is_empty() {
                envelope.data =
                    serde_json::from_slice(json).map_err(|e| StoreError::Decode(e.to_string()))?;
                return Ok((envelope, None));
            }
            let event = AnyEvent::decode_json(&envelope.event_type, envelope.schema_version, json)
                .map_err(|e| StoreError::Decode(e.to_string()))?;
            Ok((envelope, Some(event)))
        })
        .collect()
}

/// [`LOG_COLUMNS`] with no metadata: the same positions, nothing sent.
const DECODED_COLUMNS: &str =
    "position, transaction_id::text, event_id, stream_type, stream_id, version, \
    event_type, schema_version, org_id, data, NULL::jsonb, occurred_at";

/// A `json` or `jsonb` value as its JSON text, borrowed from the row.
struct JsonText<'a>(&'a [u8]);

impl<'a> FromSql<'a> for JsonText<'a> {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        if *ty != Type::JSONB {
            return Ok(Self(raw));
        }
        // Binary jsonb is a format version byte, 1, then the JSON text.
        match raw.split_first() {
            Some((1, text)) => Ok(Self(text)),
            _ => Err("unsupported jsonb format version".into()),
        }
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::JSON | Type::JSONB)
    }
}

async fn query_log(
    client: &impl GenericClient,
    q: &LogQuery,
    columns: &str,
) -> Result<Vec<Row>, StoreError> {
    let tenant = if q.org_id.is_some() {
        "org_id = $4 AND"
    } else {
        "$4::uuid IS NULL AND"
    };
    let bound = if q.unbounded {
        ""
    } else {
        "AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())"
    };
    let filters =
        "AND ($5::text IS NULL OR event_type = $5) AND ($6::uuid IS NULL OR stream_id = $6)";
    // The outer ORDER BY names `e.transaction_id`: a bare `transaction_id`
    // would be the output column `transaction_id::text`, and text puts
    // "1000001" before "999997".
    // `(transaction_id, position) > (a, b)` split in two index ranges: the planner
    // costs a row comparison by its first column alone and, when one transaction
    // wrote many rows (a bulk import), would scan and sort the whole table.
    let sql = format!(
        "SELECT {columns} FROM ( \
           (SELECT * FROM auth_events \
             WHERE {tenant} transaction_id = $1::text::xid8 AND position > $2 {bound} {filters} \
             ORDER BY position LIMIT $3) \
           UNION ALL \
           (SELECT * FROM auth_events \
             WHERE {tenant} transaction_id > $1::text::xid8 {bound} {filters} \
             ORDER BY transaction_id, position LIMIT $3) \
         ) e ORDER BY e.transaction_id, e.position LIMIT $3"
    );
    let stmt = client.prepare_cached(&sql).await?;
    Ok(client
        .query(
            &stmt,
            &[
                &q.after.transaction_id.to_string(),
                &q.after.position,
                &q.limit,
                &q.org_id,
                &q.event_type,
                &q.stream_id,
            ],
        )
        .await?)
}

/// The last event in commit-safe order, if the log has any.
pub async fn find_log_end(client: &impl GenericClient) -> Result<Option<LogPosition>, StoreError> {
    let row = client
        .query_opt(
            // Qualified: ordered by the xid8 column, not by its text output.
            "SELECT e.transaction_id::text, e.position FROM auth_events e \
             ORDER BY e.transaction_id DESC, e.position DESC LIMIT 1",
            &[],
        )
        .await?;
    row.map(|r| {
        Ok(LogPosition {
            transaction_id: parse_xid(r.try_get(0)?)?,
            position: r.try_get(1)?,
        })
    })
    .transpose()
}

pub(crate) fn recorded_from_row(r: &Row) -> Result<RecordedEvent, StoreError> {
    recorded_with(r, r.try_get(9)?, r.try_get(10)?)
}

/// A row of [`LOG_COLUMNS`] with its payload and metadata given.
fn recorded_with(r: &Row, data: Value, metadata: Value) -> Result<RecordedEvent, StoreError> {
    Ok(RecordedEvent {
        position: r.try_get(0)?,
        transaction_id: parse_xid(r.try_get(1)?)?,
        event_id: r.try_get(2)?,
        stream_type: r.try_get(3)?,
        stream_id: r.try_get(4)?,
        version: r.try_get(5)?,
        event_type: r.try_get(6)?,
        schema_version: r.try_get(7)?,
        org_id: r.try_get(8)?,
        data,
        metadata,
        occurred_at: r.try_get(11)?,
    })
}

fn parse_xid(text: &str) -> Result<u64, StoreError> {
    text.parse()
        .map_err(|_| StoreError::Decode(format!("transaction id {text:?}")))
}

/// Whether the log holds any event at all (an empty log gets bootstrapped).
pub async fn is_log_empty(c: &impl GenericClient) -> Result<bool, StoreError> {
    let row = c
        .query_one("SELECT NOT EXISTS (SELECT 1 FROM auth_events)", &[])
        .await?;
    Ok(row.try_get(0)?)
}

/// An org's events (its own stream and its keys') that occurred at or before
/// `as_of`, in commit-safe order.
pub async fn find_org_history(
    c: &impl GenericClient,
    org_id: Uuid,
    as_of: DateTime<Utc>,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut out = Vec::new();
    let mut after = LogPosition::default();
    loop {
        let page = read_log(
            c,
            &LogQuery {
                after,
                limit: 5000,
                org_id: Some(org_id),
                ..Default::default()
            },
        )
        .await?;
        let Some(last) = page.last().map(|e| e.cursor()) else {
            return Ok(out);
        };
        out.extend(page.into_iter().filter(|e| e.occurred_at <= as_of));
        after = last;
    }
}

/// Refreshes the planner's statistics of the log when they are stale: after a
/// bulk import or a restore the planner may think the log is tiny and sort it
/// whole for every batch of a full read. Stale means never analysed, or more
/// than a tenth of the rows written since; ANALYZE samples, but on a large log
/// it still costs a good part of a second.
pub async fn analyze_log(c: &impl GenericClient) -> Result<(), StoreError> {
    let row = c
        .query_one(
            "SELECT coalesce(bool_or(greatest(last_analyze, last_autoanalyze) IS NULL \
                     OR n_mod_since_analyze > 0.1 * greatest(n_live_tup, 1000)), true) \
             FROM pg_stat_user_tables WHERE relid = 'auth_events'::regclass",
            &[],
        )
        .await?;
    if row.try_get::<_, bool>(0)? {
        c.batch_execute("ANALYZE auth_events").await?;
    }
    Ok(())
}

/// About how many events the log holds: the planner's count, or an exact one
/// when the log was never analysed. For progress reports only.
pub async fn estimate_events(c: &impl GenericClient) -> Result<i64, StoreError> {
    let row = c
        .query_one(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = 'auth_events'::regclass",
            &[],
        )
        .await?;
    let estimate: i64 = row.try_get(0)?;
    if estimate >= 0 {
        return Ok(estimate);
    }
    let row = c.query_one("SELECT count(*) FROM auth_events", &[]).await?;
    Ok(row.try_get(0)?)
}
