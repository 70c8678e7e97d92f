//! Inline projections: one `apply` per read model, run in the append
//! transaction and by replay. Deterministic: every value comes from the event.

use super::api_keys::KeyRow;
use super::bulk;
use super::events::RecordedEvent;
use super::pipeline::{self, params, Write};
use super::StoreError;
use crate::domain::api_key::ApiKeyEvent;
use crate::domain::org::OrgEvent;
use crate::domain::personal::Personal;
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
const USER_EMAIL_VERIFIED: &str =
    "UPDATE users SET email_verified = true, updated_at = $2 WHERE id = $1";
const USER_EMAIL_CHANGED: &str =
    "UPDATE users SET email = $2, email_verified = true, updated_at = $3 WHERE id = $1";
// Sign-in asks for a second factor while an app is enrolled or a passkey is
// held (SET reads the row as it was: `passkey_count > 1` is "one is left").
const USER_TOTP_CHANGED: &str = "UPDATE users SET totp_enabled = $2, \
     mfa_enabled = $2 OR passkey_count > 0, updated_at = $3 WHERE id = $1";
const USER_PASSKEY_ADDED: &str = "UPDATE users SET passkey_count = passkey_count + 1, \
     mfa_enabled = true, updated_at = $2 WHERE id = $1";
const USER_PASSKEY_REMOVED: &str = "UPDATE users SET passkey_count = passkey_count - 1, \
     mfa_enabled = totp_enabled OR passkey_count > 1, updated_at = $2 WHERE id = $1";
const PASSKEY_REGISTERED: &str = "INSERT INTO passkeys \
     (id, user_id, name, credential_id, backup_eligible, created_at) VALUES ($1, $2, $3, $4, $5, $6)";
const PASSKEY_RENAMED: &str = "UPDATE passkeys SET name = $2 WHERE id = $1";
const PASSKEY_REMOVED: &str = "DELETE FROM passkeys WHERE id = $1";
const PASSKEY_USED: &str = "UPDATE passkeys SET last_used_at = $2 WHERE id = $1";
const USER_PASSKEYS_ERASED: &str = "DELETE FROM passkeys WHERE user_id = $1";
const USER_ACCESS_CHANGED: &str = "UPDATE users SET disabled = $2, updated_at = $3 WHERE id = $1";
const USER_ERASED: &str = "UPDATE users SET email = NULL, name = NULL, totp_enabled = false, \
     passkey_count = 0, mfa_enabled = false, erased_at = $2, updated_at = $2 WHERE id = $1";
// The sessions' rows are the session streams', but their address and agent
// are the person's: erasure clears them wherever they are.
const USER_SESSIONS_ERASED: &str =
    "UPDATE sessions SET ip = NULL, user_agent = NULL WHERE user_id = $1 AND (ip IS NOT NULL OR user_agent IS NOT NULL)";
const ORG_CREATED: &str =
    "INSERT INTO orgs (id, name, slug, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)";
const ORG_RENAMED: &str = "UPDATE orgs SET name = $2, updated_at = $3 WHERE id = $1";
const MEMBER_ADDED: &str = "INSERT INTO memberships (org_id, user_id, role, added_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $4)";
const MEMBER_ROLE_CHANGED: &str =
    "UPDATE memberships SET role = $3, updated_at = $4 WHERE org_id = $1 AND user_id = $2";
const INVITATION_CREATED: &str = "INSERT INTO invitations \
    (id, org_id, email, role, status, invited_by, expires_at, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $7)";
const INVITATION_REVOKED: &str =
    "UPDATE invitations SET status = 'revoked', updated_at = $2 WHERE id = $1";
const INVITATION_ACCEPTED: &str = "UPDATE invitations SET status = 'accepted', accepted_by = $2, \
    updated_at = $3 WHERE id = $1";
// An erased person's address leaves the invitations they accepted too.
const USER_INVITATIONS_ERASED: &str =
    "UPDATE invitations SET email = NULL WHERE accepted_by = $1 AND email IS NOT NULL";
