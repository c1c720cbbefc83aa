//! Showing a licence to an inspector, offline, with an injected clock: every
//! verdict an inspector can get (valid, expired, not yet valid, revoked,
//! suspended, untrusted issuer, forged, wrong holder, stale, replayed, stale
//! trust data, clock suspect, unreadable), printed cards, the compact QR
//! transport (round trip, strictness), and QR images read back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use zhangban_core::credential::demo::{DAY, DemoWorld};
use zhangban_core::credential::{
    HeldLicence, KeyBindingRequest, KeyPair, Status, StatusListCache, TrustBundle,
};
use zhangban_core::inspection::compact::{self, CompactError};
use zhangban_core::inspection::qr::{Qr, read_png};
use zhangban_core::inspection::showing::{AUD_PRINT, MAX_PRINT_VALIDITY_SECS};
use zhangban_core::inspection::{Inspector, ShowMode, present_dynamic, present_printable};

const NOW: i64 = 1_795_000_000;

struct Fx {
    w: DemoWorld,
    held: HeldLicence,
    rng: StdRng,
}

fn fx() -> Fx {
    let mut rng = StdRng::seed_from_u64(5);
    let w = DemoWorld::new(&mut rng, NOW);
    let issued = w.issue_typical(7, &mut rng).unwrap();
    let held = HeldLicence::parse(&issued).unwrap();
    Fx { w, held, rng }
}

impl Fx {
    /// An inspector whose trust data (same keys, a newer bundle, status
    /// lists) was synced at `t`.
    fn inspector_at(&self, t: i64) -> Inspector {
        let mut content = self.w.bundle_content.clone();
        content.version = 2;
        content.iat = t;
        let bundle = TrustBundle::verify(
            &content.sign(&self.w.root).unwrap(),
            &[self.w.root.public()],
            None,
        )
        .unwrap();
        let mut cache = StatusListCache::new();
        for i in 0..3 {
            cache
                .insert_token(&self.w.status_token(i, t).unwrap(), &bundle)
                .unwrap();
        }
        Inspector::new(Some(bundle), cache, Some(t))
    }
    fn inspector(&self) -> Inspector {
        Inspector::new(
            Some(self.w.bundle.clone()),
            self.w.status_cache.clone(),
            Some(NOW - 600),
        )
    }
    fn dynamic(&mut self, at: i64, nonce: Option<&str>) -> Vec<u8> {
        present_dynamic(
            &self.held,
            &DemoWorld::TYPICAL_DISCLOSED,
            &self.w.holder,
            nonce,
            at,
            &mut self.rng,
        )
        .unwrap()
        .frame
    }
}

fn assert_verdict(v: &zhangban_core::inspection::InspectionVerdict, code: &str, class: &str) {
    assert_eq!((v.code.as_str(), v.class.as_str()), (code, class), "{v:?}");
    assert!(!v.zh.is_empty() && !v.en.is_empty());
    assert_eq!(v.valid, code == "valid");
}

#[test]
fn a_fresh_dynamic_presentation_is_valid_bound_and_shows_only_what_was_chosen() {
    let mut f = fx();
    let insp = f.inspector();
    let frame = f.dynamic(NOW, None);
    let v = insp.verify(&frame, None, NOW + 5);
    assert_verdict(&v, "valid", "valid");
    assert!(v.bound);
    assert_eq!(v.mode, Some(ShowMode::Dynamic));
    assert_eq!(
        v.trust_data_age_secs,
        Some(605),
        "the age of the trust data is shown"
    );
    let l = v.licence.unwrap();
    let shown: Vec<&str> = l.claims.keys().map(String::as_str).collect();
    let mut want = DemoWorld::TYPICAL_DISCLOSED.to_vec();
    want.sort_unstable();
    assert_eq!(shown, want);
    assert!(!l.claims.contains_key("licence_id"));
    assert_eq!(l.vct, "urn:zhangban:licence-type:11100000000013338W050");
    // The same presentation as SD-JWT text (a scanner that hands over text).
    let text = compact::decode(&frame).unwrap();
    let insp2 = f.inspector();
    assert_verdict(&insp2.verify(text.as_bytes(), None, NOW), "valid", "valid");
}

