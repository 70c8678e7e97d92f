//! Each person's data key: created on first use, unwrapped with the KEK when
//! needed, destroyed by erasure.

use super::keys::{DataKey, Kek, PiiError};
use crate::store::{pii_keys, StoreError};
use deadpool_postgres::GenericClient;
use std::collections::HashMap;
use uuid::Uuid;

/// Why a data key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored data key does not unwrap with this KEK.
    #[error("the data key of {0} does not unwrap: {1}")]
    Unwrap(Uuid, PiiError),
}

/// The data keys of people, behind the KEK.
#[derive(Clone, Debug)]
pub struct Keyring {
    kek: Kek,
}

impl Keyring {
    /// A keyring whose data keys are wrapped by `kek`.
    pub fn new(kek: Kek) -> Self {
        Self { kek }
    }

    /// The key to seal a person's new personal fields with, created on first
    /// use; `None` once the person is erased (nothing of theirs is written).
    pub async fn key_for_writing(
        &self,
        c: &impl GenericClient,
        subject: Uuid,
    ) -> Result<Option<DataKey>, KeyringError> {
        if let Some(keys) = self.keys_for_reading(c, &[subject]).await?.remove(&subject) {
            return Ok(keys);
        }
        let fresh = DataKey::generate();
        let stored = pii_keys::insert_data_key(c, subject, &self.kek.wrap(subject, &fresh)).await?;
        stored.map(|w| self.unwrap(subject, &w)).transpose()
    }

    /// The keys of these people: `Some(key)` for the living, `None` for the
    /// erased; people who never had personal data are not in the map.
    pub async fn keys_for_reading(
        &self,
        c: &impl GenericClient,
        subjects: &[Uuid],
    ) -> Result<HashMap<Uuid, Option<DataKey>>, KeyringError> {
        let mut out = HashMap::new();
        for (subject, wrapped) in pii_keys::wrapped_keys(c, subjects).await? {
            let key = wrapped.map(|w| self.unwrap(subject, &w)).transpose()?;
            out.insert(subject, key);
        }
        Ok(out)
    }

    /// Destroys a person's data key: what was sealed with it can never be
    /// opened again. Whether anything changed (false: erased already).
    pub async fn erase(&self, c: &impl GenericClient, subject: Uuid) -> Result<bool, KeyringError> {
        Ok(pii_keys::erase_data_key(c, subject).await?)
    }

    fn unwrap(&self, subject: Uuid, wrapped: &[u8]) -> Result<DataKey, KeyringError> {
        self.kek
            .unwrap(subject, wrapped)
            .map_err(|e| KeyringError::Unwrap(subject, e))
    }
}
