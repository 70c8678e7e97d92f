//! HTTP: the route table, extractors, error mapping, metrics, OpenAPI.

pub mod access;
pub mod audit;
pub mod dto;
pub mod error;
pub mod events;
pub mod extract;
pub mod idempotency;
pub mod invitations;
pub mod keys;
pub mod lifecycle;
pub mod metrics;
pub mod mfa;
pub mod middleware;
pub mod openapi;
pub mod ops;
pub mod orgs;
pub mod passkeys;
pub mod sessions;
pub mod users;

use actix_web::web::{self, delete, get, patch, post};
use error::ApiError;

/// The operators' routes of a separate management listener (`VOUCH_METRICS_BIND`).
pub fn management_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", get().to(ops::metrics))
        .route("/healthz", get().to(ops::healthz))
        .route("/readyz", get().to(ops::readyz));
}

/// Registers every route (`/metrics` only without a management listener). One
/// hop from here to each handler.
pub fn routes(cfg: &mut web::ServiceConfig, with_metrics: bool) {
    if with_metrics {
        cfg.route("/metrics", get().to(ops::metrics));
    }
    cfg.app_data(web::QueryConfig::default().error_handler(|e, _| {
        // The parser's own message, without actix's prefix.
        let message = match e {
            actix_web::error::QueryPayloadError::Deserialize(e) => e.to_string(),
            _ => "bad query parameters".to_owned(),
        };
        ApiError::validation("query", message).into()
    }))
    .app_data(web::PathConfig::default().error_handler(|_, req| unrouted(req).into()))
    .route("/v1/introspect", post().to(sessions::introspect))
    .route("/v1/keys/verify", post().to(keys::verify_key))
    .route("/healthz", get().to(ops::healthz))
    .route("/readyz", get().to(ops::readyz))
    .route("/openapi.json", get().to(openapi::serve))
    .route("/.well-known/jwks.json", get().to(sessions::jwks))
    .route("/v1/sessions", post().to(sessions::sign_in))
    .route("/v1/sessions", get().to(sessions::list_sessions))
    .route("/v1/sessions/refresh", post().to(sessions::refresh))
    .route("/v1/sessions/mfa", post().to(mfa::complete_mfa))
    .route(
        "/v1/sessions/passkey/options",
        post().to(passkeys::sign_in_options),
    )
    .route(
        "/v1/sessions/passkey",
        post().to(passkeys::sign_in_with_passkey),
    )
    .route("/v1/sessions/current", delete().to(sessions::sign_out))
    .route("/v1/me", get().to(sessions::me))
    .route(
        "/v1/password-reset",
        post().to(lifecycle::request_password_reset),
    )
    .route(
        "/v1/password-reset/confirm",
        post().to(lifecycle::confirm_password_reset),
    )
    .route(
        "/v1/email-verification/confirm",
        post().to(lifecycle::confirm_email_verification),
    )
    .route(
        "/v1/email-change/confirm",
        post().to(lifecycle::confirm_email_change),
    )
    .route(
        "/v1/invitations/accept",
        post().to(invitations::accept_invitation),
    )
    .route("/v1/users", post().to(users::create_user))
    .route("/v1/users", get().to(users::list_users))
    .route("/v1/orgs", post().to(orgs::create_org))
    .route("/v1/orgs", get().to(orgs::list_orgs))
    .route("/v1/audit/export", get().to(audit::export_events))
    .route("/v1/events", get().to(events::list_events))
    // Dynamic paths last: a static path is matched by comparison, a dynamic
    // one by regex, and the hot routes above never reach these.
    .route("/v1/orgs/{org_id}/keys", post().to(keys::create_key))
    .route("/v1/orgs/{org_id}/keys", get().to(keys::list_keys))
    .route("/v1/orgs/{org_id}/keys/{key_id}", get().to(keys::get_key))
    .route(
        "/v1/orgs/{org_id}/keys/{key_id}/revoke",
        post().to(keys::revoke_key),
    )
    .route(
        "/v1/orgs/{org_id}/keys/{key_id}/rotate",
        post().to(keys::rotate_key),
    )
    .route("/v1/sessions/{id}", delete().to(sessions::revoke_session))
    .route(
        "/v1/users/{id}/password",
        post().to(sessions::change_password),
    )
    .route("/v1/users/{id}", get().to(users::get_user))
    .route("/v1/users/{id}", patch().to(users::update_user))
    .route("/v1/users/{id}", delete().to(users::erase_user))
    .route("/v1/users/{id}/disable", post().to(users::disable_user))
    .route(
        "/v1/users/{id}/personal-data",
        get().to(users::personal_data),
    )
    .route("/v1/users/{id}/enable", post().to(users::enable_user))
    .route(
        "/v1/users/{id}/email-verification",
        post().to(lifecycle::request_email_verification),
    )
    .route(
        "/v1/users/{id}/email",
        post().to(lifecycle::request_email_change),
    )
    .route("/v1/users/{id}/mfa/totp", post().to(mfa::enroll_totp))
    .route("/v1/users/{id}/mfa/totp", delete().to(mfa::disable_totp))
    .route(
        "/v1/users/{id}/mfa/totp/confirm",
        post().to(mfa::confirm_totp),
    )
    .route(
        "/v1/users/{id}/mfa/backup-codes",
        post().to(mfa::regenerate_backup_codes),
    )
    .route(
        "/v1/users/{id}/passkeys/options",
        post().to(passkeys::registration_options),
    )
    .route(
        "/v1/users/{id}/passkeys",
        post().to(passkeys::register_passkey),
    )
    .route("/v1/users/{id}/passkeys", get().to(passkeys::list_passkeys))
    .route(
        "/v1/users/{id}/passkeys/{passkey_id}",
        patch().to(passkeys::rename_passkey),
    )
    .route(
        "/v1/users/{id}/passkeys/{passkey_id}",
        delete().to(passkeys::remove_passkey),
    )
    .route("/v1/orgs/{org_id}", get().to(orgs::get_org))
    .route("/v1/orgs/{org_id}", patch().to(orgs::update_org))
    .route("/v1/orgs/{org_id}/members", get().to(orgs::list_members))
    .route("/v1/orgs/{org_id}/members", post().to(orgs::add_member))
    .route(
        "/v1/orgs/{org_id}/members/{user_id}",
        patch().to(orgs::change_member),
    )
    .route(
        "/v1/orgs/{org_id}/members/{user_id}",
        delete().to(orgs::remove_member),
    )
    .route(
        "/v1/orgs/{org_id}/events",
        get().to(events::list_org_events),
    )
    .route("/v1/orgs/{org_id}/access", get().to(access::access_review))
    .route(
        "/v1/orgs/{org_id}/invitations",
        post().to(invitations::create_invitation),
    )
    .route(
        "/v1/orgs/{org_id}/invitations",
        get().to(invitations::list_invitations),
    )
    .route(
        "/v1/orgs/{org_id}/invitations/{invitation_id}",
        delete().to(invitations::revoke_invitation),
    )
    .default_service(web::to(no_route));
}

/// No route took the request: 405 with `Allow` if its path is documented, but
/// only with other methods; else 404 (no such path, or path parameters that name
/// nothing, such as `/v1/orgs/not-a-uuid`).
async fn no_route(req: actix_web::HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(unrouted(&req))
}

fn unrouted(req: &actix_web::HttpRequest) -> ApiError {
    match openapi::allowed_methods(req.path()) {
        Some(allow) if !allow.split(", ").any(|m| m == req.method().as_str()) => {
            ApiError::MethodNotAllowed(allow)
        }
        _ => ApiError::Status(actix_web::http::StatusCode::NOT_FOUND),
    }
}
