//! The account-lifecycle rules of a user: verifying the address, resetting
//! the password, moving to a new address. Each request records a token (a
//! new one replaces the pending one of its kind); each confirmation spends it.
//! A wrong, used, replaced or expired token is one error: `InvalidToken`.

use super::{User, UserCommand, UserEvent};
use crate::domain::action::{Presented, TokenIssue};
use crate::domain::personal::Personal;
use crate::domain::values::Email;
use crate::domain::DomainError;

impl User {
    /// The address mails go to: unknown only for an erased person.
    fn current_email(&self) -> Result<&Email, DomainError> {
        self.email.as_ref().ok_or(DomainError::NotFound)
    }

    fn token_fields(issue: &TokenIssue) -> (Personal<crate::domain::action::TokenSecret>, String) {
        (issue.token.clone().into(), issue.token_hash.clone())
    }

    /// Whether a password-reset token would be accepted now: checked before
    /// the new password is hashed, so that a wrong token costs no argon2.
    pub fn accepts_reset(&self, presented: &Presented) -> bool {
        presented.is_accepted_by(self.reset.as_ref())
    }

    /// Decides the lifecycle commands (the user exists and is not erased).
    pub(super) fn decide_lifecycle(
        &self,
        command: &UserCommand,
    ) -> Result<Vec<UserEvent>, DomainError> {
        use UserCommand as C;
        use UserEvent as E;
        Ok(match command {
            C::RequestEmailVerification(issue) => {
                if self.email_verified {
                    return Err(DomainError::Conflict(
                        "the email address is verified already",
                    ));
                }
                let (token, token_hash) = Self::token_fields(issue);
                vec![E::EmailVerificationRequested {
                    email: self.current_email()?.clone().into(),
                    token,
                    token_hash,
                    expires_at: issue.expires_at,
                }]
            }
            C::ConfirmEmailVerification(presented) => {
                accepted(presented.is_accepted_by(self.verification.as_ref()))?;
                vec![E::EmailVerified {}]
            }
            C::RequestPasswordReset(issue) => {
                if self.disabled {
                    return Err(DomainError::Conflict("the user is disabled"));
                }
                let (token, token_hash) = Self::token_fields(issue);
                vec![E::PasswordResetRequested {
                    email: self.current_email()?.clone().into(),
                    token,
                    token_hash,
                    expires_at: issue.expires_at,
                }]
            }
            C::ConfirmPasswordReset {
                presented,
                password_hash,
            } => {
                accepted(presented.is_accepted_by(self.reset.as_ref()))?;
                vec![E::PasswordReset {
                    password_hash: password_hash.clone(),
                }]
            }
            C::RequestEmailChange { new_email, issue } => {
                let email = self.current_email()?;
                if email == new_email {
                    return Err(DomainError::invalid(
                        "new_email",
                        "is the account's address already",
                    ));
                }
                let (token, token_hash) = Self::token_fields(issue);
                vec![E::EmailChangeRequested {
                    email: email.clone().into(),
                    new_email: new_email.clone().into(),
                    token,
                    token_hash,
                    expires_at: issue.expires_at,
                }]
            }
            C::ConfirmEmailChange(presented) => {
                let pending = self.change.as_ref();
                accepted(presented.is_accepted_by(pending.map(|(p, _)| p)))?;
                let Some((_, new_email)) = pending else {
                    return Err(DomainError::InvalidToken);
                };
                vec![E::EmailChanged {
                    email: new_email.clone().into(),
                }]
            }
            C::Register { .. }
            | C::Rename { .. }
            | C::ChangePassword { .. }
            | C::Disable { .. }
            | C::Enable
            | C::RecordLoginFailure { .. }
            | C::Erase
            | C::StartTotpEnrollment { .. }
            | C::ConfirmTotp { .. }
            | C::DisableTotp { .. }
            | C::RegenerateBackupCodes { .. }
            | C::ChallengeMfa { .. }
            | C::PassMfa { .. }
            | C::PassMfaWithPasskey { .. }
            | C::RecordEnrollmentFailure { .. }
            | C::RegisterPasskey { .. }
            | C::RenamePasskey { .. }
            | C::RemovePasskey { .. }
            | C::SignInWithPasskey(_) => unreachable!("decided by the user aggregate itself"),
        })
    }

    /// Folds the lifecycle events into the state.
    pub(super) fn evolve_lifecycle(&mut self, event: &UserEvent) {
        use UserEvent as E;
        match event {
            E::EmailVerificationRequested {
                token_hash,
                expires_at,
                ..
            } => self.verification = Some(pending(token_hash, *expires_at)),
            E::EmailVerified {} => {
                self.email_verified = true;
                self.verification = None;
            }
            E::PasswordResetRequested {
                token_hash,
                expires_at,
                ..
            } => self.reset = Some(pending(token_hash, *expires_at)),
            // Any new password voids the reset and email change asked for
            // before it: whoever asked may have known the old password (a
            // victim's reset must not leave an attacker's change pending).
            E::PasswordReset { .. } | E::PasswordChanged { .. } => {
                self.reset = None;
                self.change = None;
                // A challenge answered the old password: it goes with it.
                self.challenges.clear();
            }
            E::EmailChangeRequested {
                new_email,
                token_hash,
                expires_at,
                ..
            } => {
                self.change = new_email
                    .known()
                    .map(|e| (pending(token_hash, *expires_at), e.clone()));
            }
            E::EmailChanged { email } => {
                // The token reached the new address: it is verified, and the
                // verification and reset mailed to the old one are void.
                self.email = email.known().cloned();
                self.email_verified = true;
                self.verification = None;
                self.reset = None;
                self.change = None;
            }
            E::Registered { .. }
            | E::Renamed { .. }
            | E::Disabled { .. }
            | E::Enabled {}
            | E::Erased {}
            | E::LoginFailed { .. }
            | E::TotpEnrollmentStarted { .. }
            | E::TotpEnabled { .. }
            | E::TotpDisabled { .. }
            | E::BackupCodesRegenerated { .. }
            | E::MfaChallenged { .. }
            | E::MfaPassed { .. }
            | E::MfaEnrollmentFailed { .. }
            | E::PasskeyRegistered { .. }
            | E::PasskeyRenamed { .. }
            | E::PasskeyRemoved { .. }
            | E::PasskeyUsed { .. } => {}
        }
    }
}

/// The one refusal of a token that does not work.
fn accepted(ok: bool) -> Result<(), DomainError> {
    if ok {
        Ok(())
    } else {
        Err(DomainError::InvalidToken)
    }
}

fn pending(
    token_hash: &str,
    expires_at: chrono::DateTime<chrono::Utc>,
) -> crate::domain::action::Pending {
    crate::domain::action::Pending {
        token_hash: token_hash.to_owned(),
        expires_at,
    }
}
