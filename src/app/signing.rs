//! JWT signing keys: generated in-process, private half in its own table, public
//! half as `signing_key.created`; an in-memory ring per instance.
//!
//! A new key is published in the JWKS `jwks_publish_delay_seconds` before it
//! signs, so verifiers with a cached JWKS know it before they meet it. A key
//! leaves the JWKS (`signing_key.retired`) once every token it signed has expired.

use super::{App, AppError, Ctx};
use crate::auth::jwt::{self, Claims, Expectation, Jwk, JwtError};
use crate::domain::signing_key::{SigningKeyCommand, SigningKeyState};
use crate::domain::{Aggregate, StreamType};
use crate::instance::key_ring::RingKey;
use crate::store::signing_keys;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Duration;
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand::rngs::OsRng;
use sha2::Digest;
use uuid::Uuid;

/// How often an instance reloads the ring on its own.
const RELOAD_EVERY: std::time::Duration = std::time::Duration::from_secs(30);
/// The least time between reloads triggered by an unknown `kid`.
const MISS_RELOAD_GAP: std::time::Duration = std::time::Duration::from_secs(1);

impl App {
    /// Creates the first signing key if there is none (once, across instances), then loads the ring.
    pub async fn ensure_signing_key(&self) -> Result<(), AppError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        signing_keys::lock_creation(&tx).await?;
        if signing_keys::count_unretired(&tx).await? == 0 {
            self.create_signing_key_in(&tx).await?;
        }
        tx.commit().await?;
        self.reload_keys().await
    }

    /// Generates a new signing key; it signs once published. Returns its `kid`.
    pub async fn rotate_signing_key(&self) -> Result<String, AppError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let kid = self.create_signing_key_in(&tx).await?;
        tx.commit().await?;
        self.wakeups.committed();
        self.reload_keys().await?;
        Ok(kid)
    }

    async fn create_signing_key_in(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
    ) -> Result<String, AppError> {
        let secret = SigningKey::generate(&mut OsRng);
        let id = self.clock.new_id();
        let kid = id.simple().to_string();
        let public_key = URL_SAFE_NO_PAD.encode(secret.verifying_key().as_bytes());
        let decided = SigningKeyState::default().decide(&SigningKeyCommand::Create {
            kid: kid.clone(),
            public_key,
        })?;
        signing_keys::create_secret(tx, &kid, secret.to_bytes().as_slice(), self.clock.now())
            .await?;
        let change = self.change((StreamType::SigningKey, id), 0, None, &decided)?;
        self.commit_in(tx, &Ctx::system("signing-key"), &[change])
            .await?;
        Ok(kid)
    }

    /// Retires keys whose every token has expired: a key stopped signing when its
    /// successor was published, so its last token expires one token lifetime later.
    pub async fn retire_expired_signing_keys(&self) -> Result<usize, AppError> {
        let client = self.pool.get().await?;
        let keys = signing_keys::find_unretired_ids(&client).await?;
        drop(client);
        let auth = &self.policy.auth;
        let last_use_margin = Duration::seconds(
            auth.jwks_publish_delay_seconds
                + auth.access_token_ttl_seconds
                + auth.jwks_retire_margin_seconds,
        );
        let now = self.clock.now();
        let mut retired = 0;
        for pair in keys.windows(2) {
            let (old, successor_created) = (pair[0].0, pair[1].1);
            if successor_created + last_use_margin <= now {
                let ctx = Ctx::system("signing-key-retirement");
                retired += self
                    .execute::<SigningKeyState>(&ctx, old, None, &SigningKeyCommand::Retire)
                    .await?
                    .len();
            }
        }
        if retired > 0 {
            self.reload_keys().await?;
        }
        Ok(retired)
    }

    /// Reloads the unretired keys from the database.
    pub async fn reload_keys(&self) -> Result<(), AppError> {
        let client = self.pool.get().await?;
        let stored = signing_keys::find_unretired(&client).await?;
        drop(client);
        let mut keys = Vec::with_capacity(stored.len());
        for k in stored {
            let bad =
                |what: &str| AppError::Internal(format!("signing key {}: {what}", k.kid).into());
            let public = URL_SAFE_NO_PAD
                .decode(&k.public_key)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .and_then(|b| VerifyingKey::from_bytes(&b).ok())
                .ok_or_else(|| bad("public key"))?;
            let secret = match k.private_key {
                Some(bytes) => Some(SigningKey::from_bytes(
                    &<[u8; 32]>::try_from(bytes).map_err(|_| bad("private key"))?,
                )),
                None => None,
            };
            keys.push(RingKey {
                kid: k.kid,
                public,
                secret,
                created_at: k.created_at,
            });
        }
        self.keys.replace(keys);
        Ok(())
    }

    /// The JWKS entries of the unretired keys.
    pub async fn jwks(&self) -> Result<Vec<Jwk>, AppError> {
        self.refresh_keys_if_stale().await?;
        Ok(self.keys.jwks())
    }

    async fn refresh_keys_if_stale(&self) -> Result<(), AppError> {
        if self.keys.age().is_none_or(|age| age > RELOAD_EVERY) {
            self.reload_keys().await?;
        }
        Ok(())
    }

    /// Signs an access token for a session; returns the token and its lifetime in seconds.
    pub(crate) async fn sign_access_token(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        amr: &[String],
    ) -> Result<(String, i64), AppError> {
        self.refresh_keys_if_stale().await?;
        let auth = &self.policy.auth;
        let now = self.clock.now();
        let (kid, key) = self
            .keys
            .signer(now, Duration::seconds(auth.jwks_publish_delay_seconds))
            .ok_or_else(|| AppError::Internal("no signing key".into()))?;
        let claims = Claims {
            iss: auth.jwt_issuer.clone(),
            aud: auth.jwt_audience.clone(),
            sub: user_id,
            sid: session_id,
            iat: now.timestamp(),
            exp: now.timestamp() + auth.access_token_ttl_seconds,
            jti: self.clock.new_id(),
            amr: amr.to_vec(),
        };
        Ok((
            jwt::sign(&claims, &kid, &key),
            auth.access_token_ttl_seconds,
        ))
    }

    /// Verifies an access token's signature and claims (not its session).
    pub(crate) async fn verify_jwt(&self, token: &str) -> Result<Claims, AppError> {
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        if let Some(claims) = self.cache.token(&digest) {
            // Same bytes, same signature: only time can have changed the answer.
            if claims.exp > self.clock.now().timestamp() {
                return Ok(claims);
            }
            return Err(AppError::Unauthenticated);
        }
        let claims = self.verify_jwt_signature(token).await?;
        self.cache.fill_token(digest, &claims);
        Ok(claims)
    }

    async fn verify_jwt_signature(&self, token: &str) -> Result<Claims, AppError> {
        self.refresh_keys_if_stale().await?;
        let auth = &self.policy.auth;
        let expect = Expectation {
            issuer: &auth.jwt_issuer,
            audience: &auth.jwt_audience,
            now: self.clock.now().timestamp(),
        };
        match jwt::verify(token, |kid| self.keys.public(kid), &expect) {
            Err(JwtError::UnknownKey) if self.keys.age().is_some_and(|a| a > MISS_RELOAD_GAP) => {
                // Another instance may have rotated: look once more.
                self.reload_keys().await?;
                jwt::verify(token, |kid| self.keys.public(kid), &expect)
                    .map_err(|_| AppError::Unauthenticated)
            }
            other => other.map_err(|_| AppError::Unauthenticated),
        }
    }
}
