//! The message body: a CloudEvents 1.0 structured-mode JSON event.

use crate::domain::stored::redact;
use crate::store::events::RecordedEvent;
use serde_json::{json, Value};

/// The content type of every message.
pub const CONTENT_TYPE: &str = "application/cloudevents+json";

/// The CloudEvent of a log event, with secrets redacted from `data`.
pub fn to_cloudevent(e: &RecordedEvent) -> Value {
    let actor = &e.metadata["actor"];
    json!({
        "specversion": "1.0",
        "id": e.event_id,
        "source": "vouch",
        "type": format!("vouch.{}", e.event_type),
        "subject": e.stream_id,
        "time": e.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "datacontenttype": "application/json",
        "data": redact(e.data.clone()),
        "position": e.position,
        "streamtype": e.stream_type,
        "streamversion": e.version,
        "orgid": e.org_id,
        "schemaversion": e.schema_version,
        "actortype": actor["type"],
        "actorid": actor["id"],
        "requestid": e.metadata["request_id"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn a_cloudevent_has_the_required_attributes_and_no_secrets() {
        let e = RecordedEvent {
            position: 7,
            transaction_id: 900,
            event_id: Uuid::from_u128(1),
            stream_type: "user".into(),
            stream_id: Uuid::from_u128(2),
            version: 1,
            event_type: "user.registered".into(),
            schema_version: 1,
            org_id: None,
            data: json!({"email": "a@b.co", "password_hash": "$argon2id$..."}),
            metadata: json!({"actor": {"type": "anonymous"}, "request_id": "r1"}),
            occurred_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        };
        let ce = to_cloudevent(&e);
        assert_eq!(ce["specversion"], "1.0");
        assert_eq!(ce["type"], "vouch.user.registered");
        assert_eq!(ce["source"], "vouch");
        assert_eq!(ce["subject"], Uuid::from_u128(2).to_string());
        assert_eq!(ce["streamversion"], 1);
        assert_eq!(ce["time"], "2023-11-14T22:13:20.000000Z");
        assert_eq!(ce["data"]["password_hash"], "[redacted]");
        assert!(!ce.to_string().contains("argon2"));
    }
}
