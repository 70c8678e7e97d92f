//! Single-use action tokens as the domain sees them: the token's hash and
//! expiry, pending until used, replaced or void. The token itself is an input
//! (made outside the domain) that only travels sealed, to the mailer.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// A token in the clear, as a request event carries it for the mailer: sealed
/// in the log like a personal field, redacted wherever an event is shown.
/// Its Debug output hides it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenSecret(String);

impl TokenSecret {
    /// Wraps a token made by the caller.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token, for the one mail that carries it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSecret(..)")
    }
}

/// A TOTP secret as base32 text (made and checked in `auth::totp`): sealed in
/// the log like a personal field, redacted wherever an event is shown. Its
/// Debug output hides it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TotpSecret(String);

impl TotpSecret {
    /// Wraps base32 text.
    pub fn new(base32: impl Into<String>) -> Self {
        Self(base32.into())
    }

    /// The base32 text, for the one answer that shows it and for checks.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

/// A requested token that has not been used yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

impl Pending {
    /// Whether a presented token's hash is this token's, compared in constant
    /// time, and the token still works at `now`.
    pub fn accepts(&self, presented_hash: &str, now: DateTime<Utc>) -> bool {
        let same: bool = self
            .token_hash
            .as_bytes()
            .ct_eq(presented_hash.as_bytes())
            .into();
        same && now < self.expires_at
    }
}

/// A request for a token: made outside the domain (random bits, the hash, the
/// expiry from the clock) and recorded by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenIssue {
    /// The token, for the mail.
    pub token: TokenSecret,
    /// Its hash, what a confirmation is checked against.
    pub token_hash: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

impl TokenIssue {
    /// What stays pending once the request is recorded.
    pub fn pending(&self) -> Pending {
        Pending {
            token_hash: self.token_hash.clone(),
            expires_at: self.expires_at,
        }
    }
}

/// A presented token, by its hash, at a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented {
    /// Hex SHA-256 of the presented token.
    pub token_hash: String,
    /// The time of the confirmation.
    pub now: DateTime<Utc>,
}

impl Presented {
    /// Whether `pending` (if any) accepts this token now.
    pub fn is_accepted_by(&self, pending: Option<&Pending>) -> bool {
        pending.is_some_and(|p| p.accepts(&self.token_hash, self.now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    #[test]
    fn a_pending_token_accepts_its_own_hash_until_it_expires() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let p = Pending {
            token_hash: "ab".repeat(32),
            expires_at: t0 + Duration::hours(1),
        };
        assert!(p.accepts(&"ab".repeat(32), t0));
        assert!(!p.accepts(&"ab".repeat(31), t0));
        assert!(!p.accepts(&"ac".repeat(32), t0));
        assert!(!p.accepts(&"ab".repeat(32), t0 + Duration::hours(1)));
        assert!(!format!("{:?}", TokenSecret::new("vpr_x")).contains("vpr_x"));
    }
}
