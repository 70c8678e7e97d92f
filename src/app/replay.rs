//! `vouch replay`: rebuild the read models from the log with the same `apply`
//! the inline projections use, in commit-safe order.
//!
//! - rebuild: into fresh tables, then swapped in atomically while the service runs;
//! - verify: into a scratch schema, compared row by row with the live tables;
//! - until: the state as of a time or position, into a schema the user names.

use crate::domain::stored::AnyEvent;
use crate::pii::keyring::{Keyring, StoredPayload};
use crate::store::events::{read_log_decoded, LogPosition, LogQuery, RecordedEvent};
use crate::store::replay::{self as sql, READ_MODELS};
use crate::store::{self, projections, Pool, StoreError};
use chrono::{DateTime, Utc};
use std::time::Instant;

/// Events read per transaction.
const BATCH: i64 = 5000;

/// Batches read ahead of the one being applied.
const READ_AHEAD: usize = 2;

/// Where a point-in-time replay stops.
#[derive(Debug, Clone, Copy)]
pub enum Cutoff {
    /// Events that occurred at or before this time.
    Time(DateTime<Utc>),
    /// Events at or before this log position.
    Position(i64),
}

impl Cutoff {
    fn includes(&self, e: &RecordedEvent) -> bool {
        match self {
            Self::Time(t) => e.occurred_at <= *t,
            Self::Position(p) => e.position <= *p,
        }
    }
}

/// What to replay.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Rebuild every read model and swap the result in.
    Rebuild,
    /// Rebuild into a scratch schema and report drift from the live tables.
    Verify,
    /// Build the state as of `cutoff` into `schema` (which must not exist).
    Until {
        /// Where to stop.
        cutoff: Cutoff,
        /// The schema to create.
        schema: String,
    },
}

/// What a replay did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Events read from the log.
    pub events: u64,
    /// Events applied (all but those past an `--until` cutoff).
    pub applied: u64,
    /// Seconds taken.
    pub seconds: f64,
    /// Differences found by `--verify`: (table, side, row as JSON).
    pub drift: Vec<(String, &'static str, String)>,
}

/// Why a replay failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bad argument.
    #[error("{0}")]
    Usage(String),
    /// The personal-data key was refused.
    #[error(transparent)]
    PiiKey(#[from] crate::pii::startup::KekError),
    /// A person's data key or sealed field could not be used.
    #[error(transparent)]
    Keyring(#[from] crate::pii::keyring::KeyringError),
}

impl From<deadpool_postgres::PoolError> for ReplayError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Self::Store(e.into())
    }
}

impl From<tokio_postgres::Error> for ReplayError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Store(e.into())
    }
}

/// Told how far a replay got.
pub trait Progress {
    /// The number of events in the log, when known.
    fn start(&self, total: u64);
    /// `n` more events were read.
    fn advance(&self, n: u64);
}

