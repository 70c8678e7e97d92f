//! Exports: JSON Lines of events in their audit form, each with its chain link,
//! ending with a manifest signed by the audit key. Streamed page by page, so
//! memory stays flat however long the log.

use super::canonical::{audit_form_with_digests, canonical};
use super::chainer::{chain_pending, find_head, CheckpointPolicy};
use super::key::AuditKey;
use crate::auth::api_key::hex;
use crate::pii::keyring::{Keyring, StoredPayload};
use crate::store::audit_chain;
use crate::store::events::find_log_end;
use crate::store::{Pool, StoreError};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The format name in every manifest.
pub const FORMAT: &str = "vouch-export/2";

/// What to export.
#[derive(Debug, Clone, Default)]
pub struct ExportFilter {
    /// Only this org's events.
    pub org_id: Option<Uuid>,
    /// Events that occurred at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Events that occurred at or before this time.
    pub to: Option<DateTime<Utc>>,
}

impl ExportFilter {
    fn is_whole_log(&self) -> bool {
        self.org_id.is_none() && self.from.is_none() && self.to.is_none()
    }
}

/// Where export lines go.
pub trait LineSink {
    /// Takes one line (without its newline).
    fn send(&mut self, line: Vec<u8>) -> impl Future<Output = std::io::Result<()>>;
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The sink failed.
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
    /// A sealed field could not be opened.
    #[error(transparent)]
    Personal(#[from] crate::pii::keyring::KeyringError),
    /// No personal-data key was loaded to open sealed fields with.
    #[error("no personal-data key is loaded: exports open sealed fields")]
    NoPersonalDataKey,
    /// The chain did not catch up with the log in time.
    #[error("the audit chain is behind the log; is the chainer running?")]
    ChainBehind,
}

impl From<deadpool_postgres::PoolError> for ExportError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Self::Store(e.into())
    }
}

impl From<tokio_postgres::Error> for ExportError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Store(e.into())
    }
}

/// Makes sure every event committed before this call is chained: chains them
/// itself when no chainer runs, otherwise waits for the chainer. Events of
/// transactions still older than the commit-safe bound are waited for, so an
/// export is complete as of the moment it started.
pub async fn catch_up(
    pool: &Pool,
    key: &AuditKey,
    policy: CheckpointPolicy,
) -> Result<(), ExportError> {
    let client = pool.get().await?;
    // As in replay: plans must not depend on autovacuum having seen a bulk load.
    crate::store::events::analyze_log(&client).await?;
    let Some(end) = find_log_end(&client).await? else {
        return Ok(());
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if audit_chain::try_lock_chain(&client).await? {
            let chained = chain_pending(pool, key, policy).await;
            audit_chain::unlock_chain(&client).await?;
            chained?;
        }
        if find_head(&client).await?.cursor >= end {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(ExportError::ChainBehind);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Writes an export of the chained events matching `filter`; returns the event count.
pub async fn export(
    pool: &Pool,
    key: &AuditKey,
    keyring: &Keyring,
    filter: &ExportFilter,
    sink: &mut impl LineSink,
    progress: &dyn Fn(u64),
) -> Result<u64, ExportError> {
    let client = pool.get().await?;
    let narrowed = audit_chain::ChainFilter {
        org_id: filter.org_id,
        from: filter.from,
        to: filter.to,
    };
    let mut body = Sha256::new();
    let (mut count, mut after, mut first_seq, mut last_hash) = (0u64, 0i64, None, None::<String>);
    loop {
        let page = audit_chain::find_chained_page(&client, after, narrowed).await?;
        if page.is_empty() {
            break;
        }
        let forms = readable_forms(&client, keyring, &page).await?;
        for (chained, (event, sealed)) in page.iter().zip(forms) {
            let prev = chained
                .prev_hash
                .clone()
                .unwrap_or_else(|| super::canonical::GENESIS.to_vec());
            let mut line = json!({
                "seq": chained.seq,
                "prev_hash": hex(&prev),
                "hash": hex(&chained.hash),
                "event": event,
            });
            if !sealed.is_empty() {
                line["sealed"] = Value::Object(sealed);
            }
            let line = serde_json::to_vec(&line).map_err(|e| StoreError::Decode(e.to_string()))?;
            body.update(&line);
            body.update(b"\n");
            sink.send(line).await?;
            first_seq.get_or_insert(chained.seq);
            last_hash = Some(hex(&chained.hash));
            after = chained.seq;
            count += 1;
        }
        progress(page.len() as u64);
    }
    let checkpoint = match filter.is_whole_log() {
        true => audit_chain::find_checkpoint_within(&client, after)
            .await?
            .map(|cp| checkpoint_json(&cp)),
        false => None,
    };
    let manifest = json!({
        "format": FORMAT,
        "count": count,
        "org_id": filter.org_id,
        "from": filter.from,
        "to": filter.to,
        "first_seq": first_seq,
        "last_seq": (count > 0).then_some(after),
        "body_sha256": hex(&body.finalize()),
        "whole_log": filter.is_whole_log(),
        "chain_head": if filter.is_whole_log() { last_hash.map(Value::String) } else { None },
        "checkpoint": checkpoint,
        "exported_at": crate::clock::Clock::now(&crate::clock::SystemClock),
        "key_id": key.key_id(),
        "public_key": key.public_key(),
    });
    let signature = key.sign(&canonical(&manifest));
    let line = serde_json::to_vec(&json!({"manifest": manifest, "signature": signature}))
        .map_err(|e| StoreError::Decode(e.to_string()))?;
    sink.send(line).await?;
    Ok(count)
}

/// The audit forms of a page of events as an export shows them: each sealed
/// field opened (or `"[erased]"`) in place of its digest, and the digests by
/// path, which a verifier puts back to check the chain.
async fn readable_forms(
    client: &impl deadpool_postgres::GenericClient,
    keyring: &Keyring,
    page: &[audit_chain::ChainedEvent],
) -> Result<Vec<(Value, Map<String, Value>)>, ExportError> {
    let mut forms: Vec<_> = page
        .iter()
        .map(|c| audit_form_with_digests(&c.event))
        .collect();
    // Only events with sealed fields have anything to open.
    let mut opened: Vec<Option<(Value, Value)>> = page
        .iter()
        .zip(&forms)
        .map(|(c, (_, digests))| {
            (!digests.is_empty()).then(|| (c.event.data.clone(), c.event.metadata.clone()))
        })
        .collect();
    let payloads = page
        .iter()
        .zip(opened.iter_mut())
        .filter_map(|(c, opened)| {
            opened.as_mut().map(|(data, metadata)| StoredPayload {
                event_type: &c.event.event_type,
                stream_id: c.event.stream_id,
                data,
                metadata: Some(metadata),
            })
        })
        .collect();
    keyring.open_payloads(client, payloads).await?;
    for ((form, digests), opened) in forms.iter_mut().zip(opened) {
        let Some((data, metadata)) = opened else {
            continue;
        };
        for path in digests.keys() {
            let Some((section, field)) = path.split_once('.') else {
                continue;
            };
            let source = if section == "data" { &data } else { &metadata };
            form[section][field] = source[field].clone();
        }
    }
    Ok(forms)
}

/// A checkpoint as the manifest carries it.
fn checkpoint_json(cp: &audit_chain::Checkpoint) -> Value {
    json!({
        "seq": cp.seq,
        "transaction_id": cp.cursor.transaction_id.to_string(),
        "position": cp.cursor.position,
        "head": hex(&cp.head),
        "signed_at": cp.signed_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "key_id": cp.key_id,
        "public_key": cp.public_key,
        "signature": cp.signature,
    })
}
