//! The chainer: hashes every event in commit-safe order and signs checkpoints
//! every N events or T seconds. One instance chains at a time (advisory lock).

use super::canonical::{audit_form, canonical, link, GENESIS};
use super::key::AuditKey;
use crate::store::events::{read_log, LogPosition, LogQuery};
use crate::store::leader::campaign;
use crate::store::{Pool, StoreError};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde_json::json;
use std::time::Duration;

/// Advisory-lock key of the chainer ("vouch-ch").
pub const CHAIN_LOCK: i64 = 0x766f_7563_682d_6368;

/// When to sign a checkpoint.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointPolicy {
    /// After this many new links.
    pub every_events: i64,
    /// Or after this long, if there is any new link.
    pub every: Duration,
}

/// The end of the chain.
#[derive(Debug, Clone, Copy)]
pub struct ChainHead {
    /// Links so far.
    pub seq: i64,
    /// The last chained event.
    pub cursor: LogPosition,
    /// Its hash.
    pub hash: [u8; 32],
}

/// The current end of the chain (the genesis before the first event).
pub async fn find_head(c: &impl GenericClient) -> Result<ChainHead, StoreError> {
    let row = c
        .query_opt(
            "SELECT seq, transaction_id::text, position, hash FROM audit_chain ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .await?;
    let Some(row) = row else {
        return Ok(ChainHead {
            seq: 0,
            cursor: LogPosition::default(),
            hash: GENESIS,
        });
    };
    let txid: String = row.try_get(1)?;
    let hash: Vec<u8> = row.try_get(3)?;
    Ok(ChainHead {
        seq: row.try_get(0)?,
        cursor: LogPosition {
            transaction_id: txid
                .parse()
                .map_err(|_| StoreError::Decode("chain transaction id".into()))?,
            position: row.try_get(2)?,
        },
        hash: hash
            .try_into()
            .map_err(|_| StoreError::Decode("chain hash".into()))?,
    })
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
        let insert = tx
            .prepare_cached("INSERT INTO audit_chain (seq, position, transaction_id, hash) VALUES ($1, $2, $3::text::xid8, $4)")
            .await?;
        for e in &events {
            head.hash = link(&head.hash, &canonical(&audit_form(e)));
            head.seq += 1;
            head.cursor = e.cursor();
            tx.execute(
                &insert,
                &[
                    &head.seq,
                    &e.position,
                    &e.transaction_id.to_string(),
                    &head.hash.as_slice(),
                ],
            )
            .await?;
        }
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
    let last = c
        .query_opt(
            "SELECT seq, signed_at FROM audit_checkpoints ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .await?;
    let now = crate::app::Clock.now();
    let due = match last {
        None => true,
        Some(row) => {
            let (seq, at): (i64, DateTime<Utc>) = (row.try_get(0)?, row.try_get(1)?);
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
    c.execute(
        "INSERT INTO audit_checkpoints (seq, transaction_id, position, head, signed_at, key_id, public_key, signature) \
         VALUES ($1, $2::text::xid8, $3, $4, $5, $6, $7, $8) ON CONFLICT (seq) DO NOTHING",
        &[
            &head.seq,
            &head.cursor.transaction_id.to_string(),
            &head.cursor.position,
            &head.hash.as_slice(),
            &now,
            &key_id,
            &key.public_key(),
            &signature,
        ],
    )
    .await?;
    Ok(())
}

/// Runs the chainer forever: campaign, then chain on every commit while leader.
pub async fn run(pool: Pool, database_url: String, key: AuditKey, policy: CheckpointPolicy) {
    loop {
        match campaign(&database_url, CHAIN_LOCK, crate::bus::relay::NOTIFY_CHANNEL).await {
            Ok(Some(mut leadership)) => {
                tracing::info!("chainer: leader");
                loop {
                    if let Err(e) = chain_pending(&pool, &key, policy).await {
                        tracing::warn!(error = %crate::telemetry::error_chain(&e), "chainer: retrying");
                    }
                    tokio::select! {
                        n = leadership.notifications.recv() => if n.is_none() { break },
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                    while leadership.notifications.try_recv().is_ok() {}
                }
                tracing::warn!("chainer: no longer leader");
            }
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "chainer: campaign failed"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
