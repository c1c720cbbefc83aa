//! Regression tests for the outside review of issue 13: each finding and
//! each reclassified verdict, and the policies decided for the questions it
//! left open (ADRs 0100–0103). Every test here failed on the code before the
//! fix it names.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ed25519_dalek::Signer as _;
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use serde_json::{Map, Value, json};
use zhangban_core::credential::claims::ClaimsError;
use zhangban_core::credential::demo::{
    self, CIVIL_AFFAIRS, DAY, DemoWorld, MARKET_REGULATION, PUBLIC_SECURITY,
};
use zhangban_core::credential::jose::{b64d, b64e, sha256_b64};
use zhangban_core::credential::rejection::Part;
use zhangban_core::credential::sd_jwt::Disclosure;
use zhangban_core::credential::*;

const NOW: i64 = 1_795_000_000;
const NONCE: &str = "nonce-from-inspector";
const SEED: u64 = 13;

struct Fx {
    w: DemoWorld,
    rng: StdRng,
    issued: String,
}

fn fx() -> Fx {
    let mut rng = StdRng::seed_from_u64(SEED);
    let w = DemoWorld::new(&mut rng, NOW);
    let issued = w.issue_typical(7, &mut rng).unwrap();
    Fx { w, rng, issued }
}

fn policy() -> VerifyPolicy {
    VerifyPolicy::required("inspection", NoncePolicy::Exact(NONCE.into()))
}

fn decode(seg: &str) -> Map<String, Value> {
    serde_json::from_slice(&b64d(seg, Part::IssuerJwt).unwrap()).unwrap()
}

/// Signs exactly `header`.`payload` (raw bytes, base64url) with Ed25519.
fn sign_bytes(header: &[u8], payload: &[u8], key: &KeyPair) -> String {
    let input = format!("{}.{}", b64e(header), b64e(payload));
    let sig = key.signing_key().sign(input.as_bytes());
    format!("{input}.{}", b64e(sig.to_bytes()))
}

fn sign_raw(header: &Value, payload: &Value, key: &KeyPair) -> String {
    sign_bytes(
        header.to_string().as_bytes(),
        payload.to_string().as_bytes(),
        key,
    )
}

impl Fx {
    /// A presentation of `issued` disclosing `fields`, with a KB-JWT.
    fn present_fields(&self, issued: &str, fields: &[&str]) -> String {
        let mut parts = issued.trim_end_matches('~').split('~');
        let mut out = format!("{}~", parts.next().unwrap());
        for d in parts {
            let name = Disclosure::parse(d).unwrap().name;
            if fields.contains(&name.as_str()) {
                out.push_str(d);
                out.push('~');
            }
        }
        self.with_kb(&out)
    }
    fn present(&self, issued: &str) -> String {
        self.present_fields(issued, &DemoWorld::TYPICAL_DISCLOSED)
    }
    fn with_kb(&self, sd_jwt: &str) -> String {
        let h = json!({"alg": "EdDSA", "typ": "kb+jwt"});
        let p =
            json!({"iat": NOW, "aud": "inspection", "nonce": NONCE, "sd_hash": sha256_b64(sd_jwt)});
        format!("{sd_jwt}{}", sign_raw(&h, &p, &self.w.holder))
    }
    fn verify_with_cache(
        &self,
        text: &str,
        cache: &StatusListCache,
    ) -> Result<VerifiedLicence, Rejection> {
        verify_presentation(text, &self.w.bundle, cache, &policy(), NOW)
    }
    fn verify(&self, text: &str) -> Result<VerifiedLicence, Rejection> {
        self.verify_with_cache(text, &self.w.status_cache)
    }
    fn rejects(&self, text: &str, expected: Rejection) {
        match self.verify(text) {
            Ok(_) => panic!("accepted, expected {expected:?} (seed {SEED})"),
            Err(got) => assert_eq!(got, expected, "seed {SEED}"),
        }
    }

    /// The typical licence with the disclosure of `name` replaced by one of
    /// `value` (or added), its digest swapped in `_sd`, re-signed by the
    /// market-regulation key: what a trusted issuer (or its stolen key) can sign.
    fn with_claim(&mut self, name: &str, value: Value) -> String {
        self.with_claim_signed(name, value, |_, _| {})
    }

