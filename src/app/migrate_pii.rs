//! `vouch migrate-pii`: brings a log written before personal fields were
//! sealed to the sealed form. The one time the log is ever rewritten: with
//! every instance stopped, in one transaction, and the chain head it replaces
//! kept in a record signed with the audit key (`docs/personal-data.md`).

use crate::audit::chainer::{self, rewrite_message, CheckpointPolicy};
use crate::audit::key::AuditKey;
use crate::pii::fields::{
    erase_metadata, erase_payload, has_unsealed, metadata_subject, seal_metadata, seal_payload,
    subject_of, METADATA_SUBJECT,
};
use crate::pii::keyring::{Keyring, KeyringError};
use crate::pii::startup::KekError;
use crate::pii::DataKey;
use crate::store::pii_migration::{self, Rewrite, StoredRow};
use crate::store::{audit_chain, migrate, StoreError};
use deadpool_postgres::GenericClient;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use uuid::Uuid;

/// Rows read and rewritten per round trip.
const PAGE: i64 = 5_000;

/// What a migration did.
#[derive(Debug, Clone)]
pub struct PiiMigration {
    /// Events read.
    pub events: u64,
    /// Events rewritten with their personal fields sealed (or erased).
    pub rewritten: u64,
    /// The record of the chain head replaced (none when nothing changed).
    pub rewrite: Option<Rewrite>,
}

/// Why a migration did not run or stopped (nothing is changed then).
#[derive(Debug, thiserror::Error)]
pub enum MigratePiiError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The personal-data key file was refused.
    #[error(transparent)]
    Key(#[from] KekError),
    /// A data key could not be had.
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    /// Something else is connected to the database.
    #[error(
        "{0} other session(s) are connected to the database: stop every vouch instance \
         (and close other clients) before migrate-pii, the only command that rewrites the log"
    )]
    InUse(i64),
}

impl From<deadpool_postgres::PoolError> for MigratePiiError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Self::Store(e.into())
    }
}

impl From<tokio_postgres::Error> for MigratePiiError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Store(e.into())
    }
}

/// Seals every personal field stored in the clear, recomputes the chain and
/// records the head it replaced. Running it again changes nothing.
pub async fn migrate_pii(
    database_url: &str,
    pii_key_file: &Path,
    audit_key: &AuditKey,
    policy: CheckpointPolicy,
) -> Result<PiiMigration, MigratePiiError> {
    let pool = crate::store::connect(database_url, 2).await?;
    migrate::run(&pool).await?;
    let mut client = pool.get().await?;
    migrate::hold_migrations(&client).await?;
    let others = pii_migration::count_other_sessions(&client).await?;
    if others > 0 || !audit_chain::try_lock_chain(&client).await? {
        return Err(MigratePiiError::InUse(others.max(1)));
    }
    let keyring = Keyring::new(crate::pii::startup::open_kek(&pool, pii_key_file).await?);
    // The head replaced is that of the whole log as it stands.
    chainer::chain_pending(&pool, audit_key, policy).await?;
    let replaced = chainer::find_head(&client).await?;

    let tx = client.transaction().await?;
    pii_migration::unprotect_log(&tx).await?;
    let mut sealer = Sealer {
        keyring: &keyring,
        keys: HashMap::new(),
        session_users: HashMap::new(),
    };
    let (mut events, mut rewritten, mut after) = (0u64, 0u64, 0i64);
    loop {
        let page = pii_migration::find_rows_after(&tx, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        events += page.len() as u64;
        // One query for the page's people, their missing keys created and
        // its changed rows written pipelined: a round trip is the cost here.
        let mut page = page;
        let people = sealer.people(&mut page);
        sealer.fetch_keys(&tx, &people).await?;
        let changed: Vec<&StoredRow> = page
            .iter_mut()
            .filter_map(|row| sealer.seal(row).then_some(&*row))
            .collect();
        rewritten += changed.len() as u64;
        futures_util::future::try_join_all(
            changed.iter().map(|row| pii_migration::save_row(&tx, row)),
        )
        .await?;
    }
    pii_migration::protect_log(&tx).await?;
    if rewritten == 0 {
        tx.commit().await?;
        audit_chain::unlock_chain(&client).await?;
        return Ok(PiiMigration {
            events,
            rewritten,
            rewrite: None,
        });
    }
    let mut rewrite = Rewrite {
        reason: "migrate-pii: personal fields sealed".into(),
        replaced_seq: replaced.seq,
        replaced_cursor: replaced.cursor,
        replaced_head: replaced.hash,
        rewritten_events: rewritten as i64,
        rewritten_at: crate::clock::Clock::now(&crate::clock::SystemClock),
        key_id: audit_key.key_id(),
        public_key: audit_key.public_key(),
        signature: String::new(),
    };
    rewrite.signature = audit_key.sign(&rewrite_message(&rewrite));
    pii_migration::replace_chain(&tx, &rewrite).await?;
    tx.commit().await?;
    // The rewritten rows left as many dead versions behind, and their new
    // versions out of log order in the heap: readers of the log pay for both
    // until a vacuum.
    pii_migration::vacuum_log(&client).await?;
    chainer::chain_pending(&pool, audit_key, policy).await?;
    audit_chain::unlock_chain(&client).await?;
    Ok(PiiMigration {
        events,
        rewritten,
        rewrite: Some(rewrite),
    })
}

/// Seals stored rows in log order, with one look-up per person.
struct Sealer<'k> {
    keyring: &'k Keyring,
    /// Each person's key, `None` once erased.
    keys: HashMap<Uuid, Option<DataKey>>,
    /// The user of each session seen so far.
    session_users: HashMap<Uuid, Uuid>,
}

