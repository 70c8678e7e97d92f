//! The `memberships` read model: an org's members, joined with their users.

use super::orgs::{org_row, OrgRow};
use super::rows::{query_all, query_opt};
use super::StoreError;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use uuid::Uuid;

/// A member of an org, joined with the user.
#[derive(Debug, Clone)]
pub struct MemberRow {
    /// The user.
    pub user_id: Uuid,
    /// Their email.
    pub email: String,
    /// Their name.
    pub name: Option<String>,
    /// Their role name.
    pub role: String,
    /// When they joined.
    pub added_at: DateTime<Utc>,
}

fn member_row(r: &Row) -> Result<MemberRow, tokio_postgres::Error> {
    Ok(MemberRow {
        user_id: r.try_get(0)?,
        email: r.try_get(1)?,
        name: r.try_get(2)?,
        role: r.try_get(3)?,
        added_at: r.try_get(4)?,
    })
}

// An erased user is no one's member (erasure ends their memberships; a
// membership added in a race with it stays hidden).
const MEMBER_SELECT: &str = "SELECT m.user_id, u.email, u.name, m.role, m.added_at \
    FROM memberships m JOIN users u ON u.id = m.user_id AND u.erased_at IS NULL";

/// The members of an org, oldest first.
pub async fn find_members(
    c: &impl GenericClient,
    org_id: Uuid,
) -> Result<Vec<MemberRow>, StoreError> {
    let sql = format!("{MEMBER_SELECT} WHERE m.org_id = $1 ORDER BY m.added_at, m.user_id");
    query_all(c, &sql, &[&org_id], member_row).await
}

/// One member of an org.
pub async fn find_member(
    c: &impl GenericClient,
    org_id: Uuid,
    user_id: Uuid,
) -> Result<Option<MemberRow>, StoreError> {
    let sql = format!("{MEMBER_SELECT} WHERE m.org_id = $1 AND m.user_id = $2");
    query_opt(c, &sql, &[&org_id, &user_id], member_row).await
}

/// A user's org memberships as `(org, role)`.
pub async fn find_memberships_of(
    c: &impl GenericClient,
    user_id: Uuid,
) -> Result<Vec<(OrgRow, String)>, StoreError> {
    query_all(
        c,
        "SELECT o.id, o.name, o.slug, o.created_at, m.role FROM memberships m \
         JOIN orgs o ON o.id = m.org_id WHERE m.user_id = $1 ORDER BY o.id",
        &[&user_id],
        |r| Ok((org_row(r)?, r.try_get(4)?)),
    )
    .await
}
