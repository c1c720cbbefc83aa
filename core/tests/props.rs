//! Property tests of the verifier's robustness: arbitrary input never panics
//! and never verifies; a valid presentation, mutated in any way, never panics
//! and never verifies (with the one exception SD-JWT allows by design: an
//! unbound presentation may lose disclosures and still verify, showing less).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::OnceLock;
use zhangban_core::credential::demo::{DemoWorld, MARKET_REGULATION, PUBLIC_SECURITY, status_uri};
use zhangban_core::credential::jose::{b64e, header, sign_compact};
use zhangban_core::credential::sd_jwt::Disclosure;
use zhangban_core::credential::status_list::TYP_STATUS_LIST;
use zhangban_core::credential::trust_bundle::TYP_TRUST_BUNDLE;
use zhangban_core::credential::*;

const NOW: i64 = 1_795_000_000; // 2026-11-18
const NONCE: &str = "props-nonce-81d2";
/// Verification time: inside every validity window of the world.
const VERIFY_AT: i64 = NOW + 5;

struct Fixture {
    world: DemoWorld,
    /// The issued typical licence (every disclosure, no key binding).
    issued: String,
    /// Its typical inspection presentation: 5 fields, key binding.
    bound: String,
    /// The same 5 fields without key binding (a printed card).
    unbound: String,
    /// The claims the presentations disclose, with their values.
    disclosed: BTreeMap<String, Value>,
    /// Disclosures of other licences issued to the same holder: the same
    /// licence type (other salts, other values) and another issuer's type.
    foreign: Vec<String>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut rng = StdRng::seed_from_u64(36_904);
        let world = DemoWorld::new(&mut rng, NOW);
        let issued = world.issue_typical(42, &mut rng).unwrap();
        let bound = world.present_typical(&issued, NONCE, NOW + 2).unwrap();
        let held = HeldLicence::parse(&issued).unwrap();
        let unbound = held.present(&DemoWorld::TYPICAL_DISCLOSED, None).unwrap();
        let disclosed: BTreeMap<String, Value> = held
            .claims()
            .into_iter()
            .filter(|(k, _)| DemoWorld::TYPICAL_DISCLOSED.contains(k))
            .map(|(k, v)| (k.to_owned(), v.clone()))
            .collect();
        assert_eq!(disclosed.len(), 5);

        let mut foreign = Vec::new();
        for serial in [42, 43] {
            let other = world.issue_typical(serial, &mut rng).unwrap();
            foreign.extend(disclosures_of(&other));
        }
        let residence = world
            .issue(1, residence_permit_claims(), 7, &mut rng)
            .unwrap();
        foreign.extend(disclosures_of(&residence));
        assert!(foreign.len() >= 16);

        // The originals verify, or every property below is vacuous. (Not
        // through `verify`, which reads the fixture being built here.)
        let check = |text: &str, p: &VerifyPolicy| {
            verify_presentation(text, &world.bundle, &world.status_cache, p, VERIFY_AT)
        };
        for p in policies() {
            assert_eq!(check(&bound, &p).unwrap().claims, disclosed);
        }
        assert_eq!(
            check(&unbound, &VerifyPolicy::wallet()).unwrap().claims,
            disclosed
        );
        assert_eq!(
            check(&issued, &VerifyPolicy::wallet())
                .unwrap()
                .claims
                .len(),
            8
        );
        Fixture {
            world,
            issued,
            bound,
            unbound,
            disclosed,
            foreign,
        }
    })
}

fn residence_permit_claims() -> BTreeMap<String, Value> {
    let spec = PUBLIC_SECURITY;
    let id = LicenceId::new(spec.type_code, spec.code, "2026000007", 1).unwrap();
    serde_json::from_value(json!({
        "licence_name": spec.licence_name,
        "licence_id": id.to_string(),
        "licence_number": "川0511600123",
        "holder_name": "李四",
        "valid_from": "2026-01-01",
        "valid_until": "2030-12-31",
    }))
    .unwrap()
}

fn disclosures_of(issued: &str) -> Vec<String> {
    let segments: Vec<&str> = issued.split('~').collect();
    segments[1..segments.len() - 1]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
}

/// Two inspection policies (exact nonce, any nonce) and a wallet policy.
fn policies() -> [VerifyPolicy; 3] {
    [
        VerifyPolicy::required("inspection", NoncePolicy::Exact(NONCE.into())),
        VerifyPolicy::inspection(),
        VerifyPolicy::wallet(),
    ]
}

