//! The user aggregate: registration, profile, password and access state.

mod lifecycle;
mod mfa;
mod passkeys;

pub use mfa::{EnrollmentMethod, SecondFactor, SecondFactorMethod};
pub use passkeys::{PasskeyAssertion, PasskeyCredential, PasskeyName, MAX_PASSKEYS};

use super::action::{Pending, Presented, TokenIssue, TokenSecret, TotpSecret};
use super::personal::Personal;
use super::values::{Email, UserName};
use super::{Aggregate, DomainError, DomainEvent, StreamType};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Events of a user stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum UserEvent {
    /// A user signed up (or was created by an admin).
    #[serde(rename = "user.registered")]
    Registered {
        /// Normalised email; personal data.
        email: Personal<Email>,
        /// Display name; personal data.
        name: Option<Personal<UserName>>,
        /// argon2id PHC string; redacted whenever the event leaves the database.
        password_hash: String,
    },
    /// The display name changed.
    #[serde(rename = "user.renamed")]
    Renamed {
        /// The new name; personal data.
        name: Personal<UserName>,
    },
    /// The password changed.
    #[serde(rename = "user.password_changed")]
    PasswordChanged {
        /// argon2id PHC string; redacted whenever the event leaves the database.
        password_hash: String,
    },
    /// The user may no longer sign in.
    #[serde(rename = "user.disabled")]
    Disabled {
        /// Why, for the audit trail.
        reason: Option<String>,
    },
    /// The user may sign in again.
    #[serde(rename = "user.enabled")]
    Enabled {},
    /// The person was forgotten: their personal fields can never be read
    /// again, and the user can do nothing more.
    #[serde(rename = "user.erased")]
    Erased {},
    /// The user asked for a mail to prove their address is theirs.
    #[serde(rename = "user.email_verification_requested")]
    EmailVerificationRequested {
        /// Where the mail goes; personal data.
        email: Personal<Email>,
        /// The token, for the mailer; sealed, and redacted wherever shown.
        token: Personal<TokenSecret>,
        /// Hex SHA-256 of the token; redacted wherever shown.
        token_hash: String,
        /// When the token stops working.
        expires_at: DateTime<Utc>,
    },
    /// The user proved their address with the token.
    #[serde(rename = "user.email_verified")]
    EmailVerified {},
    /// Someone asked for a password reset of this account by its email.
    #[serde(rename = "user.password_reset_requested")]
    PasswordResetRequested {
        /// Where the mail goes; personal data.
        email: Personal<Email>,
        /// The token, for the mailer; sealed, and redacted wherever shown.
        token: Personal<TokenSecret>,
        /// Hex SHA-256 of the token; redacted wherever shown.
        token_hash: String,
        /// When the token stops working.
        expires_at: DateTime<Utc>,
    },
    /// The password was set anew with a reset token.
    #[serde(rename = "user.password_reset")]
    PasswordReset {
        /// argon2id PHC string; redacted whenever the event leaves the database.
        password_hash: String,
    },
    /// The user asked to move the account to a new address.
    #[serde(rename = "user.email_change_requested")]
    EmailChangeRequested {
        /// The address now, which gets a notice; personal data.
        email: Personal<Email>,
        /// The address asked for, which gets the token; personal data.
        new_email: Personal<Email>,
        /// The token, for the mailer; sealed, and redacted wherever shown.
        token: Personal<TokenSecret>,
        /// Hex SHA-256 of the token; redacted wherever shown.
        token_hash: String,
        /// When the token stops working.
        expires_at: DateTime<Utc>,
    },
    /// The account moved to the new address, proven by its token.
    #[serde(rename = "user.email_changed")]
    EmailChanged {
        /// The new address; personal data.
        email: Personal<Email>,
    },
    /// The user began enrolling an authenticator app (done once a code of it
    /// is confirmed).
    #[serde(rename = "user.totp_enrollment_started")]
    TotpEnrollmentStarted {
        /// The TOTP secret: sealed like a personal field, redacted wherever shown.
        secret: Personal<TotpSecret>,
    },
    /// A code of the app was confirmed: sign-in asks for a second factor.
    #[serde(rename = "user.totp_enabled")]
    TotpEnabled {
        /// The step of the confirming code (no code of it or before works again).
        step: u64,
        /// SHA-256 of the ten backup codes; redacted wherever shown.
        backup_code_hashes: Vec<String>,
    },
    /// Ten new backup codes replaced the old ones (used or not).
    #[serde(rename = "user.backup_codes_regenerated")]
    BackupCodesRegenerated {
        /// The step of the TOTP code that proved it (spent).
        step: u64,
        /// SHA-256 of the new codes; redacted wherever shown.
        backup_code_hashes: Vec<String>,
    },
    /// TOTP and the backup codes were removed.
    #[serde(rename = "user.totp_disabled")]
    TotpDisabled {
        /// Whether a `vouch:admin` reset them (the actor is in the metadata).
        by_admin: bool,
    },
    /// A sign-in with the right password waits for a second factor.
    #[serde(rename = "user.mfa_challenged")]
    MfaChallenged {
        /// The challenge.
        challenge_id: Uuid,
        /// Hex SHA-256 of the challenge token; redacted wherever shown.
        token_hash: String,
        /// When the challenge stops working.
        expires_at: DateTime<Utc>,
    },
    /// A challenge was answered with a second factor.
    #[serde(rename = "user.mfa_passed")]
    MfaPassed {
        /// The challenge.
        challenge_id: Uuid,
        /// `totp` or `backup_code`.
        method: SecondFactorMethod,
        /// The TOTP step used, if TOTP.
        step: Option<u64>,
        /// Which backup code was used, if one.
        backup_code: Option<usize>,
        /// The passkey used, if one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        passkey_id: Option<Uuid>,
    },
    /// A second factor's enrolment failed (a wrong confirming code, a
    /// registration the ceremony refused).
    #[serde(rename = "user.mfa_enrollment_failed")]
    MfaEnrollmentFailed {
        /// `totp` or `passkey`.
        method: EnrollmentMethod,
        /// Why.
        reason: String,
    },
    /// A passkey was registered, after a verified ceremony.
    #[serde(rename = "user.passkey_registered")]
    PasskeyRegistered {
        /// The passkey.
        passkey_id: Uuid,
        /// What the user calls it; personal data.
        name: Personal<PasskeyName>,
        /// The WebAuthn credential id, base64url (unique among all users).
        credential_id: String,
        /// The credential (public key, counter); sealed like a personal
        /// field, redacted wherever shown.
        credential: Personal<PasskeyCredential>,
        /// Whether the authenticator may sync it to other devices (`swk`
        /// rather than `hwk`).
        backup_eligible: bool,
    },
    /// A passkey was renamed.
    #[serde(rename = "user.passkey_renamed")]
    PasskeyRenamed {
        /// The passkey.
        passkey_id: Uuid,
        /// The new name; personal data.
        name: Personal<PasskeyName>,
    },
    /// A passkey was removed.
    #[serde(rename = "user.passkey_removed")]
    PasskeyRemoved {
        /// The passkey.
        passkey_id: Uuid,
        /// Whether a `vouch:admin` removed it (the actor is in the metadata).
        by_admin: bool,
    },
    /// A passkey's assertion was verified (a sign-in or a second factor).
    #[serde(rename = "user.passkey_used")]
    PasskeyUsed {
        /// The passkey.
        passkey_id: Uuid,
        /// The credential as the assertion left it; sealed like a personal
        /// field, redacted wherever shown.
        credential: Personal<PasskeyCredential>,
        /// The authenticator's signature counter (0: it keeps none).
        counter: u32,
    },
    /// A sign-in with a wrong password (recorded behind throttling only).
    #[serde(rename = "user.login_failed")]
    LoginFailed {
        /// Why the attempt failed.
        reason: String,
    },
}

