//! Refresh tokens: `vrt_` + the session id (32 hex) + `_` + 43 base62 characters
//! of 256 random bits. The session id lets the session be loaded directly; only
//! the SHA-256 of the whole token is stored.

use super::api_key::{encode_base62, hex};
use rand::rngs::OsRng;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use uuid::Uuid;

const PREFIX: &str = "vrt_";
const LEN: usize = PREFIX.len() + 32 + 1 + 43;

/// A refresh token. Its Debug output hides the secret.
#[derive(Debug, Clone)]
pub struct RefreshToken {
    session_id: Uuid,
    token: SecretString,
}

/// Not a refresh token of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed refresh token")]
pub struct MalformedToken;

impl RefreshToken {
    /// A fresh token for a session.
    pub fn generate(session_id: Uuid) -> Self {
        let mut bits = [0u8; 32];
        OsRng.fill_bytes(&mut bits);
        let token = format!(
            "{PREFIX}{}_{}",
            session_id.simple(),
            encode_base62(&bits, 43)
        );
        Self {
            session_id,
            token: SecretString::from(token),
        }
    }

    /// Checks the shape of a presented token.
    pub fn parse(raw: &str) -> Result<Self, MalformedToken> {
        // ASCII only, so that the byte offsets below fall between characters.
        if raw.len() != LEN || !raw.is_ascii() || !raw.starts_with(PREFIX) {
            return Err(MalformedToken);
        }
        let rest = &raw[PREFIX.len()..];
        // The length is in bytes: a multi-byte character may straddle the split.
        let (session, secret) = rest.split_at_checked(32).ok_or(MalformedToken)?;
        let secret = secret.strip_prefix('_').ok_or(MalformedToken)?;
        if !secret.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(MalformedToken);
        }
        let session_id = Uuid::try_parse(session).map_err(|_| MalformedToken)?;
        Ok(Self {
            session_id,
            token: SecretString::from(raw.to_owned()),
        })
    }

    /// The session this token belongs to.
    pub fn session_id(&self) -> Uuid {
        self.session_id
    }

    /// The plaintext, for the response only.
    pub fn expose(&self) -> &str {
        self.token.expose_secret()
    }

    /// Hex SHA-256 of the token: what is stored.
    pub fn hash(&self) -> String {
        hex(&Sha256::digest(self.expose().as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_carry_their_session() {
        let sid = Uuid::from_u128(0xabcdef);
        let token = RefreshToken::generate(sid);
        let parsed = RefreshToken::parse(token.expose()).unwrap();
        assert_eq!(parsed.session_id(), sid);
        assert_eq!(parsed.hash(), token.hash());
        assert_ne!(RefreshToken::generate(sid).hash(), token.hash());
    }

    #[test]
    fn garbage_is_malformed() {
        let good = RefreshToken::generate(Uuid::from_u128(1))
            .expose()
            .to_owned();
        for bad in [
            "",
            "vrt_",
            &good[..good.len() - 1],
            &good.replace("vrt_", "vrx_"),
            &format!("{}!", &good[..good.len() - 1]),
            // The right length in bytes, with a character across the split.
            &format!("vrt_{}é{}", "a".repeat(31), "b".repeat(43)),
            &format!("vrt_{}\u{e9}{}", "a".repeat(31), "a".repeat(43)),
        ] {
            assert!(RefreshToken::parse(bad).is_err(), "{bad:?}");
        }
    }
}
