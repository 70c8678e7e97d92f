//! `auth_attempts`: sign-in and sign-up attempts the throttles count. Not
//! events: look-ups, pruned once they leave every window.

use super::StoreError;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

/// Times of the rows `sql` selects for `key` since `since`, oldest first.
async fn times(
    c: &impl GenericClient,
    sql: &str,
    key: &str,
    since: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, StoreError> {
    let stmt = c.prepare_cached(sql).await?;
    let rows = c.query(&stmt, &[&key, &since]).await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?)
}

/// Takes the transaction-scoped lock of one throttle bucket (`kind` and its
/// key): reservations of one bucket are counted one after another.
async fn lock(c: &impl GenericClient, kind: &str, key: &str) -> Result<(), StoreError> {
    c.execute(
        "SELECT pg_advisory_xact_lock(hashtext($1 || ':' || $2))",
        &[&kind, &key],
    )
    .await?;
    Ok(())
}

/// Locks the sign-in buckets of an email and, if known, an address, always in
/// that order, so that two reservations never wait on each other in a cycle.
pub async fn lock_sign_in(
    c: &impl GenericClient,
    email: &str,
    ip: Option<&str>,
) -> Result<(), StoreError> {
    lock(c, "signin", email).await?;
    if let Some(ip) = ip {
        lock(c, "signin-ip", ip).await?;
    }
    Ok(())
}

/// Failed or still unsettled sign-ins for `email` since `since`.
pub async fn find_sign_in_failures(
    c: &impl GenericClient,
    email: &str,
    since: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, StoreError> {
    times(
        c,
        "SELECT at FROM auth_attempts WHERE kind = 'signin' AND email = $1 \
         AND failed IS DISTINCT FROM false AND at > $2 ORDER BY at",
        email,
        since,
    )
    .await
}

/// Every sign-in from `ip` since `since`.
pub async fn find_sign_ins_from(
    c: &impl GenericClient,
    ip: &str,
    since: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, StoreError> {
    times(
        c,
        "SELECT at FROM auth_attempts WHERE kind = 'signin' AND ip = $1 AND at > $2 ORDER BY at",
        ip,
        since,
    )
    .await
}

/// Records an unsettled sign-in attempt; returns its id.
pub async fn create_sign_in(
    c: &impl GenericClient,
    email: &str,
    ip: Option<&str>,
    at: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let row = c
        .query_one(
            "INSERT INTO auth_attempts (kind, email, ip, failed, at) VALUES ('signin', $1, $2, NULL, $3) RETURNING id",
            &[&email, &ip, &at],
        )
        .await?;
    Ok(row.try_get(0)?)
}

/// Records whether a sign-in attempt failed.
pub async fn settle(c: &impl GenericClient, id: i64, failed: bool) -> Result<(), StoreError> {
    c.execute(
        "UPDATE auth_attempts SET failed = $2 WHERE id = $1",
        &[&id, &failed],
    )
    .await?;
    Ok(())
}

/// Locks the sign-up bucket of an address.
pub async fn lock_sign_up(c: &impl GenericClient, ip: &str) -> Result<(), StoreError> {
    lock(c, "signup", ip).await
}

/// Every sign-up from `ip` since `since`.
pub async fn find_sign_ups_from(
    c: &impl GenericClient,
    ip: &str,
    since: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, StoreError> {
    times(
        c,
        "SELECT at FROM auth_attempts WHERE kind = 'signup' AND ip = $1 AND at > $2 ORDER BY at",
        ip,
        since,
    )
    .await
}

/// Records a sign-up from `ip`.
pub async fn create_sign_up(
    c: &impl GenericClient,
    ip: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO auth_attempts (kind, ip, failed, at) VALUES ('signup', $1, false, $2)",
        &[&ip, &at],
    )
    .await?;
    Ok(())
}

/// A throttle bucket of the account-lifecycle flows: mails asked for
/// (`mail`, by email and by address) and wrong action tokens (`token`, by the
/// client's address). Keys are keyed indexes, never the values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// Mails asked for.
    Mail,
    /// Wrong action tokens of one client.
    Token,
    /// Passkey sign-ins started by one client.
    Ceremony,
}

impl Bucket {
    fn kind(self) -> &'static str {
        match self {
            Self::Mail => "mail",
            Self::Token => "token",
            Self::Ceremony => "ceremony",
        }
    }
}

/// Locks a bucket's key (in the caller's transaction).
pub async fn lock_bucket(
    c: &impl GenericClient,
    bucket: Bucket,
    key: &str,
) -> Result<(), StoreError> {
    lock(c, bucket.kind(), key).await
}

/// Times of a bucket's attempts for `key` (its `email` column) since `since`.
pub async fn find_bucket_times(
    c: &impl GenericClient,
    bucket: Bucket,
    key: &str,
    since: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, StoreError> {
    let sql = match bucket {
        Bucket::Mail => "SELECT at FROM auth_attempts WHERE kind = 'mail' AND email = $1 AND at > $2 ORDER BY at",
        Bucket::Token => "SELECT at FROM auth_attempts WHERE kind = 'token' AND email = $1 AND at > $2 ORDER BY at",
        Bucket::Ceremony => "SELECT at FROM auth_attempts WHERE kind = 'ceremony' AND email = $1 AND at > $2 ORDER BY at",
    };
    times(c, sql, key, since).await
}

/// Times of a bucket's attempts from address `ip` since `since`.
pub async fn find_bucket_times_from(
    c: &impl GenericClient,
    bucket: Bucket,
    ip: &str,
    since: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, StoreError> {
    let sql = match bucket {
        Bucket::Mail => {
            "SELECT at FROM auth_attempts WHERE kind = 'mail' AND ip = $1 AND at > $2 ORDER BY at"
        }
        Bucket::Token => {
            "SELECT at FROM auth_attempts WHERE kind = 'token' AND ip = $1 AND at > $2 ORDER BY at"
        }
        Bucket::Ceremony => {
            "SELECT at FROM auth_attempts WHERE kind = 'ceremony' AND ip = $1 AND at > $2 ORDER BY at"
        }
    };
    times(c, sql, ip, since).await
}

/// Records an attempt in a bucket.
pub async fn create_bucket_attempt(
    c: &impl GenericClient,
    bucket: Bucket,
    key: &str,
    ip: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO auth_attempts (kind, email, ip, failed, at) VALUES ($1, $2, $3, true, $4)",
        &[&bucket.kind(), &key, &ip, &at],
    )
    .await?;
    Ok(())
}

/// Forgets attempts older than `cutoff`.
pub async fn delete_before(
    c: &impl GenericClient,
    cutoff: DateTime<Utc>,
) -> Result<u64, StoreError> {
    Ok(
        c.execute("DELETE FROM auth_attempts WHERE at < $1", &[&cutoff])
            .await?,
    )
}
