//! Access tokens: the verifier never accepts a forgery.
//!
//! Whatever `jwt::verify` accepts must, read independently, have the header
//! `alg` `EdDSA` with the expected `kid` and no `crit`, a signature that
//! verifies strictly under the one trusted Ed25519 key, the expected `iss` and
//! `aud`, an `exp` after now and no `nbf` after now, and the returned claims
//! must be the ones in the payload.
//!
//! Input: the first byte picks a mode. Even: the rest is a token, as text.
//! Odd: the rest describes claims, a signer (the trusted key, or another one
//! under the trusted `kid`) and up to four mutations of the signed token
//! (replaced header, payload or signature segments, flipped signature bits,
//! a malleated `S`, re-signing, raw edits, other base64 alphabets). Then
//! anything accepted must also be exactly a header and payload that this
//! input had signed with the trusted key, with that very signature; and a
//! token signed with the trusted key and valid claims, unmutated, must be
//! accepted with its claims.

use super::input::Input;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde_json::{json, Value};
use std::sync::LazyLock;
use uuid::Uuid;
use vouch::auth::jwt::{self, Claims, Expectation, JwtError};

const ISSUER: &str = "vouch";
const AUDIENCE: &str = "apps";
const NOW: i64 = 1_700_000_000;
const EXPECT: Expectation<'static> = Expectation {
    issuer: ISSUER,
    audience: AUDIENCE,
    now: NOW,
};
const KID: &str = "k1";

static TRUSTED: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::from_bytes(&[7; 32]));
static TRUSTED_PUBLIC: LazyLock<VerifyingKey> = LazyLock::new(|| TRUSTED.verifying_key());
static ATTACKER: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::from_bytes(&[9; 32]));

/// The group order L of Ed25519, little-endian.
const ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// Runs one input.
pub fn check(data: &[u8]) {
    let mut input = Input::new(data);
    if input.byte().is_multiple_of(2) {
        let text = String::from_utf8_lossy(input.rest());
        if let Ok(claims) = verify(&text, KID) {
            assert_sound(&text, KID, &claims);
        }
    } else {
        mutated(&mut input);
    }
}

fn verify(token: &str, kid: &str) -> Result<Claims, JwtError> {
    let public = *TRUSTED_PUBLIC;
    jwt::verify(token, |k| (k == kid).then_some(public), &EXPECT)
}

/// Checks an accepted token against an independent reading of it.
fn assert_sound(token: &str, kid: &str, claims: &Claims) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "accepted {token:?}");
    let json = |part: &str| -> Value {
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .unwrap_or_else(|e| panic!("accepted bad base64 {part:?}: {e}"));
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("accepted bad JSON: {e}"))
    };
    let header = json(parts[0]);
    assert_eq!(header["alg"], "EdDSA", "accepted header {header}");
    assert_eq!(header["kid"], kid, "accepted header {header}");
    assert!(
        header.get("crit").is_none_or(Value::is_null),
        "accepted header {header}"
    );
    let signature = URL_SAFE_NO_PAD
        .decode(parts[2])
        .ok()
        .and_then(|s| Signature::from_slice(&s).ok())
        .unwrap_or_else(|| panic!("accepted signature {:?}", parts[2]));
    let signing_input = format!("{}.{}", parts[0], parts[1]);
    assert!(
        TRUSTED_PUBLIC
            .verify_strict(signing_input.as_bytes(), &signature)
            .is_ok(),
        "accepted a signature the trusted key did not make: {token:?}"
    );
    let payload = json(parts[1]);
    assert_eq!(payload["iss"], ISSUER, "accepted payload {payload}");
    let aud_ok = match &payload["aud"] {
        Value::String(a) => a == AUDIENCE,
        Value::Array(list) => list.iter().any(|a| a == AUDIENCE),
        _ => false,
    };
    assert!(aud_ok, "accepted payload {payload}");
    let exp = payload["exp"].as_i64();
    assert!(exp.is_some_and(|e| e > NOW), "accepted payload {payload}");
    assert!(
        payload["nbf"].is_null() || payload["nbf"].as_i64().is_some_and(|n| n <= NOW),
        "accepted payload {payload}"
    );
    let uuid = |name: &str| payload[name].as_str().and_then(|s| Uuid::parse_str(s).ok());
    assert_eq!(claims.iss, ISSUER);
    assert_eq!(claims.aud, AUDIENCE);
    assert_eq!(Some(claims.sub), uuid("sub"));
    assert_eq!(Some(claims.sid), uuid("sid"));
    assert_eq!(Some(claims.jti), uuid("jti"));
    assert_eq!(Some(claims.iat), payload["iat"].as_i64());
    assert_eq!(Some(claims.exp), exp);
}

