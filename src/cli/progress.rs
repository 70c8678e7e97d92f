//! Progress of long work: a bar with rate and ETA on a terminal, plain log
//! lines otherwise, and a one-line summary at the end.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Progress of one named task.
pub struct TaskProgress {
    name: &'static str,
    bar: Option<ProgressBar>,
    total: AtomicU64,
    done: AtomicU64,
    started: Instant,
    last_line: Mutex<Instant>,
}

impl TaskProgress {
    /// A bar when stderr is a terminal, log lines every 2 s otherwise.
    pub fn new(name: &'static str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{msg} [{bar:40}] {human_pos}/{human_len} events  {per_sec}  ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_message(name);
            bar
        });
        Self {
            name,
            bar,
            total: AtomicU64::new(0),
            done: AtomicU64::new(0),
            started: Instant::now(),
            last_line: Mutex::new(Instant::now()),
        }
    }

    /// Sets the expected total.
    pub fn start(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_length(total);
        }
    }

    /// Records `n` more units done.
    pub fn advance(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            return;
        }
        let Ok(mut last) = self.last_line.lock() else {
            return;
        };
        if last.elapsed() >= Duration::from_secs(2) {
            *last = Instant::now();
            let rate = done as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
            tracing::info!(
                task = self.name,
                done,
                total = self.total.load(Ordering::Relaxed),
                events_per_second = rate as u64,
                "progress"
            );
        }
    }

    /// Clears the bar and returns the summary line.
    pub fn finish(&self) -> String {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let done = self.done.load(Ordering::Relaxed);
        let seconds = self.started.elapsed().as_secs_f64();
        format!(
            "{}: {done} events in {seconds:.2} s ({:.0} events/s)",
            self.name,
            done as f64 / seconds.max(1e-9)
        )
    }
}

impl crate::app::replay::Progress for TaskProgress {
    fn start(&self, total: u64) {
        TaskProgress::start(self, total);
    }

    fn advance(&self, n: u64) {
        TaskProgress::advance(self, n);
    }
}
