//! The negative suite for P-256 / ES256 holder keys (issue 11): the verifier
//! takes the key binding algorithm from the holder key's type (`cnf.jwk`
//! `kty`/`crv`), never from a header; the key is read strictly; signatures
//! are raw `r‖s`. Each test asserts the exact rejection.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ed25519_dalek::Signer as _;
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use serde_json::{Map, Value, json};
use zhangban_core::credential::demo::{DemoWorld, MARKET_REGULATION};
use zhangban_core::credential::jose::{b64d, b64e, sha256_b64};
use zhangban_core::credential::rejection::Part;
use zhangban_core::credential::sd_jwt::Disclosure;
use zhangban_core::credential::*;
use zhangban_core::inspection::Inspector;
use zhangban_core::inspection::compact;

const NOW: i64 = 1_795_000_000;
const NONCE: &str = "nonce-from-inspector";
const SEED: u64 = 1111;

/// The order of the P-256 group, big-endian.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

struct Fx {
    w: DemoWorld,
    rng: StdRng,
    /// Issued to the P-256 holder key.
    issued_p256: String,
    /// Issued to the legacy Ed25519 holder key.
    issued_ed: String,
}

fn fx() -> Fx {
    let mut rng = StdRng::seed_from_u64(SEED);
    let w = DemoWorld::new(&mut rng, NOW);
    let issued_p256 = w.issue_typical_es256(7, &mut rng).unwrap();
    let issued_ed = w.issue_typical(8, &mut rng).unwrap();
    Fx {
        w,
        rng,
        issued_p256,
        issued_ed,
    }
}

fn policy() -> VerifyPolicy {
    VerifyPolicy::required("inspection", NoncePolicy::Exact(NONCE.into()))
}

