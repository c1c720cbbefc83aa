//! The OpenAPI 3.1 document served at `GET /openapi.json`.
//!
//! Written by hand as JSON: the request and response types live in the
//! handler modules and in core (the `Guide` model), whose serde attributes
//! (`deny_unknown_fields`, internally tagged enums, `Option` → `null`) are
//! the contract; this file restates them. The schemathesis run in the test
//! command (`tests/schemathesis/run.sh`) checks every documented status,
//! content type and response schema against the live server, so a handler
//! that drifts from this document fails the test command.

use std::sync::OnceLock;

use axum::Json;
use serde_json::{Value, json};

use super::attachments::MEDIA_TYPE_MAX_LEN;
use super::catalog::MAX_PAGE;
use crate::state::DEFAULT_MAX_ATTACHMENT_BYTES;

const ERROR: &str = "#/components/schemas/Error";

/// The 403 of an endpoint confined to the operator's scopes.
const OUT_OF_SCOPE: &str =
    "`out_of_scope`: the target's issuer or department is not among the operator's scopes";

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// A JSON response with the given schema.
fn ok(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

/// The typed error body, with the codes the handler uses for this status.
fn err(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": ERROR}}}})
}

/// Error responses shared by kinds of input.
#[derive(Clone, Copy)]
enum Input {
    /// A path parameter (`invalid_path`).
    Path,
    /// A query string (`invalid_query`, `invalid_limit`).
    Query,
    /// A JSON body (`malformed_json`, `invalid_body`, 413, 415).
    Json,
    /// A text body (`invalid_text`, `unreadable_body`, 413).
    Text,
    /// A resident bearer token (401).
    Resident,
    /// An operator's bearer token (401 missing, 403 unknown or the wrong role).
    Operator,
    /// Rate limited (429 with `Retry-After`, ADR 0164).
    Limited,
}

/// Builds the `responses` object: the successes given, the errors implied
/// by the inputs, the handler's own errors, and 500.
fn responses(success: &[(&str, Value)], inputs: &[Input], own: &[(&str, &str)]) -> Value {
    let mut r = serde_json::Map::new();
    for (status, resp) in success {
        r.insert((*status).to_owned(), resp.clone());
    }
    let mut add = |status: &str, text: &str| {
        let entry = r.entry(status.to_owned()).or_insert_with(|| err(""));
        let old = entry["description"].as_str().unwrap_or_default().to_owned();
        entry["description"] = Value::String(if old.is_empty() {
            text.to_owned()
        } else {
            format!("{old}; {text}")
        });
    };
    for input in inputs {
        match input {
            Input::Path => add("400", "`invalid_path`: a path parameter is not valid"),
            Input::Query => add(
                "400",
                "`invalid_query`: the query string does not parse; `invalid_limit`: limit outside 1..=1000",
            ),
            Input::Json => {
                add(
                    "400",
                    "`malformed_json`: the body is not JSON; `unreadable_body`",
                );
                add("413", "`payload_too_large`: the body exceeds the limit");
                add(
                    "415",
                    "`unsupported_media_type`: Content-Type is not application/json",
                );
                add(
                    "422",
                    "`invalid_body`: the body lacks required members, has unknown ones or wrong types",
                );
            }
            Input::Text => {
                add(
                    "400",
                    "`invalid_text`: the body is not UTF-8; `unreadable_body`",
                );
                add("413", "`payload_too_large`: the body exceeds the limit");
            }
            Input::Resident => add(
                "401",
                "`unauthorized`: missing, unknown or expired resident token",
            ),
            Input::Operator => {
                add("401", "`unauthorized`: missing operator token");
                add(
                    "403",
                    "`forbidden`: not an operator's token (unknown or revoked); `forbidden_role`: the operator's role may not take this action (ADR 0165)",
                );
            }
            Input::Limited => add(
                "429",
                "`rate_limited`: over a rate limit of the client address or the target; retry after `Retry-After` seconds",
            ),
        }
    }
    for (status, text) in own {
        add(status, text);
    }
    add(
        "500",
        "`internal`: internal error (details are logged, not sent)",
    );
    if let Some(limited) = r.get_mut("429") {
        limited["headers"] = json!({"Retry-After": {"required": true,
            "description": "Seconds until a retry can succeed",
            "schema": {"type": "integer", "minimum": 1}}});
    }
    Value::Object(r)
}

fn json_body(schema: &str) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": schema_ref(schema)}}})
}

fn path_param(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": description, "schema": schema})
}

fn if_none_match() -> Value {
    json!({"name": "If-None-Match", "in": "header", "required": false,
        "description": "An ETag from an earlier response (or `*`): 304 when it still matches",
        "schema": {"type": "string"}})
}

fn etag_headers() -> Value {
    json!({
        "ETag": {"required": true, "description": "Strong entity tag of this representation", "schema": {"type": "string"}},
        "Cache-Control": {"required": true, "description": "`no-cache`: revalidate with If-None-Match", "schema": {"type": "string"}}
    })
}

fn with_etag(mut resp: Value) -> Value {
    resp["headers"] = etag_headers();
    resp
}

/// Adds OpenAPI links (what a response's values can be used for next).
fn links(mut resp: Value, links: Value) -> Value {
    resp["links"] = links;
    resp
}

fn not_modified() -> Value {
    json!({"description": "Not modified: If-None-Match matched the current ETag (no body)", "headers": etag_headers()})
}

fn u32_schema() -> Value {
    json!({"type": "integer", "minimum": 0, "maximum": u32::MAX})
}

fn u64_schema() -> Value {
    json!({"type": "integer", "minimum": 0, "maximum": u64::MAX})
}

fn nullable(mut schema: Value) -> Value {
    if let Some(t) = schema.get("type").cloned() {
        schema["type"] = json!([t, "null"]);
        schema
    } else {
        json!({"anyOf": [schema, {"type": "null"}]})
    }
}

fn string_array() -> Value {
    json!({"type": "array", "items": {"type": "string"}})
}

/// A closed object: every member listed, `required` ones must be present.
fn object(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "required": required, "properties": properties, "additionalProperties": false})
}

/// An object that tolerates unknown members (serde's default).
fn open_object(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "required": required, "properties": properties})
}

fn guide_schemas() -> Value {
    let text = || json!({"type": "string"});
    json!({
        "ItemType": {"type": "string", "enum": [
            "administrative_licensing", "administrative_penalty", "administrative_enforcement",
            "administrative_levy", "administrative_payment", "administrative_inspection",
            "administrative_confirmation", "administrative_reward", "administrative_adjudication",
            "other_administrative_power", "public_service"]},
        "ServiceObject": {"type": "string", "enum": ["natural_person", "legal_person", "both"]},
        "MaterialForm": {"type": "string", "enum": ["paper", "electronic", "both"]},
        "OnlineDepth": {"type": "string", "enum": ["I", "II", "III", "IV"]},
        "Material": open_object(&["name", "form", "required", "copies", "licence_types", "note"], json!({
            "name": text(), "form": schema_ref("MaterialForm"), "required": {"type": "boolean"},
            "copies": u32_schema(), "licence_types": string_array(), "note": text()})),
        "ProcessStep": open_object(&["step", "description"], json!({"step": text(), "description": text()})),
        "Fee": open_object(&["name", "amount_yuan", "basis"], json!({
            "name": text(), "amount_yuan": {"type": "string", "description": "decimal yuan, at most 2 places"},
            "basis": text()})),
        "Location": open_object(&["address", "hours", "phone"], json!({"address": text(), "hours": text(), "phone": text()})),
        "Faq": open_object(&["q", "a"], json!({"q": text(), "a": text()})),
        "ChoiceOption": open_object(&["value", "label_zh", "label_en"], json!({"value": text(), "label_zh": text(), "label_en": text()})),
        "FieldKind": {
            "description": "Internally tagged by `type`",
            "oneOf": [
                open_object(&["type", "min_len", "max_len"], json!({"type": {"const": "text"},
                    "min_len": u32_schema(), "max_len": u32_schema(), "pattern": nullable(text())})),
                open_object(&["type", "integer"], json!({"type": {"const": "number"},
                    "min": nullable(json!({"type": "number"})), "max": nullable(json!({"type": "number"})),
                    "integer": {"type": "boolean"}})),
                open_object(&["type"], json!({"type": {"const": "date"},
                    "not_before": nullable(text()), "not_after": nullable(text())})),
                open_object(&["type", "options", "multiple"], json!({"type": {"const": "choice"},
                    "options": {"type": "array", "items": schema_ref("ChoiceOption")}, "multiple": {"type": "boolean"}})),
                open_object(&["type"], json!({"type": {"const": "id_number"}})),
                open_object(&["type"], json!({"type": {"const": "phone"}})),
                open_object(&["type", "licence_types"], json!({"type": {"const": "licence_ref"},
                    "licence_types": string_array()})),
                open_object(&["type", "media_types", "max_bytes"], json!({"type": {"const": "attachment"},
                    "media_types": string_array(), "max_bytes": u64_schema()})),
            ]
        },
        "FormField": open_object(&["name", "label_zh", "label_en", "kind", "required"], json!({
            "name": text(), "label_zh": text(), "label_en": text(), "kind": schema_ref("FieldKind"),
            "required": {"type": "boolean"}, "help": nullable(text())})),
        "FormSchema": open_object(&["version", "fields"], json!({
            "version": u32_schema(), "fields": {"type": "array", "items": schema_ref("FormField")}})),
    })
}

