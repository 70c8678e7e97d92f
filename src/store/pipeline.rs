//! Pipelined statements: sent back to back, every answer awaited.
//!
//! tokio-postgres queues a request when its future is first polled, provided
//! the statement is already prepared (nothing to await before the send), and
//! `join`/`join_all` poll their futures in order. So statements prepared
//! first and then awaited together reach the server in the order given, in
//! one round trip.

use super::StoreError;
use deadpool_postgres::GenericClient;
use std::future::Future;
use tokio_postgres::types::ToSql;
use tokio_postgres::Statement;

/// A parameter of a [`Write`], owned.
pub type Param = Box<dyn ToSql + Sync + Send>;

/// One statement to run, described without IO: SQL and owned parameters.
pub struct Write {
    /// The statement.
    pub sql: &'static str,
    /// Its parameters, in order.
    pub params: Vec<Param>,
}

impl Write {
    /// A statement with its parameters.
    pub fn new(sql: &'static str, params: Vec<Param>) -> Self {
        Self { sql, params }
    }

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

/// Boxes each expression as a [`Param`].
macro_rules! params {
    ($($p:expr),* $(,)?) => {
        vec![$(Box::new($p) as $crate::store::pipeline::Param),*]
    };
}
pub(crate) use params;

/// Prepares every write's statement (a cached one costs no round trip).
pub async fn prepare(
    client: &impl GenericClient,
    writes: &[Write],
) -> Result<Vec<Statement>, StoreError> {
    let mut statements = Vec::with_capacity(writes.len());
    for w in writes {
        statements.push(client.prepare_cached(w.sql).await?);
    }
    Ok(statements)
}

/// Sends prepared writes; every request is queued on the first poll.
pub async fn send<'a>(
    client: &'a impl GenericClient,
    writes: &'a [Write],
    statements: &'a [Statement],
) -> Vec<Result<u64, StoreError>> {
    let sends = writes.iter().zip(statements).map(|(w, stmt)| async move {
        let params = w.refs();
        Ok(client.execute(stmt, &params).await?)
    });
    futures_util::future::join_all(sends).await
}

/// Runs writes on one connection, pipelined, in order.
pub async fn run(client: &impl GenericClient, writes: &[Write]) -> Result<(), StoreError> {
    let statements = prepare(client, writes).await?;
    let outcomes = send(client, writes, &statements).await;
    StoreError::first_cause(outcomes.into_iter().filter_map(Result::err)).map_or(Ok(()), Err)
}

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