fn verify(text: &str, policy: &VerifyPolicy) -> Result<VerifiedLicence, Rejection> {
    let w = &fixture().world;
    verify_presentation(text, &w.bundle, &w.status_cache, policy, VERIFY_AT)
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        // No regression files in the source tree; failures print their input.
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..Config::default()
    }
}

/// Text from the alphabet an SD-JWT is written in.
fn sd_jwt_alphabet(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            8 => proptest::char::ranges(vec!['A'..='Z', 'a'..='z', '0'..='9'].into()),
            1 => Just('-'),
            1 => Just('_'),
            2 => Just('.'),
            2 => Just('~'),
        ],
        0..max,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

/// Arbitrary JSON, a few levels deep.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        proptest::sample::select(vec![
            i64::MIN,
            i64::MIN + 1,
            -1,
            0,
            1,
            i64::MAX - 1,
            i64::MAX
        ])
        .prop_map(Value::from),
        Just(Value::from(u64::MAX)),
        any::<f64>().prop_map(Value::from),
        "[a-z_~.]{0,12}".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z_]{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A JSON object that merges arbitrary members over `base` (replacing or
/// adding some of its members), so that parsers get past their first checks.
fn json_near(base: Value, names: &'static [&'static str]) -> impl Strategy<Value = Value> {
    proptest::collection::vec(
        (
            prop_oneof![
                proptest::sample::select(names).prop_map(str::to_owned),
                "[a-z_]{1,8}"
            ],
            prop_oneof![1 => Just(None), 4 => arb_json().prop_map(Some)],
        ),
        0..4,
    )
    .prop_map(move |edits| {
        let mut obj = base.clone();
        for (name, value) in edits {
            if let Value::Object(m) = &mut obj {
                match value {
                    Some(v) => m.insert(name, v),
                    None => m.remove(&name),
                };
            }
        }
        obj
    })
}

// ---------------------------------------------------------------- mutations

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit { pos: usize, bit: u8 },
    ReplaceChar { pos: usize, c: char },
    DeleteRange { start: usize, len: usize },
    DuplicateRange { start: usize, len: usize },
    Insert { pos: usize, text: String },
    SwapSegments { i: usize, j: usize },
    Truncate { len: usize },
    DropDisclosure { i: usize },
    RepeatDisclosure { i: usize, at: usize },
    ReplaceDisclosure { i: usize, foreign: usize },
    AddForeignDisclosure { foreign: usize, at: usize },
    ShuffleDisclosures { seed: u64 },
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    let idx = || any::<usize>();
    prop_oneof![
        3 => (idx(), 0u8..8).prop_map(|(pos, bit)| Mutation::FlipBit { pos, bit }),
        2 => (idx(), prop_oneof![
            proptest::char::ranges(vec!['A'..='Z', 'a'..='z', '0'..='9'].into()),
            proptest::sample::select(vec!['-', '_', '.', '~', '=', '+', '/', ' ']),
            any::<char>(),
        ]).prop_map(|(pos, c)| Mutation::ReplaceChar { pos, c }),
        2 => (idx(), 1usize..64).prop_map(|(start, len)| Mutation::DeleteRange { start, len }),
        2 => (idx(), 1usize..64).prop_map(|(start, len)| Mutation::DuplicateRange { start, len }),
        2 => (idx(), prop_oneof![sd_jwt_alphabet(16), any::<String>()])
            .prop_map(|(pos, text)| Mutation::Insert { pos, text }),
        2 => (idx(), idx()).prop_map(|(i, j)| Mutation::SwapSegments { i, j }),
        1 => idx().prop_map(|len| Mutation::Truncate { len }),
        2 => idx().prop_map(|i| Mutation::DropDisclosure { i }),
        2 => (idx(), idx()).prop_map(|(i, at)| Mutation::RepeatDisclosure { i, at }),
        2 => (idx(), idx()).prop_map(|(i, foreign)| Mutation::ReplaceDisclosure { i, foreign }),
        1 => (idx(), idx())
            .prop_map(|(foreign, at)| Mutation::AddForeignDisclosure { foreign, at }),
        1 => any::<u64>().prop_map(|seed| Mutation::ShuffleDisclosures { seed }),
    ]
}

