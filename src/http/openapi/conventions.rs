//! The conventions API.md states once for every operation, written into each
//! operation of the generated document: the error answers and headers every
//! route shares, `Idempotency-Key` on state-changing POSTs, and links.

use serde_json::{json, Map, Value};

/// OpenAPI links: which ids of an answer the next requests take, for clients and
/// stateful tests. (operation, status, target operations, their parameters)
type Link = (
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
);

const LINKS: [Link; 8] = [
    (
        "create_invitation",
        "201",
        &["revoke_invitation"],
        &[
            ("org_id", "$response.body#/org_id"),
            ("invitation_id", "$response.body#/id"),
        ],
    ),
    (
        "create_user",
        "201",
        &[
            "get_user",
            "update_user",
            "disable_user",
            "enable_user",
            "change_password",
            "erase_user",
            "personal_data",
            "request_email_verification",
            "request_email_change",
            "enroll_totp",
            "confirm_totp",
            "disable_totp",
            "regenerate_backup_codes",
            "registration_options",
            "list_passkeys",
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
            "create_invitation",
            "list_invitations",
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
pub(super) fn complete(path: &str, method: &str, operation: &mut Value) {
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
pub(super) fn response_headers() -> Value {
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