const MEMBER_REMOVED: &str = "DELETE FROM memberships WHERE org_id = $1 AND user_id = $2";
const KEY_CREATED: &str = "INSERT INTO api_keys (id, org_id, name, prefix, key_hash, scopes, expires_at, rotated_from, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const KEY_REVOKED: &str = "UPDATE api_keys SET revoked_at = $2 WHERE id = $1";
const KEY_EXPIRY_SET: &str = "UPDATE api_keys SET expires_at = $2 WHERE id = $1";
const SESSION_STARTED: &str = "INSERT INTO sessions (id, user_id, refresh_token_hash, created_at, expires_at, ip, user_agent, version, amr) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const SESSION_REFRESHED: &str = "UPDATE sessions SET refresh_token_hash = $2, last_refreshed_at = $3, version = $4 WHERE id = $1";
const SESSION_REVOKED: &str =
    "UPDATE sessions SET revoked_at = $2, revoked_reason = $3, version = $4 WHERE id = $1";
const SESSION_TOKEN_ISSUED: &str =
    "INSERT INTO session_refresh_tokens (session_id, refresh_token_hash) VALUES ($1, $2)";
const SIGNING_KEY_CREATED: &str = "INSERT INTO signing_keys (id, kid, algorithm, public_key, created_at) VALUES ($1, $2, $3, $4, $5)";
const SIGNING_KEY_RETIRED: &str = "UPDATE signing_keys SET retired_at = $2 WHERE id = $1";

/// Every statement the projections run, to prepare before pipelining.
const STATEMENTS: [&str; 34] = [
    USER_TOTP_CHANGED,
    USER_PASSKEY_ADDED,
    USER_PASSKEY_REMOVED,
    PASSKEY_REGISTERED,
    PASSKEY_RENAMED,
    PASSKEY_REMOVED,
    PASSKEY_USED,
    USER_PASSKEYS_ERASED,
    INVITATION_CREATED,
    INVITATION_REVOKED,
    INVITATION_ACCEPTED,
    USER_INVITATIONS_ERASED,
    USER_REGISTERED,
    USER_EMAIL_VERIFIED,
    USER_EMAIL_CHANGED,
    USER_RENAMED,
    USER_PASSWORD_CHANGED,
    USER_ACCESS_CHANGED,
    USER_ERASED,
    USER_SESSIONS_ERASED,
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

/// Applies one event, as its command decided it, to the read models: its
/// writes, pipelined.
pub async fn apply(
    client: &impl GenericClient,
    envelope: &RecordedEvent,
    event: &AnyEvent,
) -> Result<(), StoreError> {
    pipeline::run(client, &writes(envelope, event)).await
}

/// What one event changes in the read models, as statements to run; no IO.
pub fn writes(r: &RecordedEvent, event: &AnyEvent) -> Vec<Write> {
    match event {
        AnyEvent::User(e) => user_writes(r, e),
        AnyEvent::Org(e) => org_writes(r, e),
        AnyEvent::ApiKey(e) => api_key_writes(r, e),
        AnyEvent::Session(e) => session_writes(r, e),
        AnyEvent::SigningKey(e) => signing_key_writes(r, e),
    }
}

/// Applies a batch of events in log order (replay). A run of creations of one
/// kind is one set-based insert; other runs are pipelined on the connection:
/// every statement is prepared first, so each request is sent when its future
/// is first polled, and the futures are polled in log order.
pub async fn apply_batch(
    client: &deadpool_postgres::Transaction<'_>,
    events: &[&(RecordedEvent, AnyEvent)],
) -> Result<(), StoreError> {
    for sql in STATEMENTS {
        client.prepare_cached(sql).await?;
    }
    let decoded: Vec<bulk::Decoded<'_>> = events.iter().map(|(r, e)| (r, e)).collect();
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
                let writes: Vec<Write> = run.iter().flat_map(|(e, ev)| writes(e, ev)).collect();
                pipeline::run(client, &writes).await?;
            }
        }
        rest = tail;
    }
    Ok(())
}

