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

mod lifecycle {
    use super::*;
    use crate::domain::action::{Presented, TokenIssue, TokenSecret};
    use chrono::{DateTime, Duration, TimeZone, Utc};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap()
    }

    fn issue(hash: &str) -> TokenIssue {
        TokenIssue {
            token: TokenSecret::new(format!("token-{hash}")),
            token_hash: hash.repeat(32),
            expires_at: t0() + Duration::hours(1),
        }
    }

    fn presented(hash: &str, at: DateTime<Utc>) -> Presented {
        Presented {
            token_hash: hash.repeat(32),
            now: at,
        }
    }

    fn ada() -> Email {
        Email::parse("ada@example.org").unwrap()
    }

    fn reset_requested(hash: &str) -> E {
        let i = issue(hash);
        E::PasswordResetRequested {
            email: ada().into(),
            token: i.token.into(),
            token_hash: i.token_hash,
            expires_at: i.expires_at,
        }
    }

    fn confirm_reset(hash: &str, at: DateTime<Utc>) -> C {
        C::ConfirmPasswordReset {
            presented: presented(hash, at),
            password_hash: "$argon2id$new".into(),
        }
    }

    #[test]
    fn a_reset_token_sets_the_password_once() {
        given::<User>([registered(), reset_requested("ab")])
            .when(confirm_reset("ab", t0()))
            .then([E::PasswordReset {
                password_hash: "$argon2id$new".into(),
            }]);
        given::<User>([
            registered(),
            reset_requested("ab"),
            E::PasswordReset {
                password_hash: "$argon2id$new".into(),
            },
        ])
        .when(confirm_reset("ab", t0()))
        .then_err(DomainError::InvalidToken);
    }

    #[test]
    fn a_wrong_replaced_or_expired_reset_token_is_refused_alike() {
        let both = [registered(), reset_requested("ab"), reset_requested("cd")];
        given::<User>(both.clone())
            .when(confirm_reset("ab", t0()))
            .then_err(DomainError::InvalidToken);
        given::<User>(both.clone())
            .when(confirm_reset("cd", t0() + Duration::hours(1)))
            .then_err(DomainError::InvalidToken);
        given::<User>([registered()])
            .when(confirm_reset("ab", t0()))
            .then_err(DomainError::InvalidToken);
    }

    #[test]
    fn a_password_change_voids_a_pending_reset() {
        given::<User>([
            registered(),
            reset_requested("ab"),
            E::PasswordChanged {
                password_hash: "$argon2id$z".into(),
            },
        ])
        .when(confirm_reset("ab", t0()))
        .then_err(DomainError::InvalidToken);
    }

    #[test]
    fn a_disabled_user_gets_no_reset() {
        given::<User>([registered(), E::Disabled { reason: None }])
            .when(C::RequestPasswordReset(issue("ab")))
            .then_err(DomainError::Conflict("the user is disabled"));
    }

    #[test]
    fn verification_records_the_address_and_is_asked_for_once_verified_never() {
        let i = issue("ab");
        let requested = E::EmailVerificationRequested {
            email: ada().into(),
            token: i.token.clone().into(),
            token_hash: i.token_hash.clone(),
            expires_at: i.expires_at,
        };
        given::<User>([registered()])
            .when(C::RequestEmailVerification(i.clone()))
            .then([requested.clone()]);
        given::<User>([registered(), requested.clone()])
            .when(C::ConfirmEmailVerification(presented("ab", t0())))
            .then([E::EmailVerified {}]);
        given::<User>([registered(), requested, E::EmailVerified {}])
            .when(C::RequestEmailVerification(i))
            .then_err(DomainError::Conflict(
                "the email address is verified already",
            ));
    }

    #[test]
    fn an_email_change_moves_to_the_address_its_token_went_to() {
        let new = Email::parse("new@example.org").unwrap();
        let i = issue("ef");
        let requested = E::EmailChangeRequested {
            email: ada().into(),
            new_email: new.clone().into(),
            token: i.token.clone().into(),
            token_hash: i.token_hash.clone(),
            expires_at: i.expires_at,
        };
        given::<User>([registered()])
            .when(C::RequestEmailChange {
                new_email: new.clone(),
                issue: i,
            })
            .then([requested.clone()]);
        given::<User>([registered(), requested.clone()])
            .when(C::ConfirmEmailChange(presented("ef", t0())))
            .then([E::EmailChanged {
                email: new.clone().into(),
            }]);
        let moved = [
            registered(),
            requested,
            E::EmailChanged { email: new.into() },
        ];
        assert!(User::from_events(&moved).is_email_verified());
        given::<User>(moved)
            .when(C::ConfirmEmailChange(presented("ef", t0())))
            .then_err(DomainError::InvalidToken);
        given::<User>([registered()])
            .when(C::RequestEmailChange {
                new_email: ada(),
                issue: issue("ef"),
            })
            .then_err(DomainError::invalid(
                "new_email",
                "is the account's address already",
            ));
    }

    fn change_requested(hash: &str) -> E {
        let i = issue(hash);
        E::EmailChangeRequested {
            email: ada().into(),
            new_email: Email::parse("mallory@example.org").unwrap().into(),
            token: i.token.into(),
            token_hash: i.token_hash,
            expires_at: i.expires_at,
        }
    }

    #[test]
    fn a_new_password_voids_a_pending_email_change() {
        // Someone who knew the password asked to move the account; the owner
        // takes it back with a reset: the change no longer works.
        for new_password in [
            E::PasswordReset {
                password_hash: "$argon2id$n".into(),
            },
            E::PasswordChanged {
                password_hash: "$argon2id$n".into(),
            },
        ] {
            given::<User>([registered(), change_requested("ef"), new_password])
                .when(C::ConfirmEmailChange(presented("ef", t0())))
                .then_err(DomainError::InvalidToken);
        }
    }

    #[test]
    fn a_move_to_a_new_address_voids_a_reset_mailed_to_the_old_one() {
        let moved = [
            registered(),
            reset_requested("ab"),
            change_requested("ef"),
            E::EmailChanged {
                email: Email::parse("mallory@example.org").unwrap().into(),
            },
        ];
        assert!(!User::from_events(&moved).accepts_reset(&presented("ab", t0())));
        given::<User>(moved)
            .when(confirm_reset("ab", t0()))
            .then_err(DomainError::InvalidToken);
    }
}

