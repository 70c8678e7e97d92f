//! `/v1/events` and `/v1/orgs/{org_id}/events`: the audit log, redacted.

use super::dto::{EventDto, Page};
use super::error::{ApiError, ErrorBody};
use super::extract::Auth;
use crate::app::events::{EventFilter, EventPage, LogCursor};
use crate::app::App;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

/// Log query parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Resume after this `cursor` (of an event or `next_cursor`).
    pub after: Option<String>,
    /// 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Only this event type, e.g. `api_key.revoked`.
    #[serde(rename = "type")]
    #[param(rename = "type", pattern = r"^[a-z0-9._]{1,100}$")]
    pub event_type: Option<String>,
    /// Only this stream.
    pub stream_id: Option<Uuid>,
}

impl EventQuery {
    fn parse(self) -> Result<EventFilter, ApiError> {
        if let Some(t) = &self.event_type {
            let ok = (1..=100).contains(&t.len())
                && t.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._".contains(&b));
            if !ok {
                return Err(ApiError::validation("type", "not an event type"));
            }
        }
        Ok(EventFilter {
            after: self.after.as_deref().map(LogCursor::parse).transpose()?,
            limit: crate::app::pages_limit(self.limit)?,
            event_type: self.event_type,
            stream_id: self.stream_id,
        })
    }
}

fn page(p: EventPage) -> HttpResponse {
    HttpResponse::Ok().json(Page {
        items: p.items.into_iter().map(EventDto::from).collect(),
        next_cursor: p.next_cursor,
    })
}

/// The whole log in commit-safe order (`vouch:admin`).
#[utoipa::path(get, path = "/v1/events", tag = "audit", params(EventQuery),
    responses((status = 200, body = Page<EventDto>),
              (status = 403, description = "`forbidden`: not `vouch:admin`", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_events(
    app: web::Data<App>,
    Auth(ctx): Auth,
    q: web::Query<EventQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(page(app.list_events(&ctx, q.into_inner().parse()?).await?))
}

/// One organisation's events in commit-safe order.
#[utoipa::path(get, path = "/v1/orgs/{org_id}/events", tag = "audit", params(("org_id" = Uuid, Path), EventQuery),
    responses((status = 200, body = Page<EventDto>),
              (status = 403, description = "`forbidden`: neither owner or admin of the org nor a key with `vouch:audit:read` or `vouch:org:admin`", body = ErrorBody),
              (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_org_events(
    app: web::Data<App>,
    Auth(ctx): Auth,
    org_id: web::Path<Uuid>,
    q: web::Query<EventQuery>,
) -> Result<HttpResponse, ApiError> {
    let filter = q.into_inner().parse()?;
    Ok(page(app.list_org_events(&ctx, *org_id, filter).await?))
}
