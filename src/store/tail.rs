//! How a reader that tails the log (the relay, the chainer, the mailer) waits
//! when nothing is readable: for a wake-up from the notifier, or a poll; and
//! how it backs off after a failed round.
//!
//! An announced event may not be readable yet: commit-safe reads wait for every
//! older transaction on the server, and one that appends nothing (a throttle
//! reservation, a usage flush, a chain link) is never announced. So for
//! half a second after a wake-up the reader looks again often (after 1, 2, 4,
//! 8, then every 16 ms), so that a held-back event waits for its holder and at
//! most 16 ms more; then it falls back to the idle poll.

use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

/// The poll when nothing was notified.
const IDLE: Duration = Duration::from_millis(250);
/// The first look after a wake-up that found nothing.
const FIRST_RETRY: Duration = Duration::from_millis(1);
/// The longest pause between quick looks.
const MAX_RETRY: Duration = Duration::from_millis(16);
/// How long after a wake-up the reader keeps looking quickly.
const WINDOW: Duration = Duration::from_millis(500);

/// The waiting state of one tailing reader.
#[derive(Debug, Default)]
pub struct Tail {
    /// The last wake-up and the next quick pause, while within [`WINDOW`].
    retry: Option<(Instant, Duration)>,
}

impl Tail {
    /// Waits until the reader should read again; false when the notifications
    /// ended (the leader's connection is gone).
    pub async fn wait(&mut self, notifications: &mut UnboundedReceiver<String>) -> bool {
        let pause = self.retry.map_or(IDLE, |(_, pause)| pause);
        tokio::select! {
            n = notifications.recv() => {
                if n.is_none() {
                    return false;
                }
                self.retry = Some((Instant::now(), FIRST_RETRY));
            }
            () = tokio::time::sleep(pause) => {
                self.retry = self
                    .retry
                    .filter(|(woken, _)| woken.elapsed() < WINDOW)
                    .map(|(woken, pause)| (woken, (pause * 2).min(MAX_RETRY)));
            }
        }
        while notifications.try_recv().is_ok() {}
        true
    }
}

/// The growing pause of a leader whose round failed (the broker or the mail
/// server is away): it doubles from `first` up to `most`, and is back to
/// `first` after a round that worked.
#[derive(Debug)]
pub struct Backoff {
    first: Duration,
    most: Duration,
    next: Duration,
}

impl Backoff {
    /// Pauses from `first`, doubling, up to `most`.
    pub fn new(first: Duration, most: Duration) -> Self {
        Self {
            first,
            most,
            next: first,
        }
    }

    /// The pause the next failure waits.
    pub fn next(&self) -> Duration {
        self.next
    }

    /// A round worked: the next failure waits the first pause again.
    pub fn reset(&mut self) {
        self.next = self.first;
    }

    /// Waits out the pause, taking the notifications that come meanwhile;
    /// false when they ended (the leadership is gone: stop at once).
    pub async fn wait(&mut self, notifications: &mut UnboundedReceiver<String>) -> bool {
        let wait = tokio::time::sleep(self.next);
        tokio::pin!(wait);
        self.next = (self.next * 2).min(self.most);
        loop {
            tokio::select! {
                () = &mut wait => return true,
                n = notifications.recv() => if n.is_none() { return false },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn after_a_wake_up_it_looks_again_soon_then_falls_back_to_the_idle_poll() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut tail = Tail::default();
        tx.send(String::new()).unwrap_or_default();
        assert!(tail.wait(&mut rx).await);
        let mut pauses = Vec::new();
        loop {
            let started = tokio::time::Instant::now();
            assert!(tail.wait(&mut rx).await);
            let pause = started.elapsed();
            pauses.push(pause.as_millis());
            if pause >= IDLE {
                break;
            }
        }
        let quick: u128 = pauses[..pauses.len() - 1].iter().sum();
        assert_eq!(pauses[..5], [1, 2, 4, 8, 16]);
        assert!(
            pauses[5..pauses.len() - 1].iter().all(|p| *p == 16),
            "{pauses:?}"
        );
        assert!((500..=516).contains(&quick), "{pauses:?}");
        assert_eq!(pauses.last(), Some(&250));
        drop(tx);
        assert!(!tail.wait(&mut rx).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_backoff_doubles_up_to_its_most_and_stops_when_the_leadership_ends() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(300));
        let mut waited = Vec::new();
        for _ in 0..4 {
            let started = tokio::time::Instant::now();
            tx.send(String::new()).unwrap_or_default();
            assert!(
                backoff.wait(&mut rx).await,
                "a notification does not cut it short"
            );
            waited.push(started.elapsed().as_millis());
        }
        assert_eq!(waited, [100, 200, 300, 300]);
        backoff.reset();
        assert_eq!(backoff.next(), Duration::from_millis(100));
        drop(tx);
        assert!(!backoff.wait(&mut rx).await);
    }
}