/// A signer of JWS signing inputs with any key type, ignoring the header.
enum Raw<'a> {
    Ed(&'a KeyPair),
    P256(&'a P256KeyPair),
    /// ES256 signature in DER (what JCA and Keystore return before conversion).
    P256Der(&'a P256KeyPair),
    /// ES256 signature with `s` replaced by `n - s` (high-S twin).
    P256HighS(&'a P256KeyPair),
}

impl Raw<'_> {
    fn sign(&self, input: &[u8]) -> Vec<u8> {
        match self {
            Raw::Ed(k) => k.signing_key().sign(input).to_bytes().to_vec(),
            Raw::P256(k) => k.sign_raw(input).unwrap(),
            Raw::P256Der(k) => {
                let sig: p256::ecdsa::Signature = k.signing_key().sign(input);
                sig.to_der().as_bytes().to_vec()
            }
            Raw::P256HighS(k) => {
                let low = k.sign_raw(input).unwrap();
                let mut out = low[..32].to_vec();
                out.extend(sub_from_n(&low[32..]));
                out
            }
        }
    }
}

/// `n - s` for a 32-byte big-endian `s`.
fn sub_from_n(s: &[u8]) -> Vec<u8> {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(P256_N[i]) - i16::from(s[i]) - borrow;
        borrow = 0;
        if d < 0 {
            d += 256;
            borrow = 1;
        }
        out[i] = d as u8;
    }
    out.to_vec()
}

fn jws(header: &Value, payload: &Value, key: &Raw<'_>) -> String {
    let input = format!("{}.{}", b64e(header.to_string()), b64e(payload.to_string()));
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", b64e(sig))
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn decode_jwt(jwt: &str) -> (Map<String, Value>, Map<String, Value>) {
    let mut it = jwt.split('.');
    let h = serde_json::from_slice(&b64d(it.next().unwrap(), Part::IssuerJwt).unwrap()).unwrap();
    let p = serde_json::from_slice(&b64d(it.next().unwrap(), Part::IssuerJwt).unwrap()).unwrap();
    (h, p)
}

impl Fx {
    /// The issuer JWT and the typical disclosures, ending in `~`.
    fn sd_jwt(&self, issued: &str) -> String {
        let mut parts = issued.trim_end_matches('~').split('~');
        let mut out = format!("{}~", parts.next().unwrap());
        for d in parts {
            let name = Disclosure::parse(d).unwrap().name;
            if DemoWorld::TYPICAL_DISCLOSED.contains(&name.as_str()) {
                out.push_str(d);
                out.push('~');
            }
        }
        out
    }
    /// Appends a KB-JWT with header `alg`, signed by `key`, after `edit`.
    fn with_kb(
        &self,
        sd_jwt: &str,
        alg: &str,
        key: &Raw<'_>,
        edit: impl FnOnce(&mut Map<String, Value>),
    ) -> String {
        let mut p = obj(
            json!({"iat": NOW, "aud": "inspection", "nonce": NONCE, "sd_hash": sha256_b64(sd_jwt)}),
        );
        edit(&mut p);
        format!(
            "{sd_jwt}{}",
            jws(
                &json!({"alg": alg, "typ": "kb+jwt"}),
                &Value::Object(p),
                key
            )
        )
    }
    fn p256_presentation(&self, alg: &str, key: &Raw<'_>) -> String {
        self.with_kb(&self.sd_jwt(&self.issued_p256), alg, key, |_| {})
    }
    fn verify(&self, text: &str) -> Result<VerifiedLicence, Rejection> {
        verify_presentation(text, &self.w.bundle, &self.w.status_cache, &policy(), NOW)
    }
    fn rejects(&self, text: &str, expected: Rejection) {
        match self.verify(text) {
            Ok(_) => panic!("accepted, expected {expected:?} (seed {SEED})"),
            Err(got) => assert_eq!(got, expected, "seed {SEED}"),
        }
    }
    /// The P-256-bound licence re-signed by its issuer with `cnf.jwk` replaced.
    fn with_cnf(&self, jwk: Value) -> String {
        let (jwt, rest) = self.issued_p256.split_once('~').unwrap();
        let (h, mut p) = decode_jwt(jwt);
        p.insert("cnf".into(), json!({ "jwk": jwk }));
        let jwt = jws(
            &Value::Object(h),
            &Value::Object(p),
            &Raw::Ed(self.w.issuers[0].key()),
        );
        let issued = format!("{jwt}~{rest}");
        self.with_kb(
            &self.sd_jwt(&issued),
            "ES256",
            &Raw::P256(&self.w.holder_p256),
            |_| {},
        )
    }
    fn p256_jwk(&self) -> Value {
        self.w.holder_p256.holder_key().to_jwk()
    }
}

#[test]
fn e00_es256_bound_presentation_verifies_and_names_its_key() {
    let f = fx();
    let p = f.p256_presentation("ES256", &Raw::P256(&f.w.holder_p256));
    let v = f.verify(&p).unwrap();
    assert_eq!(v.holder, Some(f.w.holder_p256.holder_key()));
    // The holder's own code path makes the same kind of presentation.
    let made =
        f.w.present_typical_with(&f.issued_p256, NONCE, NOW, &f.w.holder_p256);
    let made = made.unwrap();
    let kb = made.rsplit('~').next().unwrap();
    assert_eq!(decode_jwt(kb).0["alg"], "ES256");
    f.verify(&made).unwrap();
    // And the legacy Ed25519 holder keeps working.
    let legacy = f.w.present_typical(&f.issued_ed, NONCE, NOW).unwrap();
    assert_eq!(
        f.verify(&legacy).unwrap().holder,
        Some(f.w.holder.holder_key())
    );
}

#[test]
fn e01_es256_header_on_an_ed25519_bound_licence() {
    let f = fx();
    let sd = f.sd_jwt(&f.issued_ed);
    // Whatever signs it: the key type says EdDSA.
    for key in [Raw::P256(&f.w.holder_p256), Raw::Ed(&f.w.holder)] {
        f.rejects(
            &f.with_kb(&sd, "ES256", &key, |_| {}),
            Rejection::AlgorithmNotAllowed(Part::KeyBinding),
        );
    }
    // The Ed25519 KB itself is fine.
    f.verify(&f.with_kb(&sd, "EdDSA", &Raw::Ed(&f.w.holder), |_| {}))
        .unwrap();
}

#[test]
fn e02_eddsa_header_on_a_p256_bound_licence() {
    let f = fx();
    for key in [Raw::Ed(&f.w.holder), Raw::P256(&f.w.holder_p256)] {
        f.rejects(
            &f.p256_presentation("EdDSA", &key),
            Rejection::AlgorithmNotAllowed(Part::KeyBinding),
        );
    }
}

#[test]
fn e03_other_algorithm_names_in_the_kb_header() {
    let f = fx();
    for alg in [
        "none", "es256", "ES384", "ES256K", "HS256", "ES256 ", "Ed25519", "",
    ] {
        f.rejects(
            &f.p256_presentation(alg, &Raw::P256(&f.w.holder_p256)),
            Rejection::AlgorithmNotAllowed(Part::KeyBinding),
        );
    }
}

#[test]
fn e04_es256_in_the_issuer_status_and_bundle_headers() {
    let mut f = fx();
    let rogue = P256KeyPair::generate(&mut f.rng);
    // Issuer JWT: ES256 is never an issuer algorithm, even with the issuer's kid.
    let (jwt, rest) = f.issued_p256.split_once('~').unwrap();
    let (mut h, p) = decode_jwt(jwt);
    h.insert("alg".into(), json!("ES256"));
    let forged = jws(&Value::Object(h), &Value::Object(p), &Raw::P256(&rogue));
    let issued = format!("{forged}~{rest}");
    let pres = f.with_kb(
        &f.sd_jwt(&issued),
        "ES256",
        &Raw::P256(&f.w.holder_p256),
        |_| {},
    );
    f.rejects(&pres, Rejection::AlgorithmNotAllowed(Part::IssuerJwt));

    // Status list token.
    let token = f.w.status_token(0, NOW).unwrap();
    let (mut h, p) = decode_jwt(&token);
    h.insert("alg".into(), json!("ES256"));
    let forged = jws(&Value::Object(h), &Value::Object(p), &Raw::P256(&rogue));
    assert_eq!(
        VerifiedStatusList::verify(&forged, &f.w.bundle).unwrap_err(),
        Rejection::AlgorithmNotAllowed(Part::StatusList)
    );

    // Trust bundle.
    let (mut h, p) = decode_jwt(f.w.bundle.jws());
    h.insert("alg".into(), json!("ES256"));
    let forged = jws(&Value::Object(h), &Value::Object(p), &Raw::P256(&rogue));
    assert_eq!(
        TrustBundle::verify(&forged, &[f.w.root.public()], None).unwrap_err(),
        Rejection::AlgorithmNotAllowed(Part::TrustBundle)
    );
    // A P-256 key is not a trust anchor or an issuer key either.
    let mut content = f.w.bundle_content.clone();
    content.version += 1;
    content.issuers[0].keys[0].jwk = rogue.holder_key().to_jwk();
    let jws_text = content.sign(&f.w.root).unwrap();
    assert_eq!(
        TrustBundle::verify(&jws_text, &[f.w.root.public()], None).unwrap_err(),
        Rejection::BundleMalformed
    );
}

#[test]
fn e05_cnf_point_not_on_the_curve() {
    let f = fx();
    let mut jwk = f.p256_jwk();
    let mut y = b64d(jwk["y"].as_str().unwrap(), Part::KeyBinding).unwrap();
    y[31] ^= 1;
    jwk["y"] = json!(b64e(&y));
    assert_eq!(HolderKey::from_jwk(&jwk), Err(KeyError::BadPoint));
    f.rejects(&f.with_cnf(jwk), Rejection::InvalidClaim("cnf"));
}

#[test]
fn e06_cnf_identity_point() {
    let f = fx();
    // The identity has no affine coordinates; (0, 0) is what a careless
    // encoder writes for it, and it is not on the curve.
    let zero = b64e([0u8; 32]);
    let jwk = json!({"kty": "EC", "crv": "P-256", "x": zero, "y": zero});
    assert_eq!(HolderKey::from_jwk(&jwk), Err(KeyError::BadPoint));
    f.rejects(&f.with_cnf(jwk), Rejection::InvalidClaim("cnf"));
    // Nor can a coordinate be the field modulus p (≡ 0) or above.
    let modulus = b64e(hex_p());
    let jwk = json!({"kty": "EC", "crv": "P-256", "x": modulus, "y": f.p256_jwk()["y"]});
    assert_eq!(HolderKey::from_jwk(&jwk), Err(KeyError::BadPoint));
}

/// The P-256 field modulus, big-endian.
fn hex_p() -> [u8; 32] {
    let mut p = [0xffu8; 32];
    p[4..12].copy_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]);
    p[12..20].copy_from_slice(&[0; 8]);
    p
}

