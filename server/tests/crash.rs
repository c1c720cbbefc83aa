//! Crash consistency of submissions: the real `zhangban-server` binary is
//! SIGKILLed at random moments while several clients stream submissions,
//! restarted on the same data directory, and killed again (4 cycles). After
//! the final restart every receipt a client received must still be there
//! with the same tracking number, and retrying every client id that was sent
//! (answered or not) must give exactly one submission each: no loss of
//! anything acknowledged, no duplicates from retries.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ed25519_dalek::Signer as _;
use rand::Rng as _;
use serde_json::{Value, json};
use zhangban_core::credential::KeyPair;
use zhangban_core::credential::jose::b64e;
use zhangban_server::api::auth::challenge_message;
use zhangban_server::setup::DEMO_ACTIVATION_CODE;

use zhangban_tests::forms::{catalog, fill};
use zhangban_tests::process::{Scratch, ServerProcess};

/// SIGKILL / restart cycles.
const KILL_CYCLES: usize = 4;
/// Concurrent submitting clients.
const WRITERS: usize = 4;
/// Receipts a cycle must have seen before the kill may come (so it is mid-stream).
const MIN_RECEIPTS_BEFORE_KILL: usize = 3;

/// `serve --demo` on `data` (a fresh port each time). Durability under a
/// flood of one resident's submissions, not rate limiting, is tested here.
fn start_server(scratch: &Scratch, data: &Path, log: &Path) -> ServerProcess {
    ServerProcess::start(scratch.dir(), data, log, &["--no-rate-limits"])
}

async fn post_json(http: &reqwest::Client, url: String, body: &Value) -> Value {
    let resp = http.post(&url).json(body).send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(status.is_success(), "POST {url}: {status} {text}");
    serde_json::from_str(&text).unwrap()
}

async fn enrol(http: &reqwest::Client, base: &str, key: &KeyPair) {
    post_json(
        http,
        format!("{base}/v1/devices/enrol"),
        &json!({"activation_code": DEMO_ACTIVATION_CODE, "device_jwk": key.public().to_jwk()}),
    )
    .await;
}

/// Challenge, sign, token.
async fn authenticate(http: &reqwest::Client, base: &str, key: &KeyPair) -> String {
    let device_id = key.public().thumbprint();
    let c = post_json(
        http,
        format!("{base}/v1/auth/challenge"),
        &json!({"device_id": device_id}),
    )
    .await;
    let cid = c["challenge_id"].as_str().unwrap();
    let nonce = c["nonce"].as_str().unwrap();
    let sig = key
        .signing_key()
        .sign(challenge_message(cid, nonce).as_bytes());
    let t = post_json(
        http,
        format!("{base}/v1/auth/token"),
        &json!({"device_id": device_id, "challenge_id": cid, "signature": b64e(sig.to_bytes())}),
    )
    .await;
    t["token"].as_str().unwrap().to_owned()
}

/// What the clients sent and what they were told.
#[derive(Default)]
struct Ledger {
    /// Every client id a PUT was started for.
    sent: BTreeSet<String>,
    /// Client id → tracking number, for every receipt received.
    received: BTreeMap<String, String>,
    /// Answers that are neither a receipt nor a dropped connection.
    unexpected: Vec<String>,
}

