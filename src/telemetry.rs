//! One tracing subscriber for the process: JSON lines by default.

use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// vouch's log line format: one JSON object per event, its fields at the top
/// level, with the current span (request id, method, path) attached.
pub fn json_layer<S, W>(writer: W) -> impl Layer<S> + Send + Sync
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_writer(writer)
}

/// Lines that stay off whatever the filter asks:
/// - tokio-postgres logs every statement's parameters at debug: password and
///   key hashes, emails, client addresses;
/// - lapin warns once per message the broker returns (with no queue bound,
///   every event of every retry), with the message's body: the relay logs one
///   line per retry with the count instead.
const ALWAYS_OFF: [&str; 2] = [
    "tokio_postgres::query=info",
    "lapin::returned_messages=error",
];

/// The filter of a `VOUCH_LOG` value (`info` if it does not parse), with the
/// lines that would carry secrets or flood the log always off.
pub fn filter(spec: &str) -> EnvFilter {
    let filter = EnvFilter::try_new(spec).unwrap_or_else(|_| EnvFilter::new("info"));
    ALWAYS_OFF
        .iter()
        .filter_map(|d| d.parse().ok())
        .fold(filter, EnvFilter::add_directive)
}

/// Installs the global subscriber: `spec` filters (`VOUCH_LOG`); `pretty`
/// prints human-readable lines instead of JSON (`VOUCH_LOG_FORMAT`).
pub fn init(spec: &str, pretty: bool) {
    let filter = filter(spec);
    // A second init (tests) keeps the first subscriber.
    let _installed = if pretty {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init()
            .is_ok()
    } else {
        tracing_subscriber::registry()
            .with(filter)
            .with(json_layer(std::io::stderr))
            .try_init()
            .is_ok()
    };
}

/// An error and its causes, outermost first, joined by `": "`: what a log line
/// needs when an error's own message is generic (a database error displays
/// as "database"; the server's message is in its source).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        // A wrapper that prints its source already (`#[error("…{0}")]` with
        // `#[from]`) would otherwise say the same thing twice.
        let text = s.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(spec: &str) -> String {
        let lines = Lines::default();
        let sink = lines.clone();
        let subscriber = tracing_subscriber::registry()
            .with(filter(spec))
            .with(json_layer(move || sink.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!(target: "tokio_postgres::query", "parameters: [\"$argon2id$...\"]");
            tracing::debug!(target: "tokio_postgres::prepare", "preparing a statement");
            tracing::debug!("a line of vouch");
        });
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        text
    }

    #[test]
    fn statement_parameters_are_never_logged() {
        for spec in [
            "debug",
            "trace",
            "tokio_postgres=debug",
            "tokio_postgres::query=trace",
        ] {
            let text = logged(spec);
            assert!(!text.contains("argon2"), "{spec}: {text}");
        }
        let text = logged("debug");
        assert!(text.contains("preparing a statement"), "{text}");
        assert!(text.contains("a line of vouch"), "{text}");
        assert!(
            logged("not a filter=").is_empty(),
            "a bad filter falls back to info"
        );
    }

    #[derive(Debug, thiserror::Error)]
    #[error("database")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn the_chain_names_every_cause() {
        let e = Outer(std::io::Error::other("duplicate key value"));
        assert_eq!(error_chain(&e), "database: duplicate key value");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("key file: {0}")]
    struct Prints(#[from] std::io::Error);

    #[test]
    fn a_cause_its_wrapper_printed_already_is_not_repeated() {
        let e = Prints(std::io::Error::other("holds another key"));
        assert_eq!(error_chain(&e), "key file: holds another key");
    }
}
