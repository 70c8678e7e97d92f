//! The `passkeys` read model (one row per passkey of a user stream) and the
//! `passkey_ceremonies` a WebAuthn ceremony keeps between its two requests.

use super::rows::{query_all, query_opt};
use super::StoreError;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use uuid::Uuid;

/// A row of `passkeys`.
#[derive(Debug, Clone)]
pub struct PasskeyRow {
    /// Its id.
    pub id: Uuid,
    /// Whose it is.
    pub user_id: Uuid,
    /// What the user calls it (absent once they were erased).
    pub name: Option<String>,
    /// The WebAuthn credential id, base64url.
    pub credential_id: String,
    /// Whether the authenticator may sync it.
    pub backup_eligible: bool,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// When it last signed.
    pub last_used_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, user_id, name, credential_id, backup_eligible, created_at, last_used_at";

fn passkey_row(r: &Row) -> Result<PasskeyRow, tokio_postgres::Error> {
    Ok(PasskeyRow {
        id: r.try_get(0)?,
        user_id: r.try_get(1)?,
        name: r.try_get(2)?,
        credential_id: r.try_get(3)?,
        backup_eligible: r.try_get(4)?,
        created_at: r.try_get(5)?,
        last_used_at: r.try_get(6)?,
    })
}

/// The passkeys of a user, oldest first.
pub async fn find_user_passkeys(
    c: &impl GenericClient,
    user_id: Uuid,
) -> Result<Vec<PasskeyRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM passkeys WHERE user_id = $1 ORDER BY created_at, id");
    query_all(c, &sql, &[&user_id], passkey_row).await
}

/// A passkey of a user.
pub async fn find_passkey(
    c: &impl GenericClient,
    user_id: Uuid,
    id: Uuid,
) -> Result<Option<PasskeyRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM passkeys WHERE id = $1 AND user_id = $2");
    query_opt(c, &sql, &[&id, &user_id], passkey_row).await
}

/// The passkey registered with a credential id (base64url).
pub async fn find_by_credential_id(
    c: &impl GenericClient,
    credential_id: &str,
) -> Result<Option<PasskeyRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM passkeys WHERE credential_id = $1");
    query_opt(c, &sql, &[&credential_id], passkey_row).await
}

/// What a ceremony is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Registering a passkey of a user.
    Registration,
    /// A sign-in with a passkey alone.
    SignIn,
    /// A passkey answering a sign-in's challenge.
    SecondFactor,
}

impl Purpose {
    /// Its stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registration => "registration",
            Self::SignIn => "sign_in",
            Self::SecondFactor => "second_factor",
        }
    }
}

/// Stores a ceremony's sealed state, and forgets expired ones.
pub async fn create_ceremony(
    c: &impl GenericClient,
    id: Uuid,
    purpose: Purpose,
    user_id: Option<Uuid>,
    state: &[u8],
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    c.execute(
        "DELETE FROM passkey_ceremonies WHERE expires_at <= $1",
        &[&now],
    )
    .await?;
    c.execute(
        "INSERT INTO passkey_ceremonies (id, purpose, user_id, state, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
        &[&id, &purpose.as_str(), &user_id, &state, &expires_at],
    )
    .await?;
    Ok(())
}

/// Takes a live ceremony of `purpose` for `user_id` (none: a sign-in with a
/// passkey alone): deleted as it is read, so that only one request can ever
/// finish it, and only a request for its own user can take it.
pub async fn take_ceremony(
    c: &impl GenericClient,
    id: Uuid,
    purpose: Purpose,
    user_id: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<Option<Vec<u8>>, StoreError> {
    query_opt(
        c,
        "DELETE FROM passkey_ceremonies WHERE id = $1 AND purpose = $2 \
         AND user_id IS NOT DISTINCT FROM $3 AND expires_at > $4 RETURNING state",
        &[&id, &purpose.as_str(), &user_id, &now],
        |r| r.try_get(0),
    )
    .await
}
