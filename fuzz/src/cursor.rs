//! Page and event-log cursors: a cursor that parses re-encodes to a canonical
//! cursor that parses back to the same position, every encoded position
//! parses back, and a refusal is a validation error of the query parameter.
//!
//! Input: the first byte picks a mode. 0: the rest is a cursor, as text.
//! 1: the rest, base64url-encoded, is the cursor (so that the fuzzer edits the
//! decoded `p1:`/`e1:` text directly). 2: the rest gives a list position and
//! a log position to encode.

use super::input::Input;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use uuid::Uuid;
use vouch::app::events::LogCursor;
use vouch::app::PageCursor;
use vouch::domain::DomainError;
use vouch::store::events::LogPosition;

/// Runs one input.
pub fn check(data: &[u8]) {
    let mut input = Input::new(data);
    match input.byte() % 3 {
        0 => both(&String::from_utf8_lossy(input.rest())),
        1 => both(&URL_SAFE_NO_PAD.encode(input.rest())),
        _ => {
            let page = PageCursor(Uuid::from_u128(input.u128()));
            assert_eq!(PageCursor::parse(&page.encode()), Ok(page));
            let log = LogCursor(LogPosition {
                transaction_id: input.u64(),
                position: input.i64(),
            });
            assert_eq!(LogCursor::parse(&log.encode()), Ok(log));
        }
    }
}

fn both(raw: &str) {
    match PageCursor::parse(raw) {
        Ok(cursor) => {
            let encoded = cursor.encode();
            let again = PageCursor::parse(&encoded);
            assert_eq!(again, Ok(cursor), "{raw:?}");
            assert_eq!(again.map(|c| c.encode()).ok(), Some(encoded));
        }
        Err(e) => assert_refusal(&e, "cursor"),
    }
    match LogCursor::parse(raw) {
        Ok(cursor) => {
            let encoded = cursor.encode();
            let again = LogCursor::parse(&encoded);
            assert_eq!(again, Ok(cursor), "{raw:?}");
            assert_eq!(again.map(|c| c.encode()).ok(), Some(encoded));
        }
        Err(e) => assert_refusal(&e, "after"),
    }
}

fn assert_refusal(e: &DomainError, expected: &str) {
    assert!(
        matches!(e, DomainError::Validation { field, .. } if *field == expected),
        "{e:?}"
    );
}
