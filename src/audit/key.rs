//! The audit signing key: an Ed25519 key kept outside the database, in a file
//! created on first use with mode 0600. Whoever can write the database can
//! recompute a bare hash chain, but cannot forge a signed checkpoint.

use crate::auth::api_key::hex;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};
use std::path::Path;

/// The audit key.
#[derive(Clone)]
pub struct AuditKey {
    key: SigningKey,
}

pub use crate::auth::key_file::KeyFileError;

impl AuditKey {
    /// Loads the key from `path`, creating it (mode 0600) if it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyFileError> {
        let (seed, _) = crate::auth::key_file::read_or_create(path, "audit")?;
        Ok(Self {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// Signs a message.
    pub fn sign(&self, message: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(self.key.sign(message).to_bytes())
    }

    /// A 32-byte secret for another purpose, derived from this key's seed
    /// (HMAC-SHA256 keyed by the seed, over `label`), so that a deployment
    /// keeps one secret file outside the database.
    pub fn derive(&self, label: &str) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.key.to_bytes()) else {
            unreachable!("HMAC takes keys of any length")
        };
        mac.update(label.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The public key, base64url.
    pub fn public_key(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.key.verifying_key().as_bytes())
    }

    /// A short id of the public key: the first 16 hex characters of its SHA-256.
    pub fn key_id(&self) -> String {
        key_id_of(self.key.verifying_key().as_bytes())
    }
}

/// The key id of a public key.
pub fn key_id_of(public: &[u8]) -> String {
    hex(&Sha256::digest(public))[..16].to_owned()
}

/// Verifies a base64url signature with a base64url public key.
pub fn verify_signature(public_key: &str, message: &[u8], signature: &str) -> bool {
    let Some(public) = URL_SAFE_NO_PAD
        .decode(public_key)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .and_then(|b| VerifyingKey::from_bytes(&b).ok())
    else {
        return false;
    };
    let Some(signature) = URL_SAFE_NO_PAD
        .decode(signature)
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok())
    else {
        return false;
    };
    public.verify(message, &signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_is_created_once_with_restrictive_permissions() {
        let path =
            std::env::temp_dir().join(format!("vouch-audit-test-{}.key", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let first = AuditKey::load_or_create(&path).unwrap();
        let again = AuditKey::load_or_create(&path).unwrap();
        assert_eq!(first.public_key(), again.public_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let sig = first.sign(b"message");
        assert!(verify_signature(&first.public_key(), b"message", &sig));
        assert!(!verify_signature(&first.public_key(), b"massage", &sig));
        std::fs::remove_file(&path).unwrap();
    }
}
