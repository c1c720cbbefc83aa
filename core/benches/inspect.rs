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
//!
//! Hostile images (issue 13): the QR reader's worst time and peak heap over
//! a set of hostile PNGs (finder lattices, 64 Mi-pixel strips, a 11-megapixel
//! blank, noise, a lattice just under the finder cap), beside the time to
//! read a normal code, against a budget of 200 ms per image.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/shared/hostile_png.rs"]
mod hostile;

/// Every allocation of this benchmark goes through a counting wrapper of the
/// system allocator, so the peak heap of one `read_png` is measured exactly
/// (the resident set's high-water mark misses freed and reused memory).
#[global_allocator]
static HEAP: &peakmem_alloc::PeakMemAlloc<std::alloc::System> = &peakmem_alloc::INSTRUMENTED_SYSTEM;

const QR_BUDGET: Duration = Duration::from_millis(200);

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
            .map(|_| typical_frame(&world, &held, &mut rng))
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

/// Time and peak heap (above what was allocated before) of one `read_png`.
fn read_cost(png: &[u8]) -> (Duration, usize, String) {
    use peakmem_alloc::PeakMemAllocTrait as _;
    HEAP.reset_peak_memory();
    let start = Instant::now();
    let r = zhangban_core::inspection::qr::read_png(black_box(png));
    let t = start.elapsed();
    let peak = HEAP.get_peak_memory();
    let outcome = match r {
        Ok(codes) => format!("read {} code(s)", codes.len()),
        Err(e) => format!("refused: {e:?}"),
    };
    (t, peak, outcome)
}

/// A fresh dynamic (亮证) frame of the typical licence: the typical fields
/// disclosed, key-bound by the P-256 holder.
fn typical_frame(world: &DemoWorld, held: &HeldLicence, rng: &mut StdRng) -> Vec<u8> {
    present_dynamic(
        held,
        &DemoWorld::TYPICAL_DISCLOSED,
        &world.holder_p256,
        None,
        WORLD_NOW,
        rng,
    )
    .unwrap()
    .frame
}

fn hostile_report(world: &DemoWorld, held: &HeldLicence) {
    let frame = typical_frame(world, held, &mut StdRng::seed_from_u64(11));
    let normal = Qr::new(&frame).unwrap().to_png(4);
    // Seeded noise (a hash of the position, seed 11).
    let noise = hostile::grey_png(1024, 1024, |x, y| {
        let mut v = (u64::from(x) << 32 | u64::from(y)) ^ 11;
        v = v.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        v ^= v >> 29;
        if v & 1 == 0 { 0 } else { 255 }
    });
    let set: Vec<(String, Vec<u8>)> = vec![
        (
            "finder lattice 30×30 (1352 px)".into(),
            hostile::lattice(30),
        ),
        (
            "finder lattice 40×40 (1802 px)".into(),
            hostile::lattice(40),
        ),
        (
            "finder lattice 6×6 (under the cap)".into(),
            hostile::lattice(6),
        ),
        ("strip 67,108,864×1".into(), hostile::strip(67_108_864, 1)),
        ("strip 1×67,108,864".into(), hostile::strip(1, 67_108_864)),
        (
            "blank 2048×2048 (largest accepted)".into(),
            hostile::strip(2048, 2048),
        ),
        (
            "blank 3400×3400 (11.6 Mpx)".into(),
            hostile::strip(3400, 3400),
        ),
        ("noise 1024×1024".into(), noise),
        (
            "IHDR only, 8193×4096".into(),
            hostile::header_only(8193, 4096),
        ),
    ];
    // Warm up, then the median of 5 for the normal code.
    let _ = read_cost(&normal);
    let mut normal_times: Vec<Duration> = (0..5).map(|_| read_cost(&normal).0).collect();
    normal_times.sort_unstable();
    let (_, normal_peak, normal_outcome) = read_cost(&normal);
    println!();
    println!(
        "QR reader under hostile images (budget {} ms per image):",
        QR_BUDGET.as_millis()
    );
    println!(
        "  {:<38} {:>8} B  {:>9.1} ms  peak heap {:>6.1} MiB  {normal_outcome}",
        "normal code (typical, 4 px/module)",
        normal.len(),
        normal_times[2].as_secs_f64() * 1e3,
        normal_peak as f64 / 1048576.0
    );
    let (mut worst_t, mut worst_m) = (Duration::ZERO, 0usize);
    for (label, png) in &set {
        let (t, peak, outcome) = read_cost(png);
        worst_t = worst_t.max(t);
        worst_m = worst_m.max(peak);
        println!(
            "  {label:<38} {:>8} B  {:>9.1} ms  peak heap {:>6.1} MiB  {outcome}",
            png.len(),
            t.as_secs_f64() * 1e3,
            peak as f64 / 1048576.0
        );
    }
    let ratio = worst_t.as_secs_f64() / QR_BUDGET.as_secs_f64();
    println!(
        "  worst hostile: {:.1} ms, peak heap {:.1} MiB; normal code {:.1} ms; worst/budget {ratio:.2} (target ≤ 1)  {}",
        worst_t.as_secs_f64() * 1e3,
        worst_m as f64 / 1048576.0,
        normal_times[2].as_secs_f64() * 1e3,
        if ratio <= 1.0 { "OK" } else { "OVER BUDGET" }
    );
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
    hostile_report(&world, &held);
}
