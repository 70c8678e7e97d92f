//! Start-up: load the key-encryption key and check it against the database.
//! A key that would make stored personal data unreadable, or read it as
//! garbage, stops the service with a message that says what to do.

use super::Kek;
use crate::auth::key_file::{self, KeyFileError};
use crate::store::{pii_keys, Pool, StoreError};
use std::path::Path;

/// Why the key-encryption key was refused.
#[derive(Debug, thiserror::Error)]
pub enum KekError {
    /// The file could not be read or created.
    #[error(transparent)]
    File(#[from] KeyFileError),
    /// The database could not be read.
    #[error("pii keys: {0}")]
    Store(#[from] StoreError),
    /// The file holds another key than the one this database's data keys are
    /// wrapped with.
    #[error(
        "pii key file {path}: holds another key than this database's (fingerprint {found}, \
         the database expects {expected}); use the deployment's own VOUCH_PII_KEY_FILE"
    )]
    WrongKey {
        /// The file.
        path: String,
        /// The file's key's fingerprint.
        found: String,
        /// The recorded fingerprint.
        expected: String,
    },
    /// The file is missing but the database has data wrapped with a key.
    #[error(
        "pii key file {path}: missing, but this database holds personal data keys wrapped \
         with a key (fingerprint {expected}); restore the file, a new key would read none of them"
    )]
    Missing {
        /// The file.
        path: String,
        /// The recorded fingerprint, if any.
        expected: String,
    },
    /// Data keys exist but no fingerprint says which key wraps them.
    #[error(
        "pii keys: this database holds personal data keys but no record of the key that \
         wraps them (table pii_kek); restore it from a backup with the key file"
    )]
    RecordLost,
    /// The log holds sealed personal fields but no data key is stored.
    #[error(
        "pii keys: the log holds sealed personal fields but table pii_subject_keys is empty; \
         the data keys were lost: restore the table from a backup (with its key file), \
         nothing of those people could be read"
    )]
    DataKeysLost,
}

/// Loads the KEK from `path` (creating it only for a database that has none)
/// and checks it against the fingerprint the database recorded.
pub async fn open_kek(pool: &Pool, path: &Path) -> Result<Kek, KekError> {
    let client = pool.get().await.map_err(StoreError::from)?;
    let record = pii_keys::kek_record(&client).await?;
    if !record.has_data_keys && pii_keys::log_has_sealed_fields(&client).await? {
        return Err(KekError::DataKeysLost);
    }
    let shown = path.display().to_string();
    let kek = match key_file::read(path, "pii")? {
        Some(secret) => Kek::from_secret(&secret),
        None if record.fingerprint.is_some() || record.has_data_keys => {
            return Err(KekError::Missing {
                path: shown,
                expected: record.fingerprint.unwrap_or_else(|| "unknown".into()),
            })
        }
        None => Kek::from_secret(&key_file::read_or_create(path, "pii")?.0),
    };
    let expected = match record.fingerprint {
        Some(fingerprint) => fingerprint,
        None if record.has_data_keys => return Err(KekError::RecordLost),
        None => pii_keys::record_kek(&client, kek.fingerprint()).await?,
    };
    if expected != kek.fingerprint() {
        return Err(KekError::WrongKey {
            path: shown,
            found: kek.fingerprint().to_owned(),
            expected,
        });
    }
    Ok(kek)
}
