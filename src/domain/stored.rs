//! The stored form of events: decoding any stream's event, and upcasting old
//! payload versions to the current one before decoding.

use super::api_key::ApiKeyEvent;
use super::org::OrgEvent;
use super::session::SessionEvent;
use super::signing_key::SigningKeyEvent;
use super::user::UserEvent;
use super::DomainEvent;
use serde_json::Value;

/// An event of any aggregate, decoded from its stored form.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyEvent {
    /// A user event.
    User(UserEvent),
    /// An org event.
    Org(OrgEvent),
    /// An API-key event.
    ApiKey(ApiKeyEvent),
    /// A session event.
    Session(SessionEvent),
    /// A signing-key event.
    SigningKey(SigningKeyEvent),
}

/// A stored event that cannot be read by this version of vouch.
#[derive(Debug, thiserror::Error)]
#[error("cannot decode {event_type} v{schema_version}: {reason}")]
pub struct DecodeError {
    /// The stored type.
    pub event_type: String,
    /// The stored schema version.
    pub schema_version: i16,
    /// What could not be read.
    pub reason: String,
}

impl From<UserEvent> for AnyEvent {
    fn from(e: UserEvent) -> Self {
        Self::User(e)
    }
}

impl From<OrgEvent> for AnyEvent {
    fn from(e: OrgEvent) -> Self {
        Self::Org(e)
    }
}

impl From<ApiKeyEvent> for AnyEvent {
    fn from(e: ApiKeyEvent) -> Self {
        Self::ApiKey(e)
    }
}

impl From<SessionEvent> for AnyEvent {
    fn from(e: SessionEvent) -> Self {
        Self::Session(e)
    }
}

impl From<SigningKeyEvent> for AnyEvent {
    fn from(e: SigningKeyEvent) -> Self {
        Self::SigningKey(e)
    }
}

/// A stored payload: parsed, or still JSON text.
enum Payload<'a> {
    Value(Value),
    Json(&'a [u8]),
}

impl AnyEvent {
    /// Decodes a stored event, upcasting its payload first.
    pub fn decode(event_type: &str, schema_version: i16, data: Value) -> Result<Self, DecodeError> {
        let data = upcast(event_type, schema_version, data)
            .map_err(|reason| DecodeError::new(event_type, schema_version, reason))?;
        Self::typed(event_type, schema_version, Payload::Value(data))
    }

    /// Decodes a stored event from its payload's JSON text. A payload of the
    /// current shape is read straight into its event; an older one is parsed
    /// and upcast first, as [`AnyEvent::decode`] does.
    pub fn decode_json(
        event_type: &str,
        schema_version: i16,
        json: &[u8],
    ) -> Result<Self, DecodeError> {
        let fail = |reason: String| DecodeError::new(event_type, schema_version, reason);
        match upcaster(event_type, schema_version).map_err(fail)? {
            None => Self::typed(event_type, schema_version, Payload::Json(json)),
            Some(_) => {
                let data = serde_json::from_slice(json).map_err(|e| fail(e.to_string()))?;
                Self::decode(event_type, schema_version, data)
            }
        }
    }

    fn typed(
        event_type: &str,
        schema_version: i16,
        data: Payload<'_>,
    ) -> Result<Self, DecodeError> {
        fn read<E: DomainEvent>(t: &str, data: Payload<'_>) -> Result<E, serde_json::Error> {
            match data {
                Payload::Value(v) => E::from_stored(t, v),
                Payload::Json(j) => E::from_stored_json(t, j),
            }
        }
        let fail = |reason: String| DecodeError::new(event_type, schema_version, reason);
        let decoded = match event_type.split_once('.').map(|(s, _)| s) {
            Some("user") => read(event_type, data).map(Self::User),
            Some("org") => read(event_type, data).map(Self::Org),
            Some("api_key") => read(event_type, data).map(Self::ApiKey),
            Some("session") => read(event_type, data).map(Self::Session),
            Some("signing_key") => read(event_type, data).map(Self::SigningKey),
            _ => return Err(fail("unknown event type".into())),
        };
        decoded.map_err(|e| fail(e.to_string()))
    }
}

impl DecodeError {
    fn new(event_type: &str, schema_version: i16, reason: String) -> Self {
        Self {
            event_type: event_type.to_owned(),
            schema_version,
            reason,
        }
    }
}

/// A step that lifts a payload to the next shape.
type Upcaster = fn(&mut Value);

/// The step that lifts a stored payload of `schema_version` to the shape the
/// current code reads: `None` when it already has that shape.
fn upcaster(event_type: &str, schema_version: i16) -> Result<Option<Upcaster>, String> {
    match (event_type, schema_version) {
        // v1 -> v2: the hash algorithm is named; every v1 key hash was SHA-256.
        ("api_key.created", 1) => Ok(Some(|data| {
            if let Value::Object(map) = data {
                map.insert("hash_algorithm".into(), Value::String("sha256".into()));
            }
        })),
        // The other api_key events kept their v1 shape in v2.
        (t, 1 | 2) if t.starts_with("api_key.") => Ok(None),
        // v1 -> v2: a session names how it was signed in; every v1 session
        // was a password's.
        ("session.started", 1) => Ok(Some(|data| {
            if let Value::Object(map) = data {
                map.insert("amr".into(), serde_json::json!(["pwd"]));
            }
        })),
        (t, 1 | 2) if t.starts_with("session.") => Ok(None),
        (t, 1) if !t.starts_with("api_key.") && !t.starts_with("session.") => Ok(None),
        (t, v) => Err(format!("no upcaster for {t} schema version {v}")),
    }
}

