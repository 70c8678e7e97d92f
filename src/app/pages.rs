//! Pagination: limits and opaque id cursors.

use crate::domain::DomainError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use uuid::Uuid;

/// Page size when none is asked for.
pub const DEFAULT_LIMIT: i64 = 100;
/// Largest page.
pub const MAX_LIMIT: i64 = 1000;

/// Checks a requested page size.
pub fn parse_limit(limit: Option<i64>) -> Result<i64, DomainError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(DomainError::invalid("limit", "must be 1 to 1000")),
    }
}

/// An opaque cursor over an id-ordered list: resumes after that id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCursor(pub Uuid);

impl PageCursor {
    /// Decodes a cursor a client sent back.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let bad = || DomainError::invalid("cursor", "not a cursor of this list");
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
        let text = std::str::from_utf8(&bytes).map_err(|_| bad())?;
        let id = text.strip_prefix("p1:").ok_or_else(bad)?;
        Uuid::parse_str(id).map(Self).map_err(|_| bad())
    }

    /// Encodes the cursor.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("p1:{}", self.0))
    }
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page of id-ordered items: full pages get a cursor after their last item.
    pub fn by_id(items: Vec<T>, limit: i64, id: impl Fn(&T) -> Uuid) -> Self {
        let next_cursor = match items.last() {
            Some(last) if items.len() as i64 == limit => Some(PageCursor(id(last)).encode()),
            _ => None,
        };
        Self { items, next_cursor }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = PageCursor(Uuid::from_u128(42));
        assert_eq!(PageCursor::parse(&c.encode()).unwrap(), c);
        for bad in ["", "!!", "cDE6eA", &URL_SAFE_NO_PAD.encode("e1:1:2")] {
            assert!(PageCursor::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(parse_limit(None).unwrap(), 100);
        assert_eq!(parse_limit(Some(1000)).unwrap(), 1000);
        assert!(parse_limit(Some(0)).is_err());
        assert!(parse_limit(Some(1001)).is_err());
    }
}
