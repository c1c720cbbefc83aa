//! Server load on each store: durable submissions with a verified licence
//! on SQLite, on PostgreSQL with one replica and on PostgreSQL with three
//! replicas, each with the server's CPU per submission against the cost of
//! the two signature checks it cannot avoid; on SQLite also against a
//! no-op-ish endpoint and with the rate limiter on and off.
//!
//! `cargo bench -p zhangban-server --bench load` builds the server binary in
//! the bench (release) profile, since a bench target gets
//! `CARGO_BIN_EXE_zhangban-server` built by the same cargo invocation, and
//! starts it with `serve --demo` on a fresh data directory under the system
//! temp dir. Three deployments, one after the other:
//!
//! - SQLite: one process (WAL, `synchronous=FULL`: commits really fsync);
//! - PostgreSQL, one replica: `--database-url` on a fresh database
//!   ([`TestDatabase`], dropped at the end), default pool
//!   (`--database-pool-size` 16);
//! - PostgreSQL, three replicas on one fresh database and one data
//!   directory (replica 1 fills the demo data, 2 and 3 find it); the 64
//!   connections are spread over the three directly, round-robin (no
//!   proxy: the servers are measured, not a balancer).
//!
//! In each, 64 devices of the demo resident are enrolled (the demo
//! activation code has 100 uses), each with its own connection (its own
//! HTTP/1.1 client) and token, and each holds its copy of the demo business
//! licence from `GET /v1/wallet`.
//!
//! Phase 1, for `ZHANGBAN_LOAD_SECS` (default 10) seconds, every connection
//! loops: `POST /v1/submissions/{id}/nonce`, a presentation of 3 fields of
//! the business licence with a key binding JWT (`aud` = guide id, that
//! nonce), and `PUT /v1/submissions/{id}` of a fresh submission with the
//! presentation in the guide's licence field. The rate is completed
//! submissions per second (each needs both requests); the latency is the PUT
//! alone (validation, licence verification, durable commit).
//!
//! CPU per submission: utime + stime of every server process (from
//! `/proc/<pid>/stat`, in clock ticks of `getconf CLK_TCK`, 100 if that
//! fails; summed over the replicas) before and after phase 1, divided by
//! the submissions accepted in it (those finishing just after the deadline
//! included: their CPU is in the sum). It is set against the two raw
//! signature verifications every accepted submission needs, timed in the
//! same run in this process on one thread with the core's own functions:
//! the issuer's Ed25519 signature over the SD-JWT ([`CompactJws::verify`])
//! plus the holder's key binding JWT signature ([`CompactJws::verify_holder`]),
//! the sum of their means; target: at most 2.5 times that. The CPU of the
//! PostgreSQL server's own processes is printed beside it for information
//! (every `postgres` process of this host: other databases' work counts
//! too) and is not in the ratio, with the transactions per submission
//! (`pg_stat_database` of the deployment's database; a full run waits 11 s
//! before and after the phase, outside the CPU window, for idle backends to
//! report them). `ZHANGBAN_LOAD_PG_POOL=N` starts the replicas with
//! `--database-pool-size N` instead of the default 16.
//!
//! On SQLite only, phase 2, as long: `GET /livez` on the same 64
//! connections: the no-op endpoint (routing, the metrics and tracing
//! layers, a tiny JSON body — nothing else), and the ratio of the two rates
//! against the target (≥ 0.30); then the rate limiter's cost: phase 1 again
//! on two fresh servers, one with every limiter checking (limits set high
//! enough that none refuses), one with none, and their ratio against the
//! target (≥ 0.95). Every other phase runs with `--no-rate-limits`.
//!
//! Three replicas on a host of two cores (with PostgreSQL and this load
//! generator on the same cores) cannot be faster than one: that line is
//! printed anyway, with a note; it shows what spreading costs, not what it
//! gains. Nothing is asserted. With `ZHANGBAN_BENCH_QUICK=1`, or when run
//! without `--bench` (e.g. by `cargo test --all-targets`), phases last 1 s.
//! When no PostgreSQL answers (see [`zhangban_tests::postgres::admin_url`])
//! the PostgreSQL deployments are skipped with a line saying so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::Signer as _;
use serde_json::{Map, Value, json};
use zhangban_core::credential::jose::{CompactJws, b64e};
use zhangban_core::credential::rejection::Part;
use zhangban_core::credential::sd_jwt::{TYP_KB_JWT, TYP_SD_JWT_VC, split};
use zhangban_core::credential::{HeldLicence, KeyBindingRequest, KeyPair, PublicKey, TrustBundle};
use zhangban_core::guide::{FieldKind, Guide};
use zhangban_server::api::auth::challenge_message;
use zhangban_server::setup::DEMO_ACTIVATION_CODE;

