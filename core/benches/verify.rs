//! Cost of verifying a typical licence presentation, against its floor: the
//! two Ed25519 `verify_strict` calls it cannot avoid (issuer JWT, KB-JWT).
//!
//! `cargo bench -p zhangban-core --bench verify` runs the criterion groups,
//! then prints a ratio measured in this same process. With
//! `ZHANGBAN_BENCH_QUICK=1` (or when run without `--bench`, e.g. by
//! `cargo test --all-targets`) the criterion groups are skipped and the ratio
//! is measured with few iterations (a CI smoke run). The ratio is reported,
//! never asserted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::Criterion;
use ed25519_dalek::{Signature, VerifyingKey};
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use std::hint::black_box;
use std::time::{Duration, Instant};
use zhangban_core::credential::demo::DemoWorld;
use zhangban_core::credential::jose::b64d;
use zhangban_core::credential::rejection::Part;
use zhangban_core::credential::{HeldLicence, NoncePolicy, VerifyPolicy, verify_presentation};

/// A fixed world time (2026-11-18); nothing below reads the clock to verify.
const WORLD_NOW: i64 = 1_795_000_000;
/// The design target: full verification within 1.5× the two signature checks.
const TARGET_RATIO: f64 = 1.5;
const NONCE: &str = "bench-nonce-5f3a9c";

/// A compact JWS split for a raw signature check: the signing input and the
/// signature, decoded once.
struct RawJws {
    message: Vec<u8>,
    signature: Signature,
}

impl RawJws {
    fn from_compact(jws: &str) -> Self {
        let dot = jws.rfind('.').expect("compact JWS has a signature segment");
        let sig: [u8; 64] = b64d(&jws[dot + 1..], Part::IssuerJwt)
            .expect("signature is base64url")
            .try_into()
            .expect("signature is 64 bytes");
        Self {
            message: jws.as_bytes()[..dot].to_vec(),
            signature: Signature::from_bytes(&sig),
        }
    }
}

struct Fixture {
    world: DemoWorld,
    presentation: String,
    policy: VerifyPolicy,
    now: i64,
    claims_total: usize,
    claims_disclosed: usize,
    issuer_key: VerifyingKey,
    holder_key: VerifyingKey,
    issuer_jwt: RawJws,
    kb_jwt: RawJws,
}

impl Fixture {
    fn new() -> Self {
        let mut rng = StdRng::seed_from_u64(2026);
        let world = DemoWorld::new(&mut rng, WORLD_NOW);
        let issued = world
            .issue_typical(42, &mut rng)
            .expect("typical licence issues");
        let presentation = world
            .present_typical(&issued, NONCE, WORLD_NOW + 2)
            .expect("typical presentation");
        let policy = VerifyPolicy::required("inspection", NoncePolicy::Exact(NONCE.into()));
        let now = WORLD_NOW + 5;
        let verified = verify_presentation(
            &presentation,
            &world.bundle,
            &world.status_cache,
            &policy,
            now,
        )
        .expect("the benchmarked presentation verifies");
        assert!(verified.key_binding.is_some());
        let claims_total = HeldLicence::parse(&issued)
            .expect("issued licence parses")
            .claims()
            .len();

        // The baseline checks the very same messages and signatures that
        // verification checks, with keys parsed once.
        let issuer_jws = presentation.split('~').next().expect("issuer JWT");
        let kb_jws = presentation.rsplit('~').next().expect("KB-JWT");
        let issuer_jwt = RawJws::from_compact(issuer_jws);
        let kb_jwt = RawJws::from_compact(kb_jws);
        let issuer_key = *world.issuers[0].key().public().verifying_key();
        let holder_key = *world.holder.public().verifying_key();

        Self {
            presentation,
            policy,
            now,
            claims_total,
            claims_disclosed: verified.claims.len(),
            issuer_key,
            holder_key,
            issuer_jwt,
            kb_jwt,
            world,
        }
    }

    fn verify_full(&self) -> bool {
        verify_presentation(
            black_box(&self.presentation),
            &self.world.bundle,
            &self.world.status_cache,
            &self.policy,
            black_box(self.now),
        )
        .is_ok()
    }

    fn verify_two_raw(&self) -> bool {
        let a = self
            .issuer_key
            .verify_strict(
                black_box(&self.issuer_jwt.message),
                &self.issuer_jwt.signature,
            )
            .is_ok();
        let b = self
            .holder_key
            .verify_strict(black_box(&self.kb_jwt.message), &self.kb_jwt.signature)
            .is_ok();
        a & b
    }
}

fn criterion_groups(c: &mut Criterion, f: &Fixture) {
    assert!(f.verify_full() && f.verify_two_raw());
    let mut group = c.benchmark_group("verify");
    group.bench_function("verify_presentation/typical_8_claims_5_disclosed_kb", |b| {
        b.iter(|| black_box(f.verify_full()));
    });
    group.bench_function("baseline/2x_verify_strict", |b| {
        b.iter(|| black_box(f.verify_two_raw()));
    });
    group.finish();
}

/// Time per operation of `iters` calls of `op`.
fn time_batch(iters: u32, op: &dyn Fn() -> bool) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        black_box(op());
    }
    start.elapsed() / iters
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort_unstable();
    xs[xs.len() / 2]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Interleaved batches of both operations (so that frequency scaling and
/// noisy neighbours hit both alike); the median batch of each.
fn report(f: &Fixture, quick: bool) {
    let (iters, rounds, warmup) = if quick { (10, 5, 3) } else { (400, 21, 500) };
    let full = || f.verify_full();
    let raw = || f.verify_two_raw();
    time_batch(warmup, &full);
    time_batch(warmup, &raw);
    let mut full_t = Vec::with_capacity(rounds);
    let mut raw_t = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        full_t.push(time_batch(iters, &full));
        raw_t.push(time_batch(iters, &raw));
    }
    let (full_m, raw_m) = (median(full_t), median(raw_t));
    let ratio = full_m.as_secs_f64() / raw_m.as_secs_f64();
    let verdict = if ratio <= TARGET_RATIO {
        "OK"
    } else {
        "OVER TARGET"
    };
    println!();
    println!(
        "report ({}: median of {rounds} interleaved batches of {iters} ops)",
        if quick { "quick mode" } else { "full mode" }
    );
    println!(
        "verify_presentation: {:.1} µs/op   2× verify_strict: {:.1} µs/op   ratio {ratio:.2} (target ≤ {TARGET_RATIO})  {verdict}",
        micros(full_m),
        micros(raw_m),
    );
    println!(
        "presentation size: {} bytes ({} claims, {} disclosed, key binding)",
        f.presentation.len(),
        f.claims_total,
        f.claims_disclosed,
    );
}

fn main() {
    // `cargo bench` passes `--bench`; without it (`cargo test --benches`,
    // `cargo test --all-targets`) this is a smoke test like quick mode.
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let quick = !bench_mode || std::env::var("ZHANGBAN_BENCH_QUICK").is_ok_and(|v| v == "1");
    let fixture = Fixture::new();
    if !quick {
        let mut c = Criterion::default().configure_from_args();
        criterion_groups(&mut c, &fixture);
        c.final_summary();
    }
    report(&fixture, quick);
}
