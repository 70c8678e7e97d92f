//! The chainer: hashes every event in commit-safe order and signs checkpoints
//! every N events or T seconds. One instance chains at a time (advisory lock).

use super::canonical::{audit_form, canonical, link, GENESIS};
use super::key::AuditKey;
use crate::store::audit_chain::{self, ChainHead};
use crate::store::events::{read_log, LogPosition, LogQuery};
use crate::store::leader::lead_forever;
use crate::store::tail::Tail;
use crate::store::{Pool, StoreError};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde_json::json;
use std::time::Duration;

pub use crate::store::audit_chain::CHAIN_LOCK;

/// When to sign a checkpoint.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointPolicy {
    /// After this many new links.
    pub every_events: i64,
    /// Or after this long, if there is any new link.
    pub every: Duration,
}

impl CheckpointPolicy {
    /// The policy the settings ask for.
    pub fn from_settings(settings: &crate::config::Settings) -> Self {
        Self {
            every_events: settings.checkpoint_events.max(1),
            every: Duration::from_secs(settings.checkpoint_seconds.max(1)),
        }
    }
}

/// The current end of the chain (the genesis before the first event).
pub async fn find_head(c: &impl GenericClient) -> Result<ChainHead, StoreError> {
    Ok(audit_chain::find_head(c).await?.unwrap_or(ChainHead {
        seq: 0,
        cursor: LogPosition::default(),
        hash: GENESIS,
    }))
}

/// The message a checkpoint signs: the JCS bytes of these fields.
pub fn checkpoint_message(
    seq: i64,
    cursor: LogPosition,
    head: &[u8; 32],
    signed_at: DateTime<Utc>,
    key_id: &str,
) -> Vec<u8> {
    canonical(&json!({
        "seq": seq,
        "transaction_id": cursor.transaction_id.to_string(),
        "position": cursor.position,
        "head": crate::auth::api_key::hex(head),
        "signed_at": signed_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "key_id": key_id,
    }))
}

/// The message a rewrite record signs (`audit_rewrites`, written by
/// `vouch migrate-pii`): the JCS bytes of these fields.
pub fn rewrite_message(r: &crate::store::pii_migration::Rewrite) -> Vec<u8> {
    canonical(&json!({
        "kind": "vouch-chain-rewrite/1",
        "reason": r.reason,
        "replaced_seq": r.replaced_seq,
        "replaced_transaction_id": r.replaced_cursor.transaction_id.to_string(),
        "replaced_position": r.replaced_cursor.position,
        "replaced_head": crate::auth::api_key::hex(&r.replaced_head),
        "rewritten_events": r.rewritten_events,
        "rewritten_at": r.rewritten_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "key_id": r.key_id,
    }))
}

/// Chains every readable event not yet chained; signs a checkpoint when due.
/// The caller must hold [`CHAIN_LOCK`]. Returns the number of new links.
pub async fn chain_pending(
    pool: &Pool,
    key: &AuditKey,
    policy: CheckpointPolicy,
) -> Result<u64, StoreError> {
    let mut client = pool.get().await?;
    let mut head = find_head(&client).await?;
    let mut linked = 0u64;
    loop {
        let query = LogQuery {
            after: head.cursor,
            limit: 1000,
            ..LogQuery::default()
        };
        let events = read_log(&client, &query).await?;
        if events.is_empty() {
            break;
        }
        let tx = client.transaction().await?;
        let mut links = Vec::with_capacity(events.len());
        for e in &events {
            head.hash = link(&head.hash, &canonical(&audit_form(e)));
            head.seq += 1;
            head.cursor = e.cursor();
            links.push((head.seq, head.cursor, head.hash));
        }
        audit_chain::create_links(&tx, &links).await?;
        tx.commit().await?;
        linked += events.len() as u64;
    }
    sign_if_due(&client, key, &head, policy).await?;
    Ok(linked)
}

async fn sign_if_due(
    c: &impl GenericClient,
    key: &AuditKey,
    head: &ChainHead,
    policy: CheckpointPolicy,
) -> Result<(), StoreError> {
    if head.seq == 0 {
        return Ok(());
    }
    let now = crate::clock::Clock::now(&crate::clock::SystemClock);
    let due = match audit_chain::find_last_checkpoint(c).await? {
        None => true,
        Some((seq, at)) => {
            head.seq > seq
                && (head.seq - seq >= policy.every_events
                    || now - at >= chrono::Duration::from_std(policy.every).unwrap_or_default())
        }
    };
    if !due {
        return Ok(());
    }
    let key_id = key.key_id();
    let signature = key.sign(&checkpoint_message(
        head.seq,
        head.cursor,
        &head.hash,
        now,
        &key_id,
    ));
    let checkpoint = audit_chain::Checkpoint {
        seq: head.seq,
        cursor: head.cursor,
        head: head.hash,
        signed_at: now,
        key_id,
        public_key: key.public_key(),
        signature,
    };
    audit_chain::create_checkpoint(c, &checkpoint).await?;
    Ok(())
}

/// Runs the chainer forever: campaign, then chain on every commit while leader.
pub async fn run(pool: Pool, database_url: String, key: AuditKey, policy: CheckpointPolicy) {
    lead_forever(&database_url, CHAIN_LOCK, "chainer", |mut notifications| {
        let (pool, key) = (&pool, &key);
        async move {
            let mut tail = Tail::default();
            loop {
                if let Err(e) = chain_pending(pool, key, policy).await {
                    tracing::warn!(error = %crate::telemetry::error_chain(&e), "chainer: retrying");
                }
                if !tail.wait(&mut notifications).await {
                    return;
                }
            }
        }
    })
    .await;
}