use zhangban_tests::forms::{catalog, fill};
use zhangban_tests::postgres::{TestDatabase, admin_url};
use zhangban_tests::process::{Scratch, ServerProcess};
use zhangban_tests::server::json_ok;

const CONNECTIONS: usize = 64;
const TARGET_RATIO: f64 = 0.30;
/// The server's CPU per accepted submission, at most this many times the
/// two signature verifications it needs.
const TARGET_CPU: f64 = 2.5;
/// The demo business licence's type.
const BUSINESS_VCT: &str = "urn:zhangban:licence-type:11100000000013338W050";
/// Fields disclosed in each presentation.
const DISCLOSED: usize = 3;
/// The default `--database-pool-size` (each replica's connections);
/// `ZHANGBAN_LOAD_PG_POOL` passes another.
const PG_POOL: u32 = 16;

/// The pool size the PostgreSQL replicas run with, and whether it was set
/// (passed as `--database-pool-size`) or is the default.
fn pg_pool() -> (u32, bool) {
    std::env::var("ZHANGBAN_LOAD_PG_POOL")
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
        .filter(|n| *n > 0)
        .map_or((PG_POOL, false), |n| (n, true))
}

/// One deployment: its server processes (replicas), their shared data
/// directory and, on PostgreSQL, the database; all go away on drop (the
/// processes first, then the database, then the directory).
struct Deployment {
    servers: Vec<ServerProcess>,
    db: Option<TestDatabase>,
    data_dir: PathBuf,
    _scratch: Scratch,
}

impl Deployment {
    /// Each replica's base URL.
    fn bases(&self) -> Vec<String> {
        self.servers.iter().map(|s| s.url.clone()).collect()
    }

    /// Each replica's process id.
    fn pids(&self) -> Vec<u32> {
        self.servers.iter().map(ServerProcess::pid).collect()
    }
}

/// Rate limits on, high enough that the 64 devices of one resident on one
/// address are never refused: every request still goes through every
/// limiter check (the cost measured), none is turned away.
const LIMITS_ON: &[&str] = &[
    "--rate-limit=activation=100000/0.001",
    "--rate-limit=challenge=100000/0.001",
    "--rate-limit=challenge-device=100000/0.001",
    "--rate-limit=token=100000/0.001",
    "--rate-limit=token-device=100000/0.001",
    "--rate-limit=upload=100000/0.00001",
    "--rate-limit=upload-resident=100000/0.00001",
];

/// One SQLite server with `extra` flags.
fn start_sqlite(extra: &[&str]) -> Deployment {
    let scratch = Scratch::new("load");
    let data_dir = scratch.path("data");
    let process =
        ServerProcess::start(scratch.dir(), &data_dir, &scratch.path("server.log"), extra);
    Deployment {
        servers: vec![process],
        db: None,
        data_dir,
        _scratch: scratch,
    }
}

