//! Read-model look-ups for the API.

use super::StoreError;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use uuid::Uuid;

/// A row of `users`.
#[derive(Debug, Clone)]
pub struct UserRow {
    /// Id.
    pub id: Uuid,
    /// Normalised email.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// argon2id PHC string; never serialised to clients.
    pub password_hash: String,
    /// Whether sign-in is refused.
    pub disabled: bool,
    /// Registration time.
    pub created_at: DateTime<Utc>,
}

/// A row of `orgs`.
#[derive(Debug, Clone)]
pub struct OrgRow {
    /// Id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Unique slug.
    pub slug: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

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

/// A row of `api_keys`.
#[derive(Debug, Clone)]
pub struct KeyRow {
    /// Id.
    pub id: Uuid,
    /// Owning org.
    pub org_id: Uuid,
    /// Label.
    pub name: String,
    /// First 12 characters of the key.
    pub prefix: String,
    /// Hex SHA-256 of the key; never serialised to clients.
    pub key_hash: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Revocation time.
    pub revoked_at: Option<DateTime<Utc>>,
    /// The key it replaced.
    pub rotated_from: Option<Uuid>,
    /// Issue time.
    pub created_at: DateTime<Utc>,
    /// Last successful verification or authentication (batched).
    pub last_used_at: Option<DateTime<Utc>>,
}

async fn query_opt<T>(
    c: &impl GenericClient,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    map: fn(&Row) -> Result<T, tokio_postgres::Error>,
) -> Result<Option<T>, StoreError> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.query_opt(&stmt, params)
        .await?
        .as_ref()
        .map(map)
        .transpose()?)
}

async fn query_all<T>(
    c: &impl GenericClient,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    map: fn(&Row) -> Result<T, tokio_postgres::Error>,
) -> Result<Vec<T>, StoreError> {
    let stmt = c.prepare_cached(sql).await?;
    let rows = c.query(&stmt, params).await?;
    Ok(rows.iter().map(map).collect::<Result<_, _>>()?)
}

const USER_COLUMNS: &str = "id, email, name, password_hash, disabled, created_at";

fn user_row(r: &Row) -> Result<UserRow, tokio_postgres::Error> {
    Ok(UserRow {
        id: r.try_get(0)?,
        email: r.try_get(1)?,
        name: r.try_get(2)?,
        password_hash: r.try_get(3)?,
        disabled: r.try_get(4)?,
        created_at: r.try_get(5)?,
    })
}

/// Finds a user by id.
pub async fn find_user(c: &impl GenericClient, id: Uuid) -> Result<Option<UserRow>, StoreError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
    query_opt(c, &sql, &[&id], user_row).await
}

/// Finds a user by normalised email.
pub async fn find_user_by_email(
    c: &impl GenericClient,
    email: &str,
) -> Result<Option<UserRow>, StoreError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
    query_opt(c, &sql, &[&email], user_row).await
}

fn org_row(r: &Row) -> Result<OrgRow, tokio_postgres::Error> {
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

fn member_row(r: &Row) -> Result<MemberRow, tokio_postgres::Error> {
    Ok(MemberRow {
        user_id: r.try_get(0)?,
        email: r.try_get(1)?,
        name: r.try_get(2)?,
        role: r.try_get(3)?,
        added_at: r.try_get(4)?,
    })
}

const MEMBER_SELECT: &str = "SELECT m.user_id, u.email, u.name, m.role, m.added_at \
    FROM memberships m JOIN users u ON u.id = m.user_id";

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

const KEY_COLUMNS: &str = "id, org_id, name, prefix, key_hash, scopes, expires_at, revoked_at, \
    rotated_from, created_at, last_used_at";

fn key_row(r: &Row) -> Result<KeyRow, tokio_postgres::Error> {
    Ok(KeyRow {
        id: r.try_get(0)?,
        org_id: r.try_get(1)?,
        name: r.try_get(2)?,
        prefix: r.try_get(3)?,
        key_hash: r.try_get(4)?,
        scopes: r.try_get(5)?,
        expires_at: r.try_get(6)?,
        revoked_at: r.try_get(7)?,
        rotated_from: r.try_get(8)?,
        created_at: r.try_get(9)?,
        last_used_at: r.try_get(10)?,
    })
}

/// Finds a key by id.
pub async fn find_key(c: &impl GenericClient, id: Uuid) -> Result<Option<KeyRow>, StoreError> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1");
    query_opt(c, &sql, &[&id], key_row).await
}

/// Finds a key by the hex SHA-256 of its plaintext.
pub async fn find_key_by_hash(
    c: &impl GenericClient,
    key_hash: &str,
) -> Result<Option<KeyRow>, StoreError> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1");
    query_opt(c, &sql, &[&key_hash], key_row).await
}

/// A page of an org's keys ordered by id, after `after`.
pub async fn find_keys(
    c: &impl GenericClient,
    org_id: Uuid,
    include_revoked: bool,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<KeyRow>, StoreError> {
    let sql = format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE org_id = $1 AND id > $2 \
         AND ($3 OR revoked_at IS NULL) ORDER BY id LIMIT $4"
    );
    let after = after.unwrap_or(Uuid::nil());
    query_all(
        c,
        &sql,
        &[&org_id, &after, &include_revoked, &limit],
        key_row,
    )
    .await
}

/// Whether the log holds any event at all (an empty log gets bootstrapped).
pub async fn is_log_empty(c: &impl GenericClient) -> Result<bool, StoreError> {
    let row = c
        .query_one("SELECT NOT EXISTS (SELECT 1 FROM auth_events)", &[])
        .await?;
    Ok(row.try_get(0)?)
}

/// A row of `sessions` (without the refresh-token hash).
#[derive(Debug, Clone)]
pub struct SessionRow {
    /// Id.
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
}

const SESSION_COLUMNS: &str =
    "id, user_id, created_at, last_refreshed_at, expires_at, revoked_at, ip, user_agent";

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

/// An org's events (its own stream and its keys') that occurred at or before
/// `as_of`, in commit-safe order.
pub async fn find_org_history(
    c: &impl GenericClient,
    org_id: Uuid,
    as_of: DateTime<Utc>,
) -> Result<Vec<crate::store::events::RecordedEvent>, StoreError> {
    let mut out = Vec::new();
    let mut after = crate::store::events::LogPosition::default();
    loop {
        let page = crate::store::events::read_log(
            c,
            &crate::store::events::LogQuery {
                after,
                limit: 5000,
                org_id: Some(org_id),
                ..Default::default()
            },
        )
        .await?;
        let Some(last) = page.last().map(|e| e.cursor()) else {
            return Ok(out);
        };
        out.extend(page.into_iter().filter(|e| e.occurred_at <= as_of));
        after = last;
    }
}

/// Emails of users by id.
pub async fn find_emails(
    c: &impl GenericClient,
    ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, String>, StoreError> {
    let rows = c
        .query("SELECT id, email FROM users WHERE id = ANY($1)", &[&ids])
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// Writes batched `last_used_at` values; never moves one backwards.
pub async fn save_key_usage(
    c: &impl GenericClient,
    uses: &[(Uuid, DateTime<Utc>)],
) -> Result<(), StoreError> {
    let (ids, times): (Vec<Uuid>, Vec<DateTime<Utc>>) = uses.iter().copied().unzip();
    let sql = "UPDATE api_keys k SET last_used_at = u.at \
               FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, at) \
               WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)";
    let statement = c.prepare_cached(sql).await?;
    c.execute(&statement, &[&ids, &times]).await?;
    Ok(())
}
