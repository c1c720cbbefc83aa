//! Inspector verification of a scanned QR code, against its floor, and the
//! QR versions of the presentations residents show.
//!
//! Measured: `Inspector::verify` on the bytes a scanner hands over (the
//! compact frame: inflate, rebuild the SD-JWT text, parse, the issuer's
//! Ed25519 check, the holder's ES256 key binding check, status lookup, the
//! replay cache) of a licence bound to a P-256 holder key, against one raw
//! Ed25519 `verify_strict` plus one raw P-256 `verify` over the same two
//! signed messages, interleaved in the same run. Target: at most 1.3×. Each scan uses a fresh presentation
//! (a new nonce), as at a real checkpoint: a repeated one would be a replay.
//!
//! `cargo bench -p zhangban-core --bench inspect`; `ZHANGBAN_BENCH_QUICK=1`
//! (or running without `--bench`) skips criterion and uses few iterations.
//! Figures are printed, never asserted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use ed25519_dalek::{Signature, VerifyingKey};
use p256::ecdsa::signature::Verifier as _;
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use zhangban_core::credential::HeldLicence;
use zhangban_core::credential::demo::{DAY, DemoWorld};
use zhangban_core::credential::jose::b64d;
use zhangban_core::credential::rejection::Part;
use zhangban_core::inspection::compact;
use zhangban_core::inspection::qr::Qr;
use zhangban_core::inspection::{Inspector, present_dynamic, present_printable};

const WORLD_NOW: i64 = 1_795_000_000;
const TARGET_RATIO: f64 = 1.3;
const TARGET_QR_VERSION: i16 = 25;

struct Raw {
    message: Vec<u8>,
    signature: Signature,
}

fn raw(jws: &str) -> Raw {
    let dot = jws.rfind('.').unwrap();
    let sig: [u8; 64] = b64d(&jws[dot + 1..], Part::IssuerJwt)
        .unwrap()
        .try_into()
        .unwrap();
    Raw {
        message: jws.as_bytes()[..dot].to_vec(),
        signature: Signature::from_bytes(&sig),
    }
}

struct Fixture {
    inspector: Inspector,
    /// Fresh frames (distinct nonces), scanned in turn.
    frames: Vec<Vec<u8>>,
    next: std::cell::Cell<usize>,
    issuer_key: VerifyingKey,
    holder_key: p256::ecdsa::VerifyingKey,
    issuer_jwt: Raw,
    kb_message: Vec<u8>,
    kb_signature: p256::ecdsa::Signature,
    now: i64,
}

impl Fixture {
    fn new(frames: usize) -> (Self, DemoWorld, HeldLicence) {
        let mut rng = StdRng::seed_from_u64(7);
        let world = DemoWorld::new(&mut rng, WORLD_NOW);
        let held = HeldLicence::parse(&world.issue_typical_es256(42, &mut rng).unwrap()).unwrap();
        let frames: Vec<Vec<u8>> = (0..frames)
            .map(|_| {
                present_dynamic(
                    &held,
                    &DemoWorld::TYPICAL_DISCLOSED,
                    &world.holder_p256,
                    None,
                    WORLD_NOW,
                    &mut rng,
                )
                .unwrap()
                .frame
            })
            .collect();
        let text = compact::decode(&frames[0]).unwrap();
        let issuer_jwt = raw(text.split('~').next().unwrap());
        let kb = text.rsplit('~').next().unwrap();
        let dot = kb.rfind('.').unwrap();
        let kb_message = kb.as_bytes()[..dot].to_vec();
        let kb_signature =
            p256::ecdsa::Signature::from_slice(&b64d(&kb[dot + 1..], Part::KeyBinding).unwrap())
                .unwrap();
        let inspector = Inspector::new(
            Some(world.bundle.clone()),
            world.status_cache.clone(),
            Some(WORLD_NOW),
        );
        let f = Self {
            inspector,
            frames,
            next: std::cell::Cell::new(0),
            issuer_key: *world.issuers[0].key().public().verifying_key(),
            holder_key: *world.holder_p256.signing_key().verifying_key(),
            issuer_jwt,
            kb_message,
            kb_signature,
            now: WORLD_NOW + 5,
        };
        (f, world, held)
    }

