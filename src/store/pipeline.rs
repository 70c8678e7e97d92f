//! Pipelined statements: sent back to back, every answer awaited.

use super::StoreError;
use std::future::Future;

/// Awaits every pipelined statement: all results, or the error that explains
/// the failure (see [`StoreError::first_cause`]).
pub async fn all<T>(
    statements: impl IntoIterator<Item = impl Future<Output = Result<T, StoreError>>>,
) -> Result<Vec<T>, StoreError> {
    let mut values = Vec::new();
    let mut errors = Vec::new();
    for outcome in futures_util::future::join_all(statements).await {
        match outcome {
            Ok(value) => values.push(value),
            Err(e) => errors.push(e),
        }
    }
    StoreError::first_cause(errors).map_or(Ok(values), Err)
}
