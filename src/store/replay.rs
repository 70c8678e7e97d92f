//! SQL for rebuilding read models: scratch schemas, the swap, and comparison.

use super::StoreError;
use deadpool_postgres::GenericClient;

/// Every table the projections write, in `public`.
pub const READ_MODELS: [&str; 9] = [
    "users",
    "orgs",
    "memberships",
    "invitations",
    "api_keys",
    "sessions",
    "session_refresh_tokens",
    "signing_keys",
    "passkeys",
];

/// Columns that are not derived from events (and so not compared).
const NOT_FROM_EVENTS: [(&str, &str); 1] = [("api_keys", "last_used_at")];

/// Whether `name` may name a schema of ours: `^[a-z_][a-z0-9_]{0,62}$`, not a system one.
pub fn is_valid_schema_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
        && !name.starts_with("pg_")
        && !["public", "information_schema"].contains(&name)
}

/// Creates `schema` with empty copies of every read-model table: columns,
/// defaults, checks and primary keys (the projections update rows by key).
/// Secondary indexes and unique constraints come later, from
/// [`index_scratch`]: one sorted build is far cheaper than a million inserts
/// into each index.
pub async fn create_scratch(c: &impl GenericClient, schema: &str) -> Result<(), StoreError> {
    let mut sql = format!("CREATE SCHEMA {schema};");
    for t in READ_MODELS {
        sql.push_str(&format!(
            "CREATE TABLE {schema}.{t} (LIKE public.{t} INCLUDING ALL EXCLUDING INDEXES);"
        ));
        for (name, definition) in constraints(c, t, "p").await? {
            sql.push_str(&format!(
                "ALTER TABLE {schema}.{t} ADD CONSTRAINT {name} {definition};"
            ));
        }
    }
    c.batch_execute(&sql).await?;
    Ok(())
}

/// Adds the live tables' unique constraints and other indexes to the scratch
/// tables, under the same names (the API tells violations apart by them). A
/// log that broke a uniqueness rule fails here, as it would have row by row.
pub async fn index_scratch(c: &impl GenericClient, schema: &str) -> Result<(), StoreError> {
    let mut sql = String::new();
    for t in READ_MODELS {
        for (name, definition) in constraints(c, t, "u").await? {
            sql.push_str(&format!(
                "ALTER TABLE {schema}.{t} ADD CONSTRAINT {name} {definition};"
            ));
        }
        let plain = c
            .query(
                "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i \
                 WHERE i.indrelid = ('public.' || $1)::regclass \
                   AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)",
                &[&t],
            )
            .await?;
        for row in plain {
            let definition: String = row.try_get(0)?;
            let on_live = format!(" ON public.{t} ");
            if !definition.contains(&on_live) {
                return Err(StoreError::Decode(format!("index definition {definition}")));
            }
            sql.push_str(&definition.replacen(&on_live, &format!(" ON {schema}.{t} "), 1));
            sql.push(';');
        }
    }
    c.batch_execute(&sql).await?;
    Ok(())
}

/// `(name, definition)` of the live table's constraints of one kind (`p`, `u`).
async fn constraints(
    c: &impl GenericClient,
    table: &str,
    kind: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    let rows = c
        .query(
            "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE conrelid = ('public.' || $1)::regclass AND contype = $2::text::\"char\" ORDER BY conname",
            &[&table, &kind],
        )
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// Drops a scratch schema and everything in it.
pub async fn drop_schema(c: &impl GenericClient, schema: &str) -> Result<(), StoreError> {
    c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .await?;
    Ok(())
}

/// Whether a schema exists.
pub async fn schema_exists(c: &impl GenericClient, schema: &str) -> Result<bool, StoreError> {
    let row = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            &[&schema],
        )
        .await?;
    Ok(row.try_get(0)?)
}