#[test]
fn a_second_scan_of_the_same_code_is_a_replay() {
    let mut f = fx();
    let insp = f.inspector();
    let frame = f.dynamic(NOW, None);
    assert!(insp.verify(&frame, None, NOW).valid);
    assert_verdict(
        &insp.verify(&frame, None, NOW + 1),
        "replayed",
        "stale_presentation",
    );
    // Another fresh presentation of the same licence is fine.
    assert!(insp.verify(&f.dynamic(NOW + 2, None), None, NOW + 2).valid);
    // A forged code never enters the replay cache.
    let before = insp.replay_cache_len();
    let mut bad = f.dynamic(NOW, None);
    let n = bad.len();
    bad[n - 1] ^= 1;
    assert!(!insp.verify(&bad, None, NOW).valid);
    assert_eq!(insp.replay_cache_len(), before);
}

#[test]
fn freshness_window_and_the_inspectors_own_nonce() {
    let mut f = fx();
    let insp = f.inspector();
    // 90 s window plus 300 s skew: inside is valid, one second beyond is stale.
    assert!(insp.verify(&f.dynamic(NOW, None), None, NOW + 390).valid);
    assert_verdict(
        &insp.verify(&f.dynamic(NOW, None), None, NOW + 391),
        "kb_stale",
        "stale_presentation",
    );
    // Made "in the future" beyond the skew.
    assert_verdict(
        &insp.verify(&f.dynamic(NOW + 400, None), None, NOW),
        "kb_iat_in_future",
        "stale_presentation",
    );
    // The inspector showed a nonce: only that nonce is accepted.
    let mine = f.dynamic(NOW, Some("inspector-screen-nonce-1"));
    assert!(
        insp.verify(&mine, Some("inspector-screen-nonce-1"), NOW)
            .valid
    );
    let other = f.dynamic(NOW, Some("some-other-nonce"));
    assert_verdict(
        &insp.verify(&other, Some("inspector-screen-nonce-1"), NOW),
        "kb_nonce_mismatch",
        "stale_presentation",
    );
    // A presentation made for another verifier (a submission's aud).
    let for_server = f
        .held
        .present(
            &["licence_name"],
            Some(KeyBindingRequest {
                key: &f.w.holder,
                audience: "some-service-item",
                nonce: "n-1",
                iat: NOW,
            }),
        )
        .unwrap();
    assert_verdict(
        &insp.verify(for_server.as_bytes(), None, NOW),
        "kb_aud_mismatch",
        "stale_presentation",
    );
}

#[test]
fn validity_and_status_verdicts() {
    let mut f = fx();
    // Expired: a licence valid until 2026-12-31 (CST), inspected on
    // 2027-01-02 with trust data synced that day.
    let mut claims = DemoWorld::typical_claims(9);
    claims.insert("valid_until".into(), "2026-12-31".into());
    let issued = f.w.issue(0, claims, 9, &mut f.rng).unwrap();
    let held = HeldLicence::parse(&issued).unwrap();
    let t = 1_798_848_000; // 2027-01-02 00:00 UTC
    let frame = present_dynamic(&held, &["licence_name"], &f.w.holder, None, t, &mut f.rng)
        .unwrap()
        .frame;
    assert_verdict(
        &f.inspector_at(t).verify(&frame, None, t),
        "expired",
        "expired",
    );
    // The day before its end it is valid.
    let t0 = t - 2 * DAY;
    let frame = present_dynamic(&held, &["licence_name"], &f.w.holder, None, t0, &mut f.rng)
        .unwrap()
        .frame;
    assert_verdict(
        &f.inspector_at(t0).verify(&frame, None, t0),
        "valid",
        "valid",
    );

    // Not yet valid: valid from 2030.
    let mut claims = DemoWorld::typical_claims(10);
    claims.insert("valid_from".into(), "2030-01-01".into());
    let issued = f.w.issue(0, claims, 10, &mut f.rng).unwrap();
    let held = HeldLicence::parse(&issued).unwrap();
    let frame = present_dynamic(&held, &["licence_name"], &f.w.holder, None, NOW, &mut f.rng)
        .unwrap()
        .frame;
    assert_verdict(
        &f.inspector().verify(&frame, None, NOW),
        "not_yet_valid",
        "not_yet_valid",
    );

    // Revoked, then suspended (index 7 of the market-regulation list).
    f.w.status_lists[0].set(7, Status::Revoked).unwrap();
    f.w.republish_status(NOW + 10);
    let frame = f.dynamic(NOW + 20, None);
    assert_verdict(
        &f.inspector().verify(&frame, None, NOW + 20),
        "revoked",
        "revoked",
    );
    f.w.status_lists[0].set(7, Status::Suspended).unwrap();
    f.w.republish_status(NOW + 30);
    let frame = f.dynamic(NOW + 40, None);
    assert_verdict(
        &f.inspector().verify(&frame, None, NOW + 40),
        "suspended",
        "suspended",
    );
}

