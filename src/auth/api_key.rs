//! The API-key format: `vk_` + 43 base62 characters encoding 256 random bits +
//! a 6-character base62 CRC32 of those 43 characters.
//!
//! The checksum lets a typo or a truncated key be refused without a database
//! look-up and lets secret scanners recognise vouch keys. Only the SHA-256 of
//! the whole key is stored.

use rand::rngs::OsRng;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// The fixed start of every key.
pub const KEY_PREFIX: &str = "vk_";
const BODY_LEN: usize = 43;
const CHECK_LEN: usize = 6;
/// Total length of a key.
pub const KEY_LEN: usize = KEY_PREFIX.len() + BODY_LEN + CHECK_LEN;
/// How many leading characters are shown in lists.
pub const DISPLAY_PREFIX_LEN: usize = 12;

/// A well-formed API key (checksum verified). Its Debug output hides the secret.
#[derive(Debug, Clone)]
pub struct PresentedKey(SecretString);

/// Why a string is not an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed API key")]
pub struct MalformedKey;

impl PresentedKey {
    /// Generates a fresh key from 256 bits of OS randomness.
    pub fn generate() -> Self {
        let mut bits = [0u8; 32];
        OsRng.fill_bytes(&mut bits);
        let body = encode_base62(&bits, BODY_LEN);
        let check = checksum(&body);
        Self(SecretString::from(format!("{KEY_PREFIX}{body}{check}")))
    }

    /// Checks the format and the checksum of a presented string.
    pub fn parse(raw: &str) -> Result<Self, MalformedKey> {
        if raw.len() != KEY_LEN || !raw.starts_with(KEY_PREFIX) {
            return Err(MalformedKey);
        }
        let rest = &raw[KEY_PREFIX.len()..];
        if !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(MalformedKey);
        }
        let (body, check) = rest.split_at(BODY_LEN);
        if !bool::from(checksum(body).as_bytes().ct_eq(check.as_bytes())) {
            return Err(MalformedKey);
        }
        Ok(Self(SecretString::from(raw.to_owned())))
    }

    /// The plaintext key: to be shown once, never stored or logged.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The first characters, safe to show in lists.
    pub fn display_prefix(&self) -> String {
        self.expose()[..DISPLAY_PREFIX_LEN].to_owned()
    }

    /// Hex SHA-256 of the whole key: what is stored and looked up.
    pub fn hash(&self) -> String {
        hex(&Sha256::digest(self.expose().as_bytes()))
    }
}

/// Compares two stored hashes without an early exit.
pub fn hashes_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn checksum(body: &str) -> String {
    let crc = crc32fast::hash(body.as_bytes());
    encode_base62(&crc.to_be_bytes(), CHECK_LEN)
}

/// Writes a big-endian unsigned integer as exactly `width` base62 digits.
///
/// An exact base conversion of uniformly random bits: no modulo bias.
pub(crate) fn encode_base62(bytes: &[u8], width: usize) -> String {
    let mut number = bytes.to_vec();
    let mut digits = vec![b'0'; width];
    for slot in digits.iter_mut().rev() {
        let mut remainder = 0u32;
        for byte in number.iter_mut() {
            let acc = (remainder << 8) | u32::from(*byte);
            *byte = (acc / 62) as u8;
            remainder = acc % 62;
        }
        *slot = ALPHABET[remainder as usize];
    }
    digits.into_iter().map(char::from).collect()
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

/// Decodes exactly 32 bytes of lower- or upper-case hex (64 characters).
pub fn hex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let key = PresentedKey::generate();
        let s = key.expose();
        assert_eq!(s.len(), 52);
        assert!(s.starts_with("vk_"));
        assert!(s[3..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(key.display_prefix(), &s[..12]);
        assert_eq!(PresentedKey::parse(s).unwrap().hash(), key.hash());
        assert_eq!(key.hash().len(), 64);
    }

    #[test]
    fn two_keys_differ() {
        assert_ne!(
            PresentedKey::generate().expose(),
            PresentedKey::generate().expose()
        );
    }

    #[test]
    fn a_typo_or_truncation_is_malformed() {
        let key = PresentedKey::generate().expose().to_owned();
        let mut typo = key.clone().into_bytes();
        typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
        assert_eq!(
            PresentedKey::parse(&String::from_utf8(typo).unwrap()).unwrap_err(),
            MalformedKey
        );
        assert!(PresentedKey::parse(&key[..51]).is_err());
        assert!(PresentedKey::parse(&format!("vx_{}", &key[3..])).is_err());
        assert!(PresentedKey::parse("").is_err());
        assert!(PresentedKey::parse(&"é".repeat(26)).is_err());
    }

    #[test]
    fn base62_is_an_exact_conversion() {
        assert_eq!(encode_base62(&[0, 0], 3), "000");
        assert_eq!(encode_base62(&[0, 61], 2), "0z");
        assert_eq!(encode_base62(&[0, 62], 2), "10");
        assert_eq!(encode_base62(&[0xff; 32], 43).len(), 43);
        // 2^256 - 1 fits in 43 digits: the top digit stays below the alphabet's end.
        assert_ne!(encode_base62(&[0xff; 32], 43).as_bytes()[0], b'z');
    }

    #[test]
    fn hex32_round_trips_and_refuses_garbage() {
        let bytes = [0xabu8; 32];
        assert_eq!(hex32(&hex(&bytes)), Some(bytes));
        assert_eq!(hex32("ab"), None);
        assert_eq!(hex32(&"zz".repeat(32)), None);
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let key = PresentedKey::generate();
        assert!(!format!("{key:?}").contains(&key.expose()[3..]));
    }
}
