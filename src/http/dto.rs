//! Response bodies. Read-model rows become these; no hash ever does.

use crate::app::keys::IssuedKey;
use crate::domain::stored::redact;
use crate::store::api_keys::KeyRow;
use crate::store::events::RecordedEvent;
use crate::store::memberships::MemberRow;
use crate::store::orgs::OrgRow;
use crate::store::users::UserRow;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

/// A user.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserDto {
    /// Its id (UUID v7).
    pub id: Uuid,
    /// Normalised email.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// Whether the user proved their current address (a verification mail's
    /// token, or the token of an email change).
    pub email_verified: bool,
    /// Whether sign-in is refused.
    pub disabled: bool,
    /// Registration time.
    pub created_at: DateTime<Utc>,
}

impl From<UserRow> for UserDto {
    fn from(u: UserRow) -> Self {
        Self {
            id: u.id,
            email: u.email,
            name: u.name,
            email_verified: u.email_verified,
            disabled: u.disabled,
            created_at: u.created_at,
        }
    }
}

/// An organisation.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrgDto {
    /// Its id (UUID v7).
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Unique slug.
    pub slug: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl From<OrgRow> for OrgDto {
    fn from(o: OrgRow) -> Self {
        Self {
            id: o.id,
            name: o.name,
            slug: o.slug,
            created_at: o.created_at,
        }
    }
}

/// A member of an organisation.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberDto {
    /// The user.
    pub user_id: Uuid,
    /// Their email.
    pub email: String,
    /// Their name.
    pub name: Option<String>,
    /// `owner`, `admin` or `member`.
    pub role: String,
    /// When they joined.
    pub added_at: DateTime<Utc>,
}

impl From<MemberRow> for MemberDto {
    fn from(m: MemberRow) -> Self {
        Self {
            user_id: m.user_id,
            email: m.email,
            name: m.name,
            role: m.role,
            added_at: m.added_at,
        }
    }
}

/// An API key, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyDto {
    /// Its id (UUID v7).
    pub id: Uuid,
    /// The first 12 characters of the key.
    pub prefix: String,
    /// The key's label, as its creator named it.
    pub name: String,
    /// The scopes the key grants.
    pub scopes: Vec<String>,
    /// Owning org.
    pub org_id: Uuid,
    /// Issue time.
    pub created_at: DateTime<Utc>,
    /// When the key stops working (none: never).
    pub expires_at: Option<DateTime<Utc>>,
    /// Revocation time.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Last use (updated in batches).
    pub last_used_at: Option<DateTime<Utc>>,
    /// The key this one replaced by rotation.
    pub rotated_from: Option<Uuid>,
}

impl From<KeyRow> for KeyDto {
    fn from(k: KeyRow) -> Self {
        Self {
            id: k.id,
            prefix: k.prefix,
            name: k.name,
            scopes: k.scopes,
            org_id: k.org_id,
            created_at: k.created_at,
            expires_at: k.expires_at,
            revoked_at: k.revoked_at,
            last_used_at: k.last_used_at,
            rotated_from: k.rotated_from,
        }
    }
}

/// A key just issued: the only response that carries the plaintext `key`.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedKeyDto {
    /// Its id (UUID v7).
    pub id: Uuid,
    /// The plaintext key. Shown once.
    pub key: String,
    /// The first 12 characters of the key.
    pub prefix: String,
    /// The key's label, as its creator named it.
    pub name: String,
    /// The scopes the key grants.
    pub scopes: Vec<String>,
    /// Owning org.
    pub org_id: Uuid,
    /// When the key stops working (none: never).
    pub expires_at: Option<DateTime<Utc>>,
    /// Issue time.
    pub created_at: DateTime<Utc>,
    /// The key this one replaced by rotation.
    pub rotated_from: Option<Uuid>,
}

impl From<IssuedKey> for IssuedKeyDto {
    fn from(k: IssuedKey) -> Self {
        Self {
            id: k.row.id,
            key: k.key.expose().to_owned(),
            prefix: k.row.prefix,
            name: k.row.name,
            scopes: k.row.scopes,
            org_id: k.row.org_id,
            expires_at: k.row.expires_at,
            created_at: k.row.created_at,
            rotated_from: k.row.rotated_from,
        }
    }
}

/// The answer of key verification.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyDto {
    /// Whether the key works now.
    pub valid: bool,
    /// Why not: `not_found`, `expired`, `revoked` or `malformed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The key's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<Uuid>,
    /// Its org.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_id: Option<Uuid>,
    /// Its label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its scopes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// Its expiry (null: never); present when valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Option<DateTime<Utc>>>,
}

/// One event of the log, secrets redacted.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventDto {
    /// Unique id.
    pub event_id: Uuid,
    /// Opaque; resumes after this event.
    pub cursor: String,
    /// Insertion position (not commit order).
    pub position: i64,
    /// `user`, `org`, `api_key`, ...
    pub stream_type: String,
    /// The aggregate.
    pub stream_id: Uuid,
    /// Version within the stream.
    pub version: i32,
    /// Event type, e.g. `api_key.revoked`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The org the event belongs to, if any.
    pub org_id: Option<Uuid>,
    /// Payload with hashes redacted.
    #[schema(value_type = Object)]
    pub data: Value,
    /// Actor and request context.
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// When it was decided.
    pub occurred_at: DateTime<Utc>,
}

impl From<RecordedEvent> for EventDto {
    fn from(e: RecordedEvent) -> Self {
        Self {
            event_id: e.event_id,
            cursor: crate::app::events::LogCursor(e.cursor()).encode(),
            position: e.position,
            stream_type: e.stream_type,
            stream_id: e.stream_id,
            version: e.version,
            event_type: e.event_type,
            org_id: e.org_id,
            data: redact(e.data),
            metadata: e.metadata,
            occurred_at: e.occurred_at,
        }
    }
}

/// A page of items.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Where the next page starts; null on the last page.
    pub next_cursor: Option<String>,
}

/// A list that is not paged.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberList {
    /// The members.
    pub items: Vec<MemberDto>,
}

/// RFC 7662 introspection: `{"active": false}` alone, or what the token is.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct IntrospectionDto {
    /// Whether the token works now.
    pub active: bool,
    /// `access_token` or `api_key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^(access_token|api_key)$")]
    pub token_type: Option<String>,
    /// Access token: the user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<Uuid>,
    /// Access token: the session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<Uuid>,
    /// Expiry in seconds since the epoch (an API key without one: null).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<Option<i64>>,
    /// Access token: issue time in seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Access token: issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Access token: audience.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Access token: how the user signed in (RFC 8176: `pwd`, `otp`, `hwk`,
    /// `swk`, `mfa`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// API key: its id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<Uuid>,
    /// API key: its org.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_id: Option<Uuid>,
    /// API key: its scopes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
}