/// Merges the members of objects (later ones win).
fn merge(parts: &[Value]) -> Value {
    let mut out = serde_json::Map::new();
    for p in parts {
        if let Value::Object(m) = p {
            out.extend(m.clone());
        }
    }
    Value::Object(out)
}

fn guide_schema() -> Value {
    let text = || json!({"type": "string"});
    let required = [
        "id",
        "name",
        "basic_code",
        "implementation_code",
        "item_type",
        "department",
        "department_code",
        "area_code",
        "legal_basis",
        "service_object",
        "acceptance_conditions",
        "materials",
        "process",
        "statutory_limit_days",
        "promised_limit_days",
        "fees",
        "online_depth",
        "visits_required",
        "locations",
        "contact_phone",
        "complaint_phone",
        "faq",
        "topics",
        "form",
        "version",
        "updated_at",
    ];
    let identity = json!({
        "id": {"type": "string", "description": "Catalog id: the implementation code"},
        "name": text(), "basic_code": text(), "implementation_code": text(),
        "item_type": schema_ref("ItemType"), "department": text(), "department_code": text(),
        "area_code": text(), "main_item": nullable(text()), "legal_basis": string_array(),
        "service_object": schema_ref("ServiceObject"), "acceptance_conditions": string_array(),
    });
    let handling = json!({
        "materials": {"type": "array", "items": schema_ref("Material")},
        "process": {"type": "array", "items": schema_ref("ProcessStep")},
        "statutory_limit_days": u32_schema(), "promised_limit_days": u32_schema(),
        "fees": {"type": "array", "items": schema_ref("Fee")},
        "online_depth": schema_ref("OnlineDepth"),
        "visits_required": {"type": "integer", "minimum": 0, "maximum": 255},
    });
    let rest = json!({
        "locations": {"type": "array", "items": schema_ref("Location")},
        "contact_phone": text(), "complaint_phone": text(),
        "faq": {"type": "array", "items": schema_ref("Faq")}, "topics": string_array(),
        "form": schema_ref("FormSchema"), "version": u64_schema(),
        "updated_at": {"type": "integer", "description": "Unix seconds"},
    });
    open_object(&required, merge(&[identity, handling, rest]))
}

