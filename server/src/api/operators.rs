//! Operator management (admin only, ADR 0165): create a named operator with
//! one role and its scopes (the token is generated here and shown once),
//! list them, revoke one. Names are never reused.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::act::Act;
use super::auth::{Operator, random_token};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::roles::{Action, Role, Target};
use crate::state::{SharedState, blocking, sha256_hex};
use crate::store::operators::{BOOTSTRAP_OPERATOR, NewOperator, OperatorRecord, OperatorWrite};

/// The prefix of every operator token (so that a leaked one is recognisable
/// by secret scanners and never mistaken for a resident token).
pub const TOKEN_PREFIX: &str = "zbo_";
/// Random bytes in a token (256 bits).
pub const TOKEN_BYTES: usize = 32;
/// The most scopes one operator holds.
pub const MAX_SCOPES: usize = 64;
/// The longest scope (an issuer URN or a department code).
pub const MAX_SCOPE_LEN: usize = 128;

/// An operator to create.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOperatorRequest {
    /// Unique name: 1..=64 of `a-z 0-9 . _ -`, starting with a letter or digit.
    pub name: String,
    /// `admin`, `issuer`, `reviewer` or `publisher`.
    pub role: String,
    /// Issuer ids (issuer) or department codes (reviewer, publisher); none for admin.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// A created operator, with its token (shown this once).
#[derive(Debug, Serialize)]
pub struct CreatedOperator {
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Creation time.
    pub created_at: i64,
    /// The bearer token: `zbo_` and 256 random bits, base64url. Not stored.
    pub token: String,
}

fn invalid(message: &str) -> ApiError {
    ApiError::bad_request("invalid_operator", message)
}

/// Whether `name` is a valid, unreserved operator name.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    first_ok
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        && name != BOOTSTRAP_OPERATOR
        && name != "setup"
}

/// Checks a request and returns (role, sorted unique scopes).
pub fn check(req: &NewOperatorRequest) -> ApiResult<(Role, Vec<String>)> {
    if !valid_name(&req.name) {
        return Err(invalid(
            "name: 1..=64 of a-z 0-9 . _ -, starting with a letter or digit; not bootstrap or setup",
        ));
    }
    let role = Role::parse(&req.role)
        .ok_or_else(|| invalid("role is admin, issuer, reviewer or publisher"))?;
    let mut scopes = req.scopes.clone();
    scopes.sort();
    scopes.dedup();
    match role.scope_kind() {
        None if !scopes.is_empty() => return Err(invalid("an admin has no scopes")),
        None => {}
        Some(_) if scopes.is_empty() || scopes.len() > MAX_SCOPES => {
            return Err(invalid("a scoped role needs 1..=64 scopes"));
        }
        Some(_) => {
            let bad = |s: &String| {
                s.is_empty()
                    || s.len() > MAX_SCOPE_LEN
                    || s.chars().any(|c| c.is_whitespace() || c.is_control())
            };
            if scopes.iter().any(bad) {
                return Err(invalid(
                    "a scope is 1..=128 characters without spaces or control characters",
                ));
            }
        }
    }
    Ok((role, scopes))
}

/// `POST /v1/operator/operators` (admin).
pub async fn add(
    op: Operator,
    State(state): State<SharedState>,
    ApiJson(req): ApiJson<NewOperatorRequest>,
) -> ApiResult<(StatusCode, Json<CreatedOperator>)> {
    let mut act = Act::new(op, Action::AddOperator);
    act.target("operator", &req.name).target("role", &req.role);
    let result = async {
        act.allow(&state, Target::Unscoped).await?;
        let (role, scopes) = check(&req)?;
        act.target("scopes", scopes.join(" "));
        let token = format!("{TOKEN_PREFIX}{}", random_token(TOKEN_BYTES));
        let created_at = state.clock.now();
        let new = NewOperator {
            name: req.name.clone(),
            role: role.as_str().to_owned(),
            scopes: scopes.clone(),
            token_hash: sha256_hex(token.as_bytes()),
            created_at,
        };
        act.write(&state, OperatorWrite::PutOperator(new)).await?;
        Ok((
            StatusCode::CREATED,
            Json(CreatedOperator {
                name: req.name.clone(),
                role: role.as_str().to_owned(),
                scopes,
                created_at,
                token,
            }),
        ))
    }
    .await;
    act.settle(&state, result).await
}

/// `GET /v1/operator/operators` (admin): every operator, active and revoked.
pub async fn list(
    op: Operator,
    State(state): State<SharedState>,
) -> ApiResult<Json<Vec<OperatorRecord>>> {
    let mut act = Act::new(op, Action::ListOperators);
    let result = async {
        act.allow(&state, Target::Unscoped).await?;
        Ok(Json(blocking(&state, |s| s.operators()).await?))
    }
    .await;
    act.settle(&state, result).await
}

/// `DELETE /v1/operator/operators/{name}` (admin): the token stops working
/// at once. The last active admin cannot be revoked (409 `invalid_state`).
pub async fn revoke(
    op: Operator,
    State(state): State<SharedState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let mut act = Act::new(op, Action::RevokeOperator);
    act.target("operator", &name);
    let result = async {
        act.allow(&state, Target::Unscoped).await?;
        let at = state.clock.now();
        act.write(
            &state,
            OperatorWrite::RevokeOperator {
                name: name.clone(),
                at,
            },
        )
        .await
        .map_err(|e| {
            if e.code == "not_found" {
                ApiError::not_found("no such active operator")
            } else {
                e
            }
        })?;
        Ok(Json(json!({"name": name, "revoked_at": at})))
    }
    .await;
    act.settle(&state, result).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(name: &str, role: &str, scopes: &[&str]) -> NewOperatorRequest {
        NewOperatorRequest {
            name: name.into(),
            role: role.into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn requests_are_checked() {
        assert!(check(&req("alice", "admin", &[])).is_ok());
        let (_, scopes) = check(&req("r-1", "reviewer", &["b", "a", "b"])).unwrap();
        assert_eq!(scopes, ["a", "b"]);
        for bad in [
            req("", "admin", &[]),
            req("Alice", "admin", &[]),
            req("-x", "admin", &[]),
            req("bootstrap", "admin", &[]),
            req("setup", "admin", &[]),
            req(&"a".repeat(65), "admin", &[]),
            req("a", "root", &[]),
            req("a", "admin", &["x"]),
            req("a", "issuer", &[]),
            req("a", "issuer", &["has space"]),
            req("a", "publisher", &[""]),
            req("a", "publisher", &[&"d".repeat(129)]),
        ] {
            assert!(check(&bad).is_err(), "{bad:?}");
        }
    }
}
