//! One operator action, from the role check to its audit row.
//!
//! Every operator handler runs as: [`Act::new`] (who, what) → targets named
//! with [`Act::target`] → [`Act::allow`] (the role, then the target's scope,
//! through the one policy [`crate::roles::authorize`]) → the decisive write
//! with [`Act::write`] (the store commits it with its `ok` audit row) →
//! [`Act::settle`], which appends the row an action that did not commit one
//! still owes: `ok` for a read, `failed:<code>` for an error. A refusal is
//! appended by `allow` itself as `refused:<code>`. So every action an
//! authenticated operator attempts leaves exactly one row (ADR 0166).

use std::collections::BTreeMap;

use axum::http::StatusCode;

use super::auth::Operator;
use crate::audit::AuditEntry;
use crate::error::{ApiError, ApiResult};
use crate::roles::{self, Action, Principal, Target};
use crate::state::{SharedState, blocking};
use crate::store::operators::{OperatorWrite, Written};

/// The longest target id kept in an audit row (characters).
pub const MAX_TARGET_CHARS: usize = 256;

/// An operator action in progress.
#[derive(Debug)]
pub struct Act {
    who: Principal,
    action: Action,
    target: BTreeMap<&'static str, String>,
    /// A row was committed for this action (refused, or ok with its write).
    recorded: bool,
}

impl Act {
    /// Starts `action` by the authenticated operator.
    pub fn new(Operator(who): Operator, action: Action) -> Self {
        Self {
            who,
            action,
            target: BTreeMap::new(),
            recorded: false,
        }
    }

    /// The operator.
    pub fn who(&self) -> &Principal {
        &self.who
    }

    /// Names a target id for the audit row (ids only, no personal data).
    /// Values are cut at [`MAX_TARGET_CHARS`]: a refused or failed request
    /// may carry an id no valid target has, and rows stay bounded.
    pub fn target(&mut self, key: &'static str, value: impl Into<String>) -> &mut Self {
        let value: String = value.into().chars().take(MAX_TARGET_CHARS).collect();
        self.target.insert(key, value);
        self
    }

    /// The audit entry for this action with `outcome`, at the clock's now.
    pub fn entry(&self, state: &SharedState, outcome: &str) -> AuditEntry {
        AuditEntry {
            at: state.clock.now(),
            actor: self.who.name.clone(),
            role: self.who.role.as_str().to_owned(),
            action: self.action.as_str().to_owned(),
            // A map of strings always serializes.
            target: serde_json::to_string(&self.target).unwrap_or_default(),
            outcome: outcome.to_owned(),
        }
    }

    /// Checks the role (with [`Target::Unscoped`]) or the role and the
    /// target's scope. A refusal is audited (`refused:<code>`, its own
    /// transaction) and answered 403 with `forbidden_role` or `out_of_scope`.
    pub async fn allow(&mut self, state: &SharedState, target: Target<'_>) -> ApiResult<()> {
        let Err(denial) = roles::authorize(&self.who, self.action, target) else {
            return Ok(());
        };
        let entry = self.entry(state, &format!("refused:{}", denial.code()));
        blocking(state, move |s| s.audited(&entry, OperatorWrite::None)).await?;
        self.recorded = true;
        tracing::info!(actor = %self.who.name, action = self.action.as_str(), code = denial.code(), "operator refused");
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            denial.code(),
            denial.to_string(),
        ))
    }

    /// The action's decisive write, committed with its `ok` audit row.
    pub async fn write(&mut self, state: &SharedState, write: OperatorWrite) -> ApiResult<Written> {
        let entry = self.entry(state, "ok");
        let written = blocking(state, move |s| s.audited(&entry, write)).await?;
        self.recorded = true;
        Ok(written)
    }

    /// Ends the action: appends the row it still owes (`ok` for an action
    /// without a write, `failed:<code>` for an error after the role check)
    /// and returns `result`. A read whose row cannot be written fails: no
    /// unaudited access.
    pub async fn settle<T>(self, state: &SharedState, result: ApiResult<T>) -> ApiResult<T> {
        let outcome = match &result {
            Ok(_) if self.recorded => return result,
            Ok(_) => "ok".to_owned(),
            Err(e) if e.status == StatusCode::FORBIDDEN && self.recorded => return result,
            Err(e) => format!("failed:{}", e.code),
        };
        let entry = self.entry(state, &outcome);
        let appended = blocking(state, move |s| s.audited(&entry, OperatorWrite::None)).await;
        match (result, appended) {
            (Ok(v), Ok(_)) => Ok(v),
            (Ok(_), Err(e)) => Err(e),
            (Err(e), Ok(_)) => Err(e),
            (Err(e), Err(audit)) => {
                tracing::error!(
                    code = audit.code,
                    "could not audit a failed operator action"
                );
                Err(e)
            }
        }
    }
}
