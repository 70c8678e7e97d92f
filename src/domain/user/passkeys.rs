//! The passkeys (WebAuthn credentials) of a user: registered after a
//! verified ceremony (outside the domain), named, renamed, removed; each use
//! stores the credential as the assertion left it (its signature counter).
//! A user with a passkey answers a password sign-in's challenge with it; a
//! passkey alone also signs in (it verified its user).

use super::{User, UserCommand, UserEvent};
use crate::domain::personal::Personal;
use crate::domain::DomainError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Passkeys one user may hold.
pub const MAX_PASSKEYS: usize = 10;

/// The longest name of a passkey, in characters.
const MAX_NAME_CHARS: usize = 100;

/// A passkey's stored credential (public key, algorithm, signature counter,
/// flags) as the WebAuthn library serialises it: opaque to the domain,
/// sealed in the log like a personal field, redacted wherever an event is
/// shown. Its Debug output hides it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PasskeyCredential(serde_json::Value);

impl PasskeyCredential {
    /// Wraps a serialised credential.
    pub fn new(value: serde_json::Value) -> Self {
        Self(value)
    }

    /// The serialised credential, for the ceremonies.
    pub fn expose(&self) -> &serde_json::Value {
        &self.0
    }
}

impl std::fmt::Debug for PasskeyCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasskeyCredential(..)")
    }
}

/// What a user calls a passkey ("Laptop", "Phone"): 1 to 100 characters,
/// trimmed, no control characters. Personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PasskeyName(String);