fn schemas() -> Value {
    let text = || json!({"type": "string"});
    let unix = || json!({"type": "integer", "description": "Unix seconds"});
    let mut s = json!({
        "Error": object(&["error"], json!({"error": object(&["code", "message"], json!({
            "code": {"type": "string", "description": "Stable machine-readable code"},
            "message": {"type": "string", "description": "Short English message (never echoes submitted values)"},
            "details": {"description": "Structured details, e.g. `{\"fields\": [...]}` for validation_failed"}}))})),
        "Health": object(&["status", "catalog_head", "trust_bundle_version"], json!({
            "status": {"const": "ok"}, "catalog_head": u64_schema(),
            "trust_bundle_version": nullable(u64_schema())})),
        "Change": object(&["id", "seq", "checksum", "deleted", "guide"], json!({
            "id": text(), "seq": u64_schema(),
            "checksum": {"type": "string", "description": "SHA-256 hex of the guide JSON; empty for a tombstone"},
            "deleted": {"type": "boolean"},
            "guide": {"anyOf": [schema_ref("Guide"), {"type": "null"}]}})),
        "ChangesPage": object(&["since", "next", "head", "more", "changes"], json!({
            "since": u64_schema(), "next": u64_schema(), "head": u64_schema(), "more": {"type": "boolean"},
            "changes": {"type": "array", "items": schema_ref("Change")}})),
        "StatusListToken": object(&["uri", "token"], json!({
            "uri": text(), "token": {"type": "string", "description": "The signed statuslist+jwt"}})),
        "EnrolRequest": object(&["activation_code", "device_jwk"], json!({
            "activation_code": {"type": "string", "minLength": 1, "maxLength": 128, "description": "1..=128 bytes"},
            "device_jwk": {"type": "object", "description": "The device's public Ed25519 JWK (no private part `d`)",
                "required": ["kty", "crv", "x"], "not": {"required": ["d"]},
                "properties": {"kty": {"const": "OKP"}, "crv": {"const": "Ed25519"},
                    "x": {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$", "description": "base64url of the 32-byte key"}}},
            "replaces": {"type": "object", "additionalProperties": false, "required": ["device_id", "signature"],
                "description": "Re-enrolment (ADR 0125): the device this one replaces, retired in the same transaction",
                "properties": {"device_id": {"type": "string", "minLength": 1, "maxLength": 128},
                    "signature": {"type": "string", "description": "base64url raw signature by the old device key over `zhangban-reenrol-v1.<old device id>.<new device id>`"}}}})),
        "EnrolResponse": object(&["device_id", "resident_id"], json!({"device_id": text(), "resident_id": text()})),
        "ChallengeRequest": object(&["device_id"], json!({"device_id": text()})),
        "ChallengeResponse": object(&["challenge_id", "nonce", "expires_at"], json!({
            "challenge_id": text(), "nonce": text(), "expires_at": unix()})),
        "TokenRequest": object(&["device_id", "challenge_id", "signature"], json!({
            "device_id": text(), "challenge_id": text(),
            "signature": {"type": "string", "description": "base64url Ed25519 signature over `zhangban-auth-v1.<challenge_id>.<nonce>`"}})),
        "TokenResponse": object(&["token", "expires_at"], json!({"token": text(), "expires_at": unix()})),
        "NonceRequest": object(&["guide_id"], json!({"guide_id": text()})),
        "NonceResponse": object(&["nonce", "audience", "expires_at"], json!({
            "nonce": text(), "audience": text(), "expires_at": unix()})),
        "SubmissionRequest": object(&["guide_id", "form_version", "values"], json!({
            "guide_id": text(), "form_version": u32_schema(),
            "values": {"type": "object", "description": "Form values by field name"}})),
        "Receipt": object(&["client_id", "tracking_number", "guide_id", "accepted_at"], json!({
            "client_id": text(), "tracking_number": text(), "guide_id": text(), "accepted_at": unix()})),
        "Submission": object(&["receipt", "state", "values", "form_version"], json!({
            "receipt": schema_ref("Receipt"), "state": text(), "values": {}, "form_version": u32_schema()})),
        "StatusEvent": object(&["seq", "client_id", "tracking_number", "state", "note", "at"], json!({
            "seq": u64_schema(), "client_id": text(), "tracking_number": text(), "state": text(),
            "note": nullable(text()), "at": unix()})),
        "EventsPage": object(&["since", "next", "events"], json!({
            "since": u64_schema(), "next": u64_schema(),
            "events": {"type": "array", "items": schema_ref("StatusEvent")}})),
        "WalletEntry": object(&["id", "licence_id", "device_id", "vct", "sd_jwt", "issued_at"], json!({
            "id": u64_schema(), "licence_id": text(), "device_id": text(), "vct": text(),
            "sd_jwt": text(), "issued_at": unix()})),
        "PublishedGuide": object(&["id", "seq", "checksum"], json!({
            "id": text(), "seq": u64_schema(), "checksum": text()})),
        "DeletedGuide": object(&["id", "seq", "deleted"], json!({
            "id": text(), "seq": u64_schema(), "deleted": {"const": true}})),
        "NewResident": object(&["id", "name"], json!({
            "id": {"type": "string", "minLength": 1, "maxLength": 64, "description": "1..=64 bytes"},
            "name": text(),
            "activation_code": nullable(json!({"type": "string", "maxLength": 128,
                "description": "Omit to have the server generate one (returned once). A supplied code: 16+ Crockford base32 symbols (dashes and spaces ignored), 9+ distinct"})),
            "uses": nullable(u32_schema()), "valid_days": nullable(u32_schema())})),
        "ResidentCreated": object(&["id", "activation_expires_at", "uses"], json!({
            "id": text(), "activation_expires_at": unix(), "uses": u32_schema(),
            "activation_code": {"type": "string", "pattern": "^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$",
                "description": "The generated code, shown this once (absent when the operator supplied one)"}})),
        "TrustBundleAccepted": object(&["version"], json!({"version": u64_schema()})),
        "IssueRequest": object(&["resident_id", "issuer_id", "claims"], json!({
            "resident_id": text(), "issuer_id": text(), "vct": nullable(text()),
            "claims": {"type": "object", "description": "The licence fields"}})),
        "StatusChange": object(&["status"], json!({"status": {"type": "string", "enum": ["valid", "suspended", "revoked"]}})),
        "StatusChanged": object(&["licence_id", "status", "copies"], json!({
            "licence_id": text(), "status": text(), "copies": {"type": "integer", "minimum": 0}})),
        "AttachmentDeclaration": object(&["size", "media_type"], json!({
            "size": {"type": "integer", "minimum": 1, "maximum": DEFAULT_MAX_ATTACHMENT_BYTES,
                "description": "The content's size in bytes: 1 up to the server's `max_attachment_bytes` (default 20 MiB; more is 413)"},
            "media_type": {"type": "string", "maxLength": MEDIA_TYPE_MAX_LEN,
                "pattern": "^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$",
                "description": "`type/subtype` without parameters (stored lower-case)"}})),
        "AttachmentUpload": object(&["sha256", "size", "media_type", "received", "complete"], json!({
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "size": u64_schema(), "media_type": text(),
            "received": {"type": "integer", "minimum": 0, "maximum": u64::MAX,
                "description": "Bytes stored: the offset the next chunk must start at (the resume point)"},
            "complete": {"type": "boolean", "description": "Every byte arrived and the content hashes to sha256"}})),
        "AttachmentLink": object(&["field", "sha256", "size", "media_type", "name"], json!({
            "field": {"type": "string", "description": "The form field"},
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "size": u64_schema(), "media_type": text(),
            "name": {"type": "string", "description": "The file name the resident chose (display only)"}})),
        "Transition": object(&["state"], json!({
            "state": {"type": "string", "enum": ["submitted", "accepted", "reviewing", "returned", "approved", "denied"]},
            "note": nullable(json!({"type": "string", "maxLength": 500}))})),
    });
    s["Guide"] = guide_schema();
    merge(&[
        s,
        guide_schemas(),
        operator_schemas(),
        lexicon_schemas(),
        bundle_schemas(),
        evaluation_schemas(),
    ])
}

/// The schemas of operator management (ADR 0165).
fn operator_schemas() -> Value {
    let text = || json!({"type": "string"});
    let unix = || json!({"type": "integer", "description": "Unix seconds"});
    json!({
        "NewOperator": object(&["name", "role"], json!({
            "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]{0,63}$",
                "description": "Unique, never reused; not `bootstrap` or `setup`"},
            "role": {"type": "string", "enum": ["admin", "issuer", "reviewer", "publisher"]},
            "scopes": {"type": "array", "maxItems": 64, "items": {"type": "string", "minLength": 1, "maxLength": 128},
                "description": "Issuer ids (issuer) or department codes (reviewer, publisher); none for an admin"}})),
        "CreatedOperator": object(&["name", "role", "scopes", "created_at", "token"], json!({
            "name": text(), "role": text(), "scopes": string_array(), "created_at": unix(),
            "token": {"type": "string", "pattern": "^zbo_[A-Za-z0-9_-]{43}$",
                "description": "The bearer token, shown this once (only its SHA-256 is stored)"}})),
        "Operator": object(&["name", "role", "scopes", "created_at", "revoked_at"], json!({
            "name": text(), "role": text(), "scopes": string_array(), "created_at": unix(),
            "revoked_at": nullable(unix())})),
        "RevokedOperator": object(&["name", "revoked_at"], json!({"name": text(), "revoked_at": unix()})),
    })
}

/// Operator management (admin): create, list, revoke named operators.
fn operator_paths() -> Value {
    use Input::{Json as J, Operator as Op, Path as P};
    let operator = json!([{"operatorToken": []}]);
    let array_of = |name: &str| json!({"type": "array", "items": schema_ref(name)});
    json!({
        "/v1/operator/operators": {
            "post": {
                "operationId": "addOperator", "tags": ["operator"], "security": operator,
                "summary": "Create a named operator with one role and its scopes (admin); the token is returned once",
                "requestBody": json_body("NewOperator"),
                "responses": responses(&[("201", links(ok("Created", schema_ref("CreatedOperator")), json!({
                    "Revoke": {"operationId": "revokeOperator", "parameters": {"name": "$response.body#/name"}}})))], &[Op, J], &[
                    ("400", "`invalid_operator`: a bad or reserved name, an unknown role, scopes for an admin, none (or over 64, or malformed) for a scoped role"),
                    ("409", "`conflict`: an operator with this name exists or existed")])},
            "get": {
                "operationId": "listOperators", "tags": ["operator"], "security": operator,
                "summary": "Every operator, active and revoked (admin); never tokens",
                "responses": responses(&[("200", ok("Operators", array_of("Operator")))], &[Op], &[])}},
        "/v1/operator/operators/{name}": {"delete": {
            "operationId": "revokeOperator", "tags": ["operator"], "security": operator,
            "parameters": [path_param("name", "The operator's name", json!({"type": "string"}))],
            "summary": "Revoke an operator (admin): its token stops working at once",
            "responses": responses(&[("200", ok("Revoked", schema_ref("RevokedOperator")))], &[Op, P], &[
                ("404", "`not_found`: no such active operator"),
                ("409", "`invalid_state`: the last active admin")])}},
    })
}

/// The search lexicon (ADR 0181): public document with ETag; publishers' entries.
fn lexicon_paths() -> Value {
    use Input::{Json as J, Operator as Op, Path as P};
    let operator = json!([{"operatorToken": []}]);
    let term = path_param(
        "term",
        "What residents type (1..=32 characters)",
        json!({"type": "string", "minLength": 1, "maxLength": 32}),
    );
    let invalid = "`invalid_entry`: the entry breaks a lexicon rule (details.rule): empty or over 32 characters, no or over 8 targets, control characters, spaces around the term, a source over 200 characters";
    json!({
        "/v1/catalog/lexicon": {"get": {
            "operationId": "catalogLexicon", "tags": ["catalog"], "security": [],
            "summary": "The search lexicon phones use, with ETag (its version)",
            "parameters": [if_none_match()],
            "responses": responses(&[
                ("200", with_etag(ok("The lexicon", schema_ref("Lexicon")))),
                ("304", not_modified())], &[], &[("404", "`not_found`: no lexicon")])}},
        "/v1/operator/lexicon": {"get": {
            "operationId": "listLexicon", "tags": ["operator"], "security": operator,
            "summary": "The current lexicon (publisher)",
            "responses": responses(&[("200", ok("The lexicon", schema_ref("Lexicon")))], &[Op], &[])}},
        "/v1/operator/lexicon/entries/{term}": {
            "parameters": [term],
            "put": {
                "operationId": "putLexiconEntry", "tags": ["operator"], "security": operator,
                "summary": "Add or replace the term's entry (publisher, district-wide): the next version",
                "requestBody": json_body("LexiconEntryRequest"),
                "responses": responses(&[("200", ok("Stored", schema_ref("LexiconChanged")))], &[Op, P, J], &[
                    ("409", "`invalid_state`: the lexicon is full (20000 entries)"),
                    ("422", invalid)])},
            "delete": {
                "operationId": "deleteLexiconEntry", "tags": ["operator"], "security": operator,
                "summary": "Remove the term's entry (publisher): the next version",
                "responses": responses(&[("200", ok("Removed", schema_ref("LexiconChanged")))], &[Op, P], &[
                    ("404", "`not_found`: no entry for this term")])}},
    })
}

/// Life-event bundles (ADR 0230): publication, sync with ETag, one
/// application fanned out into member submissions.
fn bundle_paths() -> Value {
    use Input::{Json as J, Limited as L, Operator as Op, Path as P, Resident as R};
    let operator = json!([{"operatorToken": []}]);
    let resident = json!([{"residentToken": []}]);
    let bundle_id = path_param(
        "id",
        "Bundle id: [a-z][a-z0-9-]*, at most 64 characters",
        json!({"type": "string"}),
    );
    json!({
        "/v1/catalog/bundles": {"get": {
            "operationId": "catalogBundles", "tags": ["catalog"], "security": [],
            "summary": "The published life-event bundles (一件事一次办), with ETag (the list's version)",
            "parameters": [if_none_match()],
            "responses": responses(&[
                ("200", with_etag(ok("The bundles, by id", schema_ref("BundleList")))),
                ("304", not_modified())], &[], &[])}},
        "/v1/operator/bundles/{id}": {
            "parameters": [bundle_id],
            "put": {
                "operationId": "publishBundle", "tags": ["operator"], "security": operator,
                "summary": "Publish (create or replace) a bundle (publisher, district-wide): checked whole against the catalog; its version must rise with every change",
                "requestBody": json_body("Bundle"),
                "responses": responses(&[("200", ok("Published (or unchanged)", schema_ref("PublishedBundle")))], &[Op, P, J], &[
                    ("409", "`conflict`: the same version with other content, or a lower version"),
                    ("422", "`id_mismatch`: the path id and the bundle id differ; `invalid_bundle`: the bundle cannot be used with the catalog (details.rule)")])}},
        "/v1/bundle-submissions": {"get": {
            "operationId": "listBundleSubmissions", "tags": ["submissions"], "security": resident,
            "summary": "The resident's bundle applications, newest first, with their members and derived state",
            "responses": responses(&[("200", ok("Bundle applications",
                json!({"type": "array", "items": schema_ref("BundleSubmission")})))], &[R], &[])}},
        "/v1/bundle-submissions/{client_id}": {
            "parameters": [client_id_param()],
            "put": {
                "operationId": "submitBundle", "tags": ["submissions"], "security": resident,
                "summary": "Submit a bundle application once, idempotently: one submission per member that applies, each to its own department; every retry gets the same receipt",
                "requestBody": json_body("BundleSubmissionRequest"),
                "responses": responses(&[("200", links(ok("Bundle receipt (new or replayed)", schema_ref("BundleReceipt")), json!({
                    "BundleSubmission": {"operationId": "getBundleSubmission", "parameters": {"client_id": "$response.body#/client_id"}}})))], &[R, P, J, L], &[
                    ("400", "`invalid_client_id`"),
                    ("409", "`client_id_taken`: used by another resident (or a member's id is taken); `client_id_reused`: used for another application"),
                    ("422", "`unknown_bundle`; `bundle_version_mismatch`: details.current_version; `bundle_unavailable`: a member's guide is gone (details.rule); `validation_failed`: details.fields lists per-field errors on the merged form's names")])},
            "get": {
                "operationId": "getBundleSubmission", "tags": ["submissions"], "security": resident,
                "summary": "One of the resident's bundle applications, with its members and derived state",
                "responses": responses(&[("200", ok("Bundle application", schema_ref("BundleSubmission")))], &[R, P], &[
                    ("404", "`not_found`: no such bundle application of this resident")])}},
        "/v1/bundle-submissions/{client_id}/nonce": {"post": {
            "operationId": "bundleSubmissionNonce", "tags": ["submissions"], "security": resident,
            "parameters": [client_id_param()],
            "summary": "A fresh nonce for the licence presentations of one bundle application (audience `bundle:<id>`)",
            "requestBody": json_body("BundleNonceRequest"),
            "responses": responses(&[("200", ok("Nonce", schema_ref("NonceResponse")))], &[R, P, J], &[
                ("400", "`invalid_client_id`")])}},
    })
}

/// The bundles' schemas.
fn bundle_schemas() -> Value {
    let text = || json!({"type": "string"});
    let unix = || json!({"type": "integer", "description": "Unix seconds"});
    let array = |name: &str| json!({"type": "array", "items": schema_ref(name)});
    json!({
        "BundleCondition": open_object(&["question", "equals"], json!({"question": text(), "equals": text()})),
        "BundleMember": open_object(&["key", "guide_id"], json!({
            "key": text(), "guide_id": text(), "when": nullable(schema_ref("BundleCondition"))})),
        "BundleMemberField": open_object(&["member", "field"], json!({"member": text(), "field": text()})),
        "BundleSharedField": open_object(&["name"], json!({"name": text(), "from": array("BundleMemberField")})),
        "Bundle": open_object(&["id", "name", "version", "summary", "members"], json!({
            "id": text(), "name": text(), "version": u32_schema(), "summary": text(),
            "questions": array("FormField"), "members": array("BundleMember"),
            "shared": array("BundleSharedField")})),
        "BundleList": object(&["version", "bundles"], json!({
            "version": u64_schema(), "bundles": array("Bundle")})),
        "PublishedBundle": object(&["id", "version", "list_version", "changed"], json!({
            "id": text(), "version": u32_schema(), "list_version": u64_schema(), "changed": {"type": "boolean"}})),
        "BundleSubmissionRequest": object(&["bundle_id", "bundle_version", "values"], json!({
            "bundle_id": text(), "bundle_version": u32_schema(),
            "values": {"type": "object", "description": "The merged form's values: the bundle's questions, the shared facts, each member's own fields as `<key>__<field>`"}})),
        "BundleNonceRequest": object(&["bundle_id"], json!({"bundle_id": text()})),
        "MemberReceipt": object(&["member", "receipt"], json!({"member": text(), "receipt": schema_ref("Receipt")})),
        "BundleReceipt": object(&["client_id", "tracking_number", "bundle_id", "bundle_version", "accepted_at", "members"], json!({
            "client_id": text(), "tracking_number": text(), "bundle_id": text(),
            "bundle_version": u32_schema(), "accepted_at": unix(), "members": array("MemberReceipt")})),
        "BundleMemberSubmission": object(&["member", "submission"], json!({
            "member": text(), "submission": schema_ref("Submission")})),
        "BundleSubmission": object(&["receipt", "state", "members"], json!({
            "receipt": schema_ref("BundleReceipt"),
            "state": {"type": "string", "enum": ["submitted", "accepted", "returned", "done"],
                "description": "Derived from the members': `done` all final, `returned` one returned for correction, `accepted` none waiting to be accepted"},
            "members": array("BundleMemberSubmission")})),
    })
}

/// The lexicon's schemas.
fn lexicon_schemas() -> Value {
    let word = || json!({"type": "string", "minLength": 1, "maxLength": 32});
    let targets = || json!({"type": "array", "minItems": 1, "maxItems": 8, "items": word()});
    let source = || json!({"type": "string", "maxLength": 200});
    json!({
        "LexiconEntry": object(&["term", "targets"], json!({
            "term": word(), "targets": targets(), "two_way": {"type": "boolean"}, "source": source()})),
        "Lexicon": object(&["version", "entries"], json!({
            "version": u64_schema(),
            "stopwords": {"type": "array", "items": word()},
            "entries": {"type": "array", "maxItems": 20000, "items": schema_ref("LexiconEntry")},
            "note": {"type": "string"}})),
        "LexiconEntryRequest": object(&["targets"], json!({
            "targets": targets(), "two_way": {"type": "boolean"}, "source": nullable(source())})),
        "LexiconChanged": object(&["term", "version"], json!({
            "term": {"type": "string"}, "version": u64_schema(), "deleted": {"type": "boolean"}})),
    })
}

fn client_id_param() -> Value {
    path_param(
        "client_id",
        "Client-generated submission id: 8-64 of A-Z a-z 0-9 - _",
        json!({"type": "string", "pattern": "^[A-Za-z0-9_-]{8,64}$"}),
    )
}

fn sha256_param() -> Value {
    path_param(
        "sha256",
        "SHA-256 of the attachment's content: 64 lower-case hex digits",
        json!({"type": "string", "pattern": "^[0-9a-f]{64}$"}),
    )
}

/// The attachment endpoints (resident uploads, operator reads).
fn attachment_paths() -> Value {
    use Input::{Json as J, Limited as L, Operator as Op, Path as P, Resident as R};
    let resident = json!([{"residentToken": []}]);
    let operator = json!([{"operatorToken": []}]);
    let upload = schema_ref("AttachmentUpload");
    let next_chunk = json!({
        "PutChunk": {"operationId": "putAttachmentChunk", "parameters": {
            "sha256": "$response.body#/sha256", "offset": "$response.body#/received"}},
        "UploadState": {"operationId": "getAttachment", "parameters": {"sha256": "$response.body#/sha256"}}});
    let tracking = path_param("tracking", "Tracking number", json!({"type": "string"}));
    json!({
        "/v1/attachments/{sha256}": {
            "parameters": [sha256_param()],
            "put": {
                "operationId": "declareAttachment", "tags": ["attachments"], "security": resident,
                "summary": "Start, or find, the resident's upload of this content; answers the resume point",
                "description": "Idempotent. An incomplete upload declared with another size restarts from byte 0; the media type is updated to the latest declaration.",
                "requestBody": json_body("AttachmentDeclaration"),
                "responses": responses(&[("200", links(ok("The upload's state", upload.clone()), next_chunk.clone()))], &[R, P, J, L], &[
                    ("400", "`invalid_sha256`: not 64 lower-case hex digits"),
                    ("409", "`attachment_conflict`: this content is complete with another size (details.size); `too_many_pending_uploads`: the resident has max_pending uploads incomplete (details.max_pending)"),
                    ("413", "`attachment_too_large`: size exceeds max_attachment_bytes (details.max_bytes); `attachment_quota_exceeded`: the resident's uploads would exceed its storage (details.quota_bytes, details.used_bytes)"),
                    ("422", "`invalid_size`: size 0; `invalid_media_type`: not type/subtype")])},
            "get": {
                "operationId": "getAttachment", "tags": ["attachments"], "security": resident,
                "summary": "The state of the resident's upload (where to resume)",
                "responses": responses(&[("200", links(ok("The upload's state", upload.clone()), next_chunk.clone()))], &[R, P], &[
                    ("400", "`invalid_sha256`"),
                    ("404", "`not_found`: this resident declared no upload of this content")])}},
        "/v1/attachments/{sha256}/chunks/{offset}": {"put": {
            "operationId": "putAttachmentChunk", "tags": ["attachments"], "security": resident,
            "parameters": [sha256_param(), path_param("offset", "Where the chunk starts: the upload's `received`", u64_schema())],
            "summary": "Store the bytes at offset (append at `received`; a retry of stored bytes changes nothing)",
            "description": "The last chunk is checked: the content must hash to sha256, else every byte is dropped and the upload restarts at 0.",
            "requestBody": {"required": true, "description": "The raw bytes, 1 up to max_chunk_bytes (default 1 MiB)",
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
            "responses": responses(&[("200", links(ok("The upload's state after the chunk", upload), next_chunk))], &[R, P, L], &[
                ("400", "`invalid_sha256`; `empty_chunk`: no bytes; `unreadable_body`"),
                ("404", "`not_found`: no such upload of this resident (declare it first)"),
                ("409", "`offset_mismatch`: the chunk does not start at the stored end (details.received: resume there)"),
                ("413", "`chunk_too_large`: the body exceeds max_chunk_bytes"),
                ("415", "`unsupported_media_type`: Content-Type is not application/octet-stream"),
                ("422", "`beyond_size`: the chunk ends past the declared size (details.size, details.received); `hash_mismatch`: the content does not hash to sha256, the upload restarted (details.received = 0)")])}},
        "/v1/operator/submissions/{tracking}/attachments": {"get": {
            "operationId": "submissionAttachments", "tags": ["operator"], "security": operator.clone(),
            "parameters": [tracking.clone()],
            "summary": "The attachments a submission references",
            "responses": responses(&[("200", links(ok("The links, by field", json!({"type": "array", "items": schema_ref("AttachmentLink")})), json!({
                "Content": {"operationId": "submissionAttachmentContent", "parameters": {
                    "tracking": "$request.path.tracking", "sha256": "$response.body#/0/sha256"}}})))], &[Op, P], &[
                ("403", OUT_OF_SCOPE),
                ("404", "`not_found`: no such submission")])}},
        "/v1/operator/submissions/{tracking}/attachments/{sha256}": {"get": {
            "operationId": "submissionAttachmentContent", "tags": ["operator"], "security": operator,
            "parameters": [tracking, sha256_param()],
            "summary": "The bytes of an attachment the submission references, with the media type the submission declared",
            "responses": responses(&[("200", json!({
                "description": "The content (Content-Type: the declared media type, or application/octet-stream)",
                "headers": {"Content-Disposition": {"required": true, "description": "`attachment` with the resident's file name", "schema": {"type": "string"}}},
                "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}))], &[Op, P], &[
                ("400", "`invalid_sha256`"),
                ("403", OUT_OF_SCOPE),
                ("404", "`not_found`: no such submission, or it references no such content")])}},
    })
}

fn paths() -> Value {
    use Input::{
        Json as J, Limited as L, Operator as Op, Path as P, Query as Q, Resident as R, Text as T,
    };
    let resident = json!([{"residentToken": []}]);
    let operator = json!([{"operatorToken": []}]);
    let public = json!([]);
    let array_of = |name: &str| json!({"type": "array", "items": schema_ref(name)});
    let since_limit = json!([
        {"name": "since", "in": "query", "required": false, "description": "Cursor: entries after this sequence number (default 0)", "schema": u64_schema()},
        {"name": "limit", "in": "query", "required": false, "description": "Page size, default 500", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}}
    ]);
    let mut changes_params = since_limit.clone();
    if let Some(a) = changes_params.as_array_mut() {
        a.push(if_none_match());
    }
    let guide_id = path_param(
        "id",
        "Guide id (implementation code)",
        json!({"type": "string"}),
    );
    json!({
        "/healthz": {"get": {
            "operationId": "health", "tags": ["meta"], "security": public,
            "summary": "Readiness: the store answers; the trust bundle version loaded",
            "responses": responses(&[("200", ok("Healthy", schema_ref("Health")))], &[], &[])}},
        "/livez": {"get": {
            "operationId": "live", "tags": ["meta"], "security": public,
            "summary": "Liveness: the process serves HTTP (touches nothing else)",
            "responses": {"200": ok("Live", json!({"type": "object", "required": ["status"],
                "properties": {"status": {"const": "ok"}}, "additionalProperties": false}))}}},
        "/openapi.json": {"get": {
            "operationId": "openapi", "tags": ["meta"], "security": public,
            "summary": "This document",
            "responses": {"200": ok("OpenAPI 3.1 document", json!({"type": "object"}))}}},
        "/v1/catalog/changes": {"get": {
            "operationId": "catalogChanges", "tags": ["catalog"], "security": public,
            "summary": "The catalog change feed after a cursor (guides and tombstones), with ETag",
            "parameters": changes_params,
            "responses": responses(&[
                ("200", links(with_etag(ok("A page of changes", schema_ref("ChangesPage"))), json!({
                    "FirstGuide": {"operationId": "catalogGuide", "parameters": {"id": "$response.body#/changes/0/id"}}}))),
                ("304", not_modified())], &[Q], &[])}},
        "/v1/catalog/guides/{id}": {"get": {
            "operationId": "catalogGuide", "tags": ["catalog"], "security": public,
            "summary": "One guide, with ETag (its checksum)",
            "parameters": [guide_id.clone(), if_none_match()],
            "responses": responses(&[
                ("200", with_etag(ok("The guide", schema_ref("Guide")))),
                ("304", not_modified())], &[P], &[("404", "`not_found`: no such guide")])}},
        "/v1/trust/bundle": {"get": {
            "operationId": "trustBundle", "tags": ["trust"], "security": public,
            "summary": "The root-signed trust bundle (compact JWS)",
            "responses": responses(&[
                ("200", // No schema: the body is a compact JWS, not JSON (schemathesis
                // would parse `application/jwt` as JSON if a schema were given).
                json!({"description": "The trust bundle: a compact JWS (`typ` trust-bundle+jwt)", "content": {"application/jwt": {}}}))],
                &[], &[("404", "`not_found`: no trust bundle published")])}},
        "/v1/trust/status-lists": {"get": {
            "operationId": "statusLists", "tags": ["trust"], "security": public,
            "summary": "Every published status list token",
            "responses": responses(&[("200", ok("The status lists", array_of("StatusListToken")))], &[], &[])}},
        "/v1/devices/enrol": {"post": {
            "operationId": "enrolDevice", "tags": ["auth"], "security": public,
            "summary": "Bind a device key to a resident with an activation code",
            "requestBody": json_body("EnrolRequest"),
            "responses": responses(&[("200", ok("Enrolled", schema_ref("EnrolResponse")))], &[J, L], &[
                ("400", "`invalid_device_key`: not a P-256 (EC) or Ed25519 (OKP) public JWK, or a point off the curve; `weak_device_key`: an Ed25519 identity, small-order point or non-canonical encoding (details.reason); `invalid_activation_code`: empty or over 128 bytes"),
                ("403", "`forbidden`: activation code not accepted (one answer for unknown, wrong, locked, expired, used up); `device_retired`: this key was replaced by a re-enrolment; `reenrolment_refused`: the device to replace did not sign the re-enrolment, is not an active device of the resident, or was replaced by another device"),
                ("409", "`conflict`: the device is enrolled for another resident")])}},
        "/v1/auth/challenge": {"post": {
            "operationId": "authChallenge", "tags": ["auth"], "security": public,
            "summary": "A one-time challenge for an enrolled device",
            "requestBody": json_body("ChallengeRequest"),
            "responses": responses(&[("200", ok("Challenge", schema_ref("ChallengeResponse")))], &[J, L], &[
                ("401", "`unauthorized`: unknown device"),
                ("403", "`device_retired`: the device was replaced by a re-enrolment")])}},
        "/v1/auth/token": {"post": {
            "operationId": "authToken", "tags": ["auth"], "security": public,
            "summary": "Exchange a signed challenge for a short-lived resident bearer token",
            "requestBody": json_body("TokenRequest"),
            "responses": responses(&[("200", ok("Token", schema_ref("TokenResponse")))], &[J, L], &[
                ("401", "`unauthorized`: unknown, used or expired challenge, unknown device, malformed or bad signature"),
                ("403", "`device_retired`: the device was replaced by a re-enrolment")])}},
        "/v1/submissions": {"get": {
            "operationId": "listSubmissions", "tags": ["submissions"], "security": resident,
            "summary": "The resident's submissions, newest first",
            "responses": responses(&[("200", ok("Submissions", array_of("Submission")))], &[R], &[])}},
        "/v1/submissions/{client_id}": {
            "parameters": [client_id_param()],
            "put": {
                "operationId": "submit", "tags": ["submissions"], "security": resident,
                "summary": "Submit once, idempotently: every retry with the same body gets the same receipt",
                "requestBody": json_body("SubmissionRequest"),
                "responses": responses(&[("200", links(ok("Receipt (new or replayed)", schema_ref("Receipt")), json!({
                    "Submission": {"operationId": "getSubmission", "parameters": {"client_id": "$response.body#/client_id"}}})))], &[R, P, J, L], &[
                    ("400", "`invalid_client_id`"),
                    ("409", "`client_id_taken`: used by another resident; `client_id_reused`: used for another submission"),
                    ("422", "`unknown_guide`; `validation_failed`: details.fields lists per-field form and licence errors")])},
            "get": {
                "operationId": "getSubmission", "tags": ["submissions"], "security": resident,
                "summary": "One of the resident's submissions",
                "responses": responses(&[("200", ok("Submission", schema_ref("Submission")))], &[R, P], &[
                    ("404", "`not_found`: no such submission of this resident")])}},
        "/v1/submissions/{client_id}/nonce": {"post": {
            "operationId": "submissionNonce", "tags": ["submissions"], "security": resident,
            "parameters": [client_id_param()],
            "summary": "A fresh nonce for the licence presentations of one submission",
            "requestBody": json_body("NonceRequest"),
            "responses": responses(&[("200", ok("Nonce", schema_ref("NonceResponse")))], &[R, P, J], &[
                ("400", "`invalid_client_id`")])}},
        "/v1/events": {"get": {
            "operationId": "events", "tags": ["submissions"], "security": resident,
            "summary": "Status events of the resident's submissions after a cursor",
            "parameters": since_limit,
            "responses": responses(&[("200", ok("A page of events", schema_ref("EventsPage")))], &[R, Q], &[])}},
        "/v1/wallet": {"get": {
            "operationId": "wallet", "tags": ["submissions"], "security": resident,
            "summary": "Licences issued to the resident (a copy per device)",
            "responses": responses(&[("200", ok("Wallet", array_of("WalletEntry")))], &[R], &[])}},
        "/v1/operator/guides/{id}": {
            "parameters": [guide_id],
            "put": {
                "operationId": "publishGuide", "tags": ["operator"], "security": operator,
                "summary": "Publish (create or replace) a guide",
                "requestBody": json_body("Guide"),
                "responses": responses(&[("200", links(ok("Published", schema_ref("PublishedGuide")), json!({
                    "Withdraw": {"operationId": "withdrawGuide", "parameters": {"id": "$response.body#/id"}}})))], &[Op, P, J], &[
                    ("400", "`id_mismatch`: the path id and the guide id differ"),
                    ("403", OUT_OF_SCOPE),
                    ("422", "`invalid_guide`: the guide is inconsistent")])},
            "delete": {
                "operationId": "withdrawGuide", "tags": ["operator"], "security": operator,
                "summary": "Withdraw a guide (leaves a tombstone in the feed)",
                "responses": responses(&[("200", ok("Withdrawn", schema_ref("DeletedGuide")))], &[Op, P], &[
                    ("403", OUT_OF_SCOPE),
                    ("404", "`not_found`: no such guide")])}},
        "/v1/operator/residents": {"post": {
            "operationId": "registerResident", "tags": ["operator"], "security": operator,
            "summary": "Register a resident and (re)set their activation code",
            "requestBody": json_body("NewResident"),
            "responses": responses(&[("201", ok("Registered", schema_ref("ResidentCreated")))], &[Op, J], &[
                ("400", "`invalid_resident`: id 1..=64 bytes; a supplied activation code below the bar"),
                ("409", "`conflict`: another activation code has the supplied code's id (first group)")])}},
        "/v1/operator/trust-bundle": {"put": {
            "operationId": "publishTrustBundle", "tags": ["operator"], "security": operator,
            "summary": "Publish a root-signed trust bundle (verified against the pinned roots, no rollback)",
            "requestBody": {"required": true, "description": "The compact JWS as text. The Content-Type is not checked; surrounding whitespace is ignored.",
                "content": {"text/plain": {"schema": {"type": "string",
                    "pattern": "^\\s*[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\s*$"}}}},
            "responses": responses(&[("200", ok("Accepted", schema_ref("TrustBundleAccepted")))], &[Op, T], &[
                ("422", "`trust_bundle_rejected`: details.reason is the verifier's code")])}},
        "/v1/operator/licences": {"post": {
            "operationId": "issueLicence", "tags": ["operator"], "security": operator,
            "summary": "Grant a licence; returns the copies issued to the resident's enrolled devices",
            "requestBody": json_body("IssueRequest"),
            "responses": responses(&[("201", links(ok("Copies issued now", array_of("WalletEntry")), json!({
                "SetStatus": {"operationId": "setLicenceStatus", "parameters": {"licence_id": "$response.body#/0/licence_id"}}})))], &[Op, J], &[
                ("400", "`licence_type_not_authorized`, `no_licence_type`, `no_status_list`"),
                ("403", OUT_OF_SCOPE),
                ("404", "`not_found`: issuer key not held here, no trust bundle, issuer not in the bundle, unknown resident"),
                ("409", "`conflict`: licence id already issued; `invalid_state`: status list full"),
                ("422", "`invalid_licence`: the claims are not a valid licence")])}},
        "/v1/operator/licences/{licence_id}/status": {"post": {
            "operationId": "setLicenceStatus", "tags": ["operator"], "security": operator,
            "parameters": [path_param("licence_id", "GB/T 36904 licence identifier", json!({"type": "string"}))],
            "summary": "Set a licence's status (every copy) and republish the status lists",
            "requestBody": json_body("StatusChange"),
            "responses": responses(&[("200", ok("Changed", schema_ref("StatusChanged")))], &[Op, P, J], &[
                ("400", "`invalid_status`"),
                ("403", OUT_OF_SCOPE),
                ("404", "`not_found`: no such licence")])}},
        "/v1/operator/submissions/{tracking}/transition": {"post": {
            "operationId": "transitionSubmission", "tags": ["operator"], "security": operator,
            "parameters": [path_param("tracking", "Tracking number", json!({"type": "string"}))],
            "summary": "Move a submission to its next state",
            "requestBody": json_body("Transition"),
            "responses": responses(&[("200", ok("The new status event", schema_ref("StatusEvent")))], &[Op, P, J], &[
                ("400", "`note_too_long`"),
                ("403", OUT_OF_SCOPE),
                ("404", "`not_found`: no such submission"),
                ("409", "`invalid_transition`: not allowed from the current state; `invalid_state`: the state changed meanwhile")])}},
    })
}

/// 好差评 (issue 17): a resident's rating, the reviewers' rectification
/// cases, the statistics, the working-day calendar.
fn evaluation_paths() -> Value {
    use Input::{Json as J, Operator as Op, Path as P, Query as Q, Resident as R};
    let operator = json!([{"operatorToken": []}]);
    let resident = json!([{"residentToken": []}]);
    let rating = ok("The stored rating", schema_ref("Rating"));
    json!({
        "/v1/submissions/{client_id}/rating/{rating_id}": {"put": {
            "operationId": "rateSubmission", "tags": ["submissions"], "security": resident,
            "parameters": [client_id_param(), path_param("rating_id",
                "Client-generated rating id (the outbox's idempotency key): 8-64 of A-Z a-z 0-9 - _",
                json!({"type": "string", "pattern": "^[A-Za-z0-9_-]{8,64}$"}))],
            "summary": "Rate a finished submission (好差评), once; once more after the department answered a 差评's case. A 差评 opens a rectification case due in working days",
            "requestBody": json_body("RatingRequest"),
            "responses": responses(&[("201", rating.clone()), ("200", ok("A retry: the rating stored under this id", schema_ref("Rating")))], &[R, P, J], &[
                ("400", "`invalid_client_id`: a client or rating id that is not 8-64 of A-Z a-z 0-9 - _"),
                ("404", "`not_found`: no such submission of this resident"),
                ("409", "`not_finished`: not in a final state yet; `already_rated`: rated, and no answered case allows a re-rating; `rating_id_taken`: the id is another resident's; `rating_id_reused`: the id was used for another rating"),
                ("422", "`reason_required`: a 差评 without a reason; `too_long`: a comment or reason over 500 characters; `unknown_tag`; `too_many_tags`: over 5 or one twice")])}},
        "/v1/operator/evaluations/cases": {"get": {
            "operationId": "listEvaluationCases", "tags": ["operator"], "security": operator,
            "parameters": [{"name": "overdue", "in": "query", "required": false,
                "description": "Only the cases past their due day", "schema": {"type": "boolean"}}],
            "summary": "The open rectification cases of the reviewer's departments, the overdue first, then by due day",
            "responses": responses(&[("200", ok("Open cases", schema_ref("CaseList")))], &[Op, Q], &[])}},
        "/v1/operator/evaluations/cases/{id}/answer": {"post": {
            "operationId": "answerEvaluationCase", "tags": ["operator"], "security": operator,
            "parameters": [path_param("id", "The case id (the 差评's rating id)", json!({"type": "string"}))],
            "summary": "Answer a rectification case (the reviewer of its department), once; the answer reaches the resident's timeline",
            "requestBody": json_body("CaseAnswer"),
            "responses": responses(&[("200", ok("The answered case and its timeline event", schema_ref("CaseAnswered")))], &[Op, P, J], &[
                ("403", OUT_OF_SCOPE),
                ("404", "`not_found`: no such case"),
                ("409", "`case_answered`: the case was answered already"),
                ("422", "`bad_answer`: empty or over 500 characters; `answer_before_case`")])}},
        "/v1/operator/evaluations/stats": {"get": {
            "operationId": "evaluationStats", "tags": ["operator"], "security": operator,
            "parameters": [{"name": "format", "in": "query", "required": false,
                "description": "`json` (default) or `csv`", "schema": {"type": "string", "enum": ["json", "csv"]}}],
            "summary": "Counts per level, 好评率, open and overdue cases per department and per item (admin: every department; reviewer: its own). No resident ids",
            "responses": responses(&[("200", json!({"description": "The statistics",
                "content": {
                    "application/json": {"schema": schema_ref("EvaluationStats")},
                    "text/csv": {"schema": {"type": "string"}}}}))], &[Op, Q], &[])}},
        "/v1/operator/calendar/{year}": {"put": {
            "operationId": "putWorkCalendarYear", "tags": ["operator"], "security": operator,
            "parameters": [path_param("year", "The year", json!({"type": "integer", "minimum": -2147483648_i64, "maximum": 2147483647}))],
            "summary": "Add or replace a year of the working-day calendar (admin): holidays and 调休 working days; open cases' due days are recomputed",
            "requestBody": json_body("CalendarYear"),
            "responses": responses(&[("200", ok("Stored", schema_ref("CalendarPut")))], &[Op, P, J], &[
                ("422", "`invalid_calendar`: a year outside 2000-2100, a bad date, a date outside the year, a reversed or over-15-day range, a day both off and on, a worked day that is not a weekend day, a source not 1-500 characters, over 64 ranges or days")])}},
    })
}

/// The schemas of 好差评.
fn evaluation_schemas() -> Value {
    let text = || json!({"type": "string"});
    let day = || json!({"type": "string", "description": "YYYY-MM-DD (China's date)"});
    let count = u64_schema;
    let level = || json!({"type": "string", "enum": ["very_dissatisfied", "dissatisfied", "basically_satisfied", "satisfied", "very_satisfied"]});
    let row = object(
        &[
            "department_code",
            "guide_id",
            "total",
            "levels",
            "good",
            "neutral",
            "bad",
            "good_rate",
            "open_cases",
            "overdue_cases",
        ],
        json!({
        "department_code": text(), "guide_id": nullable(text()), "total": count(),
        "levels": object(&["very_dissatisfied", "dissatisfied", "basically_satisfied", "satisfied", "very_satisfied"], json!({
            "very_dissatisfied": count(), "dissatisfied": count(), "basically_satisfied": count(),
            "satisfied": count(), "very_satisfied": count()})),
        "good": count(), "neutral": count(), "bad": count(),
        "good_rate": nullable(json!({"type": "number", "minimum": 0, "maximum": 1})),
        "open_cases": count(), "overdue_cases": count()}),
    );
    json!({
        "RatingRequest": object(&["level"], json!({
            "level": level(),
            "tags": {"type": "array", "items": text(), "description": "Tag codes from core's list (at most 5, no repeats)"},
            "comment": nullable(text()),
            "reason": nullable(json!({"type": "string", "description": "Why; required for a 差评"}))})),
        "Evaluation": object(&["level", "tags", "comment", "reason"], json!({
            "level": level(), "tags": string_array(), "comment": nullable(text()), "reason": nullable(text())})),
        "ResidentCase": object(&["id", "opened_on", "due_on", "provisional", "answer", "answered_on"], json!({
            "id": text(), "opened_on": day(), "due_on": day(), "provisional": {"type": "boolean"},
            "answer": nullable(text()), "answered_on": nullable(day())})),
        "Rating": object(&["rating_id", "client_id", "tracking_number", "round", "evaluation", "grade", "rated_at", "case"], json!({
            "rating_id": text(), "client_id": text(), "tracking_number": text(),
            "round": {"type": "integer", "enum": [1, 2]},
            "evaluation": schema_ref("Evaluation"),
            "grade": {"type": "string", "enum": ["good", "neutral", "bad"]},
            "rated_at": {"type": "integer", "description": "Unix seconds"},
            "case": nullable(schema_ref("ResidentCase"))})),
        "Case": object(&["id", "tracking_number", "department_code", "guide_id", "level", "reason", "opened_on", "due_on", "provisional", "working_days", "answer", "answered_on", "answered_by", "overdue", "days_late"], json!({
            "id": text(), "tracking_number": text(), "department_code": text(), "guide_id": text(),
            "level": level(), "reason": text(), "opened_on": day(), "due_on": day(),
            "provisional": {"type": "boolean"}, "working_days": u32_schema(),
            "answer": nullable(text()), "answered_on": nullable(day()), "answered_by": nullable(text()),
            "overdue": {"type": "boolean"}, "days_late": u32_schema()})),
        "CaseList": object(&["today", "cases"], json!({
            "today": day(), "cases": {"type": "array", "items": schema_ref("Case")}})),
        "CaseAnswer": object(&["answer"], json!({"answer": {"type": "string", "description": "1 to 500 characters"}})),
        "CaseAnswered": object(&["case", "event"], json!({
            "case": schema_ref("Case"), "event": schema_ref("StatusEvent")})),
        "EvaluationStatsRow": row,
        "EvaluationStats": object(&["as_of", "departments", "items"], json!({
            "as_of": day(),
            "departments": {"type": "array", "items": schema_ref("EvaluationStatsRow")},
            "items": {"type": "array", "items": schema_ref("EvaluationStatsRow")}})),
        "CalendarYear": object(&["source"], json!({
            "source": {"type": "string", "description": "The notice it comes from"},
            "holidays": {"type": "array", "items": {"type": "array", "minItems": 3, "maxItems": 3,
                "prefixItems": [day(), day(), text()], "items": false,
                "description": "[first, last, name]"}},
            "workdays": {"type": "array", "items": day(), "description": "Weekend days worked (调休)"}})),
        "CalendarPut": object(&["year", "cases_redue"], json!({
            "year": {"type": "integer"}, "cases_redue": u64_schema()})),
    })
}

/// The document.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let paths = merge(&[
            paths(),
            attachment_paths(),
            operator_paths(),
            lexicon_paths(),
            bundle_paths(),
            evaluation_paths(),
        ]);
        json!({
            "openapi": "3.1.0",
            "info": {
                "title": "Zhangban (掌办) server API",
                "version": env!("CARGO_PKG_VERSION"),
                "description": "Catalog of service guides, device enrolment and token auth, idempotent submissions with licence verification, resumable content-hashed attachment uploads, status timelines, wallet delivery, trust data, and the operator's endpoints. Errors are `{\"error\": {\"code\", \"message\", \"details\"?}}` with stable codes. Responses are gzip-compressed when the client accepts it."
            },
            "tags": [
                {"name": "meta"}, {"name": "catalog"}, {"name": "trust"}, {"name": "auth"},
                {"name": "submissions"}, {"name": "attachments"}, {"name": "operator"}
            ],
            "paths": paths,
            "components": {
                "schemas": schemas(),
                "securitySchemes": {
                    "residentToken": {"type": "http", "scheme": "bearer",
                        "description": "A resident device's short-lived token from POST /v1/auth/token"},
                    "operatorToken": {"type": "http", "scheme": "bearer",
                        "description": "An operator's token: `zbo_…` from `operator add`, or the bootstrap admin's (the data directory's `operator-token`)"}
                }
            }
        })
    })
}