#[test]
fn e07_cnf_coordinates_of_the_wrong_length_or_type() {
    let f = fx();
    let good = f.p256_jwk();
    let x = b64d(good["x"].as_str().unwrap(), Part::KeyBinding).unwrap();
    let mut cases = Vec::new();
    // 31 bytes (a leading zero dropped), 33 bytes (a sign byte added), missing y.
    let mut j = good.clone();
    j["x"] = json!(b64e(&x[1..]));
    cases.push((j, KeyError::BadMaterial));
    let mut j = good.clone();
    let mut long = vec![0u8];
    long.extend(&x);
    j["x"] = json!(b64e(&long));
    cases.push((j, KeyError::BadMaterial));
    let mut j = good.clone();
    j.as_object_mut().unwrap().remove("y");
    cases.push((j, KeyError::BadMaterial));
    let mut j = good.clone();
    j["y"] = json!(42);
    cases.push((j, KeyError::BadMaterial));
    // Padded base64.
    let mut j = good.clone();
    j["x"] = json!(format!("{}=", good["x"].as_str().unwrap()));
    cases.push((j, KeyError::BadMaterial));
    // Curve and type names that are not exactly EC / P-256.
    for (kty, crv) in [
        ("EC", "P-384"),
        ("EC", "secp256k1"),
        ("EC", "p-256"),
        ("OKP", "P-256"),
        ("EC", "Ed25519"),
    ] {
        let mut j = good.clone();
        j["kty"] = json!(kty);
        j["crv"] = json!(crv);
        cases.push((j, KeyError::UnsupportedKeyType));
    }
    for (jwk, err) in cases {
        assert_eq!(HolderKey::from_jwk(&jwk), Err(err.clone()), "{jwk}");
        f.rejects(&f.with_cnf(jwk), Rejection::InvalidClaim("cnf"));
    }
}

