//! Reading the audit log through the API, in commit-safe order.

use super::{App, AppError, Ctx};
use crate::domain::DomainError;
use crate::store::events::{self, LogPosition, LogQuery, RecordedEvent};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use uuid::Uuid;

/// An opaque cursor into the log: resumes after `(transaction_id, position)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogCursor(pub LogPosition);

impl LogCursor {
    /// Decodes a cursor a client sent back.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let bad = || DomainError::invalid("after", "not an event cursor");
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
        let text = std::str::from_utf8(&bytes).map_err(|_| bad())?;
        let rest = text.strip_prefix("e1:").ok_or_else(bad)?;
        let (txid, position) = rest.split_once(':').ok_or_else(bad)?;
        Ok(Self(LogPosition {
            transaction_id: txid.parse().map_err(|_| bad())?,
            position: position.parse().map_err(|_| bad())?,
        }))
    }

    /// Encodes the cursor.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("e1:{}:{}", self.0.transaction_id, self.0.position))
    }
}

/// Filters of an events query, parsed.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Resume after this cursor.
    pub after: Option<LogCursor>,
    /// Page size.
    pub limit: i64,
    /// Only this event type.
    pub event_type: Option<String>,
    /// Only this stream.
    pub stream_id: Option<Uuid>,
}

/// A page of events; `next_cursor` is set when the page is full.
#[derive(Debug)]
pub struct EventPage {
    /// The events (not yet redacted).
    pub items: Vec<RecordedEvent>,
    /// Where to resume.
    pub next_cursor: Option<String>,
}

impl App {
    /// The whole log (`vouch:admin`).
    pub async fn list_events(&self, ctx: &Ctx, filter: EventFilter) -> Result<EventPage, AppError> {
        if !ctx.caller.is_admin() {
            return Err(AppError::Forbidden("needs vouch:admin"));
        }
        self.read_events(None, filter).await
    }

    /// One org's events (owners, admins, `vouch:audit:read`, `vouch:org:admin`).
    pub async fn list_org_events(
        &self,
        ctx: &Ctx,
        org_id: Uuid,
        filter: EventFilter,
    ) -> Result<EventPage, AppError> {
        if !self.standing(ctx, org_id).await?.can_read_audit {
            return Err(AppError::Forbidden(
                "needs owner, admin or vouch:audit:read",
            ));
        }
        self.read_events(Some(org_id), filter).await
    }

    /// Who may export: `vouch:admin` the whole log; an org's audit readers that org.
    pub async fn authorize_export(&self, ctx: &Ctx, org_id: Option<Uuid>) -> Result<(), AppError> {
        match org_id {
            None if ctx.caller.is_admin() => Ok(()),
            None => Err(AppError::Forbidden(
                "exporting the whole log needs vouch:admin; pass org_id",
            )),
            Some(org_id) if self.standing(ctx, org_id).await?.can_read_audit => Ok(()),
            Some(_) => Err(AppError::Forbidden(
                "needs owner, admin or vouch:audit:read",
            )),
        }
    }

    /// Events the relay has not yet had confirmed, and the oldest one's age in seconds.
    pub async fn relay_lag(&self) -> Result<(i64, f64), AppError> {
        let client = self.pool.get().await?;
        Ok(crate::store::checkpoints::find_lag(&client, crate::store::checkpoints::RELAY).await?)
    }

    /// Events after the mailer's checkpoint, and the age of the oldest.
    pub async fn mailer_lag(&self) -> Result<(i64, f64), AppError> {
        let client = self.pool.get().await?;
        Ok(crate::store::checkpoints::find_lag(&client, crate::store::checkpoints::MAILER).await?)
    }

    async fn read_events(
        &self,
        org_id: Option<Uuid>,
        filter: EventFilter,
    ) -> Result<EventPage, AppError> {
        let client = self.pool.get().await?;
        let query = LogQuery {
            after: filter.after.map(|c| c.0).unwrap_or_default(),
            limit: filter.limit,
            org_id,
            event_type: filter.event_type,
            stream_id: filter.stream_id,
            unbounded: false,
        };
        let mut items = events::read_log(&client, &query).await?;
        self.open_recorded(&client, &mut items).await?;
        let next_cursor = match items.last() {
            Some(last) if items.len() as i64 == filter.limit => {
                Some(LogCursor(last.cursor()).encode())
            }
            _ => None,
        };
        Ok(EventPage { items, next_cursor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_cursors_round_trip_and_reject_garbage() {
        let c = LogCursor(LogPosition {
            transaction_id: 812,
            position: 77,
        });
        assert_eq!(LogCursor::parse(&c.encode()).unwrap(), c);
        for bad in [
            "",
            "e1",
            &URL_SAFE_NO_PAD.encode("e1:x:1"),
            &URL_SAFE_NO_PAD.encode("p1:1:1"),
        ] {
            assert!(LogCursor::parse(bad).is_err(), "{bad:?}");
        }
    }
}
