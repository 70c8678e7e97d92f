//! Inline projections: one `apply` per read model, run in the append
//! transaction and by replay. Deterministic: every value comes from the event.

use super::events::RecordedEvent;
use super::StoreError;
use crate::domain::api_key::ApiKeyEvent;
use crate::domain::org::OrgEvent;
use crate::domain::session::SessionEvent;
use crate::domain::signing_key::SigningKeyEvent;
use crate::domain::stored::AnyEvent;
use crate::domain::user::UserEvent;
use deadpool_postgres::GenericClient;

/// Applies one recorded event to the read models.
pub async fn apply(
    client: &impl GenericClient,
    recorded: &RecordedEvent,
) -> Result<(), StoreError> {
    let event = AnyEvent::decode(
        &recorded.event_type,
        recorded.schema_version,
        recorded.data.clone(),
    )
    .map_err(|e| StoreError::Decode(e.to_string()))?;
    match &event {
        AnyEvent::User(e) => apply_user(client, recorded, e).await,
        AnyEvent::Org(e) => apply_org(client, recorded, e).await,
        AnyEvent::ApiKey(e) => apply_api_key(client, recorded, e).await,
        AnyEvent::Session(e) => apply_session(client, recorded, e).await,
        AnyEvent::SigningKey(e) => apply_signing_key(client, recorded, e).await,
    }
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
                "INSERT INTO users (id, email, name, password_hash, disabled, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, false, $5, $5)",
                &[id, &email.as_str(), &name, password_hash, at],
            )
            .await
        }
        UserEvent::Renamed { name } => {
            exec(
                c,
                "UPDATE users SET name = $2, updated_at = $3 WHERE id = $1",
                &[id, &name.as_str(), at],
            )
            .await
        }
        UserEvent::PasswordChanged { password_hash } => {
            exec(
                c,
                "UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1",
                &[id, password_hash, at],
            )
            .await
        }
        UserEvent::Disabled { .. } | UserEvent::Enabled {} => {
            let disabled = matches!(event, UserEvent::Disabled { .. });
            exec(
                c,
                "UPDATE users SET disabled = $2, updated_at = $3 WHERE id = $1",
                &[id, &disabled, at],
            )
            .await
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
        OrgEvent::Created { name, slug, .. } => exec(
            c,
            "INSERT INTO orgs (id, name, slug, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)",
            &[id, &name.as_str(), &slug.as_str(), at],
        )
        .await,
        OrgEvent::Renamed { name } => {
            exec(
                c,
                "UPDATE orgs SET name = $2, updated_at = $3 WHERE id = $1",
                &[id, &name.as_str(), at],
            )
            .await
        }
        OrgEvent::MemberAdded { user_id, role } => {
            exec(
                c,
                "INSERT INTO memberships (org_id, user_id, role, added_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $4)",
                &[id, user_id, &role.as_str(), at],
            )
            .await
        }
        OrgEvent::MemberRoleChanged { user_id, role } => exec(
            c,
            "UPDATE memberships SET role = $3, updated_at = $4 WHERE org_id = $1 AND user_id = $2",
            &[id, user_id, &role.as_str(), at],
        )
        .await,
        OrgEvent::MemberRemoved { user_id } => {
            exec(
                c,
                "DELETE FROM memberships WHERE org_id = $1 AND user_id = $2",
                &[id, user_id],
            )
            .await
        }
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
                "INSERT INTO api_keys (id, org_id, name, prefix, key_hash, scopes, expires_at, rotated_from, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[id, org_id, &name.as_str(), prefix, key_hash, &scopes.as_slice(), expires_at, rotated_from, at],
            )
            .await
        }
        ApiKeyEvent::Revoked { .. } => {
            exec(c, "UPDATE api_keys SET revoked_at = $2 WHERE id = $1", &[id, at]).await
        }
        ApiKeyEvent::ExpirySet { expires_at } => {
            exec(c, "UPDATE api_keys SET expires_at = $2 WHERE id = $1", &[id, expires_at]).await
        }
    }
}

async fn apply_session(
    c: &impl GenericClient,
    r: &RecordedEvent,
    event: &SessionEvent,
) -> Result<(), StoreError> {
    let (id, at) = (&r.stream_id, &r.occurred_at);
    match event {
        SessionEvent::Started {
            user_id,
            refresh_token_hash,
            expires_at,
            ip,
            user_agent,
        } => {
            exec(
                c,
                "INSERT INTO sessions (id, user_id, refresh_token_hash, created_at, expires_at, ip, user_agent) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[id, user_id, refresh_token_hash, at, expires_at, ip, user_agent],
            )
            .await
        }
        SessionEvent::Refreshed { refresh_token_hash } => {
            exec(
                c,
                "UPDATE sessions SET refresh_token_hash = $2, last_refreshed_at = $3 WHERE id = $1",
                &[id, refresh_token_hash, at],
            )
            .await
        }
        SessionEvent::Revoked { reason } => {
            exec(
                c,
                "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 WHERE id = $1",
                &[id, at, &reason.as_str()],
            )
            .await
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
                "INSERT INTO signing_keys (id, kid, algorithm, public_key, created_at) VALUES ($1, $2, $3, $4, $5)",
                &[id, kid, algorithm, public_key, at],
            )
            .await
        }
        SigningKeyEvent::Retired {} => {
            exec(c, "UPDATE signing_keys SET retired_at = $2 WHERE id = $1", &[id, at]).await
        }
    }
}