impl DomainEvent for UserEvent {}

/// Commands on a user.
#[derive(Debug, Clone)]
pub enum UserCommand {
    /// Create the user.
    Register {
        /// Normalised email.
        email: Email,
        /// Optional display name.
        name: Option<UserName>,
        /// argon2id hash of the new password, computed before the command.
        password_hash: String,
    },
    /// Change the display name.
    Rename {
        /// The new name.
        name: UserName,
    },
    /// Replace the password hash.
    ChangePassword {
        /// argon2id hash of the new password.
        password_hash: String,
    },
    /// Stop the user from signing in.
    Disable {
        /// Why, for the audit trail.
        reason: Option<String>,
    },
    /// Allow the user to sign in again.
    Enable,
    /// Record a failed sign-in.
    RecordLoginFailure {
        /// Why it failed.
        reason: String,
    },
    /// Forget the person.
    Erase,
    /// Record a verification mail's token.
    RequestEmailVerification(TokenIssue),
    /// Mark the address verified with a verification token.
    ConfirmEmailVerification(Presented),
    /// Record a password-reset mail's token.
    RequestPasswordReset(TokenIssue),
    /// Set a new password with a reset token.
    ConfirmPasswordReset {
        /// The token presented.
        presented: Presented,
        /// argon2id hash of the new password.
        password_hash: String,
    },
    /// Record an email change and its token for the new address.
    RequestEmailChange {
        /// The address asked for.
        new_email: Email,
        /// The token for it.
        issue: TokenIssue,
    },
    /// Move to the new address with an email-change token.
    ConfirmEmailChange(Presented),
    /// Begin enrolling an authenticator app with a fresh secret.
    StartTotpEnrollment {
        /// The secret.
        secret: TotpSecret,
    },
    /// Finish the enrolment with a code of the app.
    ConfirmTotp {
        /// The step the code matched (`None`: a wrong code).
        step: Option<u64>,
        /// Hashes of fresh backup codes.
        backup_code_hashes: Vec<String>,
    },
    /// Replace the backup codes, proven with a TOTP code.
    RegenerateBackupCodes {
        /// The proof (a TOTP code).
        proof: SecondFactor,
        /// Hashes of the new codes.
        backup_code_hashes: Vec<String>,
    },
    /// Remove TOTP, proven with a second factor (or by an admin).
    DisableTotp {
        /// The proof, or `None` for a `vouch:admin` reset.
        proof: Option<SecondFactor>,
    },
    /// Ask a signed-in-with-password user for a second factor.
    ChallengeMfa {
        /// The challenge.
        challenge_id: Uuid,
        /// Hex SHA-256 of the challenge token.
        token_hash: String,
        /// When it stops working.
        expires_at: DateTime<Utc>,
    },
    /// Answer a challenge.
    PassMfa {
        /// The challenge token presented.
        challenge: Presented,
        /// The second factor.
        proof: SecondFactor,
    },
    /// Answer a challenge with a verified passkey assertion.
    PassMfaWithPasskey {
        /// The challenge token presented.
        challenge: Presented,
        /// The assertion.
        assertion: PasskeyAssertion,
    },
    /// Record a failed enrolment of a second factor.
    RecordEnrollmentFailure {
        /// Which factor.
        method: EnrollmentMethod,
        /// Why.
        reason: String,
    },
    /// Add a passkey whose registration ceremony was verified.
    RegisterPasskey {
        /// The new passkey's id.
        passkey_id: Uuid,
        /// Its name.
        name: PasskeyName,
        /// The WebAuthn credential id, base64url.
        credential_id: String,
        /// The credential.
        credential: PasskeyCredential,
        /// Whether it may be synced.
        backup_eligible: bool,
    },
    /// Rename a passkey.
    RenamePasskey {
        /// The passkey.
        passkey_id: Uuid,
        /// The new name.
        name: PasskeyName,
    },
    /// Remove a passkey.
    RemovePasskey {
        /// The passkey.
        passkey_id: Uuid,
        /// Whether a `vouch:admin` removes it.
        by_admin: bool,
    },
    /// Record a sign-in with a verified passkey assertion alone.
    SignInWithPasskey(PasskeyAssertion),
}

