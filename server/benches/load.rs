//! Server load: durable submissions with a verified licence, against a
//! no-op-ish endpoint measured with the same connections in the same run.
//!
//! `cargo bench -p zhangban-server --bench load` builds the server binary in
//! the bench (release) profile, since a bench target gets
//! `CARGO_BIN_EXE_zhangban-server` built by the same cargo invocation, and
//! starts it with `serve --demo` on a fresh data directory under the system
//! temp dir (on disk: `synchronous=FULL` commits really fsync). 64 devices of
//! the demo resident are enrolled, each with its own connection (its own
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
//! Phase 2, as long: `GET /livez` on the same 64 connections: the no-op
//! endpoint (routing, the metrics and tracing layers, a tiny JSON body —
//! nothing else).
//!
//! Prints both rates, p50/p99 latencies and the ratio against the target
//! (≥ 0.30). Phases 1-2 run with `--no-rate-limits`. Then the rate
//! limiter's cost: phase 1 again on two fresh servers, one with every
//! limiter checking (limits set high enough that none refuses), one with
//! none, and their ratio against the target (≥ 0.95). Nothing is asserted. With `ZHANGBAN_BENCH_QUICK=1`, or when run
//! without `--bench` (e.g. by `cargo test --all-targets`), phases last 1 s.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::Signer as _;
use serde_json::{Map, Value, json};
use zhangban_core::credential::jose::b64e;
use zhangban_core::credential::{HeldLicence, KeyBindingRequest, KeyPair};
use zhangban_core::guide::{FieldKind, Guide};
use zhangban_server::api::auth::challenge_message;
use zhangban_server::setup::DEMO_ACTIVATION_CODE;

use zhangban_tests::forms::{catalog, fill};
use zhangban_tests::process::{Scratch, ServerProcess};
use zhangban_tests::server::json_ok;

const CONNECTIONS: usize = 64;
const TARGET_RATIO: f64 = 0.30;
/// The demo business licence's type.
const BUSINESS_VCT: &str = "urn:zhangban:licence-type:11100000000013338W050";
/// Fields disclosed in each presentation.
const DISCLOSED: usize = 3;

