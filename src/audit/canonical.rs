//! The audit form of an event and its canonical bytes.
//!
//! Secrets are replaced by a commitment, `"sha256:" + hex(SHA-256(value))`, so
//! that the audit form can leave the database (exports) and still be chained:
//! tampering with a stored hash changes its commitment.

use crate::auth::api_key::hex;
use crate::domain::stored::REDACTED_FIELDS;
use crate::store::events::RecordedEvent;
use serde_json::{json, Value};
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

/// The audit form of an event: its fixed fields and its committed payload.
pub fn audit_form(e: &RecordedEvent) -> Value {
    json!({
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
    })
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
    fn links_chain() {
        let h1 = link(&GENESIS, b"one");
        assert_ne!(link(&h1, b"two"), link(&GENESIS, b"two"));
    }
}
