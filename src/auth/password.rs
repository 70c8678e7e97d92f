//! Passwords: the sign-up rule, and argon2id hashing on the blocking pool.

use crate::domain::DomainError;
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashSet;
use std::sync::LazyLock;

/// Passwords refused at sign-up, most common first (see `common_passwords.NOTICE`).
static COMMON: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| include_str!("common_passwords.txt").lines().collect());

/// A password that passed the sign-up rule. Its Debug output hides it.
#[derive(Debug, Clone)]
pub struct NewPassword(SecretString);

impl NewPassword {
    /// 8 to 128 characters, and not among the most common passwords.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, DomainError> {
        let len = raw.chars().count();
        if !(8..=128).contains(&len) {
            return Err(DomainError::invalid(field, "must be 8 to 128 characters"));
        }
        if COMMON.contains(raw.to_lowercase().as_str()) {
            return Err(DomainError::invalid(
                field,
                "is one of the most common passwords",
            ));
        }
        Ok(Self(SecretString::from(raw.to_owned())))
    }
}

/// At most one hash per core at a time: more only thrash the caches with
/// 19 MiB working sets and make every sign-in slower.
static HASHING: LazyLock<tokio::sync::Semaphore> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    tokio::sync::Semaphore::new(cores)
});

async fn on_blocking_pool<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, HashError> + Send + 'static,
) -> Result<T, HashError> {
    let _permit = HASHING
        .acquire()
        .await
        .map_err(|_| HashError::Hash("hashing closed".into()))?;
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        work()
    })
    .await?
}

/// argon2id with m = 19456 KiB, t = 2, p = 1.
fn argon2() -> Argon2<'static> {
    // The parameters are constants within argon2's bounds.
    let params = Params::new(19_456, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Why hashing failed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// argon2 refused.
    #[error("password hashing: {0}")]
    Hash(String),
    /// The blocking task died.
    #[error("password hashing task failed")]
    Join(#[from] tokio::task::JoinError),
}

/// Hashes on the blocking pool, never on an async worker; returns the PHC string.
pub async fn hash(password: NewPassword) -> Result<String, HashError> {
    on_blocking_pool(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(password.0.expose_secret().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| HashError::Hash(e.to_string()))
    })
    .await
}

/// Checks a password against a stored PHC string on the blocking pool.
pub async fn verify(password: SecretString, phc: String) -> Result<bool, HashError> {
    on_blocking_pool(move || {
        let parsed = PasswordHash::new(&phc).map_err(|e| HashError::Hash(e.to_string()))?;
        Ok(argon2()
            .verify_password(password.expose_secret().as_bytes(), &parsed)
            .is_ok())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_bounds() {
        assert!(NewPassword::parse("password", "short1!").is_err());
        assert!(NewPassword::parse("password", &"x".repeat(129)).is_err());
        assert!(NewPassword::parse("password", "correct horse battery staple").is_ok());
    }

    #[test]
    fn common_passwords_are_refused_in_any_case() {
        assert!(COMMON.len() >= 3000, "list has {} entries", COMMON.len());
        assert!(NewPassword::parse("password", "password").is_err());
        assert!(NewPassword::parse("password", "PassWord").is_err());
        assert!(NewPassword::parse("password", "12345678").is_err());
    }

    #[tokio::test]
    async fn hash_then_verify() {
        let phc = hash(NewPassword::parse("p", "tr0ub4dor&3-x").unwrap())
            .await
            .unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify(SecretString::from("tr0ub4dor&3-x"), phc.clone())
            .await
            .unwrap());
        assert!(!verify(SecretString::from("tr0ub4dor&3-y"), phc)
            .await
            .unwrap());
    }
}
