//! Set-based inserts for replay: a run of creations of one kind is streamed
//! into its table with one binary `COPY` instead of one statement per event.
//! The values are the ones the per-event projections write.

use super::api_keys::KeyRow;
use super::events::RecordedEvent;
use super::StoreError;
use crate::domain::api_key::ApiKeyEvent;
use crate::domain::session::SessionEvent;
use crate::domain::stored::AnyEvent;
use deadpool_postgres::Transaction;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

/// The creations that are inserted set-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkKind {
    /// `api_key.created`.
    Keys,
    /// `session.started`.
    Sessions,
}

impl BulkKind {
    /// The kind of set-based insert an event belongs to, if any.
    pub fn of(event: &AnyEvent) -> Option<Self> {
        match event {
            AnyEvent::ApiKey(ApiKeyEvent::Created { .. }) => Some(Self::Keys),
            AnyEvent::Session(SessionEvent::Started { .. }) => Some(Self::Sessions),
            _ => None,
        }
    }
}

/// A stored event with its decoded form.
pub type Decoded<'a> = (&'a RecordedEvent, &'a AnyEvent);

const KEYS: &str = "COPY api_keys (id, org_id, name, prefix, key_hash, scopes, expires_at, rotated_from, created_at) \
    FROM STDIN (FORMAT binary)";
const KEY_TYPES: [Type; 9] = [
    Type::UUID,
    Type::UUID,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT_ARRAY,
    Type::TIMESTAMPTZ,
    Type::UUID,
    Type::TIMESTAMPTZ,
];

const SESSIONS: &str = "COPY sessions (id, user_id, refresh_token_hash, created_at, expires_at, ip, user_agent, version, amr) \
    FROM STDIN (FORMAT binary)";
const SESSION_TYPES: [Type; 9] = [
    Type::UUID,
    Type::UUID,
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::TEXT,
    Type::INT4,
    Type::TEXT_ARRAY,
];

const SESSION_TOKENS: &str =
    "COPY session_refresh_tokens (session_id, refresh_token_hash) FROM STDIN (FORMAT binary)";
const SESSION_TOKEN_TYPES: [Type; 2] = [Type::UUID, Type::TEXT];

/// Inserts a run of events of one [`BulkKind`].
pub async fn insert_run(
    tx: &Transaction<'_>,
    kind: BulkKind,
    run: &[Decoded<'_>],
) -> Result<(), StoreError> {
    match kind {
        BulkKind::Keys => {
            let rows = run
                .iter()
                .map(|(e, event)| {
                    match event {
                        AnyEvent::ApiKey(event) => KeyRow::created(e, event),
                        _ => None,
                    }
                    .ok_or_else(|| out_of_run(e, kind))
                })
                .collect::<Result<Vec<KeyRow>, StoreError>>()?;
            copy(tx, KEYS, &KEY_TYPES, rows.iter().map(key_values)).await
        }
        BulkKind::Sessions => {
            let rows = run
                .iter()
                .map(|(e, event)| session_row(e, event).ok_or_else(|| out_of_run(e, kind)))
                .collect::<Result<Vec<SessionRow<'_>>, StoreError>>()?;
            copy(
                tx,
                SESSIONS,
                &SESSION_TYPES,
                rows.iter().map(session_values),
            )
            .await?;
            let tokens = rows
                .iter()
                .map(|s| [&s.id as &(dyn ToSql + Sync), s.refresh_token_hash]);
            copy(tx, SESSION_TOKENS, &SESSION_TOKEN_TYPES, tokens).await
        }
    }
}

fn out_of_run(e: &RecordedEvent, kind: BulkKind) -> StoreError {
    StoreError::Decode(format!("{} in a run of {kind:?}", e.event_type))
}

/// Streams `rows` into a table with one binary `COPY`.
async fn copy<'r, const N: usize>(
    tx: &Transaction<'_>,
    statement: &str,
    types: &[Type; N],
    rows: impl Iterator<Item = [&'r (dyn ToSql + Sync); N]>,
) -> Result<(), StoreError> {
    let sink = tx.copy_in(statement).await?;
    let writer = BinaryCopyInWriter::new(sink, types);
    let mut writer = std::pin::pin!(writer);
    for row in rows {
        writer.as_mut().write(&row).await?;
    }
    writer.finish().await?;
    Ok(())
}

fn key_values(k: &KeyRow) -> [&(dyn ToSql + Sync); 9] {
    [
        &k.id,
        &k.org_id,
        &k.name,
        &k.prefix,
        &k.key_hash,
        &k.scopes,
        &k.expires_at,
        &k.rotated_from,
        &k.created_at,
    ]
}

/// The `sessions` row a `session.started` puts in the read model.
struct SessionRow<'a> {
    id: uuid::Uuid,
    user_id: &'a uuid::Uuid,
    refresh_token_hash: &'a String,
    created_at: &'a chrono::DateTime<chrono::Utc>,
    expires_at: &'a chrono::DateTime<chrono::Utc>,
    ip: Option<String>,
    user_agent: Option<String>,
    version: i32,
    amr: Vec<&'static str>,
}

fn session_row<'a>(e: &'a RecordedEvent, event: &'a AnyEvent) -> Option<SessionRow<'a>> {
    let AnyEvent::Session(SessionEvent::Started {
        user_id,
        refresh_token_hash,
        expires_at,
        ip,
        user_agent,
        amr,
    }) = event
    else {
        return None;
    };
    Some(SessionRow {
        id: e.stream_id,
        user_id,
        refresh_token_hash,
        created_at: &e.occurred_at,
        expires_at,
        ip: super::projections::known(ip),
        user_agent: super::projections::known(user_agent),
        version: e.version,
        amr: amr.iter().map(|m| m.as_str()).collect(),
    })
}

fn session_values<'a>(s: &'a SessionRow<'_>) -> [&'a (dyn ToSql + Sync); 9] {
    [
        &s.id,
        s.user_id,
        s.refresh_token_hash,
        s.created_at,
        s.expires_at,
        &s.ip,
        &s.user_agent,
        &s.version,
        &s.amr,
    ]
}
