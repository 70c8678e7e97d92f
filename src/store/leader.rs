//! Leader election by Postgres advisory lock on a dedicated connection.
//!
//! The lock lives as long as the connection: if the leader's process or
//! network dies, Postgres releases it and another instance wins the next
//! campaign.

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

/// A won election: keep it alive to stay leader.
pub struct Leadership {
    /// The connection holding the lock.
    pub client: tokio_postgres::Client,
    /// One message per NOTIFY on the listened channel; closed when the connection is gone.
    pub notifications: mpsc::UnboundedReceiver<()>,
}

/// Tries once to take `lock`; on success also LISTENs on `channel`.
pub async fn campaign(
    database_url: &str,
    lock: i64,
    channel: &str,
) -> Result<Option<Leadership>, tokio_postgres::Error> {
    let (client, mut connection) = tokio_postgres::connect(database_url, NoTls).await?;
    let (tx, notifications) = mpsc::unbounded_channel();
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    tokio::spawn(async move {
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(_)) => {
                    if tx.send(()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        // Dropping `tx` tells the leader its connection (and lock) is gone.
    });
    let row = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&lock])
        .await?;
    if !row.try_get::<_, bool>(0)? {
        return Ok(None);
    }
    client.batch_execute(&format!("LISTEN {channel}")).await?;
    Ok(Some(Leadership {
        client,
        notifications,
    }))
}
