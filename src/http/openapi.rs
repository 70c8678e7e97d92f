//! The OpenAPI 3 document, generated from the handlers' annotations.

use super::{access, audit, events, keys, ops, orgs, sessions, users};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// Every route of the API.
#[derive(OpenApi)]
#[openapi(
    // The version of the API this document describes, not of the build serving it.
    info(title = "vouch", version = "1", description = "Event-sourced authentication service"),
    paths(
        ops::healthz, ops::readyz, ops::metrics, ops::openapi,
        users::create_user, users::get_user, users::update_user, users::disable_user, users::enable_user,
        orgs::create_org, orgs::list_orgs, orgs::get_org, orgs::update_org,
        orgs::list_members, orgs::add_member, orgs::change_member, orgs::remove_member,
        keys::create_key, keys::list_keys, keys::get_key, keys::revoke_key, keys::rotate_key, keys::verify_key,
        events::list_events, events::list_org_events, access::access_review, audit::export_events,
        sessions::jwks, sessions::sign_in, sessions::refresh, sessions::list_sessions, sessions::sign_out,
        sessions::revoke_session, sessions::me, sessions::change_password, sessions::introspect,
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
