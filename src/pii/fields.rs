//! Which fields of which events are personal, whose they are, and their
//! sealed stored form: `"pii:v1:" + base64url(nonce || ciphertext || tag)` of
//! the field's JSON value, bound to the person, the event type and the field.

use super::keys::{DataKey, PiiError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use uuid::Uuid;

/// The prefix of a sealed field's stored string.
pub const SEALED_PREFIX: &str = "pii:v1:";

pub use crate::domain::personal::ERASED;

/// The personal fields of each event type that has any.
/// An action token in the clear is sealed as one of its person's fields
/// (besides being redacted wherever an event is shown): only the mailer,
/// holding the key file, opens it.
const PERSONAL: [(&str, &[&str]); 12] = [
    ("user.totp_enrollment_started", &["secret"]),
    ("user.passkey_registered", &["name", "credential"]),
    ("user.passkey_renamed", &["name"]),
    ("user.passkey_used", &["credential"]),
    ("user.registered", &["email", "name"]),
    ("user.renamed", &["name"]),
    ("session.started", &["ip", "user_agent"]),
    ("user.email_verification_requested", &["email", "token"]),
    ("user.password_reset_requested", &["email", "token"]),
    (
        "user.email_change_requested",
        &["email", "new_email", "token"],
    ),
    ("user.email_changed", &["email"]),
    ("org.invitation_created", &["email", "token"]),
];

/// The personal fields of `event_type` (none for most types).
pub fn personal_fields(event_type: &str) -> &'static [&'static str] {
    PERSONAL
        .iter()
        .find(|(t, _)| *t == event_type)
        .map_or(&[], |(_, fields)| fields)
}

/// Whose personal fields an event holds: the user of a user event, the
/// `user_id` of a session's start, the invitation of an invitation (the
/// invitee is nobody's user yet); `None` for an event without any.
pub fn subject_of(event_type: &str, stream_id: Uuid, data: &Value) -> Option<Uuid> {
    if personal_fields(event_type).is_empty() {
        return None;
    }
    match event_type.split_once('.').map(|(s, _)| s) {
        Some("user") => Some(stream_id),
        Some("session") => user_id_in(data),
        Some("org") => data
            .get("invitation_id")
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok()),
        _ => None,
    }
}

/// The `user_id` a session event's payload names, if any.
fn user_id_in(data: &Value) -> Option<Uuid> {
    data.get("user_id")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
}

