//! The session aggregate: a signed-in user with a rotating refresh token.
//!
//! Rules: every refresh replaces the refresh token; presenting a token that was
//! already replaced means it leaked, so the whole session is revoked
//! (`refresh_reuse`). There is no grace window (RFC 9700).

use super::personal::Personal;
use super::{Aggregate, DomainError, DomainEvent, StreamType};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeReason {
    /// The user signed out.
    Logout,
    /// The user changed their password.
    PasswordChanged,
    /// An admin disabled the user.
    UserDisabled,
    /// A replaced refresh token was presented again.
    RefreshReuse,
    /// An admin or the user revoked it.
    Admin,
    /// The user was erased.
    UserErased,
    /// The password was set anew with a reset token.
    PasswordReset,
}

impl RevokeReason {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::PasswordChanged => "password_changed",
            Self::UserDisabled => "user_disabled",
            Self::RefreshReuse => "refresh_reuse",
            Self::Admin => "admin",
            Self::UserErased => "user_erased",
            Self::PasswordReset => "password_reset",
        }
    }
}

/// How the user proved who they are, as RFC 8176 names it (`amr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// A password.
    Pwd,
    /// A one-time password (TOTP or a backup code).
    Otp,
    /// A hardware-bound key (a passkey whose key cannot leave its device).
    Hwk,
    /// A software-bound key (a synced passkey).
    Swk,
    /// More than one factor.
    Mfa,
}

impl AuthMethod {
    /// The RFC 8176 value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pwd => "pwd",
            Self::Otp => "otp",
            Self::Hwk => "hwk",
            Self::Swk => "swk",
            Self::Mfa => "mfa",
        }
    }
}

/// Events of a session stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum SessionEvent {
    /// The user signed in.
    #[serde(rename = "session.started")]
    Started {
        /// The user.
        user_id: Uuid,
        /// SHA-256 (hex) of the first refresh token; redacted when it leaves the database.
        refresh_token_hash: String,
        /// When the session ends at the latest.
        expires_at: DateTime<Utc>,
        /// Client address; personal data.
        ip: Option<Personal<String>>,
        /// Client user agent; personal data.
        user_agent: Option<Personal<String>>,
        /// How the user signed in (v2; a v1 session was a password's).
        amr: Vec<AuthMethod>,
    },
    /// The refresh token was exchanged for a new one.
    #[serde(rename = "session.refreshed")]
    Refreshed {
        /// SHA-256 (hex) of the new refresh token; redacted when it leaves the database.
        refresh_token_hash: String,
    },
    /// The session ended.
    #[serde(rename = "session.revoked")]
    Revoked {
        /// Why the session ended.
        reason: RevokeReason,
    },
}

impl DomainEvent for SessionEvent {
    /// v2: `session.started` names how the user signed in (`amr`).
    fn schema_version(&self) -> i16 {
        2
    }
}

/// Commands on a session.
#[derive(Debug, Clone)]
pub enum SessionCommand {
    /// Start the session after a successful sign-in.
    Start {
        /// The user.
        user_id: Uuid,
        /// Hash of the first refresh token.
        refresh_token_hash: String,
        /// Absolute end of the session.
        expires_at: DateTime<Utc>,
        /// Client address.
        ip: Option<String>,
        /// Client user agent.
        user_agent: Option<String>,
        /// How the user signed in.
        amr: Vec<AuthMethod>,
    },
    /// Exchange the presented refresh token for a new one.
    Refresh {
        /// Hash of the presented token.
        presented_hash: String,
        /// Hash of the replacement.
        new_hash: String,
        /// The current time.
        now: DateTime<Utc>,
    },
    /// End the session; ending an ended session changes nothing.
    Revoke {
        /// Why the session ended.
        reason: RevokeReason,
    },
}

/// The state of one session, as far as its rules need it.
#[derive(Debug, Clone, Default)]
pub struct Session {
    user_id: Option<Uuid>,
    current_hash: String,
    replaced_hashes: Vec<String>,
    expires_at: Option<DateTime<Utc>>,
    revoked: bool,
}

impl Session {
    /// A session as its read model holds it, for a refresh: `replaced` needs
    /// only the presented token's hash when the session issued it and it is
    /// not the current one, since a refresh compares the presented token and
    /// nothing else.
    pub fn from_snapshot(
        user_id: Uuid,
        current_hash: String,
        replaced: Vec<String>,
        expires_at: DateTime<Utc>,
        revoked: bool,
    ) -> Self {
        Self {
            user_id: Some(user_id),
            current_hash,
            replaced_hashes: replaced,
            expires_at: Some(expires_at),
            revoked,
        }
    }

    /// The session's user, if it exists.
    pub fn user_id(&self) -> Option<Uuid> {
        self.user_id
    }

