//! Given events, when a passkey command, then events (or a refusal).

use super::*;
use crate::domain::testing::given;
use chrono::{Duration, TimeZone, Utc};
use serde_json::json;
use UserCommand as C;
use UserEvent as E;

fn registered() -> E {
    E::Registered {
        email: Email::parse("ada@example.org").unwrap().into(),
        name: None,
        password_hash: "$argon2id$x".into(),
    }
}

fn pk(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn credential(counter: u32) -> PasskeyCredential {
    PasskeyCredential::new(json!({"cred": {"counter": counter}}))
}

fn name(n: &str) -> PasskeyName {
    PasskeyName::parse(n).unwrap()
}

fn passkey_registered(n: u128) -> E {
    E::PasskeyRegistered {
        passkey_id: pk(n),
        name: Personal::Known(name("Laptop")),
        credential_id: format!("cred-{n}"),
        credential: Personal::Known(credential(0)),
        backup_eligible: false,
    }
}

fn register(n: u128) -> C {
    C::RegisterPasskey {
        passkey_id: pk(n),
        name: name("Laptop"),
        credential_id: format!("cred-{n}"),
        credential: credential(0),
        backup_eligible: false,
    }
}

fn assertion(n: u128, counter: u32) -> PasskeyAssertion {
    PasskeyAssertion {
        passkey_id: pk(n),
        credential: credential(counter),
        counter,
    }
}

fn challenged(mut events: Vec<E>) -> Vec<E> {
    events.push(E::MfaChallenged {
        challenge_id: pk(9),
        token_hash: "cc".repeat(32),
        expires_at: Utc.with_ymd_and_hms(2026, 12, 6, 12, 5, 0).unwrap(),
    });
    events
}

fn presented() -> Presented {
    Presented {
        token_hash: "cc".repeat(32),
        now: Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap(),
    }
}

#[test]
fn a_passkey_registers_once_and_turns_the_second_factor_on() {
    given::<User>([registered()])
        .when(register(1))
        .then([passkey_registered(1)]);
    given::<User>([registered(), passkey_registered(1)])
        .when(register(1))
        .then_err(DomainError::Conflict("this passkey is registered already"));
    let user = User::from_events(&[registered(), passkey_registered(1)]);
    assert!(user.has_mfa() && !user.has_totp());
    assert_eq!(user.second_factor_methods(), ["passkey"]);
    assert_eq!(
        user.passkey_by_credential("cred-1").map(|(id, _)| id),
        Some(pk(1))
    );
    assert!(user.passkey_by_credential("cred-2").is_none());
}

#[test]
fn a_user_holds_at_most_ten_passkeys() {
    let mut events = vec![registered()];
    events.extend((0..MAX_PASSKEYS as u128).map(passkey_registered));
    given::<User>(events)
        .when(register(99))
        .then_err(DomainError::Conflict("a user holds at most ten passkeys"));
}

#[test]
fn renaming_to_the_same_name_is_a_no_op_and_an_unknown_passkey_is_not_found() {
    let held = vec![registered(), passkey_registered(1)];
    given::<User>(held.clone())
        .when(C::RenamePasskey {
            passkey_id: pk(1),
            name: name("Laptop"),
        })
        .then_nothing();
    given::<User>(held.clone())
        .when(C::RenamePasskey {
            passkey_id: pk(1),
            name: name("Phone"),
        })
        .then([E::PasskeyRenamed {
            passkey_id: pk(1),
            name: Personal::Known(name("Phone")),
        }]);
    given::<User>(held)
        .when(C::RemovePasskey {
            passkey_id: pk(2),
            by_admin: false,
        })
        .then_err(DomainError::NotFound);
    assert!(PasskeyName::parse("  ").is_err());
    assert!(PasskeyName::parse(&"x".repeat(101)).is_err());
    assert!(PasskeyName::parse("tab\there").is_err());
}

#[test]
fn removing_the_last_passkey_ends_pending_challenges() {
    let challenged_user = challenged(vec![registered(), passkey_registered(1)]);
    assert!(User::from_events(&challenged_user).accepts_challenge(&presented()));
    let mut removed = challenged_user;
    removed.push(E::PasskeyRemoved {
        passkey_id: pk(1),
        by_admin: true,
    });
    let user = User::from_events(&removed);
    assert!(!user.has_mfa());
    assert!(!user.accepts_challenge(&presented()));
}

#[test]
fn a_passkey_answers_its_users_challenge_once() {
    let challenged_user = challenged(vec![registered(), passkey_registered(1)]);
    let pass = |n| C::PassMfaWithPasskey {
        challenge: presented(),
        assertion: assertion(n, 3),
    };
    let passed = [
        E::MfaPassed {
            challenge_id: pk(9),
            method: SecondFactorMethod::Passkey,
            step: None,
            backup_code: None,
            passkey_id: Some(pk(1)),
        },
        E::PasskeyUsed {
            passkey_id: pk(1),
            credential: Personal::Known(credential(3)),
            counter: 3,
        },
    ];
    given::<User>(challenged_user.clone())
        .when(pass(1))
        .then(passed.clone());
    // Not a passkey of this user.
    given::<User>(challenged_user.clone())
        .when(pass(2))
        .then_err(DomainError::InvalidCode);
    // The challenge is spent.
    let mut spent = challenged_user;
    spent.extend(passed);
    given::<User>(spent.clone())
        .when(pass(1))
        .then_err(DomainError::InvalidToken);
    // The stored credential is the one the last use left.
    let user = User::from_events(&spent);
    assert_eq!(
        user.passkey_by_credential("cred-1").map(|(_, c)| c.clone()),
        Some(credential(3))
    );
}

#[test]
fn a_challenge_expires_for_passkeys_too() {
    let late = Presented {
        token_hash: "cc".repeat(32),
        now: Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap() + Duration::minutes(5),
    };
    given::<User>(challenged(vec![registered(), passkey_registered(1)]))
        .when(C::PassMfaWithPasskey {
            challenge: late,
            assertion: assertion(1, 1),
        })
        .then_err(DomainError::InvalidToken);
}

#[test]
fn a_sign_in_with_a_passkey_alone_records_its_use() {
    given::<User>([registered(), passkey_registered(1)])
        .when(C::SignInWithPasskey(assertion(1, 0)))
        .then([E::PasskeyUsed {
            passkey_id: pk(1),
            credential: Personal::Known(credential(0)),
            counter: 0,
        }]);
    given::<User>([registered()])
        .when(C::SignInWithPasskey(assertion(1, 0)))
        .then_err(DomainError::NotFound);
}

#[test]
fn an_erased_user_keeps_no_passkey_and_failures_are_recorded() {
    let user = User::from_events(&[registered(), passkey_registered(1), E::Erased {}]);
    assert!(!user.has_passkeys());
    given::<User>([registered()])
        .when(C::RecordEnrollmentFailure {
            method: EnrollmentMethod::Passkey,
            reason: "ceremony_refused".into(),
        })
        .then([E::MfaEnrollmentFailed {
            method: EnrollmentMethod::Passkey,
            reason: "ceremony_refused".into(),
        }]);
}

#[test]
fn a_mfa_passed_event_written_before_passkeys_still_reads() {
    let old = json!({
        "type": "user.mfa_passed",
        "data": {"challenge_id": pk(9), "method": "totp", "step": 5, "backup_code": null}
    });
    let event: E = serde_json::from_value(old).unwrap();
    assert!(matches!(
        event,
        E::MfaPassed {
            passkey_id: None,
            ..
        }
    ));
}

#[test]
fn a_counter_must_grow_once_it_is_not_zero() {
    let used = |counter| E::PasskeyUsed {
        passkey_id: pk(1),
        credential: Personal::Known(credential(counter)),
        counter,
    };
    let at_five = vec![registered(), passkey_registered(1), used(5)];
    given::<User>(at_five.clone())
        .when(C::SignInWithPasskey(assertion(1, 5)))
        .then_err(DomainError::InvalidCode);
    given::<User>(at_five.clone())
        .when(C::SignInWithPasskey(assertion(1, 0)))
        .then_err(DomainError::InvalidCode);
    given::<User>(at_five.clone())
        .when(C::SignInWithPasskey(assertion(1, 6)))
        .then([used(6)]);
    given::<User>(challenged(at_five))
        .when(C::PassMfaWithPasskey {
            challenge: presented(),
            assertion: assertion(1, 4),
        })
        .then_err(DomainError::InvalidCode);
    // A passkey that keeps no counter (synced) always reports 0.
    let never = vec![registered(), passkey_registered(1), used(0)];
    given::<User>(never)
        .when(C::SignInWithPasskey(assertion(1, 0)))
        .then([used(0)]);
}
