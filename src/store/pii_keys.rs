//! The key-encryption key's fingerprint and the wrapped per-person data keys
//! (`pii_kek`, `pii_subject_keys`): not the log, never replayed.

use super::StoreError;
use deadpool_postgres::GenericClient;

/// What the database knows of the key-encryption key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KekRecord {
    /// The recorded fingerprint, if any.
    pub fingerprint: Option<String>,
    /// Whether any data key is stored (wrapped or erased).
    pub has_data_keys: bool,
}

/// Reads what the database knows of the key-encryption key.
pub async fn kek_record(c: &impl GenericClient) -> Result<KekRecord, StoreError> {
    let row = c
        .query_one(
            "SELECT (SELECT fingerprint FROM pii_kek), EXISTS (SELECT 1 FROM pii_subject_keys)",
            &[],
        )
        .await?;
    Ok(KekRecord {
        fingerprint: row.try_get(0)?,
        has_data_keys: row.try_get(1)?,
    })
}

/// Records `fingerprint` unless one is recorded already; returns the one that
/// is recorded afterwards (another instance's, if it was first).
pub async fn record_kek(c: &impl GenericClient, fingerprint: &str) -> Result<String, StoreError> {
    c.execute(
        "INSERT INTO pii_kek (fingerprint) VALUES ($1) ON CONFLICT (id) DO NOTHING",
        &[&fingerprint],
    )
    .await?;
    let row = c.query_one("SELECT fingerprint FROM pii_kek", &[]).await?;
    Ok(row.try_get(0)?)
}
