//! The `orgs` read model: one row per org stream.

use super::rows::{query_all, query_opt};
use super::StoreError;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use uuid::Uuid;

/// A row of `orgs`.
#[derive(Debug, Clone)]
pub struct OrgRow {
    /// Its id (UUID v7).
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Unique slug.
    pub slug: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

pub(super) fn org_row(r: &Row) -> Result<OrgRow, tokio_postgres::Error> {
    Ok(OrgRow {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        slug: r.try_get(2)?,
        created_at: r.try_get(3)?,
    })
}

/// Finds an org by id.
pub async fn find_org(c: &impl GenericClient, id: Uuid) -> Result<Option<OrgRow>, StoreError> {
    query_opt(
        c,
        "SELECT id, name, slug, created_at FROM orgs WHERE id = $1",
        &[&id],
        org_row,
    )
    .await
}

/// Finds an org by slug.
pub async fn find_org_by_slug(
    c: &impl GenericClient,
    slug: &str,
) -> Result<Option<OrgRow>, StoreError> {
    query_opt(
        c,
        "SELECT id, name, slug, created_at FROM orgs WHERE slug = $1",
        &[&slug],
        org_row,
    )
    .await
}

/// Which orgs a page of `find_orgs` covers.
#[derive(Debug, Clone, Copy)]
pub enum OrgScope {
    /// Every org (system admin).
    All,
    /// Orgs the user is a member of.
    MemberOf(Uuid),
    /// Exactly this org (an org key).
    Only(Uuid),
}

/// A page of orgs ordered by id, after `after`.
pub async fn find_orgs(
    c: &impl GenericClient,
    scope: OrgScope,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<OrgRow>, StoreError> {
    let after = after.unwrap_or(Uuid::nil());
    match scope {
        OrgScope::All => {
            query_all(
                c,
                "SELECT id, name, slug, created_at FROM orgs WHERE id > $1 ORDER BY id LIMIT $2",
                &[&after, &limit],
                org_row,
            )
            .await
        }
        OrgScope::MemberOf(user_id) => {
            query_all(
                c,
                "SELECT o.id, o.name, o.slug, o.created_at FROM orgs o \
                 JOIN memberships m ON m.org_id = o.id \
                 WHERE m.user_id = $3 AND o.id > $1 ORDER BY o.id LIMIT $2",
                &[&after, &limit, &user_id],
                org_row,
            )
            .await
        }
        OrgScope::Only(org_id) => {
            query_all(
                c,
                "SELECT id, name, slug, created_at FROM orgs WHERE id = $3 AND id > $1 ORDER BY id LIMIT $2",
                &[&after, &limit, &org_id],
                org_row,
            )
            .await
        }
    }
}