    fn with_claim_signed(
        &mut self,
        name: &str,
        value: Value,
        edit: impl FnOnce(&mut Map<String, Value>, &mut Map<String, Value>),
    ) -> String {
        let mut parts = self.issued.trim_end_matches('~').split('~');
        let jwt = parts.next().unwrap();
        let mut segs = jwt.split('.');
        let mut h = decode(segs.next().unwrap());
        let mut p = decode(segs.next().unwrap());
        let mut disclosures: Vec<String> = parts.map(str::to_owned).collect();
        let mut sd: Vec<Value> = p["_sd"].as_array().unwrap().clone();
        if let Some(i) = disclosures
            .iter()
            .position(|d| Disclosure::parse(d).unwrap().name == name)
        {
            let old = Disclosure::parse(&disclosures[i]).unwrap().digest();
            sd.retain(|d| d.as_str() != Some(old.as_str()));
            disclosures.remove(i);
        }
        let mut salt = [0u8; 16];
        rand::RngCore::fill_bytes(&mut self.rng, &mut salt);
        let d = Disclosure::new(b64e(salt), name.to_owned(), value);
        sd.push(json!(d.digest()));
        disclosures.push(d.encoded);
        p.insert("_sd".into(), Value::Array(sd));
        edit(&mut h, &mut p);
        let jwt = sign_raw(
            &Value::Object(h),
            &Value::Object(p),
            self.w.issuers[0].key(),
        );
        format!("{jwt}~{}~", disclosures.join("~"))
    }

    /// The issuer-signed JWT of the typical presentation with its header
    /// bytes replaced by `header` (re-signed: intact, authentic bytes).
    fn with_header_bytes(&self, header: &[u8]) -> String {
        let p = self.present(&self.issued);
        let (jwt, rest) = p.split_once('~').unwrap();
        let payload = b64d(jwt.split('.').nth(1).unwrap(), Part::IssuerJwt).unwrap();
        let new = sign_bytes(header, &payload, self.w.issuers[0].key());
        format!("{new}~{rest}")
    }
}

fn request(
    w: &DemoWorld,
    vct_type: &str,
    claims: std::collections::BTreeMap<String, Value>,
) -> LicenceRequest {
    LicenceRequest {
        vct: demo::vct_for(vct_type),
        claims,
        holder: w.holder.public().into(),
        status: StatusReference {
            uri: demo::status_uri(&MARKET_REGULATION),
            idx: 1,
        },
        issuer_code: MARKET_REGULATION.code.into(),
    }
}

fn id_of(type_code: &str, issuer_code: &str) -> String {
    LicenceId::new(type_code, issuer_code, "2026000001", 1)
        .unwrap()
        .to_string()
}

// ---------------------------------------------------------------- finding 1

/// Market regulation cannot issue a licence whose identifier names the
/// public-security bureau, even without `issuer_code` among the claims.
#[test]
fn f1_issue_refuses_an_identifier_naming_another_issuer() {
    let mut f = fx();
    let mut claims = DemoWorld::typical_claims(1);
    claims.insert(
        "licence_id".into(),
        json!(id_of(MARKET_REGULATION.type_code, PUBLIC_SECURITY.code)),
    );
    assert!(!claims.contains_key("issuer_code"));
    let r = f.w.issuers[0].issue(
        &request(&f.w, MARKET_REGULATION.type_code, claims),
        NOW,
        &mut f.rng,
    );
    assert_eq!(
        r.unwrap_err(),
        IssueError::Claims(ClaimsError::IdentifierIssuer)
    );
}

#[test]
fn f1_issue_refuses_an_identifier_naming_another_licence_type() {
    let mut f = fx();
    let mut claims = DemoWorld::typical_claims(1);
    claims.insert(
        "licence_id".into(),
        json!(id_of(CIVIL_AFFAIRS.type_code, MARKET_REGULATION.code)),
    );
    assert!(!claims.contains_key("licence_type_code"));
    let r = f.w.issuers[0].issue(
        &request(&f.w, MARKET_REGULATION.type_code, claims),
        NOW,
        &mut f.rng,
    );
    assert_eq!(
        r.unwrap_err(),
        IssueError::Claims(ClaimsError::IdentifierType)
    );
}

