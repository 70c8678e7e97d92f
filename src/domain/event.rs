use serde::{de::DeserializeOwned, Serialize};
use std::fmt;

/// The kind of stream an event belongs to, stored in `auth_events.stream_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamType {
    /// A user account.
    User,
    /// An organisation with its members.
    Org,
    /// An API key.
    ApiKey,
    /// A sign-in session.
    Session,
    /// A JWT signing key (public part only).
    SigningKey,
}

impl StreamType {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Org => "org",
            Self::ApiKey => "api_key",
            Self::Session => "session",
            Self::SigningKey => "signing_key",
        }
    }
}

impl fmt::Display for StreamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event of one aggregate, stored as `(event_type, data)`.
///
/// Implementors are serde enums tagged `#[serde(tag = "type", content = "data")]`
/// whose variants are renamed to the stored event types (e.g. `api_key.revoked`):
/// that rename is the one place an event type's name is written.
pub trait DomainEvent: Serialize + DeserializeOwned + Clone + fmt::Debug {
    /// The schema version this code writes for this event's type (1 unless
    /// its payload changed shape; see `stored::upcast`).
    fn schema_version(&self) -> i16 {
        1
    }

    /// Splits the event into its stored type and payload.
    fn to_stored(&self) -> Result<(String, serde_json::Value), serde_json::Error> {
        let mut value = serde_json::to_value(self)?;
        let event_type = match value.get("type") {
            Some(serde_json::Value::String(t)) => t.clone(),
            _ => {
                return Err(serde::ser::Error::custom(
                    "an event serialises with its type",
                ))
            }
        };
        let data = value
            .get_mut("data")
            .map(serde_json::Value::take)
            .unwrap_or_else(|| serde_json::Value::Object(Default::default()));
        Ok((event_type, data))
    }

    /// Rebuilds an event from its stored type and (already upcast) payload.
    ///
    /// The type is handed to serde before the payload, so the payload is read
    /// straight into its variant instead of being buffered first.
    fn from_stored(event_type: &str, data: serde_json::Value) -> Result<Self, serde_json::Error> {
        use serde::de::value::MapDeserializer;
        use serde_json::Value;
        let entries = [
            (Value::from("type"), Value::from(event_type)),
            (Value::from("data"), data),
        ];
        Self::deserialize(MapDeserializer::new(entries.into_iter()))
    }

    /// Rebuilds an event from its stored type and payload as JSON text (a
    /// payload that needs no upcasting), without building a `Value` first.
    fn from_stored_json(event_type: &str, json: &[u8]) -> Result<Self, serde_json::Error> {
        let mut doc = Vec::with_capacity(json.len() + event_type.len() + 20);
        doc.extend_from_slice(b"{\"type\":");
        serde_json::to_writer(&mut doc, event_type)?;
        doc.extend_from_slice(b",\"data\":");
        doc.extend_from_slice(json);
        doc.push(b'}');
        serde_json::from_slice(&doc)
    }
}
