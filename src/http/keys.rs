//! `/v1/orgs/{org_id}/keys` routes and `/v1/keys/verify`.

use super::dto::{IssuedKeyDto, KeyDto, Page, VerifyDto};
use super::error::{ApiError, ErrorBody};
use super::extract::{Auth, Json, OptionalJson};
use super::orgs::PageQuery;
use super::users::{parse_reason, Reason};
use crate::app::keys::{KeyRequest, Verification};
use crate::app::App;
use crate::domain::values::{KeyName, Scopes};
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// A new key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// Label: 1 to 200 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
    )]
    pub name: String,
    /// Up to 64 scopes, each `^[a-z0-9:._-]{1,64}$`; in the `vouch:` namespace only
    /// `vouch:admin` (for `vouch:admin` callers), `vouch:org:admin`, `vouch:keys:verify`
    /// and `vouch:audit:read`.
    #[serde(default)]
    #[schema(schema_with = scopes_schema)]
    pub scopes: Vec<String>,
    /// When the key stops working (RFC 3339, in the future).
    pub expires_at: Option<DateTime<Utc>>,
}

/// The `scopes` of a key request: up to 64 scope strings.
fn scopes_schema() -> utoipa::openapi::Array {
    use utoipa::openapi::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(r"^[a-z0-9:._-]{1,64}$")),
        )
        .max_items(Some(64))
        .build()
}

/// Rotation options.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    /// How long the old key keeps working: 0 (default) to 604800 seconds.
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(minimum = 0, maximum = 604800)]
    pub grace_seconds: Option<i64>,
}

/// A whole number, also when written with a zero fraction (`60.0`): JSON, and the
/// `integer` of the OpenAPI document, do not tell the two apart.
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use serde::de::Error;
    // Beyond 2^53 a float no longer holds every whole number exactly.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    n.as_i64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() <= EXACT)
                .map(|f| f as i64)
        })
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("{n} is not a whole number")))
}

/// A key to check.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyKey {
    /// The presented key.
    pub key: String,
}

/// Key list parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct KeyListQuery {
    /// Include revoked keys (default false).
    pub include_revoked: Option<bool>,
    /// 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Issues a key; the plaintext `key` is in this response only.
