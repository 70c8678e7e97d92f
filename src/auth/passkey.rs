//! Passkeys (WebAuthn), on `webauthn-rs`: the relying party named by
//! `VOUCH_PUBLIC_URL` (its host is the RP id, its origin the only origin
//! accepted), the registration and assertion ceremonies, and the state a
//! ceremony keeps between its two requests, as bytes to seal and store.
//!
//! Every check of the specification is the library's: the origin and RP id,
//! the challenge, user verification (always required: a passkey is a factor
//! of its own), the signature, and the signature counter (a counter that does
//! not grow past a stored non-zero one is refused: a cloned authenticator).
//! Registrations ask for no attestation (`none`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use thiserror::Error;
use uuid::Uuid;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Webauthn, WebauthnBuilder,
};

/// The longest credential id WebAuthn allows, in bytes.
const MAX_CREDENTIAL_ID_BYTES: usize = 1023;

/// Why passkeys cannot be offered with these settings.
#[derive(Debug, Error)]
pub enum RelyingPartyError {
    /// The public URL is not an absolute URL.
    #[error("VOUCH_PUBLIC_URL is not a URL: {0}")]
    Url(#[from] url::ParseError),
    /// The public URL names no domain (passkeys are bound to one, not to an
    /// IP address).
    #[error("VOUCH_PUBLIC_URL names no domain (passkeys need one, e.g. http://localhost:8080)")]
    NoDomain,
    /// The library refused the RP id and origin.
    #[error("the passkey relying party: {0}")]
    Config(String),
}

/// A ceremony the library or the client's answer refused.
#[derive(Debug, Error)]
pub enum CeremonyError {
    /// The client's answer is not a WebAuthn credential of the expected shape.
    #[error("credential: {0}")]
    Malformed(String),
    /// The ceremony failed verification (origin, challenge, signature,
    /// counter, user verification, unknown credential...).
    #[error("the passkey was refused: {0}")]
    Refused(String),
    /// A stored state or credential no longer reads (a bug, or another version).
    #[error("stored passkey state: {0}")]
    State(String),
}

/// A verified registration: what to store of the new passkey.
#[derive(Debug)]
pub struct NewPasskey {
    /// The credential id, base64url.
    pub credential_id: String,
    /// The credential, serialised.
    pub credential: Value,
    /// Whether the authenticator may sync it (a software-bound key).
    pub backup_eligible: bool,
}

/// A verified assertion.
#[derive(Debug)]
pub struct VerifiedAssertion {
    /// The credential id that signed, base64url.
    pub credential_id: String,
    /// The credential as it stands after this use (counter, backup state).
    pub credential: Value,
    /// The signature counter reported.
    pub counter: u32,
    /// Whether the key may be synced (`swk`) rather than bound to its device (`hwk`).
    pub backup_eligible: bool,
}

/// What a ceremony's first request answers: the options for
/// `navigator.credentials.create()` / `.get()`, and the state to keep.
pub struct Started {
    /// The options, as JSON (`{"publicKey": {...}}`, binary fields base64url).
    pub options: Value,
    /// The state, serialised; to be sealed and stored until the answer.
    pub state: Vec<u8>,
}

/// The relying party: vouch as passkeys see it.
#[derive(Debug, Clone)]
pub struct RelyingParty {
    webauthn: Webauthn,
}

/// The base64url form of a credential id.
pub fn encode_credential_id(raw: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(raw)
}

fn json<T: Serialize>(value: &T) -> Result<Value, CeremonyError> {
    serde_json::to_value(value).map_err(|e| CeremonyError::State(e.to_string()))
}

fn bytes<T: Serialize>(value: &T) -> Result<Vec<u8>, CeremonyError> {
    serde_json::to_vec(value).map_err(|e| CeremonyError::State(e.to_string()))
}

fn read_state<T: DeserializeOwned>(state: &[u8]) -> Result<T, CeremonyError> {
    serde_json::from_slice(state).map_err(|e| CeremonyError::State(e.to_string()))
}

fn passkey(credential: &Value) -> Result<Passkey, CeremonyError> {
    serde_json::from_value(credential.clone()).map_err(|e| CeremonyError::State(e.to_string()))
}

fn answer<T: DeserializeOwned>(response: &Value) -> Result<T, CeremonyError> {
    serde_json::from_value(response.clone()).map_err(|e| CeremonyError::Malformed(e.to_string()))
}

fn refused(e: impl std::fmt::Display) -> CeremonyError {
    CeremonyError::Refused(e.to_string())
}

/// The signature counter a stored credential last saw.
fn stored_counter(credential: &Value) -> u64 {
    credential
        .pointer("/cred/counter")
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// Whether a stored credential may be synced, read from its serialised form.
fn backup_eligible(credential: &Value) -> bool {
    credential
        .pointer("/cred/backup_eligible")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

impl RelyingParty {
    /// The relying party of `public_url`: RP id its host, origin its origin.
    pub fn from_public_url(public_url: &str) -> Result<Self, RelyingPartyError> {
        let url = Url::parse(public_url)?;
        let domain = url.domain().ok_or(RelyingPartyError::NoDomain)?.to_owned();
        let origin = Url::parse(&url.origin().ascii_serialization())?;
        let webauthn = WebauthnBuilder::new(&domain, &origin)
            .and_then(|b| b.rp_name("vouch").build())
            .map_err(|e| RelyingPartyError::Config(e.to_string()))?;
        Ok(Self { webauthn })
    }

    /// Starts registering a passkey of `user_id`, shown to the user as
    /// `email`; `exclude` (base64url ids) are the passkeys they hold already.
    pub fn start_registration(
        &self,
        user_id: Uuid,
        email: &str,
        exclude: &[Value],
    ) -> Result<Started, CeremonyError> {
        let exclude = exclude
            .iter()
            .map(|c| passkey(c).map(|p| p.cred_id().clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let (options, state) = self
            .webauthn
            .start_passkey_registration(user_id, email, email, Some(exclude))
            .map_err(refused)?;
        let mut options = json(&options)?;
        // Ask for a discoverable credential where the device can keep one,
        // so that the passkey also signs in alone; a device that cannot
        // still makes one for the second factor.
        if let Some(selection) = options
            .pointer_mut("/publicKey/authenticatorSelection")
            .and_then(Value::as_object_mut)
        {
            selection.insert("residentKey".into(), "preferred".into());
        }
        Ok(Started {
            options,
            state: bytes(&state)?,
        })
    }

    /// Whether a registration answer has the shape of one (nothing verified).
    pub fn check_registration(&self, response: &Value) -> Result<(), CeremonyError> {
        answer::<RegisterPublicKeyCredential>(response).map(|_| ())
    }

    /// Verifies the authenticator's answer to a registration.
    pub fn finish_registration(
        &self,
        state: &[u8],
        response: &Value,
    ) -> Result<NewPasskey, CeremonyError> {
        let state: PasskeyRegistration = read_state(state)?;
        let response: RegisterPublicKeyCredential = answer(response)?;
        let passkey = self
            .webauthn
            .finish_passkey_registration(&response, &state)
            .map_err(refused)?;
        // WebAuthn's limit; a longer id (the library takes up to 4 KiB) would
        // not fit the unique index either.
        if passkey.cred_id().len() > MAX_CREDENTIAL_ID_BYTES {
            return Err(CeremonyError::Refused(format!(
                "a credential id is at most {MAX_CREDENTIAL_ID_BYTES} bytes"
            )));
        }
        let credential = json(&passkey)?;
        Ok(NewPasskey {
            credential_id: encode_credential_id(passkey.cred_id().as_ref()),
            backup_eligible: backup_eligible(&credential),
            credential,
        })
    }

    /// Starts an assertion by one of `credentials` (a second factor).
    pub fn start_assertion(&self, credentials: &[Value]) -> Result<Started, CeremonyError> {
        let passkeys = credentials
            .iter()
            .map(passkey)
            .collect::<Result<Vec<_>, _>>()?;
        let (options, state) = self
            .webauthn
            .start_passkey_authentication(&passkeys)
            .map_err(refused)?;
        Ok(Started {
            options: json(&options)?,
            state: bytes(&state)?,
        })
    }

    /// Starts an assertion by any passkey of this relying party (a sign-in
    /// with a passkey alone: the authenticator says whose it is).
    pub fn start_discoverable(&self) -> Result<Started, CeremonyError> {
        let (options, state) = self
            .webauthn
            .start_discoverable_authentication()
            .map_err(refused)?;
        Ok(Started {
            options: json(&options)?,
            state: bytes(&state)?,
        })
    }

    /// Reads an assertion: the credential id (base64url) that signed, and
    /// the user handle it names (a discoverable credential's user id).
    pub fn identify(&self, response: &Value) -> Result<(String, Option<Uuid>), CeremonyError> {
        let response: PublicKeyCredential = answer(response)?;
        let user = response
            .get_user_unique_id()
            .and_then(|b| Uuid::from_slice(b).ok());
        Ok((encode_credential_id(response.get_credential_id()), user))
    }

    /// Verifies an assertion against a second factor's state.
    pub fn finish_assertion(
        &self,
        state: &[u8],
        response: &Value,
        credential: &Value,
    ) -> Result<VerifiedAssertion, CeremonyError> {
        let state: PasskeyAuthentication = read_state(state)?;
        let response: PublicKeyCredential = answer(response)?;
        let result = self
            .webauthn
            .finish_passkey_authentication(&response, &state)
            .map_err(refused)?;
        Self::verified(credential, &result)
    }

    /// Verifies an assertion against a discoverable sign-in's state, signed
    /// by `credential` (found by the id the assertion names).
    pub fn finish_discoverable(
        &self,
        state: &[u8],
        response: &Value,
        credential: &Value,
    ) -> Result<VerifiedAssertion, CeremonyError> {
        let state: DiscoverableAuthentication = read_state(state)?;
        let response: PublicKeyCredential = answer(response)?;
        let stored = passkey(credential)?;
        let result = self
            .webauthn
            .finish_discoverable_authentication_v2(&response, state, &stored)
            .map_err(refused)?;
        Self::verified(credential, &result)
    }

    /// The assertion's outcome for the credential as stored now: the
    /// library compared the counter with the credential its ceremony began
    /// with, and another sign-in may have moved it since.
    fn verified(
        current: &Value,
        result: &webauthn_rs::prelude::AuthenticationResult,
    ) -> Result<VerifiedAssertion, CeremonyError> {
        let mut stored = passkey(current)?;
        if result.cred_id() != stored.cred_id() {
            return Err(CeremonyError::Refused("another credential signed".into()));
        }
        let (counter, last) = (u64::from(result.counter()), stored_counter(current));
        if (counter > 0 || last > 0) && counter <= last {
            return Err(CeremonyError::Refused(
                "the signature counter did not grow: a cloned authenticator?".into(),
            ));
        }
        stored.update_credential(result);
        Ok(VerifiedAssertion {
            credential_id: encode_credential_id(stored.cred_id().as_ref()),
            credential: json(&stored)?,
            counter: result.counter(),
            backup_eligible: result.backup_eligible(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relying_party_is_the_public_urls_host_and_origin() {
        assert!(RelyingParty::from_public_url("https://app.example.org/account").is_ok());
        assert!(RelyingParty::from_public_url("http://localhost:8080").is_ok());
        assert!(matches!(
            RelyingParty::from_public_url("http://127.0.0.1:8080"),
            Err(RelyingPartyError::NoDomain)
        ));
        assert!(RelyingParty::from_public_url("not a url").is_err());
    }

    #[test]
    fn a_registration_offers_the_relying_party_and_requires_user_verification() {
        let rp = RelyingParty::from_public_url("https://app.example.org/account").unwrap();
        let started = rp
            .start_registration(Uuid::nil(), "ada@example.org", &[])
            .unwrap();
        let options = &started.options["publicKey"];
        assert_eq!(options["rp"]["id"], "app.example.org");
        assert_eq!(options["user"]["name"], "ada@example.org");
        assert_eq!(
            options["authenticatorSelection"]["userVerification"],
            "required"
        );
        assert_eq!(options["attestation"], "none");
        assert_eq!(
            options["authenticatorSelection"]["residentKey"],
            "preferred"
        );
        assert!(!started.state.is_empty());
    }

    #[test]
    fn answers_of_the_wrong_shape_are_malformed_not_refused() {
        let rp = RelyingParty::from_public_url("https://app.example.org").unwrap();
        let started = rp.start_discoverable().unwrap();
        let err = rp
            .finish_discoverable(&started.state, &serde_json::json!({"id": 1}), &Value::Null)
            .unwrap_err();
        assert!(matches!(err, CeremonyError::Malformed(_)), "{err}");
        assert!(matches!(
            rp.identify(&serde_json::json!([])),
            Err(CeremonyError::Malformed(_))
        ));
    }
}
