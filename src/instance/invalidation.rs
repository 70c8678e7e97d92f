//! Keeps this instance's credential cache honest: listens for invalidations on
//! a dedicated connection, and switches the cache off whenever that connection
//! is not known to be alive.

use super::cache::CredentialCache;
use crate::store::channels::INVALIDATIONS;
use crate::store::listen;
use std::sync::Arc;
use std::time::Duration;

/// How often the listening connection proves it is alive. A silently dead
/// connection (no reset, no error) turns the cache off within about twice this.
const PROBE_EVERY: Duration = Duration::from_millis(1000);
/// Pause before connecting again.
const RECONNECT_AFTER: Duration = Duration::from_millis(500);

/// Keeps the cache following the log's invalidations until the instance stops.
pub async fn run(cache: Arc<CredentialCache>, database_url: String) {
    loop {
        if let Err(e) = listen_until_lost(&cache, &database_url).await {
            tracing::warn!(error = %e, "credential cache: invalidation listener lost; cache off");
        }
        cache.suspend();
        tokio::time::sleep(RECONNECT_AFTER).await;
    }
}

async fn listen_until_lost(
    cache: &CredentialCache,
    database_url: &str,
) -> Result<(), tokio_postgres::Error> {
    let mut listener = listen::connect(database_url).await?;
    listener.listen(INVALIDATIONS).await?;
    cache.resume();
    tracing::info!("credential cache: listening for invalidations");
    let mut probe = tokio::time::interval(PROBE_EVERY);
    loop {
        tokio::select! {
            payload = listener.notifications.recv() => match payload {
                Some(payload) => cache.invalidate(&payload),
                None => return Ok(()),
            },
            _ = probe.tick() => {
                let alive = tokio::time::timeout(PROBE_EVERY, listener.is_alive()).await;
                match alive {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(e),
                    Err(_) => return Ok(()),
                }
            }
        }
    }
}
