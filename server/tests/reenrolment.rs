//! Re-enrolment retires the old device (issue 11, ADR 0125): a phone that
//! moves to a new key proves possession of the old one, and in the same
//! step the server retires the old device: no challenge, no token, no
//! licence copies, its sessions revoked, and it never enrols again. Each way
//! a re-enrolment could be forged or misused is refused and leaves the old
//! device working.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use zhangban_core::credential::jose::b64e;
use zhangban_core::credential::{
    HolderSigner, P256KeyPair, SoftwareHolderKey, reenrolment_message,
};
use zhangban_tests::server::*;

fn p256() -> SoftwareHolderKey {
    SoftwareHolderKey::P256(P256KeyPair::generate(&mut rand::rngs::OsRng))
}

/// `POST /v1/devices/enrol` of `new` with `replaces` = (`old_id`, `sig`).
async fn reenrol_raw(
    s: &TestServer,
    code: &str,
    new: &dyn HolderSigner,
    old_id: &str,
    sig: &str,
) -> Response {
    s.req(Method::POST, "/v1/devices/enrol")
        .json(&json!({
            "activation_code": code,
            "device_jwk": new.holder_key().to_jwk(),
            "replaces": {"device_id": old_id, "signature": sig},
        }))
        .send()
        .await
        .unwrap()
}

/// The proper signature: the old key over (old id, new id).
fn proof(old: &dyn HolderSigner, new: &dyn HolderSigner) -> String {
    let msg = reenrolment_message(
        &old.holder_key().thumbprint(),
        &new.holder_key().thumbprint(),
    );
    b64e(old.sign_raw(msg.as_bytes()).unwrap())
}

async fn challenge_raw(s: &TestServer, device_id: &str) -> Response {
    s.req(Method::POST, "/v1/auth/challenge")
        .json(&json!({"device_id": device_id}))
        .send()
        .await
        .unwrap()
}

