//! The search lexicon on the real server (ADR 0181): the public document
//! with its ETag and 304; publishers' changes, each the next version and
//! one audit row; entries checked with the core's rules (each way one can
//! be bad is refused, and nothing changes); other roles refused; and a
//! publisher of any department may edit it (it is district-wide).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use reqwest::header::{ETAG, IF_NONE_MATCH};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use zhangban_core::search::Lexicon;
use zhangban_server::store::operators::AuditFilter;
use zhangban_tests::server::*;

fn rows(s: &TestServer) -> Vec<zhangban_server::audit::AuditRow> {
    s.state.store.audit_log(&AuditFilter::default()).unwrap()
}

async fn get_public(s: &TestServer, etag: Option<&str>) -> reqwest::Response {
    let mut r = s.req(Method::GET, "/v1/catalog/lexicon");
    if let Some(t) = etag {
        r = r.header(IF_NONE_MATCH, t);
    }
    r.send().await.unwrap()
}

async fn put(s: &TestServer, term: &str, body: &Value) -> reqwest::Response {
    s.op(Method::PUT, &format!("/v1/operator/lexicon/entries/{term}"))
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_lexicon_has_an_etag_and_answers_304_until_it_changes() {
    let s = TestServer::start().await;
    let builtin = Lexicon::builtin();
    let resp = get_public(&s, None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let etag = resp.headers()[ETAG].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"lexicon-{}\"", builtin.version));
    let text = resp.text().await.unwrap();
    // What phones get passes the phone's own checks, and is the seed.
    let served = Lexicon::from_json(&text).unwrap();
    assert_eq!(&served, builtin);

    let resp = get_public(&s, Some(&etag)).await;
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(resp.headers()[ETAG].to_str().unwrap(), etag);
    assert!(resp.bytes().await.unwrap().is_empty());

    let resp = put(
        &s,
        "落个户口",
        &json!({"targets": ["户口登记"], "two_way": false}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["version"], json!(builtin.version + 1));
    assert_eq!(v["term"], json!("落个户口"));

    // The old tag no longer matches; the new document has the entry last.
    let resp = get_public(&s, Some(&etag)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let new_tag = resp.headers()[ETAG].to_str().unwrap().to_owned();
    assert_eq!(new_tag, format!("\"lexicon-{}\"", builtin.version + 1));
    let lex = Lexicon::from_json(&resp.text().await.unwrap()).unwrap();
    assert_eq!(lex.entries.len(), builtin.entries.len() + 1);
    let last = lex.entries.last().unwrap();
    assert_eq!(
        (last.term.as_str(), last.targets.clone()),
        ("落个户口", vec!["户口登记".to_owned()])
    );
    assert_eq!(lex.stopwords, builtin.stopwords);
    assert_eq!(
        get_public(&s, Some(&new_tag)).await.status(),
        StatusCode::NOT_MODIFIED
    );

    // The operator's list is the same document.
    let listed: Value = s
        .op(Method::GET, "/v1/operator/lexicon")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed, serde_json::to_value(&lex).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_entries_are_refused_with_the_rule_and_change_nothing() {
    let s = TestServer::start().await;
    let version = Lexicon::builtin().version;
    let nine: Vec<String> = (0..9).map(|i| format!("目标{i}")).collect();
    let long = "长".repeat(33);
    let cases: Vec<(String, Value, StatusCode, &str, Option<&str>)> = vec![
        (
            "低保".into(),
            json!({"targets": []}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_entry",
            Some("no targets"),
        ),
        (
            "低保".into(),
            json!({"targets": nine}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_entry",
            Some("more than 8 targets"),
        ),
        (
            "低保".into(),
            json!({"targets": ["最低\u{0007}生活"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_entry",
            Some("control character"),
        ),
        (
            "低保".into(),
            json!({"targets": [" "]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_entry",
            Some("empty word"),
        ),
        (
            "低保".into(),
            json!({"targets": [long.clone()]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_entry",
            Some("word longer than 32 characters"),
        ),
        (
            long.clone(),
            json!({"targets": ["x"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_entry",
            Some("word longer than 32 characters"),
        ),
        (
            "%20低保".into(),
            json!({"targets": ["x"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_entry",
            Some("spaces around a term"),
        ),
        (
            "低保".into(),
            json!({"targets": ["x"], "source": "s".repeat(201)}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_entry",
            Some("source longer than 200 characters"),
        ),
        (
            "低保".into(),
            json!({"targets": ["x"], "weight": 3}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            None,
        ),
        (
            "低保".into(),
            json!({"targets": "最低生活保障"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            None,
        ),
    ];
    for (term, body, status, code, rule) in cases {
        let before = rows(&s).len();
        let resp = put(&s, &term, &body).await;
        let v = expect_error(resp, status, code).await;
        if let Some(rule) = rule {
            assert_eq!(v["error"]["details"]["rule"], json!(rule), "{term} {body}");
        }
        let after = rows(&s);
        // A refused body is rejected before the handler (no row); a broken
        // rule is one `failed` row.
        if code == "invalid_entry" {
            assert_eq!(after.len(), before + 1, "{term} {body}");
            assert_eq!(after[before].entry.outcome, "failed:invalid_entry");
            assert_eq!(after[before].entry.action, "lexicon.put");
        }
        assert_eq!(
            s.state.store.lexicon_version().unwrap(),
            Some(version),
            "{term} {body}: nothing stored"
        );
    }
    // Removing a term that has no entry.
    let resp = s
        .op(Method::DELETE, "/v1/operator/lexicon/entries/没有这个词")
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(rows(&s).last().unwrap().entry.outcome, "failed:not_found");
    assert_eq!(s.state.store.lexicon_version().unwrap(), Some(version));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_publishers_edit_the_lexicon_and_any_publisher_may() {
    let s = TestServer::start().await;
    let version = Lexicon::builtin().version;
    for token in [OPERATOR_TOKEN, ISSUER_TOKEN, REVIEWER_TOKEN] {
        for (method, path) in [
            (Method::PUT, "/v1/operator/lexicon/entries/低保"),
            (Method::DELETE, "/v1/operator/lexicon/entries/低保"),
            (Method::GET, "/v1/operator/lexicon"),
        ] {
            let before = rows(&s).len();
            let resp = s
                .req(method.clone(), path)
                .bearer_auth(token)
                .json(&json!({"targets": ["别的"]}))
                .send()
                .await
                .unwrap();
            expect_error(resp, StatusCode::FORBIDDEN, "forbidden_role").await;
            let after = rows(&s);
            assert_eq!(after.len(), before + 1);
            assert_eq!(after[before].entry.outcome, "refused:forbidden_role");
        }
    }
    // No token, a resident's token: refused before any role check.
    let resp = s
        .req(Method::DELETE, "/v1/operator/lexicon/entries/低保")
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_eq!(s.state.store.lexicon_version().unwrap(), Some(version));

    // A publisher of one department only: the lexicon is district-wide.
    let resp = s
        .op(Method::POST, "/v1/operator/operators")
        .json(&json!({"name": "pub-one", "role": "publisher", "scopes": ["nowhere"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let token = resp.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = s
        .req(Method::PUT, "/v1/operator/lexicon/entries/低保")
        .bearer_auth(&token)
        .json(&json!({"targets": ["最低生活保障", "低保金"], "source": "民政"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let row = rows(&s).pop().unwrap();
    assert_eq!(
        (
            row.entry.actor.as_str(),
            row.entry.action.as_str(),
            row.entry.outcome.as_str()
        ),
        ("pub-one", "lexicon.put", "ok")
    );
    assert_eq!(row.entry.target, r#"{"term":"低保"}"#);
    let history = s.state.store.lexicon_history(version, 10).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].actor, "pub-one");
    // Replaced in place: still the first entry.
    let lex = s.state.store.lexicon().unwrap().unwrap();
    assert_eq!(lex.entries[0].term, "低保");
    assert_eq!(lex.entries[0].targets.len(), 2);
}
