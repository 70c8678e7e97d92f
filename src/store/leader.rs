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
