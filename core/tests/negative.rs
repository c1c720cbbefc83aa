//! The negative suite: every way a licence presentation, a trust bundle or a
//! status list can try to fool the verifier, each asserting the exact rejection.
//! Boundary cases (inside the skew, inside the freshness window) assert acceptance.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ed25519_dalek::Signer as _;
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use serde_json::{Map, Value, json};
use zhangban_core::credential::demo::{self, DAY, DemoWorld, MARKET_REGULATION, PUBLIC_SECURITY};
use zhangban_core::credential::jose::{b64d, b64e, sha256_b64};
use zhangban_core::credential::rejection::Part;
use zhangban_core::credential::sd_jwt::Disclosure;
use zhangban_core::credential::*;

const NOW: i64 = 1_795_000_000;
const NONCE: &str = "nonce-from-inspector";

struct Fx {
    w: DemoWorld,
    rng: StdRng,
    issued: String,
}

fn fx() -> Fx {
    let mut rng = StdRng::seed_from_u64(2026);
    let w = DemoWorld::new(&mut rng, NOW);
    let issued = w.issue_typical(7, &mut rng).unwrap();
    Fx { w, rng, issued }
}

fn policy() -> VerifyPolicy {
    VerifyPolicy::required("inspection", NoncePolicy::Exact(NONCE.into()))
}

impl Fx {
    /// The typical presentation (5 fields + KB), built without parsing the
    /// issuer JWT so that deliberately broken headers survive.
    fn present(&self, issued: &str) -> String {
        self.present_but(issued, "")
    }
    /// The typical presentation without the field `skip`.
    fn present_but(&self, issued: &str, skip: &str) -> String {
        let mut parts = issued.trim_end_matches('~').split('~');
        let mut out = format!("{}~", parts.next().unwrap());
        for d in parts {
            let name = Disclosure::parse(d).unwrap().name;
            if DemoWorld::TYPICAL_DISCLOSED.contains(&name.as_str()) && name != skip {
                out.push_str(d);
                out.push('~');
            }
        }
        self.with_kb(&out, &self.w.holder, |_, _| {})
    }
    fn verify_with(
        &self,
        text: &str,
        policy: &VerifyPolicy,
        now: i64,
    ) -> Result<VerifiedLicence, Rejection> {
        verify_presentation(text, &self.w.bundle, &self.w.status_cache, policy, now)
    }
    fn verify(&self, text: &str) -> Result<VerifiedLicence, Rejection> {
        self.verify_with(text, &policy(), NOW)
    }
    fn rejects(&self, text: &str, expected: Rejection) {
        match self.verify(text) {
            Ok(_) => panic!("accepted, expected {expected:?}"),
            Err(got) => assert_eq!(got, expected),
        }
    }
    /// Re-signs the issuer JWT of `issued` with `key` after `edit`, keeping the disclosures.
    fn resign_with(
        &self,
        issued: &str,
        key: &KeyPair,
        edit: impl FnOnce(&mut Map<String, Value>, &mut Map<String, Value>),
    ) -> String {
        let (jwt, rest) = issued.split_once('~').unwrap();
        let (mut h, mut p) = decode_jwt(jwt);
        edit(&mut h, &mut p);
        format!(
            "{}~{rest}",
            sign_raw(&Value::Object(h), &Value::Object(p), key)
        )
    }
    fn resign(
        &self,
        edit: impl FnOnce(&mut Map<String, Value>, &mut Map<String, Value>),
    ) -> String {
        self.resign_with(&self.issued, self.w.issuers[0].key(), edit)
    }
    /// The typical presentation of a licence re-signed after `edit`.
    fn present_edited(
        &self,
        edit: impl FnOnce(&mut Map<String, Value>, &mut Map<String, Value>),
    ) -> String {
        self.present(&self.resign(edit))
    }
    /// Appends a KB-JWT with the given header/payload edits, signed by `key`.
    fn with_kb(
        &self,
        sd_jwt: &str,
        key: &KeyPair,
        edit: impl FnOnce(&mut Map<String, Value>, &mut Map<String, Value>),
    ) -> String {
        let mut h = json!({"alg": "EdDSA", "typ": "kb+jwt"})
            .as_object()
            .unwrap()
            .clone();
        let mut p =
            json!({"iat": NOW, "aud": "inspection", "nonce": NONCE, "sd_hash": sha256_b64(sd_jwt)})
                .as_object()
                .unwrap()
                .clone();
        edit(&mut h, &mut p);
        format!(
            "{sd_jwt}{}",
            sign_raw(&Value::Object(h), &Value::Object(p), key)
        )
    }
    /// The typical presentation without its KB-JWT (ends in `~`).
    fn unbound(&self) -> String {
        let p = self.present(&self.issued);
        let cut = p.rfind('~').unwrap();
        p[..=cut].to_owned()
    }
}

fn decode_jwt(jwt: &str) -> (Map<String, Value>, Map<String, Value>) {
    let mut it = jwt.split('.');
    let h = serde_json::from_slice(&b64d(it.next().unwrap(), Part::IssuerJwt).unwrap()).unwrap();
    let p = serde_json::from_slice(&b64d(it.next().unwrap(), Part::IssuerJwt).unwrap()).unwrap();
    (h, p)
}