#[test]
fn untrusted_issuers_forgeries_and_wrong_holders() {
    let mut f = fx();
    let frame = f.dynamic(NOW, None);
    // An inspector whose bundle does not know the issuer.
    let mut content = f.w.bundle_content.clone();
    content.issuers.retain(|i| i.id != f.w.issuers[0].id());
    content.version = 2;
    let bundle = TrustBundle::verify(
        &content.sign(&f.w.root).unwrap(),
        &[f.w.root.public()],
        None,
    )
    .unwrap();
    let insp = Inspector::new(Some(bundle), StatusListCache::new(), Some(NOW));
    assert_verdict(
        &insp.verify(&frame, None, NOW),
        "issuer_unknown",
        "untrusted_issuer",
    );
    // One that knows it but not for this licence type.
    let mut content = f.w.bundle_content.clone();
    content.issuers[0].licence_types = vec!["urn:zhangban:licence-type:other".into()];
    content.version = 2;
    let bundle = TrustBundle::verify(
        &content.sign(&f.w.root).unwrap(),
        &[f.w.root.public()],
        None,
    )
    .unwrap();
    let insp = Inspector::new(Some(bundle), f.w.status_cache.clone(), Some(NOW));
    assert_verdict(
        &insp.verify(&frame, None, NOW),
        "issuer_unauthorized_type",
        "untrusted_issuer",
    );

    // A tampered disclosure value (re-encoded: the text transport).
    let text = compact::decode(&frame).unwrap();
    let mut parts: Vec<String> = text.split('~').map(str::to_owned).collect();
    let d = zhangban_core::credential::sd_jwt::Disclosure::parse(&parts[1]).unwrap();
    let forged =
        zhangban_core::credential::sd_jwt::Disclosure::new(d.salt, d.name, "假公司".into());
    parts[1] = forged.encoded;
    let v = f.inspector().verify(parts.join("~").as_bytes(), None, NOW);
    assert_eq!(v.class, "forged", "{v:?}");
    // A flipped bit in the issuer's signature inside the frame.
    let mut bad = frame.clone();
    let sig_at = bad.len() - 64 - 1; // last byte of the issuer signature (before the KB signature)
    bad[sig_at] ^= 0x40;
    let v = f.inspector().verify(&bad, None, NOW);
    assert!(
        !v.valid && (v.class == "forged" || v.class == "wrong_holder"),
        "{v:?}"
    );

    // Someone else's device signs the key binding.
    let thief = KeyPair::generate(&mut f.rng);
    let p = f
        .held
        .present(
            &["licence_name"],
            Some(KeyBindingRequest {
                key: &f.w.holder,
                audience: "inspection",
                nonce: "x",
                iat: NOW,
            }),
        )
        .unwrap();
    let (sd, _) = p.rsplit_once('~').unwrap();
    let header = serde_json::json!({"typ": "kb+jwt"})
        .as_object()
        .unwrap()
        .clone();
    let kb = zhangban_core::credential::jose::sign_compact(
        header,
        &serde_json::json!({"iat": NOW, "aud": "inspection", "nonce": "y",
            "sd_hash": zhangban_core::credential::jose::sha256_b64(&format!("{sd}~"))}),
        thief.signing_key(),
    );
    let v = f
        .inspector()
        .verify(format!("{sd}~{kb}").as_bytes(), None, NOW);
    assert_verdict(&v, "kb_signature_invalid", "wrong_holder");
    // No key binding at all.
    let bare = f.held.present(&["licence_name"], None).unwrap();
    assert_verdict(
        &f.inspector().verify(bare.as_bytes(), None, NOW),
        "kb_missing",
        "wrong_holder",
    );
}

#[test]
fn stale_trust_data_and_a_suspect_clock() {
    let mut f = fx();
    let frame = f.dynamic(NOW + 2 * DAY, None);
    // The status lists expired a day after NOW: the inspector must sync.
    let v = f.inspector().verify(&frame, None, NOW + 2 * DAY);
    assert_verdict(&v, "status_list_stale", "stale_trust_data");
    assert_eq!(v.trust_data_age_secs, Some(2 * DAY + 600));
    // No trust data at all.
    let none = Inspector::new(None, StatusListCache::new(), None);
    assert_verdict(
        &none.verify(&f.dynamic(NOW, None), None, NOW),
        "bundle_stale",
        "stale_trust_data",
    );
    // The bundle is past its maximum staleness (30 days).
    let frame = f.dynamic(NOW + 31 * DAY, None);
    assert_verdict(
        &f.inspector().verify(&frame, None, NOW + 31 * DAY),
        "bundle_stale",
        "stale_trust_data",
    );
    // The device clock is before the bundle was issued (beyond the skew).
    let frame = f.dynamic(NOW - 3600, None);
    assert_verdict(
        &f.inspector().verify(&frame, None, NOW - 3600),
        "clock_suspect",
        "clock_suspect",
    );
}