/// Replays the log of the database at `database_url`.
pub async fn replay(
    database_url: &str,
    pii_key_file: &std::path::Path,
    mode: Mode,
    progress: &dyn Progress,
) -> Result<Report, ReplayError> {
    let started = Instant::now();
    let main = store::connect(database_url, 3).await?;
    store::migrate::run(&main).await?;
    let keyring = Keyring::new(crate::pii::startup::open_kek(&main, pii_key_file).await?);
    let stamp = format!(
        "{}_{}",
        std::process::id(),
        started.elapsed().as_nanos() % 1_000_000
    );
    let (schema, cutoff) = match &mode {
        Mode::Rebuild => (format!("vouch_rebuild_{stamp}"), None),
        Mode::Verify => (format!("vouch_verify_{stamp}"), None),
        Mode::Until { cutoff, schema } => {
            if !sql::is_valid_schema_name(schema) {
                return Err(ReplayError::Usage(format!(
                    "schema {schema:?}: use ^[a-z_][a-z0-9_]{{0,62}}$, not public"
                )));
            }
            if sql::schema_exists(&main.get().await?, schema).await? {
                return Err(ReplayError::Usage(format!(
                    "schema {schema} exists already"
                )));
            }
            (schema.clone(), Some(*cutoff))
        }
    };
    let client = main.get().await?;
    crate::store::events::analyze_log(&client).await?;
    let total = crate::store::events::estimate_events(&client).await?;
    drop(client);
    progress.start(total.max(0) as u64);
    sql::create_scratch(&main.get().await?, &schema).await?;
    let outcome = rebuild_then(
        &main,
        &keyring,
        database_url,
        &schema,
        &mode,
        cutoff,
        progress,
    )
    .await;
    if !matches!(mode, Mode::Until { .. }) || outcome.is_err() {
        let _ = sql::drop_schema(&main.get().await?, &schema).await;
    }
    let mut report = outcome?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

async fn rebuild_then(
    main: &Pool,
    keyring: &Keyring,
    database_url: &str,
    schema: &str,
    mode: &Mode,
    cutoff: Option<Cutoff>,
    progress: &dyn Progress,
) -> Result<Report, ReplayError> {
    let scratch = store::connect_in_schema(database_url, schema).await?;
    let mut report = Report::default();
    let mut scratch_client = scratch.get().await?;
    let log = Log {
        pool: main,
        keyring,
    };
    let after = apply_all(
        &log,
        &mut scratch_client,
        LogPosition::default(),
        false,
        cutoff,
        &mut report,
        progress,
    )
    .await?;
    if matches!(mode, Mode::Rebuild) {
        // Before the indexes exist, and before the lock: under it, only the
        // keys used since are written.
        sql::carry_usage(&main.get().await?, schema).await?;
    }
    sql::index_scratch(&main.get().await?, schema).await?;
    sql::analyze_scratch(&main.get().await?, schema).await?;
    let lock = match mode {
        Mode::Until { .. } => return Ok(report),
        // Writers wait; readers go on. Then nothing committed is missing.
        Mode::Verify => "SHARE",
        // Everyone waits for the few milliseconds of catch-up and swap.
        Mode::Rebuild => "ACCESS EXCLUSIVE",
    };
    let mut client = main.get().await?;
    let tx = client.transaction().await?;
    sql::lock_live(&tx, lock).await?;
    apply_all(
        &log,
        &mut scratch_client,
        after,
        true,
        None,
        &mut report,
        progress,
    )
    .await?;
    let retired = format!("{schema}_old");
    match mode {
        Mode::Verify => report.drift = sql::find_drift(&tx, schema, 20).await?,
        _ => sql::swap_in(&tx, schema, &retired).await?,
    }
    tx.commit().await?;
    if matches!(mode, Mode::Rebuild) {
        sql::drop_schema(&client, &retired).await?;
    }
    Ok(report)
}

/// Applies every event after `after` into the scratch schema, a batch per
/// transaction. Reading runs ahead on another connection, up to
/// [`READ_AHEAD`] batches, so reading the log and writing the read models
/// overlap and neither waits for the other's slower batches.
async fn apply_all(
    log: &Log<'_>,
    scratch: &mut deadpool_postgres::Client,
    after: LogPosition,
    unbounded: bool,
    cutoff: Option<Cutoff>,
    report: &mut Report,
    progress: &dyn Progress,
) -> Result<LogPosition, ReplayError> {
    let reader = log.pool.get().await?;
    let (batches, mut received) = tokio::sync::mpsc::channel(READ_AHEAD);
    let read = async move {
        let mut after = after;
        loop {
            let query = LogQuery {
                after,
                limit: BATCH,
                unbounded,
                ..LogQuery::default()
            };
            let events = open_and_decode(
                &reader,
                log.keyring,
                read_log_decoded(&reader, &query).await?,
            )
            .await?;
            let Some(last) = events.last().map(|(e, _)| e.cursor()) else {
                return Ok::<_, ReplayError>(after);
            };
            after = last;
            if batches.send(events).await.is_err() {
                return Ok(after);
            }
        }
    };
    let apply = async {
        while let Some(events) = received.recv().await {
            let included: Vec<&(RecordedEvent, AnyEvent)> = events
                .iter()
                .filter(|(e, _)| cutoff.is_none_or(|c| c.includes(e)))
                .collect();
            let tx = scratch.transaction().await?;
            projections::apply_batch(&tx, &included).await?;
            tx.commit().await?;
            report.applied += included.len() as u64;
            report.events += events.len() as u64;
            progress.advance(events.len() as u64);
        }
        Ok::<_, ReplayError>(())
    };
    let (last, ()) = futures_util::future::try_join(read, apply).await?;
    Ok(last)
}

/// Where replay reads the log from, and the keys its personal fields open with.
struct Log<'a> {
    pool: &'a Pool,
    keyring: &'a Keyring,
}

/// Opens the sealed fields of the events left undecoded (those with personal
/// fields) and decodes them: an erased person's fields read as erased.
async fn open_and_decode(
    client: &impl deadpool_postgres::GenericClient,
    keyring: &Keyring,
    mut events: Vec<(RecordedEvent, Option<AnyEvent>)>,
) -> Result<Vec<(RecordedEvent, AnyEvent)>, ReplayError> {
    let sealed = events
        .iter_mut()
        .filter(|(_, decoded)| decoded.is_none())
        .map(|(e, _)| StoredPayload {
            event_type: &e.event_type,
            stream_id: e.stream_id,
            data: &mut e.data,
            metadata: None,
        })
        .collect();
    keyring.open_payloads(client, sealed).await?;
    events
        .into_iter()
        .map(|(mut e, decoded)| {
            let event = match decoded {
                Some(event) => event,
                None => AnyEvent::decode(&e.event_type, e.schema_version, e.data.take())
                    .map_err(|err| ReplayError::Store(StoreError::Decode(err.to_string())))?,
            };
            Ok((e, event))
        })
        .collect()
}

/// The read models a replay rebuilds.
pub fn read_models() -> &'static [&'static str] {
    &READ_MODELS
}
