//! API keys and refresh tokens: the parsers agree with an independent reading
//! of the documented formats, and a parsed credential re-exposes exactly the
//! string it was parsed from. A single changed character never passes the
//! checksum.
//!
//! Input: the first byte picks a mode; 0 parses the rest as text, 1 builds a
//! well-formed key from the rest and edits it, 2 does the same for a refresh
//! token.

use super::input::Input;
use sha2::{Digest, Sha256};
use uuid::Uuid;
use vouch::auth::api_key::{PresentedKey, DISPLAY_PREFIX_LEN, KEY_LEN};
use vouch::auth::refresh_token::RefreshToken;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Runs one input.
pub fn check(data: &[u8]) {
    let mut input = Input::new(data);
    match input.byte() % 3 {
        0 => {
            let text = String::from_utf8_lossy(input.rest());
            check_key(&text);
            check_refresh(&text);
        }
        1 => {
            let key = well_formed_key(&mut input);
            assert!(PresentedKey::parse(&key).is_ok(), "well-formed {key:?}");
            let edited = edit(&key, &mut input);
            check_key(&edited);
            if one_substitution(&key, &edited) {
                assert!(
                    PresentedKey::parse(&edited).is_err(),
                    "a key with one character changed passed its checksum: {edited:?}"
                );
            }
        }
        _ => {
            let (session, token) = well_formed_refresh(&mut input);
            let parsed = RefreshToken::parse(&token);
            assert_eq!(parsed.map(|t| t.session_id()).ok(), Some(session));
            check_refresh(&edit(&token, &mut input));
        }
    }
}

/// Whether `text` is a key by the documented format, read independently:
/// `vk_`, 43 base62 characters, then the 6-digit base62 CRC32 of those 43.
fn is_key(text: &str) -> bool {
    let b = text.as_bytes();
    if b.len() != 52 || !b.starts_with(b"vk_") || !b[3..].iter().all(|c| ALPHABET.contains(c)) {
        return false;
    }
    b[46..] == checksum(&b[3..46])
}

/// The CRC32 of `body` as exactly six base62 digits, most significant first.
fn checksum(body: &[u8]) -> [u8; 6] {
    let mut n = u64::from(crc32fast::hash(body));
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    out
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn check_key(text: &str) {
    let expected = is_key(text);
    match PresentedKey::parse(text) {
        Ok(key) => {
            assert!(expected, "accepted a non-key: {text:?}");
            assert_eq!(key.expose(), text);
            assert_eq!(KEY_LEN, text.len());
            assert_eq!(key.display_prefix(), &text[..DISPLAY_PREFIX_LEN]);
            assert_eq!(key.hash(), sha256_hex(text));
            let again = PresentedKey::parse(key.expose()).map(|k| k.hash());
            assert_eq!(again.ok(), Some(key.hash()));
            assert!(
                !format!("{key:?}").contains(&text[3..]),
                "Debug shows the secret"
            );
        }
        Err(_) => assert!(!expected, "refused a key: {text:?}"),
    }
}

/// Whether `text` is a refresh token by the documented format:
/// `vrt_`, 32 hex digits of the session id, `_`, 43 base62 characters.
fn refresh_session(text: &str) -> Option<Uuid> {
    let b = text.as_bytes();
    let ok = b.len() == 80
        && b.starts_with(b"vrt_")
        && b[4..36].iter().all(u8::is_ascii_hexdigit)
        && b[36] == b'_'
        && b[37..].iter().all(|c| ALPHABET.contains(c));
    if !ok {
        return None;
    }
    let hex = std::str::from_utf8(&b[4..36]).ok()?;
    u128::from_str_radix(hex, 16).ok().map(Uuid::from_u128)
}

fn check_refresh(text: &str) {
    let expected = refresh_session(text);
    match RefreshToken::parse(text) {
        Ok(token) => {
            assert_eq!(Some(token.session_id()), expected, "{text:?}");
            assert_eq!(token.expose(), text);
            assert_eq!(token.hash(), sha256_hex(text));
            assert!(
                !format!("{token:?}").contains(&text[37..]),
                "Debug shows the secret"
            );
        }
        Err(_) => assert_eq!(expected, None, "refused a refresh token: {text:?}"),
    }
}

fn base62(input: &mut Input<'_>, n: usize) -> String {
    (0..n)
        .map(|_| char::from(ALPHABET[usize::from(input.byte()) % 62]))
        .collect()
}

fn well_formed_key(input: &mut Input<'_>) -> String {
    let body = base62(input, 43);
    let check = checksum(body.as_bytes());
    format!("vk_{body}{}", String::from_utf8_lossy(&check))
}

fn well_formed_refresh(input: &mut Input<'_>) -> (Uuid, String) {
    let session = Uuid::from_u128(input.u128());
    let secret = base62(input, 43);
    (session, format!("vrt_{}_{secret}", session.simple()))
}

/// Whether `b` is `a` with exactly one byte changed: a typo that the CRC32
/// must always catch (a burst of at most 8 bits in the body, or a different
/// check digit).
fn one_substitution(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).filter(|(x, y)| x != y).count() == 1
}

/// Replaces a byte range of `text` with bytes from the input (as UTF-8, lossily).
fn edit(text: &str, input: &mut Input<'_>) -> String {
    let b = text.as_bytes();
    let start = usize::from(input.byte()) % (b.len() + 1);
    let end = (start + usize::from(input.byte() % 4)).min(b.len());
    let mut out = b[..start].to_vec();
    out.extend_from_slice(input.bytes());
    out.extend_from_slice(&b[end..]);
    String::from_utf8_lossy(&out).into_owned()
}
