//! Keeps this instance's credential cache honest by following the log: on a
//! dedicated connection it reads what committed since its last read
//! (`store::follow`) and evicts what that revoked. It reads when woken (the
//! coalesced notifier's `vouch_events`) and at least every [`POLL`], so a
//! revocation whose committing process died before it could wake anyone is
//! still seen within one poll. Each successful read vouches for the cache for
//! [`FRESH_FOR`](super::cache::FRESH_FOR); a failed or hung one stops it at once.

use super::cache::{self, CredentialCache, REVOKING};
use crate::store::channels::{EVENTS, INVALIDATIONS};
use crate::store::follow::{self, LogSnapshot};
use crate::store::{listen, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The longest wait between two reads of the log.
pub const POLL: Duration = Duration::from_millis(25);
/// The least time between two reads: wake-ups from many instances under load
/// do not turn into a read each.
const MIN_GAP: Duration = Duration::from_millis(5);
/// Pause before connecting again.
const RECONNECT_AFTER: Duration = Duration::from_millis(500);

/// Keeps the cache following the log until the instance stops.
pub async fn run(cache: Arc<CredentialCache>, database_url: String) {
    loop {
        if let Err(e) = follow_until_lost(&cache, &database_url).await {
            tracing::warn!(error = %e, "credential cache: lost the log; cache off");
        }
        // Empty, so the next connection may start from what is committed then.
        cache.suspend();
        tokio::time::sleep(RECONNECT_AFTER).await;
    }
}

async fn follow_until_lost(cache: &CredentialCache, database_url: &str) -> Result<(), StoreError> {
    let mut listener = listen::connect(database_url).await?;
    listener.listen(EVENTS).await?;
    listener.listen(INVALIDATIONS).await?;
    let types: Vec<&str> = REVOKING.iter().map(|(t, _)| *t).collect();
    let follower = follow::Follower::prepare(&listener.client).await?;
    let mut from: LogSnapshot = follow::snapshot(&listener.client).await?;
    tracing::info!("credential cache: following the log");
    loop {
        let started = Instant::now();
        let read = follower.committed_since(&listener.client, &from, &types);
        let (next, committed) = tokio::time::timeout(cache::FRESH_FOR, read)
            .await
            .map_err(|hung| StoreError::Unavailable(Box::new(hung)))??;
        for c in committed {
            if let Some(payload) = cache::invalidation(&c.event_type, c.stream_id) {
                cache.invalidate(&payload);
            }
        }
        cache.caught_up(started.into_std());
        from = next;
        tokio::time::sleep_until(started + MIN_GAP).await;
        let mut heard = Vec::new();
        tokio::select! {
            payload = listener.notifications.recv() => match payload {
                Some(p) => heard.push(p),
                None => return Ok(()),
            },
            () = tokio::time::sleep(POLL) => {}
        }
        while let Ok(p) = listener.notifications.try_recv() {
            heard.push(p);
        }
        // Wake-ups say nothing themselves; a replay's `all` empties the cache.
        if heard.iter().any(|p| p == cache::ALL) {
            cache.invalidate(cache::ALL);
        }
    }
}
