//! Periodic housekeeping inside `vouch serve`: retiring signing keys whose
//! tokens have all expired, forgetting old throttling attempts and idempotent
//! responses. Each chore is a use case of `app`, so this task runs on the
//! application itself.

use super::App;
use std::time::Duration;

/// How often housekeeping runs.
const EVERY: Duration = Duration::from_secs(30);

/// Runs the housekeeping loop until the instance stops.
pub async fn run(app: App) {
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tick.tick().await;
        if let Err(e) = app.retire_expired_signing_keys().await {
            tracing::warn!(error = %crate::telemetry::error_chain(&e), "retiring signing keys failed");
        }
        if let Err(e) = app.reload_keys().await {
            tracing::warn!(error = %crate::telemetry::error_chain(&e), "reloading signing keys failed");
        }
        if let Err(e) = app.prune_attempts().await {
            tracing::warn!(error = %crate::telemetry::error_chain(&e), "pruning sign-in attempts failed");
        }
        if let Err(e) = app.prune_idempotency().await {
            tracing::warn!(error = %crate::telemetry::error_chain(&e), "pruning idempotency records failed");
        }
    }
}