/// The disclosures (between the issuer JWT and the last `~`) and the tail.
fn split_presentation(text: &str) -> (String, Vec<String>, String) {
    let segments: Vec<&str> = text.split('~').collect();
    let last = segments.len() - 1;
    let head = segments[0].to_owned();
    let middle = segments[1..last.max(1)]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let tail = if last == 0 {
        String::new()
    } else {
        segments[last].to_owned()
    };
    (head, middle, tail)
}

fn join_presentation(head: &str, middle: &[String], tail: &str) -> String {
    let mut out = head.to_owned();
    out.push('~');
    for d in middle {
        out.push_str(d);
        out.push('~');
    }
    out.push_str(tail);
    out
}

/// The largest char boundary at or before `pos % (len + 1)`.
fn boundary(s: &str, pos: usize) -> usize {
    let mut p = pos % (s.len() + 1);
    while !s.is_char_boundary(p) {
        p -= 1;
    }
    p
}

fn apply(text: &str, m: &Mutation) -> String {
    let f = fixture();
    match m {
        Mutation::FlipBit { pos, bit } => {
            let mut bytes = text.as_bytes().to_vec();
            if !bytes.is_empty() {
                let p = pos % bytes.len();
                bytes[p] ^= 1 << bit;
            }
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Mutation::ReplaceChar { pos, c } => {
            let chars: Vec<char> = text.chars().collect();
            if chars.is_empty() {
                return c.to_string();
            }
            let p = pos % chars.len();
            chars
                .iter()
                .enumerate()
                .map(|(i, x)| if i == p { *c } else { *x })
                .collect()
        }
        Mutation::DeleteRange { start, len } => {
            let a = boundary(text, *start);
            let b = boundary(text, a.saturating_add(*len).min(text.len()));
            format!("{}{}", &text[..a], &text[b..])
        }
        Mutation::DuplicateRange { start, len } => {
            let a = boundary(text, *start);
            let b = boundary(text, a.saturating_add(*len).min(text.len()));
            format!("{}{}{}", &text[..b], &text[a..b], &text[b..])
        }
        Mutation::Insert { pos, text: t } => {
            let p = boundary(text, *pos);
            format!("{}{t}{}", &text[..p], &text[p..])
        }
        Mutation::SwapSegments { i, j } => {
            let mut segs: Vec<&str> = text.split('~').collect();
            let n = segs.len();
            segs.swap(i % n, j % n);
            segs.join("~")
        }
        Mutation::Truncate { len } => text[..boundary(text, *len)].to_owned(),
        Mutation::DropDisclosure { i } => {
            let (h, mut d, t) = split_presentation(text);
            if !d.is_empty() {
                let n = d.len();
                d.remove(i % n);
            }
            join_presentation(&h, &d, &t)
        }
        Mutation::RepeatDisclosure { i, at } => {
            let (h, mut d, t) = split_presentation(text);
            if !d.is_empty() {
                let x = d[i % d.len()].clone();
                let n = d.len() + 1;
                d.insert(at % n, x);
            }
            join_presentation(&h, &d, &t)
        }
        Mutation::ReplaceDisclosure { i, foreign } => {
            let (h, mut d, t) = split_presentation(text);
            if !d.is_empty() {
                let n = d.len();
                d[i % n] = f.foreign[foreign % f.foreign.len()].clone();
            }
            join_presentation(&h, &d, &t)
        }
        Mutation::AddForeignDisclosure { foreign, at } => {
            let (h, mut d, t) = split_presentation(text);
            let n = d.len() + 1;
            d.insert(at % n, f.foreign[foreign % f.foreign.len()].clone());
            join_presentation(&h, &d, &t)
        }
        Mutation::ShuffleDisclosures { seed } => {
            let (h, mut d, t) = split_presentation(text);
            let mut rng = StdRng::seed_from_u64(*seed);
            rand::seq::SliceRandom::shuffle(d.as_mut_slice(), &mut rng);
            join_presentation(&h, &d, &t)
        }
    }
}

fn apply_all(text: &str, ms: &[Mutation]) -> String {
    ms.iter().fold(text.to_owned(), |t, m| apply(&t, m))
}

/// What an accepted presentation derived from the typical one may say: the
/// same licence, no key binding, a subset of the disclosed claims with the
/// original values.
fn check_accepted_subset(v: &VerifiedLicence, mutated: &str) {
    let f = fixture();
    assert!(
        v.key_binding.is_none(),
        "a mutated presentation kept a key binding: {mutated:?}"
    );
    assert_eq!(v.issuer_id, MARKET_REGULATION.id);
    assert_eq!(v.status.as_ref().map(|s| s.idx), Some(42));
    for (name, value) in &v.claims {
        assert_eq!(
            f.disclosed.get(name),
            Some(value),
            "claim {name} not disclosed with this value originally; input {mutated:?}"
        );
    }
}

// ---------------------------------------------------------------- properties

proptest! {
    #![proptest_config(config(512))]

    /// Arbitrary bytes, read as (lossy) UTF-8, never panic and never verify.
    #[test]
    fn arbitrary_bytes_never_verify(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let text = String::from_utf8_lossy(&bytes);
        for p in policies() {
            prop_assert!(verify(&text, &p).is_err());
        }
    }

    /// Arbitrary text over the SD-JWT alphabet (base64url, `.`, `~`) never
    /// panics and never verifies.
    #[test]
    fn arbitrary_sd_jwt_text_never_verifies(text in sd_jwt_alphabet(3000)) {
        for p in policies() {
            prop_assert!(verify(&text, &p).is_err());
        }
    }
}

// Below, every case passes at least one Ed25519 check, which costs ~15 ms in
// an unoptimized build: each case verifies under one policy, drawn with the
// input, so that all three policies are covered within the time budget.

proptest! {
    #![proptest_config(config(128))]

    /// Arbitrary text behind the genuine issuer JWT (so parsing reaches the
    /// disclosures and the key binding) never verifies under inspection;
    /// a wallet accepts at most a subset of the typical claims, unbound.
    #[test]
    fn arbitrary_tail_after_genuine_issuer_jwt(
        tail in prop_oneof![sd_jwt_alphabet(400), any::<String>()],
        policy in 0usize..3,
    ) {
        let f = fixture();
        let head = f.bound.split('~').next().unwrap();
        let text = format!("{head}~{tail}");
        if text == f.bound {
            return Ok(());
        }
        check_mutated(&text, policy)?;
    }
}

proptest! {
    #![proptest_config(config(384))]

    /// Any change to a key-bound presentation is refused by an inspector:
    /// the KB-JWT's `sd_hash` covers the issuer JWT and every disclosure in
    /// order. A wallet (key binding not required) may accept only what a
    /// holder could have shown unbound: the KB-JWT cut off, disclosures
    /// dropped, nothing added or changed.
    #[test]
    fn mutated_bound_presentation_is_refused(
        ms in proptest::collection::vec(arb_mutation(), 1..4),
        policy in 0usize..3,
    ) {
        let f = fixture();
        let mutated = apply_all(&f.bound, &ms);
        if mutated == f.bound {
            return Ok(());
        }
        check_mutated(&mutated, policy)?;
    }

    /// An unbound presentation: no panic; an inspector always refuses it; a
    /// wallet accepts at most a subset of the original claims, unchanged.
    #[test]
    fn mutated_unbound_presentation_only_shrinks(
        ms in proptest::collection::vec(arb_mutation(), 1..4),
        policy in 0usize..3,
    ) {
        let f = fixture();
        let mutated = apply_all(&f.unbound, &ms);
        if mutated == f.unbound {
            return Ok(());
        }
        check_mutated(&mutated, policy)?;
    }
}

/// Verifies text derived from the typical presentation (but not equal to
/// it) under policy `i` of [`policies`]: the inspection policies refuse it; the
/// wallet policy may accept only an unbound subset (see [`check_accepted_subset`]).
fn check_mutated(text: &str, i: usize) -> Result<(), TestCaseError> {
    let policy = &policies()[i];
    match verify(text, policy) {
        Err(_) => {}
        Ok(v) if matches!(policy.key_binding, KeyBindingPolicy::NotRequired) => {
            check_accepted_subset(&v, text);
        }
        Ok(v) => {
            return Err(TestCaseError::fail(format!(
                "policy {i} accepted {text:?}: {v:?}"
            )));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(512))]

    /// The structural readers never panic on arbitrary text.
    #[test]
    fn readers_never_panic_on_arbitrary_text(
        text in prop_oneof![sd_jwt_alphabet(2000), any::<String>()],
    ) {
        let f = fixture();
        if let Ok(held) = HeldLicence::parse(&text) {
            let _ = held.issued();
            let _ = held.holder_key();
            let fields: Vec<&str> = held.claims().into_keys().collect();
            let _ = held.present(&fields, None);
        }
        let _ = Disclosure::parse(&text);
        let roots = [f.world.root.public()];
        let _ = TrustBundle::verify(&text, &roots, None);
        let _ = TrustBundle::verify(&text, &roots, Some(&f.world.bundle));
        let _ = VerifiedStatusList::verify(&text, &f.world.bundle);
    }

    /// `HeldLicence::parse` of a mutated issued licence never panics, nor
    /// does presenting what it parsed.
    #[test]
    fn held_licence_parse_of_mutated_issued(ms in proptest::collection::vec(arb_mutation(), 1..4)) {
        let f = fixture();
        let mutated = apply_all(&f.issued, &ms);
        if let Ok(held) = HeldLicence::parse(&mutated) {
            let fields: Vec<&str> = held.claims().into_keys().collect();
            let _ = held.present(&fields, None);
            let kb = KeyBindingRequest {
                key: &f.world.holder,
                audience: "inspection",
                nonce: NONCE,
                iat: NOW,
            };
            let _ = held.present(&fields[..fields.len().min(2)], Some(kb));
        }
    }

    /// `Disclosure::parse` of base64url over arbitrary bytes and arbitrary
    /// JSON never panics; what it accepts re-encodes to its own digest input.
    #[test]
    fn disclosure_parse_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        value in arb_json(),
    ) {
        let _ = Disclosure::parse(&b64e(&bytes));
        let encoded = b64e(value.to_string());
        if let Ok(d) = Disclosure::parse(&encoded) {
            prop_assert_eq!(&d.encoded, &encoded);
            let _ = d.digest();
        }
    }

    /// `StatusList::from_json` never panics, on arbitrary JSON, on arbitrary
    /// base64url, and on arbitrary zlib streams; `get` never panics.
    #[test]
    fn status_list_from_json_never_panics(
        value in arb_json(),
        bits in prop_oneof![Just(0u64), Just(1), Just(2), Just(4), Just(8), any::<u64>()],
        raw in proptest::collection::vec(any::<u8>(), 0..600),
        index in any::<u64>(),
    ) {
        let _ = StatusList::from_json(&value);
        let _ = StatusList::from_json(&json!({"bits": bits, "lst": b64e(&raw)}));
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&raw).unwrap();
        let zlib = enc.finish().unwrap();
        if let Ok(list) = StatusList::from_json(&json!({"bits": bits, "lst": b64e(&zlib)})) {
            prop_assert_eq!(list.as_bytes(), raw.as_slice());
            let _ = list.get(index);
            let _ = list.get(index % (list.len() + 1));
        }
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// Trust bundles signed by the pinned root with arbitrary (near-valid)
    /// content: `TrustBundle::verify` never panics.
    #[test]
    fn root_signed_arbitrary_bundle_never_panics(
        payload in prop_oneof![
            arb_json(),
            json_near(bundle_json(), &["version", "iat", "max_staleness", "issuers"]),
            arb_issuer().prop_map(|i| {
                let mut b = bundle_json();
                b["issuers"].as_array_mut().unwrap().push(i);
                b
            }),
        ],
        typ in prop_oneof![4 => Just(TYP_TRUST_BUNDLE.to_owned()), 1 => "[a-z+-]{0,20}"],
        current in any::<bool>(),
    ) {
        let f = fixture();
        let root = &f.world.root;
        let jws = sign_compact(header(&typ, Some(&root.kid())), &payload, root.signing_key());
        let current = current.then_some(&f.world.bundle);
        // (`check_time` on what it accepts is not exercised here: see
        // `root_signed_never_stale_bundle_does_not_overflow` below.)
        let _ = TrustBundle::verify(&jws, &[root.public()], current);
    }

    /// Status list tokens signed by a genuine issuer key with arbitrary
    /// (near-valid) payloads: `VerifiedStatusList::verify` never panics.
    #[test]
    fn issuer_signed_arbitrary_status_list_never_panics(
        payload in prop_oneof![
            arb_json(),
            json_near(status_token_json(), &["sub", "iat", "exp", "ttl", "status_list"]),
        ],
        issuer in 0usize..3,
    ) {
        let f = fixture();
        let key = f.world.issuers[issuer].key();
        let header = header(TYP_STATUS_LIST, Some(&key.kid()));
        let jws = sign_compact(header, &payload, key.signing_key());
        // (`is_fresh` on what it accepts is not exercised here: see
        // `status_list_with_far_exp_does_not_overflow` below.)
        let _ = VerifiedStatusList::verify(&jws, &f.world.bundle);
    }
}

