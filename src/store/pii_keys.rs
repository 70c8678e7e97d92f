//! The key-encryption key's fingerprint and the wrapped per-person data keys
//! (`pii_kek`, `pii_subject_keys`): not the log, never replayed.

use super::StoreError;
use deadpool_postgres::GenericClient;
use uuid::Uuid;

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

/// Whether the log holds a sealed registration: personal data that needs data
/// keys. Asked only when no data key is stored, so at most once per deployment
/// on a large log.
pub async fn log_has_sealed_fields(c: &impl GenericClient) -> Result<bool, StoreError> {
    let row = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM auth_events WHERE event_type = 'user.registered' \
             AND data->>'email' LIKE 'pii:v1:%')",
            &[],
        )
        .await?;
    Ok(row.try_get(0)?)
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

/// Stores a person's wrapped data key unless they have a row already (another
/// writer's key, or an erasure); returns the row's key afterwards: `None` if
/// the person was erased.
pub async fn insert_data_key(
    c: &impl GenericClient,
    subject: Uuid,
    wrapped: &[u8],
) -> Result<Option<Vec<u8>>, StoreError> {
    c.execute(
        "INSERT INTO pii_subject_keys (subject_id, wrapped_key) VALUES ($1, $2) \
         ON CONFLICT (subject_id) DO NOTHING",
        &[&subject, &wrapped],
    )
    .await?;
    let row = c
        .query_one(
            "SELECT wrapped_key FROM pii_subject_keys WHERE subject_id = $1",
            &[&subject],
        )
        .await?;
    Ok(row.try_get(0)?)
}

/// The stored rows of these people: `(subject, wrapped key or None if erased)`;
/// people without a row are left out.
pub async fn wrapped_keys(
    c: &impl GenericClient,
    subjects: &[Uuid],
) -> Result<Vec<(Uuid, Option<Vec<u8>>)>, StoreError> {
    let rows = c
        .query(
            "SELECT subject_id, wrapped_key FROM pii_subject_keys WHERE subject_id = ANY($1)",
            &[&subjects],
        )
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// Destroys a person's data key (or records that they are erased, if they
/// never had one); whether anything changed.
pub async fn erase_data_key(c: &impl GenericClient, subject: Uuid) -> Result<bool, StoreError> {
    let changed = c
        .execute(
            "INSERT INTO pii_subject_keys (subject_id, wrapped_key, erased_at) VALUES ($1, NULL, now()) \
             ON CONFLICT (subject_id) DO UPDATE SET wrapped_key = NULL, erased_at = now() \
             WHERE pii_subject_keys.wrapped_key IS NOT NULL",
            &[&subject],
        )
        .await?;
    Ok(changed > 0)
}