/// The state of one user, as far as its rules need it.
#[derive(Debug, Clone, Default)]
pub struct User {
    exists: bool,
    erased: bool,
    name: Option<UserName>,
    email: Option<Email>,
    email_verified: bool,
    disabled: bool,
    verification: Option<Pending>,
    reset: Option<Pending>,
    change: Option<(Pending, Email)>,
    totp: Option<mfa::Totp>,
    challenges: Vec<(Uuid, Pending)>,
    passkeys: Vec<passkeys::StoredPasskey>,
}

impl User {
    /// Whether the user may sign in.
    pub fn is_disabled(&self) -> bool {
        self.disabled
    }

    /// Whether the user proved their current address.
    pub fn is_email_verified(&self) -> bool {
        self.email_verified
    }

    /// Whether the person was erased.
    pub fn is_erased(&self) -> bool {
        self.erased
    }

    /// An erased user is gone for every command, as if never registered.
    fn require_exists(&self) -> Result<(), DomainError> {
        if self.exists && !self.erased {
            Ok(())
        } else {
            Err(DomainError::NotFound)
        }
    }
}

impl Aggregate for User {
    const STREAM_TYPE: StreamType = StreamType::User;
    type Event = UserEvent;
    type Command = UserCommand;

    fn decide(&self, command: &UserCommand) -> Result<Vec<UserEvent>, DomainError> {
        use UserCommand as C;
        use UserEvent as E;
        if let C::Register {
            email,
            name,
            password_hash,
        } = command
        {
            if self.exists {
                return Err(DomainError::AlreadyExists);
            }
            return Ok(vec![E::Registered {
                email: email.clone().into(),
                name: name.clone().map(Personal::from),
                password_hash: password_hash.clone(),
            }]);
        }
        self.require_exists()?;
        Ok(match command {
            C::Register { .. } => unreachable!("handled above"),
            C::Rename { name } if self.name.as_ref() == Some(name) => vec![],
            C::Rename { name } => vec![E::Renamed {
                name: name.clone().into(),
            }],
            C::ChangePassword { password_hash } => vec![E::PasswordChanged {
                password_hash: password_hash.clone(),
            }],
            C::Disable { .. } if self.disabled => vec![],
            C::Disable { reason } => vec![E::Disabled {
                reason: reason.clone(),
            }],
            C::Enable if !self.disabled => vec![],
            C::Enable => vec![E::Enabled {}],
            C::RecordLoginFailure { reason } => vec![E::LoginFailed {
                reason: reason.clone(),
            }],
            C::Erase => vec![E::Erased {}],
            C::StartTotpEnrollment { .. }
            | C::ConfirmTotp { .. }
            | C::DisableTotp { .. }
            | C::RegenerateBackupCodes { .. }
            | C::ChallengeMfa { .. }
            | C::PassMfa { .. } => self.decide_mfa(command)?,
            C::PassMfaWithPasskey { .. }
            | C::RecordEnrollmentFailure { .. }
            | C::RegisterPasskey { .. }
            | C::RenamePasskey { .. }
            | C::RemovePasskey { .. }
            | C::SignInWithPasskey(_) => self.decide_passkeys(command)?,
            lifecycle => self.decide_lifecycle(lifecycle)?,
        })
    }

