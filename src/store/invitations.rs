//! The `invitations` read model: one row per invitation of an org stream.

use super::rows::{query_all, query_opt};
use super::StoreError;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use uuid::Uuid;

/// A row of `invitations`.
#[derive(Debug, Clone)]
pub struct InvitationRow {
    /// Its id (UUID v7).
    pub id: Uuid,
    /// The org.
    pub org_id: Uuid,
    /// The invitee's address (absent once they were erased).
    pub email: Option<String>,
    /// The role on accepting.
    pub role: String,
    /// `pending`, `accepted` or `revoked` (an expired one is still `pending` here).
    pub status: String,
    /// The user who invited, if a user did.
    pub invited_by: Option<Uuid>,
    /// The user who accepted.
    pub accepted_by: Option<Uuid>,
    /// When the token stops working.
    pub expires_at: DateTime<Utc>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, org_id, email, role, status, invited_by, accepted_by, expires_at, created_at";

fn invitation_row(r: &Row) -> Result<InvitationRow, tokio_postgres::Error> {
    Ok(InvitationRow {
        id: r.try_get(0)?,
        org_id: r.try_get(1)?,
        email: r.try_get(2)?,
        role: r.try_get(3)?,
        status: r.try_get(4)?,
        invited_by: r.try_get(5)?,
        accepted_by: r.try_get(6)?,
        expires_at: r.try_get(7)?,
        created_at: r.try_get(8)?,
    })
}

/// Finds an invitation by id.
pub async fn find_invitation(
    c: &impl GenericClient,
    id: Uuid,
) -> Result<Option<InvitationRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM invitations WHERE id = $1");
    query_opt(c, &sql, &[&id], invitation_row).await
}

/// A page of an org's invitations in id order, after `after`.
pub async fn find_invitations_page(
    c: &impl GenericClient,
    org_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<InvitationRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM invitations WHERE org_id = $1 \
         AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3"
    );
    query_all(c, &sql, &[&org_id, &after, &limit], invitation_row).await
}

/// The invitations that hold a person's address: those they accepted, and
/// those sent to `email`, whatever became of them.
pub async fn find_naming(
    c: &impl GenericClient,
    user_id: Uuid,
    email: Option<&str>,
) -> Result<Vec<Uuid>, StoreError> {
    let rows = c
        .query(
            "SELECT id FROM invitations WHERE accepted_by = $1 OR ($2::text IS NOT NULL AND email = $2)",
            &[&user_id, &email],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?)
}

/// Clears the address of these invitations (their keys were destroyed).
pub async fn forget_emails(c: &impl GenericClient, ids: &[Uuid]) -> Result<(), StoreError> {
    if !ids.is_empty() {
        c.execute(
            "UPDATE invitations SET email = NULL WHERE id = ANY($1) AND email IS NOT NULL",
            &[&ids],
        )
        .await?;
    }
    Ok(())
}
