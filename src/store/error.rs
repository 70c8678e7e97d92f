use thiserror::Error;
use tokio_postgres::error::SqlState;

/// A read-model uniqueness rule that an append ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueConstraint {
    /// `users.email`.
    Email,
    /// `orgs.slug`.
    Slug,
    /// `api_keys.key_hash` (a 256-bit collision: practically never).
    KeyHash,
    /// `idempotency_records (scope, key)`: the same request committed first.
    IdempotencyKey,
    /// `passkeys.credential_id`: the passkey is registered (to another user).
    PasskeyCredential,
}

/// What can go wrong talking to Postgres.
#[derive(Debug, Error)]
pub enum StoreError {
    /// Another writer appended to the stream first.
    #[error("version conflict on append")]
    VersionConflict,
    /// A read-model unique index refused the change.
    #[error("unique constraint {0:?}")]
    Unique(UniqueConstraint),
    /// The database cannot be reached.
    #[error("database unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored row could not be decoded.
    #[error("stored data: {0}")]
    Decode(String),
    /// Bad configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// Any other database error: a bug.
    #[error("database")]
    Db(#[source] tokio_postgres::Error),
    /// A migration failed.
    #[error("migration")]
    Migration(#[source] refinery::Error),
}

impl StoreError {
    /// A statement refused only because an earlier one in its transaction
    /// failed: the earlier error is the one that explains what happened.
    pub fn is_after_abort(&self) -> bool {
        matches!(self, Self::Db(e) if e.code() == Some(&SqlState::IN_FAILED_SQL_TRANSACTION))
    }

    /// Of the errors of pipelined statements, in the order they were sent, the
    /// one that explains the failure: the first that is not an aftermath.
    pub fn first_cause(errors: impl IntoIterator<Item = Self>) -> Option<Self> {
        let mut aftermath = None;
        for e in errors {
            if !e.is_after_abort() {
                return Some(e);
            }
            aftermath.get_or_insert(e);
        }
        aftermath
    }
}

fn is_unavailable(code: &SqlState) -> bool {
    code.code().starts_with("08")
        || [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::TOO_MANY_CONNECTIONS,
            SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT,
        ]
        .contains(code)
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        let Some(db) = e.as_db_error() else {
            // No server answer: the connection broke or never opened.
            return Self::Unavailable(Box::new(e));
        };
        if *db.code() == SqlState::UNIQUE_VIOLATION {
            return match db.constraint() {
                Some("auth_events_stream_version_key") => Self::VersionConflict,
                Some("users_email_key") => Self::Unique(UniqueConstraint::Email),
                Some("orgs_slug_key") => Self::Unique(UniqueConstraint::Slug),
                Some("api_keys_key_hash_key") => Self::Unique(UniqueConstraint::KeyHash),
                Some("idempotency_records_pkey") => Self::Unique(UniqueConstraint::IdempotencyKey),
                Some("passkeys_credential_id_key") => {
                    Self::Unique(UniqueConstraint::PasskeyCredential)
                }
                _ => Self::Db(e),
            };
        }
        if is_unavailable(db.code()) {
            return Self::Unavailable(Box::new(e));
        }
        Self::Db(e)
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => Self::Unavailable(Box::new(other)),
        }
    }
}
