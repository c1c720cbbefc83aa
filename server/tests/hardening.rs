//! Abuse resistance (issue 12): bounded metrics, key hygiene, the bearer
//! scheme, bounded challenge state. Each test starts its own server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use zhangban_core::credential::jose::b64e;
use zhangban_core::credential::{IssuerKeyEntry, KeyPair, PublicKey, TrustBundleContent};
use zhangban_tests::server::*;

/// The `http_request*` series lines (not comments) of made-up methods
/// (`method="other"`) whose route is one of `routes`. The metrics recorder is
/// process-wide and the other tests of this binary run at the same time, so
/// series of real methods may appear from their servers; made-up methods
/// come only from this test.
fn series(text: &str, routes: &[&str]) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with("http_request") && l.contains("method=\"other\""))
        .filter(|l| routes.iter().any(|r| l.contains(&format!("route=\"{r}\""))))
        .map(|l| l.rsplit_once(' ').map_or(l, |(k, _)| k).to_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_series_stay_constant_under_made_up_methods() {
    let s = TestServer::start().await;
    let routes = ["/livez", "unmatched"];
    let send = |method: String, path: &'static str| {
        let req = s.req(Method::from_bytes(method.as_bytes()).unwrap(), path);
        async move { req.send().await.unwrap().status() }
    };
    // Warm-up: one made-up method per route, so the `other` series exist.
    assert_eq!(
        send("XWARM".into(), "/livez").await,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        send("XWARM".into(), "/nowhere").await,
        StatusCode::NOT_FOUND
    );
    let before = series(&s.metrics().await, &routes);
    assert!(!before.is_empty());

    let mut tasks = Vec::new();
    for t in 0..8u32 {
        let http = s.http.clone();
        let base = s.base.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..1250u32 {
                let method = Method::from_bytes(format!("XM{t}N{i}").as_bytes()).unwrap();
                let path = if i % 2 == 0 { "/livez" } else { "/nowhere" };
                let resp = http
                    .request(method, format!("{base}{path}"))
                    .send()
                    .await
                    .unwrap();
                assert!(resp.status().is_client_error());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let text = s.metrics().await;
    let after = series(&text, &routes);
    assert_eq!(
        before,
        after,
        "10,000 made-up methods added series: {} before, {} after",
        before.len(),
        after.len()
    );
    assert!(!text.contains("XM0N"), "a made-up method became a label");
    // Every method label in the whole text is one of the fixed set.
    for l in text.lines().filter(|l| l.starts_with("http_request")) {
        let Some((_, rest)) = l.split_once("method=\"") else {
            continue;
        };
        let method = rest.split('"').next().unwrap();
        assert!(
            zhangban_server::metrics::METHODS.contains(&method) || method == "other",
            "{l}"
        );
    }
    assert!(text.contains("method=\"other\""), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_not_served_on_the_api_address() {
    let s = TestServer::start().await;
    let resp = s.req(Method::GET, "/metrics").send().await.unwrap();
    expect_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    assert!(s.metrics().await.contains("http_requests_total"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lower_case_bearer_scheme_is_accepted() {
    let s = TestServer::start().await;
    let (_, dev) = s.resident_with_device().await;
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let resp = s
            .req(Method::GET, "/v1/wallet")
            .header(AUTHORIZATION, format!("{scheme} {}", dev.token))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{scheme}");
    }
    let resp = s
        .req(Method::GET, "/v1/wallet")
        .header(AUTHORIZATION, format!("Basic {}", dev.token))
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

fn raw_jwk(x: [u8; 32]) -> Value {
    json!({"kty": "OKP", "crv": "Ed25519", "x": b64e(x)})
}

/// `p + k` little-endian: a non-canonical encoding of `y = k`.
fn p_plus(k: u8) -> [u8; 32] {
    let mut b = [0xffu8; 32];
    b[31] = 0x7f;
    b[0] = 0xed + k;
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weak_device_keys_are_refused_and_use_up_nothing() {
    let s = TestServer::start().await;
    let r = s.register_with(1, 30).await;
    let mut identity = [0u8; 32];
    identity[0] = 1;
    // A non-canonical encoding that decodes (some y = p + k does).
    let non_canonical = (0..=18u8)
        .map(p_plus)
        .find(|b| PublicKey::from_jwk(&raw_jwk(*b)).is_ok())
        .expect("a non-canonical encoding that decodes");
    for (bytes, reason) in [
        ([0u8; 32], "small_order_key"),
        (identity, "identity_key"),
        (non_canonical, ""),
    ] {
        let resp = s
            .req(Method::POST, "/v1/devices/enrol")
            .json(&json!({"activation_code": r.code, "device_jwk": raw_jwk(bytes)}))
            .send()
            .await
            .unwrap();
        let v = expect_error(resp, StatusCode::BAD_REQUEST, "weak_device_key").await;
        if !reason.is_empty() {
            assert_eq!(v["error"]["details"]["reason"], reason);
        }
    }
    // The single use is still there for a real key.
    let key = KeyPair::generate(&mut rand::rngs::OsRng);
    let resp = s.enrol_raw(&r.code, &key).await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trust_bundle_with_a_small_order_issuer_key_is_refused() {
    let s = TestServer::start().await;
    let zero = PublicKey::from_jwk(&raw_jwk([0u8; 32])).unwrap();
    let mut c: TrustBundleContent = s.world.bundle_content.clone();
    c.version = 2;
    c.iat = s.now();
    let first = c.issuers.first_mut().unwrap();
    let window = first
        .keys
        .first()
        .map(|k| (k.not_before, k.not_after))
        .unwrap();
    first.keys.push(IssuerKeyEntry {
        kid: zero.thumbprint(),
        jwk: zero.to_jwk(),
        not_before: window.0,
        not_after: window.1,
    });
    let jws = c.sign(&s.world.root).unwrap();
    let resp = s
        .op(Method::PUT, "/v1/operator/trust-bundle")
        .header(CONTENT_TYPE, "application/jwt")
        .body(jws)
        .send()
        .await
        .unwrap();
    let v = expect_error(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "trust_bundle_rejected",
    )
    .await;
    assert_eq!(v["error"]["details"]["reason"], "small_order_key");
    let health: Value = json_ok(s.req(Method::GET, "/healthz")).await;
    assert_eq!(health["trust_bundle_version"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_challenges_are_capped_per_device_and_pruned_when_expired() {
    let s = TestServer::start_configured(Catalog::Small, |c| c.max_pending_challenges = 3).await;
    let (r, dev) = s.resident_with_device().await;
    let mut issued = Vec::new();
    for _ in 0..10 {
        issued.push(s.challenge(&dev.id).await);
    }
    assert_eq!(s.state.store.challenge_count().unwrap(), 3);
    // The oldest were dropped; the newest still works.
    let (cid, nonce) = &issued[0];
    let resp = s.token_raw(&dev.id, cid, nonce, &dev.key).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let (cid, nonce) = issued.last().unwrap();
    let resp = s.token_raw(&dev.id, cid, nonce, &dev.key).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(s.state.store.challenge_count().unwrap(), 2);

    // Once expired, they go with the next challenge anyone asks for.
    s.clock.advance(s.state.config.challenge_ttl + 1);
    let other = s.device(&r).await;
    s.challenge(&other.id).await;
    assert_eq!(s.state.store.challenge_count().unwrap(), 1);
}

// ----------------------------------------------------------- activation --

/// Status, content type and body bytes of an enrolment attempt.
async fn enrol_answer(s: &TestServer, code: &str) -> (StatusCode, String, Vec<u8>) {
    let key = KeyPair::generate(&mut rand::rngs::OsRng);
    let resp = s.enrol_raw(code, &key).await;
    let status = resp.status();
    let ct = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, ct, resp.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refused_activation_gets_the_same_bytes() {
    let s = TestServer::start().await;
    // Used up: one use, taken.
    let used = s.register_with(1, 30).await;
    s.device(&used).await;
    // Expired: valid one day, the clock moves two.
    let expired = s.register_with(3, 1).await;
    // Locked: its id with wrong rest, five times.
    let locked = s.register().await;
    let wrong_rest = |code: &str| {
        let id: String = code.chars().take(4).collect();
        let rest = if code.ends_with('0') { "1" } else { "0" };
        format!("{id}{}{rest}", &code[4..code.len() - 1])
    };
    for _ in 0..s.state.config.max_activation_failures {
        let (status, _, _) = enrol_answer(&s, &wrong_rest(&locked.code)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    s.clock.advance(2 * 86_400);
    let answers = [
        ("unknown", enrol_answer(&s, "ZZZZ-ZZZZ-ZZZZ-ZZZ1").await),
        ("malformed", enrol_answer(&s, "not a code!").await),
        ("used up", enrol_answer(&s, &used.code).await),
        ("expired", enrol_answer(&s, &expired.code).await),
        (
            "wrong rest",
            enrol_answer(&s, &wrong_rest(&used.code)).await,
        ),
        ("locked, right code", enrol_answer(&s, &locked.code).await),
    ];
    let (_, first) = &answers[0];
    assert_eq!(first.0, StatusCode::FORBIDDEN);
    for (what, a) in &answers {
        assert_eq!(a, first, "{what}: {}", String::from_utf8_lossy(&a.2));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_is_locked_after_its_failures_and_others_are_not() {
    let s = TestServer::start().await;
    let target = s.register().await;
    let bystander = s.register().await;
    let id: String = target.code.chars().take(4).collect();
    for i in 0..s.state.config.max_activation_failures {
        let guess = format!("{id}-{:04}-ZZZZ-ZZZZ", i);
        let (status, _, _) = enrol_answer(&s, &guess).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, _, _) = enrol_answer(&s, &target.code).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "locked: even the right code");
    // Another code is untouched; the locked resident gets a new code.
    s.device(&bystander).await;
    let resp = s
        .op(Method::POST, "/v1/operator/residents")
        .json(&json!({"id": target.id, "name": "张三"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let fresh: Value = resp.json().await.unwrap();
    let again = Resident {
        id: target.id.clone(),
        code: fresh["activation_code"].as_str().unwrap().to_owned(),
    };
    s.device(&again).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_are_generated_grouped_and_supplied_ones_must_meet_the_bar() {
    let s = TestServer::start().await;
    let r = s.register().await;
    let groups: Vec<&str> = r.code.split('-').collect();
    assert_eq!(groups.len(), 4, "{}", r.code);
    assert!(groups.iter().all(|g| g.len() == 4));
    // Typed in lower case, without dashes: the same code.
    s.device(&Resident {
        id: r.id.clone(),
        code: r.code.to_lowercase().replace('-', ""),
    })
    .await;
    for weak in [
        "CODE-0001-ACTIVATE",
        "ZB-DEMO-2026",
        "AAAA-AAAA-AAAA-AAAA",
        "1234-1234-1234-1234",
    ] {
        let resp = s
            .op(Method::POST, "/v1/operator/residents")
            .json(&json!({"id": "weak", "name": "x", "activation_code": weak}))
            .send()
            .await
            .unwrap();
        expect_error(resp, StatusCode::BAD_REQUEST, "invalid_resident").await;
    }
    let resp = s
        .op(Method::POST, "/v1/operator/residents")
        .json(&json!({"id": "strong", "name": "x", "activation_code": "7KQ2-M9XD-4TRB-H0WE"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let v: Value = resp.json().await.unwrap();
    assert!(
        v.get("activation_code").is_none(),
        "a supplied code is not echoed"
    );
    // Another code with the same id is refused rather than shadowing it.
    let resp = s
        .op(Method::POST, "/v1/operator/residents")
        .json(&json!({"id": "other", "name": "x", "activation_code": "7KQ2-ABCD-EFGH-JKMN"}))
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::CONFLICT, "conflict").await;
}

#[test]
fn the_activation_key_is_a_private_file_and_codes_are_stored_keyed() {
    let dir = tempfile::tempdir().unwrap();
    let d = zhangban_server::setup::open(dir.path(), None).unwrap();
    let path = dir.path().join("activation-key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Opening again reads the same key.
    let again = zhangban_server::setup::open(dir.path(), None).unwrap();
    assert_eq!(d.activation_key.to_hex(), again.activation_key.to_hex());
    drop((d, again));
    // The demo code is stored as its HMAC, not as itself or its SHA-256.
    let d = zhangban_server::setup::open(dir.path(), None).unwrap();
    zhangban_server::setup::demo(dir.path(), d.store.as_ref(), T0).unwrap();
    drop(d);
    let db = rusqlite::Connection::open(dir.path().join("zhangban.db")).unwrap();
    let (id, mac): (String, String) = db
        .query_row("SELECT code_id, code_hash FROM activation_codes", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    let code = zhangban_server::activation::normalise(zhangban_server::setup::DEMO_ACTIVATION_CODE)
        .unwrap();
    assert_eq!(id, code.id());
    assert_ne!(
        mac,
        zhangban_server::state::sha256_hex(zhangban_server::setup::DEMO_ACTIVATION_CODE.as_bytes())
    );
    let key = zhangban_server::setup::activation_key(dir.path()).unwrap();
    assert_eq!(mac, key.seal(&code).mac);
}

// ---------------------------------------------------------- rate limits --

fn limits(specs: &[&str]) -> zhangban_server::limits::Limits {
    let mut l = zhangban_server::limits::Limits::off();
    for s in specs {
        l.set(s).unwrap();
    }
    l
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sixth_wrong_activation_is_429_and_the_right_code_waits_too() {
    let s = TestServer::start_configured(Catalog::Small, |c| {
        c.limits = zhangban_server::limits::Limits::default();
    })
    .await;
    let r = s.register().await;
    for i in 0..5 {
        let (status, _, body) = enrol_answer(&s, &format!("ZZZZ-{i:04}-ZZZZ-ZZZZ")).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
    let key = KeyPair::generate(&mut rand::rngs::OsRng);
    let resp = s.enrol_raw("ZZZZ-0005-ZZZZ-ZZZZ", &key).await;
    let retry: u64 = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in whole seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    expect_error(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // The right code during the lockout: refused all the same.
    let resp = s.enrol_raw(&r.code, &key).await;
    expect_error(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert!(
        s.state.store.devices_of(&r.id).unwrap().is_empty(),
        "nothing enrolled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenges_tokens_and_uploads_are_limited_per_target() {
    let s = TestServer::start_configured(Catalog::Small, |c| {
        c.limits = limits(&[
            "challenge-device=3/3600",
            "token-device=2/3600",
            "upload-resident=2/3600",
        ]);
    })
    .await;
    // Login = one challenge + one token.
    let (_, dev) = s.resident_with_device().await;
    let (_, other) = s.resident_with_device().await;
    s.challenge(&dev.id).await;
    s.challenge(&dev.id).await;
    let resp = s
        .req(Method::POST, "/v1/auth/challenge")
        .json(&json!({"device_id": dev.id}))
        .send()
        .await
        .unwrap();
    assert!(resp.headers().contains_key(reqwest::header::RETRY_AFTER));
    expect_error(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Another device is not affected.
    let (cid, nonce) = s.challenge(&other.id).await;
    let resp = s.token_raw(&other.id, &cid, &nonce, &other.key).await;
    assert_eq!(resp.status(), StatusCode::OK);
    // Its third token request is.
    let resp = s.token_raw(&other.id, "nope", "nope", &other.key).await;
    expect_error(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Uploads: two per resident, then 429.
    let sha = "0".repeat(64);
    for expect in [
        StatusCode::OK,
        StatusCode::OK,
        StatusCode::TOO_MANY_REQUESTS,
    ] {
        let resp = s
            .as_dev(&dev, Method::PUT, &format!("/v1/attachments/{sha}"))
            .json(&json!({"size": 10, "media_type": "application/pdf"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), expect, "{}", resp.text().await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_proxy_the_trusted_header_is_the_address() {
    let s = TestServer::start_configured(Catalog::Small, |c| {
        c.limits = limits(&["activation=2/3600"]);
        c.trusted_proxy_header = Some(reqwest::header::HeaderName::from_static("x-forwarded-for"));
    })
    .await;
    let attempt = |xff: &'static str| {
        let key = KeyPair::generate(&mut rand::rngs::OsRng);
        s.req(Method::POST, "/v1/devices/enrol")
            .header("x-forwarded-for", xff)
            .json(&json!({"activation_code": "ZZZZ-ZZZZ-ZZZZ-ZZZ1", "device_jwk": key.public().to_jwk()}))
            .send()
    };
    for _ in 0..2 {
        assert_eq!(
            attempt("10.0.0.1").await.unwrap().status(),
            StatusCode::FORBIDDEN
        );
    }
    assert_eq!(
        attempt("10.0.0.1").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // A client cannot pick its own address: the proxy's (last) entry counts.
    assert_eq!(
        attempt("10.0.0.9, 10.0.0.1").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        attempt("10.0.0.2").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_trickles_in_is_cut_off() {
    let s = TestServer::start_configured(Catalog::Small, |c| {
        c.body_timeout = std::time::Duration::from_millis(300);
    })
    .await;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(
        b"POST /v1/auth/challenge HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{",
    )
    .await
    .unwrap();
    // Never sends the rest: the server answers and closes instead of waiting.
    let mut buf = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        conn.read_to_end(&mut buf),
    )
    .await
    .expect("the server gave up on the body");
    read.unwrap();
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 4"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachment_storage_and_pending_uploads_are_capped_per_resident() {
    let s = TestServer::start_configured(Catalog::Small, |c| {
        c.max_resident_attachment_bytes = 100;
        c.max_pending_uploads = 2;
    })
    .await;
    let (_, dev) = s.resident_with_device().await;
    let (_, other) = s.resident_with_device().await;
    let declare = |d: &Device, n: u8, size: u64| {
        let sha = format!("{n:02x}").repeat(32);
        s.as_dev(d, Method::PUT, &format!("/v1/attachments/{sha}"))
            .json(&json!({"size": size, "media_type": "application/pdf"}))
            .send()
    };
    assert_eq!(declare(&dev, 1, 40).await.unwrap().status(), StatusCode::OK);
    assert_eq!(declare(&dev, 2, 40).await.unwrap().status(), StatusCode::OK);
    // A third pending upload: refused; declaring the first again is fine.
    let v = expect_error(
        declare(&dev, 3, 10).await.unwrap(),
        StatusCode::CONFLICT,
        "too_many_pending_uploads",
    )
    .await;
    assert_eq!(v["error"]["details"]["max_pending"], 2);
    assert_eq!(declare(&dev, 1, 40).await.unwrap().status(), StatusCode::OK);
    // Past the storage quota (40 + 40 + 30 > 100), even with the cap raised.
    let v = expect_error(
        declare(&dev, 2, 70).await.unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "attachment_quota_exceeded",
    )
    .await;
    assert_eq!(v["error"]["details"]["used_bytes"], 40);
    // Another resident has its own quota.
    assert_eq!(
        declare(&other, 1, 100).await.unwrap().status(),
        StatusCode::OK
    );
}

#[test]
fn migration_5_drops_the_old_unkeyed_codes_and_keeps_devices() {
    use zhangban_server::activation::{ActivationKey, normalise};
    use zhangban_server::store::prelude::*;
    use zhangban_server::store::sqlite::{MIGRATIONS, SqliteStore};
    use zhangban_server::store::{Device as StoredDevice, Enrolment, Refusal};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zhangban.db");
    let old_code = "ZB-OLD-CODE-2025";
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        for sql in MIGRATIONS.iter().take(4) {
            c.execute_batch(sql).unwrap();
        }
        c.pragma_update(None, "user_version", 4).unwrap();
        c.execute("INSERT INTO residents VALUES ('r1', '甲', 0)", [])
            .unwrap();
        c.execute(
            "INSERT INTO activation_codes VALUES (?1, 'r1', 9999999999, 3)",
            [zhangban_server::state::sha256_hex(old_code.as_bytes())],
        )
        .unwrap();
        c.execute("INSERT INTO devices VALUES ('d1', 'r1', '{}', 0)", [])
            .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap() as usize, MIGRATIONS.len());
    assert!(
        store.device("d1").unwrap().is_some(),
        "devices stay enrolled"
    );
    let sealed = ActivationKey::generate().seal(&normalise(old_code).unwrap());
    let device = StoredDevice {
        id: "d2".into(),
        resident_id: String::new(),
        jwk: "{}".into(),
    };
    assert_eq!(
        store.enrol(&sealed, &device, T0, 5).unwrap(),
        Enrolment::Refused(Refusal::Unknown),
        "the old code is gone"
    );
    drop(store);
    let c = rusqlite::Connection::open(&path).unwrap();
    let n: i64 = c
        .query_row("SELECT COUNT(*) FROM activation_codes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
}