/// The world's bundle content as JSON.
fn bundle_json() -> Value {
    serde_json::to_value(&fixture().world.bundle_content).unwrap()
}

/// A genuine status list token's payload (market regulation's).
fn status_token_json() -> Value {
    let f = fixture();
    json!({
        "sub": status_uri(&MARKET_REGULATION),
        "iat": NOW,
        "exp": NOW + 86_400,
        "ttl": 3600,
        "status_list": f.world.status_lists[0].to_json(),
    })
}

/// An issuer entry with arbitrary members, keys sometimes genuine.
fn arb_issuer() -> impl Strategy<Value = Value> {
    let genuine = {
        let f = fixture();
        let k = f.world.holder.public();
        json!({"kid": k.thumbprint(), "jwk": k.to_jwk(), "not_before": 0, "not_after": 1})
    };
    let key = prop_oneof![
        Just(genuine.clone()),
        json_near(genuine, &["kid", "jwk", "not_before", "not_after"]),
        arb_json(),
    ];
    (
        "[a-z:]{0,12}",
        proptest::collection::vec(key, 0..3),
        proptest::collection::vec("[a-z:/]{0,12}", 0..3),
        any::<bool>(),
    )
        .prop_map(|(id, keys, lists, dup)| {
            let f = fixture();
            let id = if dup {
                f.world.bundle_content.issuers[0].id.clone()
            } else {
                id
            };
            json!({
                "id": id, "name": "x", "code": "y", "keys": keys,
                "licence_types": ["t"], "status_lists": lists,
            })
        })
}

