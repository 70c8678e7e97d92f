//! `/v1/orgs` routes: organisations and members.

use super::dto::{MemberDto, MemberList, OrgDto, Page};
use super::error::{ApiError, ErrorBody};
use super::extract::{Auth, Json};
use crate::app::orgs::NewOrg;
use crate::app::{App, PageCursor};
use crate::domain::values::{OrgName, Role, Slug};
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Organisation creation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrg {
    /// Display name: 1 to 200 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
    )]
    pub name: String,
    /// `^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$`, unique.
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$")]
    pub slug: String,
    /// First owner (only `vouch:admin` names one; a user creating an org becomes its owner).
    pub owner_id: Option<Uuid>,
}

/// Organisation change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrg {
    /// New display name: 1 to 200 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
    )]
    pub name: String,
}

/// New member.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    /// The user to add.
    pub user_id: Uuid,
    /// `owner`, `admin` or `member`.
    #[schema(pattern = "^(owner|admin|member)$")]
    pub role: String,
}

/// Role change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRole {
    /// `owner`, `admin` or `member`.
    #[schema(pattern = "^(owner|admin|member)$")]
    pub role: String,
}

/// Paging parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    /// Checks limit and cursor.
    pub fn parse(&self) -> Result<(Option<PageCursor>, i64), ApiError> {
        let cursor = self.cursor.as_deref().map(PageCursor::parse).transpose()?;
        Ok((cursor, crate::app::pages_limit(self.limit)?))
    }
}

/// Creates an organisation.
#[utoipa::path(post, path = "/v1/orgs", tag = "orgs", request_body = CreateOrg,
    responses((status = 201, body = OrgDto),
              (status = 403, description = "`forbidden`: an org key, or a user naming another owner", body = ErrorBody),
              (status = 409, description = "`slug_taken`", body = ErrorBody),
              (status = 422, description = "`validation_error`, also for an `owner_id` that names no user", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_org(
    app: web::Data<App>,
    Auth(ctx): Auth,
    Json(body): Json<CreateOrg>,
) -> Result<HttpResponse, ApiError> {
    let new = NewOrg {
        name: OrgName::parse(&body.name)?,
        slug: Slug::parse(&body.slug)?,
        owner_id: body.owner_id,
    };
    let org = app.create_org(&ctx, new).await?;
    Ok(HttpResponse::Created().json(OrgDto::from(org)))
}

/// The caller's organisations (all of them for `vouch:admin`).
#[utoipa::path(get, path = "/v1/orgs", tag = "orgs", params(PageQuery),
    responses((status = 200, body = Page<OrgDto>), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn list_orgs(
    app: web::Data<App>,
    Auth(ctx): Auth,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (cursor, limit) = q.parse()?;
    let page = app.list_orgs(&ctx, cursor, limit).await?;
    Ok(HttpResponse::Ok().json(Page {
        items: page.items.into_iter().map(OrgDto::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One organisation.
#[utoipa::path(get, path = "/v1/orgs/{org_id}", tag = "orgs", params(("org_id" = Uuid, Path)),
    responses((status = 200, body = OrgDto), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn get_org(
    app: web::Data<App>,
    Auth(ctx): Auth,
    org_id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let org = app.get_org(&ctx, *org_id).await?;
    Ok(HttpResponse::Ok().json(OrgDto::from(org)))
}

/// Renames an organisation (owner/admin).
#[utoipa::path(patch, path = "/v1/orgs/{org_id}", tag = "orgs", params(("org_id" = Uuid, Path)), request_body = UpdateOrg,
    responses((status = 200, body = OrgDto),
              (status = 403, description = "`forbidden`: not an owner or admin", body = ErrorBody),
              (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_org(
    app: web::Data<App>,
    Auth(ctx): Auth,
    org_id: web::Path<Uuid>,
    Json(body): Json<UpdateOrg>,
) -> Result<HttpResponse, ApiError> {
    let org = app
        .rename_org(&ctx, *org_id, OrgName::parse(&body.name)?)
        .await?;
    Ok(HttpResponse::Ok().json(OrgDto::from(org)))
}

/// The organisation's members.
#[utoipa::path(get, path = "/v1/orgs/{org_id}/members", tag = "orgs", params(("org_id" = Uuid, Path)),
    responses((status = 200, body = MemberList), (status = 403, description = "`forbidden`: an API key without `vouch:org:admin`", body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn list_members(
    app: web::Data<App>,
    Auth(ctx): Auth,
    org_id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let members = app.list_members(&ctx, *org_id).await?;
    Ok(HttpResponse::Ok().json(MemberList {
        items: members.into_iter().map(MemberDto::from).collect(),
    }))
}

/// Adds an existing user by id (`vouch:admin` only: people join by accepting an invitation).
#[utoipa::path(post, path = "/v1/orgs/{org_id}/members", tag = "orgs", params(("org_id" = Uuid, Path)), request_body = AddMember,
    responses((status = 201, body = MemberDto),
              (status = 403, description = "`forbidden`: the caller is not `vouch:admin`", body = ErrorBody),
              (status = 404, body = ErrorBody),
              (status = 409, description = "`already_member`", body = ErrorBody),
              (status = 422, description = "`validation_error`, also for a `user_id` that names no user", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn add_member(
    app: web::Data<App>,
    Auth(ctx): Auth,
    org_id: web::Path<Uuid>,
    Json(body): Json<AddMember>,
) -> Result<HttpResponse, ApiError> {
    let role = Role::parse(&body.role)?;
    let member = app.add_member(&ctx, *org_id, body.user_id, role).await?;
    Ok(HttpResponse::Created().json(MemberDto::from(member)))
}

/// Changes a member's role.
#[utoipa::path(patch, path = "/v1/orgs/{org_id}/members/{user_id}", tag = "orgs",
    params(("org_id" = Uuid, Path), ("user_id" = Uuid, Path)), request_body = ChangeRole,
    responses((status = 200, body = MemberDto),
              (status = 403, description = "`forbidden`: not an owner or admin, or granting `owner` without being one", body = ErrorBody),
              (status = 404, body = ErrorBody),
              (status = 409, description = "`last_owner`: the org would have no owner", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn change_member(
    app: web::Data<App>,
    Auth(ctx): Auth,
    path: web::Path<(Uuid, Uuid)>,
    Json(body): Json<ChangeRole>,
) -> Result<HttpResponse, ApiError> {
    let (org_id, user_id) = *path;
    let role = Role::parse(&body.role)?;
    let member = app.change_member_role(&ctx, org_id, user_id, role).await?;
    Ok(HttpResponse::Ok().json(MemberDto::from(member)))
}

/// Removes a member.
#[utoipa::path(delete, path = "/v1/orgs/{org_id}/members/{user_id}", tag = "orgs",
    params(("org_id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses((status = 204),
              (status = 403, description = "`forbidden`: not an owner or admin", body = ErrorBody),
              (status = 404, body = ErrorBody),
              (status = 409, description = "`last_owner`: the org would have no owner", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn remove_member(
    app: web::Data<App>,
    Auth(ctx): Auth,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (org_id, user_id) = *path;
    app.remove_member(&ctx, org_id, user_id).await?;
    Ok(HttpResponse::NoContent().finish())
}