fn user_writes(r: &RecordedEvent, event: &UserEvent) -> Vec<Write> {
    let (id, at) = (r.stream_id, r.occurred_at);
    match event {
        UserEvent::Registered {
            email,
            name,
            password_hash,
        } => {
            // An erased person's fields are rebuilt as they are: absent.
            let name = name
                .as_ref()
                .and_then(Personal::known)
                .map(|n| n.as_str().to_owned());
            let email = email.known().map(|e| e.as_str().to_owned());
            vec![Write::new(
                USER_REGISTERED,
                params![id, email, name, password_hash.clone(), at],
            )]
        }
        UserEvent::Renamed { name } => vec![Write::new(
            USER_RENAMED,
            params![id, name.known().map(|n| n.as_str().to_owned()), at],
        )],
        UserEvent::Erased {} => vec![
            Write::new(USER_ERASED, params![id, at]),
            Write::new(USER_SESSIONS_ERASED, params![id]),
            Write::new(USER_INVITATIONS_ERASED, params![id]),
            Write::new(USER_PASSKEYS_ERASED, params![id]),
        ],
        UserEvent::EmailVerified {} => vec![Write::new(USER_EMAIL_VERIFIED, params![id, at])],
        UserEvent::EmailChanged { email } => vec![Write::new(
            USER_EMAIL_CHANGED,
            params![id, email.known().map(|e| e.as_str().to_owned()), at],
        )],
        UserEvent::PasswordChanged { password_hash }
        | UserEvent::PasswordReset { password_hash } => vec![Write::new(
            USER_PASSWORD_CHANGED,
            params![id, password_hash.clone(), at],
        )],
        UserEvent::Disabled { .. } | UserEvent::Enabled {} => {
            let disabled = matches!(event, UserEvent::Disabled { .. });
            vec![Write::new(USER_ACCESS_CHANGED, params![id, disabled, at])]
        }
        UserEvent::TotpEnabled { .. } | UserEvent::TotpDisabled { .. } => {
            let enabled = matches!(event, UserEvent::TotpEnabled { .. });
            vec![Write::new(USER_TOTP_CHANGED, params![id, enabled, at])]
        }
        UserEvent::PasskeyRegistered {
            passkey_id,
            name,
            credential_id,
            backup_eligible,
            ..
        } => vec![
            Write::new(
                PASSKEY_REGISTERED,
                params![
                    *passkey_id,
                    id,
                    name.known().map(|n| n.as_str().to_owned()),
                    credential_id.clone(),
                    *backup_eligible,
                    at
                ],
            ),
            Write::new(USER_PASSKEY_ADDED, params![id, at]),
        ],
        UserEvent::PasskeyRenamed { passkey_id, name } => vec![Write::new(
            PASSKEY_RENAMED,
            params![*passkey_id, name.known().map(|n| n.as_str().to_owned())],
        )],
        UserEvent::PasskeyRemoved { passkey_id, .. } => vec![
            Write::new(PASSKEY_REMOVED, params![*passkey_id]),
            Write::new(USER_PASSKEY_REMOVED, params![id, at]),
        ],
        UserEvent::PasskeyUsed { passkey_id, .. } => {
            vec![Write::new(PASSKEY_USED, params![*passkey_id, at])]
        }
        UserEvent::LoginFailed { .. }
        | UserEvent::TotpEnrollmentStarted { .. }
        | UserEvent::BackupCodesRegenerated { .. }
        | UserEvent::MfaChallenged { .. }
        | UserEvent::MfaPassed { .. }
        | UserEvent::MfaEnrollmentFailed { .. }
        | UserEvent::EmailVerificationRequested { .. }
        | UserEvent::PasswordResetRequested { .. }
        | UserEvent::EmailChangeRequested { .. } => vec![],
    }
}

