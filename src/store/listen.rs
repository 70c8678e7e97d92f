//! A dedicated connection that LISTENs: Postgres NOTIFY payloads as a channel.
//!
//! NOTIFY is delivered at commit, so a payload always describes committed state.
//! When the connection dies the receiver closes: a listener that relies on it
//! (the credential cache, a leader) learns at once that it may have missed some.

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

/// An open listening connection.
pub struct Listener {
    /// The connection; dropping it ends the listen.
    pub client: tokio_postgres::Client,
    /// One payload per NOTIFY; closed when the connection is gone.
    pub notifications: mpsc::UnboundedReceiver<String>,
}

/// Connects to `database_url`; call [`Listener::listen`] for each channel.
pub async fn connect(database_url: &str) -> Result<Listener, tokio_postgres::Error> {
    let (client, mut connection) = tokio_postgres::connect(database_url, NoTls).await?;
    let (tx, notifications) = mpsc::unbounded_channel();
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    tokio::spawn(async move {
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(n.payload().to_owned()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        // Dropping `tx` closes the receiver: the connection is gone.
    });
    Ok(Listener {
        client,
        notifications,
    })
}

impl Listener {
    /// Whether the connection still answers a trivial query.
    pub async fn is_alive(&self) -> Result<(), tokio_postgres::Error> {
        self.client.simple_query("SELECT 1").await.map(drop)
    }

    /// Starts listening on `channel` (a fixed identifier of vouch's own).
    pub async fn listen(&self, channel: &str) -> Result<(), tokio_postgres::Error> {
        self.client
            .batch_execute(&format!("LISTEN {channel}"))
            .await
    }
}

/// A dedicated connection that sends the wake-up NOTIFYs, outside every
/// command transaction.
pub struct Notifier {
    client: tokio_postgres::Client,
}

impl Notifier {
    /// Connects to `database_url`. A wake-up is a hint (every reader also
    /// polls), so its commit does not wait for the disk.
    pub async fn connect(database_url: &str) -> Result<Self, tokio_postgres::Error> {
        let (client, connection) = tokio_postgres::connect(database_url, NoTls).await?;
        tokio::spawn(async move {
            // Ends when the client is dropped or the connection fails; the
            // next `notify` then reports the failure.
            let _ = connection.await;
        });
        client.batch_execute("SET synchronous_commit = off").await?;
        Ok(Self { client })
    }

    /// Notifies `channel` (a fixed identifier of vouch's own) with an empty payload.
    pub async fn notify(&self, channel: &str) -> Result<(), tokio_postgres::Error> {
        self.client
            .batch_execute(&format!("NOTIFY {channel}"))
            .await
    }
}