/// Signed anyway (a key used outside `Issuer::issue`): the verifier refuses
/// the identifier when it is disclosed alone.
#[test]
fn f1_verify_refuses_an_identifier_naming_another_issuer_or_type() {
    let mut f = fx();
    for id in [
        id_of(MARKET_REGULATION.type_code, PUBLIC_SECURITY.code),
        id_of(PUBLIC_SECURITY.type_code, MARKET_REGULATION.code),
    ] {
        let forged = f.with_claim("licence_id", json!(id));
        let p = f.present_fields(&forged, &["licence_id", "holder_name"]);
        f.rejects(&p, Rejection::InvalidClaim("licence_id"));
        assert_eq!(
            Rejection::InvalidClaim("licence_id").class(),
            VerdictClass::Forged
        );
    }
    // The consistent identifier alone still verifies.
    let p = f.present_fields(&f.issued, &["licence_id", "holder_name"]);
    f.verify(&p).unwrap();
}

// ---------------------------------------------------------------- finding 2

/// The market-regulation list at `iat` with index 7 set to `status7` (and
/// index 8 to `status8`), signed by its key.
fn list_token(f: &Fx, iat: i64, status7: Status, status8: Status) -> String {
    let mut list = f.w.status_lists[0].clone();
    list.set(7, status7).unwrap();
    list.set(8, status8).unwrap();
    StatusListToken {
        uri: &demo::status_uri(&MARKET_REGULATION),
        list: &list,
        iat,
        exp: Some(iat + DAY),
        ttl: None,
    }
    .sign(f.w.issuers[0].key())
}

fn cache_of(f: &Fx, tokens: &[&str]) -> StatusListCache {
    let mut cache = StatusListCache::new();
    for t in tokens {
        cache.insert_token(t, &f.w.bundle).unwrap();
    }
    cache
}

/// A list dated tomorrow saying "valid" never un-revokes a licence a
/// present list revokes, in either order; a far-future list (2105, the
/// review's) is outside the key window as well.
#[test]
fn f2_future_status_list_does_not_unrevoke() {
    let f = fx();
    let p = f.present(&f.issued);
    let revoked = list_token(&f, NOW, Status::Revoked, Status::Valid);
    let future = list_token(&f, NOW + DAY, Status::Valid, Status::Valid);
    for order in [[&revoked, &future], [&future, &revoked]] {
        let cache = cache_of(&f, &[order[0].as_str(), order[1].as_str()]);
        let r = f.verify_with_cache(&p, &cache).unwrap_err();
        assert_eq!(r, Rejection::StatusListFromFuture);
        assert_eq!(r.class(), VerdictClass::StaleTrustData);
        // With the time known at insert, the future list is refused and the
        // revocation stands.
        let mut cache = StatusListCache::new();
        for t in order {
            match cache.insert_token_at(t, &f.w.bundle, NOW, 300) {
                Ok(_) => assert_eq!(t, &revoked),
                Err(e) => assert_eq!(e, Rejection::StatusListFromFuture),
            }
        }
        assert_eq!(
            f.verify_with_cache(&p, &cache).unwrap_err(),
            Rejection::Revoked
        );
    }
    // Inside the skew is not "the future".
    let cache = cache_of(
        &f,
        &[list_token(&f, NOW + 299, Status::Revoked, Status::Valid).as_str()],
    );
    assert_eq!(
        f.verify_with_cache(&p, &cache).unwrap_err(),
        Rejection::Revoked
    );
    // The review's list: iat 2105000000, far beyond the key's window.
    let far = list_token(&f, 2_105_000_000, Status::Valid, Status::Valid);
    assert_eq!(
        VerifiedStatusList::verify(&far, &f.w.bundle).unwrap_err(),
        Rejection::StatusListKeyOutsideWindow
    );
}

/// A future list already cached (from storage, or from code that inserted
/// without a clock) gives way to the next present-dated list.
#[test]
fn f2_future_list_does_not_pin_the_cache() {
    let f = fx();
    let p = f.present(&f.issued);
    let future = list_token(&f, NOW + DAY, Status::Valid, Status::Valid);
    let revoked = list_token(&f, NOW, Status::Revoked, Status::Valid);
    let mut cache = cache_of(&f, &[future.as_str()]);
    // Without a clock the older list is refused (no rollback)...
    assert!(!cache.clone().insert_token(&revoked, &f.w.bundle).unwrap());
    // ...with one, the future list is recognised and replaced.
    assert!(
        cache
            .insert_token_at(&revoked, &f.w.bundle, NOW, 300)
            .unwrap()
    );
    assert_eq!(
        f.verify_with_cache(&p, &cache).unwrap_err(),
        Rejection::Revoked
    );
    // An older present-dated list is still refused (rollback).
    let older = list_token(&f, NOW - 60, Status::Valid, Status::Valid);
    assert!(
        !cache
            .insert_token_at(&older, &f.w.bundle, NOW, 300)
            .unwrap()
    );
    assert_eq!(
        f.verify_with_cache(&p, &cache).unwrap_err(),
        Rejection::Revoked
    );
}