    fn scan(&self) -> bool {
        let i = self.next.get();
        self.next.set((i + 1) % self.frames.len());
        let v = self
            .inspector
            .verify(black_box(&self.frames[i]), None, self.now);
        // Wrapping around the pool scans a frame again: a replay, which
        // costs the same checks (signatures first, the cache last).
        v.valid || v.code == "replayed"
    }

    fn two_raw(&self) -> bool {
        let a = self
            .issuer_key
            .verify_strict(
                black_box(&self.issuer_jwt.message),
                &self.issuer_jwt.signature,
            )
            .is_ok();
        let b = self
            .holder_key
            .verify(black_box(&self.kb_message), &self.kb_signature)
            .is_ok();
        a & b
    }
}

fn time_batch(iters: u32, op: &dyn Fn() -> bool) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        assert!(black_box(op()));
    }
    start.elapsed() / iters
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort_unstable();
    xs[xs.len() / 2]
}

fn qr_report(world: &DemoWorld, held: &HeldLicence) {
    let mut rng = StdRng::seed_from_u64(9);
    let names: Vec<String> = held.claims().keys().map(|k| (*k).to_owned()).collect();
    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    let rows = [
        (
            "typical: 8 claims, 5 disclosed, key binding",
            present_dynamic(
                held,
                &DemoWorld::TYPICAL_DISCLOSED,
                &world.holder_p256,
                None,
                WORLD_NOW,
                &mut rng,
            )
            .unwrap(),
        ),
        (
            "all 8 disclosed, key binding",
            present_dynamic(held, &all, &world.holder_p256, None, WORLD_NOW, &mut rng).unwrap(),
        ),
        (
            "printable card, all 8, sealed for 180 days",
            present_printable(held, &all, &world.holder_p256, WORLD_NOW, 180 * DAY).unwrap(),
        ),
    ];
    println!("QR codes at ECC level M (byte mode):");
    for (label, shown) in &rows {
        let qr = Qr::new(&shown.frame).unwrap();
        println!(
            "  {label:<46} text {:>5} B  frame {:>5} B  version {:>2} ({} modules){}",
            shown.presentation.len(),
            shown.frame.len(),
            qr.version(),
            qr.width(),
            if label.starts_with("typical") {
                if qr.version() <= TARGET_QR_VERSION {
                    format!("  target ≤ {TARGET_QR_VERSION} OK")
                } else {
                    format!("  target ≤ {TARGET_QR_VERSION} OVER TARGET")
                }
            } else {
                String::new()
            }
        );
    }
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let quick = !bench_mode || std::env::var("ZHANGBAN_BENCH_QUICK").is_ok_and(|v| v == "1");
    let (f, world, held) = Fixture::new(if quick { 64 } else { 4096 });
    assert!(f.scan() && f.two_raw());
    if !quick {
        let mut c = Criterion::default().configure_from_args();
        let mut g = c.benchmark_group("inspect");
        g.bench_function("inspector_verify/qr_frame_typical", |b| {
            b.iter(|| black_box(f.scan()))
        });
        g.bench_function("baseline/verify_strict+p256_verify", |b| {
            b.iter(|| black_box(f.two_raw()))
        });
        g.finish();
        c.final_summary();
    }
    let (iters, rounds, warmup) = if quick { (10, 5, 3) } else { (400, 21, 500) };
    let scan = || f.scan();
    let two = || f.two_raw();
    time_batch(warmup, &scan);
    time_batch(warmup, &two);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        a.push(time_batch(iters, &scan));
        b.push(time_batch(iters, &two));
    }
    let (am, bm) = (median(a), median(b));
    let ratio = am.as_secs_f64() / bm.as_secs_f64();
    println!();
    println!(
        "report ({}: median of {rounds} interleaved batches of {iters} ops)",
        if quick { "quick mode" } else { "full mode" }
    );
    println!(
        "inspector verify of a scanned QR frame: {:.1} µs/op   verify_strict + P-256 verify: {:.1} µs/op   ratio {ratio:.2} (target ≤ {TARGET_RATIO})  {}",
        am.as_secs_f64() * 1e6,
        bm.as_secs_f64() * 1e6,
        if ratio <= TARGET_RATIO {
            "OK"
        } else {
            "OVER TARGET"
        }
    );
    qr_report(&world, &held);
}
