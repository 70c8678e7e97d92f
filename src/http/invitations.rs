//! Invitations to orgs: `/v1/orgs/{org_id}/invitations` and `/v1/invitations/accept`.

use super::dto::{MemberDto, Page};
use super::error::{ApiError, ErrorBody};
use super::extract::{Auth, Json};
use super::lifecycle::TokenBody;
use super::orgs::PageQuery;
use crate::app::invitations::IssuedInvitation;
use crate::app::App;
use crate::domain::values::{Email, Role};
use crate::store::invitations::InvitationRow;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// An invitation request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvitation {
    /// The invitee's address (normalised as at sign-up).
    #[schema(format = "email", max_length = 254)]
    pub email: String,
    /// `owner` (owners only), `admin` or `member`.
    #[schema(pattern = "^(owner|admin|member)$")]
    pub role: String,
}

/// An invitation. `token` is only in the answer that created it.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationDto {
    /// Its id (UUID v7).
    pub id: Uuid,
    /// The org.
    pub org_id: Uuid,
    /// The invitee's address (null once the person who accepted was erased).
    pub email: Option<String>,
    /// The role on accepting.
    pub role: String,
    /// The token to hand to the invitee (also mailed when mail is set up):
    /// shown once, never stored in the clear.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// When the token stops working (7 days after the invitation).
    pub expires_at: DateTime<Utc>,
    /// `pending`, `accepted`, `revoked` or `expired`.
    #[schema(pattern = "^(pending|accepted|revoked|expired)$")]
    pub status: String,
    /// The user who invited, if a user did.
    pub invited_by: Option<Uuid>,
    /// The user who accepted.
    pub accepted_by: Option<Uuid>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

impl InvitationDto {
    fn new(row: InvitationRow, token: Option<String>, now: DateTime<Utc>) -> Self {
        // A pending invitation past its expiry is expired: decided when read,
        // since projections do not read clocks.
        let status = if row.status == "pending" && row.expires_at <= now {
            "expired".to_owned()
        } else {
            row.status
        };
        Self {
            id: row.id,
            org_id: row.org_id,
            email: row.email,
            role: row.role,
            token,
            expires_at: row.expires_at,
            status,
            invited_by: row.invited_by,
            accepted_by: row.accepted_by,
            created_at: row.created_at,
        }
    }
}

/// Invites an address to the org (owners and admins, `vouch:org:admin`
/// keys, `vouch:admin`; only owners invite owners).
#[utoipa::path(post, path = "/v1/orgs/{org_id}/invitations", tag = "invitations", params(("org_id" = Uuid, Path)),
    request_body = CreateInvitation,
    responses((status = 201, body = InvitationDto),
              (status = 403, description = "`forbidden`: not an owner or admin, or inviting an owner without being one", body = ErrorBody),
              (status = 404, body = ErrorBody),
              (status = 422, description = "`validation_error`", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_invitation(
    app: web::Data<App>,
    Auth(ctx): Auth,
    org_id: web::Path<Uuid>,
    Json(body): Json<CreateInvitation>,
) -> Result<HttpResponse, ApiError> {
    let email = Email::parse(&body.email)?;
    let role = Role::parse(&body.role)?;
    let IssuedInvitation { invitation, token } = app.invite(&ctx, *org_id, email, role).await?;
    let dto = InvitationDto::new(invitation, Some(token.expose().to_owned()), app.now());
    Ok(HttpResponse::Created().json(dto))
}

/// The org's invitations, every status (owners and admins).
#[utoipa::path(get, path = "/v1/orgs/{org_id}/invitations", tag = "invitations", params(("org_id" = Uuid, Path), PageQuery),
    responses((status = 200, body = Page<InvitationDto>),
              (status = 403, description = "`forbidden`: not an owner or admin", body = ErrorBody),
              (status = 404, body = ErrorBody),
              (status = 422, description = "`validation_error`: a bad cursor or limit", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_invitations(
    app: web::Data<App>,
    Auth(ctx): Auth,
    org_id: web::Path<Uuid>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (cursor, limit) = q.parse()?;
    let page = app.list_invitations(&ctx, *org_id, cursor, limit).await?;
    let now = app.now();
    Ok(HttpResponse::Ok().json(Page {
        items: page
            .items
            .into_iter()
            .map(|i| InvitationDto::new(i, None, now))
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Withdraws a pending invitation (owners and admins; only owners an owner's).
#[utoipa::path(delete, path = "/v1/orgs/{org_id}/invitations/{invitation_id}", tag = "invitations",
    params(("org_id" = Uuid, Path), ("invitation_id" = Uuid, Path)),
    responses((status = 204, description = "Revoked (or revoked already)"),
              (status = 403, description = "`forbidden`", body = ErrorBody),
              (status = 404, body = ErrorBody),
              (status = 409, description = "`conflict`: accepted already", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn revoke_invitation(
    app: web::Data<App>,
    Auth(ctx): Auth,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (org_id, invitation_id) = path.into_inner();
    app.revoke_invitation(&ctx, org_id, invitation_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Accepts an invitation as the signed-in user, whose verified address must
/// be the invited one; answers the membership.
#[utoipa::path(post, path = "/v1/invitations/accept", tag = "invitations", request_body = TokenBody,
    responses((status = 200, body = MemberDto),
              (status = 400, description = "`invalid_token`: malformed, unknown, used, revoked or expired", body = ErrorBody),
              (status = 403, description = "`forbidden`: not a user, or the invitation is for another address; `email_not_verified`", body = ErrorBody),
              (status = 409, description = "`already_member`", body = ErrorBody),
              (status = 429, description = "`rate_limited`: too many wrong tokens for this invitation", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn accept_invitation(
    app: web::Data<App>,
    Auth(ctx): Auth,
    Json(body): Json<TokenBody>,
) -> Result<HttpResponse, ApiError> {
    let member = app.accept_invitation(&ctx, &body.token).await?;
    Ok(HttpResponse::Ok().json(MemberDto::from(member)))
}
