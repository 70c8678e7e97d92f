//! Each person's data key: created on first use, unwrapped with the KEK when
//! needed, destroyed by erasure.

use super::fields::{
    is_sealed, metadata_subject, open_metadata, open_payload, personal_fields, subject_of,
    withhold_metadata, withhold_payload, METADATA_FIELDS,
};
use super::keys::{DataKey, Kek, PiiError};
use crate::store::{pii_keys, StoreError};
use deadpool_postgres::GenericClient;
use serde_json::Value;
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
    /// A sealed field's person has no data key at all, not even an erased one:
    /// the key was lost, and the field cannot be read.
    #[error("the data key of {0} is missing: personal fields sealed for them cannot be read")]
    Lost(Uuid),
    /// A sealed field does not open with its person's key.
    #[error("a personal field of {0} does not open: {1}")]
    Open(Uuid, PiiError),
}

/// One stored payload whose sealed fields are to be opened in place.
pub struct StoredPayload<'a> {
    /// Stored event type.
    pub event_type: &'a str,
    /// The event's stream.
    pub stream_id: Uuid,
    /// The payload.
    pub data: &'a mut Value,
    /// The event's metadata, when it was read (its caller's address and agent).
    pub metadata: Option<&'a mut Value>,
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

    /// A keyed one-way index of a personal value (see [`Kek::blind`]).
    pub fn blind(&self, scope: &str, value: &str) -> String {
        self.kek.blind(scope, value)
    }

    /// Destroys a person's data key: what was sealed with it can never be
    /// opened again. Whether anything changed (false: erased already).
    pub async fn erase(&self, c: &impl GenericClient, subject: Uuid) -> Result<bool, KeyringError> {
        Ok(pii_keys::erase_data_key(c, subject).await?)
    }

    /// Opens the sealed fields of stored payloads: as written for the living,
    /// `"[erased]"` for the erased (and for anyone whose key is gone). One
    /// query for all their people.
    pub async fn open_payloads(
        &self,
        c: &impl GenericClient,
        mut payloads: Vec<StoredPayload<'_>>,
    ) -> Result<(), KeyringError> {
        // (payload, subject of its data, subject of its metadata)
        let subjects: Vec<(usize, Option<Uuid>, Option<Uuid>)> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let data = subject_of(p.event_type, p.stream_id, p.data);
                let metadata = p
                    .metadata
                    .as_deref()
                    .and_then(|m| metadata_subject(p.event_type, p.stream_id, p.data, m));
                (i, data, metadata)
            })
            .filter(|(_, d, m)| d.is_some() || m.is_some())
            .collect();
        if subjects.is_empty() {
            return Ok(());
        }
        let mut wanted: Vec<Uuid> = subjects
            .iter()
            .flat_map(|(_, d, m)| [*d, *m])
            .flatten()
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let keys = self.keys_for_reading(c, &wanted).await?;
        // An erased person's key is `None`; a person with no key at all, whose
        // fields are sealed, lost theirs: an error, never read as erased.
        let key_of = |s: Uuid, sealed: bool| match keys.get(&s) {
            Some(key) => Ok(key.as_ref()),
            None if sealed => Err(KeyringError::Lost(s)),
            None => Ok(None),
        };
        for (i, data_subject, metadata_subject) in subjects {
            let p = &mut payloads[i];
            if let Some(s) = data_subject {
                let key = key_of(s, any_sealed(personal_fields(p.event_type), p.data))?;
                open_payload(key, s, p.event_type, p.data).map_err(|e| KeyringError::Open(s, e))?;
            }
            if let (Some(s), Some(metadata)) = (metadata_subject, p.metadata.as_deref_mut()) {
                let key = key_of(s, any_sealed(&METADATA_FIELDS, metadata))?;
                open_metadata(key, s, metadata).map_err(|e| KeyringError::Open(s, e))?;
            }
        }
        Ok(())
    }

    /// Opens the sealed fields that are `person`'s, as for their own copy of
    /// their data: everyone else's personal fields are withheld.
    pub async fn open_payloads_of(
        &self,
        c: &impl GenericClient,
        mut payloads: Vec<StoredPayload<'_>>,
        person: Uuid,
    ) -> Result<(), KeyringError> {
        for p in payloads.iter_mut() {
            if subject_of(p.event_type, p.stream_id, p.data).is_some_and(|s| s != person) {
                withhold_payload(p.event_type, p.data);
            }
            if let Some(metadata) = p.metadata.as_deref_mut() {
                if metadata_subject(p.event_type, p.stream_id, p.data, metadata) != Some(person) {
                    withhold_metadata(metadata);
                }
            }
        }
        self.open_payloads(c, payloads).await
    }

    fn unwrap(&self, subject: Uuid, wrapped: &[u8]) -> Result<DataKey, KeyringError> {
        self.kek
            .unwrap(subject, wrapped)
            .map_err(|e| KeyringError::Unwrap(subject, e))
    }
}

/// Whether any of `fields` of `data` holds a sealed value.
fn any_sealed(fields: &[&str], data: &Value) -> bool {
    fields.iter().any(|f| data.get(*f).is_some_and(is_sealed))
}
