use crate::auth::password::HashError;
use crate::domain::DomainError;
use crate::store::{StoreError, UniqueConstraint};
use thiserror::Error;

/// Everything a command or query can answer besides success.
#[derive(Debug, Error)]
pub enum AppError {
    /// A business rule refused the command.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// No valid credential.
    #[error("unauthenticated")]
    Unauthenticated,
    /// Sign-in with a wrong email or password (or a disabled user).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Too many attempts; retry after this many seconds.
    #[error("rate limited")]
    RateLimited {
        /// Seconds until the window passes.
        retry_after: u64,
    },
    /// Authenticated, but not allowed.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// No such object, or not visible to the caller.
    #[error("not found")]
    NotFound,
    /// An action token (verification, reset, email change, invitation) is
    /// malformed, unknown, used, replaced or expired: one answer for all.
    #[error("invalid token")]
    InvalidToken,
    /// A passkey ceremony failed verification (origin, challenge, signature,
    /// counter, user verification, a credential not the user's).
    #[error("the passkey was refused")]
    InvalidPasskey,
    /// Sign-in waits until the user verified their email.
    #[error("email not verified")]
    EmailNotVerified,
    /// The email is registered already.
    #[error("email taken")]
    EmailTaken,
    /// The slug is in use already.
    #[error("slug taken")]
    SlugTaken,
    /// Concurrent writers kept winning; the client may retry.
    #[error("version conflict")]
    VersionConflict,
    /// Another request with the same Idempotency-Key committed first.
    #[error("idempotency key already used")]
    IdempotencyRace,
    /// The database cannot be reached.
    #[error("database unavailable")]
    Unavailable(#[source] StoreError),
    /// A bug or an unexpected failure.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::VersionConflict => Self::VersionConflict,
            StoreError::Unique(UniqueConstraint::Email) => Self::EmailTaken,
            StoreError::Unique(UniqueConstraint::Slug) => Self::SlugTaken,
            StoreError::Unique(UniqueConstraint::IdempotencyKey) => Self::IdempotencyRace,
            StoreError::Unique(UniqueConstraint::PasskeyCredential) => {
                Self::Domain(DomainError::Conflict("this passkey is registered already"))
            }
            StoreError::Unavailable(_) => Self::Unavailable(e),
            other => Self::Internal(Box::new(other)),
        }
    }
}

impl From<deadpool_postgres::PoolError> for AppError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::from(e).into()
    }
}

impl From<tokio_postgres::Error> for AppError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::from(e).into()
    }
}

impl From<HashError> for AppError {
    fn from(e: HashError) -> Self {
        Self::Internal(Box::new(e))
    }
}
