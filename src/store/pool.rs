use super::StoreError;
use deadpool_postgres::{Manager, ManagerConfig, RecyclingMethod, Runtime, Timeouts};
use std::time::Duration;
use tokio_postgres::NoTls;

/// The connection pool every part of vouch shares.
pub type Pool = deadpool_postgres::Pool;

/// Opens a pool on `database_url`, creating the database first if it is missing.
pub async fn connect(database_url: &str, max_size: usize) -> Result<Pool, StoreError> {
    open(database_url, max_size, None).await
}

/// Opens a pool whose connections resolve unqualified tables in `schema` first
/// (then `public`): projections write there, the log is still read from `public`.
/// Its commits do not wait for the disk: a scratch schema is thrown away if
/// anything fails, and the transaction that swaps it in is an ordinary,
/// durable one whose commit flushes everything written before it.
pub async fn connect_in_schema(database_url: &str, schema: &str) -> Result<Pool, StoreError> {
    open(database_url, 1, Some(schema)).await
}

async fn open(
    database_url: &str,
    max_size: usize,
    schema: Option<&str>,
) -> Result<Pool, StoreError> {
    let config: tokio_postgres::Config = database_url
        .parse()
        .map_err(|e| StoreError::Config(format!("VOUCH_DATABASE_URL: {e}")))?;
    create_database_if_missing(&config).await?;
    let mut config = config;
    // A reader of the log waits for the oldest open writer: never let one idle.
    let mut options = "-c idle_in_transaction_session_timeout=10000".to_owned();
    if let Some(schema) = schema {
        options.push_str(&format!(
            " -c search_path={schema},public -c synchronous_commit=off"
        ));
    }
    config.options(&options);
    config.connect_timeout(Duration::from_secs(5));
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(max_size.max(1))
        .runtime(Runtime::Tokio1)
        .timeouts(Timeouts {
            wait: Some(Duration::from_secs(5)),
            create: Some(Duration::from_secs(5)),
            recycle: Some(Duration::from_secs(5)),
        })
        .build()
        .map_err(|e| StoreError::Config(e.to_string()))
}

async fn create_database_if_missing(config: &tokio_postgres::Config) -> Result<(), StoreError> {
    let Some(name) = config.get_dbname().map(str::to_owned) else {
        return Ok(());
    };
    let mut admin = config.clone();
    admin.dbname("postgres");
    admin.connect_timeout(Duration::from_secs(5));
    let (client, connection) = admin.connect(NoTls).await?;
    let conn = tokio::spawn(connection);
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await?
        .is_some();
    if !exists {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        match client
            .batch_execute(&format!("CREATE DATABASE {quoted}"))
            .await
        {
            Ok(()) => tracing::info!(database = %name, "created database"),
            // Another instance created it at the same moment.
            Err(e)
                if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE)
                    || e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {}
            Err(e) => return Err(e.into()),
        }
    }
    drop(client);
    let _ = conn.await;
    Ok(())
}

/// Whether the database answers a trivial query through the pool.
pub async fn is_up(pool: &Pool) -> bool {
    match pool.get().await {
        Ok(client) => client.simple_query("SELECT 1").await.is_ok(),
        Err(_) => false,
    }
}
