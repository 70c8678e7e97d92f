//! One tracing subscriber for the process: JSON lines by default.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `VOUCH_LOG` filters (default `info`);
/// `VOUCH_LOG_FORMAT=pretty` prints human-readable lines instead of JSON.
pub fn init() {
    let filter = EnvFilter::try_from_env("VOUCH_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let pretty = std::env::var("VOUCH_LOG_FORMAT").is_ok_and(|v| v == "pretty");
    // A second init (tests) keeps the first subscriber.
    let _ = if pretty {
        builder.try_init()
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    };
}