impl Sealer<'_> {
    /// In log order: notes each session's user, names the person of an
    /// anonymous session event's caller (`pii_subject`), and returns the
    /// people whose fields in the page are still in the clear.
    fn people(&mut self, page: &mut [StoredRow]) -> Vec<Uuid> {
        let mut people = Vec::new();
        for row in page.iter_mut() {
            if row.event_type == "session.started" {
                if let Some(user) = user_id(&row.data) {
                    self.session_users.insert(row.stream_id, user);
                }
            }
            if !has_unsealed(&row.event_type, &row.data, &row.metadata) {
                continue;
            }
            let by = metadata_subject(&row.event_type, row.stream_id, &row.data, &row.metadata);
            if by.is_none() && is_anonymous_session_event(row) {
                // A refresh before its caller was recorded as the session's
                // user: the session's user is the person, named where readers look.
                if let (Some(user), Value::Object(map)) =
                    (self.session_users.get(&row.stream_id), &mut row.metadata)
                {
                    map.insert(METADATA_SUBJECT.into(), Value::String(user.to_string()));
                }
            }
            people.extend(subject_of(&row.event_type, row.stream_id, &row.data));
            people.extend(metadata_subject(
                &row.event_type,
                row.stream_id,
                &row.data,
                &row.metadata,
            ));
        }
        people.sort_unstable();
        people.dedup();
        people.retain(|p| !self.keys.contains_key(p));
        people
    }

    /// The keys of `people`: one query for those who have one, and the keys
    /// of the others created, pipelined.
    async fn fetch_keys(
        &mut self,
        c: &impl GenericClient,
        people: &[Uuid],
    ) -> Result<(), MigratePiiError> {
        let mut found = self.keyring.keys_for_reading(c, people).await?;
        let missing: Vec<Uuid> = people
            .iter()
            .filter(|p| !found.contains_key(p))
            .copied()
            .collect();
        let created = futures_util::future::try_join_all(
            missing.iter().map(|p| self.keyring.key_for_writing(c, *p)),
        )
        .await?;
        found.extend(missing.into_iter().zip(created));
        self.keys.extend(found);
        Ok(())
    }

    /// Seals the row's personal fields in the clear (or erases them, for a
    /// person erased already) with keys fetched before; whether it changed.
    fn seal(&self, row: &mut StoredRow) -> bool {
        if !has_unsealed(&row.event_type, &row.data, &row.metadata) {
            return false;
        }
        let before = (row.data.clone(), row.metadata.clone());
        if let Some(subject) = subject_of(&row.event_type, row.stream_id, &row.data) {
            match self.key(subject) {
                Some(key) => seal_payload(key, subject, &row.event_type, &mut row.data),
                None => erase_payload(&row.event_type, &mut row.data),
            }
        }
        let by = metadata_subject(&row.event_type, row.stream_id, &row.data, &row.metadata);
        if let Some(subject) = by {
            match self.key(subject) {
                Some(key) => seal_metadata(key, subject, &mut row.metadata),
                None => erase_metadata(&mut row.metadata),
            }
        }
        (row.data.clone(), row.metadata.clone()) != before
    }

    fn key(&self, subject: Uuid) -> Option<&DataKey> {
        self.keys.get(&subject).and_then(Option::as_ref)
    }
}

fn user_id(data: &Value) -> Option<Uuid> {
    data["user_id"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
}

fn is_anonymous_session_event(row: &StoredRow) -> bool {
    row.event_type.starts_with("session.") && row.metadata["actor"]["type"] == "anonymous"
}
