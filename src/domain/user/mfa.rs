//! The second factor of a user: an authenticator app (TOTP) with ten backup
//! codes. Enrolment completes only with a valid code; each TOTP step and each
//! backup code is accepted once; a sign-in with the right password of an
//! enrolled user is a challenge, answered once, within its five minutes.

use super::{User, UserCommand, UserEvent};
use crate::domain::action::{Pending, TotpSecret};
use crate::domain::personal::Personal;
use crate::domain::DomainError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Challenges kept pending at once (older ones are dropped).
const MAX_CHALLENGES: usize = 5;

/// The kind of second factor a challenge was answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecondFactorMethod {
    /// A code of the authenticator app.
    Totp,
    /// One of the backup codes.
    BackupCode,
    /// A passkey's assertion.
    Passkey,
}

/// A second factor being enrolled, for failed enrolments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnrollmentMethod {
    /// An authenticator app (a wrong confirming code).
    Totp,
    /// A passkey (a registration the ceremony refused).
    Passkey,
}

/// A second factor as checked outside the domain (the secret's HMAC, the
/// backup codes' hashes): what it matched, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondFactor {
    /// A TOTP code and the step it matched (`None`: wrong).
    Totp(Option<u64>),
    /// A backup code and the index of the stored hash it matched (`None`: wrong).
    BackupCode(Option<usize>),
}

/// TOTP as far as the rules need it.
#[derive(Debug, Clone)]
pub(super) struct Totp {
    secret: Option<TotpSecret>,
    enabled: bool,
    last_step: Option<u64>,
    backup_codes: Vec<(String, bool)>,
}

impl Totp {
    /// Whether the enrolment was confirmed.
    pub(super) fn enabled(&self) -> bool {
        self.enabled
    }
}

impl User {
    /// The TOTP secret, while enrolling or enrolled (for checking codes).
    pub fn totp_secret(&self) -> Option<&TotpSecret> {
        self.totp.as_ref().and_then(|t| t.secret.as_ref())
    }

    /// Whether a challenge token is pending for this user and still works.
    pub fn accepts_challenge(&self, challenge: &crate::domain::action::Presented) -> bool {
        self.challenges
            .iter()
            .any(|(_, pending)| challenge.is_accepted_by(Some(pending)))
    }

    /// Whether sign-in with the password asks for a second factor (an app
    /// or a passkey).
    pub fn has_mfa(&self) -> bool {
        self.has_totp() || self.has_passkeys()
    }

    /// The pending challenge a presented token is, if any.
    pub(super) fn pending_challenge(
        &self,
        challenge: &crate::domain::action::Presented,
    ) -> Result<Uuid, DomainError> {
        self.challenges
            .iter()
            .find(|(_, pending)| challenge.is_accepted_by(Some(pending)))
            .map(|(id, _)| *id)
            .ok_or(DomainError::InvalidToken)
    }

    /// The hashes of the backup codes, used or not, in their order.
    pub fn backup_code_hashes(&self) -> Vec<&str> {
        self.totp
            .as_ref()
            .map(|t| t.backup_codes.iter().map(|(h, _)| h.as_str()).collect())
            .unwrap_or_default()
    }

    /// Checks a proven second factor against what was used before.
    fn check_factor(&self, proof: SecondFactor) -> Result<(), DomainError> {
        let Some(totp) = self.totp.as_ref().filter(|t| t.enabled) else {
            return Err(DomainError::InvalidCode);
        };
        match proof {
            SecondFactor::Totp(Some(step)) if totp.last_step.is_none_or(|last| step > last) => {
                Ok(())
            }
            SecondFactor::BackupCode(Some(i))
                if totp.backup_codes.get(i).is_some_and(|(_, used)| !used) =>
            {
                Ok(())
            }
            _ => Err(DomainError::InvalidCode),
        }
    }

