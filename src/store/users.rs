//! The `users` read model: one row per user stream.

use super::rows::query_opt;
use super::StoreError;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use uuid::Uuid;

/// A row of `users`.
#[derive(Debug, Clone)]
pub struct UserRow {
    /// Its id (UUID v7).
    pub id: Uuid,
    /// Normalised email.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// argon2id PHC string; never serialised to clients.
    pub password_hash: String,
    /// Whether the user proved their current address.
    pub email_verified: bool,
    /// Whether sign-in asks for a second factor.
    pub mfa_enabled: bool,
    /// Whether sign-in is refused.
    pub disabled: bool,
    /// Registration time.
    pub created_at: DateTime<Utc>,
}

const USER_COLUMNS: &str =
    "id, email, name, password_hash, disabled, created_at, email_verified, mfa_enabled";

fn user_row(r: &Row) -> Result<UserRow, tokio_postgres::Error> {
    Ok(UserRow {
        id: r.try_get(0)?,
        email: r.try_get(1)?,
        name: r.try_get(2)?,
        password_hash: r.try_get(3)?,
        disabled: r.try_get(4)?,
        created_at: r.try_get(5)?,
        email_verified: r.try_get(6)?,
        mfa_enabled: r.try_get(7)?,
    })
}

/// Finds a user by id; an erased user is found by no one.
pub async fn find_user(c: &impl GenericClient, id: Uuid) -> Result<Option<UserRow>, StoreError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1 AND erased_at IS NULL");
    query_opt(c, &sql, &[&id], user_row).await
}

/// A page of living users in id order, after `after`.
pub async fn find_users_page(
    c: &impl GenericClient,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<UserRow>, StoreError> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users WHERE erased_at IS NULL \
         AND ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2"
    );
    super::rows::query_all(c, &sql, &[&after, &limit], user_row).await
}

/// Finds a user by normalised email.
pub async fn find_user_by_email(
    c: &impl GenericClient,
    email: &str,
) -> Result<Option<UserRow>, StoreError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
    query_opt(c, &sql, &[&email], user_row).await
}

/// Emails of users by id.
pub async fn find_emails(
    c: &impl GenericClient,
    ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, String>, StoreError> {
    let rows = c
        .query(
            "SELECT id, email FROM users WHERE id = ANY($1) AND email IS NOT NULL",
            &[&ids],
        )
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}