// ------------------------------------------------- regressions: time arithmetic at the extremes
//
// Found by the properties above: time arithmetic on signed values overflowed
// (a panic in debug builds, a wrong verdict in release builds). Now saturating.

/// A bundle the root signs as "never stale" (`max_staleness` = `i64::MAX`):
/// `TrustBundle::check_time` computes `iat + max_staleness + skew`, which
/// used to overflow (debug: panic; release: `BundleStale` for every licence).
#[test]
fn root_signed_never_stale_bundle_does_not_overflow() {
    let f = fixture();
    let mut content = f.world.bundle_content.clone();
    content.version = 2;
    content.max_staleness = i64::MAX;
    let jws = content.sign(&f.world.root).unwrap();
    let bundle = TrustBundle::verify(&jws, &[f.world.root.public()], None).unwrap();
    assert_eq!(bundle.check_time(VERIFY_AT, 300), Ok(()));
}

/// A status list token an issuer signs with `exp` = `i64::MAX`:
/// `VerifiedStatusList::is_fresh` computes `exp + skew`, which used to overflow
/// (debug: panic inside `verify_presentation`; release: `StatusListStale`).
#[test]
fn status_list_with_far_exp_does_not_overflow() {
    let f = fixture();
    let uri = status_uri(&MARKET_REGULATION);
    let token = StatusListToken {
        uri: &uri,
        list: &f.world.status_lists[0],
        iat: NOW + 1,
        exp: Some(i64::MAX),
        ttl: None,
    }
    .sign(f.world.issuers[0].key());
    let mut cache = f.world.status_cache.clone();
    assert_eq!(cache.insert_token(&token, &f.world.bundle), Ok(true));
    let v = verify_presentation(
        &f.bound,
        &f.world.bundle,
        &cache,
        &VerifyPolicy::wallet(),
        VERIFY_AT,
    );
    assert!(v.is_ok(), "{v:?}");
}

/// An absurd verifier clock (`now` = `i64::MAX`): `check_time` computes
/// `now + skew`, which used to overflow (debug: panic; release: `ClockSuspect`).
#[test]
fn extreme_now_does_not_overflow() {
    let f = fixture();
    for (now, expected) in [
        (i64::MAX, Rejection::BundleStale),
        (i64::MIN, Rejection::ClockSuspect),
    ] {
        let v = verify_presentation(
            &f.bound,
            &f.world.bundle,
            &f.world.status_cache,
            &VerifyPolicy::inspection(),
            now,
        );
        assert_eq!(v.unwrap_err(), expected);
    }
}