/// A string from a short list, or from the input.
fn pick(input: &mut Input<'_>, choices: &[&str]) -> String {
    match choices.get(usize::from(input.byte()) % (choices.len() + 1)) {
        Some(c) => (*c).to_owned(),
        None => String::from_utf8_lossy(input.bytes()).into_owned(),
    }
}

fn claims_from(input: &mut Input<'_>) -> Claims {
    Claims {
        iss: pick(input, &[ISSUER, ISSUER, "vouch ", "Vouch", "mallory", ""]),
        aud: pick(input, &[AUDIENCE, AUDIENCE, "apps ", "APPS", ""]),
        sub: Uuid::from_u128(input.u128()),
        sid: Uuid::from_u128(input.u128()),
        iat: NOW - i64::from(input.byte()),
        exp: match input.byte() % 5 {
            0 => input.i64(),
            1 => NOW,
            2 => NOW - 1,
            _ => NOW + 1 + i64::from(input.byte()),
        },
        jti: Uuid::from_u128(input.u128()),
        amr: vec![pick(input, &["pwd", "otp", "mfa", ""])],
    }
}

/// A token being mutated, with every (signing input, signature) that the
/// trusted key made for it.
struct Forge {
    token: String,
    signed: Vec<(String, Vec<u8>)>,
}

impl Forge {
    fn segments(&self) -> Vec<String> {
        let mut parts: Vec<String> = self.token.split('.').map(str::to_owned).collect();
        parts.resize(parts.len().max(3), String::new());
        parts
    }

    fn set(&mut self, index: usize, segment: String) {
        let mut parts = self.segments();
        parts[index] = segment;
        self.token = parts.join(".");
    }

    fn signature(&self) -> Vec<u8> {
        URL_SAFE_NO_PAD
            .decode(&self.segments()[2])
            .unwrap_or_default()
    }

    fn sign(&mut self, key: &SigningKey) {
        let parts = self.segments();
        let signing_input = format!("{}.{}", parts[0], parts[1]);
        let signature = key.sign(signing_input.as_bytes()).to_bytes().to_vec();
        self.set(2, URL_SAFE_NO_PAD.encode(&signature));
        if key == &*TRUSTED {
            self.signed.push((signing_input, signature));
        }
    }
}