/// Signs exactly the given header (no `alg` fixing) with Ed25519.
fn sign_raw(header: &Value, payload: &Value, key: &KeyPair) -> String {
    let input = format!("{}.{}", b64e(header.to_string()), b64e(payload.to_string()));
    let sig = key.signing_key().sign(input.as_bytes());
    format!("{input}.{}", b64e(sig.to_bytes()))
}

fn replace_jwt(presentation: &str, new_jwt: &str) -> String {
    let (_, rest) = presentation.split_once('~').unwrap();
    format!("{new_jwt}~{rest}")
}

fn issuer_jwt(text: &str) -> &str {
    text.split('~').next().unwrap()
}

// ---------------------------------------------------------------- reading

#[test]
fn n01_empty_input() {
    fx().rejects("", Rejection::Empty);
}

#[test]
fn n02_no_tilde_is_not_an_sd_jwt() {
    let f = fx();
    f.rejects(issuer_jwt(&f.issued), Rejection::SdJwtStructure);
}

#[test]
fn n03_empty_disclosure_segment() {
    let f = fx();
    let p = f.present(&f.issued).replacen('~', "~~", 1);
    f.rejects(&p, Rejection::SdJwtStructure);
}

#[test]
fn n04_issuer_jwt_with_two_segments() {
    let f = fx();
    let p = f.present(&f.issued);
    let jwt = issuer_jwt(&p);
    let two = &jwt[..jwt.rfind('.').unwrap()];
    f.rejects(
        &replace_jwt(&p, two),
        Rejection::JwsSegments(Part::IssuerJwt),
    );
}

#[test]
fn n05_issuer_jwt_with_four_segments() {
    let f = fx();
    let p = f.present(&f.issued);
    let four = format!("{}.AAAA", issuer_jwt(&p));
    f.rejects(
        &replace_jwt(&p, &four),
        Rejection::JwsSegments(Part::IssuerJwt),
    );
}

#[test]
fn n06_padded_or_standard_base64_header() {
    let f = fx();
    let p = f.present(&f.issued);
    let jwt = issuer_jwt(&p);
    let (h, rest) = jwt.split_once('.').unwrap();
    let padded = format!("{h}==.{rest}");
    f.rejects(
        &replace_jwt(&p, &padded),
        Rejection::Base64(Part::IssuerJwt),
    );
    let std_alphabet = format!("{}+.{rest}", &h[..h.len() - 1]);
    f.rejects(
        &replace_jwt(&p, &std_alphabet),
        Rejection::Base64(Part::IssuerJwt),
    );
}

#[test]
fn n07_header_not_json() {
    let f = fx();
    let p = f.present(&f.issued);
    let jwt = issuer_jwt(&p);
    let (_, rest) = jwt.split_once('.').unwrap();
    let bad = format!("{}.{rest}", b64e("{\"alg\":\"EdDSA\""));
    f.rejects(&replace_jwt(&p, &bad), Rejection::Json(Part::IssuerJwt));
}

#[test]
fn n08_duplicate_member_in_payload_is_refused_even_when_signed() {
    let f = fx();
    // A validly signed payload that says `iss` twice: parsers would disagree.
    let jwt = issuer_jwt(&f.issued);
    let (h, p) = decode_jwt(jwt);
    let payload_text = Value::Object(p)
        .to_string()
        .replacen('{', "{\"iss\":\"urn:evil\",", 1);
    let input = format!(
        "{}.{}",
        b64e(Value::Object(h).to_string()),
        b64e(payload_text)
    );
    let sig = f.w.issuers[0].key().signing_key().sign(input.as_bytes());
    let forged = format!("{input}.{}", b64e(sig.to_bytes()));
    f.rejects(
        &replace_jwt(&f.present(&f.issued), &forged),
        Rejection::DuplicateJsonMember(Part::IssuerJwt),
    );
}

#[test]
fn n09_oversize_input() {
    let f = fx();
    let huge = format!("{}{}", f.present(&f.issued), "A".repeat(70_000));
    f.rejects(&huge, Rejection::TooLarge);
}

#[test]
fn n10_disclosure_not_base64url() {
    let f = fx();
    let p = f.unbound();
    let bad = p.replacen('~', "~not*base64~", 1);
    f.rejects(&bad, Rejection::Base64(Part::Disclosure));
}

