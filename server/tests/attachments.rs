//! Attachments over HTTP: resumable, content-hashed uploads per resident,
//! checked as a step of the submission that references them, and read by
//! the operator through that submission only.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand::{RngCore as _, SeedableRng as _};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use zhangban_core::guide::{FieldKind, Guide};
use zhangban_server::state::{DEFAULT_MAX_ATTACHMENT_BYTES, sha256_hex};
use zhangban_tests::server::*;

/// `len` pseudo-random bytes (seeded: a failure reproduces).
fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut bytes = vec![0u8; len];
    rng.fill_bytes(&mut bytes);
    bytes
}

async fn ok_json(resp: reqwest::Response) -> Value {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    serde_json::from_str(&text).unwrap()
}

fn state(v: &Value) -> (u64, u64, bool) {
    (
        v["size"].as_u64().unwrap(),
        v["received"].as_u64().unwrap(),
        v["complete"].as_bool().unwrap(),
    )
}

/// A guide with an attachment field, and that field's name.
fn attachment_guide() -> (&'static Guide, &'static str) {
    let g = business_guide();
    let f = g
        .form
        .fields
        .iter()
        .find(|f| matches!(f.kind, FieldKind::Attachment { .. }))
        .expect("the business guide takes an attachment");
    (g, f.name.as_str())
}

fn attachment_value(bytes: &[u8], name: &str) -> Value {
    json!({"sha256": sha256_hex(bytes), "size": bytes.len(), "media_type": "application/PDF", "name": name})
}

async fn counter(s: &TestServer, name: &str) -> u64 {
    let text = s.metrics().await;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
}

#[tokio::test]
async fn an_upload_in_chunks_resumes_after_a_cut() {
    let s = TestServer::start().await;
    let (_, dev) = s.resident_with_device().await;
    let bytes_before = counter(&s, "zhangban_attachment_bytes_total").await;
    let completed_before = counter(&s, "zhangban_attachment_uploads_completed_total").await;
    let data = content(2500, 1);
    let sha = sha256_hex(&data);

    let v = ok_json(s.declare(&dev, &sha, 2500, "application/pdf").await).await;
    assert_eq!(
        v,
        json!({"sha256": sha, "size": 2500, "media_type": "application/pdf", "received": 0, "complete": false})
    );
    let v = ok_json(s.put_chunk(&dev, &sha, 0, &data[..1000]).await).await;
    assert_eq!(state(&v), (2500, 1000, false));
    // The "cut": the second chunk is stored but its answer is lost.
    drop(s.put_chunk(&dev, &sha, 1000, &data[1000..2000]).await);
    // The client asks where to resume, and declaring again answers the same.
    let v = ok_json(s.upload_state(&dev, &sha).await).await;
    assert_eq!(state(&v), (2500, 2000, false));
    let again = ok_json(s.declare(&dev, &sha, 2500, "application/pdf").await).await;
    assert_eq!(again, v);
    // A retry of a chunk already stored is harmless.
    let v = ok_json(s.put_chunk(&dev, &sha, 1000, &data[1000..2000]).await).await;
    assert_eq!(state(&v), (2500, 2000, false));
    let v = ok_json(s.put_chunk(&dev, &sha, 0, &data[..10]).await).await;
    assert_eq!(state(&v), (2500, 2000, false));
    // The rest, from `received`.
    let at = v["received"].as_u64().unwrap();
    let v = ok_json(s.put_chunk(&dev, &sha, at, &data[at as usize..]).await).await;
    assert_eq!(state(&v), (2500, 2500, true));
    // Retries after completion (of the last chunk, of a declaration) change nothing.
    let v = ok_json(s.put_chunk(&dev, &sha, 2000, &data[2000..]).await).await;
    assert_eq!(state(&v), (2500, 2500, true));
    let v = ok_json(s.declare(&dev, &sha, 2500, "application/pdf").await).await;
    assert_eq!(state(&v), (2500, 2500, true));
    let v = ok_json(s.upload_state(&dev, &sha).await).await;
    assert_eq!(state(&v), (2500, 2500, true));

    // Metrics are per process (tests run in parallel): at least ours.
    assert!(counter(&s, "zhangban_attachment_bytes_total").await >= bytes_before + 2500);
    assert!(counter(&s, "zhangban_attachment_uploads_completed_total").await > completed_before);
}