/// Locks the live read models: `SHARE` keeps writers out, `ACCESS EXCLUSIVE` readers too.
pub async fn lock_live(c: &impl GenericClient, mode: &str) -> Result<(), StoreError> {
    let tables = READ_MODELS.map(|t| format!("public.{t}")).join(", ");
    c.batch_execute(&format!("LOCK TABLE {tables} IN {mode} MODE"))
        .await?;
    Ok(())
}

/// Copies `last_used_at`, which no event holds, from the live keys to the
/// rebuilt ones where it differs. Run once before the swap's lock, for every
/// key, and again under it, where only the keys used since have to be written.
pub async fn carry_usage(c: &impl GenericClient, schema: &str) -> Result<u64, StoreError> {
    let sql = format!(
        "UPDATE {schema}.api_keys n SET last_used_at = o.last_used_at \
         FROM public.api_keys o \
         WHERE o.id = n.id AND o.last_used_at IS NOT NULL \
           AND n.last_used_at IS DISTINCT FROM o.last_used_at"
    );
    Ok(c.execute(&sql, &[]).await?)
}

/// Refreshes the planner's statistics of the rebuilt tables, so the first
/// queries after the swap are planned on real numbers.
pub async fn analyze_scratch(c: &impl GenericClient, schema: &str) -> Result<(), StoreError> {
    let tables = READ_MODELS.map(|t| format!("{schema}.{t}")).join(", ");
    c.batch_execute(&format!("ANALYZE {tables}")).await?;
    Ok(())
}

/// Swaps the rebuilt tables of `schema` into `public`, moving the old ones to
/// `retired` (created here), after carrying over the latest `last_used_at`.
pub async fn swap_in(
    c: &impl GenericClient,
    schema: &str,
    retired: &str,
) -> Result<(), StoreError> {
    carry_usage(c, schema).await?;
    let mut sql = format!("CREATE SCHEMA {retired};");
    for t in READ_MODELS {
        sql.push_str(&format!("ALTER TABLE public.{t} SET SCHEMA {retired};"));
        sql.push_str(&format!("ALTER TABLE {schema}.{t} SET SCHEMA public;"));
    }
    // Every instance's credential cache forgets what the old tables said.
    sql.push_str("SELECT pg_notify('vouch_invalidate', 'all');");
    c.batch_execute(&sql).await?;
    Ok(())
}

/// The columns of a read model that come from events.
async fn compared_columns(c: &impl GenericClient, table: &str) -> Result<Vec<String>, StoreError> {
    let rows = c
        .query(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
            &[&table],
        )
        .await?;
    let mut columns = Vec::new();
    for r in rows {
        let column: String = r.try_get(0)?;
        if !NOT_FROM_EVENTS.contains(&(table, column.as_str())) {
            columns.push(format!("\"{column}\""));
        }
    }
    Ok(columns)
}

/// Rows that differ between `public` and `schema`, as `(table, side, row)` with
/// side `live` (only in the live table) or `replayed` (only in the rebuild).
pub async fn find_drift(
    c: &impl GenericClient,
    schema: &str,
    limit: i64,
) -> Result<Vec<(String, &'static str, String)>, StoreError> {
    let mut drift = Vec::new();
    for t in READ_MODELS {
        let cols = compared_columns(c, t).await?.join(", ");
        for (side, a, b) in [("live", "public", schema), ("replayed", schema, "public")] {
            let sql = format!(
                "SELECT to_jsonb(d)::text FROM (SELECT {cols} FROM {a}.{t} EXCEPT ALL SELECT {cols} FROM {b}.{t}) d LIMIT {limit}"
            );
            for r in c.query(&sql, &[]).await? {
                drift.push((t.to_owned(), side, r.try_get(0)?));
            }
        }
    }
    Ok(drift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_checked() {
        for good in ["audit_2024", "_x", "vouch_asof"] {
            assert!(is_valid_schema_name(good), "{good}");
        }
        for bad in [
            "",
            "public",
            "pg_catalog",
            "Upper",
            "1abc",
            "a-b",
            "a;drop",
            &"a".repeat(64),
        ] {
            assert!(!is_valid_schema_name(bad), "{bad}");
        }
    }
}
