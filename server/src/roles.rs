//! Operator roles and the one policy that decides what an operator may do
//! (least privilege, ADR 0165).
//!
//! Every operator has exactly one [`Role`] and, for the scoped roles, a list
//! of scopes: issuer ids for an `issuer`, department codes (the guides'
//! `department_code`, 实施主体编码) for a `reviewer` or a `publisher`.
//! [`authorize`] is the only place that says yes or no; handlers call it
//! (through `api::act`) with the action and, once they know it, the target's
//! scope. It is sans-IO: no store, no clock.

use serde::{Deserialize, Serialize};

/// What an operator is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The trust bundle, residents and operators; no licences, guides or
    /// submissions.
    Admin,
    /// Licence issue / suspend / reinstate / revoke for the issuers in scope.
    Issuer,
    /// Submission transitions (and their attachments) for the departments
    /// in scope.
    Reviewer,
    /// Guides of the departments in scope; and the search lexicon, which
    /// is district-wide (unscoped, ADR 0181).
    Publisher,
}

impl Role {
    /// Every role, in a stable order.
    pub const ALL: [Self; 4] = [Self::Admin, Self::Issuer, Self::Reviewer, Self::Publisher];

    /// The stable name (`admin`, `issuer`, `reviewer`, `publisher`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Issuer => "issuer",
            Self::Reviewer => "reviewer",
            Self::Publisher => "publisher",
        }
    }

    /// Parses a stable name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// What kind of scope the role is confined to (`None`: unscoped).
    pub fn scope_kind(self) -> Option<ScopeKind> {
        match self {
            Self::Admin => None,
            Self::Issuer => Some(ScopeKind::Issuer),
            Self::Reviewer | Self::Publisher => Some(ScopeKind::Department),
        }
    }
}

/// The kind of thing a scope names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeKind {
    /// An issuer id (`urn:zhangban:issuer:…`).
    Issuer,
    /// A department code (a guide's `department_code`).
    Department,
}

/// Every operator action, each with its stable audit name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `PUT /v1/operator/guides/{id}`.
    PublishGuide,
    /// `DELETE /v1/operator/guides/{id}`.
    WithdrawGuide,
    /// `POST /v1/operator/residents`.
    AddResident,
    /// `PUT /v1/operator/trust-bundle`.
    PublishTrustBundle,
    /// `POST /v1/operator/licences`.
    IssueLicence,
    /// `POST /v1/operator/licences/{id}/status` with `suspended`.
    SuspendLicence,
    /// … with `revoked`.
    RevokeLicence,
    /// … with `valid`.
    ReinstateLicence,
    /// `POST /v1/operator/submissions/{tracking}/transition`.
    TransitionSubmission,
    /// `GET /v1/operator/submissions/{tracking}/attachments[/{sha256}]`.
    ReadSubmissionAttachments,
    /// `POST /v1/operator/operators`.
    AddOperator,
    /// `GET /v1/operator/operators`.
    ListOperators,
    /// `DELETE /v1/operator/operators/{name}`.
    RevokeOperator,
    /// `PUT /v1/operator/lexicon/entries/{term}` (district-wide: unscoped).
    PutLexiconEntry,
    /// `DELETE /v1/operator/lexicon/entries/{term}`.
    DeleteLexiconEntry,
    /// `GET /v1/operator/lexicon`.
    ListLexicon,
    /// `PUT /v1/operator/bundles/{id}` (district-wide: unscoped).
    PublishBundle,
    /// `GET /v1/operator/evaluations/cases` (a reviewer's departments).
    ListEvaluationCases,
    /// `POST /v1/operator/evaluations/cases/{id}/answer`.
    AnswerEvaluationCase,
    /// `GET /v1/operator/evaluations/stats` (an admin: every department; a
    /// reviewer: its own).
    EvaluationStats,
    /// `PUT /v1/operator/calendar/{year}` (district-wide: unscoped).
    PutWorkCalendar,
}

impl Action {
    /// Every action (for the policy table and its tests).
    pub const ALL: [Self; 21] = [
        Self::PublishGuide,
        Self::WithdrawGuide,
        Self::AddResident,
        Self::PublishTrustBundle,
        Self::IssueLicence,
        Self::SuspendLicence,
        Self::RevokeLicence,
        Self::ReinstateLicence,
        Self::TransitionSubmission,
        Self::ReadSubmissionAttachments,
        Self::AddOperator,
        Self::ListOperators,
        Self::RevokeOperator,
        Self::PutLexiconEntry,
        Self::DeleteLexiconEntry,
        Self::ListLexicon,
        Self::PublishBundle,
        Self::ListEvaluationCases,
        Self::AnswerEvaluationCase,
        Self::EvaluationStats,
        Self::PutWorkCalendar,
    ];

