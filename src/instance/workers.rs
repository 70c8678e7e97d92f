//! The background tasks of one running instance, started one way and stopped
//! together: each gets a [`Stop`] it may watch, and one that does not is
//! dropped at its next await when the instance stops.

use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long stopping waits for a task to finish its last work (the key-usage
/// flusher writes its last batch) before it is dropped.
const GRACE: Duration = Duration::from_secs(5);

/// Tells a task that its instance is stopping.
#[derive(Debug, Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    /// Resolves once the instance is stopping.
    pub async fn stopped(&mut self) {
        // An error means the sender is gone: stopping too.
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// The running tasks of an instance.
#[derive(Debug)]
pub struct Workers {
    stop: watch::Sender<bool>,
    /// Set once every task has ended; dropped with `Workers` otherwise.
    done: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl Default for Workers {
    fn default() -> Self {
        Self {
            stop: watch::channel(false).0,
            done: watch::channel(false).0,
            tasks: Vec::new(),
        }
    }
}

impl Workers {
    /// Runs a task that finishes its own work when told to stop.
    pub fn spawn<F, Fut>(&mut self, name: &'static str, task: F)
    where
        F: FnOnce(Stop) -> Fut,
        Fut: Future<Output = ()> + 'static,
    {
        let stop = Stop(self.stop.subscribe());
        self.tasks.push((name, actix_web::rt::spawn(task(stop))));
    }

    /// Runs a task that holds nothing to finish: when the instance stops it is
    /// dropped at its next await (a leader's lock goes with its connection).
    pub fn spawn_until_stopped<Fut>(&mut self, name: &'static str, task: Fut)
    where
        Fut: Future<Output = ()> + 'static,
    {
        self.spawn(name, |mut stop| async move {
            tokio::select! {
                () = task => {}
                () = stop.stopped() => {}
            }
        });
    }

    /// What stops these tasks.
    pub fn handle(&self) -> WorkersHandle {
        WorkersHandle {
            stop: self.stop.clone(),
            done: self.done.subscribe(),
        }
    }

    /// Tells every task to stop and waits for them (at most [`GRACE`] each).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for (name, task) in self.tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout(GRACE, task).await.is_err() {
                tracing::warn!(task = name, "did not stop in time; dropped");
                abort.abort();
            }
        }
        let _ = self.done.send(true);
    }
}

/// Tells an instance's tasks to stop, from elsewhere.
#[derive(Debug, Clone)]
pub struct WorkersHandle {
    stop: watch::Sender<bool>,
    done: watch::Receiver<bool>,
}

impl WorkersHandle {
    /// Tells every task to stop and waits until they have (or until their
    /// [`Workers`] is gone without having run them to the end).
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        let mut done = self.done.clone();
        let _ = done.wait_for(|done| *done).await;
    }
}