/// `replicas` servers on one fresh PostgreSQL database and one data
/// directory: the first fills both with the demo data, the others start on
/// them (the keys they must share are in the directory).
fn start_postgres(replicas: usize) -> Deployment {
    let db = TestDatabase::create();
    let scratch = Scratch::new("load-pg");
    let data_dir = scratch.path("data");
    let pool = pg_pool();
    let pool_text = pool.0.to_string();
    let mut args = vec!["--database-url", db.url(), "--no-rate-limits"];
    if pool.1 {
        args.extend(["--database-pool-size", &pool_text]);
    }
    let servers = (0..replicas)
        .map(|i| {
            ServerProcess::start(
                scratch.dir(),
                &data_dir,
                &scratch.path(&format!("replica-{i}.log")),
                &args,
            )
        })
        .collect();
    Deployment {
        servers,
        db: Some(db),
        data_dir,
        _scratch: scratch,
    }
}

/// Transactions committed and rolled back in database `name` so far, as
/// `pg_stat_database` counts them (backends report at most once a second
/// while busy, within 10 s once idle: see [`STATS_SETTLE`]).
fn pg_transactions(name: &str) -> Option<i64> {
    let name = name.to_owned();
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&admin_url(), postgres::NoTls).ok()?;
        let row = c
            .query_one(
                "SELECT (xact_commit + xact_rollback)::BIGINT FROM pg_stat_database WHERE datname = $1",
                &[&name],
            )
            .ok()?;
        Some(row.get::<_, i64>(0))
    })
    .join()
    .ok()
    .flatten()
}

/// How long idle backends may keep their counts before `pg_stat_database`
/// shows them (PostgreSQL 15's idle report interval, and a margin).
const STATS_SETTLE: Duration = Duration::from_secs(11);

/// Whether the PostgreSQL server tests use answers (the error if not).
fn postgres_answers() -> Result<(), String> {
    std::thread::spawn(|| {
        postgres::Client::connect(&admin_url(), postgres::NoTls)
            .map(drop)
            .map_err(|e| format!("{}: {e}", admin_url()))
    })
    .join()
    .unwrap()
}

async fn post_json(
    http: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: &Value,
) -> Value {
    let mut req = http.post(&url).json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(status.is_success(), "POST {url}: {status} {text}");
    serde_json::from_str(&text).unwrap()
}

/// One enrolled device: the replica it talks to, its connection, key, token
/// and business licence.
struct Device {
    base: String,
    http: reqwest::Client,
    key: KeyPair,
    token: String,
    licence: HeldLicence,
    fields: Vec<String>,
}

async fn device(base: &str) -> Device {
    // One client per device, at most one idle connection: one connection each.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let key = KeyPair::generate(&mut rand::rngs::OsRng);
    let device_id = key.public().thumbprint();
    post_json(
        &http,
        format!("{base}/v1/devices/enrol"),
        None,
        &json!({"activation_code": DEMO_ACTIVATION_CODE, "device_jwk": key.public().to_jwk()}),
    )
    .await;
    let c = post_json(
        &http,
        format!("{base}/v1/auth/challenge"),
        None,
        &json!({"device_id": device_id}),
    )
    .await;
    let (cid, nonce) = (
        c["challenge_id"].as_str().unwrap(),
        c["nonce"].as_str().unwrap(),
    );
    let sig = key
        .signing_key()
        .sign(challenge_message(cid, nonce).as_bytes());
    let t = post_json(
        &http,
        format!("{base}/v1/auth/token"),
        None,
        &json!({"device_id": device_id, "challenge_id": cid, "signature": b64e(sig.to_bytes())}),
    )
    .await;
    let token = t["token"].as_str().unwrap().to_owned();
    let wallet: Vec<Value> =
        json_ok(http.get(format!("{base}/v1/wallet")).bearer_auth(&token)).await;
    let entry = wallet
        .iter()
        .find(|e| e["device_id"] == json!(device_id) && e["vct"] == json!(BUSINESS_VCT))
        .expect("the device's copy of the business licence");
    let licence = HeldLicence::parse(entry["sd_jwt"].as_str().unwrap()).unwrap();
    let fields: Vec<String> = licence
        .claims()
        .keys()
        .take(DISCLOSED)
        .map(|k| (*k).to_owned())
        .collect();
    assert_eq!(fields.len(), DISCLOSED);
    Device {
        base: base.to_owned(),
        http,
        key,
        token,
        licence,
        fields,
    }
}

