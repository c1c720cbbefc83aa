//! The server over real HTTP on loopback: every endpoint, its errors, and
//! the guarantees residents rely on (exactly-once submissions, licence
//! verification, isolation between residents). Each test starts its own
//! server (SQLite in a temporary directory, a manual clock), so tests that
//! move the clock cannot disturb the others.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Read as _;

use common::*;
use reqwest::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use zhangban_core::credential::demo::{self as cdemo, ISSUERS};
use zhangban_core::credential::{KeyPair, StatusListCache, TrustBundleContent};
use zhangban_core::guide::Guide;

async fn get_json(s: &TestServer, path: &str) -> Value {
    let resp = s.req(Method::GET, path).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    resp.json().await.unwrap()
}

// ---------------------------------------------------------------- catalog --

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_reports_store_and_trust() {
    let s = TestServer::start().await;
    let v = get_json(&s, "/healthz").await;
    assert_eq!(v["status"], "ok");
    assert_eq!(v["trust_bundle_version"], 1);
    assert_eq!(v["catalog_head"], s.guides);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_feed_pages_through_every_guide() {
    let s = TestServer::start_with(Catalog::Full).await;
    assert_eq!(s.guides, 1135);
    let mut since = 0;
    let mut ids = std::collections::HashSet::new();
    let mut last_seq = 0;
    let mut pages = 0;
    loop {
        let v = get_json(&s, &format!("/v1/catalog/changes?since={since}&limit=400")).await;
        pages += 1;
        assert_eq!(v["since"], since);
        assert_eq!(v["head"], 1135);
        let changes = v["changes"].as_array().unwrap();
        assert!(changes.len() <= 400);
        for c in changes {
            let seq = c["seq"].as_u64().unwrap();
            assert!(seq > last_seq, "sequence numbers increase");
            last_seq = seq;
            assert_eq!(c["deleted"], false);
            let guide: Guide = serde_json::from_value(c["guide"].clone()).unwrap();
            assert_eq!(guide.id, c["id"].as_str().unwrap());
            assert_eq!(guide.checksum(), c["checksum"].as_str().unwrap());
            assert!(ids.insert(guide.id));
        }
        assert_eq!(v["next"], last_seq);
        since = v["next"].as_u64().unwrap();
        if v["more"] == false {
            break;
        }
        assert_eq!(changes.len(), 400, "a page before the last is full");
    }
    assert_eq!(pages, 3);
    assert_eq!(ids.len(), 1135);
    // Past the head: nothing, the cursor stays.
    let v = get_json(&s, &format!("/v1/catalog/changes?since={since}")).await;
    assert_eq!(v["changes"].as_array().unwrap().len(), 0);
    assert_eq!(v["next"], since);
    assert_eq!(v["more"], false);
    // Default page size is 500.
    let v = get_json(&s, "/v1/catalog/changes").await;
    assert_eq!(v["changes"].as_array().unwrap().len(), 500);
    assert_eq!(v["more"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_etags_and_gzip() {
    let s = TestServer::start_with(Catalog::Full).await;
    let path = "/v1/catalog/changes?since=0&limit=1000";
    let resp = s.req(Method::GET, path).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let etag = resp.headers()[ETAG].to_str().unwrap().to_owned();
    let first: Value = resp.json().await.unwrap();
    // Unchanged: 304 with no body.
    let resp = s
        .req(Method::GET, path)
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(resp.headers()[ETAG].to_str().unwrap(), etag);
    assert!(resp.bytes().await.unwrap().is_empty());
    // Another ETag in the list, or none matching: the page.
    let resp = s
        .req(Method::GET, path)
        .header(IF_NONE_MATCH, format!("\"other\", {etag}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    let resp = s
        .req(Method::GET, path)
        .header(IF_NONE_MATCH, "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // gzip on the wire when asked, and the decoded body is the same page.
    let raw = reqwest::Client::builder().no_gzip().build().unwrap();
    let resp = raw
        .get(s.url(path))
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[CONTENT_ENCODING], "gzip");
    let compressed = resp.bytes().await.unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_string(&mut text)
        .unwrap();
    assert!(
        compressed.len() * 3 < text.len(),
        "gzip compresses the feed"
    );
    let decoded: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(decoded, first);
    // Not asked: identity.
    let resp = raw.get(s.url(path)).send().await.unwrap();
    assert!(resp.headers().get(CONTENT_ENCODING).is_none());
    let plain: Value = resp.json().await.unwrap();
    assert_eq!(plain, first);

    // A single guide: ETag = its checksum, 304 when unchanged, gzip too.
    let change = &first["changes"][3];
    let id = change["id"].as_str().unwrap();
    let resp = s
        .req(Method::GET, &format!("/v1/catalog/guides/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let etag = resp.headers()[ETAG].to_str().unwrap().to_owned();
    assert_eq!(
        etag,
        format!("\"{}\"", change["checksum"].as_str().unwrap())
    );
    let guide: Value = resp.json().await.unwrap();
    assert_eq!(guide, change["guide"]);
    let resp = s
        .req(Method::GET, &format!("/v1/catalog/guides/{id}"))
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    let resp = raw
        .get(s.url(&format!("/v1/catalog/guides/{id}")))
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()[CONTENT_ENCODING], "gzip");
    let resp = s
        .req(Method::GET, "/v1/catalog/guides/no-such-guide")
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_tombstones_and_updates() {
    let s = TestServer::start().await;
    let head = s.guides as u64;
    let v = get_json(&s, "/v1/catalog/changes?limit=1000").await;
    let etag_before = {
        let resp = s
            .req(Method::GET, "/v1/catalog/changes?limit=1000")
            .send()
            .await
            .unwrap();
        resp.headers()[ETAG].to_str().unwrap().to_owned()
    };
    let victim = v["changes"][0]["id"].as_str().unwrap().to_owned();
    let victim_guide = v["changes"][0]["guide"].clone();
    let updated_id = v["changes"][1]["id"].as_str().unwrap().to_owned();

    // Operator endpoints need the operator token.
    let path = format!("/v1/operator/guides/{victim}");
    let resp = s.req(Method::DELETE, &path).send().await.unwrap();
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let resp = s
        .req(Method::DELETE, &path)
        .bearer_auth("wrong-token")
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::FORBIDDEN, "forbidden").await;

    // Withdraw: a tombstone at the end of the feed.
    let resp = s.op(Method::DELETE, &path).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let del: Value = resp.json().await.unwrap();
    assert_eq!(del["seq"], head + 1);
    assert_eq!(del["deleted"], true);
    let v = get_json(&s, &format!("/v1/catalog/changes?since={head}")).await;
    assert_eq!(v["head"], head + 1);
    let changes = v["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["id"], victim.as_str());
    assert_eq!(changes[0]["deleted"], true);
    assert_eq!(changes[0]["guide"], Value::Null);
    assert_eq!(changes[0]["checksum"], "");
    // The old page's ETag no longer matches.
    let resp = s
        .req(Method::GET, "/v1/catalog/changes?limit=1000")
        .header(IF_NONE_MATCH, &etag_before)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let full: Value = resp.json().await.unwrap();
    let all = full["changes"].as_array().unwrap();
    assert_eq!(
        all.len(),
        s.guides,
        "the tombstone replaced the guide's entry"
    );
    assert_eq!(all.last().unwrap()["id"], victim.as_str());
    let resp = s
        .req(Method::GET, &format!("/v1/catalog/guides/{victim}"))
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    // Withdrawing twice, or an unknown guide: 404.
    let resp = s.op(Method::DELETE, &path).send().await.unwrap();
    expect_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    let resp = s
        .op(Method::DELETE, "/v1/operator/guides/no-such-guide")
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::NOT_FOUND, "not_found").await;

    // Update: the guide moves to the end of the feed with its new checksum.
    let mut guide: Guide =
        serde_json::from_value(get_json(&s, &format!("/v1/catalog/guides/{updated_id}")).await)
            .unwrap();
    let old_checksum = guide.checksum();
    guide.name.push_str("（更新）");
    let path = format!("/v1/operator/guides/{updated_id}");
    let resp = s.op(Method::PUT, &path).json(&guide).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let put: Value = resp.json().await.unwrap();
    assert_eq!(put["seq"], head + 2);
    assert_ne!(put["checksum"], old_checksum.as_str());
    let v = get_json(&s, "/v1/catalog/changes?limit=1000").await;
    let all = v["changes"].as_array().unwrap();
    let last = all.last().unwrap();
    assert_eq!(last["id"], updated_id.as_str());
    assert_eq!(last["seq"], head + 2);
    assert_eq!(last["guide"]["name"], guide.name.as_str());
    assert_eq!(
        all.iter()
            .filter(|c| c["id"] == updated_id.as_str())
            .count(),
        1
    );
    // Publishing the same guide again changes nothing.
    let resp = s.op(Method::PUT, &path).json(&guide).send().await.unwrap();
    let again: Value = resp.json().await.unwrap();
    assert_eq!(again["seq"], head + 2);
    // A withdrawn guide can be published again: live, at the end of the feed.
    let resp = s
        .op(Method::PUT, &format!("/v1/operator/guides/{victim}"))
        .json(&victim_guide)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap()["seq"], head + 3);
    let v = get_json(&s, &format!("/v1/catalog/changes?since={}", head + 2)).await;
    assert_eq!(v["changes"][0]["id"], victim.as_str());
    assert_eq!(v["changes"][0]["deleted"], false);
    assert_eq!(v["changes"][0]["guide"], victim_guide);
    let restored = get_json(&s, &format!("/v1/catalog/guides/{victim}")).await;
    assert_eq!(restored, victim_guide);
    // Path and body ids must agree.
    let resp = s
        .op(Method::PUT, "/v1/operator/guides/another-id")
        .json(&guide)
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::BAD_REQUEST, "id_mismatch").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_rejects_bad_paging() {
    let s = TestServer::start().await;
    for q in ["limit=0", "limit=1001", "since=0&limit=5000"] {
        let resp = s
            .req(Method::GET, &format!("/v1/catalog/changes?{q}"))
            .send()
            .await
            .unwrap();
        expect_error(resp, StatusCode::BAD_REQUEST, "invalid_limit").await;
    }
    for q in ["limit=abc", "since=-1", "since=x"] {
        let resp = s
            .req(Method::GET, &format!("/v1/catalog/changes?{q}"))
            .send()
            .await
            .unwrap();
        expect_error(resp, StatusCode::BAD_REQUEST, "invalid_query").await;
    }
    let v = get_json(&s, "/v1/catalog/changes?limit=1000").await;
    assert_eq!(v["changes"].as_array().unwrap().len(), s.guides);
    assert_eq!(v["more"], false);
    let v = get_json(&s, "/v1/catalog/changes?limit=1").await;
    assert_eq!(v["changes"].as_array().unwrap().len(), 1);
    assert_eq!(v["next"], 1);
    assert_eq!(v["more"], true);
}

// ------------------------------------------------------------------ trust --

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_bundle_and_status_lists() {
    let s = TestServer::start().await;
    let resp = s.req(Method::GET, "/v1/trust/bundle").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[CONTENT_TYPE], "application/jwt");
    assert_eq!(resp.text().await.unwrap(), s.world.bundle.jws());

    let lists = get_json(&s, "/v1/trust/status-lists").await;
    let lists = lists.as_array().unwrap();
    assert_eq!(lists.len(), ISSUERS.len());
    let mut cache = StatusListCache::new();
    for spec in &ISSUERS {
        let entry = lists
            .iter()
            .find(|l| l["uri"] == cdemo::status_uri(spec).as_str())
            .expect("a list per issuer");
        cache
            .insert_token(entry["token"].as_str().unwrap(), &s.world.bundle)
            .expect("the published list verifies against the bundle");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_publishes_trust_bundles_without_rollback() {
    let s = TestServer::start().await;
    let sign = |version: u64, iat: i64, root: &KeyPair| {
        let mut c: TrustBundleContent = s.world.bundle_content.clone();
        c.version = version;
        c.iat = iat;
        c.sign(root).unwrap()
    };
    let put = |jws: String, token: Option<&'static str>| {
        let mut r = s
            .req(Method::PUT, "/v1/operator/trust-bundle")
            .header(CONTENT_TYPE, "application/jwt")
            .body(jws);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let v2 = sign(2, s.now() + 60, &s.world.root);
    // Operator credentials first.
    expect_error(
        put(v2.clone(), None).await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    expect_error(
        put(v2.clone(), Some("nope")).await.unwrap(),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    // A newer version: accepted, served, used.
    let resp = put(v2.clone(), Some(OPERATOR_TOKEN)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap()["version"], 2);
    let resp = s.req(Method::GET, "/v1/trust/bundle").send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), v2);
    assert_eq!(get_json(&s, "/healthz").await["trust_bundle_version"], 2);
    // The same bundle again: idempotent.
    let resp = put(format!("{v2}\n"), Some(OPERATOR_TOKEN)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // Rollback to version 1, or version 2 with other content: refused.
    for jws in [
        s.world.bundle.jws().to_owned(),
        sign(2, s.now() + 120, &s.world.root),
    ] {
        let v = expect_error(
            put(jws, Some(OPERATOR_TOKEN)).await.unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "trust_bundle_rejected",
        )
        .await;
        assert_eq!(v["error"]["details"]["reason"], "bundle_rollback");
    }
    // Signed by a key that is not the pinned root: refused.
    let other = KeyPair::generate(&mut rand::rngs::OsRng);
    let v = expect_error(
        put(sign(3, s.now(), &other), Some(OPERATOR_TOKEN))
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "trust_bundle_rejected",
    )
    .await;
    assert_eq!(v["error"]["details"]["reason"], "bundle_signature_invalid");
    let v = expect_error(
        put("not a jws".into(), Some(OPERATOR_TOKEN)).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "trust_bundle_rejected",
    )
    .await;
    assert!(v["error"]["details"]["reason"].is_string());
    // Still version 2, and licences still verify with it.
    assert_eq!(get_json(&s, "/healthz").await["trust_bundle_version"], 2);
    let (r, dev) = s.resident_with_device().await;
    let (lid, _) = s.grant(&r.id, 0).await;
    let resp = s
        .submit_with_licence(&dev, business_guide(), "business_licence", &lid)
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "{}",
        resp.text().await.unwrap()
    );
}
