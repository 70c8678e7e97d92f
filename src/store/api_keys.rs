//! The `api_keys` read model, and the batched `last_used_at` of keys.

use super::rows::{query_all, query_opt};
use super::StoreError;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use uuid::Uuid;

/// A row of `api_keys`.
#[derive(Debug, Clone)]
pub struct KeyRow {
    /// Its id (UUID v7).
    pub id: Uuid,
    /// Owning org.
    pub org_id: Uuid,
    /// The key's label, as its creator named it.
    pub name: String,
    /// First 12 characters of the key.
    pub prefix: String,
    /// Hex SHA-256 of the key; never serialised to clients.
    pub key_hash: String,
    /// The scopes the key grants.
    pub scopes: Vec<String>,
    /// When the key stops working (none: never).
    pub expires_at: Option<DateTime<Utc>>,
    /// Revocation time.
    pub revoked_at: Option<DateTime<Utc>>,
    /// The key it replaced.
    pub rotated_from: Option<Uuid>,
    /// Issue time.
    pub created_at: DateTime<Utc>,
    /// Last successful verification or authentication (batched).
    pub last_used_at: Option<DateTime<Utc>>,
}

impl KeyRow {
    /// The row an `api_key.created` puts in the read model: the one mapping
    /// the projection, replay's bulk insert and the creator's answer share.
    pub fn created(
        envelope: &super::events::RecordedEvent,
        event: &crate::domain::api_key::ApiKeyEvent,
    ) -> Option<Self> {
        let crate::domain::api_key::ApiKeyEvent::Created {
            org_id,
            name,
            prefix,
            key_hash,
            scopes,
            expires_at,
            rotated_from,
            ..
        } = event
        else {
            return None;
        };
        Some(Self {
            id: envelope.stream_id,
            org_id: *org_id,
            name: name.as_str().to_owned(),
            prefix: prefix.clone(),
            key_hash: key_hash.clone(),
            scopes: scopes.as_slice().to_vec(),
            expires_at: *expires_at,
            revoked_at: None,
            rotated_from: *rotated_from,
            created_at: envelope.occurred_at,
            last_used_at: None,
        })
    }
}

impl KeyRow {
    /// This row after a just-recorded event of its own stream: what the
    /// projection changes, so a command that read the row as its stream
    /// stood needs no read after its commit.
    pub fn then(
        mut self,
        envelope: &super::events::RecordedEvent,
        event: &crate::domain::stored::AnyEvent,
    ) -> Self {
        use crate::domain::api_key::ApiKeyEvent;
        use crate::domain::stored::AnyEvent;
        match event {
            AnyEvent::ApiKey(ApiKeyEvent::Revoked { .. }) => {
                self.revoked_at = Some(envelope.occurred_at);
            }
            AnyEvent::ApiKey(ApiKeyEvent::ExpirySet { expires_at }) => {
                self.expires_at = Some(*expires_at);
            }
            _ => {}
        }
        self
    }
}

const KEY_COLUMNS: &str = "id, org_id, name, prefix, key_hash, scopes, expires_at, revoked_at, \
    rotated_from, created_at, last_used_at";

fn key_row(r: &Row) -> Result<KeyRow, tokio_postgres::Error> {
    Ok(KeyRow {
        id: r.try_get(0)?,
        org_id: r.try_get(1)?,
        name: r.try_get(2)?,
        prefix: r.try_get(3)?,
        key_hash: r.try_get(4)?,
        scopes: r.try_get(5)?,
        expires_at: r.try_get(6)?,
        revoked_at: r.try_get(7)?,
        rotated_from: r.try_get(8)?,
        created_at: r.try_get(9)?,
        last_used_at: r.try_get(10)?,
    })
}

/// Finds a key by id.
pub async fn find_key(c: &impl GenericClient, id: Uuid) -> Result<Option<KeyRow>, StoreError> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1");
    query_opt(c, &sql, &[&id], key_row).await
}

/// Finds a key by the hex SHA-256 of its plaintext.
pub async fn find_key_by_hash(
    c: &impl GenericClient,
    key_hash: &str,
) -> Result<Option<KeyRow>, StoreError> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1");
    query_opt(c, &sql, &[&key_hash], key_row).await
}

/// A page of an org's keys ordered by id, after `after`.
pub async fn find_keys(
    c: &impl GenericClient,
    org_id: Uuid,
    include_revoked: bool,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<KeyRow>, StoreError> {
    let sql = format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE org_id = $1 AND id > $2 \
         AND ($3 OR revoked_at IS NULL) ORDER BY id LIMIT $4"
    );
    let after = after.unwrap_or(Uuid::nil());
    query_all(
        c,
        &sql,
        &[&org_id, &after, &include_revoked, &limit],
        key_row,
    )
    .await
}

/// Writes batched `last_used_at` values; never moves one backwards.
pub async fn save_key_usage(
    c: &impl GenericClient,
    uses: &[(Uuid, DateTime<Utc>)],
) -> Result<(), StoreError> {
    let (ids, times): (Vec<Uuid>, Vec<DateTime<Utc>>) = uses.iter().copied().unzip();
    let sql = "UPDATE api_keys k SET last_used_at = u.at \
               FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, at) \
               WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)";
    let statement = c.prepare_cached(sql).await?;
    c.execute(&statement, &[&ids, &times]).await?;
    Ok(())
}
