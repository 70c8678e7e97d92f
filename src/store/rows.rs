//! Running a read-model query and mapping its rows.

use super::StoreError;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

/// One row (or none) of a prepared, cached statement, mapped by `map`.
pub(super) async fn query_opt<T>(
    c: &impl GenericClient,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    map: fn(&Row) -> Result<T, tokio_postgres::Error>,
) -> Result<Option<T>, StoreError> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.query_opt(&stmt, params)
        .await?
        .as_ref()
        .map(map)
        .transpose()?)
}

/// Every row of a prepared, cached statement, mapped by `map`.
pub(super) async fn query_all<T>(
    c: &impl GenericClient,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    map: fn(&Row) -> Result<T, tokio_postgres::Error>,
) -> Result<Vec<T>, StoreError> {
    let stmt = c.prepare_cached(sql).await?;
    let rows = c.query(&stmt, params).await?;
    Ok(rows.iter().map(map).collect::<Result<_, _>>()?)
}
