//! Inline projections: one `apply` per read model, run in the append
//! transaction and by replay. Deterministic: every value comes from the event.

use super::bulk;
use super::events::RecordedEvent;
use super::StoreError;
use crate::domain::api_key::ApiKeyEvent;
use crate::domain::org::OrgEvent;
use crate::domain::session::SessionEvent;
use crate::domain::signing_key::SigningKeyEvent;
use crate::domain::stored::AnyEvent;
use crate::domain::user::UserEvent;
use deadpool_postgres::GenericClient;

const USER_REGISTERED: &str =
    "INSERT INTO users (id, email, name, password_hash, disabled, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, false, $5, $5)";
const USER_RENAMED: &str = "UPDATE users SET name = $2, updated_at = $3 WHERE id = $1";
const USER_PASSWORD_CHANGED: &str =
    "UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1";
const USER_ACCESS_CHANGED: &str = "UPDATE users SET disabled = $2, updated_at = $3 WHERE id = $1";
const ORG_CREATED: &str =
    "INSERT INTO orgs (id, name, slug, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)";
const ORG_RENAMED: &str = "UPDATE orgs SET name = $2, updated_at = $3 WHERE id = $1";
const MEMBER_ADDED: &str = "INSERT INTO memberships (org_id, user_id, role, added_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $4)";
const MEMBER_ROLE_CHANGED: &str =
    "UPDATE memberships SET role = $3, updated_at = $4 WHERE org_id = $1 AND user_id = $2";
const MEMBER_REMOVED: &str = "DELETE FROM memberships WHERE org_id = $1 AND user_id = $2";
const KEY_CREATED: &str = "INSERT INTO api_keys (id, org_id, name, prefix, key_hash, scopes, expires_at, rotated_from, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const KEY_REVOKED: &str = "UPDATE api_keys SET revoked_at = $2 WHERE id = $1";
const KEY_EXPIRY_SET: &str = "UPDATE api_keys SET expires_at = $2 WHERE id = $1";
const SESSION_STARTED: &str = "INSERT INTO sessions (id, user_id, refresh_token_hash, created_at, expires_at, ip, user_agent, version) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const SESSION_REFRESHED: &str = "UPDATE sessions SET refresh_token_hash = $2, last_refreshed_at = $3, version = $4 WHERE id = $1";
const SESSION_REVOKED: &str =
    "UPDATE sessions SET revoked_at = $2, revoked_reason = $3, version = $4 WHERE id = $1";
const SESSION_TOKEN_ISSUED: &str =
    "INSERT INTO session_refresh_tokens (session_id, refresh_token_hash) VALUES ($1, $2)";
const SIGNING_KEY_CREATED: &str = "INSERT INTO signing_keys (id, kid, algorithm, public_key, created_at) VALUES ($1, $2, $3, $4, $5)";
const SIGNING_KEY_RETIRED: &str = "UPDATE signing_keys SET retired_at = $2 WHERE id = $1";

/// Every statement the projections run, to prepare before pipelining.
const STATEMENTS: [&str; 18] = [
    USER_REGISTERED,
    USER_RENAMED,
    USER_PASSWORD_CHANGED,
    USER_ACCESS_CHANGED,
    ORG_CREATED,
    ORG_RENAMED,
    MEMBER_ADDED,
    MEMBER_ROLE_CHANGED,
    MEMBER_REMOVED,
    KEY_CREATED,
    KEY_REVOKED,
    KEY_EXPIRY_SET,
    SESSION_STARTED,
    SESSION_REFRESHED,
    SESSION_REVOKED,
    SESSION_TOKEN_ISSUED,
    SIGNING_KEY_CREATED,
    SIGNING_KEY_RETIRED,
];

/// Applies one event, as its command decided it, to the read models.
pub async fn apply(
    client: &impl GenericClient,
    envelope: &RecordedEvent,
    event: &AnyEvent,
) -> Result<(), StoreError> {
    match event {
        AnyEvent::User(e) => apply_user(client, envelope, e).await,
        AnyEvent::Org(e) => apply_org(client, envelope, e).await,
        AnyEvent::ApiKey(e) => apply_api_key(client, envelope, e).await,
        AnyEvent::Session(e) => apply_session(client, envelope, e).await,
        AnyEvent::SigningKey(e) => apply_signing_key(client, envelope, e).await,
    }
}

/// Applies a batch of events in log order (replay). A run of creations of one
/// kind is one set-based insert; other runs are pipelined on the connection:
/// every statement is prepared first, so each request is sent when its future
/// is first polled, and the futures are polled in log order.
pub async fn apply_batch(
    client: &impl GenericClient,
    events: &[&RecordedEvent],
) -> Result<(), StoreError> {
    for sql in STATEMENTS {
        client.prepare_cached(sql).await?;
    }
    let decoded = events
        .iter()
        .map(|e| Ok((*e, decode(e)?)))
        .collect::<Result<Vec<bulk::Decoded<'_>>, StoreError>>()?;
    let mut rest = decoded.as_slice();
    while let Some((_, first)) = rest.first() {
        let kind = bulk::BulkKind::of(first);
        let len = rest
            .iter()
            .take_while(|(_, e)| bulk::BulkKind::of(e) == kind)
            .count();
        let (run, tail) = rest.split_at(len);
        match kind {
            Some(kind) => bulk::insert_run(client, kind, run).await?,
            None => {
                futures_util::future::try_join_all(run.iter().map(|(e, ev)| apply(client, e, ev)))
                    .await?;
            }
        }
        rest = tail;
    }
    Ok(())
}

