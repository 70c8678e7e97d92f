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

/// Installs the global subscriber. `VOUCH_LOG` filters (default `info`);
/// `VOUCH_LOG_FORMAT=pretty` prints human-readable lines instead of JSON.
pub fn init() {
    let filter = EnvFilter::try_from_env("VOUCH_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let pretty = std::env::var("VOUCH_LOG_FORMAT").is_ok_and(|v| v == "pretty");
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