    fn evolve(mut self, event: &UserEvent) -> Self {
        match event {
            UserEvent::Registered { name, email, .. } => {
                self.exists = true;
                self.name = name.as_ref().and_then(Personal::known).cloned();
                self.email = email.known().cloned();
            }
            UserEvent::Renamed { name } => self.name = name.known().cloned(),
            UserEvent::Erased {} => {
                self = Self {
                    exists: true,
                    erased: true,
                    ..Self::default()
                };
            }
            UserEvent::Disabled { .. } => {
                self.disabled = true;
                self.challenges.clear();
            }
            UserEvent::Enabled {} => self.disabled = false,
            UserEvent::LoginFailed { .. } => {}
            UserEvent::TotpEnrollmentStarted { .. }
            | UserEvent::TotpEnabled { .. }
            | UserEvent::TotpDisabled { .. }
            | UserEvent::BackupCodesRegenerated { .. }
            | UserEvent::MfaChallenged { .. }
            | UserEvent::MfaPassed { .. } => self.evolve_mfa(event),
            UserEvent::PasskeyRegistered { .. }
            | UserEvent::PasskeyRenamed { .. }
            | UserEvent::PasskeyRemoved { .. }
            | UserEvent::PasskeyUsed { .. } => self.evolve_passkeys(event),
            UserEvent::MfaEnrollmentFailed { .. } => {}
            lifecycle => self.evolve_lifecycle(lifecycle),
        }
        self
    }
}

#[cfg(test)]
mod passkey_tests;
#[cfg(test)]
mod tests;
