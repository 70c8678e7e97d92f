//! Single-use action tokens: email verification, password reset, email change
//! and invitations. `v` + the purpose's two letters + `_` + the id of what the
//! token acts on (32 hex, so it is found without a scan) + `_` + 43 base62
//! characters of 256 random bits. Only the SHA-256 of the whole token is
//! stored; a token of one purpose is never one of another.

use super::api_key::{encode_base62, hex};
use chrono::Duration;
use rand::rngs::OsRng;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// What a token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Confirm that an email address is the user's.
    EmailVerification,
    /// Set a new password without the old one.
    PasswordReset,
    /// Move an account to a new email address.
    EmailChange,
    /// Join an org with a role.
    Invitation,
    /// Finish a sign-in with a second factor.
    MfaChallenge,
}

impl Purpose {
    /// The token's prefix, which names its purpose.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::EmailVerification => "vev_",
            Self::PasswordReset => "vpr_",
            Self::EmailChange => "vec_",
            Self::Invitation => "vin_",
            Self::MfaChallenge => "vmf_",
        }
    }

    /// How long a token of this purpose works.
    pub fn lifetime(self) -> Duration {
        match self {
            Self::EmailVerification => Duration::hours(24),
            Self::PasswordReset | Self::EmailChange => Duration::hours(1),
            Self::Invitation => Duration::days(7),
            Self::MfaChallenge => Duration::minutes(5),
        }
    }
}

/// The one answer for every token that is not a valid one of its purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid token")]
pub struct InvalidToken;

/// A token of one purpose. Its Debug output hides the secret.
#[derive(Debug, Clone)]
pub struct ActionToken {
    purpose: Purpose,
    id: Uuid,
    token: SecretString,
}

impl ActionToken {
    /// A fresh token for what `id` names (a request or an invitation).
    pub fn generate(purpose: Purpose, id: Uuid) -> Self {
        let mut bits = [0u8; 32];
        OsRng.fill_bytes(&mut bits);
        let token = format!(
            "{}{}_{}",
            purpose.prefix(),
            id.simple(),
            encode_base62(&bits, 43)
        );
        Self {
            purpose,
            id,
            token: SecretString::from(token),
        }
    }

    /// Checks the shape of a presented token of `purpose`.
    pub fn parse(purpose: Purpose, raw: &str) -> Result<Self, InvalidToken> {
        let rest = raw.strip_prefix(purpose.prefix()).ok_or(InvalidToken)?;
        // ASCII only, so that the byte offsets below fall between characters.
        if !rest.is_ascii() || rest.len() != 32 + 1 + 43 {
            return Err(InvalidToken);
        }
        let (id, secret) = rest.split_at(32);
        let secret = secret.strip_prefix('_').ok_or(InvalidToken)?;
        if !secret.bytes().all(|b| b.is_ascii_alphanumeric())
            || !id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return Err(InvalidToken);
        }
        let id = Uuid::try_parse(id).map_err(|_| InvalidToken)?;
        Ok(Self {
            purpose,
            id,
            token: SecretString::from(raw.to_owned()),
        })
    }

    /// Its purpose.
    pub fn purpose(&self) -> Purpose {
        self.purpose
    }

    /// What it acts on.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The plaintext, for the one answer or mail that carries it.
    pub fn expose(&self) -> &str {
        self.token.expose_secret()
    }

    /// Hex SHA-256 of the token: what is stored.
    pub fn hash(&self) -> String {
        hex(&Sha256::digest(self.expose().as_bytes()))
    }

    /// Whether `stored` is this token's hash, compared in constant time.
    pub fn matches(&self, stored: &str) -> bool {
        self.hash().as_bytes().ct_eq(stored.as_bytes()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Purpose; 5] = [
        Purpose::EmailVerification,
        Purpose::PasswordReset,
        Purpose::EmailChange,
        Purpose::Invitation,
        Purpose::MfaChallenge,
    ];

    #[test]
    fn a_token_parses_back_for_its_purpose_only() {
        let id = Uuid::from_u128(0x0123_4567_89ab_cdef);
        for purpose in ALL {
            let token = ActionToken::generate(purpose, id);
            let parsed = ActionToken::parse(purpose, token.expose()).unwrap();
            assert_eq!((parsed.id(), parsed.purpose()), (id, purpose));
            assert!(parsed.matches(&token.hash()));
            for other in ALL.into_iter().filter(|p| *p != purpose) {
                assert_eq!(
                    ActionToken::parse(other, token.expose()).err(),
                    Some(InvalidToken)
                );
            }
        }
    }

    #[test]
    fn malformed_tokens_are_refused_alike() {
        let token = ActionToken::generate(Purpose::PasswordReset, Uuid::from_u128(0xabc));
        let raw = token.expose();
        let upper = raw.replacen(
            &Uuid::from_u128(0xabc).simple().to_string(),
            &Uuid::from_u128(0xabc).simple().to_string().to_uppercase(),
            1,
        );
        for bad in [
            "",
            "vpr_",
            &raw[..raw.len() - 1],
            &format!("{raw}x"),
            &raw.replacen('_', "-", 2),
            &format!("{}é", &raw[..raw.len() - 2]),
            upper.as_str(),
        ] {
            assert_eq!(
                ActionToken::parse(Purpose::PasswordReset, bad).err(),
                Some(InvalidToken),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn only_the_hash_is_kept_and_another_token_does_not_match_it() {
        let id = Uuid::from_u128(1);
        let (a, b) = (
            ActionToken::generate(Purpose::Invitation, id),
            ActionToken::generate(Purpose::Invitation, id),
        );
        assert_ne!(a.expose(), b.expose(), "256 random bits each");
        assert!(!a.hash().contains(a.expose()) && a.hash().len() == 64);
        assert!(!b.matches(&a.hash()));
        assert!(!format!("{a:?}").contains(a.expose()), "Debug hides it");
    }

    #[test]
    fn each_purpose_has_its_lifetime() {
        assert_eq!(Purpose::EmailVerification.lifetime(), Duration::hours(24));
        assert_eq!(Purpose::PasswordReset.lifetime(), Duration::hours(1));
        assert_eq!(Purpose::EmailChange.lifetime(), Duration::hours(1));
        assert_eq!(Purpose::Invitation.lifetime(), Duration::days(7));
    }
}