fn org_writes(r: &RecordedEvent, event: &OrgEvent) -> Vec<Write> {
    let (id, at) = (r.stream_id, r.occurred_at);
    let write = match event {
        OrgEvent::Created { name, slug, .. } => Write::new(
            ORG_CREATED,
            params![id, name.as_str().to_owned(), slug.as_str().to_owned(), at],
        ),
        OrgEvent::Renamed { name } => {
            Write::new(ORG_RENAMED, params![id, name.as_str().to_owned(), at])
        }
        OrgEvent::MemberAdded { user_id, role } => Write::new(
            MEMBER_ADDED,
            params![id, *user_id, role.as_str().to_owned(), at],
        ),
        OrgEvent::MemberRoleChanged { user_id, role } => Write::new(
            MEMBER_ROLE_CHANGED,
            params![id, *user_id, role.as_str().to_owned(), at],
        ),
        OrgEvent::MemberRemoved { user_id } => Write::new(MEMBER_REMOVED, params![id, *user_id]),
        OrgEvent::InvitationCreated {
            invitation_id,
            email,
            role,
            expires_at,
            invited_by,
            ..
        } => Write::new(
            INVITATION_CREATED,
            params![
                *invitation_id,
                id,
                email.known().map(|e| e.as_str().to_owned()),
                role.as_str().to_owned(),
                *invited_by,
                *expires_at,
                at
            ],
        ),
        OrgEvent::InvitationRevoked { invitation_id } => {
            Write::new(INVITATION_REVOKED, params![*invitation_id, at])
        }
        OrgEvent::InvitationAccepted {
            invitation_id,
            user_id,
        } => Write::new(INVITATION_ACCEPTED, params![*invitation_id, *user_id, at]),
    };
    vec![write]
}

fn api_key_writes(r: &RecordedEvent, event: &ApiKeyEvent) -> Vec<Write> {
    let (id, at) = (r.stream_id, r.occurred_at);
    let write = match event {
        ApiKeyEvent::Created { .. } => {
            let Some(row) = KeyRow::created(r, event) else {
                return vec![];
            };
            Write::new(
                KEY_CREATED,
                params![
                    row.id,
                    row.org_id,
                    row.name,
                    row.prefix,
                    row.key_hash,
                    row.scopes,
                    row.expires_at,
                    row.rotated_from,
                    row.created_at
                ],
            )
        }
        ApiKeyEvent::Revoked { .. } => Write::new(KEY_REVOKED, params![id, at]),
        ApiKeyEvent::ExpirySet { expires_at } => {
            Write::new(KEY_EXPIRY_SET, params![id, *expires_at])
        }
    };
    vec![write]
}

/// An optional personal text as the read model holds it: absent when erased.
pub(crate) fn known(field: &Option<Personal<String>>) -> Option<String> {
    field.as_ref().and_then(Personal::known).cloned()
}

fn session_writes(r: &RecordedEvent, event: &SessionEvent) -> Vec<Write> {
    let (id, at, version) = (r.stream_id, r.occurred_at, r.version);
    match event {
        SessionEvent::Started {
            user_id,
            refresh_token_hash,
            expires_at,
            ip,
            user_agent,
            amr,
        } => vec![
            Write::new(
                SESSION_STARTED,
                params![
                    id,
                    *user_id,
                    refresh_token_hash.clone(),
                    at,
                    *expires_at,
                    known(ip),
                    known(user_agent),
                    version,
                    amr.iter()
                        .map(|m| m.as_str().to_owned())
                        .collect::<Vec<String>>()
                ],
            ),
            Write::new(
                SESSION_TOKEN_ISSUED,
                params![id, refresh_token_hash.clone()],
            ),
        ],
        SessionEvent::Refreshed { refresh_token_hash } => vec![
            Write::new(
                SESSION_REFRESHED,
                params![id, refresh_token_hash.clone(), at, version],
            ),
            Write::new(
                SESSION_TOKEN_ISSUED,
                params![id, refresh_token_hash.clone()],
            ),
        ],
        SessionEvent::Revoked { reason } => vec![Write::new(
            SESSION_REVOKED,
            params![id, at, reason.as_str().to_owned(), version],
        )],
    }
}

fn signing_key_writes(r: &RecordedEvent, event: &SigningKeyEvent) -> Vec<Write> {
    let (id, at) = (r.stream_id, r.occurred_at);
    let write = match event {
        SigningKeyEvent::Created {
            kid,
            algorithm,
            public_key,
        } => Write::new(
            SIGNING_KEY_CREATED,
            params![id, kid.clone(), algorithm.clone(), public_key.clone(), at],
        ),
        SigningKeyEvent::Retired {} => Write::new(SIGNING_KEY_RETIRED, params![id, at]),
    };
    vec![write]
}
