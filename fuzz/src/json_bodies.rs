//! Request bodies: `parse_json` and then the checks each handler applies.
//!
//! For every request body type of the API, the body goes through
//! `http::extract::parse_json` (as `Json<T>` does, or as `OptionalJson<T>`
//! does for the optional bodies: blank means the default), then through the
//! domain parsers the handler applies to its fields. Nothing panics, and every
//! refusal is a 400 `invalid_json` (broken JSON) or a 422 `validation_error`
//! naming its field: never another error. What the parsers accept is already
//! normal: parsing it again gives the same value. A key request that passes
//! also passes the key aggregate's own check, and its event survives the
//! JSON round trip of the event store.
//!
//! Input: the first byte picks the body type, the rest is the body.

use actix_web::http::StatusCode;
use actix_web::ResponseError;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use std::sync::LazyLock;
use vouch::app::keys::MAX_GRACE_SECONDS;
use vouch::auth::api_key::PresentedKey;
use vouch::auth::jwt::{self, Expectation};
use vouch::auth::password::NewPassword;
use vouch::auth::refresh_token::RefreshToken;
use vouch::domain::api_key::{ApiKey, ApiKeyCommand, ApiKeyEvent, NewKey};
use vouch::domain::values::{Email, KeyName, OrgName, Role, Scopes, Slug, UserName};
use vouch::domain::{Aggregate, DomainError};
use vouch::http::error::ApiError;
use vouch::http::extract::parse_json;
use vouch::http::keys::{CreateKey, RotateKey, VerifyKey};
use vouch::http::orgs::{AddMember, ChangeRole, CreateOrg, UpdateOrg};
use vouch::http::sessions::{ChangePassword, Introspect, Refresh, SignIn};
use vouch::http::users::{parse_reason, CreateUser, Reason, UpdateUser};

/// The time the checks that need one are run at.
static NOW: LazyLock<DateTime<Utc>> =
    LazyLock::new(|| DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default());

/// The body types, in the order the selector byte picks them.
pub const BODIES: [&str; 15] = [
    "CreateUser",
    "UpdateUser",
    "Reason",
    "SignIn",
    "Refresh",
    "ChangePassword",
    "Introspect",
    "CreateOrg",
    "UpdateOrg",
    "AddMember",
    "ChangeRole",
    "CreateKey",
    "RotateKey",
    "VerifyKey",
    "Reason (as revoke)",
];

/// Runs one input.
pub fn check(data: &[u8]) {
    let Some((selector, body)) = data.split_first() else {
        return;
    };
    match usize::from(*selector) % BODIES.len() {
        0 => with::<CreateUser>(body, |b| {
            email(&b.email);
            refused(NewPassword::parse("password", &b.password), "password");
            if let Some(name) = &b.name {
                name_ok(UserName::parse(name), UserName::parse, UserName::as_str);
            }
        }),
        1 => with::<UpdateUser>(body, |b| {
            name_ok(UserName::parse(&b.name), UserName::parse, UserName::as_str);
        }),
        2 | 14 => optional::<Reason>(body, |b| reason(b.reason)),
        3 => with::<SignIn>(body, |b| {
            // Sign-in answers a bad email as wrong credentials, after this parse.
            email(&b.email);
        }),
        4 => with::<Refresh>(body, |b| {
            if let Ok(t) = RefreshToken::parse(&b.refresh_token) {
                assert_eq!(t.expose(), b.refresh_token);
            }
        }),
        5 => with::<ChangePassword>(body, |b| {
            refused(
                NewPassword::parse("new_password", &b.new_password),
                "new_password",
            );
        }),
        6 => with::<Introspect>(body, |b| introspect(&b.token)),
        7 => with::<CreateOrg>(body, |b| {
            name_ok(OrgName::parse(&b.name), OrgName::parse, OrgName::as_str);
            if let Some(slug) = refused(Slug::parse(&b.slug), "slug") {
                assert_eq!(slug.as_str(), b.slug);
            }
        }),
        8 => with::<UpdateOrg>(body, |b| {
            name_ok(OrgName::parse(&b.name), OrgName::parse, OrgName::as_str);
        }),
        9 => with::<AddMember>(body, |b| role(&b.role)),
        10 => with::<ChangeRole>(body, |b| role(&b.role)),
        11 => with::<CreateKey>(body, create_key),
        12 => optional::<RotateKey>(body, |b| {
            let grace = b.grace_seconds.unwrap_or(0);
            if (0..=MAX_GRACE_SECONDS).contains(&grace) {
                let _ = *NOW + chrono::Duration::seconds(grace);
            }
        }),
        _ => with::<VerifyKey>(body, |b| {
            if let Ok(k) = PresentedKey::parse(&b.key) {
                assert_eq!(k.expose(), b.key);
            }
        }),
    }
}

