//! `GET /v1/orgs/{org_id}/access?as_of=`: who could access the org then, and why.

use super::error::{ApiError, ErrorBody};
use super::extract::Auth;
use crate::app::App;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Review parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AccessQuery {
    /// The moment (RFC 3339); now if absent.
    pub as_of: Option<DateTime<Utc>>,
}

/// The event that granted an access.
#[derive(Serialize, ToSchema)]
pub struct GrantDto {
    /// The event.
    pub event_id: Uuid,
    /// Who did it (`{type, id}`).
    #[schema(value_type = Object)]
    pub actor: Value,
    /// When it happened.
    pub at: DateTime<Utc>,
}

/// A member then.
#[derive(Serialize, ToSchema)]
pub struct MemberAccessDto {
    /// The user.
    pub user_id: Uuid,
    /// Their email (now).
    pub email: Option<String>,
    /// Their role then.
    pub role: String,
    /// The event that gave them that role.
    pub granted: GrantDto,
}

/// A key that worked then.
#[derive(Serialize, ToSchema)]
pub struct KeyAccessDto {
    /// The key.
    pub key_id: Uuid,
    /// Its first 12 characters.
    pub prefix: String,
    /// Its label.
    pub name: String,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// Its expiry as known then.
    pub expires_at: Option<DateTime<Utc>>,
    /// The event that issued it.
    pub granted: GrantDto,
}

/// The org then.
#[derive(Serialize, ToSchema)]
pub struct OrgThen {
    /// Its id (UUID v7).
    pub id: Uuid,
    /// Name then.
    pub name: String,
    /// The org's unique slug.
    pub slug: String,
}

/// Who could access the org at `as_of`.
#[derive(Serialize, ToSchema)]
pub struct AccessDto {
    /// The moment.
    pub as_of: DateTime<Utc>,
    /// The org.
    pub org: OrgThen,
    /// Members with their roles.
    pub members: Vec<MemberAccessDto>,
    /// Keys that were valid.
    pub keys: Vec<KeyAccessDto>,
}

fn grant(g: &crate::domain::access_review::Grant) -> GrantDto {
    GrantDto {
        event_id: g.event_id,
        actor: g.actor.clone(),
        at: g.at,
    }
}

/// Members and valid keys of an org at a moment, each with the event that granted it.
#[utoipa::path(get, path = "/v1/orgs/{org_id}/access", tag = "audit", params(("org_id" = Uuid, Path), AccessQuery),
    responses((status = 200, body = AccessDto), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn access_review(
    app: web::Data<App>,
    Auth(ctx): Auth,
    org_id: web::Path<Uuid>,
    q: web::Query<AccessQuery>,
) -> Result<HttpResponse, ApiError> {
    let reviewed = app.access_review(&ctx, *org_id, q.as_of).await?;
    let (name, slug) = reviewed.review.org.clone().unwrap_or_default();
    let members = reviewed
        .review
        .members
        .iter()
        .map(|(user_id, m)| MemberAccessDto {
            user_id: *user_id,
            email: reviewed.emails.get(user_id).cloned(),
            role: m.role.as_str().into(),
            granted: grant(&m.granted),
        })
        .collect();
    let keys = reviewed
        .review
        .valid_keys(reviewed.as_of)
        .map(|(key_id, k)| KeyAccessDto {
            key_id: *key_id,
            prefix: k.prefix.clone(),
            name: k.name.clone(),
            scopes: k.scopes.clone(),
            expires_at: k.expires_at,
            granted: grant(&k.granted),
        })
        .collect();
    Ok(HttpResponse::Ok().json(AccessDto {
        as_of: reviewed.as_of,
        org: OrgThen {
            id: *org_id,
            name,
            slug,
        },
        members,
        keys,
    }))
}
