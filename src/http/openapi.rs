//! The OpenAPI 3 document: generated from the handlers' annotations, then
//! completed with the conventions that API.md states once for every operation.

use super::{access, audit, events, keys, ops, orgs, sessions, users};
use actix_web::dev::ResourceDef;
use serde_json::{json, Map, Value};
use std::sync::OnceLock;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// Every route of the API.
#[derive(OpenApi)]
#[openapi(
    // The version of the API this document describes, not of the build serving it.
    info(title = "vouch", version = "1", description = "Event-sourced authentication service"),
    paths(
        ops::healthz, ops::readyz, ops::metrics, serve,
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
    // (template, whether it has parameters, its methods)
    static TEMPLATES: OnceLock<Vec<(ResourceDef, bool, Vec<String>)>> = OnceLock::new();
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
                let dynamic = template.contains('{');
                (ResourceDef::new(template.as_str()), dynamic, methods)
            })
            .collect()
    });
    let matching: Vec<_> = templates
        .iter()
        .filter(|(template, _, _)| template.is_match(path))
        .collect();
    // A static path is routed before the dynamic ones that also match it.
    let exact = matching.iter().any(|(_, dynamic, _)| !dynamic);
    let mut methods: Vec<&str> = matching
        .iter()
        .filter(|(_, dynamic, _)| !(exact && *dynamic))
        .flat_map(|(_, _, methods)| methods.iter().map(String::as_str))
        .collect();
    methods.sort_unstable();
    methods.dedup();
    (!methods.is_empty()).then(|| methods.join(", "))
}

/// OpenAPI links: which ids of an answer the next requests take, for clients and
/// stateful tests. (operation, status, target operations, their parameters)
type Link = (
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
);

const LINKS: [Link; 7] = [
    (
        "create_user",
        "201",
        &[
            "get_user",
            "update_user",
            "disable_user",
            "enable_user",
            "change_password",
        ],
        &[("id", "$response.body#/id")],
    ),
    (
        "create_org",
        "201",
        &[
            "get_org",
            "update_org",
            "list_members",
            "add_member",
            "create_key",
            "list_keys",
            "list_org_events",
            "access_review",
        ],
        &[("org_id", "$response.body#/id")],
    ),
    (
        "create_key",
        "201",
        &["get_key", "revoke_key", "rotate_key"],
        &[
            ("org_id", "$response.body#/org_id"),
            ("key_id", "$response.body#/id"),
        ],
    ),
    (
        "rotate_key",
        "201",
        &["get_key", "revoke_key", "rotate_key"],
        &[
            ("org_id", "$response.body#/org_id"),
            ("key_id", "$response.body#/id"),
        ],
    ),
    (
        "add_member",
        "201",
        &["change_member", "remove_member"],
        &[
            ("org_id", "$request.path.org_id"),
            ("user_id", "$response.body#/user_id"),
        ],
    ),
    (
        "sign_in",
        "201",
        &["revoke_session"],
        &[("id", "$response.body#/session_id")],
    ),
    (
        "refresh",
        "200",
        &["revoke_session"],
        &[("id", "$response.body#/session_id")],
    ),
];

/// Adds the links of `operation_id` to its responses.
fn links(operation_id: &str, responses: &mut Map<String, Value>) {
    for (_, status, targets, parameters) in LINKS.iter().filter(|l| l.0 == operation_id) {
        let Some(response) = responses.get_mut(*status).and_then(Value::as_object_mut) else {
            continue;
        };
        let parameters: Map<String, Value> = parameters
            .iter()
            .map(|(name, from)| ((*name).to_owned(), json!(from)))
            .collect();
        let links: Map<String, Value> = targets
            .iter()
            .map(|target| {
                let link = json!({"operationId": target, "parameters": parameters});
                ((*target).to_owned(), link)
            })
            .collect();
        response.insert("links".into(), Value::Object(links));
    }
}

/// The keys of a path item that are methods.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// POSTs that change nothing, and so take no `Idempotency-Key`.
const READ_ONLY_POSTS: [&str; 2] = ["/v1/introspect", "/v1/keys/verify"];

/// Operations that answer without the database.
const WITHOUT_DATABASE: [&str; 4] = ["/healthz", "/readyz", "/metrics", "/openapi.json"];

/// The `Idempotency-Key` request header of API.md's "Safe retries": 1 to 255
/// printable ASCII characters. Spaces around a header value are not part of it,
/// so the pattern asks for a visible first and last character.
fn idempotency_key() -> Value {
    json!({
        "name": "Idempotency-Key",
        "in": "header",
        "required": false,
        "description": "Makes a retry safe: the same key (1 to 255 printable ASCII characters, \
            scoped to the caller) with the same body within 24 hours gets the original status \
            and body again and changes nothing; with a different body, 422 \
            `idempotency_key_reused`; while the first request is in flight, 409 `conflict`.",
        "schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": 255,
            "pattern": "^[!-~]([ -~]{0,253}[!-~])?$"
        }
    })
}

