//! Signing keys: the `signing_keys` read model (public halves, from the log)
//! and `signing_key_secrets` (private halves, never in the log).

use super::StoreError;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use uuid::Uuid;

/// Advisory-lock key while creating the first signing key ("vouch-sk").
const SIGNING_LOCK: i64 = 0x766f_7563_682d_736b;

/// An unretired signing key as stored, with its private half if this
/// database holds it.
#[derive(Debug)]
pub struct StoredSigningKey {
    /// The key id of JWT headers.
    pub kid: String,
    /// The base64url public key.
    pub public_key: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// The 32-byte private seed.
    pub private_key: Option<Vec<u8>>,
}

/// Serialises the creation of signing keys until the transaction ends.
pub async fn lock_creation(c: &impl GenericClient) -> Result<(), StoreError> {
    c.execute("SELECT pg_advisory_xact_lock($1)", &[&SIGNING_LOCK])
        .await?;
    Ok(())
}

/// How many keys are not retired.
pub async fn count_unretired(c: &impl GenericClient) -> Result<i64, StoreError> {
    let row = c
        .query_one(
            "SELECT count(*) FROM signing_keys WHERE retired_at IS NULL",
            &[],
        )
        .await?;
    Ok(row.try_get(0)?)
}

/// Stores a key's private half.
pub async fn create_secret(
    c: &impl GenericClient,
    kid: &str,
    private_key: &[u8],
    created_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO signing_key_secrets (kid, private_key, created_at) VALUES ($1, $2, $3)",
        &[&kid, &private_key, &created_at],
    )
    .await?;
    Ok(())
}

/// The unretired keys' stream ids and creation times, oldest first.
pub async fn find_unretired_ids(
    c: &impl GenericClient,
) -> Result<Vec<(Uuid, DateTime<Utc>)>, StoreError> {
    let rows = c
        .query(
            "SELECT id, created_at FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at, id",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, tokio_postgres::Error>>()?)
}

/// The unretired keys with their private halves, oldest first.
pub async fn find_unretired(c: &impl GenericClient) -> Result<Vec<StoredSigningKey>, StoreError> {
    let rows = c
        .query(
            "SELECT k.kid, k.public_key, k.created_at, s.private_key FROM signing_keys k \
             LEFT JOIN signing_key_secrets s ON s.kid = k.kid \
             WHERE k.retired_at IS NULL ORDER BY k.created_at, k.id",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            Ok(StoredSigningKey {
                kid: r.try_get(0)?,
                public_key: r.try_get(1)?,
                created_at: r.try_get(2)?,
                private_key: r.try_get(3)?,
            })
        })
        .collect::<Result<_, tokio_postgres::Error>>()?)
}
