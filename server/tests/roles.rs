//! Least privilege (ADR 0165): every role against every operator endpoint,
//! inside and outside its scope, on the real server; each call leaves
//! exactly one audit row naming the operator, the action and the outcome.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use zhangban_core::credential::TrustBundleContent;
use zhangban_core::credential::demo::ISSUERS;
use zhangban_core::guide::{FieldKind, Guide};
use zhangban_server::audit::AuditRow;
use zhangban_server::state::sha256_hex;
use zhangban_server::store::operators::AuditFilter;
use zhangban_tests::server::*;

/// Where a call's target lies relative to the operator's scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// The action has no scope (admin actions).
    None,
    /// The target is in the scoped operators' scope.
    In,
    /// It is not.
    Out,
}

/// The operator endpoints, each with the role that may call it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    PublishGuide,
    WithdrawGuide,
    AddResident,
    PublishTrustBundle,
    IssueLicence,
    SetLicenceStatus,
    Transition,
    AttachmentLinks,
    AttachmentContent,
    AddOperator,
    ListOperators,
    RevokeOperator,
    PutLexiconEntry,
    DeleteLexiconEntry,
    ListLexicon,
}

impl Endpoint {
    const ALL: [Self; 15] = [
        Self::PublishGuide,
        Self::WithdrawGuide,
        Self::AddResident,
        Self::PublishTrustBundle,
        Self::IssueLicence,
        Self::SetLicenceStatus,
        Self::Transition,
        Self::AttachmentLinks,
        Self::AttachmentContent,
        Self::AddOperator,
        Self::ListOperators,
        Self::RevokeOperator,
        Self::PutLexiconEntry,
        Self::DeleteLexiconEntry,
        Self::ListLexicon,
    ];

    /// The one role that may call it, its audit action, and its success status.
    fn owner(self) -> (&'static str, &'static str, StatusCode) {
        match self {
            Self::PublishGuide => ("publisher", "guide.publish", StatusCode::OK),
            Self::WithdrawGuide => ("publisher", "guide.withdraw", StatusCode::OK),
            Self::AddResident => ("admin", "resident.add", StatusCode::CREATED),
            Self::PublishTrustBundle => ("admin", "trust_bundle.publish", StatusCode::OK),
            Self::IssueLicence => ("issuer", "licence.issue", StatusCode::CREATED),
            Self::SetLicenceStatus => ("issuer", "licence.suspend", StatusCode::OK),
            Self::Transition => ("reviewer", "submission.transition", StatusCode::OK),
            Self::AttachmentLinks | Self::AttachmentContent => {
                ("reviewer", "submission.attachments.read", StatusCode::OK)
            }
            Self::AddOperator => ("admin", "operator.add", StatusCode::CREATED),
            Self::ListOperators => ("admin", "operator.list", StatusCode::OK),
            Self::RevokeOperator => ("admin", "operator.revoke", StatusCode::OK),
            Self::PutLexiconEntry => ("publisher", "lexicon.put", StatusCode::OK),
            Self::DeleteLexiconEntry => ("publisher", "lexicon.delete", StatusCode::OK),
            Self::ListLexicon => ("publisher", "lexicon.list", StatusCode::OK),
        }
    }

    /// Whether the action is confined to the operator's scopes (the admin's
    /// and the district-wide lexicon's are not, ADR 0181).
    fn scopes(self) -> &'static [Scope] {
        let unscoped = matches!(
            self,
            Self::PutLexiconEntry | Self::DeleteLexiconEntry | Self::ListLexicon
        );
        if self.owner().0 == "admin" || unscoped {
            &[Scope::None]
        } else {
            &[Scope::In, Scope::Out]
        }
    }
}