/// A guide with a field accepting the business licence, and the values of its other required fields.
fn pick_guide(guides: &[Guide]) -> (Guide, String, Map<String, Value>) {
    let now = zhangban_tests::system_now();
    guides
        .iter()
        .find_map(|g| {
            let field = g.form.fields.iter().find(|f| {
                matches!(&f.kind, FieldKind::LicenceRef { licence_types }
                    if licence_types.iter().any(|t| t == BUSINESS_VCT))
            })?;
            Some((g.clone(), field.name.clone(), fill(g, now)?))
        })
        .expect("a guide with a business licence field and a simple form")
}

struct Form {
    guide_id: String,
    guide_name: String,
    version: u32,
    licence_field: String,
    values: Map<String, Value>,
}

/// The presentation a device sends for `form` with `nonce`.
fn presentation(d: &Device, form: &Form, nonce: &str) -> String {
    let fields: Vec<&str> = d.fields.iter().map(String::as_str).collect();
    d.licence
        .present(
            &fields,
            Some(KeyBindingRequest {
                key: &d.key,
                audience: &form.guide_id,
                nonce,
                iat: chrono::Utc::now().timestamp(),
            }),
        )
        .unwrap()
}

/// One submission: nonce, presentation, PUT. Returns the PUT's latency.
async fn submit(d: &Device, form: &Form, client_id: &str) -> Result<Duration, String> {
    let base = &d.base;
    let resp = d
        .http
        .post(format!("{base}/v1/submissions/{client_id}/nonce"))
        .bearer_auth(&d.token)
        .json(&json!({"guide_id": form.guide_id}))
        .send()
        .await
        .map_err(|e| format!("nonce: {e}"))?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| format!("nonce: {e}"))?;
    if !status.is_success() {
        return Err(format!("nonce: {status} {text}"));
    }
    let n: Value = serde_json::from_str(&text).map_err(|e| format!("nonce: {e}"))?;
    let nonce = n["nonce"].as_str().ok_or("nonce: no nonce in the answer")?;
    let presentation = presentation(d, form, nonce);
    let mut values = form.values.clone();
    values.insert(
        form.licence_field.clone(),
        json!({"presentation": presentation}),
    );
    let body = serde_json::to_vec(
        &json!({"guide_id": form.guide_id, "form_version": form.version, "values": values}),
    )
    .unwrap();
    let start = Instant::now();
    let resp = d
        .http
        .put(format!("{base}/v1/submissions/{client_id}"))
        .bearer_auth(&d.token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| e.to_string())?;
    let took = start.elapsed();
    if status == reqwest::StatusCode::OK {
        Ok(took)
    } else {
        Err(format!("{status} {text}"))
    }
}