#[test]
fn e08_der_signature_where_raw_is_required() {
    let f = fx();
    f.rejects(
        &f.p256_presentation("ES256", &Raw::P256Der(&f.w.holder_p256)),
        // Intact bytes of the wrong length: a forgery, not an unreadable scan.
        Rejection::SignatureLength(Part::KeyBinding),
    );
    // A 64-byte signature that is not r‖s of this message.
    let mut p = f.p256_presentation("ES256", &Raw::P256(&f.w.holder_p256));
    let dot = p.rfind('.').unwrap();
    let mut sig = b64d(&p[dot + 1..], Part::KeyBinding).unwrap();
    sig.swap(0, 32);
    p.replace_range(dot + 1.., &b64e(sig));
    f.rejects(&p, Rejection::KeyBindingSignature);
}

#[test]
fn e09_high_s_is_normalised_and_a_replay_is_still_caught() {
    let f = fx();
    let low = f.p256_presentation("ES256", &Raw::P256(&f.w.holder_p256));
    let high = f.p256_presentation("ES256", &Raw::P256HighS(&f.w.holder_p256));
    assert_ne!(low, high, "the high-S twin differs on the wire");
    let a = f.verify(&low).unwrap().key_binding.unwrap();
    let b = f.verify(&high).unwrap().key_binding.unwrap();
    assert_eq!(a, b, "normalised: the same key binding");
    // Malleating the signature buys nothing: the inspector's replay cache
    // is keyed on the nonce, so the twin of a scanned frame is a replay.
    let inspector = Inspector::new(
        Some(f.w.bundle.clone()),
        f.w.status_cache.clone(),
        Some(NOW),
    );
    let first = inspector.verify(&compact::encode(&low).unwrap(), Some(NONCE), NOW);
    assert!(first.valid, "{first:?}");
    let twin = inspector.verify(&compact::encode(&high).unwrap(), Some(NONCE), NOW);
    assert!(!twin.valid);
    assert_eq!(twin.code, "replayed");
    // s = 0 and s = n are not signatures at all.
    for s in [[0u8; 32], P256_N] {
        let mut p = low.clone();
        let dot = p.rfind('.').unwrap();
        let mut sig = b64d(&p[dot + 1..], Part::KeyBinding).unwrap();
        sig[32..].copy_from_slice(&s);
        p.replace_range(dot + 1.., &b64e(sig));
        f.rejects(&p, Rejection::KeyBindingSignature);
    }
}

