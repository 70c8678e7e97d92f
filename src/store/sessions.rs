//! The `sessions` read model: one row per session stream.

use super::rows::{query_all, query_opt};
use super::StoreError;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use uuid::Uuid;

/// A row of `sessions` (without the refresh-token hash).
#[derive(Debug, Clone)]
pub struct SessionRow {
    /// Its id (UUID v7).
    pub id: Uuid,
    /// The user.
    pub user_id: Uuid,
    /// Sign-in time.
    pub created_at: DateTime<Utc>,
    /// Last refresh.
    pub last_refreshed_at: Option<DateTime<Utc>>,
    /// Absolute end.
    pub expires_at: DateTime<Utc>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Client address at sign-in.
    pub ip: Option<String>,
    /// Client user agent at sign-in.
    pub user_agent: Option<String>,
    /// How the user signed in (RFC 8176 values).
    pub amr: Vec<String>,
}

const SESSION_COLUMNS: &str =
    "id, user_id, created_at, last_refreshed_at, expires_at, revoked_at, ip, user_agent, amr";

fn session_row(r: &Row) -> Result<SessionRow, tokio_postgres::Error> {
    Ok(SessionRow {
        id: r.try_get(0)?,
        user_id: r.try_get(1)?,
        created_at: r.try_get(2)?,
        last_refreshed_at: r.try_get(3)?,
        expires_at: r.try_get(4)?,
        revoked_at: r.try_get(5)?,
        ip: r.try_get(6)?,
        user_agent: r.try_get(7)?,
        amr: r.try_get(8)?,
    })
}

/// Finds a session by id.
pub async fn find_session(
    c: &impl GenericClient,
    id: Uuid,
) -> Result<Option<SessionRow>, StoreError> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1");
    query_opt(c, &sql, &[&id], session_row).await
}

/// Whether a session can authenticate: its user, whether it is revoked (or
/// its user disabled, which revokes it too) and its end.
pub async fn find_session_liveness(
    c: &impl GenericClient,
    id: Uuid,
) -> Result<Option<(Uuid, bool, DateTime<Utc>)>, StoreError> {
    query_opt(
        c,
        "SELECT s.user_id, s.revoked_at IS NOT NULL OR coalesce(u.disabled, true), s.expires_at \
         FROM sessions s LEFT JOIN users u ON u.id = s.user_id WHERE s.id = $1",
        &[&id],
        |r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)),
    )
    .await
}

/// Whether `refresh_token_hash` is the current refresh token of a session
/// that is neither revoked nor past its end.
pub async fn is_refresh_token_current(
    c: &impl GenericClient,
    session_id: Uuid,
    refresh_token_hash: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let stmt = c
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM sessions WHERE id = $1 AND refresh_token_hash = $2 \
             AND revoked_at IS NULL AND expires_at > $3)",
        )
        .await?;
    let row = c
        .query_one(&stmt, &[&session_id, &refresh_token_hash, &now])
        .await?;
    Ok(row.try_get(0)?)
}

/// A user's sessions that are neither revoked nor past their end, newest first.
pub async fn find_active_sessions(
    c: &impl GenericClient,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<SessionRow>, StoreError> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = $1 AND revoked_at IS NULL \
         AND expires_at > $2 ORDER BY created_at DESC, id"
    );
    query_all(c, &sql, &[&user_id, &now], session_row).await
}

/// What a refresh decides on, read from the read model instead of the stream.
#[derive(Debug, Clone)]
pub struct RefreshSnapshot {
    /// The session's user.
    pub user_id: Uuid,
    /// The current refresh token's hash.
    pub current_hash: String,
    /// The absolute end of the session.
    pub expires_at: DateTime<Utc>,
    /// Whether the session ended.
    pub is_revoked: bool,
    /// The stream version the row reflects: the version a refresh appends after.
    pub version: i32,
    /// Whether the session ever issued the presented token.
    pub issued_presented: bool,
}

/// The session as a refresh with the token hashing to `presented_hash` needs
/// it, in one statement.
pub async fn find_refresh_snapshot(
    c: &impl GenericClient,
    id: Uuid,
    presented_hash: &str,
) -> Result<Option<RefreshSnapshot>, StoreError> {
    let stmt = c
        .prepare_cached(
            "SELECT s.user_id, s.refresh_token_hash, s.expires_at, s.revoked_at IS NOT NULL, s.version, \
             EXISTS (SELECT 1 FROM session_refresh_tokens t \
                     WHERE t.session_id = s.id AND t.refresh_token_hash = $2) \
             FROM sessions s WHERE s.id = $1",
        )
        .await?;
    let Some(r) = c.query_opt(&stmt, &[&id, &presented_hash]).await? else {
        return Ok(None);
    };
    Ok(Some(RefreshSnapshot {
        user_id: r.try_get(0)?,
        current_hash: r.try_get(1)?,
        expires_at: r.try_get(2)?,
        is_revoked: r.try_get(3)?,
        version: r.try_get(4)?,
        issued_presented: r.try_get(5)?,
    }))
}
