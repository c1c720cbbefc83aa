//! The client CLI process (`zhangban phone flush`) is killed with SIGKILL
//! at random moments while it flushes a queue of submissions, again and
//! again; after restarts every submission is on the server exactly once and
//! the phone holds the matching receipt for each.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use zhangban_core::client::{Client, ManualClock, SoftwareDataKeyStore, SoftwareKeystore};
use zhangban_tests::process::zhangban_bin;
use zhangban_tests::{DEMO_ACTIVATION_CODE, TestServer, fillable_guides, filled_draft, system_now};

fn flush_cmd(bin: &Path, store: &Path, url: &str, root: &Path) -> Command {
    let mut c = Command::new(bin);
    c.arg("phone")
        .arg("--store")
        .arg(store)
        .arg("--server")
        .arg(url)
        .arg("--root-pub")
        .arg(root)
        .arg("flush")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// The first batch; a batch that drains before its kill doubles the next one
/// (up to `MAX_BATCH`), so a fast machine still gets killed mid-flush
/// instead of the test depending on how fast the flush runs.
const BATCH: usize = 200;
const MAX_BATCH: usize = 3_200;
/// Flush processes started at most: the test ends even if kills never land.
const MAX_ROUNDS: usize = 200;

/// Queues `count` more submissions with the library (as the app would), then closes.
async fn queue_batch(store_path: &Path, server: &TestServer, from: usize, count: usize) {
    let clock = Arc::new(ManualClock::new(system_now()));
    let client = Client::open(
        store_path,
        &server.base,
        vec![server.root.clone()],
        clock,
        Arc::new(SoftwareKeystore::beside(store_path).unwrap()),
        Arc::new(SoftwareDataKeyStore::beside(store_path).unwrap()),
    )
    .await
    .unwrap();
    if client.device().is_err() {
        client.enrol(DEMO_ACTIVATION_CODE).await.unwrap();
        client.sync().await.unwrap();
    }
    let now = system_now();
    let guides = fillable_guides(&client, now);
    for i in from..from + count {
        let g = &guides[i % guides.len()];
        client
            .submit(&filled_draft(&format!("draft-{i:05}"), g, now).unwrap())
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_killed_mid_flush_twenty_times_loses_and_duplicates_nothing() {
    let bin = zhangban_bin();
    let server = TestServer::start_demo().await;
    let dir = tempfile::tempdir().unwrap();
    let store_path = dir.path().join("phone.db");
    let root_path = dir.path().join("root.pub.json");
    std::fs::write(&root_path, server.root.to_jwk().to_string()).unwrap();

    let (mut queued, mut batch) = (0, BATCH);
    queue_batch(&store_path, &server, queued, batch).await;
    queued += batch;

    let url = server.base.clone();
    let mut rng = StdRng::seed_from_u64(20_261_202);
    let (mut kills, mut rounds) = (0, 0);
    while kills < 25 && rounds < MAX_ROUNDS {
        rounds += 1;
        let mut child = flush_cmd(&bin, &store_path, &url, &root_path)
            .spawn()
            .unwrap();
        let pause = Duration::from_millis(rng.gen_range(20..250));
        let (k, status) = tokio::task::spawn_blocking(move || {
            std::thread::sleep(pause);
            match child.try_wait().unwrap() {
                Some(status) => (false, status),
                None => {
                    child.kill().unwrap(); // SIGKILL
                    (true, child.wait().unwrap())
                }
            }
        })
        .await
        .unwrap();
        if k {
            kills += 1;
            continue;
        }
        // It finished before the kill: the queue drained. Queue more, and
        // more than last time, so that the next flush is still running when
        // its kill comes.
        assert!(status.success(), "flush failed: {status}");
        batch = (batch * 2).min(MAX_BATCH);
        queue_batch(&store_path, &server, queued, batch).await;
        queued += batch;
    }
    assert_eq!(
        kills, 25,
        "{rounds} flush processes, too few killed mid-flush"
    );

    // Restart without killing until nothing is pending.
    for _ in 0..10 {
        let out = flush_cmd(&bin, &store_path, &server.base, &root_path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if zhangban_tests::open_store(&store_path)
            .await
            .pending()
            .unwrap()
            .is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    let store = zhangban_tests::open_store(&store_path).await;
    assert!(store.pending().unwrap().is_empty(), "outbox drained");
    let mine: BTreeMap<String, String> = store.receipts().unwrap().into_iter().collect();
    let mut theirs = BTreeMap::new();
    for r in server.submissions() {
        assert!(
            theirs
                .insert(
                    r.receipt.client_id.clone(),
                    r.receipt.tracking_number.clone()
                )
                .is_none(),
            "duplicated on the server"
        );
    }
    assert_eq!(theirs.len(), queued, "0 lost, 0 duplicated on the server");
    assert_eq!(mine.len(), queued, "a receipt for every submission");
    assert_eq!(mine, theirs, "the phone's receipts are the server's");
    let outbox = store.outbox().unwrap();
    assert_eq!(outbox.len(), queued);
    let resent = outbox.iter().filter(|e| e.attempts > 1).count();
    println!(
        "{kills} SIGKILLs mid-flush; {queued} submissions, each once ({resent} sent more than once)"
    );
}
