//! Time-based one-time passwords (RFC 6238) as authenticator apps make them:
//! HMAC-SHA1, 6 digits, 30-second steps, one step of clock drift either way.
//! A check answers the step that matched, so that the caller can accept each
//! step once. Backup codes: ten single-use codes, only their SHA-256 kept.

use super::api_key::{encode_base62, hex};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Secret, Totp};

/// Digits of a code.
pub const DIGITS: u8 = 6;
/// Seconds of a step.
pub const STEP_SECONDS: u64 = 30;
/// Steps of clock drift accepted either way.
pub const SKEW: u16 = 1;
/// Backup codes handed out at once.
pub const BACKUP_CODES: usize = 10;

pub use crate::domain::action::TotpSecret;

/// Why a stored secret cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a TOTP secret")]
pub struct BadSecret;

/// A fresh secret: 160 random bits (RFC 4226's recommendation), written as
/// base32 without padding, as authenticator apps take it.
pub fn generate_secret() -> TotpSecret {
    let mut bytes = [0u8; 20];
    OsRng.fill_bytes(&mut bytes);
    TotpSecret::new(Secret::new_stack(bytes).to_base32())
}

fn totp(secret: &TotpSecret, issuer: &str, account: &str) -> Result<Totp, BadSecret> {
    let secret = Secret::try_from_base32(secret.expose()).map_err(|_| BadSecret)?;
    totp_rs::Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_step_duration(STEP_SECONDS)
        .with_skew(SKEW)
        .with_secret(secret)
        .with_issuer(Some(issuer))
        .with_account_name(account)
        .build()
        .map_err(|_| BadSecret)
}

/// The step a code matches at `unix_seconds` (the current step or one either
/// side), compared in constant time; `None` for a wrong code or one that is
/// not six digits.
pub fn matching_step(
    secret: &TotpSecret,
    code: &str,
    unix_seconds: u64,
) -> Result<Option<u64>, BadSecret> {
    let code = code.trim();
    if code.len() != usize::from(DIGITS) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    Ok(totp(secret, "vouch", "user")?.check(code, unix_seconds))
}

/// The `otpauth://totp/...` URI an authenticator app scans.
pub fn otpauth_uri(secret: &TotpSecret, issuer: &str, account: &str) -> Result<String, BadSecret> {
    totp(secret, issuer, account)?
        .to_url()
        .map_err(|_| BadSecret)
}

/// The otpauth URI as a QR code, an SVG document.
pub fn qr_svg(uri: &str) -> Result<String, BadSecret> {
    let code = qrcode::QrCode::new(uri.as_bytes()).map_err(|_| BadSecret)?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

/// Fresh backup codes: each 10 base62 characters (about 59 bits), written
/// `xxxxx-xxxxx`; and their hashes, which are what is kept.
pub fn generate_backup_codes() -> (Vec<String>, Vec<String>) {
    (0..BACKUP_CODES)
        .map(|_| {
            let mut bits = [0u8; 16];
            OsRng.fill_bytes(&mut bits);
            let raw = encode_base62(&bits, 10);
            let code = format!("{}-{}", &raw[..5], &raw[5..]);
            let hash = hash_backup_code(&code);
            (code, hash)
        })
        .unzip()
}

/// The hash of a presented backup code; its dash (and any space typed) does
/// not matter.
pub fn hash_backup_code(code: &str) -> String {
    let normal: String = code.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    hex(&Sha256::digest(normal.as_bytes()))
}

/// The index of the stored hash `presented` is, compared in constant time
/// against each.
pub fn find_backup_code<'a>(
    presented: &str,
    stored: impl IntoIterator<Item = &'a str>,
) -> Option<usize> {
    let hash = hash_backup_code(presented);
    let mut found = None;
    for (i, s) in stored.into_iter().enumerate() {
        if bool::from(hash.as_bytes().ct_eq(s.as_bytes())) && found.is_none() {
            found = Some(i);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, appendix B: the SHA-1 secret "12345678901234567890".
    fn rfc_secret() -> TotpSecret {
        TotpSecret::new(
            Secret::new(b"12345678901234567890".to_vec().into_boxed_slice()).to_base32(),
        )
    }

    #[test]
    fn the_rfc_vectors_match_at_their_step_and_one_either_side() {
        let s = &rfc_secret();
        let check = |code: &str, t: u64| matching_step(s, code, t);
        // 94287082 at T = 59 (8 digits): the last six digits are the 6-digit code.
        assert_eq!(check("287082", 59), Ok(Some(1)));
        assert_eq!(check("287082", 59 + 30), Ok(Some(1)), "one step late");
        assert_eq!(check("287082", 59 + 60), Ok(None), "two steps late");
        // 07081804 at T = 1111111109.
        assert_eq!(check("081804", 1_111_111_109), Ok(Some(37_037_036)));
        assert_eq!(check("081805", 1_111_111_109), Ok(None));
        for bad in ["", "28708", "2870822", "28708a", "+87082"] {
            assert_eq!(check(bad, 59), Ok(None), "{bad:?}");
        }
    }

    #[test]
    fn a_secret_is_160_bits_of_base32_and_its_uri_and_qr_carry_it() {
        let s = generate_secret();
        assert_eq!(s.expose().len(), 32);
        assert_ne!(s, generate_secret());
        assert!(!format!("{s:?}").contains(s.expose()));
        let uri = otpauth_uri(&s, "vouch", "ada@example.org").unwrap();
        assert!(
            uri.starts_with("otpauth://totp/vouch:ada%40example.org?"),
            "{uri}"
        );
        assert!(uri.contains(&format!("secret={}", s.expose())));
        let svg = qr_svg(&uri).unwrap();
        assert!(
            svg.starts_with("<?xml") && svg.contains("<svg"),
            "{}",
            &svg[..60]
        );
    }

    #[test]
    fn backup_codes_are_ten_single_strings_found_by_hash_alone() {
        let (codes, hashes) = generate_backup_codes();
        assert_eq!((codes.len(), hashes.len()), (10, 10));
        assert!(codes
            .iter()
            .all(|c| c.len() == 11 && c.as_bytes()[5] == b'-'));
        let stored: Vec<&str> = hashes.iter().map(String::as_str).collect();
        assert_eq!(find_backup_code(&codes[3], stored.clone()), Some(3));
        assert_eq!(
            find_backup_code(&codes[3].replace('-', ""), stored.clone()),
            Some(3)
        );
        assert_eq!(find_backup_code("nope-nope0", stored), None);
        assert!(hashes
            .iter()
            .all(|h| !codes.iter().any(|c| h.contains(c.as_str()))));
    }
}
