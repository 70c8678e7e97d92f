//! Access tokens: compact JWS with EdDSA (Ed25519) only, per RFC 8037.
//!
//! Verification pins the algorithm: a token whose header says anything but
//! `EdDSA` (`none`, `HS256`, ...) is refused before any key is looked at.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Longest token accepted for parsing.
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The claims of a vouch access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The `iss` claim: who issued the token.
    pub iss: String,
    /// The `aud` claim: whom the token is for.
    pub aud: String,
    /// The user.
    pub sub: Uuid,
    /// The session.
    pub sid: Uuid,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
    /// Unique token id.
    pub jti: Uuid,
    /// How the user signed in (RFC 8176 values: `pwd`, `otp`, `hwk`, `swk`, `mfa`).
    pub amr: Vec<String>,
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    typ: &'static str,
    kid: &'a str,
}

#[derive(Deserialize)]
struct ParsedHeader {
    alg: String,
    kid: Option<String>,
    crit: Option<serde_json::Value>,
}

/// Claims as presented: `aud` may be a string or a list.
#[derive(Deserialize)]
struct PresentedClaims {
    iss: String,
    aud: Audience,
    sub: Uuid,
    sid: Uuid,
    iat: i64,
    exp: i64,
    jti: Uuid,
    nbf: Option<i64>,
    /// Absent from tokens signed before it was added: a password's.
    #[serde(default)]
    amr: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// Why a token was refused. Callers answer every one of these the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not a compact JWS, bad base64url or bad JSON.
    #[error("malformed token")]
    Malformed,
    /// `alg` is not `EdDSA`, or the header has `crit`.
    #[error("algorithm not accepted")]
    Algorithm,
    /// `kid` missing or not a key of ours.
    #[error("unknown key id")]
    UnknownKey,
    /// The signature does not verify.
    #[error("bad signature")]
    Signature,
    /// Wrong `iss` or `aud`, or not yet valid.
    #[error("claims not accepted")]
    Claims,
    /// `exp` has passed.
    #[error("expired")]
    Expired,
}

/// Signs claims with an Ed25519 key.
pub fn sign(claims: &Claims, kid: &str, key: &SigningKey) -> String {
    let header = Header {
        alg: "EdDSA",
        typ: "JWT",
        kid,
    };
    // Serialising these plain structs cannot fail.
    let header = serde_json::to_vec(&header).unwrap_or_default();
    let payload = serde_json::to_vec(claims).unwrap_or_default();
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = key.sign(signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    )
}

/// What a valid token must say.
#[derive(Debug, Clone)]
pub struct Expectation<'a> {
    /// Required `iss`.
    pub issuer: &'a str,
    /// Required `aud`.
    pub audience: &'a str,
    /// The current time (seconds since the epoch).
    pub now: i64,
}

/// Verifies signature and claims. `key_for` finds the public key of a `kid`.
pub fn verify(
    token: &str,
    key_for: impl FnOnce(&str) -> Option<VerifyingKey>,
    expect: &Expectation<'_>,
) -> Result<Claims, JwtError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| JwtError::Malformed)
    };
    let header: ParsedHeader =
        serde_json::from_slice(&decode(h)?).map_err(|_| JwtError::Malformed)?;
    if header.alg != "EdDSA" || header.crit.is_some() {
        return Err(JwtError::Algorithm);
    }
    let key = header
        .kid
        .as_deref()
        .and_then(key_for)
        .ok_or(JwtError::UnknownKey)?;
    let signature = Signature::from_slice(&decode(s)?).map_err(|_| JwtError::Signature)?;
    let signing_input = &token[..h.len() + 1 + p.len()];
    key.verify_strict(signing_input.as_bytes(), &signature)
        .map_err(|_| JwtError::Signature)?;
    let claims: PresentedClaims =
        serde_json::from_slice(&decode(p)?).map_err(|_| JwtError::Malformed)?;
    let audience_ok = match &claims.aud {
        Audience::One(a) => a == expect.audience,
        Audience::Many(list) => list.iter().any(|a| a == expect.audience),
    };
    if claims.iss != expect.issuer || !audience_ok || claims.nbf.is_some_and(|nbf| nbf > expect.now)
    {
        return Err(JwtError::Claims);
    }
    if claims.exp <= expect.now {
        return Err(JwtError::Expired);
    }
    Ok(Claims {
        iss: claims.iss,
        aud: expect.audience.to_owned(),
        sub: claims.sub,
        sid: claims.sid,
        iat: claims.iat,
        exp: claims.exp,
        jti: claims.jti,
        amr: claims.amr.unwrap_or_else(|| vec!["pwd".to_owned()]),
    })
}

