//! Leader election by Postgres advisory lock on a dedicated connection.
//!
//! The lock lives as long as the connection: if the leader's process or
//! network dies, Postgres releases it and another instance wins the next
//! campaign.

use super::listen::{self, Listener};

/// A won election: keep it alive to stay leader.
pub type Leadership = Listener;

/// Tries once to take `lock`; on success also LISTENs on `channel`.
pub async fn campaign(
    database_url: &str,
    lock: i64,
    channel: &str,
) -> Result<Option<Leadership>, tokio_postgres::Error> {
    let listener = listen::connect(database_url).await?;
    let row = listener
        .client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&lock])
        .await?;
    if !row.try_get::<_, bool>(0)? {
        return Ok(None);
    }
    listener.listen(channel).await?;
    Ok(Some(listener))
}

/// Campaigns for `lock` forever. While this instance holds it, `lead` runs
/// with the leadership's notifications (of [`super::channels::EVENTS`]) until it
/// returns: the leadership was lost (the notifications ended) or given up.
/// Then the lock goes with its connection and the next campaign starts a
/// second later. `name` names the worker in the log.
pub async fn lead_forever<F, Fut>(database_url: &str, lock: i64, name: &'static str, mut lead: F)
where
    F: FnMut(tokio::sync::mpsc::UnboundedReceiver<String>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    loop {
        match campaign(database_url, lock, super::channels::EVENTS).await {
            Ok(Some(Listener {
                client,
                notifications,
            })) => {
                tracing::info!("{name}: leader");
                lead(notifications).await;
                drop(client);
                tracing::warn!("{name}: no longer leader");
            }
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "{name}: campaign failed"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