    /// Decides the second-factor commands (the user exists and is not erased).
    pub(super) fn decide_mfa(&self, command: &UserCommand) -> Result<Vec<UserEvent>, DomainError> {
        use UserCommand as C;
        use UserEvent as E;
        Ok(match command {
            C::StartTotpEnrollment { secret } => {
                if self.has_totp() {
                    return Err(DomainError::Conflict("TOTP is enabled already"));
                }
                vec![E::TotpEnrollmentStarted {
                    secret: Personal::Known(secret.clone()),
                }]
            }
            C::ConfirmTotp {
                step,
                backup_code_hashes,
            } => {
                let Some(totp) = &self.totp else {
                    return Err(DomainError::Conflict("no TOTP enrolment is under way"));
                };
                if totp.enabled {
                    return Err(DomainError::Conflict("TOTP is enabled already"));
                }
                let Some(step) = step else {
                    return Err(DomainError::InvalidCode);
                };
                vec![E::TotpEnabled {
                    step: *step,
                    backup_code_hashes: backup_code_hashes.clone(),
                }]
            }
            C::DisableTotp { proof } => {
                if self.totp.is_none() {
                    return Ok(vec![]);
                }
                // An enrolment not yet confirmed has no factor to prove: the
                // password (checked outside) is enough to cancel it.
                if let Some(proof) = proof.filter(|_| self.has_totp()) {
                    self.check_factor(proof)?;
                }
                vec![E::TotpDisabled {
                    by_admin: proof.is_none(),
                }]
            }
            C::RegenerateBackupCodes {
                proof,
                backup_code_hashes,
            } => {
                // Proven with the app (the codes it replaces may be lost),
                // whose step is spent like any other.
                let SecondFactor::Totp(Some(step)) = proof else {
                    return Err(DomainError::InvalidCode);
                };
                self.check_factor(*proof)?;
                vec![E::BackupCodesRegenerated {
                    step: *step,
                    backup_code_hashes: backup_code_hashes.clone(),
                }]
            }
            C::ChallengeMfa {
                challenge_id,
                token_hash,
                expires_at,
            } => {
                if !self.has_mfa() {
                    return Err(DomainError::Conflict("the user has no second factor"));
                }
                vec![E::MfaChallenged {
                    challenge_id: *challenge_id,
                    token_hash: token_hash.clone(),
                    expires_at: *expires_at,
                }]
            }
            C::PassMfa { challenge, proof } => {
                let challenge_id = self.pending_challenge(challenge)?;
                self.check_factor(*proof)?;
                let (method, step, backup_code) = match proof {
                    SecondFactor::Totp(step) => (SecondFactorMethod::Totp, *step, None),
                    SecondFactor::BackupCode(i) => (SecondFactorMethod::BackupCode, None, *i),
                };
                vec![E::MfaPassed {
                    challenge_id,
                    method,
                    step,
                    backup_code,
                    passkey_id: None,
                }]
            }
            _ => unreachable!("decided by the user aggregate itself"),
        })
    }

    /// Folds the second-factor events into the state.
    pub(super) fn evolve_mfa(&mut self, event: &UserEvent) {
        match event {
            UserEvent::TotpEnrollmentStarted { secret } => {
                self.totp = Some(Totp {
                    secret: secret.known().cloned(),
                    enabled: false,
                    last_step: None,
                    backup_codes: Vec::new(),
                });
            }
            UserEvent::TotpEnabled {
                step,
                backup_code_hashes,
            } => {
                if let Some(totp) = &mut self.totp {
                    totp.enabled = true;
                    totp.last_step = Some(*step);
                    totp.backup_codes = backup_code_hashes
                        .iter()
                        .map(|h| (h.clone(), false))
                        .collect();
                }
            }
            UserEvent::BackupCodesRegenerated {
                step,
                backup_code_hashes,
            } => {
                if let Some(totp) = &mut self.totp {
                    totp.last_step = Some(totp.last_step.map_or(*step, |l| l.max(*step)));
                    totp.backup_codes = backup_code_hashes
                        .iter()
                        .map(|h| (h.clone(), false))
                        .collect();
                }
            }
            UserEvent::TotpDisabled { .. } => {
                self.totp = None;
                if !self.has_mfa() {
                    self.challenges.clear();
                }
            }
            UserEvent::MfaChallenged {
                challenge_id,
                token_hash,
                expires_at,
            } => {
                self.challenges.push((
                    *challenge_id,
                    Pending {
                        token_hash: token_hash.clone(),
                        expires_at: *expires_at,
                    },
                ));
                if self.challenges.len() > MAX_CHALLENGES {
                    self.challenges.remove(0);
                }
            }
            UserEvent::MfaPassed {
                challenge_id,
                step,
                backup_code,
                ..
            } => {
                self.challenges.retain(|(id, _)| id != challenge_id);
                if let Some(totp) = &mut self.totp {
                    if let Some(step) = step {
                        totp.last_step = Some(totp.last_step.map_or(*step, |l| l.max(*step)));
                    }
                    if let Some(used) = backup_code.and_then(|i| totp.backup_codes.get_mut(i)) {
                        used.1 = true;
                    }
                }
            }
            _ => {}
        }
    }
}
