//! The SQL of `idempotency_records`: requests sent with an Idempotency-Key.

use super::StoreError;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

/// What is stored of an earlier request with the same scope and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// Keyed hash of the earlier request's method, path and body.
    pub fingerprint: Vec<u8>,
    /// When the earlier request claimed the key.
    pub created_at: DateTime<Utc>,
    /// Its response, once stored: the status and the sealed response.
    pub response: Option<(u16, Vec<u8>)>,
}

const FIND: &str = "SELECT fingerprint, status, response, created_at FROM idempotency_records \
                    WHERE scope = $1 AND key = $2 AND created_at >= $3";

const DELETE_EXPIRED_ONE: &str =
    "DELETE FROM idempotency_records WHERE scope = $1 AND key = $2 AND created_at < $3";

const INSERT_CLAIM: &str = "INSERT INTO idempotency_records (scope, key, fingerprint, created_at) \
                            VALUES ($1, $2, $3, $4)";

// The claim may or may not exist (a request that changed nothing has none);
// a stored response is never replaced.
const SAVE_RESPONSE: &str = "INSERT INTO idempotency_records \
         (scope, key, fingerprint, created_at, status, response) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (scope, key) DO UPDATE SET status = EXCLUDED.status, response = EXCLUDED.response \
     WHERE idempotency_records.fingerprint = EXCLUDED.fingerprint \
       AND idempotency_records.status IS NULL";

const DELETE_EXPIRED: &str = "DELETE FROM idempotency_records WHERE created_at < $1";

/// The record of `(scope, key)` created at or after `since`. An older one is
/// deleted first, so that the key can be used again.
pub async fn find_record(
    client: &impl GenericClient,
    scope: &str,
    key: &str,
    since: DateTime<Utc>,
) -> Result<Option<IdempotencyRecord>, StoreError> {
    client
        .execute(DELETE_EXPIRED_ONE, &[&scope, &key, &since])
        .await?;
    let row = client.query_opt(FIND, &[&scope, &key, &since]).await?;
    Ok(row.map(|row| {
        let status: Option<i16> = row.get(1);
        let response: Option<Vec<u8>> = row.get(2);
        IdempotencyRecord {
            fingerprint: row.get(0),
            created_at: row.get(3),
            response: status
                .zip(response)
                .map(|(s, r)| (u16::try_from(s).unwrap_or_default(), r)),
        }
    }))
}

/// Claims `(scope, key)` inside a command's transaction. A concurrent claim
/// of the same pair waits for the other transaction, then fails with
/// [`super::UniqueConstraint::IdempotencyKey`] if it committed.
pub async fn create_claim(
    tx: &impl GenericClient,
    scope: &str,
    key: &str,
    fingerprint: &[u8],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    tx.execute(INSERT_CLAIM, &[&scope, &key, &fingerprint, &now])
        .await?;
    Ok(())
}

/// The claim of [`create_claim`] as a write, to pipeline with the command's.
pub fn claim(
    scope: &str,
    key: &str,
    fingerprint: &[u8],
    now: DateTime<Utc>,
) -> super::pipeline::Write {
    super::pipeline::Write::new(
        INSERT_CLAIM,
        super::pipeline::params![scope.to_owned(), key.to_owned(), fingerprint.to_vec(), now],
    )
}

/// Stores the response of the request that holds (or, for a request that
/// committed nothing, takes) the claim. Returns whether it was stored.
pub async fn save_response(
    client: &impl GenericClient,
    scope: &str,
    key: &str,
    fingerprint: &[u8],
    now: DateTime<Utc>,
    status: u16,
    sealed: &[u8],
) -> Result<bool, StoreError> {
    let status = i16::try_from(status).unwrap_or(i16::MAX);
    let n = client
        .execute(
            SAVE_RESPONSE,
            &[&scope, &key, &fingerprint, &now, &status, &sealed],
        )
        .await?;
    Ok(n == 1)
}

/// Forgets records created before `before`.
pub async fn delete_expired(
    client: &impl GenericClient,
    before: DateTime<Utc>,
) -> Result<u64, StoreError> {
    Ok(client.execute(DELETE_EXPIRED, &[&before]).await?)
}
