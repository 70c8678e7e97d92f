//! The key-encryption key and the per-person data keys it wraps.
//!
//! Both ciphers are XChaCha20-Poly1305 with a random 24-byte nonce (random
//! nonces of that size never repeat in practice), stored as
//! `nonce || ciphertext || tag`.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use uuid::Uuid;

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// Why personal data could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum PiiError {
    /// The bytes are not a sealed value of this key (wrong key, wrong
    /// associated data, or altered).
    #[error("a sealed value does not open with this key")]
    Undecryptable,
}

/// The key-encryption key: kept in a file outside the database, it wraps
/// every person's data key.
#[derive(Clone)]
pub struct Kek {
    cipher: XChaCha20Poly1305,
    fingerprint: String,
    blind_index: Hmac<Sha256>,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kek({})", self.fingerprint)
    }
}

impl Kek {
    /// The KEK from its 32-byte secret.
    pub fn from_secret(secret: &[u8; 32]) -> Self {
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret) else {
            unreachable!("HMAC takes keys of any length")
        };
        let mut blind_index = mac.clone();
        mac.update(b"vouch pii kek fingerprint v1");
        blind_index.update(b"vouch pii blind index v1");
        let Ok(blind_index) =
            <Hmac<Sha256> as Mac>::new_from_slice(&blind_index.finalize().into_bytes())
        else {
            unreachable!("HMAC takes keys of any length")
        };
        Self {
            cipher: XChaCha20Poly1305::new(secret.into()),
            fingerprint: crate::auth::api_key::hex(&mac.finalize().into_bytes()),
            blind_index,
        }
    }

    /// A keyed one-way index of a personal value (HMAC-SHA256 under a key
    /// derived from the KEK, hex): equal values give equal indexes, and
    /// nobody without the key file can turn one back into its value or test
    /// a guess. `scope` keeps indexes of different kinds apart.
    pub fn blind(&self, scope: &str, value: &str) -> String {
        let mut mac = self.blind_index.clone();
        mac.update(&(scope.len() as u32).to_be_bytes());
        mac.update(scope.as_bytes());
        mac.update(value.as_bytes());
        crate::auth::api_key::hex(&mac.finalize().into_bytes())
    }

    /// A public, one-way name of this key (HMAC-SHA256 of a fixed label under
    /// it, hex): what the database records to recognise the right key file.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Wraps a person's data key; the person's id is bound in, so a wrapped
    /// key copied to another person does not open.
    pub fn wrap(&self, subject: Uuid, key: &DataKey) -> Vec<u8> {
        seal(&self.cipher, &wrap_aad(subject), &key.0)
    }

    /// Unwraps a person's data key.
    pub fn unwrap(&self, subject: Uuid, wrapped: &[u8]) -> Result<DataKey, PiiError> {
        let bytes = open(&self.cipher, &wrap_aad(subject), wrapped)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| PiiError::Undecryptable)?;
        Ok(DataKey(key))
    }
}

fn wrap_aad(subject: Uuid) -> Vec<u8> {
    let mut aad = b"vouch pii data key v1".to_vec();
    aad.extend_from_slice(subject.as_bytes());
    aad
}

/// One person's data key: it encrypts their personal fields, and destroying
/// it (the one wrapped copy) erases them.
#[derive(Clone)]
pub struct DataKey([u8; 32]);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    /// A new random data key.
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self(key)
    }

    /// Encrypts `plaintext`, binding `aad` (who and where it belongs) in.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        seal(&XChaCha20Poly1305::new((&self.0).into()), aad, plaintext)
    }

    /// Decrypts what [`DataKey::seal`] produced with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, PiiError> {
        open(&XChaCha20Poly1305::new((&self.0).into()), aad, sealed)
    }
}

fn seal(cipher: &XChaCha20Poly1305, aad: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let Ok(ciphertext) = cipher.encrypt(XNonce::from_slice(&nonce), Payload { msg, aad }) else {
        unreachable!("XChaCha20-Poly1305 encrypts any message that fits in memory")
    };
    let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    out
}

fn open(cipher: &XChaCha20Poly1305, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, PiiError> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(PiiError::Undecryptable);
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    cipher
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| PiiError::Undecryptable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_key_round_trips_through_its_wrapping_for_its_subject_only() {
        let kek = Kek::from_secret(&[7; 32]);
        let (ada, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let key = DataKey::generate();
        let wrapped = kek.wrap(ada, &key);
        assert_eq!(wrapped.len(), NONCE_LEN + 32 + TAG_LEN);
        let unwrapped = kek.unwrap(ada, &wrapped).unwrap();
        assert_eq!(unwrapped.0, key.0);
        assert!(kek.unwrap(bob, &wrapped).is_err(), "bound to its subject");
        let other = Kek::from_secret(&[8; 32]);
        assert!(other.unwrap(ada, &wrapped).is_err(), "bound to its KEK");
        assert_ne!(kek.fingerprint(), other.fingerprint());
        assert_eq!(kek.fingerprint(), Kek::from_secret(&[7; 32]).fingerprint());
    }

    #[test]
    fn a_sealed_field_opens_with_its_key_and_associated_data_only() {
        let key = DataKey::generate();
        let sealed = key.seal(b"ada/email", b"\"ada@example.org\"");
        assert!(!sealed.windows(3).any(|w| w == b"ada"), "no plaintext");
        assert_eq!(
            key.open(b"ada/email", &sealed).unwrap(),
            b"\"ada@example.org\""
        );
        assert!(key.open(b"ada/name", &sealed).is_err());
        assert!(DataKey::generate().open(b"ada/email", &sealed).is_err());
        let mut altered = sealed.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert!(key.open(b"ada/email", &altered).is_err());
        assert!(key.open(b"ada/email", &sealed[..10]).is_err());
        assert_ne!(
            key.seal(b"a", b"same"),
            key.seal(b"a", b"same"),
            "fresh nonce per seal"
        );
    }

    #[test]
    fn blind_indexes_are_keyed_and_scoped() {
        let (a, b) = (Kek::from_secret(&[1; 32]), Kek::from_secret(&[2; 32]));
        let ip = "203.0.113.7";
        assert_eq!(a.blind("ip", ip), a.blind("ip", ip));
        assert_ne!(a.blind("ip", ip), b.blind("ip", ip), "another key");
        assert_ne!(a.blind("ip", ip), a.blind("email", ip), "another scope");
        assert_ne!(a.blind("ip", ip), a.fingerprint());
        assert!(!a.blind("ip", ip).contains(ip));
    }
}