/// `Json<T>`: parse, and on success run the handler's checks.
fn with<T: DeserializeOwned>(body: &[u8], then: impl FnOnce(T)) {
    match parse_json::<T>(body) {
        Ok(value) => then(value),
        Err(e) => assert_body_refusal(&e),
    }
}

/// `OptionalJson<T>`: a blank body is the default.
fn optional<T: DeserializeOwned + Default>(body: &[u8], then: impl FnOnce(T)) {
    if body.iter().all(u8::is_ascii_whitespace) {
        then(T::default());
    } else {
        with(body, then);
    }
}

fn assert_body_refusal(e: &ApiError) {
    match e {
        ApiError::InvalidJson(_) => assert_eq!(e.status_code(), StatusCode::BAD_REQUEST),
        ApiError::Validation { field: Some(_), .. } => {
            assert_eq!(e.status_code(), StatusCode::UNPROCESSABLE_ENTITY);
        }
        other => panic!("a body refused with {other:?}"),
    }
}

/// A domain refusal must be a validation error of `field`, answered 422.
fn assert_validation(e: DomainError, field: &str) {
    assert!(
        matches!(&e, DomainError::Validation { field: f, .. } if *f == field),
        "expected a validation error of {field}, got {e:?}"
    );
    let api = ApiError::from(e);
    assert_eq!(api.status_code(), StatusCode::UNPROCESSABLE_ENTITY);
}

/// A refusal must be a validation error of `field`.
fn refused<T>(parsed: Result<T, DomainError>, field: &str) -> Option<T> {
    parsed.map_err(|e| assert_validation(e, field)).ok()
}

fn name_ok<T: std::fmt::Debug + PartialEq + Clone>(
    parsed: Result<T, DomainError>,
    parse: fn(&str) -> Result<T, DomainError>,
    text: fn(&T) -> &str,
) {
    match parsed {
        Ok(v) => assert_eq!(parse(text(&v)).as_ref(), Ok(&v)),
        Err(e) => assert_validation(e, "name"),
    }
}

fn email(raw: &str) {
    if let Some(e) = refused(Email::parse(raw), "email") {
        assert_eq!(Email::parse(e.as_str()).as_ref(), Ok(&e));
    }
}

fn role(raw: &str) {
    match Role::parse(raw) {
        Ok(r) => assert_eq!(Role::parse(r.as_str()), Ok(r)),
        Err(e) => assert_validation(e, "role"),
    }
}

fn reason(raw: Option<String>) {
    match parse_reason(raw.clone()) {
        Ok(r) => assert_eq!(r, raw),
        Err(e) => assert!(
            matches!(&e, ApiError::Validation { field: Some(f), .. } if f == "reason")
                && e.status_code() == StatusCode::UNPROCESSABLE_ENTITY,
            "{e:?}"
        ),
    }
}

/// Introspection: `vk_` tokens are keys, anything else an access token.
fn introspect(token: &str) {
    if token.starts_with(vouch::auth::api_key::KEY_PREFIX) {
        if let Ok(k) = PresentedKey::parse(token) {
            assert_eq!(k.expose(), token);
        }
        return;
    }
    let public = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
    let expect = Expectation {
        issuer: "vouch",
        audience: "apps",
        now: NOW.timestamp(),
    };
    // Soundness is the `jwt` target's; here only that it returns.
    let _ = jwt::verify(token, |_| Some(public), &expect);
}

fn create_key(b: CreateKey) {
    let name = KeyName::parse(&b.name);
    let scopes = Scopes::parse(&b.scopes);
    let (name, scopes) = match (name, scopes) {
        (Ok(n), Ok(s)) => (n, s),
        (Err(e), _) => return assert_validation(e, "name"),
        (_, Err(e)) => return assert_validation(e, "scopes"),
    };
    assert_eq!(KeyName::parse(name.as_str()).as_ref(), Ok(&name));
    assert_eq!(Scopes::parse(scopes.as_slice()).as_ref(), Ok(&scopes));
    let command = ApiKeyCommand::Create {
        key: Box::new(NewKey {
            org_id: uuid::Uuid::from_u128(1),
            name,
            prefix: "vk_000000000".into(),
            key_hash: "0".repeat(64),
            scopes,
            expires_at: b.expires_at,
            rotated_from: None,
        }),
        now: *NOW,
    };
    match ApiKey::default().decide(&command) {
        Ok(events) => {
            for event in events {
                let stored = serde_json::to_value(&event);
                let loaded = stored
                    .as_ref()
                    .ok()
                    .and_then(|v| serde_json::from_value::<ApiKeyEvent>(v.clone()).ok());
                assert_eq!(
                    loaded.as_ref(),
                    Some(&event),
                    "event does not survive the event store: {stored:?}"
                );
            }
        }
        Err(e) => assert_validation(e, "expires_at"),
    }
}
