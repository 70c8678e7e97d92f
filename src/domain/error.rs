use thiserror::Error;

/// A business rule that a command broke.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    /// A value failed its parse rule.
    #[error("{field}: {message}")]
    Validation {
        /// The input field at fault.
        field: &'static str,
        /// What is wrong with it, for humans.
        message: String,
    },
    /// The aggregate does not exist (or the member is not in the org).
    #[error("not found")]
    NotFound,
    /// The aggregate already exists (a create on an existing stream).
    #[error("already exists")]
    AlreadyExists,
    /// The user is already a member of the org.
    #[error("the user is already a member of this organisation")]
    AlreadyMember,
    /// The change would leave the org without an owner.
    #[error("an organisation must keep at least one owner")]
    LastOwner,
    /// The actor's authority is not enough for this change.
    #[error("{0}")]
    Forbidden(&'static str),
    /// A presented token (refresh token) is not valid for this session.
    #[error("invalid or expired token")]
    InvalidToken,
    /// A second-factor code is wrong, or was used already.
    #[error("invalid code")]
    InvalidCode,
    /// The user has not proven their email address yet.
    #[error("the email address is not verified")]
    EmailNotVerified,
    /// The state forbids the change (e.g. rotating a revoked key).
    #[error("{0}")]
    Conflict(&'static str),
}

impl DomainError {
    /// A validation error for `field`.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Validation {
            field,
            message: message.into(),
        }
    }
}