mod mfa {
    use super::*;
    use crate::domain::action::{Presented, TotpSecret};
    use crate::domain::user::{SecondFactor, SecondFactorMethod};
    use chrono::{DateTime, Duration, TimeZone, Utc};
    use uuid::Uuid;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap()
    }

    fn secret() -> TotpSecret {
        TotpSecret::new("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    }

    fn enrolled() -> Vec<E> {
        vec![
            registered(),
            E::TotpEnrollmentStarted {
                secret: secret().into(),
            },
            E::TotpEnabled {
                step: 100,
                backup_code_hashes: vec!["b0".into(), "b1".into()],
            },
        ]
    }

    fn challenged(mut events: Vec<E>) -> Vec<E> {
        events.push(E::MfaChallenged {
            challenge_id: Uuid::from_u128(9),
            token_hash: "cc".repeat(32),
            expires_at: t0() + Duration::minutes(5),
        });
        events
    }

    fn pass(proof: SecondFactor, at: DateTime<Utc>) -> C {
        C::PassMfa {
            challenge: Presented {
                token_hash: "cc".repeat(32),
                now: at,
            },
            proof,
        }
    }

    #[test]
    fn enrolment_completes_only_with_a_valid_code() {
        let started = vec![
            registered(),
            E::TotpEnrollmentStarted {
                secret: secret().into(),
            },
        ];
        given::<User>(started.clone())
            .when(C::ConfirmTotp {
                step: None,
                backup_code_hashes: vec![],
            })
            .then_err(DomainError::InvalidCode);
        given::<User>(started)
            .when(C::ConfirmTotp {
                step: Some(100),
                backup_code_hashes: vec!["b0".into()],
            })
            .then([E::TotpEnabled {
                step: 100,
                backup_code_hashes: vec!["b0".into()],
            }]);
        given::<User>([registered()])
            .when(C::ConfirmTotp {
                step: Some(1),
                backup_code_hashes: vec![],
            })
            .then_err(DomainError::Conflict("no TOTP enrolment is under way"));
    }

    #[test]
    fn a_step_is_accepted_once_and_never_one_before_it() {
        given::<User>(challenged(enrolled()))
            .when(pass(SecondFactor::Totp(Some(100)), t0()))
            .then_err(DomainError::InvalidCode);
        given::<User>(challenged(enrolled()))
            .when(pass(SecondFactor::Totp(Some(101)), t0()))
            .then([E::MfaPassed {
                challenge_id: Uuid::from_u128(9),
                method: SecondFactorMethod::Totp,
                step: Some(101),
                backup_code: None,
                passkey_id: None,
            }]);
    }

    #[test]
    fn a_backup_code_is_accepted_once() {
        let used = challenged({
            let mut e = challenged(enrolled());
            e.push(E::MfaPassed {
                challenge_id: Uuid::from_u128(9),
                method: SecondFactorMethod::BackupCode,
                step: None,
                backup_code: Some(1),
                passkey_id: None,
            });
            e
        });
        given::<User>(used.clone())
            .when(pass(SecondFactor::BackupCode(Some(1)), t0()))
            .then_err(DomainError::InvalidCode);
        given::<User>(used)
            .when(pass(SecondFactor::BackupCode(Some(0)), t0()))
            .then([E::MfaPassed {
                challenge_id: Uuid::from_u128(9),
                method: SecondFactorMethod::BackupCode,
                step: None,
                backup_code: Some(0),
                passkey_id: None,
            }]);
    }

    #[test]
    fn a_challenge_works_once_within_five_minutes() {
        given::<User>(challenged(enrolled()))
            .when(pass(
                SecondFactor::Totp(Some(101)),
                t0() + Duration::minutes(5),
            ))
            .then_err(DomainError::InvalidToken);
        let mut passed = challenged(enrolled());
        passed.push(E::MfaPassed {
            challenge_id: Uuid::from_u128(9),
            method: SecondFactorMethod::Totp,
            step: Some(101),
            backup_code: None,
            passkey_id: None,
        });
        given::<User>(passed)
            .when(pass(SecondFactor::Totp(Some(102)), t0()))
            .then_err(DomainError::InvalidToken);
        given::<User>(enrolled())
            .when(pass(SecondFactor::Totp(Some(101)), t0()))
            .then_err(DomainError::InvalidToken);
    }

    #[test]
    fn removal_needs_a_valid_factor_unless_an_admin_resets() {
        given::<User>(enrolled())
            .when(C::DisableTotp {
                proof: Some(SecondFactor::Totp(None)),
            })
            .then_err(DomainError::InvalidCode);
        given::<User>(enrolled())
            .when(C::DisableTotp {
                proof: Some(SecondFactor::BackupCode(Some(0))),
            })
            .then([E::TotpDisabled { by_admin: false }]);
        given::<User>(enrolled())
            .when(C::DisableTotp { proof: None })
            .then([E::TotpDisabled { by_admin: true }]);
        given::<User>([registered()])
            .when(C::DisableTotp { proof: None })
            .then_nothing();
    }
}

#[test]
fn a_new_password_or_disabling_ends_pending_second_factor_challenges() {
    use crate::domain::action::{Presented, TotpSecret};
    use crate::domain::user::SecondFactor;
    use chrono::{Duration, TimeZone, Utc};
    let t0 = Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap();
    let base = vec![
        registered(),
        E::TotpEnrollmentStarted {
            secret: TotpSecret::new("JBSWY3DPEHPK3PXP").into(),
        },
        E::TotpEnabled {
            step: 1,
            backup_code_hashes: vec![],
        },
        E::MfaChallenged {
            challenge_id: uuid::Uuid::from_u128(9),
            token_hash: "cc".repeat(32),
            expires_at: t0 + Duration::minutes(5),
        },
    ];
    for ended_by in [
        E::PasswordChanged {
            password_hash: "$argon2id$n".into(),
        },
        E::PasswordReset {
            password_hash: "$argon2id$n".into(),
        },
        E::Disabled { reason: None },
    ] {
        let mut events = base.clone();
        events.push(ended_by);
        given::<User>(events)
            .when(C::PassMfa {
                challenge: Presented {
                    token_hash: "cc".repeat(32),
                    now: t0,
                },
                proof: SecondFactor::Totp(Some(2)),
            })
            .then_err(DomainError::InvalidToken);
    }
}

#[test]
fn backup_codes_are_replaced_only_with_an_unspent_app_code() {
    use crate::domain::action::TotpSecret;
    use crate::domain::user::SecondFactor;
    let enrolled = vec![
        registered(),
        E::TotpEnrollmentStarted {
            secret: TotpSecret::new("JBSWY3DPEHPK3PXP").into(),
        },
        E::TotpEnabled {
            step: 10,
            backup_code_hashes: vec!["old".into()],
        },
    ];
    let regenerate = |proof| C::RegenerateBackupCodes {
        proof,
        backup_code_hashes: vec!["new".into()],
    };
    given::<User>(enrolled.clone())
        .when(regenerate(SecondFactor::BackupCode(Some(0))))
        .then_err(DomainError::InvalidCode);
    given::<User>(enrolled.clone())
        .when(regenerate(SecondFactor::Totp(Some(10))))
        .then_err(DomainError::InvalidCode);
    given::<User>(enrolled.clone())
        .when(regenerate(SecondFactor::Totp(Some(11))))
        .then([E::BackupCodesRegenerated {
            step: 11,
            backup_code_hashes: vec!["new".into()],
        }]);
    let mut replaced = enrolled;
    replaced.push(E::BackupCodesRegenerated {
        step: 11,
        backup_code_hashes: vec!["new".into()],
    });
    assert_eq!(User::from_events(&replaced).backup_code_hashes(), ["new"]);
}
