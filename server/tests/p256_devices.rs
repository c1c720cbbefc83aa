//! Holder keys are P-256 / ES256 (issue 11): the server enrols P-256
//! devices (strictly checked keys), gives them tokens for raw ES256
//! signatures only, binds their licences with an EC `cnf`, and keeps
//! accepting legacy Ed25519 devices, each with its own algorithm.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use p256::ecdsa::signature::Signer as _;
use reqwest::{Method, StatusCode};
use serde_json::json;
use zhangban_core::credential::jose::{b64d, b64e};
use zhangban_core::credential::rejection::Part;
use zhangban_core::credential::{HeldLicence, HolderKey, HolderSigner, KeyPair, P256KeyPair};
use zhangban_server::api;
use zhangban_tests::server::*;

async fn token_with_sig(s: &TestServer, device_id: &str, sig: &[u8]) -> reqwest::Response {
    let (cid, _) = s.challenge(device_id).await;
    s.req(Method::POST, "/v1/auth/token")
        .json(&json!({"device_id": device_id, "challenge_id": cid, "signature": b64e(sig)}))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p256_devices_enrol_log_in_and_get_ec_bound_licences() {
    let s = TestServer::start().await;
    let (r, dev) = s.resident_with_device().await;
    assert_eq!(dev.key.holder_key().alg(), "ES256");
    assert_eq!(dev.id, dev.key.holder_key().thumbprint());

    // The licence copy carries the device's EC key as `cnf`.
    let (lid, _) = s.grant(&r.id, 0).await;
    let copy = s.copy_for(&dev, &lid).await;
    let held = HeldLicence::parse(&copy).unwrap();
    assert_eq!(held.holder_key(), Some(dev.key.holder_key()));
    let cnf = &held.visible()["cnf"]["jwk"];
    assert_eq!(
        (cnf["kty"].as_str(), cnf["crv"].as_str()),
        (Some("EC"), Some("P-256"))
    );

    // An ES256 key-bound presentation is accepted with a submission.
    let resp = s
        .submit_with_licence(&dev, business_guide(), "business_licence", &lid)
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "{}",
        resp.text().await.unwrap()
    );

    // A legacy Ed25519 device of the same resident keeps working.
    let old = s.device_ed25519(&r).await;
    assert_eq!(old.key.holder_key().alg(), "EdDSA");
    let copy = s.copy_for(&old, &lid).await;
    assert_eq!(
        HeldLicence::parse(&copy).unwrap().holder_key(),
        Some(old.key.holder_key())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_p256_device_gets_a_token_only_for_a_raw_es256_signature_by_its_key() {
    let s = TestServer::start().await;
    let r = s.register().await;
    let key = P256KeyPair::generate(&mut rand::rngs::OsRng);
    let resp = s.enrol_raw(&r.code, &key).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let id = key.holder_key().thumbprint();

    // DER (what Keystore/JCA return before conversion) is refused.
    let (cid, nonce) = s.challenge(&id).await;
    let msg = api::auth::challenge_message(&cid, &nonce);
    let der: p256::ecdsa::Signature = key.signing_key().sign(msg.as_bytes());
    let resp = s
        .req(Method::POST, "/v1/auth/token")
        .json(&json!({"device_id": id, "challenge_id": cid,
            "signature": b64e(der.to_der().as_bytes())}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // An Ed25519 signature (64 bytes too) is not an ES256 signature.
    let ed = KeyPair::generate(&mut rand::rngs::OsRng);
    let (cid, nonce) = s.challenge(&id).await;
    let resp = s.token_raw(&id, &cid, &nonce, &ed).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // Another P-256 key.
    let other = P256KeyPair::generate(&mut rand::rngs::OsRng);
    let (cid, nonce) = s.challenge(&id).await;
    let resp = s.token_raw(&id, &cid, &nonce, &other).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // Garbage of the right length.
    let resp = token_with_sig(&s, &id, &[7u8; 64]).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // The right key, raw r‖s: a token.
    let (cid, nonce) = s.challenge(&id).await;
    let resp = s.token_raw(&id, &cid, &nonce, &key).await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_refuses_bad_p256_keys() {
    let s = TestServer::start().await;
    let r = s.register().await;
    let good = P256KeyPair::generate(&mut rand::rngs::OsRng)
        .holder_key()
        .to_jwk();
    let mut off_curve = good.clone();
    let mut y = b64d(good["y"].as_str().unwrap(), Part::KeyBinding).unwrap();
    y[31] ^= 1;
    off_curve["y"] = json!(b64e(&y));
    let zero = b64e([0u8; 32]);
    let x = b64d(good["x"].as_str().unwrap(), Part::KeyBinding).unwrap();
    let mut short = good.clone();
    short["x"] = json!(b64e(&x[1..]));
    let mut private = good.clone();
    private["d"] = json!(zero);
    for jwk in [
        off_curve,
        json!({"kty": "EC", "crv": "P-256", "x": zero, "y": zero}),
        short,
        json!({"kty": "EC", "crv": "P-384", "x": good["x"], "y": good["y"]}),
        json!({"kty": "EC", "crv": "secp256k1", "x": good["x"], "y": good["y"]}),
        private,
    ] {
        let resp = s
            .req(Method::POST, "/v1/devices/enrol")
            .json(&json!({"activation_code": r.code, "device_jwk": jwk}))
            .send()
            .await
            .unwrap();
        expect_error(resp, StatusCode::BAD_REQUEST, "invalid_device_key").await;
    }
    // The code was not used up by the refusals.
    let key = P256KeyPair::generate(&mut rand::rngs::OsRng);
    assert_eq!(s.enrol_raw(&r.code, &key).await.status(), StatusCode::OK);
    assert!(HolderKey::from_jwk(&key.holder_key().to_jwk()).is_ok());
}
