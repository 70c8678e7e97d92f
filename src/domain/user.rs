//! The user aggregate: registration, profile, password and access state.

use super::personal::Personal;
use super::values::{Email, UserName};
use super::{Aggregate, DomainError, DomainEvent, StreamType};
use serde::{Deserialize, Serialize};

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
}

/// The state of one user, as far as its rules need it.
#[derive(Debug, Clone, Default)]
pub struct User {
    exists: bool,
    erased: bool,
    name: Option<UserName>,
    disabled: bool,
}

impl User {
    /// Whether the user may sign in.
    pub fn is_disabled(&self) -> bool {
        self.disabled
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
        })
    }

    fn evolve(mut self, event: &UserEvent) -> Self {
        match event {
            UserEvent::Registered { name, .. } => {
                self.exists = true;
                self.name = name.as_ref().and_then(Personal::known).cloned();
            }
            UserEvent::Renamed { name } => self.name = name.known().cloned(),
            UserEvent::Erased {} => {
                self.erased = true;
                self.name = None;
            }
            UserEvent::Disabled { .. } => self.disabled = true,
            UserEvent::Enabled {} => self.disabled = false,
            UserEvent::PasswordChanged { .. } | UserEvent::LoginFailed { .. } => {}
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::given;
    use UserCommand as C;
    use UserEvent as E;

    fn registered() -> E {
        E::Registered {
            email: Email::parse("ada@example.org").unwrap().into(),
            name: None,
            password_hash: "$argon2id$x".into(),
        }
    }

    fn name(n: &str) -> UserName {
        UserName::parse(n).unwrap()
    }

    #[test]
    fn a_new_user_registers() {
        given::<User>([])
            .when(C::Register {
                email: Email::parse("ada@example.org").unwrap(),
                name: None,
                password_hash: "$argon2id$x".into(),
            })
            .then([registered()]);
    }

    #[test]
    fn registering_twice_is_refused() {
        given::<User>([registered()])
            .when(C::Register {
                email: Email::parse("ada@example.org").unwrap(),
                name: None,
                password_hash: "$argon2id$y".into(),
            })
            .then_err(DomainError::AlreadyExists);
    }

    #[test]
    fn commands_on_a_missing_user_are_not_found() {
        given::<User>([])
            .when(C::Rename { name: name("Ada") })
            .then_err(DomainError::NotFound);
        given::<User>([])
            .when(C::Enable)
            .then_err(DomainError::NotFound);
    }

    #[test]
    fn renaming_to_the_same_name_changes_nothing() {
        given::<User>([
            registered(),
            E::Renamed {
                name: name("Ada").into(),
            },
        ])
        .when(C::Rename { name: name("Ada") })
        .then_nothing();
        given::<User>([registered()])
            .when(C::Rename { name: name("Ada") })
            .then([E::Renamed {
                name: name("Ada").into(),
            }]);
    }

    #[test]
    fn disabling_is_idempotent() {
        given::<User>([registered()])
            .when(C::Disable { reason: None })
            .then([E::Disabled { reason: None }]);
        given::<User>([registered(), E::Disabled { reason: None }])
            .when(C::Disable { reason: None })
            .then_nothing();
    }

    #[test]
    fn enabling_only_a_disabled_user_records_an_event() {
        given::<User>([registered()]).when(C::Enable).then_nothing();
        given::<User>([registered(), E::Disabled { reason: None }])
            .when(C::Enable)
            .then([E::Enabled {}]);
    }

    #[test]
    fn a_password_change_is_recorded() {
        given::<User>([registered()])
            .when(C::ChangePassword {
                password_hash: "$argon2id$z".into(),
            })
            .then([E::PasswordChanged {
                password_hash: "$argon2id$z".into(),
            }]);
    }

    #[test]
    fn events_round_trip_through_their_stored_form() {
        let (ty, data) = registered().to_stored().unwrap();
        assert_eq!(ty, "user.registered");
        assert_eq!(data["email"], "ada@example.org");
        assert_eq!(UserEvent::from_stored(&ty, data).unwrap(), registered());
        let (ty, data) = E::Enabled {}.to_stored().unwrap();
        assert_eq!(UserEvent::from_stored(&ty, data).unwrap(), E::Enabled {});
    }

    #[test]
    fn an_erased_user_is_gone_for_every_command() {
        given::<User>([registered()])
            .when(C::Erase)
            .then([E::Erased {}]);
        let erased = [registered(), E::Erased {}];
        given::<User>(erased.clone())
            .when(C::Erase)
            .then_err(DomainError::NotFound);
        given::<User>(erased.clone())
            .when(C::Rename { name: name("Ada") })
            .then_err(DomainError::NotFound);
        given::<User>(erased)
            .when(C::RecordLoginFailure {
                reason: "wrong_password".into(),
            })
            .then_err(DomainError::NotFound);
    }

    #[test]
    fn an_erased_registration_reads_back_as_erased() {
        let data = serde_json::json!({
            "email": "[erased]", "name": "[erased]", "password_hash": "$argon2id$x"
        });
        let event = UserEvent::from_stored("user.registered", data).unwrap();
        assert_eq!(
            event,
            E::Registered {
                email: Personal::Erased,
                name: Some(Personal::Erased),
                password_hash: "$argon2id$x".into(),
            }
        );
    }
}