/// The associated data of one field: the person, the event type and the
/// field, length-prefixed so that no two combinations collide.
fn aad(subject: Uuid, event_type: &str, field: &str) -> Vec<u8> {
    let mut aad = b"vouch pii v1".to_vec();
    aad.extend_from_slice(subject.as_bytes());
    for part in [event_type, field] {
        aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

/// Whether a stored value is a sealed field.
pub fn is_sealed(value: &Value) -> bool {
    value.as_str().is_some_and(|s| s.starts_with(SEALED_PREFIX))
}

/// Replaces each personal field of `data` that holds a value (not `null`) by
/// its sealed form under `key`. Fields sealed already are left as they are.
pub fn seal_payload(key: &DataKey, subject: Uuid, event_type: &str, data: &mut Value) {
    seal_fields(key, subject, event_type, personal_fields(event_type), data);
}

/// Opens each sealed field of `data`: with the person's key, back to the value
/// written; without one (the person was erased), to [`ERASED`]. Values that
/// are not sealed are left as they are.
pub fn open_payload(
    key: Option<&DataKey>,
    subject: Uuid,
    event_type: &str,
    data: &mut Value,
) -> Result<(), PiiError> {
    open_fields(key, subject, event_type, personal_fields(event_type), data)
}

/// The personal fields of an event's metadata: the caller's address and agent.
pub const METADATA_FIELDS: [&str; 2] = ["ip", "user_agent"];

/// The scope a metadata field is sealed under, in place of an event type.
const METADATA_SCOPE: &str = "metadata";

/// The metadata member naming whose the caller's address and agent are, when
/// neither the actor nor the payload says: written only by `vouch migrate-pii`
/// for refreshes recorded before a refresh's caller was its session's user.
pub const METADATA_SUBJECT: &str = "pii_subject";

/// Whether any personal field of a stored event (payload or caller) holds a
/// value that is not sealed: what `vouch migrate-pii` seals.
pub fn has_unsealed(event_type: &str, data: &Value, metadata: &Value) -> bool {
    let unsealed = |v: Option<&Value>| v.is_some_and(|v| !v.is_null() && !is_sealed(v));
    personal_fields(event_type)
        .iter()
        .any(|f| unsealed(data.get(*f)))
        || METADATA_FIELDS.iter().any(|f| unsealed(metadata.get(*f)))
}

/// Replaces each personal field of `data` that holds a value by [`ERASED`]:
/// for a person erased before their fields were ever sealed.
pub fn erase_payload(event_type: &str, data: &mut Value) {
    mark_fields(personal_fields(event_type), data, ERASED);
}

/// [`erase_payload`] for the caller's address and agent.
pub fn erase_metadata(metadata: &mut Value) {
    mark_fields(&METADATA_FIELDS, metadata, ERASED);
}

/// Replaces each of `fields` of `data` that holds a value by the string `mark`.
fn mark_fields(fields: &[&str], data: &mut Value, mark: &str) {
    let Value::Object(map) = data else { return };
    for field in fields {
        if let Some(value) = map.get_mut(*field).filter(|v| !v.is_null()) {
            *value = Value::String(mark.into());
        }
    }
}

/// Whose the caller's address and user agent in `metadata` are: the signed-in
/// user who acted, or the user whose action token was presented; for a caller not signed in, the person a user or session
/// event is about (signing up, signing in, failing to). A caller with an API
/// key is an org's machine, and the system is no one: `None`.
pub fn metadata_subject(
    event_type: &str,
    stream_id: Uuid,
    data: &Value,
    metadata: &Value,
) -> Option<Uuid> {
    if let Some(subject) = metadata[METADATA_SUBJECT]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
    {
        return Some(subject);
    }
    let actor = &metadata["actor"];
    match actor["type"].as_str() {
        Some("user" | "token_holder") => actor["id"].as_str().and_then(|s| Uuid::parse_str(s).ok()),
        Some("anonymous") => match event_type.split_once('.').map(|(s, _)| s) {
            Some("user") => Some(stream_id),
            Some("session") => user_id_in(data),
            _ => None,
        },
        _ => None,
    }
}

/// Seals the caller's address and user agent in `metadata` for `subject`.
pub fn seal_metadata(key: &DataKey, subject: Uuid, metadata: &mut Value) {
    seal_fields(key, subject, METADATA_SCOPE, &METADATA_FIELDS, metadata);
}

/// Opens what [`seal_metadata`] sealed (or reads [`ERASED`] without a key).
pub fn open_metadata(
    key: Option<&DataKey>,
    subject: Uuid,
    metadata: &mut Value,
) -> Result<(), PiiError> {
    open_fields(key, subject, METADATA_SCOPE, &METADATA_FIELDS, metadata)
}

/// What a personal field of someone other than the reader reads in a
/// person's own export: it is not theirs to see.
pub const WITHHELD: &str = "[redacted]";

/// Withholds the personal fields of `data` (sealed or not) from a reader
/// they do not belong to.
pub fn withhold_payload(event_type: &str, data: &mut Value) {
    mark_fields(personal_fields(event_type), data, WITHHELD);
}

/// Withholds the caller's address and agent in `metadata` from a reader they
/// do not belong to.
pub fn withhold_metadata(metadata: &mut Value) {
    mark_fields(&METADATA_FIELDS, metadata, WITHHELD);
}

fn seal_fields(key: &DataKey, subject: Uuid, scope: &str, fields: &[&str], data: &mut Value) {
    let Value::Object(map) = data else { return };
    for field in fields {
        let Some(value) = map.get_mut(*field) else {
            continue;
        };
        if value.is_null() || is_sealed(value) {
            continue;
        }
        let plaintext = value.to_string();
        let sealed = key.seal(&aad(subject, scope, field), plaintext.as_bytes());
        *value = Value::String(format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(sealed)));
    }
}

fn open_fields(
    key: Option<&DataKey>,
    subject: Uuid,
    scope: &str,
    fields: &[&str],
    data: &mut Value,
) -> Result<(), PiiError> {
    let Value::Object(map) = data else {
        return Ok(());
    };
    for field in fields {
        let Some(value) = map.get_mut(*field) else {
            continue;
        };
        let Some(encoded) = value.as_str().and_then(|s| s.strip_prefix(SEALED_PREFIX)) else {
            continue;
        };
        *value = match key {
            None => Value::String(ERASED.into()),
            Some(key) => {
                let sealed = URL_SAFE_NO_PAD
                    .decode(encoded)
                    .map_err(|_| PiiError::Undecryptable)?;
                let plaintext = key.open(&aad(subject, scope, field), &sealed)?;
                serde_json::from_slice(&plaintext).map_err(|_| PiiError::Undecryptable)?
            }
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn personal_fields_are_sealed_and_open_for_their_person_only() {
        let (ada, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let key = DataKey::generate();
        let written = json!({"email": "ada@example.org", "name": null});
        let mut stored = written.clone();
        seal_payload(&key, ada, "user.registered", &mut stored);
        let text = stored.to_string();
        assert!(!text.contains("ada@example.org"), "{text}");
        assert!(is_sealed(&stored["email"]));
        assert_eq!(stored["name"], Value::Null, "nothing to hide in null");
        // Sealing twice changes nothing.
        let again = {
            let mut v = stored.clone();
            seal_payload(&key, ada, "user.registered", &mut v);
            v
        };
        assert_eq!(again, stored);

        let mut opened = stored.clone();
        open_payload(Some(&key), ada, "user.registered", &mut opened).unwrap();
        assert_eq!(opened, written);
        // Another person, another event type or another key: refused.
        assert!(open_payload(Some(&key), bob, "user.registered", &mut stored.clone()).is_err());
        let mut moved = json!({"name": stored["email"].clone()});
        assert!(open_payload(Some(&key), ada, "user.renamed", &mut moved).is_err());
        let other = DataKey::generate();
        assert!(open_payload(Some(&other), ada, "user.registered", &mut stored.clone()).is_err());
        // Without the key (erased): every sealed field reads as erased.
        let mut erased = stored.clone();
        open_payload(None, ada, "user.registered", &mut erased).unwrap();
        assert_eq!(erased, json!({"email": ERASED, "name": null}));
    }

    #[test]
    fn a_callers_address_belongs_to_the_person_who_acted() {
        let (user, other) = (Uuid::new_v4(), Uuid::new_v4());
        let signed_in =
            json!({"actor": {"type": "user", "id": user.to_string()}, "ip": "198.51.100.4"});
        assert_eq!(
            metadata_subject("org.created", other, &json!({}), &signed_in),
            Some(user)
        );
        let anonymous = json!({"actor": {"type": "anonymous"}, "ip": "198.51.100.4"});
        assert_eq!(
            metadata_subject("user.registered", user, &json!({}), &anonymous),
            Some(user)
        );
        let start = json!({"user_id": user.to_string()});
        assert_eq!(
            metadata_subject("session.started", other, &start, &anonymous),
            Some(user)
        );
        assert_eq!(
            metadata_subject("org.created", other, &json!({}), &anonymous),
            None
        );
        let machine = json!({"actor": {"type": "api_key", "id": other.to_string()}});
        assert_eq!(
            metadata_subject("user.registered", user, &json!({}), &machine),
            None
        );

        let key = DataKey::generate();
        let mut metadata = json!({
            "actor": {"type": "anonymous"}, "request_id": "r1",
            "ip": "198.51.100.4", "user_agent": "curl/8",
        });
        let written = metadata.clone();
        seal_metadata(&key, user, &mut metadata);
        assert!(is_sealed(&metadata["ip"]) && is_sealed(&metadata["user_agent"]));
        assert_eq!(metadata["request_id"], "r1");
        // A metadata seal does not open as a payload field of the same name.
        let mut as_payload = json!({"ip": metadata["ip"].clone()});
        assert!(open_payload(Some(&key), user, "session.started", &mut as_payload).is_err());
        let mut opened = metadata.clone();
        open_metadata(Some(&key), user, &mut opened).unwrap();
        assert_eq!(opened, written);
        open_metadata(None, user, &mut metadata).unwrap();
        assert_eq!(metadata["ip"], ERASED);
    }

    #[test]
    fn only_the_listed_fields_are_personal() {
        let key = DataKey::generate();
        let user = Uuid::new_v4();
        let mut started = json!({
            "user_id": user.to_string(), "refresh_token_hash": "ab", "ip": "203.0.113.7",
            "user_agent": "curl/8", "expires_at": "2026-12-31T00:00:00Z",
        });
        assert_eq!(
            subject_of("session.started", Uuid::new_v4(), &started),
            Some(user)
        );
        seal_payload(&key, user, "session.started", &mut started);
        assert!(is_sealed(&started["ip"]) && is_sealed(&started["user_agent"]));
        assert_eq!(started["refresh_token_hash"], "ab");
        assert_eq!(started["user_id"], user.to_string());
        let mut revoked = json!({"reason": "x"});
        seal_payload(&key, user, "api_key.revoked", &mut revoked);
        assert_eq!(revoked, json!({"reason": "x"}));
        assert_eq!(subject_of("api_key.revoked", user, &revoked), None);
        assert_eq!(subject_of("user.renamed", user, &json!({})), Some(user));
    }
}