impl PasskeyName {
    /// Parses a name.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(DomainError::invalid("name", "must not be empty"));
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(DomainError::invalid(
                "name",
                format!("at most {MAX_NAME_CHARS} characters"),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(DomainError::invalid(
                "name",
                "must not hold control characters",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A passkey as the rules need it.
#[derive(Debug, Clone)]
pub(super) struct StoredPasskey {
    id: Uuid,
    credential_id: String,
    name: Option<PasskeyName>,
    credential: Option<PasskeyCredential>,
    counter: u32,
}

impl StoredPasskey {
    /// Whether an assertion's counter may follow the last one: once either
    /// is non-zero it must grow (a counter that does not is a clone's).
    fn accepts_counter(&self, counter: u32) -> bool {
        (counter == 0 && self.counter == 0) || counter > self.counter
    }
}

/// A verified assertion of one of the user's passkeys: which, and its
/// credential as the assertion left it.
#[derive(Debug, Clone)]
pub struct PasskeyAssertion {
    /// The passkey.
    pub passkey_id: Uuid,
    /// The credential, updated (signature counter, backup state).
    pub credential: PasskeyCredential,
    /// The signature counter the authenticator reported.
    pub counter: u32,
}

impl User {
    /// Whether an authenticator app is enrolled and confirmed.
    pub fn has_totp(&self) -> bool {
        self.totp.as_ref().is_some_and(|t| t.enabled())
    }

    /// Whether the user holds a passkey.
    pub fn has_passkeys(&self) -> bool {
        !self.passkeys.is_empty()
    }

    /// The user's passkeys' credentials, with their ids (erased ones left out).
    pub fn passkey_credentials(&self) -> Vec<(Uuid, &PasskeyCredential)> {
        self.passkeys
            .iter()
            .filter_map(|p| p.credential.as_ref().map(|c| (p.id, c)))
            .collect()
    }

    /// The passkey registered with `credential_id` (base64url), if any.
    pub fn passkey_by_credential(&self, credential_id: &str) -> Option<(Uuid, &PasskeyCredential)> {
        self.passkeys
            .iter()
            .find(|p| p.credential_id == credential_id)
            .and_then(|p| p.credential.as_ref().map(|c| (p.id, c)))
    }

    /// The factors that answer a sign-in's challenge.
    pub fn second_factor_methods(&self) -> Vec<&'static str> {
        let mut methods = Vec::new();
        if self.has_totp() {
            methods.extend(["totp", "backup_code"]);
        }
        if self.has_passkeys() {
            methods.push("passkey");
        }
        methods
    }

    fn require_passkey(&self, passkey_id: Uuid) -> Result<&StoredPasskey, DomainError> {
        self.passkeys
            .iter()
            .find(|p| p.id == passkey_id)
            .ok_or(DomainError::NotFound)
    }

    /// Decides the passkey commands (the user exists and is not erased).
    pub(super) fn decide_passkeys(
        &self,
        command: &UserCommand,
    ) -> Result<Vec<UserEvent>, DomainError> {
        use UserCommand as C;
        use UserEvent as E;
        Ok(match command {
            C::RegisterPasskey {
                passkey_id,
                name,
                credential_id,
                credential,
                backup_eligible,
            } => {
                if self
                    .passkeys
                    .iter()
                    .any(|p| &p.credential_id == credential_id)
                {
                    return Err(DomainError::Conflict("this passkey is registered already"));
                }
                if self.passkeys.len() >= MAX_PASSKEYS {
                    return Err(DomainError::Conflict("a user holds at most ten passkeys"));
                }
                vec![E::PasskeyRegistered {
                    passkey_id: *passkey_id,
                    name: Personal::Known(name.clone()),
                    credential_id: credential_id.clone(),
                    credential: Personal::Known(credential.clone()),
                    backup_eligible: *backup_eligible,
                }]
            }
            C::RenamePasskey { passkey_id, name } => {
                let passkey = self.require_passkey(*passkey_id)?;
                if passkey.name.as_ref() == Some(name) {
                    return Ok(vec![]);
                }
                vec![E::PasskeyRenamed {
                    passkey_id: *passkey_id,
                    name: Personal::Known(name.clone()),
                }]
            }
            C::RemovePasskey {
                passkey_id,
                by_admin,
            } => {
                self.require_passkey(*passkey_id)?;
                vec![E::PasskeyRemoved {
                    passkey_id: *passkey_id,
                    by_admin: *by_admin,
                }]
            }
            C::SignInWithPasskey(assertion) => {
                if !self
                    .require_passkey(assertion.passkey_id)?
                    .accepts_counter(assertion.counter)
                {
                    return Err(DomainError::InvalidCode);
                }
                vec![used(assertion)]
            }
            C::PassMfaWithPasskey {
                challenge,
                assertion,
            } => {
                let challenge_id = self.pending_challenge(challenge)?;
                let accepted = self
                    .require_passkey(assertion.passkey_id)
                    .is_ok_and(|p| p.accepts_counter(assertion.counter));
                if !accepted {
                    return Err(DomainError::InvalidCode);
                }
                vec![
                    E::MfaPassed {
                        challenge_id,
                        method: super::SecondFactorMethod::Passkey,
                        step: None,
                        backup_code: None,
                        passkey_id: Some(assertion.passkey_id),
                    },
                    used(assertion),
                ]
            }
            C::RecordEnrollmentFailure { method, reason } => vec![E::MfaEnrollmentFailed {
                method: *method,
                reason: reason.clone(),
            }],
            _ => unreachable!("decided by the user aggregate itself"),
        })
    }

    /// Folds the passkey events into the state.
    pub(super) fn evolve_passkeys(&mut self, event: &UserEvent) {
        match event {
            UserEvent::PasskeyRegistered {
                passkey_id,
                name,
                credential_id,
                credential,
                ..
            } => self.passkeys.push(StoredPasskey {
                id: *passkey_id,
                credential_id: credential_id.clone(),
                name: name.known().cloned(),
                credential: credential.known().cloned(),
                counter: 0,
            }),
            UserEvent::PasskeyRenamed { passkey_id, name } => {
                if let Some(p) = self.passkeys.iter_mut().find(|p| p.id == *passkey_id) {
                    p.name = name.known().cloned();
                }
            }
            UserEvent::PasskeyRemoved { passkey_id, .. } => {
                self.passkeys.retain(|p| p.id != *passkey_id);
                if !self.has_mfa() {
                    self.challenges.clear();
                }
            }
            UserEvent::PasskeyUsed {
                passkey_id,
                credential,
                counter,
            } => {
                if let Some(p) = self.passkeys.iter_mut().find(|p| p.id == *passkey_id) {
                    p.credential = credential.known().cloned();
                    p.counter = p.counter.max(*counter);
                }
            }
            _ => {}
        }
    }
}

fn used(assertion: &PasskeyAssertion) -> UserEvent {
    UserEvent::PasskeyUsed {
        passkey_id: assertion.passkey_id,
        credential: Personal::Known(assertion.credential.clone()),
        counter: assertion.counter,
    }
}