/// Two lists with the same `iat` and different contents: for each licence
/// the most severe status wins, whatever the order.
#[test]
fn f2_same_iat_lists_the_severe_status_wins() {
    let mut f = fx();
    let issued8 = f.w.issue_typical(8, &mut f.rng).unwrap();
    let a = list_token(&f, NOW + 10, Status::Revoked, Status::Valid);
    let b = list_token(&f, NOW + 10, Status::Valid, Status::Suspended);
    for order in [[&a, &b], [&b, &a]] {
        let cache = cache_of(&f, &[order[0].as_str(), order[1].as_str()]);
        assert_eq!(
            cache.get_all(&demo::status_uri(&MARKET_REGULATION)).len(),
            2
        );
        assert_eq!(
            f.verify_with_cache(&f.present(&f.issued), &cache)
                .unwrap_err(),
            Rejection::Revoked
        );
        assert_eq!(
            f.verify_with_cache(&f.present(&issued8), &cache)
                .unwrap_err(),
            Rejection::Suspended
        );
    }
    // A newer list replaces the whole group.
    let c = list_token(&f, NOW + 20, Status::Valid, Status::Valid);
    let cache = cache_of(&f, &[a.as_str(), b.as_str(), c.as_str()]);
    f.verify_with_cache(&f.present(&f.issued), &cache).unwrap();
}

// ---------------------------------------------------------------- reclassified verdicts

#[test]
fn r1_signature_of_wrong_length_is_forged() {
    let f = fx();
    let p = f.present(&f.issued);
    let (jwt, rest) = p.split_once('~').unwrap();
    let (input, sig) = jwt.rsplit_once('.').unwrap();
    let sig = b64d(sig, Part::IssuerJwt).unwrap();
    let mut long = sig.clone();
    long.push(0);
    for bad in [&sig[..63], &long[..], &[][..]] {
        let text = format!("{input}.{}~{rest}", b64e(bad));
        let r = f.verify(&text).unwrap_err();
        assert_eq!(
            r,
            Rejection::SignatureLength(Part::IssuerJwt),
            "{} bytes",
            bad.len()
        );
        assert_eq!(r.class(), VerdictClass::Forged);
        assert_eq!(r.code(), "issuer_jwt_signature_length");
    }
}

#[test]
fn r2_malformed_header_bytes_are_forged() {
    let f = fx();
    let good =
        json!({"alg": "EdDSA", "typ": "dc+sd-jwt", "kid": f.w.issuers[0].key().kid()}).to_string();
    let mut bom = "\u{feff}".as_bytes().to_vec();
    bom.extend_from_slice(good.as_bytes());
    let mut bad_utf8 = good.clone().into_bytes();
    bad_utf8.insert(good.find("EdDSA").unwrap(), 0xff);
    for header in [bom, bad_utf8, b"[1,2]".to_vec(), b"\"EdDSA\"".to_vec()] {
        let r = f.verify(&f.with_header_bytes(&header)).unwrap_err();
        assert_eq!(r, Rejection::Json(Part::IssuerJwt));
        assert_eq!(r.class(), VerdictClass::Forged);
    }
    // Not base64url at all is still "scan again".
    assert_eq!(
        Rejection::Base64(Part::IssuerJwt).class(),
        VerdictClass::Unreadable
    );
}

#[test]
fn r3_status_list_of_another_issuer_is_forged_not_stale() {
    let mut f = fx();
    let mut req = request(
        &f.w,
        MARKET_REGULATION.type_code,
        DemoWorld::typical_claims(3),
    );
    req.claims.insert(
        "licence_id".into(),
        json!(id_of(MARKET_REGULATION.type_code, MARKET_REGULATION.code)),
    );
    req.status.uri = demo::status_uri(&PUBLIC_SECURITY);
    let issued = f.w.issuers[0].issue(&req, NOW, &mut f.rng).unwrap();
    let r = f.verify(&f.present(&issued)).unwrap_err();
    assert_eq!(r, Rejection::StatusListIssuerMismatch);
    assert_eq!(r.class(), VerdictClass::Forged);
}

