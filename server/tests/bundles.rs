//! Life-event bundles (一件事一次办, ADR 0230) on the real server: a
//! publisher publishes the demo bundles (audited, versioned), phones sync
//! them with an ETag; a resident submits one bundle application and the
//! server fans it out into one ordinary submission per member that
//! applies, each to its own department, exactly once (retries, concurrent
//! retries, another resident's reuse of the id); each member is moved by
//! its own department's reviewer and the bundle's state follows; a member
//! returned for correction is handled alone. Refused: an unknown bundle, a
//! stale version, a missing shared fact (reported once), an attachment not
//! uploaded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use reqwest::header::{ETAG, IF_NONE_MATCH};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};
use zhangban_core::bundle::Bundle;
use zhangban_core::guide::Guide;
use zhangban_server::state::sha256_hex;
use zhangban_server::store::bundles::member_client_id;
use zhangban_server::store::operators::AuditFilter;
use zhangban_tests::forms::{SCAN, fill};
use zhangban_tests::server::*;

fn demo_bundles() -> Vec<Bundle> {
    serde_json::from_str(zhangban_server::setup::DEMO_BUNDLES).unwrap()
}

async fn publish(s: &TestServer, b: &Value) -> reqwest::Response {
    let id = b["id"].as_str().unwrap();
    s.req(Method::PUT, &format!("/v1/operator/bundles/{id}"))
        .bearer_auth(&s.operator_tokens.publisher)
        .json(b)
        .send()
        .await
        .unwrap()
}

async fn publish_demo(s: &TestServer) {
    for b in demo_bundles() {
        let resp = publish(s, &serde_json::to_value(&b).unwrap()).await;
        assert_eq!(
            resp.status(),
            StatusCode::OK,
            "{}",
            resp.text().await.unwrap()
        );
    }
}

async fn sync(s: &TestServer, etag: Option<&str>) -> reqwest::Response {
    let mut r = s.req(Method::GET, "/v1/catalog/bundles");
    if let Some(t) = etag {
        r = r.header(IF_NONE_MATCH, t);
    }
    r.send().await.unwrap()
}

fn scan_ref() -> Value {
    json!({"sha256": sha256_hex(SCAN), "size": SCAN.len(), "media_type": "application/pdf", "name": "出生医学证明.pdf"})
}

/// A complete newborn application (the social security card as asked).
fn newborn(card: &str) -> Map<String, Value> {
    json!({
        "social_security_card": card,
        "applicant_name": "王小芳",
        "applicant_id_number": "11010519491231002X",
        "applicant_phone": "13800138000",
        "result_delivery": "online",
        "hukou__event_date": "2026-03-20",
        "hukou__description": "新生儿随母落户",
        "hukou__supporting_documents": scan_ref(),
    })
    .as_object()
    .unwrap()
    .clone()
}

fn body(values: &Map<String, Value>) -> Value {
    json!({"bundle_id": "newborn", "bundle_version": 1, "values": values})
}

async fn submit(s: &TestServer, dev: &Device, cid: &str, body: &Value) -> reqwest::Response {
    s.as_dev(dev, Method::PUT, &format!("/v1/bundle-submissions/{cid}"))
        .json(body)
        .send()
        .await
        .unwrap()
}

/// A server with the whole catalog and the demo bundles, and a resident
/// whose device has uploaded the scan.
async fn ready() -> (TestServer, Device) {
    let s = TestServer::start_with(Catalog::Full).await;
    publish_demo(&s).await;
    let (_, dev) = s.resident_with_device().await;
    s.upload(&dev, SCAN, "application/pdf", SCAN.len()).await;
    (s, dev)
}