#[test]
fn n11_disclosure_with_two_elements() {
    let f = fx();
    let two = b64e(r#"["c2FsdA","holder_name"]"#);
    let p = f.unbound().replacen('~', &format!("~{two}~"), 1);
    f.rejects(&p, Rejection::DisclosureMalformed);
}

#[test]
fn n12_kb_jwt_with_two_segments() {
    let f = fx();
    let p = f.present(&f.issued);
    let cut = p.rfind('.').unwrap();
    f.rejects(&p[..cut], Rejection::JwsSegments(Part::KeyBinding));
}

// ---------------------------------------------------------------- headers

#[test]
fn n13_alg_none() {
    let f = fx();
    let (mut h, p) = decode_jwt(issuer_jwt(&f.issued));
    h.insert("alg".into(), json!("none"));
    let unsigned = format!(
        "{}.{}.",
        b64e(Value::Object(h).to_string()),
        b64e(Value::Object(p).to_string())
    );
    f.rejects(
        &replace_jwt(&f.present(&f.issued), &unsigned),
        Rejection::AlgorithmNotAllowed(Part::IssuerJwt),
    );
}

#[test]
fn n14_alg_hs256_key_confusion() {
    use sha2::Digest as _;
    let f = fx();
    let (mut h, p) = decode_jwt(issuer_jwt(&f.issued));
    h.insert("alg".into(), json!("HS256"));
    let input = format!(
        "{}.{}",
        b64e(Value::Object(h).to_string()),
        b64e(Value::Object(p).to_string())
    );
    // A "MAC" keyed with the public key bytes: the classic confusion attack.
    let mac = sha2::Sha256::digest(
        [
            f.w.issuers[0].key().public().verifying_key().as_bytes(),
            input.as_bytes(),
        ]
        .concat(),
    );
    let forged = format!("{input}.{}", b64e(mac));
    f.rejects(
        &replace_jwt(&f.present(&f.issued), &forged),
        Rejection::AlgorithmNotAllowed(Part::IssuerJwt),
    );
}

#[test]
fn n15_alg_rs256_and_es256() {
    let f = fx();
    for alg in ["RS256", "ES256", "Ed25519", "eddsa"] {
        let p = f.present_edited(|h, _| {
            h.insert("alg".into(), json!(alg));
        });
        f.rejects(&p, Rejection::AlgorithmNotAllowed(Part::IssuerJwt));
    }
}

#[test]
fn n16_wrong_or_missing_typ() {
    let f = fx();
    let p = f.present_edited(|h, _| {
        h.insert("typ".into(), json!("JWT"));
    });
    f.rejects(&p, Rejection::WrongType(Part::IssuerJwt));
    let p = f.present_edited(|h, _| {
        h.remove("typ");
    });
    f.rejects(&p, Rejection::WrongType(Part::IssuerJwt));
}

#[test]
fn n17_crit_header() {
    let f = fx();
    let p = f.present_edited(|h, _| {
        h.insert("crit".into(), json!(["exp"]));
    });
    f.rejects(&p, Rejection::CriticalHeader(Part::IssuerJwt));
}

#[test]
fn n18_missing_kid() {
    let f = fx();
    let p = f.present_edited(|h, _| {
        h.remove("kid");
    });
    f.rejects(&p, Rejection::MissingKid);
}

#[test]
fn n19_unknown_kid() {
    let f = fx();
    let p = f.present_edited(|h, _| {
        h.insert(
            "kid".into(),
            json!("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        );
    });
    f.rejects(&p, Rejection::UnknownKid);
}

#[test]
fn n20_kid_of_another_issuer() {
    let f = fx();
    // Public security signs a market-regulation licence with its own, trusted, key.
    let other = f.w.issuers[1].key();
    let forged = f.resign_with(&f.issued, other, |h, _| {
        h.insert("kid".into(), json!(other.kid()));
    });
    f.rejects(&f.present(&forged), Rejection::UnknownKid);
}

// ---------------------------------------------------------------- signatures

#[test]
fn n21_tampered_header() {
    let f = fx();
    let p = f.present(&f.issued);
    let jwt = issuer_jwt(&p);
    let (h, _) = decode_jwt(jwt);
    let mut h2 = h.clone();
    h2.insert("x5u".into(), json!("https://evil.example/"));
    let (_, rest) = jwt.split_once('.').unwrap();
    let tampered = format!("{}.{rest}", b64e(Value::Object(h2).to_string()));
    f.rejects(&replace_jwt(&p, &tampered), Rejection::BadSignature);
}

#[test]
fn n22_tampered_payload() {
    let f = fx();
    let p = f.present(&f.issued);
    let jwt = issuer_jwt(&p);
    let (h, mut payload) = decode_jwt(jwt);
    payload.insert("exp".into(), json!(NOW + 100 * 365 * DAY));
    let sig = jwt.rsplit('.').next().unwrap();
    let tampered = format!(
        "{}.{}.{sig}",
        b64e(Value::Object(h).to_string()),
        b64e(Value::Object(payload).to_string())
    );
    f.rejects(&replace_jwt(&p, &tampered), Rejection::BadSignature);
}

#[test]
fn n23_signed_by_another_key_with_the_issuers_kid() {
    let mut f = fx();
    let stranger = KeyPair::generate(&mut f.rng);
    let forged = f.resign_with(&f.issued, &stranger, |_, _| {});
    f.rejects(&f.present(&forged), Rejection::BadSignature);
}

#[test]
fn n24_malleable_signature_s_plus_l() {
    let f = fx();
    let p = f.present(&f.issued);
    let jwt = issuer_jwt(&p);
    let (input, sig) = jwt.rsplit_once('.').unwrap();
    let mut sig = b64d(sig, Part::IssuerJwt).unwrap();
    // L = 2^252 + 27742317777372353535851937790883648493, little endian.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(sig[32 + i]) + u16::from(L[i]) + carry;
        sig[32 + i] = (sum & 0xff) as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
    let malleable = format!("{input}.{}", b64e(&sig));
    f.rejects(&replace_jwt(&p, &malleable), Rejection::BadSignature);
}

#[test]
fn n25_truncated_signature() {
    let f = fx();
    let p = f.present(&f.issued);
    let jwt = issuer_jwt(&p);
    let (input, sig) = jwt.rsplit_once('.').unwrap();
    let sig = b64d(sig, Part::IssuerJwt).unwrap();
    let short = format!("{input}.{}", b64e(&sig[..63]));
    f.rejects(
        &replace_jwt(&p, &short),
        Rejection::SignatureLength(Part::IssuerJwt),
    );
}

// ---------------------------------------------------------------- trust

#[test]
fn n26_issuer_absent_from_bundle() {
    let mut f = fx();
    let rogue = Issuer::new("urn:zhangban:issuer:rogue", KeyPair::generate(&mut f.rng));
    let request = LicenceRequest {
        vct: demo::vct_for(MARKET_REGULATION.type_code),
        claims: DemoWorld::typical_claims(1),
        holder: f.w.holder.public().into(),
        status: StatusReference {
            uri: demo::status_uri(&MARKET_REGULATION),
            idx: 1,
        },
        issuer_code: MARKET_REGULATION.code.into(),
    };
    let issued = rogue.issue(&request, NOW, &mut f.rng).unwrap();
    f.rejects(&f.present(&issued), Rejection::IssuerUnknown);
}

#[test]
fn n27_issuer_not_authorized_for_type() {
    let mut f = fx();
    // Market regulation issues a residence permit (a public-security type),
    // its identifier consistent with that type and its own code.
    let mut claims = DemoWorld::typical_claims(1);
    let id = LicenceId::new(PUBLIC_SECURITY.type_code, MARKET_REGULATION.code, "1", 1).unwrap();
    claims.insert("licence_id".into(), json!(id.to_string()));
    let request = LicenceRequest {
        vct: demo::vct_for(PUBLIC_SECURITY.type_code),
        claims,
        holder: f.w.holder.public().into(),
        status: StatusReference {
            uri: demo::status_uri(&MARKET_REGULATION),
            idx: 1,
        },
        issuer_code: MARKET_REGULATION.code.into(),
    };
    let issued = f.w.issuers[0].issue(&request, NOW, &mut f.rng).unwrap();
    f.rejects(&f.present(&issued), Rejection::IssuerNotAuthorizedForType);
}

/// A world whose market-regulation key window is `[from, to]`.
fn with_key_window(f: &Fx, from: i64, to: i64) -> TrustBundle {
    let mut content = f.w.bundle_content.clone();
    content.issuers[0].keys[0].not_before = from;
    content.issuers[0].keys[0].not_after = to;
    content.version = 2;
    TrustBundle::verify(
        &content.sign(&f.w.root).unwrap(),
        &[f.w.root.public()],
        Some(&f.w.bundle),
    )
    .unwrap()
}

#[test]
fn n28_issuer_key_expired_before_signing() {
    let f = fx();
    let bundle = with_key_window(&f, NOW - 100 * DAY, NOW - DAY);
    let r = verify_presentation(
        &f.present(&f.issued),
        &bundle,
        &f.w.status_cache,
        &policy(),
        NOW,
    );
    assert_eq!(r.unwrap_err(), Rejection::IssuerKeyOutsideWindow);
}

#[test]
fn n29_issuer_key_not_yet_valid_at_signing() {
    let f = fx();
    let bundle = with_key_window(&f, NOW + DAY, NOW + 100 * DAY);
    let r = verify_presentation(
        &f.present(&f.issued),
        &bundle,
        &f.w.status_cache,
        &policy(),
        NOW,
    );
    assert_eq!(r.unwrap_err(), Rejection::IssuerKeyOutsideWindow);
}

// ---------------------------------------------------------------- validity

#[test]
fn n30_expired() {
    let f = fx();
    let p = f.present_edited(|_, p| {
        p.insert("exp".into(), json!(NOW - 301));
    });
    f.rejects(&p, Rejection::Expired);
}

#[test]
fn n31_expired_inside_skew_is_accepted() {
    let f = fx();
    // valid_until is not disclosed: it would contradict the edited exp (ADR 0100).
    let edited = f.resign(|_, p| {
        p.insert("exp".into(), json!(NOW - 299));
    });
    let p = f.present_but(&edited, "valid_until");
    assert!(f.verify(&p).is_ok());
}

#[test]
fn n32_not_yet_valid() {
    let f = fx();
    let p = f.present_edited(|_, p| {
        p.insert("nbf".into(), json!(NOW + 301));
    });
    f.rejects(&p, Rejection::NotYetValid);
}

#[test]
fn n33_iat_beyond_skew_and_inside_skew() {
    let f = fx();
    let p = f.present_edited(|_, p| {
        p.insert("iat".into(), json!(NOW + 301));
    });
    f.rejects(&p, Rejection::IssuedInFuture);
    let p = f.present_edited(|_, p| {
        p.insert("iat".into(), json!(NOW + 299));
    });
    assert!(f.verify(&p).is_ok(), "inside the ±300 s skew");
}

#[test]
fn n34_missing_or_mistyped_visible_claims() {
    let f = fx();
    let p = f.present_edited(|_, p| {
        p.remove("iat");
    });
    f.rejects(&p, Rejection::MissingClaim("iat"));
    let p = f.present_edited(|_, p| {
        p.remove("vct");
    });
    f.rejects(&p, Rejection::MissingClaim("vct"));
    let p = f.present_edited(|_, p| {
        p.insert("exp".into(), json!("2045-12-31"));
    });
    f.rejects(&p, Rejection::InvalidClaim("exp"));
    let p = f.present_edited(|_, p| {
        p.insert("iss".into(), json!(42));
    });
    f.rejects(&p, Rejection::InvalidClaim("iss"));
}

// ---------------------------------------------------------------- disclosures

#[test]
fn n35_tampered_disclosure() {
    let f = fx();
    let p = f.unbound();
    let mut parts: Vec<String> = p.split('~').map(str::to_owned).collect();
    let d = Disclosure::parse(&parts[1]).unwrap();
    let forged = Disclosure::new(d.salt.clone(), d.name.clone(), json!("李四"));
    parts[1] = forged.encoded;
    let tampered = parts.join("~");
    let wallet = VerifyPolicy::wallet();
    assert_eq!(
        f.verify_with(&tampered, &wallet, NOW).unwrap_err(),
        Rejection::DisclosureNotReferenced
    );
}

#[test]
fn n36_disclosure_from_another_licence() {
    let mut f = fx();
    let other = f.w.issue_typical(8, &mut f.rng).unwrap();
    let foreign = other.split('~').nth(1).unwrap();
    let p = f.unbound().replacen('~', &format!("~{foreign}~"), 1);
    let wallet = VerifyPolicy::wallet();
    assert_eq!(
        f.verify_with(&p, &wallet, NOW).unwrap_err(),
        Rejection::DisclosureNotReferenced
    );
}

#[test]
fn n37_duplicate_disclosure() {
    let f = fx();
    let p = f.unbound();
    let first = p.split('~').nth(1).unwrap().to_owned();
    let sd = format!("{p}{first}~");
    f.rejects(
        &f.with_kb(&sd, &f.w.holder, |_, _| {}),
        Rejection::DisclosureDuplicate,
    );
}

/// Builds a licence whose `_sd` references `extra` disclosures too, signed by the real issuer.
fn licence_with_extra_disclosures(f: &Fx, extra: &[Disclosure]) -> String {
    let digests: Vec<String> = extra.iter().map(Disclosure::digest).collect();
    let base = f.resign(|_, p| {
        let sd = p.get_mut("_sd").unwrap().as_array_mut().unwrap();
        sd.extend(digests.into_iter().map(Value::String));
    });
    let mut out = base;
    for d in extra {
        out.push_str(&d.encoded);
        out.push('~');
    }
    out
}

#[test]
fn n38_reserved_name_sd() {
    let f = fx();
    let d = Disclosure::new("c2FsdHNhbHRzYWx0".into(), "_sd".into(), json!(["x"]));
    let lic = licence_with_extra_disclosures(&f, std::slice::from_ref(&d));
    let p = format!("{}{}~", issuer_jwt(&lic).to_owned() + "~", d.encoded);
    f.rejects(
        &f.with_kb(&p, &f.w.holder, |_, _| {}),
        Rejection::ReservedClaimName,
    );
}

#[test]
fn n39_reserved_name_ellipsis_and_never_disclosable() {
    let f = fx();
    for name in ["...", "iss", "cnf", "vct", "status", "exp"] {
        let d = Disclosure::new("c2FsdHNhbHRzYWx0".into(), name.into(), json!("x"));
        let lic = licence_with_extra_disclosures(&f, std::slice::from_ref(&d));
        let p = format!("{}~{}~", issuer_jwt(&lic), d.encoded);
        assert_eq!(
            f.verify(&f.with_kb(&p, &f.w.holder, |_, _| {}))
                .unwrap_err(),
            Rejection::ReservedClaimName,
            "{name}"
        );
    }
}

#[test]
fn n40_two_disclosures_with_the_same_name() {
    let f = fx();
    let a = Disclosure::new(
        "YWFhYWFhYWFhYWFhYWFh".into(),
        "holder_name".into(),
        json!("甲"),
    );
    let b = Disclosure::new(
        "YmJiYmJiYmJiYmJiYmJi".into(),
        "holder_name".into(),
        json!("乙"),
    );
    let lic = licence_with_extra_disclosures(&f, &[a.clone(), b.clone()]);
    let p = format!("{}~{}~{}~", issuer_jwt(&lic), a.encoded, b.encoded);
    f.rejects(
        &f.with_kb(&p, &f.w.holder, |_, _| {}),
        Rejection::ClaimNameConflict,
    );
}

#[test]
fn n41_duplicate_digest_in_sd() {
    let f = fx();
    let p = f.present_edited(|_, p| {
        let sd = p.get_mut("_sd").unwrap().as_array_mut().unwrap();
        let first = sd[0].clone();
        sd.push(first);
    });
    f.rejects(&p, Rejection::DigestDuplicate);
}

#[test]
fn n42_unsupported_sd_alg() {
    let f = fx();
    let p = f.present_edited(|_, p| {
        p.insert("_sd_alg".into(), json!("sha-512"));
    });
    f.rejects(&p, Rejection::UnsupportedDigestAlgorithm);
}

#[test]
fn n43_disclosed_licence_id_with_wrong_check_character() {
    let f = fx();
    let claims = DemoWorld::typical_claims(3);
    let id = claims["licence_id"].as_str().unwrap().to_owned();
    let last = id.chars().last().unwrap();
    let wrong = format!(
        "{}{}",
        &id[..id.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    // The issuer validates ids, so forge the disclosure into a re-signed licence.
    let d = Disclosure::new("c2FsdHNhbHRzYWx0".into(), "licence_id".into(), json!(wrong));
    let lic = licence_with_extra_disclosures(&f, std::slice::from_ref(&d));
    let p = format!("{}~{}~", issuer_jwt(&lic), d.encoded);
    f.rejects(
        &f.with_kb(&p, &f.w.holder, |_, _| {}),
        Rejection::InvalidClaim("licence_id"),
    );
}

// ---------------------------------------------------------------- key binding

#[test]
fn n44_kb_missing_when_required() {
    let f = fx();
    f.rejects(&f.unbound(), Rejection::KeyBindingMissing);
}

#[test]
fn n45_kb_signed_by_wrong_key() {
    let mut f = fx();
    let thief = KeyPair::generate(&mut f.rng);
    f.rejects(
        &f.with_kb(&f.unbound(), &thief, |_, _| {}),
        Rejection::KeyBindingSignature,
    );
}

#[test]
fn n46_kb_wrong_aud() {
    let f = fx();
    let p = f.with_kb(&f.unbound(), &f.w.holder, |_, p| {
        p.insert("aud".into(), json!("another-verifier"));
    });
    f.rejects(&p, Rejection::KeyBindingAudience);
}

#[test]
fn n47_kb_wrong_nonce() {
    let f = fx();
    let p = f.with_kb(&f.unbound(), &f.w.holder, |_, p| {
        p.insert("nonce".into(), json!("old-nonce"));
    });
    f.rejects(&p, Rejection::KeyBindingNonce);
}

#[test]
fn n48_kb_stale_and_just_fresh() {
    let f = fx();
    let stale = f.with_kb(&f.unbound(), &f.w.holder, |_, p| {
        p.insert("iat".into(), json!(NOW - 90 - 300 - 1));
    });
    f.rejects(&stale, Rejection::KeyBindingStale);
    let fresh = f.with_kb(&f.unbound(), &f.w.holder, |_, p| {
        p.insert("iat".into(), json!(NOW - 90 - 300));
    });
    assert!(f.verify(&fresh).is_ok());
}

#[test]
fn n49_kb_in_the_future() {
    let f = fx();
    let p = f.with_kb(&f.unbound(), &f.w.holder, |_, p| {
        p.insert("iat".into(), json!(NOW + 301));
    });
    f.rejects(&p, Rejection::KeyBindingFuture);
}

#[test]
fn n50_sd_hash_mismatch_after_dropping_a_disclosure() {
    let f = fx();
    let p = f.present(&f.issued);
    let mut parts: Vec<&str> = p.split('~').collect();
    parts.remove(1);
    f.rejects(&parts.join("~"), Rejection::KeyBindingSdHash);
}

#[test]
fn n51_kb_alg_none_and_wrong_typ() {
    let f = fx();
    let sd = f.unbound();
    let none = format!(
        "{sd}{}.{}.",
        b64e(r#"{"alg":"none","typ":"kb+jwt"}"#),
        b64e(
            json!({"iat": NOW, "aud": "inspection", "nonce": NONCE, "sd_hash": sha256_b64(&sd)})
                .to_string()
        )
    );
    f.rejects(&none, Rejection::AlgorithmNotAllowed(Part::KeyBinding));
    let jwt = f.with_kb(&sd, &f.w.holder, |h, _| {
        h.insert("typ".into(), json!("JWT"));
    });
    f.rejects(&jwt, Rejection::WrongType(Part::KeyBinding));
}

#[test]
fn n52_wrong_holder() {
    let mut f = fx();
    let mut p = policy();
    p.expected_holder = Some(KeyPair::generate(&mut f.rng).public().into());
    assert_eq!(
        f.verify_with(&f.present(&f.issued), &p, NOW).unwrap_err(),
        Rejection::WrongHolder
    );
}

#[test]
fn n53_kb_on_a_licence_without_holder_key() {
    let f = fx();
    let lic = f.resign(|_, p| {
        p.remove("cnf");
    });
    let p = lic.split('~').take(3).collect::<Vec<_>>().join("~") + "~";
    f.rejects(
        &f.with_kb(&p, &f.w.holder, |_, _| {}),
        Rejection::HolderKeyMissing,
    );
}

// ---------------------------------------------------------------- status

fn set_status(f: &mut Fx, idx: u64, status: Status) {
    f.w.status_lists[0].set(idx, status).unwrap();
    f.w.republish_status(NOW + 1);
}

#[test]
fn n54_revoked() {
    let mut f = fx();
    set_status(&mut f, 7, Status::Revoked);
    f.rejects(&f.present(&f.issued), Rejection::Revoked);
}

#[test]
fn n55_suspended_then_reinstated() {
    let mut f = fx();
    set_status(&mut f, 7, Status::Suspended);
    f.rejects(&f.present(&f.issued), Rejection::Suspended);
    f.w.status_lists[0].set(7, Status::Valid).unwrap();
    f.w.republish_status(NOW + 2);
    assert!(f.verify(&f.present(&f.issued)).is_ok());
}

#[test]
fn n56_status_list_stale() {
    let f = fx();
    // The demo lists expire a day after NOW; the bundle is good for 30 days.
    let later = NOW + DAY + 301;
    let p = f.w.present_typical(&f.issued, NONCE, later).unwrap();
    assert_eq!(
        f.verify_with(&p, &policy(), later).unwrap_err(),
        Rejection::StatusListStale
    );
}

#[test]
fn n57_status_list_missing() {
    let f = fx();
    let empty = StatusListCache::new();
    let r = verify_presentation(&f.present(&f.issued), &f.w.bundle, &empty, &policy(), NOW);
    assert_eq!(r.unwrap_err(), Rejection::StatusListMissing);
}

#[test]
fn n58_status_list_signed_by_a_stranger_or_tampered() {
    let mut f = fx();
    let stranger = KeyPair::generate(&mut f.rng);
    let uri = demo::status_uri(&MARKET_REGULATION);
    let list = StatusList::new(16);
    let token = StatusListToken {
        uri: &uri,
        list: &list,
        iat: NOW,
        exp: None,
        ttl: None,
    }
    .sign(&stranger);
    assert_eq!(
        VerifiedStatusList::verify(&token, &f.w.bundle).unwrap_err(),
        Rejection::StatusListSignature
    );
    // A real token with its payload swapped keeps the issuer's kid but not its signature.
    let real = f.w.status_token(0, NOW).unwrap();
    let fake = token.split('.').nth(1).unwrap();
    let parts: Vec<&str> = real.split('.').collect();
    let tampered = format!("{}.{fake}.{}", parts[0], parts[2]);
    assert_eq!(
        VerifiedStatusList::verify(&tampered, &f.w.bundle).unwrap_err(),
        Rejection::StatusListSignature
    );
}

#[test]
fn n59_status_list_of_another_issuer() {
    let f = fx();
    // Public security signs a list under market regulation's URI.
    let uri = demo::status_uri(&MARKET_REGULATION);
    let list = StatusList::new(4096);
    let token = StatusListToken {
        uri: &uri,
        list: &list,
        iat: NOW + 5,
        exp: None,
        ttl: None,
    }
    .sign(f.w.issuers[1].key());
    assert_eq!(
        VerifiedStatusList::verify(&token, &f.w.bundle).unwrap_err(),
        Rejection::StatusListIssuerMismatch
    );
}

#[test]
fn n60_status_index_out_of_range() {
    let f = fx();
    let p = f.present_edited(|_, p| {
        p["status"]["status_list"]["idx"] = json!(4096);
    });
    f.rejects(&p, Rejection::StatusIndexOutOfRange);
}

#[test]
fn n61_status_value_three_is_not_valid() {
    let mut f = fx();
    f.w.status_lists[0] = StatusList::from_bytes(2, vec![0xff; 1024]).unwrap();
    f.w.republish_status(NOW + 1);
    f.rejects(&f.present(&f.issued), Rejection::StatusUnrecognized);
}

#[test]
fn n62_status_reference_missing() {
    let f = fx();
    let p = f.present_edited(|_, p| {
        p.remove("status");
    });
    f.rejects(&p, Rejection::MissingClaim("status"));
}

#[test]
fn n63_older_status_list_never_replaces_newer() {
    let mut f = fx();
    let old = f.w.status_token(0, NOW - 10).unwrap();
    set_status(&mut f, 7, Status::Revoked);
    assert!(
        !f.w.status_cache.insert_token(&old, &f.w.bundle).unwrap(),
        "older list refused"
    );
    f.rejects(&f.present(&f.issued), Rejection::Revoked);
}

#[test]
fn n70_revocation_republished_in_the_same_second_takes_effect() {
    let mut f = fx();
    // The cache holds the list signed at NOW; revoke and republish at NOW again.
    f.w.status_lists[0].set(7, Status::Revoked).unwrap();
    let same_second = f.w.status_token(0, NOW).unwrap();
    assert!(
        f.w.status_cache
            .insert_token(&same_second, &f.w.bundle)
            .unwrap()
    );
    assert!(
        !f.w.status_cache
            .insert_token(&same_second, &f.w.bundle)
            .unwrap(),
        "identical token is a no-op"
    );
    f.rejects(&f.present(&f.issued), Rejection::Revoked);
}

// ---------------------------------------------------------------- trust bundle

#[test]
fn n64_bundle_signed_by_a_wrong_root() {
    let mut f = fx();
    let fake_root = KeyPair::generate(&mut f.rng);
    let jws = f.w.bundle_content.sign(&fake_root).unwrap();
    assert_eq!(
        TrustBundle::verify(&jws, &[f.w.root.public()], None).unwrap_err(),
        Rejection::BundleSignature
    );
    // Even claiming the real root's kid.
    let (_, p) = decode_jwt(&jws);
    let lie = sign_raw(
        &json!({"alg":"EdDSA","typ":"trust-bundle+jwt","kid": f.w.root.kid()}),
        &Value::Object(p),
        &fake_root,
    );
    assert_eq!(
        TrustBundle::verify(&lie, &[f.w.root.public()], None).unwrap_err(),
        Rejection::BundleSignature
    );
}

#[test]
fn n65_bundle_rollback() {
    let f = fx();
    let mut v2 = f.w.bundle_content.clone();
    v2.version = 2;
    let v2 = TrustBundle::verify(
        &v2.sign(&f.w.root).unwrap(),
        &[f.w.root.public()],
        Some(&f.w.bundle),
    )
    .unwrap();
    let v1 = f.w.bundle.jws();
    assert_eq!(
        TrustBundle::verify(v1, &[f.w.root.public()], Some(&v2)).unwrap_err(),
        Rejection::BundleRollback
    );
    // Same version, different content: refused too.
    let mut other = f.w.bundle_content.clone();
    other.version = 2;
    other.issuers.pop();
    let other = other.sign(&f.w.root).unwrap();
    assert_eq!(
        TrustBundle::verify(&other, &[f.w.root.public()], Some(&v2)).unwrap_err(),
        Rejection::BundleRollback
    );
    // Same version, same content: idempotent.
    assert!(TrustBundle::verify(v2.jws(), &[f.w.root.public()], Some(&v2)).is_ok());
}

#[test]
fn n66_bundle_stale() {
    let f = fx();
    let later = NOW + 30 * DAY + 301;
    let p = f.w.present_typical(&f.issued, NONCE, later).unwrap();
    assert_eq!(
        f.verify_with(&p, &policy(), later).unwrap_err(),
        Rejection::BundleStale
    );
}

#[test]
fn n67_clock_before_the_bundle() {
    let f = fx();
    let earlier = NOW - 3600;
    let p = f.w.present_typical(&f.issued, NONCE, earlier).unwrap();
    let err = f.verify_with(&p, &policy(), earlier).unwrap_err();
    assert_eq!(err, Rejection::ClockSuspect);
    assert_eq!(err.class(), VerdictClass::ClockSuspect);
}

#[test]
fn n68_bundle_with_a_kid_that_is_not_the_thumbprint() {
    let f = fx();
    let mut content = f.w.bundle_content.clone();
    content.issuers[0].keys[0].kid = f.w.issuers[1].key().kid();
    let jws = content.sign(&f.w.root).unwrap();
    assert_eq!(
        TrustBundle::verify(&jws, &[f.w.root.public()], None).unwrap_err(),
        Rejection::BundleMalformed
    );
}

#[test]
fn n69_bundle_with_wrong_typ() {
    let f = fx();
    let (_, p) = decode_jwt(f.w.bundle.jws());
    let jws = sign_raw(
        &json!({"alg":"EdDSA","typ":"JWT","kid": f.w.root.kid()}),
        &Value::Object(p),
        &f.w.root,
    );
    assert_eq!(
        TrustBundle::verify(&jws, &[f.w.root.public()], None).unwrap_err(),
        Rejection::WrongType(Part::TrustBundle)
    );
}

// ---------------------------------------------------------------- the codes themselves

#[test]
fn every_rejection_has_a_distinct_code_and_texts() {
    let all = [
        Rejection::Empty,
        Rejection::TooLarge,
        Rejection::SdJwtStructure,
        Rejection::JwsSegments(Part::IssuerJwt),
        Rejection::JwsSegments(Part::KeyBinding),
        Rejection::Base64(Part::Disclosure),
        Rejection::Json(Part::IssuerJwt),
        Rejection::DuplicateJsonMember(Part::IssuerJwt),
        Rejection::AlgorithmNotAllowed(Part::IssuerJwt),
        Rejection::AlgorithmNotAllowed(Part::KeyBinding),
        Rejection::WrongType(Part::TrustBundle),
        Rejection::CriticalHeader(Part::IssuerJwt),
        Rejection::MissingKid,
        Rejection::UnknownKid,
        Rejection::BadSignature,
        Rejection::IssuerUnknown,
        Rejection::IssuerNotAuthorizedForType,
        Rejection::IssuerKeyOutsideWindow,
        Rejection::MissingClaim("iat"),
        Rejection::InvalidClaim("exp"),
        Rejection::Expired,
        Rejection::NotYetValid,
        Rejection::IssuedInFuture,
        Rejection::DisclosureMalformed,
        Rejection::DisclosureNotReferenced,
        Rejection::DisclosureDuplicate,
        Rejection::DigestDuplicate,
        Rejection::ReservedClaimName,
        Rejection::ClaimNameConflict,
        Rejection::UnsupportedDigestAlgorithm,
        Rejection::KeyBindingMissing,
        Rejection::HolderKeyMissing,
        Rejection::KeyBindingSignature,
        Rejection::KeyBindingAudience,
        Rejection::KeyBindingNonce,
        Rejection::KeyBindingStale,
        Rejection::KeyBindingFuture,
        Rejection::KeyBindingSdHash,
        Rejection::WrongHolder,
        Rejection::Revoked,
        Rejection::Suspended,
        Rejection::StatusUnrecognized,
        Rejection::StatusListMissing,
        Rejection::StatusListStale,
        Rejection::StatusListSignature,
        Rejection::StatusListIssuerMismatch,
        Rejection::StatusIndexOutOfRange,
        Rejection::StatusListMalformed,
        Rejection::BundleSignature,
        Rejection::BundleRollback,
        Rejection::BundleStale,
        Rejection::BundleMalformed,
        Rejection::ClockSuspect,
        Rejection::UnreadableCode,
        Rejection::Replayed,
        Rejection::PrintedCardExpired,
        Rejection::PrintedCardInvalid,
    ];
    let mut codes = std::collections::HashSet::new();
    for r in &all {
        assert!(codes.insert(r.code()), "duplicate code {}", r.code());
        assert!(!r.zh().is_empty() && !r.en().is_empty());
        assert!(
            r.code()
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == ':'),
            "{}",
            r.code()
        );
    }
    assert_eq!(Rejection::Revoked.code(), "revoked");
    assert_eq!(
        Rejection::AlgorithmNotAllowed(Part::KeyBinding).code(),
        "kb_jwt_alg_not_allowed"
    );
    assert_eq!(Rejection::Revoked.class(), VerdictClass::Revoked);
    assert_eq!(Rejection::BadSignature.class(), VerdictClass::Forged);
    assert_eq!(
        Rejection::KeyBindingSignature.class(),
        VerdictClass::WrongHolder
    );
}
