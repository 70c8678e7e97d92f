//! Set-based inserts for replay: a run of creations of one kind becomes a
//! single `INSERT … SELECT FROM UNNEST(…)` instead of one statement per event.
//! The values are the ones the per-event projections write.

use super::api_keys::KeyRow;
use super::events::RecordedEvent;
use super::StoreError;
use crate::domain::api_key::ApiKeyEvent;
use crate::domain::session::SessionEvent;
use crate::domain::stored::AnyEvent;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde_json::Value;
use uuid::Uuid;

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
pub type Decoded<'a> = (&'a RecordedEvent, AnyEvent);

const KEYS: &str = "INSERT INTO api_keys (id, org_id, name, prefix, key_hash, scopes, expires_at, rotated_from, created_at) \
    SELECT u.id, u.org_id, u.name, u.prefix, u.key_hash, ARRAY(SELECT jsonb_array_elements_text(u.scopes)), \
           u.expires_at, u.rotated_from, u.created_at \
    FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::jsonb[], $7::timestamptz[], $8::uuid[], $9::timestamptz[]) \
      AS u(id, org_id, name, prefix, key_hash, scopes, expires_at, rotated_from, created_at)";

const SESSIONS: &str = "INSERT INTO sessions (id, user_id, refresh_token_hash, created_at, expires_at, ip, user_agent, version) \
    SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::text[], $7::text[], $8::int[])";

const SESSION_TOKENS: &str = "INSERT INTO session_refresh_tokens (session_id, refresh_token_hash) \
    SELECT * FROM UNNEST($1::uuid[], $2::text[])";

/// Inserts a run of events of one [`BulkKind`].
pub async fn insert_run(
    c: &impl GenericClient,
    kind: BulkKind,
    run: &[Decoded<'_>],
) -> Result<(), StoreError> {
    match kind {
        BulkKind::Keys => insert_keys(c, run).await,
        BulkKind::Sessions => insert_sessions(c, run).await,
    }
}

fn out_of_run(e: &RecordedEvent, kind: BulkKind) -> StoreError {
    StoreError::Decode(format!("{} in a run of {kind:?}", e.event_type))
}

/// The columns of a set-based `api_keys` insert.
#[derive(Default)]
struct KeyColumns {
    id: Vec<Uuid>,
    org_id: Vec<Uuid>,
    name: Vec<String>,
    prefix: Vec<String>,
    key_hash: Vec<String>,
    scopes: Vec<Value>,
    expires_at: Vec<Option<DateTime<Utc>>>,
    rotated_from: Vec<Option<Uuid>>,
    created_at: Vec<DateTime<Utc>>,
}

async fn insert_keys(c: &impl GenericClient, run: &[Decoded<'_>]) -> Result<(), StoreError> {
    let mut k = KeyColumns::default();
    for (e, event) in run {
        let AnyEvent::ApiKey(event) = event else {
            return Err(out_of_run(e, BulkKind::Keys));
        };
        let Some(row) = KeyRow::created(e, event) else {
            return Err(out_of_run(e, BulkKind::Keys));
        };
        k.id.push(row.id);
        k.org_id.push(row.org_id);
        k.name.push(row.name);
        k.prefix.push(row.prefix);
        k.key_hash.push(row.key_hash);
        k.scopes.push(Value::from(row.scopes));
        k.expires_at.push(row.expires_at);
        k.rotated_from.push(row.rotated_from);
        k.created_at.push(row.created_at);
    }
    let stmt = c.prepare_cached(KEYS).await?;
    c.execute(
        &stmt,
        &[
            &k.id,
            &k.org_id,
            &k.name,
            &k.prefix,
            &k.key_hash,
            &k.scopes,
            &k.expires_at,
            &k.rotated_from,
            &k.created_at,
        ],
    )
    .await?;
    Ok(())
}

/// The columns of a set-based `sessions` insert.
#[derive(Default)]
struct SessionColumns {
    id: Vec<Uuid>,
    user_id: Vec<Uuid>,
    refresh_token_hash: Vec<String>,
    created_at: Vec<DateTime<Utc>>,
    expires_at: Vec<DateTime<Utc>>,
    ip: Vec<Option<String>>,
    user_agent: Vec<Option<String>>,
    version: Vec<i32>,
}

async fn insert_sessions(c: &impl GenericClient, run: &[Decoded<'_>]) -> Result<(), StoreError> {
    let mut s = SessionColumns::default();
    for (e, event) in run {
        let AnyEvent::Session(SessionEvent::Started {
            user_id,
            refresh_token_hash,
            expires_at,
            ip,
            user_agent,
        }) = event.clone()
        else {
            return Err(out_of_run(e, BulkKind::Sessions));
        };
        s.id.push(e.stream_id);
        s.user_id.push(user_id);
        s.refresh_token_hash.push(refresh_token_hash);
        s.created_at.push(e.occurred_at);
        s.expires_at.push(expires_at);
        s.ip.push(ip);
        s.user_agent.push(user_agent);
        s.version.push(e.version);
    }
    let stmt = c.prepare_cached(SESSIONS).await?;
    c.execute(
        &stmt,
        &[
            &s.id,
            &s.user_id,
            &s.refresh_token_hash,
            &s.created_at,
            &s.expires_at,
            &s.ip,
            &s.user_agent,
            &s.version,
        ],
    )
    .await?;
    let tokens = c.prepare_cached(SESSION_TOKENS).await?;
    c.execute(&tokens, &[&s.id, &s.refresh_token_hash]).await?;
    Ok(())
}