async fn healthz(d: &Device) -> Result<Duration, String> {
    let start = Instant::now();
    let resp = d
        .http
        .get(format!("{}/livez", d.base))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    resp.bytes().await.map_err(|e| e.to_string())?;
    if status.is_success() {
        Ok(start.elapsed())
    } else {
        Err(status.to_string())
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Submit,
    Health,
}

struct Outcome {
    rate: f64,
    p50: Duration,
    p99: Duration,
    count: usize,
    /// Operations that succeeded but finished after the deadline (not in
    /// the rate; their CPU is in a measurement taken after the phase).
    late: usize,
    errors: Vec<String>,
}

/// Runs `phase` on every device for `secs`; operations completed after the
/// deadline are not counted in the rate (only in `late`).
async fn run_phase(
    devices: &Arc<Vec<Device>>,
    form: &Arc<Form>,
    phase: Phase,
    tag: &str,
    secs: f64,
) -> Outcome {
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = (0..devices.len())
        .map(|i| {
            let (devices, form, tag) = (Arc::clone(devices), Arc::clone(form), tag.to_owned());
            tokio::spawn(async move {
                let d = &devices[i];
                let mut latencies = Vec::new();
                let mut errors = Vec::new();
                let mut late = 0;
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let r = match phase {
                        Phase::Submit => {
                            n += 1;
                            submit(d, &form, &format!("{tag}-{i:02}-{n:07}")).await
                        }
                        Phase::Health => healthz(d).await,
                    };
                    if Instant::now() > deadline {
                        late += usize::from(r.is_ok());
                        break;
                    }
                    match r {
                        Ok(t) => latencies.push(t),
                        Err(e) => errors.push(e),
                    }
                }
                (latencies, errors, late)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = Vec::new();
    let mut late = 0;
    for t in tasks {
        let (l, e, n) = t.await.unwrap();
        latencies.extend(l);
        errors.extend(e);
        late += n;
    }
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Outcome {
        rate: latencies.len() as f64 / secs,
        p50: at(0.50),
        p99: at(0.99),
        count: latencies.len(),
        late,
        errors,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn us(secs: f64) -> f64 {
    secs * 1e6
}

/// Clock ticks per second of `/proc/<pid>/stat` times: `getconf CLK_TCK`
/// (the crate forbids the `unsafe` a `sysconf` call needs), else 100, the
/// Linux value (the `bool` says whether it was assumed).
fn clock_ticks() -> (f64, bool) {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .map_or((100.0, true), |t| (t, false))
}

/// utime + stime of process `pid`, in clock ticks (`None` if it is gone).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid …`: comm may hold spaces and parentheses; the
    // fields after its last `)` start with state (field 3), so utime
    // (field 14) and stime (field 15) are at 11 and 12 there.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The CPU ticks of `pids`, summed.
fn cpu_of(pids: &[u32]) -> u64 {
    pids.iter().filter_map(|p| cpu_ticks(*p)).sum()
}

/// Every process of this host whose command is `postgres` (the server and
/// its backends).
fn postgres_pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .collect()
}

/// The two raw signature verifications a submission needs, timed in this
/// process on one thread: mean seconds per issuer signature verification,
/// per key binding verification, and how many of each were timed.
struct Verifications {
    issuer: f64,
    key_binding: f64,
    n: u32,
}

impl Verifications {
    fn total(&self) -> f64 {
        self.issuer + self.key_binding
    }
}

/// Times `n` verifications of the issuer's signature of a real presentation
/// (its key from the deployment's trust bundle, checked against the pinned
/// root) and `n` of its key binding JWT (with the licence's holder key).
async fn time_verifications(dep: &Deployment, d: &Device, form: &Form, n: u32) -> Verifications {
    let root_text = std::fs::read_to_string(dep.data_dir.join("root.pub.json")).unwrap();
    let root = PublicKey::from_jwk(&serde_json::from_str(&root_text).unwrap()).unwrap();
    let jws = d
        .http
        .get(format!("{}/v1/trust/bundle", d.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let bundle = TrustBundle::verify(&jws, &[root], None).unwrap();
    let text = presentation(d, form, "bench-verification-nonce");
    let parts = split(&text).unwrap();
    let issuer_jwt = CompactJws::parse(parts.issuer_jwt, TYP_SD_JWT_VC, Part::IssuerJwt).unwrap();
    let (_, key) = bundle.key_by_kid(issuer_jwt.kid().unwrap()).unwrap();
    let holder = d.licence.holder_key().unwrap();
    let kb = CompactJws::parse_with_alg(
        parts.kb_jwt.unwrap(),
        TYP_KB_JWT,
        Part::KeyBinding,
        holder.alg(),
    )
    .unwrap();
    assert!(
        issuer_jwt.verify(&key.key),
        "the issuer's signature verifies"
    );
    assert!(kb.verify_holder(&holder), "the key binding verifies");
    let mean = |f: &dyn Fn() -> bool| {
        let start = Instant::now();
        for _ in 0..n {
            black_box(f());
        }
        start.elapsed().as_secs_f64() / f64::from(n)
    };
    // Both once more as a warm-up, then timed.
    mean(&|| black_box(&issuer_jwt).verify(black_box(&key.key)));
    let issuer = mean(&|| black_box(&issuer_jwt).verify(black_box(&key.key)));
    let key_binding = mean(&|| black_box(&kb).verify_holder(black_box(&holder)));
    Verifications {
        issuer,
        key_binding,
        n,
    }
}

/// A deployment with its 64 enrolled devices (spread round-robin over the
/// replicas) and the form they submit.
struct Loaded {
    dep: Deployment,
    devices: Arc<Vec<Device>>,
    form: Arc<Form>,
}

async fn load(dep: Deployment) -> Loaded {
    let bases = dep.bases();
    let guides = catalog(&reqwest::Client::new(), &bases[0]).await;
    let (guide, licence_field, values) = pick_guide(&guides);
    let form = Arc::new(Form {
        guide_id: guide.id.clone(),
        guide_name: guide.name.clone(),
        version: guide.form.version,
        licence_field,
        values,
    });
    let mut devices = Vec::with_capacity(CONNECTIONS);
    for i in 0..CONNECTIONS {
        devices.push(device(&bases[i % bases.len()]).await);
    }
    let devices = Arc::new(devices);
    // Fails loudly if the chosen form or presentation is not accepted.
    for (i, d) in devices.iter().take(bases.len()).enumerate() {
        if let Err(e) = submit(d, &form, &format!("load-check-{i:04}")).await {
            panic!("a valid submission was refused by {}: {e}", d.base);
        }
    }
    Loaded { dep, devices, form }
}

/// The end of each server's log when `outcome` had errors (a server that
/// died says why there).
fn logs_on_errors(dep: &Deployment, outcome: &Outcome) {
    if outcome.errors.is_empty() {
        return;
    }
    for (i, s) in dep.servers.iter().enumerate() {
        let log = s.log_text();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        println!("  --- server {i} ({}), its log's last lines ---", s.url);
        for line in tail.iter().rev() {
            println!("  {line}");
        }
    }
}

/// Phase 1 (after a warm-up) with the server processes' CPU around it, and
/// the PostgreSQL processes' when `with_postgres`.
struct Measured {
    sub: Outcome,
    /// Server CPU seconds per accepted submission.
    cpu: f64,
    /// PostgreSQL CPU seconds per accepted submission.
    pg_cpu: Option<f64>,
    /// PostgreSQL transactions per accepted submission.
    pg_transactions: Option<f64>,
}

async fn measure(l: &Loaded, secs: f64, quick: bool, ticks: f64, with_postgres: bool) -> Measured {
    let warm = if quick { 0.2 } else { 1.0 };
    run_phase(&l.devices, &l.form, Phase::Submit, "warm", warm).await;
    let pids = l.dep.pids();
    let db = l.dep.db.as_ref().map(|d| d.name().to_owned());
    // Transaction counts settle (in full runs only) outside the CPU window.
    let settle = if quick { Duration::ZERO } else { STATS_SETTLE };
    if db.is_some() {
        tokio::time::sleep(settle).await;
    }
    let xacts_before = db.as_deref().and_then(pg_transactions);
    let pg = if with_postgres {
        postgres_pids()
    } else {
        Vec::new()
    };
    let (before, pg_before) = (cpu_of(&pids), cpu_of(&pg));
    let sub = run_phase(&l.devices, &l.form, Phase::Submit, "load", secs).await;
    let (after, pg_after) = (cpu_of(&pids), cpu_of(&pg));
    logs_on_errors(&l.dep, &sub);
    let accepted = (sub.count + sub.late).max(1) as f64;
    if db.is_some() {
        tokio::time::sleep(settle).await;
    }
    let xacts_after = db.as_deref().and_then(pg_transactions);
    let pg_transactions = xacts_before
        .zip(xacts_after)
        .map(|(b, a)| (a - b) as f64 / accepted);
    // New backends started during the phase are not in `pg`: the pool
    // connected them all in the warm-up.
    Measured {
        cpu: after.saturating_sub(before) as f64 / ticks / accepted,
        pg_cpu: with_postgres.then(|| pg_after.saturating_sub(pg_before) as f64 / ticks / accepted),
        pg_transactions,
        sub,
    }
}

fn print_measured(m: &Measured, v: &Verifications, fields: usize) {
    let s = &m.sub;
    println!(
        "  submission (nonce POST + PUT with a verified licence, {DISCLOSED} of {fields} fields disclosed): {:>8.1} /s   PUT p50 {:>7.2} ms  p99 {:>7.2} ms   ({} done, {} errors)",
        s.rate,
        ms(s.p50),
        ms(s.p99),
        s.count,
        s.errors.len()
    );
    let ratio = m.cpu / v.total();
    let verdict = if ratio <= TARGET_CPU {
        "OK"
    } else {
        "ABOVE TARGET"
    };
    println!(
        "  server CPU per accepted submission: {:>8.1} µs = {ratio:.2} × the two signature verifications ({:.1} µs) (target ≤ {TARGET_CPU:.1}×) {verdict}   ({} accepted, {} of them just after the deadline)",
        us(m.cpu),
        us(v.total()),
        s.count + s.late,
        s.late
    );
    if let Some(pg) = m.pg_cpu {
        println!(
            "  PostgreSQL CPU per accepted submission (every postgres process of this host, not in the ratio): {:>8.1} µs",
            us(pg)
        );
    }
    if let Some(x) = m.pg_transactions {
        println!(
            "  PostgreSQL transactions per accepted submission (pg_stat_database commits + rollbacks of its database, nonce and PUT together): {x:.1}"
        );
    }
    for e in s.errors.iter().take(3) {
        println!("  error: {e}");
    }
}

/// The rate limiter's cost: the submission rate with limiting on against
/// off, measured in the same run; target ≥ 0.95.
const TARGET_LIMITED: f64 = 0.95;

/// Submissions per second on a fresh SQLite server started with `extra` flags.
async fn limited_rate(extra: &[&str], secs: f64, quick: bool) -> Outcome {
    let l = load(start_sqlite(extra)).await;
    let warm = if quick { 0.2 } else { 1.0 };
    run_phase(&l.devices, &l.form, Phase::Submit, "warm", warm).await;
    let outcome = run_phase(&l.devices, &l.form, Phase::Submit, "load", secs).await;
    logs_on_errors(&l.dep, &outcome);
    outcome
}

async fn sqlite(secs: f64, quick: bool, ticks: f64, verify_n: u32) -> Verifications {
    let l = load(start_sqlite(&["--no-rate-limits"])).await;
    // The verifications are timed while the server idles.
    let v = time_verifications(&l.dep, &l.devices[0], &l.form, verify_n).await;
    println!("guide {} ({})", l.form.guide_id, l.form.guide_name);
    println!(
        "raw signature verifications (in this process, one thread, {} of each): issuer's over the SD-JWT (Ed25519) {:.1} µs + holder's key binding JWT ({}) {:.1} µs = {:.1} µs per submission",
        v.n,
        us(v.issuer),
        l.devices[0].licence.holder_key().map_or("?", |k| k.alg()),
        us(v.key_binding),
        us(v.total())
    );
    let fields = l.devices[0].licence.claims().len();
    let m = measure(&l, secs, quick, ticks, false).await;
    let warm = if quick { 0.2 } else { 1.0 };
    run_phase(&l.devices, &l.form, Phase::Health, "warm", warm).await;
    let health = run_phase(&l.devices, &l.form, Phase::Health, "", secs).await;
    logs_on_errors(&l.dep, &health);
    drop(l);

    println!("[SQLite: one process, WAL, synchronous=FULL: durable commits]");
    print_measured(&m, &v, fields);
    println!(
        "  GET /livez (no-op):                                                  {:>8.1} /s       p50 {:>7.2} ms  p99 {:>7.2} ms   ({} done, {} errors)",
        health.rate,
        ms(health.p50),
        ms(health.p99),
        health.count,
        health.errors.len()
    );
    for e in health.errors.iter().take(3) {
        println!("  error: {e}");
    }
    let ratio = if health.rate > 0.0 {
        m.sub.rate / health.rate
    } else {
        0.0
    };
    let verdict = if ratio >= TARGET_RATIO {
        "OK"
    } else {
        "BELOW TARGET"
    };
    println!("  submission / livez ratio {ratio:.3} (target ≥ {TARGET_RATIO:.2}) {verdict}");

    // The same submissions on a server with every rate limiter checking.
    let on = limited_rate(LIMITS_ON, secs, quick).await;
    let off = limited_rate(&["--no-rate-limits"], secs, quick).await;
    println!(
        "  rate limiting on (every limiter checked, none refusing): {:>8.1} /s   PUT p50 {:>7.2} ms  p99 {:>7.2} ms   ({} errors)",
        on.rate,
        ms(on.p50),
        ms(on.p99),
        on.errors.len()
    );
    println!(
        "  rate limiting off:                                       {:>8.1} /s   PUT p50 {:>7.2} ms  p99 {:>7.2} ms   ({} errors)",
        off.rate,
        ms(off.p50),
        ms(off.p99),
        off.errors.len()
    );
    for e in on.errors.iter().chain(&off.errors).take(3) {
        println!("  error: {e}");
    }
    let limited = if off.rate > 0.0 {
        on.rate / off.rate
    } else {
        0.0
    };
    let verdict = if limited >= TARGET_LIMITED {
        "OK"
    } else {
        "BELOW TARGET"
    };
    println!("  rate limiter: on/off {limited:.3} (target ≥ {TARGET_LIMITED:.2}) {verdict}");
    v
}

async fn postgres_run(replicas: usize, secs: f64, quick: bool, ticks: f64, v: &Verifications) {
    let l = load(start_postgres(replicas)).await;
    let fields = l.devices[0].licence.claims().len();
    let m = measure(&l, secs, quick, ticks, true).await;
    drop(l);
    let (pool, set) = pg_pool();
    let pool = if set {
        format!("pool {pool} (ZHANGBAN_LOAD_PG_POOL)")
    } else {
        format!("pool {pool} (default)")
    };
    if replicas == 1 {
        println!("[PostgreSQL: one replica, {pool}, read-committed durable commits]");
    } else {
        println!(
            "[PostgreSQL: {replicas} replicas on one database, {pool} each, the {CONNECTIONS} connections spread round-robin over them]"
        );
    }
    print_measured(&m, v, fields);
    if replicas > 1 {
        let cores = std::thread::available_parallelism().map_or(0, usize::from);
        println!(
            "  note: this host has {cores} cores shared by the {replicas} replicas, PostgreSQL and this load generator: more replicas cannot be faster here, only show the cost of spreading (more processes, pools and caches on the same cores)"
        );
    }
}

async fn run(secs: f64, quick: bool) {
    let (ticks, assumed) = clock_ticks();
    println!(
        "server load: {CONNECTIONS} connections, {secs} s per phase, CPU from /proc at {ticks} ticks/s{}{}",
        if assumed {
            " (assumed: getconf CLK_TCK failed)"
        } else {
            " (getconf CLK_TCK)"
        },
        if quick {
            ", QUICK (not a measurement)"
        } else {
            ""
        }
    );
    let verify_n = if quick { 200 } else { 2000 };
    let v = sqlite(secs, quick, ticks, verify_n).await;
    if let Err(e) = postgres_answers() {
        println!("[PostgreSQL: skipped, no server answers at {e}]");
        return;
    }
    postgres_run(1, secs, quick, ticks, &v).await;
    postgres_run(3, secs, quick, ticks, &v).await;
}

fn main() {
    let quick = std::env::var_os("ZHANGBAN_BENCH_QUICK").is_some()
        || !std::env::args().any(|a| a == "--bench");
    let secs = std::env::var("ZHANGBAN_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .unwrap_or(if quick { 1.0 } else { 10.0 });
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(secs, quick));
}
