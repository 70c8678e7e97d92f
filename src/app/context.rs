use crate::domain::values::{Scopes, SCOPE_ADMIN};
use serde_json::{json, Value};
use uuid::Uuid;

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Caller {
    /// vouch itself (bootstrap, operator CLI).
    System,
    /// No credential (sign-up, sign-in).
    Anonymous,
    /// An API key of `org_id`.
    ApiKey {
        /// The key's id.
        key_id: Uuid,
        /// The org the key acts in.
        org_id: Uuid,
        /// Its scopes.
        scopes: Scopes,
        /// When it expires (`None`: never).
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// The holder of a user's action token (verification, reset, email
    /// change), acting as that user: their address and agent are the user's,
    /// sealed for them and erased with them. Not a signed-in user.
    TokenHolder {
        /// The user the token is for.
        user_id: Uuid,
    },
    /// A signed-in user.
    User {
        /// The user.
        user_id: Uuid,
        /// The session of the access token.
        session_id: Uuid,
    },
}

impl Caller {
    /// Whether the caller holds `vouch:admin`.
    pub fn is_admin(&self) -> bool {
        matches!(self, Self::ApiKey { scopes, .. } if scopes.has(SCOPE_ADMIN))
    }

    /// When the caller's own credential ends, for an API key that expires: no
    /// key it mints may outlive it.
    pub fn key_expiry(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        match self {
            Self::ApiKey { expires_at, .. } => *expires_at,
            _ => None,
        }
    }

    /// The user id, for a user caller.
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Self::User { user_id, .. } => Some(*user_id),
            _ => None,
        }
    }

    fn actor(&self) -> Value {
        match self {
            Self::System => json!({"type": "system"}),
            Self::Anonymous => json!({"type": "anonymous"}),
            Self::ApiKey { key_id, .. } => json!({"type": "api_key", "id": key_id}),
            Self::TokenHolder { user_id } => json!({"type": "token_holder", "id": user_id}),
            Self::User {
                user_id,
                session_id,
            } => json!({"type": "user", "id": user_id, "session_id": session_id}),
        }
    }
}

/// The context of one request: the caller and what the audit trail records of it.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Who is calling.
    pub caller: Caller,
    /// The request id, also in the response.
    pub request_id: String,
    /// Client address; personal data.
    pub ip: Option<String>,
    /// Client user agent; personal data.
    pub user_agent: Option<String>,
    /// The request's `Idempotency-Key` claim, written with its command's events.
    pub idempotency: Option<std::sync::Arc<super::idempotency::Claim>>,
}

impl Ctx {
    /// A context for work the system does on its own (bootstrap, CLI).
    pub fn system(request_id: impl Into<String>) -> Self {
        Self {
            caller: Caller::System,
            request_id: request_id.into(),
            ip: None,
            user_agent: None,
            idempotency: None,
        }
    }

    /// The event metadata for commands of this request.
    pub fn metadata(&self) -> Value {
        json!({
            "actor": self.caller.actor(),
            "request_id": self.request_id,
            "ip": self.ip,
            "user_agent": self.user_agent,
        })
    }
}