/// `GET /openapi.json`
pub async fn serve() -> Json<&'static Value> {
    Json(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r);
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }

    #[test]
    fn every_ref_resolves() {
        let doc = document();
        let mut all = Vec::new();
        refs(doc, &mut all);
        assert!(all.len() > 40);
        for r in all {
            let name = r.strip_prefix("#/components/schemas/").expect(r);
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "{r} is not defined"
            );
        }
    }

    #[test]
    fn every_operation_has_success_and_internal_error() {
        let doc = document();
        let mut n = 0;
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("item") {
                if method == "parameters" {
                    continue;
                }
                n += 1;
                let r = op["responses"].as_object().expect("responses");
                assert!(
                    r.keys().any(|k| k.starts_with('2')),
                    "{method} {path} has no success response"
                );
                if path != "/openapi.json" && path != "/livez" {
                    assert!(r.contains_key("500"), "{method} {path}");
                }
                for (status, resp) in r {
                    assert!(
                        !resp["description"].as_str().unwrap_or_default().is_empty(),
                        "{method} {path} {status}"
                    );
                }
            }
        }
        assert_eq!(n, 46);
    }

    /// Every route the router serves (`api/mod.rs`) is in the document,
    /// with every method it serves.
    #[test]
    fn every_route_is_documented() {
        let doc = document();
        let router = include_str!("mod.rs");
        let mut n = 0;
        for part in router.split(".route(").skip(1) {
            let Some(path) = part.split('"').nth(1) else {
                continue;
            };
            if path == "/metrics" {
                continue;
            }
            n += 1;
            let item = &doc["paths"][path];
            assert!(item.is_object(), "{path} is not documented");
            let handlers = part.split(".route(").next().unwrap_or_default();
            let end = handlers.find("\n        .").unwrap_or(handlers.len());
            for method in ["get", "put", "post", "delete"] {
                let served = handlers[..end].contains(&format!("{method}("))
                    || handlers[..end].contains(&format!(".{method}("))
                    || handlers[..end].contains(&format!("routing::{method}("));
                if served {
                    assert!(
                        item.get(method).is_some(),
                        "{method} {path} is not documented"
                    );
                }
            }
        }
        assert!(n >= 30, "{n} routes found");
    }
}