#[utoipa::path(post, path = "/v1/orgs/{org_id}/keys", tag = "keys", params(("org_id" = Uuid, Path)), request_body = CreateKey,
    responses((status = 201, body = IssuedKeyDto),
              (status = 403, description = "`forbidden`: not an owner or admin of the org, or `vouch:admin` asked by a caller without it", body = ErrorBody),
              (status = 404, body = ErrorBody),
              (status = 422, description = "`validation_error`, also for an `expires_at` in the past", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_key(
    app: web::Data<App>,
    Auth(ctx): Auth,
    org_id: web::Path<Uuid>,
    Json(body): Json<CreateKey>,
) -> Result<HttpResponse, ApiError> {
    let req = KeyRequest {
        name: KeyName::parse(&body.name)?,
        scopes: Scopes::parse(&body.scopes)?,
        expires_at: body.expires_at,
    };
    let issued = app.create_key(&ctx, *org_id, req).await?;
    Ok(HttpResponse::Created().json(IssuedKeyDto::from(issued)))
}

/// The organisation's keys.
#[utoipa::path(get, path = "/v1/orgs/{org_id}/keys", tag = "keys", params(("org_id" = Uuid, Path), KeyListQuery),
    responses((status = 200, body = Page<KeyDto>),
              (status = 403, description = "`forbidden`: not an owner or admin of the org", body = ErrorBody),
              (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_keys(
    app: web::Data<App>,
    Auth(ctx): Auth,
    org_id: web::Path<Uuid>,
    q: web::Query<KeyListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let (cursor, limit) = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    }
    .parse()?;
    let page = app
        .list_keys(
            &ctx,
            *org_id,
            q.include_revoked.unwrap_or(false),
            cursor,
            limit,
        )
        .await?;
    Ok(HttpResponse::Ok().json(Page {
        items: page.items.into_iter().map(KeyDto::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One key.
#[utoipa::path(get, path = "/v1/orgs/{org_id}/keys/{key_id}", tag = "keys",
    params(("org_id" = Uuid, Path), ("key_id" = Uuid, Path)),
    responses((status = 200, body = KeyDto), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn get_key(
    app: web::Data<App>,
    Auth(ctx): Auth,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (org_id, key_id) = *path;
    let key = app.get_key(&ctx, org_id, key_id).await?;
    Ok(HttpResponse::Ok().json(KeyDto::from(key)))
}

/// Revokes a key at once; revoking a revoked key is a no-op.
#[utoipa::path(post, path = "/v1/orgs/{org_id}/keys/{key_id}/revoke", tag = "keys",
    params(("org_id" = Uuid, Path), ("key_id" = Uuid, Path)), request_body(content = Option<Reason>, description = "Optional: an empty body is no reason."),
    responses((status = 200, body = KeyDto),
              (status = 403, description = "`forbidden`: not an owner or admin of the org", body = ErrorBody),
              (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn revoke_key(
    app: web::Data<App>,
    Auth(ctx): Auth,
    path: web::Path<(Uuid, Uuid)>,
    OptionalJson(body): OptionalJson<Reason>,
) -> Result<HttpResponse, ApiError> {
    let (org_id, key_id) = *path;
    let key = app
        .revoke_key(&ctx, org_id, key_id, parse_reason(body.reason)?)
        .await?;
    Ok(HttpResponse::Ok().json(KeyDto::from(key)))
}

/// Replaces a key with a new one; the old one expires after the grace period.
#[utoipa::path(post, path = "/v1/orgs/{org_id}/keys/{key_id}/rotate", tag = "keys",
    params(("org_id" = Uuid, Path), ("key_id" = Uuid, Path)), request_body(content = Option<RotateKey>, description = "Optional: an empty body is the defaults."),
    responses((status = 201, body = IssuedKeyDto),
              (status = 403, description = "`forbidden`: not an owner or admin of the org, or the new key would outlive the calling key", body = ErrorBody),
              (status = 404, body = ErrorBody),
              (status = 409, description = "`conflict`: the key is revoked or expired", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn rotate_key(
    app: web::Data<App>,
    Auth(ctx): Auth,
    path: web::Path<(Uuid, Uuid)>,
    OptionalJson(body): OptionalJson<RotateKey>,
) -> Result<HttpResponse, ApiError> {
    let (org_id, key_id) = *path;
    let issued = app
        .rotate_key(&ctx, org_id, key_id, body.grace_seconds.unwrap_or(0))
        .await?;
    Ok(HttpResponse::Created().json(IssuedKeyDto::from(issued)))
}

/// Checks a key for an app.
#[utoipa::path(post, path = "/v1/keys/verify", tag = "keys", request_body = VerifyKey,
    responses((status = 200, body = VerifyDto),
              (status = 403, description = "`forbidden`: the caller holds none of `vouch:keys:verify`, `vouch:org:admin`, `vouch:admin`", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn verify_key(
    app: web::Data<App>,
    Auth(ctx): Auth,
    Json(body): Json<VerifyKey>,
) -> Result<HttpResponse, ApiError> {
    let dto = match app.verify_key(&ctx, &body.key).await? {
        Verification::Valid(row) => VerifyDto {
            valid: true,
            code: None,
            key_id: Some(row.id),
            org_id: Some(row.org_id),
            name: Some(row.name),
            scopes: Some(row.scopes),
            expires_at: Some(row.expires_at),
        },
        Verification::Invalid(code) => VerifyDto {
            valid: false,
            code: Some(code.into()),
            key_id: None,
            org_id: None,
            name: None,
            scopes: None,
            expires_at: None,
        },
    };
    Ok(HttpResponse::Ok().json(dto))
}