#[test]
fn unreadable_codes() {
    let f = fx();
    let insp = f.inspector();
    for junk in [
        &b""[..],
        b"hello",
        b"\x01",
        b"\x01\x05abc",
        b"\x09anything",
        &[0xff; 40][..],
        "没有波浪号".as_bytes(),
    ] {
        assert_verdict(
            &insp.verify(junk, None, NOW),
            "unreadable_code",
            "unreadable",
        );
    }
}

#[test]
fn printed_cards_are_valid_until_their_printed_date_and_unbound() {
    let f = fx();
    let all: Vec<String> = f.held.claims().keys().map(|k| (*k).to_owned()).collect();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let card = present_printable(&f.held, &all, &f.w.holder, NOW, 180 * DAY).unwrap();
    assert_eq!(
        card.mode,
        ShowMode::Printable {
            printed_at: NOW,
            valid_until: NOW + 180 * DAY
        }
    );
    // Scanned months later (with trust data as fresh as that day's sync).
    let day = NOW + 150 * DAY;
    let insp = f.inspector_at(day);
    let v = insp.verify(&card.frame, None, day);
    assert_verdict(&v, "valid", "valid");
    assert!(!v.bound, "a printed card does not prove who shows it");
    assert!(v.zh.contains("打印卡"));
    assert_eq!(
        v.mode,
        Some(ShowMode::Printable {
            printed_at: NOW,
            valid_until: NOW + 180 * DAY
        })
    );
    // The same card scanned twice is fine: it is meant to be shown again.
    assert!(insp.verify(&card.frame, None, day).valid);
    // After its printed validity (plus the skew).
    let after = NOW + 180 * DAY + 301;
    assert_verdict(
        &f.inspector_at(after).verify(&card.frame, None, after),
        "printed_card_expired",
        "expired",
    );
    let edge = NOW + 180 * DAY + 300;
    assert!(f.inspector_at(edge).verify(&card.frame, None, edge).valid);
    // A card cannot be printed for longer than the maximum …
    assert!(
        present_printable(&f.held, &all, &f.w.holder, NOW, MAX_PRINT_VALIDITY_SECS + 1).is_err()
    );
    assert!(present_printable(&f.held, &[], &f.w.holder, NOW, DAY).is_err());
    // … and a hand-made seal claiming so is refused.
    for nonce in [
        format!("print-until-{}", NOW + MAX_PRINT_VALIDITY_SECS + DAY),
        "print-until-".into(),
        "print-until-12x".into(),
        format!("print-until-{}", NOW - 1),
    ] {
        let p = f
            .held
            .present(
                &["licence_name"],
                Some(KeyBindingRequest {
                    key: &f.w.holder,
                    audience: AUD_PRINT,
                    nonce: &nonce,
                    iat: NOW,
                }),
            )
            .unwrap();
        assert_verdict(
            &f.inspector().verify(p.as_bytes(), None, NOW),
            "printed_card_invalid",
            "forged",
        );
    }
}

#[test]
fn qr_codes_of_typical_presentations_fit_and_read_back() {
    let mut f = fx();
    let all: Vec<String> = f.held.claims().keys().map(|k| (*k).to_owned()).collect();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let typical = f.dynamic(NOW, None);
    let full = present_dynamic(&f.held, &all, &f.w.holder, None, NOW, &mut f.rng)
        .unwrap()
        .frame;
    let printed = present_printable(&f.held, &all, &f.w.holder, NOW, 180 * DAY)
        .unwrap()
        .frame;
    for (label, frame, max_version) in [
        ("typical", &typical, 25),
        ("all 8", &full, 27),
        ("printed", &printed, 27),
    ] {
        let qr = Qr::new(frame).unwrap();
        assert!(
            qr.version() <= max_version,
            "{label}: version {}",
            qr.version()
        );
        let png = qr.to_png(4);
        let read = read_png(&png).unwrap();
        assert_eq!(
            read,
            vec![frame.clone()],
            "{label}: the image reads back to the exact bytes"
        );
        assert!(qr.to_svg(4).starts_with("<?xml") || qr.to_svg(4).contains("<svg"));
        let term = qr.to_terminal();
        assert_eq!(term.lines().count(), (qr.width() + 8).div_ceil(2));
    }
    assert_eq!(
        read_png(b"not a png"),
        Err(zhangban_core::inspection::qr::QrError::BadImage)
    );
    let blank = Qr::new(b"x").unwrap().to_png(2);
    assert!(read_png(&blank).is_ok());
    let card = zhangban_core::inspection::printable::card_svg(
        &Qr::new(&printed).unwrap(),
        &f.held
            .claims()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.clone()))
            .collect(),
        NOW,
        NOW + 180 * DAY,
    );
    assert!(card.contains("营业执照") && card.contains("有效期至") && card.contains("法定代表人"));
}

