//! The signing-key aggregate: the public half of a JWT signing key. The private
//! half never enters the log.

use super::{Aggregate, DomainError, DomainEvent, StreamType};
use serde::{Deserialize, Serialize};

/// Events of a signing-key stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum SigningKeyEvent {
    /// A key was generated; tokens may be signed with it.
    #[serde(rename = "signing_key.created")]
    Created {
        /// Key id, the JWT header's `kid`.
        kid: String,
        /// Always `EdDSA`.
        algorithm: String,
        /// The Ed25519 public key, base64url.
        public_key: String,
    },
    /// The key left the JWKS: every token it signed has expired.
    #[serde(rename = "signing_key.retired")]
    Retired {},
}

impl DomainEvent for SigningKeyEvent {}

/// Commands on a signing key.
#[derive(Debug, Clone)]
pub enum SigningKeyCommand {
    /// Record a generated key's public half.
    Create {
        /// Key id.
        kid: String,
        /// The public key, base64url.
        public_key: String,
    },
    /// Take the key out of the JWKS.
    Retire,
}

/// The state of one signing key.
#[derive(Debug, Clone, Default)]
pub struct SigningKeyState {
    exists: bool,
    retired: bool,
}

impl Aggregate for SigningKeyState {
    const STREAM_TYPE: StreamType = StreamType::SigningKey;
    type Event = SigningKeyEvent;
    type Command = SigningKeyCommand;

    fn decide(&self, command: &SigningKeyCommand) -> Result<Vec<SigningKeyEvent>, DomainError> {
        match command {
            SigningKeyCommand::Create { .. } if self.exists => Err(DomainError::AlreadyExists),
            SigningKeyCommand::Create { kid, public_key } => Ok(vec![SigningKeyEvent::Created {
                kid: kid.clone(),
                algorithm: "EdDSA".into(),
                public_key: public_key.clone(),
            }]),
            SigningKeyCommand::Retire if !self.exists => Err(DomainError::NotFound),
            SigningKeyCommand::Retire if self.retired => Ok(vec![]),
            SigningKeyCommand::Retire => Ok(vec![SigningKeyEvent::Retired {}]),
        }
    }

    fn evolve(mut self, event: &SigningKeyEvent) -> Self {
        match event {
            SigningKeyEvent::Created { .. } => self.exists = true,
            SigningKeyEvent::Retired {} => self.retired = true,
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::given;

    fn created() -> SigningKeyEvent {
        SigningKeyEvent::Created {
            kid: "k1".into(),
            algorithm: "EdDSA".into(),
            public_key: "pk".into(),
        }
    }

    #[test]
    fn a_key_is_created_once_and_retired_once() {
        given::<SigningKeyState>([])
            .when(SigningKeyCommand::Create {
                kid: "k1".into(),
                public_key: "pk".into(),
            })
            .then([created()]);
        given::<SigningKeyState>([created()])
            .when(SigningKeyCommand::Create {
                kid: "k1".into(),
                public_key: "pk".into(),
            })
            .then_err(DomainError::AlreadyExists);
        given::<SigningKeyState>([created()])
            .when(SigningKeyCommand::Retire)
            .then([SigningKeyEvent::Retired {}]);
        given::<SigningKeyState>([created(), SigningKeyEvent::Retired {}])
            .when(SigningKeyCommand::Retire)
            .then_nothing();
    }
}
