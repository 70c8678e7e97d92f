//! The signing-key ring of this instance: the unretired JWT signing keys,
//! oldest first, reloaded from the database (see `app::signing`).

use crate::auth::jwt::Jwk;
use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::{SigningKey, VerifyingKey};
use std::sync::RwLock;
use std::time::Instant;

/// One unretired key as this instance holds it.
#[derive(Clone)]
pub struct RingKey {
    /// The key id of JWT headers.
    pub kid: String,
    /// Verifies tokens it signed.
    pub public: VerifyingKey,
    /// Signs tokens, if this database holds its private half.
    pub secret: Option<SigningKey>,
    /// When it was created (it signs once published for a while).
    pub created_at: DateTime<Utc>,
}

#[derive(Default)]
struct Ring {
    keys: Vec<RingKey>,
    loaded_at: Option<Instant>,
}

/// The current, unretired signing keys of this instance, oldest first.
#[derive(Default)]
pub struct KeyRing {
    ring: RwLock<Ring>,
}

impl KeyRing {
    fn read<T>(&self, f: impl FnOnce(&Ring) -> T) -> T {
        match self.ring.read() {
            Ok(ring) => f(&ring),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    /// Puts a freshly loaded set of keys in place.
    pub fn replace(&self, keys: Vec<RingKey>) {
        let mut ring = match self.ring.write() {
            Ok(ring) => ring,
            Err(poisoned) => poisoned.into_inner(),
        };
        ring.keys = keys;
        ring.loaded_at = Some(Instant::now());
    }

    /// How long ago the keys were loaded (`None`: never).
    pub fn age(&self) -> Option<std::time::Duration> {
        self.read(|r| r.loaded_at.map(|t| t.elapsed()))
    }

    /// The public half of `kid`.
    pub fn public(&self, kid: &str) -> Option<VerifyingKey> {
        self.read(|r| r.keys.iter().find(|k| k.kid == kid).map(|k| k.public))
    }

    /// The newest key published long enough ago; the newest key if none is.
    pub fn signer(
        &self,
        now: DateTime<Utc>,
        publish_delay: Duration,
    ) -> Option<(String, SigningKey)> {
        self.read(|r| {
            let usable = |k: &&RingKey| k.secret.is_some();
            let published = r
                .keys
                .iter()
                .filter(usable)
                .rfind(|k| k.created_at + publish_delay <= now);
            published
                .or_else(|| r.keys.iter().rfind(usable))
                .and_then(|k| Some((k.kid.clone(), k.secret.clone()?)))
        })
    }

    /// The JWKS entries of the keys.
    pub fn jwks(&self) -> Vec<Jwk> {
        self.read(|r| {
            r.keys
                .iter()
                .map(|k| Jwk::ed25519(&k.kid, &k.public))
                .collect()
        })
    }
}