/// The operators under test (created through the admin endpoint).
struct Operators {
    /// (role, name, token)
    all: Vec<(&'static str, String, String)>,
}

/// The targets in and out of scope.
struct World {
    dept_in: String,
    guide_in: Guide,
    guide_out: Guide,
    withdraw_in: String,
    withdraw_out: String,
    resident: String,
    licences_in: Vec<String>,
    licences_out: Vec<String>,
    submissions_in: Vec<String>,
    submissions_out: Vec<String>,
    n: u64,
}

async fn create_operator(s: &TestServer, name: &str, role: &str, scopes: &[&str]) -> String {
    let resp = s
        .op(Method::POST, "/v1/operator/operators")
        .json(&json!({"name": name, "role": role, "scopes": scopes}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let token = v["token"].as_str().unwrap().to_owned();
    assert!(
        token.starts_with("zbo_") && token.len() >= 4 + 43,
        "{token}"
    );
    token
}

/// A guide of the small catalog that a resident can submit with
/// [`valid_values`] alone (no licence field required).
fn submittable(g: &Guide) -> bool {
    g.form
        .fields
        .iter()
        .all(|f| !(f.required && matches!(f.kind, FieldKind::LicenceRef { .. })))
        && g.form
            .fields
            .iter()
            .any(|f| f.required && matches!(f.kind, FieldKind::Attachment { .. }))
}

/// The guides the server serves (the small catalog), in catalog order.
async fn served(s: &TestServer) -> Vec<Guide> {
    let page: Value = s
        .req(Method::GET, "/v1/catalog/changes?since=0&limit=1000")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    catalog()
        .iter()
        .filter(|g| ids.contains(&g.id.as_str()))
        .cloned()
        .collect()
}

async fn tracking_of(s: &TestServer, dev: &Device, guide: &Guide) -> String {
    let cid = s.client_id();
    let resp = s.submit(dev, &cid, &s.body(guide, &[])).await;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{v}");
    v["tracking_number"].as_str().unwrap().to_owned()
}

async fn world(s: &TestServer) -> World {
    // Two submittable guides of different departments the server serves,
    // and a second guide of each department to withdraw.
    let guides = served(s).await;
    let candidates: Vec<&Guide> = guides.iter().filter(|g| submittable(g)).collect();
    // A department with two served guides, one of them submittable.
    let guide_in = (*candidates
        .iter()
        .find(|c| {
            guides
                .iter()
                .any(|g| g.department_code == c.department_code && g.id != c.id)
        })
        .expect("a submittable guide with a sibling"))
    .clone();
    let guide_out = (*candidates
        .iter()
        .find(|g| {
            g.department_code != guide_in.department_code
                && guides
                    .iter()
                    .any(|o| o.department_code == g.department_code && o.id != g.id)
        })
        .expect("a submittable guide of another department, with a sibling"))
    .clone();
    let withdraw = |dept: &str, not: &str| {
        guides
            .iter()
            .find(|g| g.department_code == dept && g.id != not)
            .map(|g| g.id.clone())
    };
    let withdraw_in = withdraw(&guide_in.department_code, &guide_in.id);
    let withdraw_out = withdraw(&guide_out.department_code, &guide_out.id);
    let (withdraw_in, withdraw_out) = (withdraw_in.unwrap(), withdraw_out.unwrap());
    let (r, dev) = s.resident_with_device().await;
    let mut w = World {
        dept_in: guide_in.department_code.clone(),
        guide_in,
        guide_out,
        withdraw_in,
        withdraw_out,
        resident: r.id.clone(),
        licences_in: Vec::new(),
        licences_out: Vec::new(),
        submissions_in: Vec::new(),
        submissions_out: Vec::new(),
        n: 0,
    };
    // One target per call that could succeed (the owner's in-scope call).
    for _ in 0..2 {
        w.licences_in.push(s.grant(&r.id, 0).await.0);
        w.licences_out.push(s.grant(&r.id, 1).await.0);
        w.submissions_in
            .push(tracking_of(s, &dev, &w.guide_in.clone()).await);
        w.submissions_out
            .push(tracking_of(s, &dev, &w.guide_out.clone()).await);
    }
    w
}

/// One call of `endpoint` on a target in `scope`, with `token`.
async fn call(
    s: &TestServer,
    w: &mut World,
    endpoint: Endpoint,
    scope: Scope,
    token: &str,
) -> reqwest::Response {
    w.n += 1;
    let n = w.n;
    let pick = |v: &Vec<String>, alt: &Vec<String>| match scope {
        Scope::Out => alt[0].clone(),
        _ => v[0].clone(),
    };
    let scan = sha256_hex(SCAN);
    let req = match endpoint {
        Endpoint::PublishGuide => {
            let g = if scope == Scope::Out {
                &w.guide_out
            } else {
                &w.guide_in
            };
            s.req(Method::PUT, &format!("/v1/operator/guides/{}", g.id))
                .json(g)
        }
        Endpoint::WithdrawGuide => {
            let id = if scope == Scope::Out {
                &w.withdraw_out
            } else {
                &w.withdraw_in
            };
            s.req(Method::DELETE, &format!("/v1/operator/guides/{id}"))
        }
        Endpoint::AddResident => s
            .req(Method::POST, "/v1/operator/residents")
            .json(&json!({"id": format!("roles-resident-{n}"), "name": "张三"})),
        Endpoint::PublishTrustBundle => {
            let mut c: TrustBundleContent = s.world.bundle_content.clone();
            c.version = 1 + n;
            c.iat = s.now();
            s.req(Method::PUT, "/v1/operator/trust-bundle")
                .body(c.sign(&s.world.root).unwrap())
        }
        Endpoint::IssueLicence => {
            let issuer = if scope == Scope::Out { 1 } else { 0 };
            let claims = licence_claims(issuer, 5000 + n);
            s.req(Method::POST, "/v1/operator/licences").json(
                &json!({"resident_id": w.resident, "issuer_id": ISSUERS[issuer].id, "claims": claims}),
            )
        }
        Endpoint::SetLicenceStatus => {
            let id = pick(&w.licences_in, &w.licences_out);
            s.req(Method::POST, &format!("/v1/operator/licences/{id}/status"))
                .json(&json!({"status": "suspended"}))
        }
        Endpoint::Transition => {
            let t = pick(&w.submissions_in, &w.submissions_out);
            s.req(
                Method::POST,
                &format!("/v1/operator/submissions/{t}/transition"),
            )
            .json(&json!({"state": "accepted"}))
        }
        Endpoint::AttachmentLinks => {
            let t = pick(&w.submissions_in, &w.submissions_out);
            s.req(
                Method::GET,
                &format!("/v1/operator/submissions/{t}/attachments"),
            )
        }
        Endpoint::AttachmentContent => {
            let t = pick(&w.submissions_in, &w.submissions_out);
            s.req(
                Method::GET,
                &format!("/v1/operator/submissions/{t}/attachments/{scan}"),
            )
        }
        Endpoint::AddOperator => s.req(Method::POST, "/v1/operator/operators").json(
            &json!({"name": format!("added-{n}"), "role": "reviewer", "scopes": [w.dept_in]}),
        ),
        Endpoint::ListOperators => s.req(Method::GET, "/v1/operator/operators"),
        Endpoint::RevokeOperator => {
            // A throwaway operator to revoke (created by the bootstrap admin).
            let name = format!("doomed-{n}");
            create_operator(s, &name, "publisher", &["x"]).await;
            s.req(Method::DELETE, &format!("/v1/operator/operators/{name}"))
        }
        Endpoint::PutLexiconEntry => s
            .req(
                Method::PUT,
                &format!("/v1/operator/lexicon/entries/roles-term-{n}"),
            )
            .json(&json!({"targets": ["户口迁移"]})),
        // A seed entry: the publisher's call (the only one that gets past
        // the role check) removes it.
        Endpoint::DeleteLexiconEntry => s.req(Method::DELETE, "/v1/operator/lexicon/entries/低保"),
        Endpoint::ListLexicon => s.req(Method::GET, "/v1/operator/lexicon"),
    };
    req.bearer_auth(token).send().await.unwrap()
}

fn audit(s: &TestServer) -> Vec<AuditRow> {
    s.state.store.audit_log(&AuditFilter::default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_against_every_operator_endpoint_inside_and_outside_its_scope() {
    let s = TestServer::start().await;
    let mut w = world(&s).await;
    let dept = w.dept_in.clone();
    let ops = Operators {
        all: vec![
            (
                "admin",
                "t-admin".into(),
                create_operator(&s, "t-admin", "admin", &[]).await,
            ),
            (
                "issuer",
                "t-issuer".into(),
                create_operator(&s, "t-issuer", "issuer", &[ISSUERS[0].id]).await,
            ),
            (
                "reviewer",
                "t-reviewer".into(),
                create_operator(&s, "t-reviewer", "reviewer", &[&dept]).await,
            ),
            (
                "publisher",
                "t-publisher".into(),
                create_operator(&s, "t-publisher", "publisher", &[&dept]).await,
            ),
        ],
    };
    let mut checked = 0;
    for endpoint in Endpoint::ALL {
        let (owner, action, success) = endpoint.owner();
        for &scope in endpoint.scopes() {
            for (role, name, token) in &ops.all {
                let (status, code, outcome) = if *role != owner {
                    (
                        StatusCode::FORBIDDEN,
                        Some("forbidden_role"),
                        "refused:forbidden_role",
                    )
                } else if scope == Scope::Out {
                    (
                        StatusCode::FORBIDDEN,
                        Some("out_of_scope"),
                        "refused:out_of_scope",
                    )
                } else {
                    (success, None, "ok")
                };
                let before = audit(&s).len();
                let resp = call(&s, &mut w, endpoint, scope, token).await;
                let what = format!("{role} {endpoint:?} {scope:?}");
                let got = resp.status();
                let body = resp.text().await.unwrap();
                assert_eq!(got, status, "{what}: {body}");
                if let Some(code) = code {
                    let v: Value = serde_json::from_str(&body).unwrap();
                    assert_eq!(v["error"]["code"], code, "{what}: {body}");
                }
                // Exactly one new row by this operator (a revoke's throwaway
                // operator, created by the bootstrap admin first, has its own).
                let rows = audit(&s);
                let new: Vec<_> = rows[before..]
                    .iter()
                    .filter(|r| r.entry.actor == *name)
                    .collect();
                assert_eq!(new.len(), 1, "{what}: {new:?}");
                let row = &new[0].entry;
                assert_eq!(
                    (row.role.as_str(), row.action.as_str(), row.outcome.as_str()),
                    (*role, action, outcome),
                    "{what}"
                );
                assert_eq!(row.at, s.now(), "{what}: the injected clock");
                assert!(
                    !row.target.contains("张三"),
                    "{what}: no names in audit rows"
                );
                checked += 1;
            }
        }
    }
    // 5 admin and 3 lexicon endpoints × 1 + 7 scoped × 2 (in, out), each
    // by 4 roles.
    assert_eq!(checked, (5 + 3 + 7 * 2) * 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_missing_and_revoked_tokens_are_refused() {
    let s = TestServer::start().await;
    let token = create_operator(&s, "short-lived", "admin", &[]).await;
    let list = |t: Option<String>| {
        let mut r = s.req(Method::GET, "/v1/operator/operators");
        if let Some(t) = t {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    assert_eq!(
        list(Some(token.clone())).await.unwrap().status(),
        StatusCode::OK
    );
    expect_error(
        list(None).await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    expect_error(
        list(Some(format!("{token}x"))).await.unwrap(),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    // A resident's token is no operator token.
    let (_, dev) = s.resident_with_device().await;
    expect_error(
        list(Some(dev.token.clone())).await.unwrap(),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    // Revoked: refused at the next request.
    let resp = s
        .op(Method::DELETE, "/v1/operator/operators/short-lived")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    expect_error(
        list(Some(token)).await.unwrap(),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    // Names are never reused.
    let again = s
        .op(Method::POST, "/v1/operator/operators")
        .json(&json!({"name": "short-lived", "role": "admin"}))
        .send()
        .await
        .unwrap();
    expect_error(again, StatusCode::CONFLICT, "conflict").await;
    // Listing shows roles and scopes, never token hashes.
    let listed: Value = s
        .op(Method::GET, "/v1/operator/operators")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = listed.to_string();
    assert!(text.contains("\"short-lived\"") && text.contains("\"revoked_at\""));
    assert!(
        !text.contains(&sha256_hex(OPERATOR_TOKEN.as_bytes())),
        "{text}"
    );
    assert!(!text.contains("token"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_admin_cannot_be_revoked_and_a_publisher_cannot_take_over_a_guide() {
    let s = TestServer::start().await;
    // The bootstrap is the only admin: revoking it would lock everyone out.
    let resp = s
        .op(Method::DELETE, "/v1/operator/operators/bootstrap")
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::CONFLICT, "invalid_state").await;
    // With a second admin it can go, and its token stops working.
    let admin = create_operator(&s, "second-admin", "admin", &[]).await;
    let resp = s
        .req(Method::DELETE, "/v1/operator/operators/bootstrap")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = s
        .op(Method::GET, "/v1/operator/operators")
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::FORBIDDEN, "forbidden").await;

    // A publisher of department A republishing B's guide under A's code:
    // the replaced guide's department is checked too.
    let guides = served(&s).await;
    let victim = guides
        .iter()
        .find(|g| g.department_code != plain_guide().department_code)
        .unwrap();
    let mine = plain_guide().department_code.clone();
    let token = {
        let r = s
            .req(Method::POST, "/v1/operator/operators")
            .bearer_auth(&admin)
            .json(&json!({"name": "pub-a", "role": "publisher", "scopes": [mine]}))
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        v["token"].as_str().unwrap().to_owned()
    };
    let mut hijack = victim.clone();
    hijack.department_code = mine;
    let resp = s
        .req(Method::PUT, &format!("/v1/operator/guides/{}", victim.id))
        .bearer_auth(&token)
        .json(&hijack)
        .send()
        .await
        .unwrap();
    let v = expect_error(resp, StatusCode::FORBIDDEN, "out_of_scope").await;
    assert!(v.to_string().contains("scope"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_stays_with_the_department_it_was_made_to() {
    let s = TestServer::start().await;
    let guide = plain_guide();
    let dept = guide.department_code.clone();
    let reviewer = create_operator(&s, "only-here", "reviewer", &[&dept]).await;
    let (_, dev) = s.resident_with_device().await;
    let cid = s.client_id();
    let resp = s.submit(&dev, &cid, &s.body(guide, &[])).await;
    let v: Value = resp.json().await.unwrap();
    let tracking = v["tracking_number"].as_str().unwrap().to_owned();
    // The guide is withdrawn after the submission was made.
    let resp = s
        .op(Method::DELETE, &format!("/v1/operator/guides/{}", guide.id))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = s
        .req(
            Method::POST,
            &format!("/v1/operator/submissions/{tracking}/transition"),
        )
        .bearer_auth(&reviewer)
        .json(&json!({"state": "accepted"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "{}",
        resp.text().await.unwrap()
    );
}