/// One entry of a JWKS (RFC 8037 `OKP` key).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Jwk {
    /// Always `OKP`.
    pub kty: String,
    /// Always `Ed25519`.
    pub crv: String,
    /// The public key, base64url.
    pub x: String,
    /// Key id.
    pub kid: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: String,
    /// Always `EdDSA`.
    pub alg: String,
}

impl Jwk {
    /// The JWK of a public key.
    pub fn ed25519(kid: &str, key: &VerifyingKey) -> Self {
        Self {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: URL_SAFE_NO_PAD.encode(key.as_bytes()),
            kid: kid.into(),
            use_: "sig".into(),
            alg: "EdDSA".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn claims(exp: i64) -> Claims {
        Claims {
            iss: "vouch".into(),
            aud: "apps".into(),
            sub: Uuid::from_u128(1),
            sid: Uuid::from_u128(2),
            iat: 1000,
            exp,
            jti: Uuid::from_u128(3),
            amr: vec!["pwd".into(), "otp".into(), "mfa".into()],
        }
    }

    const EXPECT: Expectation<'static> = Expectation {
        issuer: "vouch",
        audience: "apps",
        now: 1500,
    };

    fn verify_with(token: &str, k: &SigningKey) -> Result<Claims, JwtError> {
        let public = k.verifying_key();
        verify(token, |kid| (kid == "k1").then_some(public), &EXPECT)
    }

    #[test]
    fn a_signed_token_verifies() {
        let token = sign(&claims(2000), "k1", &key(7));
        assert_eq!(verify_with(&token, &key(7)).unwrap(), claims(2000));
    }

    #[test]
    fn other_algorithms_and_keys_are_refused() {
        let token = sign(&claims(2000), "k1", &key(7));
        let parts: Vec<&str> = token.split('.').collect();
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k1"}"#),
            parts[1]
        );
        assert_eq!(verify_with(&none, &key(7)), Err(JwtError::Algorithm));
        let hs = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","kid":"k1"}"#),
            parts[1],
            parts[2]
        );
        assert_eq!(verify_with(&hs, &key(7)), Err(JwtError::Algorithm));
        let other_kid = sign(&claims(2000), "k2", &key(7));
        assert_eq!(verify_with(&other_kid, &key(7)), Err(JwtError::UnknownKey));
        assert_eq!(verify_with(&token, &key(8)), Err(JwtError::Signature));
    }

    #[test]
    fn claims_are_checked() {
        assert_eq!(
            verify_with(&sign(&claims(1500), "k1", &key(7)), &key(7)),
            Err(JwtError::Expired)
        );
        let mut c = claims(2000);
        c.aud = "elsewhere".into();
        assert_eq!(
            verify_with(&sign(&c, "k1", &key(7)), &key(7)),
            Err(JwtError::Claims)
        );
        let mut c = claims(2000);
        c.iss = "mallory".into();
        assert_eq!(
            verify_with(&sign(&c, "k1", &key(7)), &key(7)),
            Err(JwtError::Claims)
        );
    }

    #[test]
    fn a_flipped_byte_or_garbage_is_refused() {
        let token = sign(&claims(2000), "k1", &key(7));
        let mut bytes = token.clone().into_bytes();
        let last = bytes.len() - 5;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        assert!(verify_with(&String::from_utf8(bytes).unwrap(), &key(7)).is_err());
        for bad in ["", "a.b", "a.b.c.d", "!!.!!.!!", &"a".repeat(9000)] {
            assert_eq!(
                verify_with(bad, &key(7)),
                Err(JwtError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn jwk_matches_rfc_8037_shape() {
        let jwk = serde_json::to_value(Jwk::ed25519("k1", &key(7).verifying_key())).unwrap();
        assert_eq!(jwk["kty"], "OKP");
        assert_eq!(jwk["crv"], "Ed25519");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["x"].as_str().unwrap().len(), 43);
    }
}