/// The old device still gets a token and its wallet (nothing was retired).
async fn still_works(s: &TestServer, old: &Device) {
    let token = s.login(&old.key).await;
    let resp = s
        .req(Method::GET, "/v1/wallet")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reenrolment_retires_the_old_device_its_sessions_and_its_copies() {
    let s = TestServer::start().await;
    // Two uses: the first device and the re-enrolment.
    let r = s.register_with(2, 30).await;
    let old = s.device(&r).await;
    let (lid, _) = s.grant(&r.id, 0).await;
    // The old token works (and now sits in the server's session cache).
    assert_eq!(s.wallet(&old).await.len(), 1);
    let (pending_cid, pending_nonce) = s.challenge(&old.id).await;

    let new_key = p256();
    let resp = reenrol_raw(&s, &r.code, &new_key, &old.id, &proof(&old.key, &new_key)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.unwrap();
    let new_id = new_key.holder_key().thumbprint();
    assert_eq!(v["device_id"], new_id.as_str());
    assert_eq!(v["resident_id"], r.id.as_str());

    // The old session is revoked at once (cache included).
    let resp = s
        .as_dev(&old, Method::GET, "/v1/wallet")
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
    // No challenge for the old device: a typed 403.
    expect_error(
        challenge_raw(&s, &old.id).await,
        StatusCode::FORBIDDEN,
        "device_retired",
    )
    .await;
    // A challenge issued before the retirement buys no token either.
    let resp = s
        .token_raw(&old.id, &pending_cid, &pending_nonce, &old.key)
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // The old key never enrols again, even with a new code of its resident.
    let resp = s
        .op(Method::POST, "/v1/operator/residents")
        .json(&json!({"id": r.id, "name": "张三", "uses": 3, "valid_days": 30}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let v: Value = resp.json().await.unwrap();
    let fresh_code = v["activation_code"].as_str().unwrap().to_owned();
    expect_error(
        s.enrol_raw(&fresh_code, &old.key).await,
        StatusCode::FORBIDDEN,
        "device_retired",
    )
    .await;

    // The new device logs in and holds a copy bound to its key; a licence
    // granted later has no copy for the old device.
    let token = s.login(&new_key).await;
    let new_dev = Device {
        id: new_id.clone(),
        resident_id: r.id.clone(),
        key: new_key,
        token,
    };
    let copy = s.copy_for(&new_dev, &lid).await;
    assert!(!copy.is_empty());
    let (later, copies) = s.grant(&r.id, 1).await;
    assert_eq!(
        copies.len(),
        1,
        "one copy, for the active device: {copies:?}"
    );
    let wallet = s.wallet(&new_dev).await;
    assert!(
        wallet
            .iter()
            .filter(|e| e["licence_id"] == later.as_str())
            .all(|e| e["device_id"] == new_id.as_str()),
        "{wallet:?}"
    );

    // The same re-enrolment again (its answer lost) is answered alike, with
    // the code's uses spent: it consumed none the first time it repeated.
    let again = reenrol_raw(
        &s,
        &r.code,
        &new_dev.key,
        &old.id,
        &proof(&old.key, &new_dev.key),
    )
    .await;
    assert_eq!(again.status(), StatusCode::OK);
    let v: Value = again.json().await.unwrap();
    assert_eq!(v["device_id"], new_id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reenrolment_is_refused_unless_the_old_key_signed_it_for_this_new_key() {
    let s = TestServer::start().await;
    let r = s.register_with(10, 30).await;
    let old = s.device(&r).await;
    let new_key = p256();
    let new_id = new_key.holder_key().thumbprint();

    // Signed by the new key, not the old one.
    let by_new = {
        let msg = reenrolment_message(&old.id, &new_id);
        b64e(new_key.sign_raw(msg.as_bytes()).unwrap())
    };
    // Signed by the old key, but for another new device.
    let other = p256();
    let for_other = proof(&old.key, &other);
    // Signed by the old key over the auth challenge's form, not this one.
    let wrong_message = b64e(
        old.key
            .sign_raw(format!("zhangban-auth-v1.{old_id}.{new_id}", old_id = old.id).as_bytes())
            .unwrap(),
    );
    // DER where raw r‖s is required; truncated; not base64url.
    let der = {
        use p256::ecdsa::signature::Signer as _;
        let SoftwareHolderKey::P256(kp) = &old.key else {
            unreachable!()
        };
        let msg = reenrolment_message(&old.id, &new_id);
        let sig: p256::ecdsa::Signature = kp.signing_key().sign(msg.as_bytes());
        b64e(sig.to_der().as_bytes())
    };
    let good = proof(&old.key, &new_key);
    let truncated = good[..good.len() - 4].to_owned();
    for (what, sig) in [
        ("signed by the new key", by_new),
        ("signed for another new device", for_other),
        ("another message", wrong_message),
        ("DER", der),
        ("truncated", truncated),
        ("not base64url", "%%%".to_owned()),
        ("empty", String::new()),
    ] {
        let resp = reenrol_raw(&s, &r.code, &new_key, &old.id, &sig).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{what}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["code"], "reenrolment_refused", "{what}: {v}");
    }

    // An unknown old device; another resident's device (properly signed by
    // it); the device replacing itself.
    let r2 = s.register().await;
    let theirs = s.device(&r2).await;
    for (what, old_id, sig) in [
        ("unknown", "no-such-device".to_owned(), good.clone()),
        (
            "another resident's",
            theirs.id.clone(),
            proof(&theirs.key, &new_key),
        ),
    ] {
        let resp = reenrol_raw(&s, &r.code, &new_key, &old_id, &sig).await;
        expect_error(resp, StatusCode::FORBIDDEN, "reenrolment_refused").await;
        let _ = what;
    }
    let resp = reenrol_raw(&s, &r.code, &old.key, &old.id, &proof(&old.key, &old.key)).await;
    expect_error(resp, StatusCode::FORBIDDEN, "reenrolment_refused").await;

    // A good proof with a wrong activation code: the code's one answer.
    let resp = reenrol_raw(&s, "ZZZZ-ZZZZ-ZZZZ-ZZZZ", &new_key, &old.id, &good).await;
    expect_error(resp, StatusCode::FORBIDDEN, "forbidden").await;

    // None of that retired anything or enrolled the new key.
    still_works(&s, &old).await;
    still_works(&s, &theirs).await;
    assert_eq!(
        challenge_raw(&s, &new_id).await.status(),
        StatusCode::UNAUTHORIZED,
        "the new key was not enrolled"
    );

    // Once retired in favour of one new key, the old key (say, copied from
    // a backup) cannot re-enrol to another: the replacement stands.
    let resp = reenrol_raw(&s, &r.code, &new_key, &old.id, &good).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let thief = p256();
    let resp = reenrol_raw(&s, &r.code, &thief, &old.id, &proof(&old.key, &thief)).await;
    expect_error(resp, StatusCode::FORBIDDEN, "reenrolment_refused").await;
    assert_eq!(
        challenge_raw(&s, &thief.holder_key().thumbprint())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    s.login(&new_key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_ed25519_device_reenrols_to_p256_and_is_retired() {
    let s = TestServer::start().await;
    let r = s.register().await;
    let old = s.device_ed25519(&r).await;
    let new_key = p256();
    let resp = reenrol_raw(&s, &r.code, &new_key, &old.id, &proof(&old.key, &new_key)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    expect_error(
        challenge_raw(&s, &old.id).await,
        StatusCode::FORBIDDEN,
        "device_retired",
    )
    .await;
    s.login(&new_key).await;
}