async fn put_submission(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    client_id: &str,
    body: &Value,
) -> Result<(reqwest::StatusCode, String), reqwest::Error> {
    let resp = http
        .put(format!("{base}/v1/submissions/{client_id}"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await?;
    let status = resp.status();
    Ok((status, resp.text().await?))
}

/// One client: fresh ids, one after another, until the server goes away.
async fn writer(
    http: reqwest::Client,
    base: String,
    token: String,
    body: Value,
    prefix: String,
    ledger: Arc<Mutex<Ledger>>,
    receipts: Arc<AtomicUsize>,
) {
    for n in 0.. {
        let client_id = format!("{prefix}-{n:05}");
        ledger.lock().unwrap().sent.insert(client_id.clone());
        match put_submission(&http, &base, &token, &client_id, &body).await {
            Ok((status, text)) if status == reqwest::StatusCode::OK => {
                let receipt: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(receipt["client_id"], json!(client_id));
                let tracking = receipt["tracking_number"].as_str().unwrap().to_owned();
                ledger.lock().unwrap().received.insert(client_id, tracking);
                receipts.fetch_add(1, Ordering::SeqCst);
            }
            Ok((status, text)) => {
                ledger
                    .lock()
                    .unwrap()
                    .unexpected
                    .push(format!("{client_id}: {status} {text}"));
                return;
            }
            // Refused, reset or cut mid-response: the server was killed.
            Err(_) => return,
        }
    }
}

async fn submissions_by_client(http: &reqwest::Client, base: &str, token: &str) -> Vec<Value> {
    let resp = http
        .get(format!("{base}/v1/submissions"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    resp.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_submissions_survive_sigkill_and_retries_do_not_duplicate() {
    let started = Instant::now();
    let scratch = Scratch::new("crash");
    let data = scratch.path("data");
    let log = scratch.path("server.log");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();

    let mut server = start_server(&scratch, &data, &log);
    let key = KeyPair::generate(&mut rand::rngs::OsRng);
    enrol(&http, &server.url, &key).await;
    let now = zhangban_tests::system_now();
    let guides = catalog(&http, &server.url).await;
    assert_eq!(guides.len(), 1135, "the demo catalog");
    let (guide, values) = guides
        .iter()
        .find_map(|g| fill(g, now).map(|v| (g, v)))
        .expect("a guide whose form the simple filler can fill");
    // Every submission has the same content; only the client id differs, so
    // a retry of any id is the identical request.
    let body = json!({"guide_id": guide.id, "form_version": guide.form.version, "values": values});

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    // The kill moments are random but replayable: the seed is printed
    // (shown when the test fails) and ZHANGBAN_TEST_SEED replays it.
    let mut rng = zhangban_tests::seeded_rng("crash");
    for cycle in 0..KILL_CYCLES {
        if cycle > 0 {
            server = start_server(&scratch, &data, &log);
        }
        let token = authenticate(&http, &server.url, &key).await;
        let receipts = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..WRITERS)
            .map(|w| {
                tokio::spawn(writer(
                    http.clone(),
                    server.url.clone(),
                    token.clone(),
                    body.clone(),
                    format!("crash-c{cycle}-w{w}"),
                    Arc::clone(&ledger),
                    Arc::clone(&receipts),
                ))
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(20);
        while receipts.load(Ordering::SeqCst) < MIN_RECEIPTS_BEFORE_KILL {
            assert!(
                Instant::now() < deadline,
                "no receipts in cycle {cycle}: {:?}",
                ledger.lock().unwrap().unexpected
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_micros(rng.gen_range(0..300_000))).await;
        server.kill();
        for t in tasks {
            t.await.unwrap();
        }
        let l = ledger.lock().unwrap();
        assert!(
            l.unexpected.is_empty(),
            "unexpected answers: {:?}",
            l.unexpected
        );
        println!(
            "cycle {cycle}: killed after {} receipts in this cycle; {} sent, {} received so far",
            receipts.load(Ordering::SeqCst),
            l.sent.len(),
            l.received.len()
        );
    }

    // The final restart: nothing acknowledged is lost.
    let server = start_server(&scratch, &data, &log);
    let token = authenticate(&http, &server.url, &key).await;
    let (sent, received) = {
        let l = ledger.lock().unwrap();
        (l.sent.clone(), l.received.clone())
    };
    let stored: BTreeMap<String, String> = submissions_by_client(&http, &server.url, &token)
        .await
        .iter()
        .map(|r| {
            (
                r["receipt"]["client_id"].as_str().unwrap().to_owned(),
                r["receipt"]["tracking_number"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (client_id, tracking) in &received {
        assert_eq!(
            stored.get(client_id),
            Some(tracking),
            "acknowledged submission {client_id} lost or changed after SIGKILL"
        );
    }
    for client_id in stored.keys() {
        assert!(
            sent.contains(client_id),
            "a submission nobody sent: {client_id}"
        );
    }
    let committed_unanswered = stored.len() - received.len();

    // Retrying every id sent, answered or not, gives one submission each.
    let ids: Vec<String> = sent.iter().cloned().collect();
    let retried = Arc::new(Mutex::new(BTreeMap::new()));
    let tasks: Vec<_> = ids
        .chunks(ids.len().div_ceil(WRITERS))
        .map(|chunk| {
            let (http, base, token, body) = (
                http.clone(),
                server.url.clone(),
                token.clone(),
                body.clone(),
            );
            let chunk = chunk.to_vec();
            let retried = Arc::clone(&retried);
            tokio::spawn(async move {
                for client_id in chunk {
                    let (status, text) = put_submission(&http, &base, &token, &client_id, &body)
                        .await
                        .unwrap();
                    assert_eq!(
                        status,
                        reqwest::StatusCode::OK,
                        "retry of {client_id}: {text}"
                    );
                    let receipt: Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(receipt["client_id"], json!(client_id));
                    let tracking = receipt["tracking_number"].as_str().unwrap().to_owned();
                    retried.lock().unwrap().insert(client_id, tracking);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let retried = retried.lock().unwrap().clone();
    for (client_id, tracking) in received.iter().chain(&stored) {
        assert_eq!(
            retried.get(client_id),
            Some(tracking),
            "a retry of {client_id} got another receipt"
        );
    }

    let after = submissions_by_client(&http, &server.url, &token).await;
    let ids_after: BTreeSet<&str> = after
        .iter()
        .map(|r| r["receipt"]["client_id"].as_str().unwrap())
        .collect();
    let tracking_after: BTreeSet<&str> = after
        .iter()
        .map(|r| r["receipt"]["tracking_number"].as_str().unwrap())
        .collect();
    assert_eq!(after.len(), sent.len(), "one submission per client id sent");
    assert_eq!(ids_after.len(), after.len(), "duplicate client ids");
    assert_eq!(
        tracking_after.len(),
        after.len(),
        "duplicate tracking numbers"
    );
    assert!(
        ids_after
            .iter()
            .copied()
            .eq(sent.iter().map(String::as_str))
    );
    println!(
        "{KILL_CYCLES} SIGKILLs: {} client ids sent, {} receipts received, {committed_unanswered} committed \
         but unanswered, {} first stored on retry; {} submissions after retries ({:.1} s)",
        sent.len(),
        received.len(),
        sent.len() - stored.len(),
        after.len(),
        started.elapsed().as_secs_f64()
    );
}
