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

/// An error and its causes, outermost first, joined by `": "`: what a log line
/// needs when an error's own message is generic (a database error displays
/// as "database"; the server's message is in its source).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug, thiserror::Error)]
    #[error("database")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn the_chain_names_every_cause() {
        let e = Outer(std::io::Error::other("duplicate key value"));
        assert_eq!(error_chain(&e), "database: duplicate key value");
    }
}