    /// Whether the session ended.
    pub fn is_revoked(&self) -> bool {
        self.revoked
    }
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl Aggregate for Session {
    const STREAM_TYPE: StreamType = StreamType::Session;
    type Event = SessionEvent;
    type Command = SessionCommand;

    fn decide(&self, command: &SessionCommand) -> Result<Vec<SessionEvent>, DomainError> {
        use SessionCommand as C;
        use SessionEvent as E;
        match command {
            C::Start {
                user_id,
                refresh_token_hash,
                expires_at,
                ip,
                user_agent,
                amr,
            } => {
                if self.user_id.is_some() {
                    return Err(DomainError::AlreadyExists);
                }
                Ok(vec![E::Started {
                    user_id: *user_id,
                    refresh_token_hash: refresh_token_hash.clone(),
                    expires_at: *expires_at,
                    ip: ip.clone().map(Personal::from),
                    user_agent: user_agent.clone().map(Personal::from),
                    amr: amr.clone(),
                }])
            }
            _ if self.user_id.is_none() => Err(DomainError::NotFound),
            C::Revoke { .. } if self.revoked => Ok(vec![]),
            C::Revoke { reason } => Ok(vec![E::Revoked { reason: *reason }]),
            C::Refresh { .. } if self.revoked => Err(DomainError::InvalidToken),
            C::Refresh {
                presented_hash,
                new_hash,
                now,
            } => {
                if self.expires_at.is_some_and(|at| at <= *now) {
                    return Err(DomainError::InvalidToken);
                }
                if same(presented_hash, &self.current_hash) {
                    return Ok(vec![E::Refreshed {
                        refresh_token_hash: new_hash.clone(),
                    }]);
                }
                if self.replaced_hashes.iter().any(|h| same(presented_hash, h)) {
                    return Ok(vec![E::Revoked {
                        reason: RevokeReason::RefreshReuse,
                    }]);
                }
                Err(DomainError::InvalidToken)
            }
        }
    }

    fn evolve(mut self, event: &SessionEvent) -> Self {
        match event {
            SessionEvent::Started {
                user_id,
                refresh_token_hash,
                expires_at,
                ..
            } => {
                self.user_id = Some(*user_id);
                self.current_hash = refresh_token_hash.clone();
                self.expires_at = Some(*expires_at);
            }
            SessionEvent::Refreshed { refresh_token_hash } => {
                let old = std::mem::replace(&mut self.current_hash, refresh_token_hash.clone());
                self.replaced_hashes.push(old);
            }
            SessionEvent::Revoked { .. } => self.revoked = true,
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::given;
    use chrono::TimeZone;
    use SessionCommand as C;
    use SessionEvent as E;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    fn started() -> E {
        E::Started {
            user_id: Uuid::from_u128(1),
            refresh_token_hash: "h1".into(),
            expires_at: now() + chrono::Duration::days(30),
            ip: None,
            user_agent: None,
            amr: vec![AuthMethod::Pwd],
        }
    }

    fn refresh(presented: &str, new: &str) -> C {
        C::Refresh {
            presented_hash: presented.into(),
            new_hash: new.into(),
            now: now(),
        }
    }

    #[test]
    fn the_current_token_refreshes() {
        given::<Session>([started()])
            .when(refresh("h1", "h2"))
            .then([E::Refreshed {
                refresh_token_hash: "h2".into(),
            }]);
    }

    #[test]
    fn a_replaced_token_revokes_the_session() {
        given::<Session>([
            started(),
            E::Refreshed {
                refresh_token_hash: "h2".into(),
            },
        ])
        .when(refresh("h1", "h3"))
        .then([E::Revoked {
            reason: RevokeReason::RefreshReuse,
        }]);
    }

    #[test]
    fn an_unknown_token_is_refused() {
        given::<Session>([started()])
            .when(refresh("nope", "h2"))
            .then_err(DomainError::InvalidToken);
    }

    #[test]
    fn a_revoked_or_expired_session_does_not_refresh() {
        given::<Session>([
            started(),
            E::Revoked {
                reason: RevokeReason::Logout,
            },
        ])
        .when(refresh("h1", "h2"))
        .then_err(DomainError::InvalidToken);
        given::<Session>([started()])
            .when(C::Refresh {
                presented_hash: "h1".into(),
                new_hash: "h2".into(),
                now: now() + chrono::Duration::days(30),
            })
            .then_err(DomainError::InvalidToken);
    }

    #[test]
    fn revoking_is_recorded_once() {
        given::<Session>([started()])
            .when(C::Revoke {
                reason: RevokeReason::Logout,
            })
            .then([E::Revoked {
                reason: RevokeReason::Logout,
            }]);
        given::<Session>([
            started(),
            E::Revoked {
                reason: RevokeReason::Logout,
            },
        ])
        .when(C::Revoke {
            reason: RevokeReason::Admin,
        })
        .then_nothing();
    }

    #[test]
    fn a_missing_session_is_not_found() {
        given::<Session>([])
            .when(refresh("h1", "h2"))
            .then_err(DomainError::NotFound);
    }
}