fn header_from(input: &mut Input<'_>, kid: &str) -> Vec<u8> {
    let k = Value::from(kid);
    let text = match input.byte() % 11 {
        0 => format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":{k}}}"#),
        1 => format!(r#"{{"alg":"none","kid":{k}}}"#),
        2 => format!(r#"{{"alg":"HS256","kid":{k}}}"#),
        3 => format!(r#"{{"alg":"EdDSA","kid":{k},"crit":["exp"]}}"#),
        4 => format!(r#"{{"alg":"EdDSA","kid":{k},"crit":null}}"#),
        5 => r#"{"alg":"EdDSA"}"#.to_owned(),
        6 => format!(r#"{{"alg":"EdDSA","kid":{k},"alg":"none"}}"#),
        7 => format!(r#"{{"alg":"eddsa","kid":{k}}}"#),
        8 => r#"{"alg":"EdDSA","kid":"k2"}"#.to_owned(),
        9 => format!(r#"{{"alg":"EdDSA","kid":[{k}]}}"#),
        _ => return input.bytes().to_vec(),
    };
    text.into_bytes()
}

fn payload_from(input: &mut Input<'_>, claims: &Claims) -> Vec<u8> {
    let mut value = json!(claims);
    let other = Value::from(String::from_utf8_lossy(input.bytes()).into_owned());
    match input.byte() % 12 {
        0 => value["aud"] = json!([AUDIENCE, other]),
        1 => value["aud"] = json!([other]),
        2 => value["aud"] = json!([other, AUDIENCE, 5]),
        3 => value["nbf"] = json!(NOW + 1),
        4 => value["nbf"] = json!(NOW - i64::from(input.byte())),
        5 => value["exp"] = json!(format!("{}", NOW + 100)),
        6 => value["exp"] = json!((NOW + 100) as f64),
        7 => {
            let field =
                ["iss", "aud", "sub", "sid", "iat", "exp", "jti"][usize::from(input.byte()) % 7];
            if let Some(map) = value.as_object_mut() {
                map.remove(field);
            }
        }
        8 => value["extra"] = other,
        9 => {
            let text = value.to_string();
            let duplicated = format!(r#"{{"iss":{other},{}"#, &text[1..]);
            return duplicated.into_bytes();
        }
        10 => value["iss"] = other,
        _ => return input.bytes().to_vec(),
    }
    value.to_string().into_bytes()
}

fn mutate(forge: &mut Forge, input: &mut Input<'_>, kid: &str, claims: &Claims) {
    match input.byte() % 10 {
        0 => {
            let header = header_from(input, kid);
            forge.set(0, URL_SAFE_NO_PAD.encode(header));
        }
        1 => {
            let payload = payload_from(input, claims);
            forge.set(1, URL_SAFE_NO_PAD.encode(payload));
        }
        2 => forge.set(2, URL_SAFE_NO_PAD.encode(input.bytes())),
        3 => {
            let mut signature = forge.signature();
            if !signature.is_empty() {
                let bit = usize::from(input.byte()) % (signature.len() * 8);
                signature[bit / 8] ^= 1 << (bit % 8);
            }
            forge.set(2, URL_SAFE_NO_PAD.encode(signature));
        }
        4 => {
            // S + L: the same signature to a lax verifier, refused by a strict one.
            let mut signature = forge.signature();
            if signature.len() == 64 {
                let mut carry = 0u16;
                for (byte, order) in signature[32..].iter_mut().zip(ORDER) {
                    let sum = u16::from(*byte) + u16::from(order) + carry;
                    *byte = (sum & 0xff) as u8;
                    carry = sum >> 8;
                }
            }
            forge.set(2, URL_SAFE_NO_PAD.encode(signature));
        }
        5 => forge.sign(&TRUSTED),
        6 => forge.sign(&ATTACKER),
        7 => {
            let b = forge.token.as_bytes();
            let start = usize::from(input.byte()) % (b.len() + 1);
            let end = (start + usize::from(input.byte() % 8)).min(b.len());
            let mut out = b[..start].to_vec();
            out.extend_from_slice(input.bytes());
            out.extend_from_slice(&b[end..]);
            forge.token = String::from_utf8_lossy(&out).into_owned();
        }
        8 => {
            let index = usize::from(input.byte()) % 3;
            let parts = forge.segments();
            if let Ok(bytes) = URL_SAFE_NO_PAD.decode(&parts[index]) {
                let encoded = if input.byte().is_multiple_of(2) {
                    STANDARD.encode(bytes)
                } else {
                    URL_SAFE.encode(bytes)
                };
                forge.set(index, encoded);
            }
        }
        _ => {
            let extra = URL_SAFE_NO_PAD.encode(input.bytes());
            forge.token = format!("{}.{extra}", forge.token);
        }
    }
}

fn mutated(input: &mut Input<'_>) {
    let kid = if input.byte().is_multiple_of(4) {
        String::from_utf8_lossy(input.bytes()).into_owned()
    } else {
        KID.to_owned()
    };
    let claims = claims_from(input);
    let trusted = !input.byte().is_multiple_of(8);
    let signer: &SigningKey = if trusted { &TRUSTED } else { &ATTACKER };
    let token = jwt::sign(&claims, &kid, signer);
    let mut forge = Forge {
        signed: Vec::new(),
        token: token.clone(),
    };
    if trusted {
        let (signing_input, signature) = token.rsplit_once('.').unwrap_or_default();
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap_or_default();
        forge.signed.push((signing_input.to_owned(), signature));
    }
    let valid = claims.iss == ISSUER && claims.aud == AUDIENCE && claims.exp > NOW;
    match verify(&token, &kid) {
        Ok(c) => {
            assert!(trusted && valid, "accepted {token:?} for {claims:?}");
            assert_eq!(c, claims);
        }
        Err(e) => assert!(
            !(trusted && valid),
            "refused {token:?} ({e}) for {claims:?}"
        ),
    }
    for _ in 0..input.byte() % 5 {
        mutate(&mut forge, input, &kid, &claims);
    }
    if let Ok(c) = verify(&forge.token, &kid) {
        assert_sound(&forge.token, &kid, &c);
        let (signing_input, signature) = forge.token.rsplit_once('.').unwrap_or_default();
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap_or_default();
        assert!(
            forge
                .signed
                .iter()
                .any(|(i, s)| i == signing_input && *s == signature),
            "accepted a token the trusted key never signed: {:?}",
            forge.token
        );
    }
}
