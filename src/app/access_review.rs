//! Point-in-time access review: who could access an org at a moment, and why.

use super::{App, AppError, Ctx};
use crate::domain::access_review::{AccessReview, Grant};
use crate::domain::stored::AnyEvent;
use crate::store::{events, users};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use uuid::Uuid;

/// An access review with the members' emails.
#[derive(Debug)]
pub struct ReviewedAccess {
    /// The moment reviewed.
    pub as_of: DateTime<Utc>,
    /// The fold of the org's history up to then.
    pub review: AccessReview,
    /// Emails of the members.
    pub emails: HashMap<Uuid, String>,
}

impl App {
    /// Folds the org's streams up to `as_of` (owners, admins, `vouch:audit:read`, `vouch:org:admin`).
    pub async fn access_review(
        &self,
        ctx: &Ctx,
        org_id: Uuid,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<ReviewedAccess, AppError> {
        if !self.standing(ctx, org_id).await?.can_read_audit {
            return Err(AppError::Forbidden(
                "needs owner, admin or vouch:audit:read",
            ));
        }
        let as_of = as_of.unwrap_or_else(|| self.clock.now());
        let client = self.pool.get().await?;
        let history = events::find_org_history(&client, org_id, as_of).await?;
        let mut review = AccessReview::default();
        for e in history {
            let event = AnyEvent::decode(&e.event_type, e.schema_version, e.data)
                .map_err(|err| AppError::Internal(Box::new(err)))?;
            let grant = Grant {
                event_id: e.event_id,
                actor: e.metadata["actor"].clone(),
                at: e.occurred_at,
            };
            review.apply(e.stream_id, &event, grant);
        }
        if review.org.is_none() {
            // The org did not exist yet at that moment.
            return Err(AppError::NotFound);
        }
        let ids: Vec<Uuid> = review.members.keys().copied().collect();
        let emails = users::find_emails(&client, &ids).await?;
        Ok(ReviewedAccess {
            as_of,
            review,
            emails,
        })
    }
}
