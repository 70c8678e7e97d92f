//! Embedded migrations, applied under an advisory lock so that instances
//! starting together migrate once.

use super::{Pool, StoreError};

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Advisory-lock key held while migrating ("vouch-mg").
const MIGRATION_LOCK: i64 = 0x766f_7563_682d_6d67;

/// Applies every pending migration. Safe to call from several instances at once.
pub async fn run(pool: &Pool) -> Result<(), StoreError> {
    let mut client = pool.get().await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let report = embedded::migrations::runner()
        .set_abort_divergent(true)
        .run_async(&mut **client)
        .await;
    // Unlock before reporting, whatever happened.
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await?;
    let report = report.map_err(StoreError::Migration)?;
    for m in report.applied_migrations() {
        tracing::info!(migration = %m, "applied migration");
    }
    Ok(())
}

/// Holds the migration lock until this session ends: instances that start
/// meanwhile wait before they migrate, so none runs during a rewrite.
pub async fn hold_migrations(c: &impl deadpool_postgres::GenericClient) -> Result<(), StoreError> {
    c.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    Ok(())
}
