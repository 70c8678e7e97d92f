//! Row locks that tie a session to the user's credential state.
//!
//! A sign-in checks a password in the time argon2 takes, outside any
//! transaction; a disable or a password change may commit meanwhile. So the
//! session starts in a transaction that holds the user's row in share mode and
//! finds it as the password was checked, and a disable or password change
//! holds the row exclusively before it reads which sessions to end: one of the
//! two waits for the other, and neither misses the other's work.

use super::StoreError;
use deadpool_postgres::GenericClient;
use uuid::Uuid;

/// Holds the user's row in share mode until the transaction ends; true while
/// the user is enabled and `password_hash` is still their password.
pub async fn lock_credential_for_session(
    c: &impl GenericClient,
    user_id: Uuid,
    password_hash: &str,
    password_only: bool,
) -> Result<bool, StoreError> {
    // A session of the password alone is refused once a second factor is on
    // (enabled while the password was checked).
    let stmt = c
        .prepare_cached(
            "SELECT NOT disabled AND erased_at IS NULL AND password_hash = $2 \
             AND NOT ($3 AND mfa_enabled) FROM users WHERE id = $1 FOR SHARE",
        )
        .await?;
    let row = c
        .query_opt(&stmt, &[&user_id, &password_hash, &password_only])
        .await?;
    Ok(match row {
        Some(row) => row.try_get(0)?,
        None => false,
    })
}

/// Holds the user's row exclusively until the transaction ends, so that no
/// session starts meanwhile; returns the user's current password hash, `None`
/// for an unknown or erased user.
pub async fn lock_credential_for_change(
    c: &impl GenericClient,
    user_id: Uuid,
) -> Result<Option<String>, StoreError> {
    let stmt = c
        .prepare_cached(
            "SELECT password_hash FROM users WHERE id = $1 AND erased_at IS NULL FOR UPDATE",
        )
        .await?;
    let row = c.query_opt(&stmt, &[&user_id]).await?;
    Ok(match row {
        Some(row) => Some(row.try_get(0)?),
        None => None,
    })
}
