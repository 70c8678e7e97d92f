//! Sealing stored responses of idempotent requests.
//!
//! A replayable response can hold a secret (a new API key, tokens), and its
//! request a password or a refresh token, so neither is stored as it is:
//! - the request is remembered by a keyed fingerprint (HMAC-SHA256), which the
//!   database alone cannot be searched with for passwords;
//! - the response is encrypted (ChaCha20-Poly1305) under a key derived from
//!   the server's secret AND the request itself (scope, key, path, body) AND
//!   the caller's own credential where it has a stable one (the API key), so
//!   only a retry of the same request by the same caller opens it.
//!
//! The server's secret comes from outside the database (see
//! `audit::key::AuditKey::derive`).

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const NONCE_LEN: usize = 12;

/// Fingerprints requests and seals responses with keys derived from one secret.
#[derive(Clone)]
pub struct ResponseSeal {
    fingerprint_key: [u8; 32],
    seal_key: [u8; 32],
}

impl std::fmt::Debug for ResponseSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResponseSeal(..)")
    }
}

/// HMAC-SHA256 of length-prefixed parts, so that no two part lists collide.
fn mac(key: &[u8], label: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let Ok(mut m) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
        unreachable!("HMAC takes keys of any length")
    };
    m.update(label);
    for part in parts {
        m.update(&(part.len() as u64).to_be_bytes());
        m.update(part);
    }
    m.finalize().into_bytes().into()
}

impl ResponseSeal {
    /// Derives the fingerprint and sealing keys from a 32-byte secret.
    pub fn new(secret: [u8; 32]) -> Self {
        Self {
            fingerprint_key: mac(&secret, b"vouch idempotency fingerprint v1", &[]),
            seal_key: mac(&secret, b"vouch idempotency seal v1", &[]),
        }
    }

    /// The fingerprint of a request, given as its parts (scope, key, method,
    /// path, body).
    pub fn fingerprint(&self, parts: &[&[u8]]) -> [u8; 32] {
        mac(&self.fingerprint_key, b"request", parts)
    }

    /// A keyed digest of a credential presented in a request body, naming
    /// the idempotency scope of a caller without an `Authorization` header.
    pub fn credential_digest(&self, parts: &[&[u8]]) -> [u8; 32] {
        mac(&self.fingerprint_key, b"credential", parts)
    }

    fn cipher(&self, binding: &[&[u8]]) -> ChaCha20Poly1305 {
        let key = mac(&self.seal_key, b"response", binding);
        ChaCha20Poly1305::new(Key::from_slice(&key))
    }

    /// Encrypts `plaintext` under a key bound to `binding`: nonce, then
    /// ciphertext with its tag.
    pub fn seal(&self, binding: &[&[u8]], plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let mut out = nonce.to_vec();
        // Encryption in memory with a valid key and nonce cannot fail.
        if let Ok(ciphertext) = self
            .cipher(binding)
            .encrypt(Nonce::from_slice(&nonce), plaintext)
        {
            out.extend_from_slice(&ciphertext);
        }
        out
    }

    /// Decrypts what [`Self::seal`] made with the same binding; `None` for any
    /// other binding or a changed byte.
    pub fn open(&self, binding: &[&[u8]], sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        self.cipher(binding)
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_binding_opens_a_sealed_response() {
        let seal = ResponseSeal::new([7; 32]);
        let sealed = seal.seal(&[b"key:1", b"k", b"body"], b"{\"key\":\"vk_secret\"}");
        assert!(!sealed.windows(9).any(|w| w == b"vk_secret"));
        assert_eq!(
            seal.open(&[b"key:1", b"k", b"body"], &sealed).as_deref(),
            Some(&b"{\"key\":\"vk_secret\"}"[..])
        );
        assert_eq!(seal.open(&[b"key:2", b"k", b"body"], &sealed), None);
        assert_eq!(seal.open(&[b"key:1", b"k", b"bodx"], &sealed), None);
        assert_eq!(
            ResponseSeal::new([8; 32]).open(&[b"key:1", b"k", b"body"], &sealed),
            None
        );
        let mut tampered = sealed.clone();
        if let Some(last) = tampered.last_mut() {
            *last ^= 1;
        }
        assert_eq!(seal.open(&[b"key:1", b"k", b"body"], &tampered), None);
        assert_eq!(seal.open(&[b"key:1", b"k", b"body"], &sealed[..5]), None);
    }

    #[test]
    fn fingerprints_tell_requests_apart_and_need_the_secret() {
        let seal = ResponseSeal::new([7; 32]);
        let a = seal.fingerprint(&[b"user:1", b"k", b"POST", b"/v1/orgs", b"{}"]);
        assert_eq!(
            a,
            seal.fingerprint(&[b"user:1", b"k", b"POST", b"/v1/orgs", b"{}"])
        );
        // Moving a byte from one part to the next is another request.
        assert_ne!(
            a,
            seal.fingerprint(&[b"user:1", b"k", b"POST", b"/v1/orgs{", b"}"])
        );
        assert_ne!(
            a,
            ResponseSeal::new([8; 32]).fingerprint(&[b"user:1", b"k", b"POST", b"/v1/orgs", b"{}"])
        );
    }
}
