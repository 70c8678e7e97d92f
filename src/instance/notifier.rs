//! The coalesced notifier: after a command commits, this instance tells the
//! log's followers (the relay, the chainer, every instance's credential cache)
//! by one NOTIFY on `vouch_events`, sent from its own connection and never
//! from a command transaction, whose commits would otherwise queue on the
//! server's one notification lock. Commits that land while a NOTIFY is on its
//! way, or within [`SPACING`] of the last, share the next one. Losing a wake-up (this process dies right after a
//! commit) costs latency, never an event: every follower also polls.

use crate::store::channels::EVENTS;
use crate::store::listen::Notifier;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Pause before connecting again.
const RECONNECT_AFTER: Duration = Duration::from_millis(500);
/// The least time between two announcements. Each one wakes every follower,
/// relay and chainer, and each of those then reads the log: under load,
/// announcing every commit would cost the database a few statements per
/// command. An idle instance announces its first commit at once.
const SPACING: Duration = Duration::from_millis(5);

/// Commits waiting to be announced; one per process.
#[derive(Debug, Default)]
pub struct Wakeups(Notify);

impl Wakeups {
    /// Something committed: announce it soon. Never waits.
    pub fn committed(&self) {
        self.0.notify_one();
    }
}

/// Announces commits until the instance stops.
pub async fn run(wakeups: Arc<Wakeups>, database_url: String) {
    loop {
        match Notifier::connect(&database_url).await {
            Ok(notifier) => loop {
                wakeups.0.notified().await;
                if let Err(e) = notifier.notify(EVENTS).await {
                    tracing::warn!(error = %e, "notifier: connection lost");
                    break;
                }
                tokio::time::sleep(SPACING).await;
            },
            Err(e) => tracing::warn!(error = %e, "notifier: cannot connect"),
        }
        tokio::time::sleep(RECONNECT_AFTER).await;
    }
}
