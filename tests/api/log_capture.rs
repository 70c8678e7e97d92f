//! The test process's log: every line vouch writes, in vouch's own JSON format,
//! goes to the file named by `VOUCH_TEST_LOG` (appended, so runs of separate
//! processes add up) and to every [`LogCapture`] listening at the time.
//!
//! The subscriber is the process-global one: actix workers, the blocking pool
//! and spawned tasks all run on threads of their own, which a thread-local
//! (`with_default`) subscriber would not see. Filter and format are vouch's own
//! (`telemetry::filter`, `telemetry::json_layer`): `VOUCH_LOG` filters as it
//! does for `vouch serve`; the default is everything of vouch and `info` of the rest.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard, Once, OnceLock, PoisonError};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The filter when `VOUCH_LOG` is not set: the most verbose for vouch.
pub const DEFAULT_FILTER: &str = "info,vouch=trace";

type Buffer = Arc<Mutex<Vec<u8>>>;

static INIT: Once = Once::new();
static INSTALLED: OnceLock<bool> = OnceLock::new();
static FILE: OnceLock<Option<Mutex<File>>> = OnceLock::new();
static TAPS: Mutex<Vec<Buffer>> = Mutex::new(Vec::new());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding a lock must not hide everyone's log.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Installs the subscriber once per test process.
pub fn install() {
    INIT.call_once(|| {
        let file = std::env::var_os("VOUCH_TEST_LOG").map(|path| {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .unwrap_or_else(|e| panic!("VOUCH_TEST_LOG={path:?}: {e}"));
            Mutex::new(file)
        });
        FILE.get_or_init(|| file);
        let spec = std::env::var("VOUCH_LOG").unwrap_or_else(|_| DEFAULT_FILTER.into());
        let installed = tracing_subscriber::registry()
            .with(vouch::telemetry::filter(&spec))
            .with(vouch::telemetry::json_layer(Sink))
            .try_init()
            .is_ok();
        INSTALLED.get_or_init(|| installed);
    });
}

/// Where formatted lines go.
struct Sink;

impl<'a> MakeWriter<'a> for Sink {
    type Writer = Sink;

    fn make_writer(&'a self) -> Self::Writer {
        Sink
    }
}

impl Write for Sink {
    // The formatter hands over each line whole, in one call.
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        if let Some(Some(file)) = FILE.get() {
            lock(file).write_all(line)?;
        }
        for tap in lock(&TAPS).iter() {
            lock(tap).extend_from_slice(line);
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Some(Some(file)) = FILE.get() {
            lock(file).flush()?;
        }
        Ok(())
    }
}

/// Every log line of the process from its start until it is dropped.
pub struct LogCapture(Buffer);

impl LogCapture {
    /// Starts listening.
    pub fn start() -> Self {
        install();
        assert_eq!(
            INSTALLED.get(),
            Some(&true),
            "another global tracing subscriber was installed first"
        );
        let buffer = Buffer::default();
        lock(&TAPS).push(buffer.clone());
        Self(buffer)
    }

    /// The lines so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&lock(&self.0)).into_owned()
    }
}

impl Drop for LogCapture {
    fn drop(&mut self) {
        lock(&TAPS).retain(|tap| !Arc::ptr_eq(tap, &self.0));
    }
}