fn decode(recorded: &RecordedEvent) -> Result<AnyEvent, StoreError> {
    AnyEvent::decode(
        &recorded.event_type,
        recorded.schema_version,
        recorded.data.clone(),
    )
    .map_err(|e| StoreError::Decode(e.to_string()))
}

async fn exec(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<(), StoreError> {
    let stmt = client.prepare_cached(sql).await?;
    client.execute(&stmt, params).await?;
    Ok(())
}

async fn apply_user(
    c: &impl GenericClient,
    r: &RecordedEvent,
    event: &UserEvent,
) -> Result<(), StoreError> {
    let (id, at) = (&r.stream_id, &r.occurred_at);
    match event {
        UserEvent::Registered {
            email,
            name,
            password_hash,
        } => {
            let name = name.as_ref().map(|n| n.as_str());
            exec(
                c,
                USER_REGISTERED,
                &[id, &email.as_str(), &name, password_hash, at],
            )
            .await
        }
        UserEvent::Renamed { name } => exec(c, USER_RENAMED, &[id, &name.as_str(), at]).await,
        UserEvent::PasswordChanged { password_hash } => {
            exec(c, USER_PASSWORD_CHANGED, &[id, password_hash, at]).await
        }
        UserEvent::Disabled { .. } | UserEvent::Enabled {} => {
            let disabled = matches!(event, UserEvent::Disabled { .. });
            exec(c, USER_ACCESS_CHANGED, &[id, &disabled, at]).await
        }
        UserEvent::LoginFailed { .. } => Ok(()),
    }
}

async fn apply_org(
    c: &impl GenericClient,
    r: &RecordedEvent,
    event: &OrgEvent,
) -> Result<(), StoreError> {
    let (id, at) = (&r.stream_id, &r.occurred_at);
    match event {
        OrgEvent::Created { name, slug, .. } => {
            exec(c, ORG_CREATED, &[id, &name.as_str(), &slug.as_str(), at]).await
        }
        OrgEvent::Renamed { name } => exec(c, ORG_RENAMED, &[id, &name.as_str(), at]).await,
        OrgEvent::MemberAdded { user_id, role } => {
            exec(c, MEMBER_ADDED, &[id, user_id, &role.as_str(), at]).await
        }
        OrgEvent::MemberRoleChanged { user_id, role } => {
            exec(c, MEMBER_ROLE_CHANGED, &[id, user_id, &role.as_str(), at]).await
        }
        OrgEvent::MemberRemoved { user_id } => exec(c, MEMBER_REMOVED, &[id, user_id]).await,
    }
}

async fn apply_api_key(
    c: &impl GenericClient,
    r: &RecordedEvent,
    event: &ApiKeyEvent,
) -> Result<(), StoreError> {
    let (id, at) = (&r.stream_id, &r.occurred_at);
    match event {
        ApiKeyEvent::Created {
            org_id,
            name,
            prefix,
            key_hash,
            scopes,
            expires_at,
            rotated_from,
            ..
        } => {
            exec(
                c,
                KEY_CREATED,
                &[
                    id,
                    org_id,
                    &name.as_str(),
                    prefix,
                    key_hash,
                    &scopes.as_slice(),
                    expires_at,
                    rotated_from,
                    at,
                ],
            )
            .await
        }
        ApiKeyEvent::Revoked { .. } => exec(c, KEY_REVOKED, &[id, at]).await,
        ApiKeyEvent::ExpirySet { expires_at } => exec(c, KEY_EXPIRY_SET, &[id, expires_at]).await,
    }
}

async fn apply_session(
    c: &impl GenericClient,
    r: &RecordedEvent,
    event: &SessionEvent,
) -> Result<(), StoreError> {
    let (id, at, version) = (&r.stream_id, &r.occurred_at, &r.version);
    match event {
        SessionEvent::Started {
            user_id,
            refresh_token_hash,
            expires_at,
            ip,
            user_agent,
        } => {
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 8] = [
                id,
                user_id,
                refresh_token_hash,
                at,
                expires_at,
                ip,
                user_agent,
                version,
            ];
            exec(c, SESSION_STARTED, &params).await?;
            exec(c, SESSION_TOKEN_ISSUED, &[id, refresh_token_hash]).await
        }
        SessionEvent::Refreshed { refresh_token_hash } => {
            exec(c, SESSION_REFRESHED, &[id, refresh_token_hash, at, version]).await?;
            exec(c, SESSION_TOKEN_ISSUED, &[id, refresh_token_hash]).await
        }
        SessionEvent::Revoked { reason } => {
            exec(c, SESSION_REVOKED, &[id, at, &reason.as_str(), version]).await
        }
    }
}

async fn apply_signing_key(
    c: &impl GenericClient,
    r: &RecordedEvent,
    event: &SigningKeyEvent,
) -> Result<(), StoreError> {
    let (id, at) = (&r.stream_id, &r.occurred_at);
    match event {
        SigningKeyEvent::Created {
            kid,
            algorithm,
            public_key,
        } => {
            exec(
                c,
                SIGNING_KEY_CREATED,
                &[id, kid, algorithm, public_key, at],
            )
            .await
        }
        SigningKeyEvent::Retired {} => exec(c, SIGNING_KEY_RETIRED, &[id, at]).await,
    }
}
