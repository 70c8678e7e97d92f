//! Passwords: the sign-up rule, and argon2id hashing on the blocking pool.

use crate::domain::DomainError;
use argon2::password_hash::{rand_core::OsRng, Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashSet;
use std::sync::{LazyLock, Mutex, OnceLock};
use subtle::ConstantTimeEq;

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
static HASHING: LazyLock<tokio::sync::Semaphore> =
    LazyLock::new(|| tokio::sync::Semaphore::new(*HASHING_SLOTS.get_or_init(cores)));
static HASHING_SLOTS: OnceLock<usize> = OnceLock::new();

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

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

/// argon2id memory in KiB (OWASP's first recommended setting).
pub const MEMORY_KIB: u32 = 19_456;
/// argon2id passes.
pub const ITERATIONS: u32 = 2;
/// argon2id lanes.
pub const PARALLELISM: u32 = 1;

/// argon2id with vouch's parameters: every hash and verification uses this.
pub fn argon2() -> Argon2<'static> {
    // The parameters are constants within argon2's bounds.
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A hash of a password nobody has, verified when an email is unknown so that
/// the answer takes as long as for a known one.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
        argon2()
            .hash_password(b"vouch dummy password", &SaltString::generate(&mut OsRng))
            .map(|h| h.to_string())
            .unwrap_or_default()
    });
    &DUMMY
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

/// Reusable argon2 working memory, one buffer per concurrent hash. Taking 19 MiB
/// from the allocator for every sign-in made the process grow by about that much
/// per hash (the allocator kept the freed chunks resident); reusing the buffers
/// keeps argon2's share of the RSS at one buffer per core. Every hash overwrites
/// all of a buffer's blocks before reading them.
static MEMORY: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());

fn compute(
    argon: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), HashError> {
    let blocks = argon.params().block_count();
    let mut memory = MEMORY
        .lock()
        .ok()
        .and_then(|mut pool| pool.pop())
        .filter(|m| m.len() == blocks)
        .unwrap_or_else(|| vec![Block::default(); blocks]);
    let outcome = argon
        .hash_password_into_with_memory(password, salt, out, &mut memory)
        .map_err(|e| HashError::Hash(e.to_string()));
    if let Ok(mut pool) = MEMORY.lock() {
        if pool.len() < *HASHING_SLOTS.get_or_init(cores) {
            pool.push(memory);
        }
    }
    outcome
}

fn hash_error(e: impl std::fmt::Display) -> HashError {
    HashError::Hash(e.to_string())
}

/// Hashes on the blocking pool, never on an async worker; returns the PHC string.
pub async fn hash(password: NewPassword) -> Result<String, HashError> {
    on_blocking_pool(move || {
        let salt = SaltString::generate(&mut OsRng);
        let mut raw_salt = [0u8; 64];
        let salt_bytes = salt
            .as_salt()
            .decode_b64(&mut raw_salt)
            .map_err(hash_error)?;
        let argon = argon2();
        let mut out = [0u8; 32];
        compute(
            &argon,
            password.0.expose_secret().as_bytes(),
            salt_bytes,
            &mut out,
        )?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(argon.params()).map_err(hash_error)?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).map_err(hash_error)?),
        };
        Ok(phc.to_string())
    })
    .await
}

/// Checks a password against a stored PHC string on the blocking pool, with the
/// parameters the string names; compares in constant time.
pub async fn verify(password: SecretString, phc: String) -> Result<bool, HashError> {
    on_blocking_pool(move || {
        let parsed = PasswordHash::new(&phc).map_err(hash_error)?;
        let algorithm = Algorithm::try_from(parsed.algorithm).map_err(hash_error)?;
        let version = match parsed.version {
            Some(v) => Version::try_from(v).map_err(hash_error)?,
            None => Version::default(),
        };
        let params = Params::try_from(&parsed).map_err(hash_error)?;
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return Err(HashError::Hash("stored hash without salt or output".into()));
        };
        let mut raw_salt = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut raw_salt).map_err(hash_error)?;
        let mut out = vec![0u8; expected.len()];
        let argon = Argon2::new(algorithm, version, params);
        compute(
            &argon,
            password.expose_secret().as_bytes(),
            salt_bytes,
            &mut out,
        )?;
        Ok(bool::from(out.as_slice().ct_eq(expected.as_bytes())))
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

    #[tokio::test]
    async fn interoperates_with_the_standard_phc_path() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let ours = hash(NewPassword::parse("p", "tr0ub4dor&3-x").unwrap())
            .await
            .unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(argon2().verify_password(b"tr0ub4dor&3-x", &parsed).is_ok());
        // A stored hash with other parameters (a weaker, older setting) still verifies.
        let params = Params::new(8192, 1, 1, None).unwrap();
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"older secret", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        assert!(verify(SecretString::from("older secret"), theirs.clone())
            .await
            .unwrap());
        assert!(!verify(SecretString::from("older secreT"), theirs)
            .await
            .unwrap());
    }
}
