//! The audit form of an event and its canonical bytes.
//!
//! Secrets are replaced by a commitment, `"sha256:" + hex(SHA-256(value))`, so
//! that the audit form can leave the database (exports) and still be chained:
//! tampering with a stored hash changes its commitment. Sealed personal
//! fields are replaced by a digest of their stored form, so that an export can
//! show them opened, or erased, beside the digest it was chained with.

use crate::auth::api_key::hex;
use crate::domain::stored::REDACTED_FIELDS;
use crate::pii::fields::{personal_fields, METADATA_FIELDS, SEALED_PREFIX};
use crate::store::events::RecordedEvent;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// The chain value before the first event.
pub const GENESIS: [u8; 32] = [0; 32];

/// Replaces secret fields of a payload by their commitments.
pub fn commit_secrets(mut data: Value) -> Value {
    if let Value::Object(map) = &mut data {
        for field in REDACTED_FIELDS {
            if let Some(v) = map.get_mut(field) {
                let text = match &*v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                *v = Value::String(format!("sha256:{}", hex(&Sha256::digest(text.as_bytes()))));
            }
        }
    }
    data
}

/// The prefix of a sealed field's digest in the audit form.
pub const SEALED_DIGEST_PREFIX: &str = "pii:v1:sha256:";

/// Where personal fields can stand in an event of `event_type`: `("data",
/// field)` for its payload's, `("metadata", field)` for its caller's.
pub fn personal_paths(event_type: &str) -> impl Iterator<Item = (&'static str, &'static str)> {
    let data = personal_fields(event_type).iter().map(|f| ("data", *f));
    data.chain(METADATA_FIELDS.iter().map(|f| ("metadata", *f)))
}

/// Whether `value` is a well-formed sealed field's digest.
pub fn is_sealed_digest(value: &str) -> bool {
    value.strip_prefix(SEALED_DIGEST_PREFIX).is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The audit form of an event: its fixed fields, its committed payload, and
/// each sealed personal field as its digest.
pub fn audit_form(e: &RecordedEvent) -> Value {
    audit_form_with_digests(e).0
}

/// [`audit_form`], and the digests it holds by path (`"data.email"`,
/// `"metadata.ip"`, ...): what an export needs to show the fields otherwise.
pub fn audit_form_with_digests(e: &RecordedEvent) -> (Value, Map<String, Value>) {
    let mut form = json!({
        "event_id": e.event_id,
        "stream_type": e.stream_type,
        "stream_id": e.stream_id,
        "version": e.version,
        "event_type": e.event_type,
        "schema_version": e.schema_version,
        "org_id": e.org_id,
        "data": commit_secrets(e.data.clone()),
        "metadata": e.metadata,
        "occurred_at": e.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    });
    let mut digests = Map::new();
    for (section, field) in personal_paths(&e.event_type) {
        let Some(value) = form[section].get_mut(field) else {
            continue;
        };
        let Some(sealed) = value.as_str().filter(|s| s.starts_with(SEALED_PREFIX)) else {
            continue;
        };
        let digest = format!(
            "{SEALED_DIGEST_PREFIX}{}",
            hex(&Sha256::digest(sealed.as_bytes()))
        );
        *value = Value::String(digest.clone());
        digests.insert(format!("{section}.{field}"), Value::String(digest));
    }
    (form, digests)
}

/// The JSON Canonicalization Scheme (RFC 8785) bytes of a value.
pub fn canonical(value: &Value) -> Vec<u8> {
    // A serde_json::Value always serialises.
    serde_jcs::to_vec(value).unwrap_or_default()
}

/// `SHA-256(previous || canonical)`.
pub fn link(previous: &[u8; 32], canonical: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update(previous)
        .chain_update(canonical)
        .finalize()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_bytes_do_not_depend_on_key_order_or_whitespace() {
        let a: Value =
            serde_json::from_str(r#"{"b": 1, "a": [true, null, "x"], "c": {"z": 1.0, "y": "é"}}"#)
                .unwrap();
        let b: Value =
            serde_json::from_str(r#"{"c":{"y":"é","z":1.0},"a":[true,null,"x"],"b":1}"#).unwrap();
        assert_eq!(canonical(&a), canonical(&b));
        assert_eq!(
            String::from_utf8(canonical(&a)).unwrap(),
            r#"{"a":[true,null,"x"],"b":1,"c":{"y":"é","z":1}}"#
        );
    }

    #[test]
    fn secrets_become_commitments() {
        let data = commit_secrets(json!({"email": "a@b.co", "password_hash": "$argon2id$x"}));
        assert_eq!(data["email"], "a@b.co");
        let c = data["password_hash"].as_str().unwrap();
        assert!(c.starts_with("sha256:") && c.len() == 71 && !c.contains("argon2"));
    }

    #[test]
    fn sealed_fields_enter_the_form_as_digests_of_their_stored_string() {
        let sealed = "pii:v1:AAAA";
        let e = RecordedEvent {
            position: 1,
            transaction_id: 1,
            event_id: uuid::Uuid::nil(),
            stream_type: "user".into(),
            stream_id: uuid::Uuid::nil(),
            version: 1,
            event_type: "user.registered".into(),
            schema_version: 1,
            org_id: None,
            data: json!({"email": sealed, "name": null, "password_hash": "$argon2id$x"}),
            metadata: json!({"ip": sealed, "user_agent": "plain/1.0", "request_id": "r"}),
            occurred_at: chrono::DateTime::UNIX_EPOCH,
        };
        let (form, digests) = audit_form_with_digests(&e);
        let digest = format!("pii:v1:sha256:{}", hex(&Sha256::digest(sealed.as_bytes())));
        assert_eq!(form["data"]["email"], digest.as_str());
        assert_eq!(form["data"]["name"], Value::Null);
        assert_eq!(form["metadata"]["ip"], digest.as_str());
        // Not sealed (a log from before sealing): as stored.
        assert_eq!(form["metadata"]["user_agent"], "plain/1.0");
        assert_eq!(
            digests.keys().collect::<Vec<_>>(),
            ["data.email", "metadata.ip"]
        );
        assert!(is_sealed_digest(&digest));
        assert!(!is_sealed_digest("pii:v1:sha256:XYZ"));
    }

    #[test]
    fn links_chain() {
        let h1 = link(&GENESIS, b"one");
        assert_ne!(link(&h1, b"two"), link(&GENESIS, b"two"));
    }
}