/// Adds to one operation what API.md says of every operation of its kind.
fn complete(path: &str, method: &str, operation: &mut Value) {
    let Some(operation) = operation.as_object_mut() else {
        return;
    };
    let protected = operation
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    let has_body = operation.contains_key("requestBody");
    if let Some(body) = operation.get_mut("requestBody") {
        optional_body(body);
    }
    let located = |place: &str| {
        operation
            .get("parameters")
            .and_then(Value::as_array)
            .is_some_and(|ps| ps.iter().any(|p| p["in"] == place))
    };
    let (in_path, in_query) = (located("path"), located("query"));
    let guarded = method == "post" && !READ_ONLY_POSTS.contains(&path);
    let operation_id = operation
        .get("operationId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if guarded {
        if let Some(params) = operation
            .entry("parameters")
            .or_insert_with(|| json!([]))
            .as_array_mut()
        {
            params.push(idempotency_key());
        }
    }
    let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    if protected {
        error(responses, "401", "`unauthenticated`: no valid credential");
    }
    if has_body {
        error(
            responses,
            "400",
            "`invalid_json`: the body is not valid JSON",
        );
        error(
            responses,
            "413",
            "`payload_too_large`: the body is over 64 KiB",
        );
        error(
            responses,
            "415",
            "`unsupported_media_type`: the body is not declared as JSON",
        );
        error(
            responses,
            "422",
            "`validation_error`: a missing, unknown or wrongly typed field, or a bad value",
        );
    }
    if in_query {
        error(
            responses,
            "422",
            "`validation_error`: a bad query parameter",
        );
    }
    if in_path {
        error(
            responses,
            "404",
            "`not_found`: no such object, or not visible to the caller",
        );
    }
    if guarded || method == "patch" || method == "delete" {
        error(
            responses,
            "409",
            "`conflict`: the object changed concurrently; retry",
        );
    }
    if guarded {
        error(
            responses,
            "409",
            "`conflict`: a request with this Idempotency-Key is still in flight",
        );
        error(
            responses,
            "422",
            "`idempotency_key_reused`: this Idempotency-Key came with a different body",
        );
    }
    if !WITHOUT_DATABASE.contains(&path) {
        error(
            responses,
            "503",
            "`unavailable`: the database cannot be reached",
        );
    }
    for (status, response) in responses.iter_mut() {
        headers(status, response);
    }
    if let Some(id) = operation_id {
        links(&id, responses);
    }
}

/// An optional body (`Option<T>` in an annotation) is left out, not sent as
/// `null`: its schema is `T`'s alone.
fn optional_body(body: &mut Value) {
    if body.get("required") == Some(&Value::Bool(true)) {
        return;
    }
    let Some(contents) = body.get_mut("content").and_then(Value::as_object_mut) else {
        return;
    };
    for content in contents.values_mut() {
        let Some(schema) = content.get_mut("schema") else {
            continue;
        };
        let inner = match schema.get("oneOf").and_then(Value::as_array) {
            Some(one_of) if one_of.len() == 2 && one_of[0] == json!({"type": "null"}) => {
                one_of[1].clone()
            }
            _ => continue,
        };
        *schema = inner;
    }
}

/// Declares an error response, or adds `description` to the one declared.
fn error(responses: &mut Map<String, Value>, status: &str, description: &str) {
    match responses.get_mut(status) {
        Some(declared) => {
            let text = declared["description"].as_str().unwrap_or_default();
            if !text.contains(description) {
                declared["description"] = if text.is_empty() {
                    description.into()
                } else {
                    format!("{text}; {description}").into()
                };
            }
        }
        None => {
            responses.insert(
                status.into(),
                json!({
                    "description": description,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
                }),
            );
        }
    }
}

/// The response headers API.md promises, declared once.
fn response_headers() -> Value {
    json!({
        "X-Request-Id": {
            "description": "The client's request id if it sent a sane one, else a new one; \
                equals `request_id` of an error body.",
            "required": true,
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"}
        },
        "WWW-Authenticate": {
            "required": true,
            "schema": {"type": "string", "const": "Bearer"}
        },
        "Retry-After": {
            "description": "Seconds until an attempt may succeed.",
            "required": true,
            "schema": {"type": "integer", "minimum": 0}
        }
    })
}

/// `X-Request-Id` on every response, `WWW-Authenticate` on 401 and
/// `Retry-After` on 429.
fn headers(status: &str, response: &mut Value) {
    let Some(response) = response.as_object_mut() else {
        return;
    };
    let Some(headers) = response
        .entry("headers")
        .or_insert_with(|| json!({}))
        .as_object_mut()
    else {
        return;
    };
    let named = |name: &str| json!({"$ref": format!("#/components/headers/{name}")});
    headers.insert("X-Request-Id".into(), named("X-Request-Id"));
    match status {
        "401" => {
            headers.insert("WWW-Authenticate".into(), named("WWW-Authenticate"));
        }
        "429" => {
            headers.insert("Retry-After".into(), named("Retry-After"));
        }
        _ => {}
    }
}