#[tokio::test]
async fn chunks_start_at_the_stored_end_and_stay_within_the_size() {
    let s = TestServer::start().await;
    let (_, dev) = s.resident_with_device().await;
    let data = content(100, 2);
    let sha = sha256_hex(&data);
    // No declaration yet.
    expect_error(
        s.put_chunk(&dev, &sha, 0, &data[..10]).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    ok_json(s.declare(&dev, &sha, 100, "image/png").await).await;
    // A gap: refused, with the resume point.
    let e = expect_error(
        s.put_chunk(&dev, &sha, 50, &data[50..60]).await,
        StatusCode::CONFLICT,
        "offset_mismatch",
    )
    .await;
    assert_eq!(e["error"]["details"]["received"], 0);
    ok_json(s.put_chunk(&dev, &sha, 0, &data[..60]).await).await;
    // Overlapping the stored end: refused, with the resume point.
    let e = expect_error(
        s.put_chunk(&dev, &sha, 30, &data[30..90]).await,
        StatusCode::CONFLICT,
        "offset_mismatch",
    )
    .await;
    assert_eq!(e["error"]["details"]["received"], 60);
    // Past the declared size (and an offset that would overflow).
    let mut long = data[60..].to_vec();
    long.push(0);
    let e = expect_error(
        s.put_chunk(&dev, &sha, 60, &long).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "beyond_size",
    )
    .await;
    assert_eq!(e["error"]["details"]["size"], 100);
    assert_eq!(e["error"]["details"]["received"], 60);
    expect_error(
        s.put_chunk(&dev, &sha, u64::MAX, &data[..1]).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "beyond_size",
    )
    .await;
    // Nothing of the refused chunks was stored.
    let v = ok_json(s.upload_state(&dev, &sha).await).await;
    assert_eq!(state(&v), (100, 60, false));
    // The body must be raw, non-empty octets.
    expect_error(
        s.put_chunk(&dev, &sha, 60, &[]).await,
        StatusCode::BAD_REQUEST,
        "empty_chunk",
    )
    .await;
    let resp = s
        .as_dev(
            &dev,
            Method::PUT,
            &format!("/v1/attachments/{sha}/chunks/60"),
        )
        .json(&json!({"bytes": "x"}))
        .send()
        .await
        .unwrap();
    expect_error(
        resp,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let v = ok_json(s.put_chunk(&dev, &sha, 60, &data[60..]).await).await;
    assert_eq!(state(&v), (100, 100, true));
}

#[tokio::test]
async fn a_last_chunk_that_does_not_hash_restarts_the_upload() {
    let s = TestServer::start().await;
    let (_, dev) = s.resident_with_device().await;
    let mismatches_before = counter(&s, "zhangban_attachment_hash_mismatches_total").await;
    let data = content(3000, 3);
    let sha = sha256_hex(&data);
    ok_json(s.declare(&dev, &sha, 3000, "application/pdf").await).await;
    ok_json(s.put_chunk(&dev, &sha, 0, &data[..2000]).await).await;
    // The last chunk with one byte changed.
    let mut bad = data[2000..].to_vec();
    bad[500] ^= 0x55;
    let e = expect_error(
        s.put_chunk(&dev, &sha, 2000, &bad).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "hash_mismatch",
    )
    .await;
    assert_eq!(e["error"]["details"]["received"], 0);
    // Every byte was dropped: the upload restarts at 0.
    let v = ok_json(s.upload_state(&dev, &sha).await).await;
    assert_eq!(state(&v), (3000, 0, false));
    expect_error(
        s.put_chunk(&dev, &sha, 2000, &data[2000..]).await,
        StatusCode::CONFLICT,
        "offset_mismatch",
    )
    .await;
    // A single chunk with the wrong content.
    let e = expect_error(
        s.put_chunk(&dev, &sha, 0, &content(3000, 4)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "hash_mismatch",
    )
    .await;
    assert_eq!(e["error"]["details"]["received"], 0);
    // The right bytes from 0 complete it.
    let v = s.upload(&dev, &data, "application/pdf", 1024).await;
    assert_eq!(state(&v), (3000, 3000, true));
    assert!(
        counter(&s, "zhangban_attachment_hash_mismatches_total").await >= mismatches_before + 2
    );
}

#[tokio::test]
async fn declaring_again_with_another_size_or_media_type() {
    let s = TestServer::start().await;
    let (_, dev) = s.resident_with_device().await;
    let data = content(500, 5);
    let sha = sha256_hex(&data);
    ok_json(s.declare(&dev, &sha, 400, "image/png").await).await;
    ok_json(s.put_chunk(&dev, &sha, 0, &data[..300]).await).await;
    // Incomplete and declared with another size: restarted from 0.
    let v = ok_json(s.declare(&dev, &sha, 500, "IMAGE/JPEG").await).await;
    assert_eq!(state(&v), (500, 0, false));
    assert_eq!(v["media_type"], "image/jpeg");
    s.upload(&dev, &data, "image/jpeg", 200).await;
    // Complete: another size is a conflict, and nothing changes.
    let e = expect_error(
        s.declare(&dev, &sha, 501, "image/jpeg").await,
        StatusCode::CONFLICT,
        "attachment_conflict",
    )
    .await;
    assert_eq!(e["error"]["details"]["size"], 500);
    // The same size with another media type: updated, still complete.
    let v = ok_json(s.declare(&dev, &sha, 500, "application/pdf").await).await;
    assert_eq!(state(&v), (500, 500, true));
    assert_eq!(v["media_type"], "application/pdf");
}

#[tokio::test]
async fn malformed_declarations_and_chunks_get_typed_errors() {
    let s = TestServer::start().await;
    let (_, dev) = s.resident_with_device().await;
    let sha = sha256_hex(b"x");
    for bad in [
        "AB".repeat(32),
        "ab".repeat(31),
        "zz".repeat(32),
        "ab".repeat(33),
    ] {
        expect_error(
            s.declare(&dev, &bad, 1, "image/png").await,
            StatusCode::BAD_REQUEST,
            "invalid_sha256",
        )
        .await;
        expect_error(
            s.upload_state(&dev, &bad).await,
            StatusCode::BAD_REQUEST,
            "invalid_sha256",
        )
        .await;
        expect_error(
            s.put_chunk(&dev, &bad, 0, b"x").await,
            StatusCode::BAD_REQUEST,
            "invalid_sha256",
        )
        .await;
    }
    expect_error(
        s.declare(&dev, &sha, 0, "image/png").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_size",
    )
    .await;
    let e = expect_error(
        s.declare(&dev, &sha, DEFAULT_MAX_ATTACHMENT_BYTES + 1, "image/png")
            .await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "attachment_too_large",
    )
    .await;
    assert_eq!(
        e["error"]["details"]["max_bytes"],
        DEFAULT_MAX_ATTACHMENT_BYTES
    );
    // Exactly the largest is accepted.
    let v = ok_json(
        s.declare(&dev, &sha, DEFAULT_MAX_ATTACHMENT_BYTES, "image/png")
            .await,
    )
    .await;
    assert_eq!(state(&v), (DEFAULT_MAX_ATTACHMENT_BYTES, 0, false));
    for bad in [
        "png",
        "image/",
        "image/png; charset=x",
        "图片/png",
        "image/p ng",
    ] {
        expect_error(
            s.declare(&dev, &sha, 1, bad).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_media_type",
        )
        .await;
    }
    let resp = s
        .as_dev(&dev, Method::PUT, &format!("/v1/attachments/{sha}"))
        .json(&json!({"size": 1, "media_type": "image/png", "name": "x"}))
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;
    let resp = s
        .as_dev(
            &dev,
            Method::PUT,
            &format!("/v1/attachments/{sha}/chunks/minus"),
        )
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .body("x")
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_path").await;
    // A chunk over the chunk limit.
    let big = vec![7u8; s.state.config.max_chunk_bytes + 1];
    expect_error(
        s.put_chunk(&dev, &sha, 0, &big).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "chunk_too_large",
    )
    .await;
    // No token.
    for resp in [
        s.req(Method::GET, &format!("/v1/attachments/{sha}"))
            .send()
            .await
            .unwrap(),
        s.req(Method::PUT, &format!("/v1/attachments/{sha}/chunks/0"))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body("x")
            .send()
            .await
            .unwrap(),
    ] {
        expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
}

#[tokio::test]
async fn chunks_have_their_own_body_limit() {
    // A JSON limit below the chunk limit: chunks up to the chunk limit pass.
    let s = TestServer::start_configured(Catalog::Small, |c| {
        c.max_body_bytes = 16 * 1024;
        c.max_chunk_bytes = 256 * 1024;
    })
    .await;
    let (_, dev) = s.resident_with_device().await;
    let data = content(300 * 1024, 6);
    let sha = sha256_hex(&data);
    ok_json(
        s.declare(&dev, &sha, data.len() as u64, "application/pdf")
            .await,
    )
    .await;
    let v = ok_json(s.put_chunk(&dev, &sha, 0, &data[..256 * 1024]).await).await;
    assert_eq!(state(&v).1, 256 * 1024);
    expect_error(
        s.put_chunk(&dev, &sha, 256 * 1024, &content(256 * 1024 + 1, 7))
            .await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "chunk_too_large",
    )
    .await;
    let v = ok_json(
        s.put_chunk(&dev, &sha, 256 * 1024, &data[256 * 1024..])
            .await,
    )
    .await;
    assert_eq!(state(&v), (data.len() as u64, data.len() as u64, true));
    // JSON routes keep the JSON limit.
    let resp = s
        .as_dev(&dev, Method::PUT, &format!("/v1/attachments/{sha}"))
        .json(&json!({"size": 1, "media_type": "a".repeat(20 * 1024)}))
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    // The default server takes a chunk of exactly 1 MiB (its JSON limit).
    let s = TestServer::start().await;
    let (_, dev) = s.resident_with_device().await;
    let max = s.state.config.max_chunk_bytes;
    assert_eq!(max, 1024 * 1024);
    let data = content(max + 1, 8);
    let sha = sha256_hex(&data);
    ok_json(
        s.declare(&dev, &sha, data.len() as u64, "application/pdf")
            .await,
    )
    .await;
    let v = ok_json(s.put_chunk(&dev, &sha, 0, &data[..max]).await).await;
    assert_eq!(state(&v).1, max as u64);
}

#[tokio::test]
async fn a_submission_waits_for_its_attachment_then_the_operator_reads_it() {
    let s = TestServer::start().await;
    let (_, dev) = s.resident_with_device().await;
    let (guide, field) = attachment_guide();
    let file = content(5000, 9);
    let body = s.body(
        guide,
        &[(field, attachment_value(&file, "营业执照 副本.pdf"))],
    );
    let cid = s.client_id();

    // Not uploaded: a per-field error; nothing stored.
    let errors = field_errors(s.submit_raw(&dev, &cid, &body).await).await;
    assert_eq!(
        errors,
        vec![(field.to_owned(), "attachment_missing".to_owned())]
    );
    let resp = s
        .as_dev(&dev, Method::GET, &format!("/v1/submissions/{cid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    // Partly uploaded: still missing, and the error has the documented shape.
    let sha = sha256_hex(&file);
    ok_json(s.declare(&dev, &sha, 5000, "application/pdf").await).await;
    ok_json(s.put_chunk(&dev, &sha, 0, &file[..4000]).await).await;
    let e = expect_error(
        s.submit_raw(&dev, &cid, &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let f = &e["error"]["details"]["fields"][0];
    assert_eq!(f["field"], field);
    assert_eq!(f["kind"], "attachment");
    assert_eq!(f["code"], "attachment_missing");
    assert!(f["zh"].is_string() && f["en"].is_string(), "{f}");

    // Uploaded: the same request (same id) is accepted, and retries get the receipt.
    s.upload(&dev, &file, "application/pdf", 4000).await;
    let resp = s.submit_raw(&dev, &cid, &body).await;
    let receipt = ok_json(resp).await;
    let again = ok_json(s.submit_raw(&dev, &cid, &body).await).await;
    assert_eq!(again, receipt);
    let tracking = receipt["tracking_number"].as_str().unwrap();

    // The referenced size must be the uploaded one.
    let mut wrong = body.clone();
    wrong["values"][field]["size"] = json!(5001);
    let errors = field_errors(s.submit_raw(&dev, &s.client_id(), &wrong).await).await;
    assert_eq!(
        errors,
        vec![(field.to_owned(), "attachment_missing".to_owned())]
    );

    // The operator: the links, and exactly the bytes.
    let links = ok_json(
        s.op(
            Method::GET,
            &format!("/v1/operator/submissions/{tracking}/attachments"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        links,
        json!([{"field": field, "sha256": sha, "size": 5000,
            "media_type": "application/pdf", "name": "营业执照 副本.pdf"}])
    );
    let resp = s
        .op(
            Method::GET,
            &format!("/v1/operator/submissions/{tracking}/attachments/{sha}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers().clone();
    assert_eq!(h[reqwest::header::CONTENT_TYPE], "application/pdf");
    let disposition = h[reqwest::header::CONTENT_DISPOSITION].to_str().unwrap();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    assert!(
        disposition.contains("filename*=UTF-8''%E8%90%A5%E4%B8%9A"),
        "{disposition}"
    );
    assert_eq!(resp.bytes().await.unwrap().as_ref(), file.as_slice());

    // Typed 4xx for what is not there, and operator credentials only.
    let other = sha256_hex(b"other");
    for (path, status, code) in [
        (
            format!("/v1/operator/submissions/{tracking}/attachments/{other}"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            format!("/v1/operator/submissions/{tracking}/attachments/XYZ"),
            StatusCode::BAD_REQUEST,
            "invalid_sha256",
        ),
        (
            "/v1/operator/submissions/51160220990101999999/attachments".to_owned(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            format!("/v1/operator/submissions/51160220990101999999/attachments/{sha}"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ] {
        expect_error(s.op(Method::GET, &path).send().await.unwrap(), status, code).await;
    }
    let resp = s
        .as_dev(
            &dev,
            Method::GET,
            &format!("/v1/operator/submissions/{tracking}/attachments/{sha}"),
        )
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::FORBIDDEN, "forbidden").await;
}

#[tokio::test]
async fn uploads_belong_to_their_resident() {
    let s = TestServer::start().await;
    let (_, alice) = s.resident_with_device().await;
    let (_, bob) = s.resident_with_device().await;
    let (guide, field) = attachment_guide();
    let file = content(1500, 10);
    let sha = sha256_hex(&file);
    s.upload(&alice, &file, "application/pdf", 1000).await;

    // Bob sees no upload of that content, and cannot write to Alice's.
    expect_error(
        s.upload_state(&bob, &sha).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(
        s.put_chunk(&bob, &sha, 0, &file[..100]).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // Nor reference it in a submission.
    let body = s.body(guide, &[(field, attachment_value(&file, "a.pdf"))]);
    let errors = field_errors(s.submit_raw(&bob, &s.client_id(), &body).await).await;
    assert_eq!(
        errors,
        vec![(field.to_owned(), "attachment_missing".to_owned())]
    );
    // Declaring it starts Bob's own upload, from 0; Alice's stays complete.
    let v = ok_json(s.declare(&bob, &sha, 1500, "application/pdf").await).await;
    assert_eq!(state(&v), (1500, 0, false));
    ok_json(s.put_chunk(&bob, &sha, 0, &file[..700]).await).await;
    let v = ok_json(s.upload_state(&alice, &sha).await).await;
    assert_eq!(state(&v), (1500, 1500, true));
    let v = ok_json(s.upload_state(&bob, &sha).await).await;
    assert_eq!(state(&v), (1500, 700, false));

    // Alice's submission goes through; the operator reads her bytes through it.
    let receipt = ok_json(s.submit_raw(&alice, &s.client_id(), &body).await).await;
    let tracking = receipt["tracking_number"].as_str().unwrap();
    let resp = s
        .op(
            Method::GET,
            &format!("/v1/operator/submissions/{tracking}/attachments/{sha}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), file.as_slice());
    // There is no operator route to an upload outside a submission.
    let resp = s
        .op(Method::GET, &format!("/v1/attachments/{sha}"))
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn a_submission_without_attachment_fields_records_none() {
    let s = TestServer::start().await;
    let (_, dev) = s.resident_with_device().await;
    let guide = plain_guide();
    let receipt = ok_json(s.submit(&dev, &s.client_id(), &s.body(guide, &[])).await).await;
    let tracking = receipt["tracking_number"].as_str().unwrap();
    let links = ok_json(
        s.op(
            Method::GET,
            &format!("/v1/operator/submissions/{tracking}/attachments"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    let expected = guide
        .form
        .fields
        .iter()
        .filter(|f| f.required && matches!(f.kind, FieldKind::Attachment { .. }))
        .count();
    assert_eq!(links.as_array().unwrap().len(), expected);
}

#[tokio::test]
async fn guides_cannot_allow_more_than_the_server_accepts() {
    // Every fixture field fits the default.
    let largest = catalog()
        .iter()
        .map(zhangban_server::api::operator::largest_attachment)
        .max()
        .unwrap();
    assert!(largest > 0 && largest <= DEFAULT_MAX_ATTACHMENT_BYTES);

    let s = TestServer::start().await;
    let (guide, _) = attachment_guide();
    let mut g = guide.clone();
    for f in &mut g.form.fields {
        if let FieldKind::Attachment { max_bytes, .. } = &mut f.kind {
            *max_bytes = DEFAULT_MAX_ATTACHMENT_BYTES + 1;
        }
    }
    let resp = s
        .op(Method::PUT, &format!("/v1/operator/guides/{}", g.id))
        .json(&g)
        .send()
        .await
        .unwrap();
    let e = expect_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "invalid_guide").await;
    assert_eq!(
        e["error"]["details"]["max_attachment_bytes"],
        DEFAULT_MAX_ATTACHMENT_BYTES
    );
    // At the limit it is published.
    for f in &mut g.form.fields {
        if let FieldKind::Attachment { max_bytes, .. } = &mut f.kind {
            *max_bytes = DEFAULT_MAX_ATTACHMENT_BYTES;
        }
    }
    let _: Value = json_ok(
        s.op(Method::PUT, &format!("/v1/operator/guides/{}", g.id))
            .json(&g),
    )
    .await;
}

/// Sends a chunk request whose body is cut after `sent` of its bytes (the
/// connection closes), like a phone losing its network mid-upload.
async fn cut_chunk(s: &TestServer, dev: &Device, sha: &str, offset: u64, body: &[u8], sent: usize) {
    use tokio::io::AsyncWriteExt as _;
    let addr = s.base.strip_prefix("http://").unwrap();
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PUT /v1/attachments/{sha}/chunks/{offset} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        dev.token,
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&body[..sent]).await.unwrap();
    conn.flush().await.unwrap();
    // Cut the body: half-close our side, then wait until the server closes
    // its side. The connection task that runs the handler has then ended, so
    // whatever the server does with the cut chunk has been done when this
    // returns (no sleep standing in for that).
    conn.shutdown().await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        tokio::io::AsyncReadExt::read_to_end(&mut conn, &mut answer),
    )
    .await
    .expect("the server closes a connection whose body was cut")
    .ok();
}

#[tokio::test]
async fn a_chunk_cut_mid_body_stores_nothing_and_the_upload_resumes() {
    let s = TestServer::start().await;
    let (_, dev) = s.resident_with_device().await;
    let data = content(200 * 1024, 11);
    let sha = sha256_hex(&data);
    ok_json(
        s.declare(&dev, &sha, data.len() as u64, "application/pdf")
            .await,
    )
    .await;
    ok_json(s.put_chunk(&dev, &sha, 0, &data[..64 * 1024]).await).await;
    cut_chunk(
        &s,
        &dev,
        &sha,
        64 * 1024,
        &data[64 * 1024..128 * 1024],
        10_000,
    )
    .await;
    let v = ok_json(s.upload_state(&dev, &sha).await).await;
    assert_eq!(
        state(&v),
        (data.len() as u64, 64 * 1024, false),
        "no partial chunk stored"
    );
    // Resume from `received`; the content is exactly the file.
    let v = s.upload(&dev, &data, "application/pdf", 64 * 1024).await;
    assert_eq!(state(&v), (data.len() as u64, data.len() as u64, true));
    let (guide, field) = attachment_guide();
    let body = s.body(guide, &[(field, attachment_value(&data, "big.pdf"))]);
    let receipt = ok_json(s.submit_raw(&dev, &s.client_id(), &body).await).await;
    let tracking = receipt["tracking_number"].as_str().unwrap();
    let got = s
        .op(
            Method::GET,
            &format!("/v1/operator/submissions/{tracking}/attachments/{sha}"),
        )
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.as_ref(), data.as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicated_chunks_in_flight_are_stored_once() {
    let s = TestServer::start().await;
    let (_, dev) = s.resident_with_device().await;
    let data = content(4000, 12);
    let sha = sha256_hex(&data);
    ok_json(s.declare(&dev, &sha, 4000, "application/pdf").await).await;
    for (from, to) in [(0, 2500), (2500, 4000)] {
        let sends: Vec<_> = (0..8)
            .map(|_| {
                let req = s
                    .as_dev(
                        &dev,
                        Method::PUT,
                        &format!("/v1/attachments/{sha}/chunks/{from}"),
                    )
                    .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .body(data[from..to].to_vec());
                tokio::spawn(async move {
                    let resp = req.send().await.unwrap();
                    (resp.status(), resp.json::<Value>().await.unwrap())
                })
            })
            .collect();
        for h in sends {
            let (status, v) = h.await.unwrap();
            assert_eq!(status, StatusCode::OK, "{v}");
            assert_eq!(v["received"], to, "{v}");
        }
    }
    let v = ok_json(s.upload_state(&dev, &sha).await).await;
    assert_eq!(state(&v), (4000, 4000, true));
    let (guide, field) = attachment_guide();
    let body = s.body(guide, &[(field, attachment_value(&data, "a.pdf"))]);
    let receipt = ok_json(s.submit_raw(&dev, &s.client_id(), &body).await).await;
    let tracking = receipt["tracking_number"].as_str().unwrap();
    let got = s
        .op(
            Method::GET,
            &format!("/v1/operator/submissions/{tracking}/attachments/{sha}"),
        )
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.as_ref(), data.as_slice());
}