/// The server process and its data directory; both go away on drop.
struct Server {
    _process: ServerProcess,
    base: String,
    _scratch: Scratch,
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

fn start_server(extra: &[&str]) -> Server {
    let scratch = Scratch::new("load");
    let process = ServerProcess::start(
        scratch.dir(),
        &scratch.path("data"),
        &scratch.path("server.log"),
        extra,
    );
    Server {
        base: process.url.clone(),
        _process: process,
        _scratch: scratch,
    }
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

/// One enrolled device: its connection, key, token and business licence.
struct Device {
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
    version: u32,
    licence_field: String,
    values: Map<String, Value>,
}

/// One submission: nonce, presentation, PUT. Returns the PUT's latency.
async fn submit(base: &str, d: &Device, form: &Form, client_id: &str) -> Result<Duration, String> {
    let n = post_json(
        &d.http,
        format!("{base}/v1/submissions/{client_id}/nonce"),
        Some(&d.token),
        &json!({"guide_id": form.guide_id}),
    )
    .await;
    let fields: Vec<&str> = d.fields.iter().map(String::as_str).collect();
    let presentation = d
        .licence
        .present(
            &fields,
            Some(KeyBindingRequest {
                key: &d.key,
                audience: &form.guide_id,
                nonce: n["nonce"].as_str().unwrap(),
                iat: chrono::Utc::now().timestamp(),
            }),
        )
        .unwrap();
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

async fn healthz(base: &str, d: &Device) -> Result<Duration, String> {
    let start = Instant::now();
    let resp = d
        .http
        .get(format!("{base}/livez"))
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
    errors: Vec<String>,
}

/// Runs `phase` on every device for `secs`; operations completed after the deadline are not counted.
async fn run_phase(
    base: &Arc<String>,
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
            let (base, devices, form, tag) = (
                Arc::clone(base),
                Arc::clone(devices),
                Arc::clone(form),
                tag.to_owned(),
            );
            tokio::spawn(async move {
                let d = &devices[i];
                let mut latencies = Vec::new();
                let mut errors = Vec::new();
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let r = match phase {
                        Phase::Submit => {
                            n += 1;
                            submit(&base, d, &form, &format!("{tag}-{i:02}-{n:07}")).await
                        }
                        Phase::Health => healthz(&base, d).await,
                    };
                    if Instant::now() > deadline {
                        break;
                    }
                    match r {
                        Ok(t) => latencies.push(t),
                        Err(e) => errors.push(e),
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = Vec::new();
    for t in tasks {
        let (l, e) = t.await.unwrap();
        latencies.extend(l);
        errors.extend(e);
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
        errors,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The rate limiter's cost: the submission rate with limiting on against
/// off, measured in the same run; target ≥ 0.95.
const TARGET_LIMITED: f64 = 0.95;

/// Submissions per second on a fresh server started with `extra` flags.
async fn limited_rate(extra: &[&str], secs: f64, quick: bool) -> Outcome {
    let server = start_server(extra);
    let base = Arc::new(server.base.clone());
    let guides = catalog(&reqwest::Client::new(), &base).await;
    let (guide, licence_field, values) = pick_guide(&guides);
    let form = Arc::new(Form {
        guide_id: guide.id.clone(),
        version: guide.form.version,
        licence_field,
        values,
    });
    let mut devices = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        devices.push(device(&base).await);
    }
    let devices = Arc::new(devices);
    let warm = if quick { 0.2 } else { 1.0 };
    run_phase(&base, &devices, &form, Phase::Submit, "warm", warm).await;
    run_phase(&base, &devices, &form, Phase::Submit, "load", secs).await
}

async fn run(secs: f64, quick: bool) {
    let server = start_server(&["--no-rate-limits"]);
    let base = Arc::new(server.base.clone());
    let guides = catalog(&reqwest::Client::new(), &base).await;
    let (guide, licence_field, values) = pick_guide(&guides);
    let form = Arc::new(Form {
        guide_id: guide.id.clone(),
        version: guide.form.version,
        licence_field,
        values,
    });
    let mut devices = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        devices.push(device(&base).await);
    }
    let devices = Arc::new(devices);
    // Fails loudly if the chosen form or presentation is not accepted.
    if let Err(e) = submit(&base, &devices[0], &form, "load-check-0001").await {
        panic!("a valid submission was refused: {e}");
    }
    let warm = if quick { 0.2 } else { 1.0 };
    run_phase(&base, &devices, &form, Phase::Submit, "warm", warm).await;
    let sub = run_phase(&base, &devices, &form, Phase::Submit, "load", secs).await;
    run_phase(&base, &devices, &form, Phase::Health, "warm", warm).await;
    let health = run_phase(&base, &devices, &form, Phase::Health, "", secs).await;
    drop(server);

    println!(
        "server load: {CONNECTIONS} connections, {secs} s per phase, guide {} ({}), durable commits (SQLite WAL, synchronous=FULL){}",
        guide.id,
        guide.name,
        if quick {
            ", QUICK (not a measurement)"
        } else {
            ""
        }
    );
    println!(
        "  submission (nonce POST + PUT with a verified licence, {DISCLOSED} of {} fields disclosed): {:>8.1} /s   PUT p50 {:>7.2} ms  p99 {:>7.2} ms   ({} done, {} errors)",
        devices[0].licence.claims().len(),
        sub.rate,
        ms(sub.p50),
        ms(sub.p99),
        sub.count,
        sub.errors.len()
    );
    println!(
        "  GET /livez (no-op):                                                  {:>8.1} /s       p50 {:>7.2} ms  p99 {:>7.2} ms   ({} done, {} errors)",
        health.rate,
        ms(health.p50),
        ms(health.p99),
        health.count,
        health.errors.len()
    );
    for e in sub.errors.iter().chain(&health.errors).take(3) {
        println!("  error: {e}");
    }
    let ratio = if health.rate > 0.0 {
        sub.rate / health.rate
    } else {
        0.0
    };
    let verdict = if ratio >= TARGET_RATIO {
        "OK"
    } else {
        "BELOW TARGET"
    };
    println!("ratio {ratio:.3} (target ≥ {TARGET_RATIO:.2}) {verdict}");

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
    println!("rate limiter: on/off {limited:.3} (target ≥ {TARGET_LIMITED:.2}) {verdict}");
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