    /// The stable name recorded in the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PublishGuide => "guide.publish",
            Self::WithdrawGuide => "guide.withdraw",
            Self::AddResident => "resident.add",
            Self::PublishTrustBundle => "trust_bundle.publish",
            Self::IssueLicence => "licence.issue",
            Self::SuspendLicence => "licence.suspend",
            Self::RevokeLicence => "licence.revoke",
            Self::ReinstateLicence => "licence.reinstate",
            Self::TransitionSubmission => "submission.transition",
            Self::ReadSubmissionAttachments => "submission.attachments.read",
            Self::AddOperator => "operator.add",
            Self::ListOperators => "operator.list",
            Self::RevokeOperator => "operator.revoke",
            Self::PutLexiconEntry => "lexicon.put",
            Self::DeleteLexiconEntry => "lexicon.delete",
            Self::ListLexicon => "lexicon.list",
            Self::PublishBundle => "bundle.publish",
            Self::ListEvaluationCases => "evaluation.cases.list",
            Self::AnswerEvaluationCase => "evaluation.case.answer",
            Self::EvaluationStats => "evaluation.stats",
            Self::PutWorkCalendar => "calendar.put",
        }
    }

    /// The roles allowed to take the action (one, except the evaluation
    /// statistics: an admin's for the district, a reviewer's for its
    /// departments).
    pub fn roles(self) -> &'static [Role] {
        match self {
            Self::AddResident
            | Self::PublishTrustBundle
            | Self::AddOperator
            | Self::ListOperators
            | Self::RevokeOperator
            | Self::PutWorkCalendar => &[Role::Admin],
            Self::IssueLicence
            | Self::SuspendLicence
            | Self::RevokeLicence
            | Self::ReinstateLicence => &[Role::Issuer],
            Self::TransitionSubmission
            | Self::ReadSubmissionAttachments
            | Self::ListEvaluationCases
            | Self::AnswerEvaluationCase => &[Role::Reviewer],
            Self::EvaluationStats => &[Role::Admin, Role::Reviewer],
            Self::PublishGuide
            | Self::WithdrawGuide
            | Self::PutLexiconEntry
            | Self::DeleteLexiconEntry
            | Self::ListLexicon
            | Self::PublishBundle => &[Role::Publisher],
        }
    }
}

/// An authenticated operator as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The operator's unique name (the audit trail's actor).
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Issuer ids or department codes, per [`Role::scope_kind`].
    pub scopes: Vec<String>,
}

/// The scope a target belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// Not yet known (the role alone is checked), or an unscoped action.
    Unscoped,
    /// A licence of this issuer.
    Issuer(&'a str),
    /// A guide or a submission of this department.
    Department(&'a str),
}

/// Why an operator was refused (HTTP 403 with the code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// The operator's role may not take the action at all.
    #[error("this operator's role may not take this action")]
    ForbiddenRole,
    /// The role may, but not for this issuer or department.
    #[error("the target is outside this operator's scope")]
    OutOfScope,
}

impl Denial {
    /// The stable error code.
    pub fn code(self) -> &'static str {
        match self {
            Self::ForbiddenRole => "forbidden_role",
            Self::OutOfScope => "out_of_scope",
        }
    }
}

/// Whether `who` may take `action` on a target in `target`'s scope.
///
/// The role must be one of the action's roles ([`Action::roles`]); a scoped role must
/// name the target's issuer or department exactly (no wildcards, no
/// prefixes), and a target of the wrong kind for the role is out of scope.
/// Called with [`Target::Unscoped`] before the target is looked up, it checks
/// the role only: an operator of the wrong role learns nothing about the
/// target (not even whether it exists).
pub fn authorize(who: &Principal, action: Action, target: Target<'_>) -> Result<(), Denial> {
    if !action.roles().contains(&who.role) {
        return Err(Denial::ForbiddenRole);
    }
    let (kind, id) = match target {
        Target::Unscoped => return Ok(()),
        Target::Issuer(id) => (ScopeKind::Issuer, id),
        Target::Department(id) => (ScopeKind::Department, id),
    };
    match who.role.scope_kind() {
        None => Ok(()),
        Some(k) if k == kind && who.scopes.iter().any(|s| s == id) => Ok(()),
        Some(_) => Err(Denial::OutOfScope),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(role: Role, scopes: &[&str]) -> Principal {
        Principal {
            name: "x".into(),
            role,
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn each_action_belongs_to_its_roles_only() {
        for action in Action::ALL {
            let allowed: Vec<Role> = Role::ALL
                .into_iter()
                .filter(|r| authorize(&who(*r, &[]), action, Target::Unscoped).is_ok())
                .collect();
            assert_eq!(allowed, action.roles(), "{action:?}");
        }
    }

    #[test]
    fn scopes_match_exactly_and_by_kind() {
        let issuer = who(Role::Issuer, &["urn:a"]);
        let a = Action::RevokeLicence;
        assert_eq!(authorize(&issuer, a, Target::Issuer("urn:a")), Ok(()));
        for other in ["urn:b", "urn:", "urn:a ", "URN:A", ""] {
            assert_eq!(
                authorize(&issuer, a, Target::Issuer(other)),
                Err(Denial::OutOfScope),
                "{other:?}"
            );
        }
        // An issuer id used as a department is not in scope.
        let reviewer = who(Role::Reviewer, &["urn:a"]);
        assert_eq!(
            authorize(
                &reviewer,
                Action::TransitionSubmission,
                Target::Issuer("urn:a")
            ),
            Err(Denial::OutOfScope)
        );
        assert_eq!(
            authorize(&issuer, a, Target::Department("urn:a")),
            Err(Denial::OutOfScope)
        );
        // No scopes: nothing in scope.
        let none = who(Role::Publisher, &[]);
        assert_eq!(
            authorize(&none, Action::PublishGuide, Target::Department("d")),
            Err(Denial::OutOfScope)
        );
    }

    #[test]
    fn names_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
        assert_eq!(Role::parse("Admin"), None);
    }
}
