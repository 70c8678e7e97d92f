//! The OpenAPI 3 document: generated from the handlers' annotations, then
//! completed with the conventions that API.md states once for every operation.

use super::{
    access, audit, events, invitations, keys, lifecycle, mfa, ops, orgs, passkeys, sessions, users,
};
use actix_web::dev::ResourceDef;
use serde_json::Value;
use std::sync::OnceLock;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

mod conventions;

use conventions::{complete, response_headers};

/// The keys of a path item that are methods.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Every route of the API.
#[derive(OpenApi)]
#[openapi(
    // The version of the API this document describes, not of the build serving it.
    info(title = "vouch", version = "1", description = "Event-sourced authentication service"),
    paths(
        ops::healthz, ops::readyz, ops::metrics, serve,
        users::create_user, users::get_user, users::update_user, users::disable_user, users::enable_user,
        users::erase_user, users::personal_data, users::list_users,
        orgs::create_org, orgs::list_orgs, orgs::get_org, orgs::update_org,
        orgs::list_members, orgs::add_member, orgs::change_member, orgs::remove_member,
        keys::create_key, keys::list_keys, keys::get_key, keys::revoke_key, keys::rotate_key, keys::verify_key,
        events::list_events, events::list_org_events, access::access_review, audit::export_events,
        sessions::jwks, sessions::sign_in, sessions::refresh, sessions::list_sessions, sessions::sign_out,
        sessions::revoke_session, sessions::me, sessions::change_password, sessions::introspect,
        lifecycle::request_email_verification, lifecycle::confirm_email_verification,
        lifecycle::request_password_reset, lifecycle::confirm_password_reset,
        lifecycle::request_email_change, lifecycle::confirm_email_change,
        invitations::create_invitation, invitations::list_invitations,
        invitations::revoke_invitation, invitations::accept_invitation,
        mfa::enroll_totp, mfa::confirm_totp, mfa::disable_totp, mfa::complete_mfa,
        mfa::regenerate_backup_codes,
        passkeys::registration_options, passkeys::register_passkey, passkeys::list_passkeys,
        passkeys::rename_passkey, passkeys::remove_passkey, passkeys::sign_in_options,
        passkeys::sign_in_with_passkey,
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "ops", responses((status = 200, body = Object)))]
pub async fn serve() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok().json(document())
}

/// The document served at `/openapi.json`, built once.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null);
        if let Some(components) = doc.get_mut("components").and_then(Value::as_object_mut) {
            components.insert("headers".into(), response_headers());
        }
        if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
            for (path, item) in paths.iter_mut() {
                let Some(item) = item.as_object_mut() else {
                    continue;
                };
                for (method, operation) in item.iter_mut() {
                    complete(path, method, operation);
                }
            }
        }
        doc
    })
}

/// The methods the document gives `path` (a concrete request path), as an
/// `Allow` header value; `None` if no documented path matches it.
pub fn allowed_methods(path: &str) -> Option<String> {
    // (template, how many parameters it has, its methods)
    static TEMPLATES: OnceLock<Vec<(ResourceDef, usize, Vec<String>)>> = OnceLock::new();
    let templates = TEMPLATES.get_or_init(|| {
        let paths = document().get("paths").and_then(Value::as_object);
        paths
            .into_iter()
            .flatten()
            .map(|(template, item)| {
                let methods = item
                    .as_object()
                    .into_iter()
                    .flat_map(|ops| ops.keys())
                    .filter(|m| METHODS.contains(&m.as_str()))
                    .map(|m| m.to_uppercase())
                    .collect();
                let parameters = template.matches('{').count();
                (ResourceDef::new(template.as_str()), parameters, methods)
            })
            .collect()
    });
    let matching: Vec<_> = templates
        .iter()
        .filter(|(template, _, _)| template.is_match(path))
        .collect();
    // The path is the resource of the most literal template that matches
    // it: `/v1/users/{id}/passkeys/options` is not a passkey named "options".
    let fewest = matching.iter().map(|(_, parameters, _)| *parameters).min();
    let mut methods: Vec<&str> = matching
        .iter()
        .filter(|(_, parameters, _)| Some(*parameters) == fewest)
        .flat_map(|(_, _, methods)| methods.iter().map(String::as_str))
        .collect();
    methods.sort_unstable();
    methods.dedup();
    (!methods.is_empty()).then(|| methods.join(", "))
}