#[test]
fn the_frame_is_strict() {
    let mut f = fx();
    let frame = f.dynamic(NOW, None);
    assert_eq!(compact::decode(&[]), Err(CompactError::Empty));
    let mut v9 = frame.clone();
    v9[0] = 9;
    assert_eq!(compact::decode(&v9), Err(CompactError::UnknownVersion(9)));
    // Truncated anywhere, or with a byte more: refused, never a wrong text.
    for cut in [2, 10, frame.len() / 2, frame.len() - 1] {
        assert!(compact::decode(&frame[..cut]).is_err(), "cut at {cut}");
    }
    let mut longer = frame.clone();
    longer.push(0);
    assert_eq!(compact::decode(&longer), Err(CompactError::Framing));
    // A deflate bomb: a tiny frame that inflates beyond the cap.
    let bomb_text = "a~".repeat(200_000);
    let mut bomb = vec![compact::VERSION_TEXT];
    bomb.extend(
        compact::encode(&bomb_text)
            .unwrap_or_default()
            .get(1..)
            .unwrap_or_default(),
    );
    assert!(
        compact::encode(&bomb_text).is_err(),
        "the encoder refuses oversize text too"
    );
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut z, &vec![b'~'; 5_000_000]).unwrap();
    let mut bomb = vec![compact::VERSION_TEXT];
    bomb.extend(z.finish().unwrap());
    assert!(bomb.len() < 10_000);
    assert!(compact::decode(&bomb).is_err());
    // Text that is not canonical base64url still round-trips (fallback version).
    let odd = "eyJ=.e30.c2ln~WyJzIiwibiIsInYiXQ~";
    let framed = compact::encode(odd).unwrap();
    assert_eq!(framed[0], compact::VERSION_TEXT);
    assert_eq!(compact::decode(&framed).unwrap(), odd);
}

#[test]
fn decoys_pad_to_a_multiple_of_four() {
    let mut f = fx();
    let mut claims = DemoWorld::typical_claims(3);
    claims.retain(|k, _| {
        [
            "licence_name",
            "licence_id",
            "holder_name",
            "licence_number",
            "valid_until",
        ]
        .contains(&k.as_str())
    });
    let held = HeldLicence::parse(&f.w.issue(0, claims, 3, &mut f.rng).unwrap()).unwrap();
    assert_eq!(
        held.visible()["_sd"].as_array().unwrap().len(),
        8,
        "5 fields + 3 decoys"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn every_presentation_round_trips_through_the_frame(mask in 1u16..256, nonce in "[A-Za-z0-9_-]{1,40}", bound in any::<bool>()) {
        let f = fx();
        let names: Vec<String> = f.held.claims().keys().map(|k| (*k).to_owned()).collect();
        let chosen: Vec<&str> = names.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, n)| n.as_str()).collect();
        let kb = bound.then_some(KeyBindingRequest { key: &f.w.holder, audience: "inspection", nonce: &nonce, iat: NOW });
        let p = f.held.present(&chosen, kb).unwrap();
        let frame = compact::encode(&p).unwrap();
        prop_assert_eq!(frame[0], compact::VERSION_SEGMENTS);
        prop_assert_eq!(compact::decode(&frame).unwrap(), p);
    }

    #[test]
    fn any_text_with_a_tilde_round_trips(s in "[ -~\u{4e00}-\u{4e20}]{0,300}~[ -~]{0,50}") {
        let frame = compact::encode(&s).unwrap();
        prop_assert_eq!(compact::decode(&frame).unwrap(), s);
    }

    #[test]
    fn arbitrary_frames_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), v in 1u8..3) {
        let mut frame = vec![v];
        frame.extend(bytes);
        let _ = compact::decode(&frame);
    }
}