fn guide(id: &str) -> &'static Guide {
    catalog().iter().find(|g| g.id == id).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishers_publish_bundles_and_phones_sync_them_with_an_etag() {
    let s = TestServer::start_with(Catalog::Full).await;
    let resp = sync(&s, None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[ETAG], "\"bundles-0\"");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v, json!({"version": 0, "bundles": []}));

    for (i, b) in demo_bundles().iter().enumerate() {
        let v: Value = json_ok(
            s.req(Method::PUT, &format!("/v1/operator/bundles/{}", b.id))
                .bearer_auth(&s.operator_tokens.publisher)
                .json(b),
        )
        .await;
        assert_eq!(
            v,
            json!({"id": b.id, "version": 1, "list_version": i + 1, "changed": true})
        );
    }
    let rows = s.state.store.audit_log(&AuditFilter::default()).unwrap();
    let published: Vec<_> = rows
        .iter()
        .filter(|r| r.entry.action == "bundle.publish")
        .collect();
    assert_eq!(published.len(), 3);
    assert!(published.iter().all(|r| r.entry.outcome == "ok"));

    let resp = sync(&s, Some("\"bundles-0\"")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let etag = resp.headers()[ETAG].to_str().unwrap().to_owned();
    assert_eq!(etag, "\"bundles-3\"");
    let v: Value = resp.json().await.unwrap();
    let ids: Vec<_> = v["bundles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["business-start", "newborn", "retirement"]);
    let resp = sync(&s, Some(&etag)).await;
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(resp.headers()[ETAG].to_str().unwrap(), etag);

    // Publishing the same again changes nothing.
    let newborn = serde_json::to_value(&demo_bundles()[0]).unwrap();
    let v: Value = json_ok(
        s.req(Method::PUT, "/v1/operator/bundles/newborn")
            .bearer_auth(&s.operator_tokens.publisher)
            .json(&newborn),
    )
    .await;
    assert_eq!(
        (v["list_version"].as_u64(), &v["changed"]),
        (Some(3), &json!(false))
    );
    // Changed content needs a higher version.
    let mut renamed = newborn.clone();
    renamed["name"] = json!("新生儿出生一件事（改）");
    expect_error(
        publish(&s, &renamed).await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    renamed["version"] = json!(2);
    let v: Value = publish(&s, &renamed).await.json().await.unwrap();
    assert_eq!(v["list_version"], 4);
    // A member not in the catalog, a path that is not the id, or a role
    // that may not publish: refused, nothing changes.
    let mut broken = renamed.clone();
    broken["version"] = json!(3);
    broken["members"][0]["guide_id"] = json!("no-such-guide");
    let e = expect_error(
        publish(&s, &broken).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_bundle",
    )
    .await;
    assert_eq!(e["error"]["details"]["rule"], "missing_guide");
    let resp = s
        .req(Method::PUT, "/v1/operator/bundles/retirement")
        .bearer_auth(&s.operator_tokens.publisher)
        .json(&renamed)
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "id_mismatch").await;
    let resp = s
        .req(Method::PUT, "/v1/operator/bundles/newborn")
        .bearer_auth(&s.operator_tokens.reviewer)
        .json(&broken)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(sync(&s, None).await.headers()[ETAG], "\"bundles-4\"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_fans_out_into_its_members_exactly_once() {
    let (s, dev) = ready().await;
    let cid = s.client_id();
    let b = body(&newborn("yes"));
    let resp = submit(&s, &dev, &cid, &b).await;
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    let receipt: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(receipt["client_id"], cid.as_str());
    assert_eq!(receipt["bundle_id"], "newborn");
    let members = receipt["members"].as_array().unwrap();
    let keys: Vec<_> = members
        .iter()
        .map(|m| m["member"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["birth", "hukou", "medical", "sscard"]);
    let bundle = &demo_bundles()[0];
    for (m, spec) in members.iter().zip(&bundle.members) {
        let r = &m["receipt"];
        assert_eq!(r["guide_id"], spec.guide_id.as_str());
        assert_eq!(r["client_id"], member_client_id(&cid, &spec.guide_id));
        assert_ne!(r["tracking_number"], receipt["tracking_number"]);
        // Routed to the member's own department.
        let dept = s
            .state
            .store
            .submission_department(r["tracking_number"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            dept.as_deref(),
            Some(guide(&spec.guide_id).department_code.as_str())
        );
    }
    // Each member is an ordinary submission of the resident's, with the
    // shared facts under its own field names.
    let mine: Vec<Value> = json_ok(s.as_dev(&dev, Method::GET, "/v1/submissions")).await;
    assert_eq!(mine.len(), 4);
    let hukou = mine
        .iter()
        .find(|m| m["receipt"]["guide_id"] == bundle.members[1].guide_id.as_str())
        .unwrap();
    assert_eq!(hukou["values"]["applicant_id_number"], "11010519491231002X");
    assert_eq!(hukou["values"]["description"], "新生儿随母落户");
    assert_eq!(hukou["state"], "submitted");
    let events: Value = json_ok(s.as_dev(&dev, Method::GET, "/v1/events")).await;
    assert_eq!(events["events"].as_array().unwrap().len(), 4);

    // A retry: the same receipt, nothing new; ten at once, the same.
    let again: Value = json_ok(
        s.as_dev(&dev, Method::PUT, &format!("/v1/bundle-submissions/{cid}"))
            .json(&b),
    )
    .await;
    assert_eq!(again, receipt);
    let retries: Vec<_> = (0..10)
        .map(|_| {
            let req = s
                .as_dev(&dev, Method::PUT, &format!("/v1/bundle-submissions/{cid}"))
                .json(&b);
            tokio::spawn(async move { json_ok::<Value>(req).await })
        })
        .collect();
    for r in retries {
        assert_eq!(r.await.unwrap(), receipt);
    }
    let mine: Vec<Value> = json_ok(s.as_dev(&dev, Method::GET, "/v1/submissions")).await;
    assert_eq!(mine.len(), 4);
    let events: Value = json_ok(s.as_dev(&dev, Method::GET, "/v1/events")).await;
    assert_eq!(events["events"].as_array().unwrap().len(), 4);

    // The id reused for other content, or by another resident: 409.
    let other = body(&newborn("no"));
    expect_error(
        submit(&s, &dev, &cid, &other).await,
        StatusCode::CONFLICT,
        "client_id_reused",
    )
    .await;
    let (_, stranger) = s.resident_with_device().await;
    s.upload(&stranger, SCAN, "application/pdf", SCAN.len())
        .await;
    expect_error(
        submit(&s, &stranger, &cid, &b).await,
        StatusCode::CONFLICT,
        "client_id_taken",
    )
    .await;
    let theirs: Vec<Value> = json_ok(s.as_dev(&stranger, Method::GET, "/v1/submissions")).await;
    assert!(theirs.is_empty());
    let resp = s
        .as_dev(
            &stranger,
            Method::GET,
            &format!("/v1/bundle-submissions/{cid}"),
        )
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::NOT_FOUND, "not_found").await;

    // Without the card: three members.
    let cid2 = s.client_id();
    let r: Value = json_ok(
        s.as_dev(&dev, Method::PUT, &format!("/v1/bundle-submissions/{cid2}"))
            .json(&other),
    )
    .await;
    assert_eq!(r["members"].as_array().unwrap().len(), 3);
    let list: Vec<Value> = json_ok(s.as_dev(&dev, Method::GET, "/v1/bundle-submissions")).await;
    let ids: Vec<_> = list
        .iter()
        .map(|b| b["receipt"]["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&cid.as_str()) && ids.contains(&cid2.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_member_moves_with_its_own_department_and_the_bundle_state_follows() {
    let (s, dev) = ready().await;
    let cid = s.client_id();
    let receipt: Value = json_ok(
        s.as_dev(&dev, Method::PUT, &format!("/v1/bundle-submissions/{cid}"))
            .json(&body(&newborn("no"))),
    )
    .await;
    let tracking: Vec<String> = receipt["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["receipt"]["tracking_number"].as_str().unwrap().to_owned())
        .collect();
    let bundle = &demo_bundles()[0];
    let depts: Vec<String> = bundle.members[..3]
        .iter()
        .map(|m| guide(&m.guide_id).department_code.clone())
        .collect();
    assert_ne!(
        depts[0], depts[1],
        "birth and hukou are different departments"
    );
    // A reviewer of the household registration's department only.
    add_operator(
        s.state.store.as_ref(),
        "hukou-reviewer",
        "reviewer",
        vec![depts[1].clone()],
        "zbo_hukou-reviewer-token",
    );
    let move_as = |token: &'static str, tracking: String, state: &'static str| {
        s.req(
            Method::POST,
            &format!("/v1/operator/submissions/{tracking}/transition"),
        )
        .bearer_auth(token)
        .json(&json!({"state": state, "note": format!("to {state}")}))
        .send()
    };
    let resp = move_as("zbo_hukou-reviewer-token", tracking[1].clone(), "accepted")
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "{}",
        resp.text().await.unwrap()
    );
    // Not another department's member.
    let resp = move_as("zbo_hukou-reviewer-token", tracking[0].clone(), "accepted")
        .await
        .unwrap();
    expect_error(resp, StatusCode::FORBIDDEN, "out_of_scope").await;

    let state = |s: &TestServer| {
        let req = s.as_dev(&dev, Method::GET, &format!("/v1/bundle-submissions/{cid}"));
        async move { json_ok::<Value>(req).await }
    };
    let rec = state(&s).await;
    assert_eq!(rec["state"], "submitted");
    assert_eq!(rec["members"][1]["submission"]["state"], "accepted");
    for t in [&tracking[0], &tracking[2]] {
        assert_eq!(s.transition(t, "accepted").await.status(), StatusCode::OK);
    }
    assert_eq!(state(&s).await["state"], "accepted");
    // The household registration is returned for correction (退回补正):
    // the bundle shows it; the other members go on alone.
    let resp = move_as("zbo_hukou-reviewer-token", tracking[1].clone(), "returned")
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        s.transition(&tracking[0], "reviewing").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        s.transition(&tracking[0], "approved").await.status(),
        StatusCode::OK
    );
    let rec = state(&s).await;
    assert_eq!(rec["state"], "returned");
    assert_eq!(rec["members"][0]["submission"]["state"], "approved");
    assert_eq!(rec["members"][1]["submission"]["state"], "returned");
    // Corrected and accepted again, by its own department.
    let resp = move_as("zbo_hukou-reviewer-token", tracking[1].clone(), "accepted")
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(state(&s).await["state"], "accepted");
    for t in [&tracking[1], &tracking[2]] {
        assert_eq!(s.transition(t, "reviewing").await.status(), StatusCode::OK);
        assert_eq!(s.transition(t, "approved").await.status(), StatusCode::OK);
    }
    let rec = state(&s).await;
    assert_eq!(rec["state"], "done");
    assert_eq!(rec["receipt"], receipt);
    // The timeline has every member's every step.
    let events: Value = json_ok(s.as_dev(&dev, Method::GET, "/v1/events")).await;
    let n = events["events"].as_array().unwrap().len();
    // 3 submitted, 3 accepted, 1 returned, 1 accepted again, 3 reviewing, 3 approved.
    assert_eq!(n, 3 + 3 + 1 + 1 + 3 + 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_applications_store_nothing() {
    let s = TestServer::start_with(Catalog::Full).await;
    publish_demo(&s).await;
    let (_, dev) = s.resident_with_device().await;
    let good = newborn("no");

    // An unknown bundle; a stale version.
    let mut b = body(&good);
    b["bundle_id"] = json!("no-such-bundle");
    expect_error(
        submit(&s, &dev, &s.client_id(), &b).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_bundle",
    )
    .await;
    let mut b = body(&good);
    b["bundle_version"] = json!(0);
    let e = expect_error(
        submit(&s, &dev, &s.client_id(), &b).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "bundle_version_mismatch",
    )
    .await;
    assert_eq!(e["error"]["details"]["current_version"], 1);

    // A missing shared fact: one error, on the merged field, not one per
    // member (with every other problem: an unknown key, the attachment not
    // uploaded yet).
    let mut values = good.clone();
    values.remove("applicant_id_number");
    values.insert("birth__no_such".into(), json!("x"));
    let errors = field_errors(submit(&s, &dev, &s.client_id(), &body(&values)).await).await;
    assert_eq!(
        errors,
        [
            ("applicant_id_number".to_owned(), "required".to_owned()),
            ("birth__no_such".to_owned(), "unknown_field".to_owned()),
            (
                "hukou__supporting_documents".to_owned(),
                "attachment_missing".to_owned()
            ),
        ]
    );

    // The attachment not uploaded yet: reported on the merged field.
    let errors = field_errors(submit(&s, &dev, &s.client_id(), &body(&good)).await).await;
    assert_eq!(
        errors,
        [(
            "hukou__supporting_documents".to_owned(),
            "attachment_missing".to_owned()
        )]
    );
    let mine: Vec<Value> = json_ok(s.as_dev(&dev, Method::GET, "/v1/submissions")).await;
    assert!(mine.is_empty());
    let list: Vec<Value> = json_ok(s.as_dev(&dev, Method::GET, "/v1/bundle-submissions")).await;
    assert!(list.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_serves_its_three_bundles() {
    let s = TestServer::start_demo().await;
    let resp = sync(&s, None).await;
    assert_eq!(resp.headers()[ETAG], "\"bundles-3\"");
    let v: Value = resp.json().await.unwrap();
    let served: Vec<Bundle> = serde_json::from_value(v["bundles"].clone()).unwrap();
    let mut expected = demo_bundles();
    expected.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(served, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_licence_attached_once_serves_every_member_that_takes_it() {
    let s = TestServer::start_with(Catalog::Full).await;
    let (r, dev) = s.resident_with_device().await;
    // Two items of different departments that take a business licence.
    let takes = |g: &&Guide| {
        g.form.fields.iter().any(|f| f.name == "business_licence") && fill(g, s.now()).is_some()
    };
    let a = catalog().iter().find(takes).unwrap();
    let b = catalog()
        .iter()
        .filter(takes)
        .find(|g| g.department_code != a.department_code)
        .unwrap();
    let bundle = json!({"id": "licence-once", "name": "共用营业执照", "version": 1,
        "summary": "营业执照引用一次，两个事项共用。",
        "members": [{"key": "a", "guide_id": a.id}, {"key": "b", "guide_id": b.id}],
        "shared": [{"name": "business_licence"}]});
    let resp = publish(&s, &bundle).await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "{}",
        resp.text().await.unwrap()
    );

    let mut values = Map::new();
    for (key, g) in [("a", a), ("b", b)] {
        for (k, v) in fill(g, s.now()).unwrap() {
            if k != "business_licence" {
                values.insert(format!("{key}__{k}"), v);
            }
        }
    }
    let (lid, _) = s.grant(&r.id, 0).await;
    let sd_jwt = s.copy_for(&dev, &lid).await;
    let nonce_for = |cid: String| {
        let req = s
            .as_dev(
                &dev,
                Method::POST,
                &format!("/v1/bundle-submissions/{cid}/nonce"),
            )
            .json(&json!({"bundle_id": "licence-once"}));
        async move { json_ok::<Value>(req).await }
    };

    // Presented for the bundle: verified once, given to both members.
    let cid = s.client_id();
    let n = nonce_for(cid.clone()).await;
    assert_eq!(n["audience"], "bundle:licence-once");
    let p = s.present(
        &sd_jwt,
        &dev.key,
        "bundle:licence-once",
        n["nonce"].as_str().unwrap(),
    );
    let mut with_licence = values.clone();
    with_licence.insert("business_licence".into(), json!({"presentation": p}));
    let b_body = json!({"bundle_id": "licence-once", "bundle_version": 1, "values": with_licence});
    let receipt: Value = json_ok(
        s.as_dev(&dev, Method::PUT, &format!("/v1/bundle-submissions/{cid}"))
            .json(&b_body),
    )
    .await;
    assert_eq!(receipt["members"].as_array().unwrap().len(), 2);
    let mine: Vec<Value> = json_ok(s.as_dev(&dev, Method::GET, "/v1/submissions")).await;
    assert_eq!(mine.len(), 2);
    for m in &mine {
        assert_eq!(m["values"]["business_licence"]["presentation"], p.as_str());
    }

    // Presented for one item (another audience): refused on the merged field.
    let cid = s.client_id();
    let n = nonce_for(cid.clone()).await;
    let p = s.present(&sd_jwt, &dev.key, &a.id, n["nonce"].as_str().unwrap());
    let mut wrong = values.clone();
    wrong.insert("business_licence".into(), json!({"presentation": p}));
    let resp = submit(
        &s,
        &dev,
        &cid,
        &json!({"bundle_id": "licence-once", "bundle_version": 1, "values": wrong}),
    )
    .await;
    let errors = field_errors(resp).await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, "business_licence");
}