#[test]
fn r4_missing_final_tilde_has_its_own_reason() {
    let f = fx();
    let p = f.present(&f.issued);
    let unbound = &p[..=p.rfind('~').unwrap()];
    let cut = unbound.trim_end_matches('~');
    let r = verify_presentation(
        cut,
        &f.w.bundle,
        &f.w.status_cache,
        &VerifyPolicy::wallet(),
        NOW,
    )
    .unwrap_err();
    assert_eq!(r, Rejection::PresentationUnterminated);
    assert_eq!(r.code(), "sd_jwt_unterminated");
    assert_eq!(r.class(), VerdictClass::Unreadable);
    // A KB-JWT with two segments is still a malformed key binding.
    let two = &p[..p.rfind('.').unwrap()];
    f.rejects(two, Rejection::JwsSegments(Part::KeyBinding));
}

// ---------------------------------------------------------------- policies

/// ADR 0102: a key retired by rotation keeps the licences it signed inside
/// its window valid (rotation must not void every licence); a compromised
/// key is removed from the bundle, and then nothing it signed verifies.
/// Status lists speak about now: a retired key's list is refused.
#[test]
fn p1_retired_issuer_key() {
    let mut f = fx();
    let old = KeyPair::generate(&mut f.rng);
    let mut content = f.w.bundle_content.clone();
    content.version = 2;
    content.issuers[0].keys.push(IssuerKeyEntry {
        kid: old.kid(),
        jwk: old.public().to_jwk(),
        not_before: NOW - 400 * DAY,
        not_after: NOW - 30 * DAY,
    });
    let bundle = TrustBundle::verify(
        &content.sign(&f.w.root).unwrap(),
        &[f.w.root.public()],
        None,
    )
    .unwrap();
    // A licence the old key signed inside its window (backdated or not).
    let old_issuer = Issuer::new(MARKET_REGULATION.id, old.clone());
    let mut claims = DemoWorld::typical_claims(2);
    claims.insert("valid_until".into(), json!("2045-12-31"));
    let licence = old_issuer
        .issue(
            &request(&f.w, MARKET_REGULATION.type_code, claims),
            NOW - 60 * DAY,
            &mut f.rng,
        )
        .unwrap();
    let p = f.present(&licence);
    verify_presentation(&p, &bundle, &f.w.status_cache, &policy(), NOW).unwrap();
    // Signed after retirement: refused.
    let late = old_issuer
        .issue(
            &request(
                &f.w,
                MARKET_REGULATION.type_code,
                DemoWorld::typical_claims(2),
            ),
            NOW - DAY,
            &mut f.rng,
        )
        .unwrap();
    assert_eq!(
        verify_presentation(
            &f.present(&late),
            &bundle,
            &f.w.status_cache,
            &policy(),
            NOW
        )
        .unwrap_err(),
        Rejection::IssuerKeyOutsideWindow
    );
    // A status list the retired key signed, even backdated into its window.
    let token = StatusListToken {
        uri: &demo::status_uri(&MARKET_REGULATION),
        list: &f.w.status_lists[0],
        iat: NOW - 31 * DAY,
        exp: Some(NOW + DAY),
        ttl: None,
    }
    .sign(&old);
    let mut cache = StatusListCache::new();
    cache.insert_token(&token, &bundle).unwrap();
    let r =
        verify_presentation(&f.present(&f.issued), &bundle, &cache, &policy(), NOW).unwrap_err();
    assert_eq!(r, Rejection::StatusListKeyOutsideWindow);
    // Signed after retirement, it does not even load.
    let token = StatusListToken {
        uri: &demo::status_uri(&MARKET_REGULATION),
        list: &f.w.status_lists[0],
        iat: NOW,
        exp: Some(NOW + DAY),
        ttl: None,
    }
    .sign(&old);
    assert_eq!(
        VerifiedStatusList::verify(&token, &bundle).unwrap_err(),
        Rejection::StatusListKeyOutsideWindow
    );
}