/// Lifts a stored payload of `schema_version` to the version the current code reads.
///
/// Stored rows are never edited: when a payload changes shape, its event gets a
/// new schema version and a step here that turns the old shape into the new one.
pub fn upcast(event_type: &str, schema_version: i16, mut data: Value) -> Result<Value, String> {
    if let Some(step) = upcaster(event_type, schema_version)? {
        step(&mut data);
    }
    Ok(data)
}

/// Payload fields that hold secrets (as hashes) and never leave the database.
/// An action token (sealed, for the mailer) and its hash are among them.
/// So are a TOTP secret and the backup codes' hashes.
pub const REDACTED_FIELDS: [&str; 8] = [
    "password_hash",
    "refresh_token_hash",
    "key_hash",
    "token",
    "token_hash",
    "secret",
    "backup_code_hashes",
    "credential",
];

/// Replaces secret-bearing fields of a payload with `"[redacted]"`.
pub fn redact(mut data: Value) -> Value {
    if let Value::Object(map) = &mut data {
        for field in REDACTED_FIELDS {
            if let Some(v) = map.get_mut(field) {
                *v = Value::String("[redacted]".into());
            }
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_by_type_prefix() {
        let e = AnyEvent::decode("api_key.revoked", 1, json!({"reason": null})).unwrap();
        assert_eq!(e, AnyEvent::ApiKey(ApiKeyEvent::Revoked { reason: None }));
        assert!(AnyEvent::decode("widget.made", 1, json!({})).is_err());
        assert!(AnyEvent::decode("user.enabled", 9, json!({})).is_err());
    }

    #[test]
    fn a_v1_key_payload_is_read_as_v2() {
        let v1 = json!({
            "org_id": "0192f0c1-0000-7000-8000-000000000001", "name": "ci", "prefix": "vk_abcdefghi",
            "key_hash": "ab", "scopes": ["deploy"], "expires_at": null,
        });
        let e = AnyEvent::decode("api_key.created", 1, v1.clone()).unwrap();
        let AnyEvent::ApiKey(ApiKeyEvent::Created { hash_algorithm, .. }) = e else {
            panic!("{e:?}")
        };
        assert_eq!(
            hash_algorithm,
            crate::domain::api_key::KeyHashAlgorithm::Sha256
        );
        // Without the upcaster the v1 payload would not decode as v2.
        assert!(AnyEvent::decode("api_key.created", 2, v1).is_err());
        assert!(AnyEvent::decode("api_key.revoked", 1, json!({"reason": null})).is_ok());
        assert!(AnyEvent::decode("user.enabled", 2, json!({})).is_err());
    }

    #[test]
    fn a_v1_session_start_was_a_password_sign_in() {
        use crate::domain::session::AuthMethod;
        let v1 = json!({
            "user_id": "0192f0c1-0000-7000-8000-000000000001", "refresh_token_hash": "ab",
            "expires_at": "2026-01-01T00:00:00Z", "ip": null, "user_agent": null,
        });
        let AnyEvent::Session(SessionEvent::Started { amr, .. }) =
            AnyEvent::decode("session.started", 1, v1.clone()).unwrap()
        else {
            panic!("a session start")
        };
        assert_eq!(amr, vec![AuthMethod::Pwd]);
        assert!(AnyEvent::decode("session.started", 2, v1).is_err());
        let AnyEvent::Session(SessionEvent::Revoked { .. }) =
            AnyEvent::decode("session.revoked", 1, json!({"reason": "logout"})).unwrap()
        else {
            panic!("a revocation")
        };
    }

    #[test]
    fn json_text_decodes_as_the_parsed_payload_does() {
        let cases = [
            ("api_key.revoked", 1, json!({"reason": "leaked"})),
            ("org.renamed", 1, json!({"name": "Acme \"Labs\""})),
            (
                "api_key.created",
                1,
                json!({
                    "org_id": "0192f0c1-0000-7000-8000-000000000001", "name": "ci",
                    "prefix": "vk_abcdefghi", "key_hash": "ab", "scopes": ["deploy"], "expires_at": null,
                }),
            ),
        ];
        for (t, v, data) in cases {
            let text = serde_json::to_vec(&data).unwrap();
            let from_text = AnyEvent::decode_json(t, v, &text).unwrap();
            assert_eq!(from_text, AnyEvent::decode(t, v, data).unwrap(), "{t}");
        }
        assert!(AnyEvent::decode_json("api_key.revoked", 1, b"{\"reason\": 7}").is_err());
        assert!(AnyEvent::decode_json("api_key.revoked", 1, b"{}}").is_err());
        assert!(AnyEvent::decode_json("widget.made", 1, b"{}").is_err());
        assert!(AnyEvent::decode_json("user.enabled", 9, b"{}").is_err());
    }

    #[test]
    fn redaction_hides_hashes() {
        let out =
            redact(json!({"email": "a@b.co", "password_hash": "$argon2id$..", "key_hash": "ab"}));
        assert_eq!(out["email"], "a@b.co");
        assert_eq!(out["password_hash"], "[redacted]");
        assert_eq!(out["key_hash"], "[redacted]");
    }
}