#[test]
fn e10_right_key_over_the_wrong_sd_hash() {
    let mut f = fx();
    let sd = f.sd_jwt(&f.issued_p256);
    // The holder's own key, but signing the hash of another disclosure set.
    let other = f.w.issue_typical_es256(9, &mut f.rng).unwrap();
    let wrong_hash = sha256_b64(&f.sd_jwt(&other));
    f.rejects(
        &f.with_kb(&sd, "ES256", &Raw::P256(&f.w.holder_p256), |p| {
            p.insert("sd_hash".into(), json!(wrong_hash));
        }),
        Rejection::KeyBindingSdHash,
    );
    // Another P-256 key over the right hash.
    let thief = P256KeyPair::generate(&mut f.rng);
    f.rejects(
        &f.with_kb(&sd, "ES256", &Raw::P256(&thief), |_| {}),
        Rejection::KeyBindingSignature,
    );
    let _ = MARKET_REGULATION;
}

#[test]
fn e11_holder_refuses_to_sign_for_another_key() {
    let mut f = fx();
    let held = HeldLicence::parse(&f.issued_p256).unwrap();
    let thief = P256KeyPair::generate(&mut f.rng);
    let kb = KeyBindingRequest {
        key: &thief,
        audience: "inspection",
        nonce: NONCE,
        iat: NOW,
    };
    assert_eq!(
        held.present(&["licence_name"], Some(kb)).unwrap_err(),
        PresentError::NotHolderKey
    );
    // A keystore that returns DER, or signs with another key, is caught
    // before the presentation leaves the phone.
    let key = f.w.holder_p256.holder_key();
    let claims = KeyBindingClaims {
        key: &key,
        audience: "inspection",
        nonce: NONCE,
        iat: NOW,
    };
    let pending = held.prepare(&["licence_name"], claims).unwrap();
    let der = Raw::P256Der(&f.w.holder_p256).sign(pending.signing_input());
    assert!(matches!(
        pending.clone().finish(&der),
        Err(PresentError::Sign(SignError::MalformedSignature))
    ));
    let other = thief.sign_raw(pending.signing_input()).unwrap();
    assert!(matches!(
        pending.clone().finish(&other),
        Err(PresentError::Sign(SignError::MalformedSignature))
    ));
    let high = Raw::P256HighS(&f.w.holder_p256).sign(pending.signing_input());
    let done = pending.finish(&high).unwrap();
    let sig = b64d(done.rsplit('.').next().unwrap(), Part::KeyBinding).unwrap();
    assert!(sig[32] < 0x80, "emitted low-S (s ≤ n/2)");
}

/// The typical licence bound to a P-256 key still fits a QR code of version
/// ≤ 25 at ECC level M (the EC `cnf` and the ES256 KB-JWT are the growth).
#[test]
fn e12_typical_es256_presentation_fits_qr_version_25() {
    let f = fx();
    let p =
        f.w.present_typical_with(&f.issued_p256, NONCE, NOW, &f.w.holder_p256)
            .unwrap();
    let frame = compact::encode(&p).unwrap();
    assert_eq!(compact::decode(&frame).unwrap(), p, "lossless");
    let qr = zhangban_core::inspection::qr::Qr::new(&frame).unwrap();
    println!(
        "typical ES256-bound presentation: text {} B, frame {} B, QR version {} at ECC M",
        p.len(),
        frame.len(),
        qr.version()
    );
    assert!(qr.version() <= 25, "QR version {}", qr.version());
    let legacy = f.w.present_typical(&f.issued_ed, NONCE, NOW).unwrap();
    let legacy_frame = compact::encode(&legacy).unwrap();
    println!(
        "typical Ed25519-bound presentation: frame {} B",
        legacy_frame.len()
    );
}