/// RFC 7515 §4.1.9: the `application/` prefix of `typ` is optional, and
/// media types compare case-insensitively; nothing else is accepted.
#[test]
fn p2_typ_with_application_prefix_is_accepted() {
    let mut f = fx();
    for typ in [
        "application/dc+sd-jwt",
        "APPLICATION/DC+SD-JWT",
        "Dc+Sd-Jwt",
    ] {
        let t = typ.to_owned();
        let licence = f.with_claim_signed(
            "holder_name",
            json!("广安市示例商贸有限公司"),
            move |h, _| {
                h.insert("typ".into(), json!(t));
            },
        );
        f.verify(&f.present(&licence))
            .unwrap_or_else(|e| panic!("{typ}: {e}"));
    }
    for typ in [
        "text/dc+sd-jwt",
        "application/dc+sd-jwt; x=1",
        "application/",
        "vc+sd-jwt",
        "application/application/dc+sd-jwt",
    ] {
        let t = typ.to_owned();
        let licence = f.with_claim_signed("holder_name", json!("x"), move |h, _| {
            h.insert("typ".into(), json!(t));
        });
        f.rejects(&f.present(&licence), Rejection::WrongType(Part::IssuerJwt));
    }
}

/// ADR 0103: claim names are lowercase ASCII snake_case, at issue and at
/// verification.
#[test]
fn p3_spoofable_claim_names_are_refused() {
    let mut f = fx();
    let long = "a".repeat(65);
    for name in [
        "",
        "ｌｉｃｅｎｃｅ_ｉｄ",
        "licence\u{200b}_id",
        "Licence_id",
        "1abc",
        "holder name",
        long.as_str(),
    ] {
        let licence = f.with_claim(name, json!("x"));
        let p = f.present_fields(&licence, &[name, "holder_name"]);
        f.rejects(&p, Rejection::ClaimNameInvalid);
        let mut claims = DemoWorld::typical_claims(1);
        claims.insert(name.to_owned(), json!("x"));
        let r = f.w.issuers[0].issue(
            &request(&f.w, MARKET_REGULATION.type_code, claims),
            NOW,
            &mut f.rng,
        );
        assert!(
            matches!(
                r,
                Err(IssueError::Claims(
                    ClaimsError::BadName | ClaimsError::Reserved(_)
                ))
            ),
            "{name:?}: {r:?}"
        );
    }
    assert_eq!(Rejection::ClaimNameInvalid.class(), VerdictClass::Forged);
}

/// Disclosed metadata a person reads must agree with the bundle and `exp`.
#[test]
fn p4_disclosed_issuer_name_and_validity_must_agree() {
    let mut f = fx();
    let cases = [
        ("issuer_name", json!("广安市公安局"), "issuer_name"),
        ("valid_until", json!("2099-12-31"), "valid_until"),
        ("valid_until", json!("长期"), "valid_until"),
        ("valid_from", json!("2020-01-01"), "valid_from"),
    ];
    for (name, value, claim) in cases {
        let licence = f.with_claim(name, value);
        let p = f.present_fields(&licence, &[name, "holder_name"]);
        f.rejects(&p, Rejection::InvalidClaim(claim));
    }
    // The true ones pass.
    let p = f.present_fields(&f.issued, &["issuer_name", "valid_until", "valid_from"]);
    f.verify(&p).unwrap();
}

/// A small-order holder key binds a licence to nobody: refused at issue.
#[test]
fn p5_issue_refuses_a_small_order_holder_key() {
    let mut f = fx();
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let weak = ed25519_dalek::VerifyingKey::from_bytes(&identity).unwrap();
    let mut req = request(
        &f.w,
        MARKET_REGULATION.type_code,
        DemoWorld::typical_claims(1),
    );
    req.holder = PublicKey::new(weak).into();
    assert_eq!(
        f.w.issuers[0].issue(&req, NOW, &mut f.rng).unwrap_err(),
        IssueError::WeakHolderKey
    );
}

/// An empty nonce is never a match, even for a caller expecting "".
#[test]
fn p6_empty_nonce_never_matches() {
    let f = fx();
    let sd = {
        let p = f.present(&f.issued);
        p[..=p.rfind('~').unwrap()].to_owned()
    };
    let h = json!({"alg": "EdDSA", "typ": "kb+jwt"});
    let pl = json!({"iat": NOW, "aud": "inspection", "nonce": "", "sd_hash": sha256_b64(&sd)});
    let text = format!("{sd}{}", sign_raw(&h, &pl, &f.w.holder));
    let exact_empty = VerifyPolicy::required("inspection", NoncePolicy::Exact(String::new()));
    assert_eq!(
        verify_presentation(&text, &f.w.bundle, &f.w.status_cache, &exact_empty, NOW).unwrap_err(),
        Rejection::KeyBindingNonce
    );
}
