//! Personal fields at the application's edge to the log: sealed with their
//! person's data key before an event is appended, opened after the log is
//! read (see `docs/personal-data.md`).

use super::{App, AppError};
use crate::pii::fields::{metadata_subject, seal_metadata, seal_payload, subject_of};
use crate::pii::keyring::{Keyring, KeyringError, StoredPayload};
use crate::pii::DataKey;
use crate::store::events::{RecordedEvent, TypedEvent};
use deadpool_postgres::GenericClient;
use std::collections::hash_map::{Entry, HashMap};
use uuid::Uuid;

impl From<KeyringError> for AppError {
    fn from(e: KeyringError) -> Self {
        match e {
            KeyringError::Store(e) => e.into(),
            other => Self::Internal(Box::new(other)),
        }
    }
}

impl App {
    pub(crate) fn keyring(&self) -> Result<&Keyring, AppError> {
        self.pii
            .as_ref()
            .ok_or_else(|| AppError::Internal("no personal-data key is loaded".into()))
    }

    /// Seals the personal fields of events about to be appended. A person who
    /// was erased gets nothing written: 404.
    pub(crate) async fn seal(
        &self,
        client: &impl GenericClient,
        recorded: &mut [TypedEvent],
    ) -> Result<(), AppError> {
        // One look-up per person, however many of the command's events they are in.
        let mut keys = HashMap::new();
        for e in recorded.iter_mut() {
            let env = &mut e.envelope;
            if let Some(subject) = subject_of(&env.event_type, env.stream_id, &env.data) {
                let key = self.key_for_writing(client, &mut keys, subject).await?;
                seal_payload(key, subject, &env.event_type, &mut env.data);
            }
            let by = metadata_subject(&env.event_type, env.stream_id, &env.data, &env.metadata);
            if let Some(subject) = by {
                let key = self.key_for_writing(client, &mut keys, subject).await?;
                seal_metadata(key, subject, &mut env.metadata);
            }
        }
        Ok(())
    }

    /// A person's key for sealing, from `keys` or else from the keyring (and
    /// then kept in `keys`); 404 for an erased person.
    async fn key_for_writing<'k>(
        &self,
        client: &impl GenericClient,
        keys: &'k mut HashMap<Uuid, DataKey>,
        subject: Uuid,
    ) -> Result<&'k DataKey, AppError> {
        match keys.entry(subject) {
            Entry::Occupied(known) => Ok(known.into_mut()),
            Entry::Vacant(slot) => {
                let key = self
                    .keyring()?
                    .key_for_writing(client, subject)
                    .await?
                    .ok_or(AppError::NotFound)?;
                Ok(slot.insert(key))
            }
        }
    }

    /// Opens the sealed fields of stored payloads (see [`Keyring::open_payloads`]).
    pub(crate) async fn open(
        &self,
        client: &impl GenericClient,
        payloads: Vec<StoredPayload<'_>>,
    ) -> Result<(), AppError> {
        Ok(self.keyring()?.open_payloads(client, payloads).await?)
    }

    /// Every event concerning a user, with their personal fields readable and
    /// everyone else's withheld: the right of access (the user or `vouch:admin`).
    pub async fn personal_data(
        &self,
        ctx: &super::Ctx,
        user_id: Uuid,
    ) -> Result<Vec<RecordedEvent>, AppError> {
        self.require_self_or_admin(ctx, user_id)?;
        let client = self.pool.get().await?;
        crate::store::users::find_user(&client, user_id)
            .await?
            .ok_or(AppError::NotFound)?;
        let mut events = crate::store::events::read_concerning(&client, user_id).await?;
        self.keyring()?
            .open_payloads_of(&client, stored_payloads(&mut events), user_id)
            .await?;
        Ok(events)
    }

    /// Opens the sealed fields of events read from the log.
    pub(crate) async fn open_recorded(
        &self,
        client: &impl GenericClient,
        events: &mut [RecordedEvent],
    ) -> Result<(), AppError> {
        self.open(client, stored_payloads(events)).await
    }
}

/// The payloads and metadata of events read from the log, to open in place.
fn stored_payloads(events: &mut [RecordedEvent]) -> Vec<StoredPayload<'_>> {
    events
        .iter_mut()
        .map(|e| StoredPayload {
            event_type: &e.event_type,
            stream_id: e.stream_id,
            data: &mut e.data,
            metadata: Some(&mut e.metadata),
        })
        .collect()
}
