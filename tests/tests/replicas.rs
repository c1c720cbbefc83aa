//! Three `zhangban-server` processes on one PostgreSQL database (ADR 0221),
//! phones (the client core) and a proxy spreading their requests over the
//! replicas as a load balancer would:
//!
//! - 20 concurrent PUTs of one client id spread over the replicas make one
//!   submission, one tracking number and 20 identical receipts;
//! - guides published concurrently through every replica while phones sync
//!   in a loop: every phone ends with exactly the server's catalog;
//! - the same for status events fanned out to residents;
//! - a replica killed with SIGKILL in the middle of a stream of submissions,
//!   every database connection cut in the middle of another, and PostgreSQL
//!   itself crashed and restarted (a cluster of the test's own) in the
//!   middle of a third: every acknowledged submission is stored once, the
//!   replicas recover without a restart, the phones' outboxes drain;
//! - a trust bundle published on one replica reaches phones syncing from
//!   the others within the stated bound (`--trust-refresh-secs`).
//!
//! Why a plain `seq > since` would fail the feed tests is shown
//! deterministically at the store level (`server/tests/postgres_feeds.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use zhangban_core::client::Client;
use zhangban_core::guide::Guide;
use zhangban_server::store::Store;
use zhangban_server::store::postgres::{PgOptions, PgStore};
use zhangban_tests::proxy::{FaultPlan, FaultProxy};
use zhangban_tests::remote::Remote;
use zhangban_tests::replicas::Replicas;
use zhangban_tests::server::{Device, catalog, valid_values};
use zhangban_tests::{fill, seeded_rng, system_now};

const REPLICAS: usize = 3;

async fn start() -> Replicas {
    tokio::task::spawn_blocking(|| Replicas::start(REPLICAS))
        .await
        .unwrap()
}

/// A store on the replicas' database, for checking what was committed
/// (blocking calls run here off the runtime).
async fn stored<T: Send + 'static>(
    url: &str,
    f: impl FnOnce(&dyn Store) -> T + Send + 'static,
) -> T {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut o = PgOptions::new(url);
        o.pool_size = 2;
        let store = PgStore::connect(&o).unwrap();
        f(&store)
    })
    .await
    .unwrap()
}

fn remotes(r: &Replicas) -> Vec<Remote> {
    r.servers
        .iter()
        .map(|s| Remote::new(&s.url, reqwest::Client::new()))
        .collect()
}

/// A phone (the client core) talking to `url`, with fast retries.
async fn phone(path: &Path, url: &str, r: &Replicas) -> Client {
    let keystore = zhangban_core::client::SoftwareKeystore::beside(path).unwrap();
    let data_keys = zhangban_core::client::SoftwareDataKeyStore::beside(path).unwrap();
    let mut c = Client::open(
        path,
        url,
        vec![r.root.clone()],
        Arc::new(zhangban_core::client::SystemClock),
        Arc::new(keystore),
        Arc::new(data_keys),
    )
    .await
    .unwrap();
    c.set_backoff(zhangban_core::outbox::BackoffPolicy {
        base_secs: 1,
        max_secs: 1,
        max_immediate: 3,
    });
    c
}

/// A submission body for `guide`, valid today.
fn body(guide: &Guide) -> Value {
    json!({"guide_id": guide.id, "form_version": guide.form.version,
           "values": valid_values(guide, system_now())})
}

fn plain_guides(n: usize) -> Vec<&'static Guide> {
    let now = system_now();
    catalog()
        .iter()
        .filter(|g| fill(g, now).is_some() && !body(g).to_string().contains("presentation"))
        .take(n)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_puts_of_one_id_over_three_replicas_store_one_submission() {
    let r = start().await;
    let rs = remotes(&r);
    let admin = r.operator_token("demo-admin");
    let resident = rs[0].register(&admin, "replica-dedupe", 1).await;
    let dev = rs[1].device(&resident).await;
    let guide = plain_guides(1)[0];
    let body = body(guide);
    let client_id = "0b5f6c2e-2d9a-4f6e-9d7a-1c3e5a7b9d01";
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (remote, token, body) = (rs[i % REPLICAS].clone(), dev.token.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let resp = remote
                .req(Method::PUT, &format!("/v1/submissions/{client_id}"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = resp.status();
            (status, resp.json::<Value>().await.unwrap())
        }));
    }
    let mut receipts = BTreeSet::new();
    for t in tasks {
        let (status, v) = t.await.unwrap();
        assert!(status.is_success(), "{status}: {v}\n{}", r.logs());
        receipts.insert(v.to_string());
    }
    assert_eq!(receipts.len(), 1, "20 answers, one receipt: {receipts:?}");
    let subs = stored(r.db.url(), move |s| {
        s.submissions_of("replica-dedupe").unwrap()
    })
    .await;
    assert_eq!(subs.len(), 1);
    let receipt: Value = serde_json::from_str(receipts.first().unwrap()).unwrap();
    assert_eq!(
        receipt["tracking_number"],
        subs[0].receipt.tracking_number.as_str()
    );
}

/// Every guide id → checksum the server's feed holds now.
async fn server_catalog(remote: &Remote) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut since = 0;
    loop {
        let v: Value = remote
            .req(
                Method::GET,
                &format!("/v1/catalog/changes?since={since}&limit=500"),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let changes = v["changes"].as_array().unwrap();
        for c in changes {
            let id = c["id"].as_str().unwrap().to_owned();
            if c["guide"].is_null() && c["body"].is_null() {
                out.remove(&id);
            } else {
                out.insert(id, c["checksum"].as_str().unwrap().to_owned());
            }
            since = c["seq"].as_u64().unwrap();
        }
        if changes.is_empty() {
            return out;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn guides_published_through_every_replica_reach_every_phone_exactly() {
    let mut rng = seeded_rng("replicas_catalog");
    let r = start().await;
    let rs = remotes(&r);
    let proxy = FaultProxy::spread(r.addrs(), FaultPlan::clean(), 1)
        .await
        .unwrap();
    let publisher = r.operator_token("demo-publisher");
    let mut phones = Vec::new();
    for i in 0..3 {
        let mut p = phone(&r.path(&format!("phone-{i}.db")), &proxy.url(), &r).await;
        p.set_catalog_page_size(7);
        phones.push(p);
    }
    let done = Arc::new(AtomicBool::new(false));
    let targets: Vec<Guide> = catalog().iter().take(12).cloned().collect();
    let mut writers = Vec::new();
    for (w, remote) in rs.iter().cloned().enumerate() {
        let (publisher, targets) = (publisher.clone(), targets.clone());
        let order: Vec<usize> = (0..targets.len())
            .map(|_| rand::Rng::gen_range(&mut rng, 0..targets.len()))
            .collect();
        writers.push(tokio::spawn(async move {
            for (k, &t) in order.iter().cycle().take(25).enumerate() {
                let mut g = targets[t].clone();
                g.name = format!("{}（第{w}-{k}版）", g.name);
                let resp = remote
                    .req(Method::PUT, &format!("/v1/operator/guides/{}", g.id))
                    .bearer_auth(&publisher)
                    .json(&g)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    resp.status(),
                    StatusCode::OK,
                    "{}",
                    resp.text().await.unwrap()
                );
            }
        }));
    }
    let syncing: Vec<_> = phones
        .into_iter()
        .map(|p| {
            let done = Arc::clone(&done);
            tokio::spawn(async move {
                let mut rounds = 0;
                while !done.load(Ordering::SeqCst) {
                    p.sync_catalog().await.unwrap();
                    rounds += 1;
                }
                p.sync_catalog().await.unwrap();
                (p, rounds)
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let server = server_catalog(&rs[2]).await;
    assert_eq!(server.len(), catalog().len());
    for s in syncing {
        let (p, rounds) = s.await.unwrap();
        assert!(rounds > 0);
        assert_eq!(p.store().guide_count().unwrap(), server.len() as u64);
        for (id, checksum) in &server {
            assert_eq!(&p.guide(id).unwrap().checksum(), checksum, "{id}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_events_made_through_every_replica_reach_every_phone_exactly() {
    let r = start().await;
    let rs = remotes(&r);
    let proxy = FaultProxy::spread(r.addrs(), FaultPlan::clean(), 2)
        .await
        .unwrap();
    let (admin, reviewer) = (
        r.operator_token("demo-admin"),
        r.operator_token("demo-reviewer"),
    );
    let guides = plain_guides(4);
    let mut residents = Vec::new();
    let mut phones = Vec::new();
    let mut tracking = Vec::new();
    for i in 0..3 {
        let res = rs[i]
            .register(&admin, &format!("replica-events-{i}"), 2)
            .await;
        let dev: Device = rs[(i + 1) % REPLICAS].device(&res).await;
        let p = phone(&r.path(&format!("events-{i}.db")), &proxy.url(), &r).await;
        p.enrol(&res.code).await.unwrap();
        for k in 0..6 {
            let cid = format!("7c1d2e3f-0000-4000-8000-{i:04}{k:08}");
            let resp = rs[k % REPLICAS]
                .req(Method::PUT, &format!("/v1/submissions/{cid}"))
                .bearer_auth(&dev.token)
                .json(&body(guides[k % guides.len()]))
                .send()
                .await
                .unwrap();
            assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
            let v: Value = resp.json().await.unwrap();
            tracking.push(v["tracking_number"].as_str().unwrap().to_owned());
        }
        residents.push(res.id);
        phones.push(p);
    }
    let done = Arc::new(AtomicBool::new(false));
    // Three reviewers, one per replica, walk every submission through its
    // states at once (each submission's steps in order, by its own reviewer).
    let mut writers = Vec::new();
    for (w, remote) in rs.iter().cloned().enumerate() {
        let reviewer = reviewer.clone();
        let mine: Vec<String> = tracking.iter().skip(w).step_by(REPLICAS).cloned().collect();
        writers.push(tokio::spawn(async move {
            for state in ["accepted", "reviewing", "approved"] {
                for t in &mine {
                    let resp = remote
                        .req(
                            Method::POST,
                            &format!("/v1/operator/submissions/{t}/transition"),
                        )
                        .bearer_auth(&reviewer)
                        .json(&json!({"state": state, "note": format!("to {state}")}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(
                        resp.status(),
                        StatusCode::OK,
                        "{}",
                        resp.text().await.unwrap()
                    );
                }
            }
        }));
    }
    let syncing: Vec<_> = phones
        .into_iter()
        .map(|p| {
            let done = Arc::clone(&done);
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while !done.load(Ordering::SeqCst) {
                    seen.extend(p.sync_events().await.unwrap());
                }
                seen.extend(p.sync_events().await.unwrap());
                seen
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, Ordering::SeqCst);
    for (s, resident) in syncing.into_iter().zip(residents) {
        let seen = s.await.unwrap();
        let rid = resident.clone();
        let server = stored(r.db.url(), move |s| {
            s.events_since(&rid, 0, 10_000).unwrap()
        })
        .await;
        assert_eq!(server.len(), 6 * 4, "6 submissions × (submitted + 3 steps)");
        let got: Vec<(u64, String, String)> = seen
            .iter()
            .map(|e| (e.seq, e.tracking_number.clone(), e.state.clone()))
            .collect();
        let want: Vec<(u64, String, String)> = server
            .iter()
            .map(|e| (e.seq, e.tracking_number.clone(), e.state.clone()))
            .collect();
        assert_eq!(got, want, "{resident}: every event once, in order");
    }
}

/// Queues `n` submissions on `p` (offline: nothing is sent yet).
fn queue(p: &Client, tag: &str, n: usize) {
    let now = system_now();
    let guides = plain_guides(6);
    for k in 0..n {
        let g = guides[k % guides.len()];
        let draft = zhangban_tests::filled_draft(&format!("{tag}-{k:03}"), g, now).unwrap();
        p.submit(&draft).unwrap();
    }
}

/// Flushes every phone until nothing is pending (at most `deadline`).
async fn drain(phones: &[Client], deadline: Duration) {
    let until = Instant::now() + deadline;
    loop {
        let mut pending = 0;
        for p in phones {
            let _ = p.flush_now().await;
            pending += p.store().pending().unwrap().len();
        }
        if pending == 0 {
            return;
        }
        assert!(
            Instant::now() < until,
            "{pending} submissions still pending"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One enrolled, synced phone per replica's resident (registered through
/// that replica), all talking through `proxy`.
async fn streaming_phones(
    r: &Replicas,
    rs: &[Remote],
    proxy: &FaultProxy,
    tag: &str,
) -> (Arc<Vec<Client>>, Vec<String>) {
    let admin = r.operator_token("demo-admin");
    let mut phones = Vec::new();
    let mut residents = Vec::new();
    for (i, remote) in rs.iter().enumerate() {
        let res = remote
            .register(&admin, &format!("replica-{tag}-{i}"), 1)
            .await;
        let p = phone(&r.path(&format!("{tag}-{i}.db")), &proxy.url(), r).await;
        p.enrol(&res.code).await.unwrap();
        p.sync().await.unwrap();
        residents.push(res.id);
        phones.push(p);
    }
    (Arc::new(phones), residents)
}

/// Waits until the phones hold at least `n` receipts in all, then checks
/// that some submissions are still pending: the fault that follows lands in
/// the middle of the stream.
async fn mid_stream(phones: &[Client], n: usize) {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let held: usize = phones
            .iter()
            .map(|p| p.store().receipts().unwrap().len())
            .sum();
        if held >= n {
            break;
        }
        assert!(Instant::now() < until, "only {held} receipts after 60 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let pending: usize = phones
        .iter()
        .map(|p| p.store().pending().unwrap().len())
        .sum();
    assert!(pending > 0, "the stream ended before the fault");
}

/// Every receipt a phone holds names a submission stored once with that
/// tracking number, and the resident has no other.
async fn check_exactly_once(r: &Replicas, phones: &[Client], residents: &[String], queued: usize) {
    for (p, resident) in phones.iter().zip(residents) {
        let receipts = p.store().receipts().unwrap();
        assert_eq!(
            receipts.len(),
            queued,
            "{resident}: every queued submission acknowledged"
        );
        let rid = resident.clone();
        let subs = stored(r.db.url(), move |s| s.submissions_of(&rid).unwrap()).await;
        let on_server: BTreeMap<String, String> = subs
            .iter()
            .map(|s| {
                (
                    s.receipt.client_id.clone(),
                    s.receipt.tracking_number.clone(),
                )
            })
            .collect();
        assert_eq!(on_server.len(), subs.len(), "no client id twice");
        let on_phone: BTreeMap<String, String> = receipts.into_iter().collect();
        assert_eq!(
            on_phone, on_server,
            "{resident}: the phone's receipts are the server's"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_killed_and_the_database_connections_cut_lose_and_duplicate_nothing() {
    let mut r = start().await;
    let rs = remotes(&r);
    let proxy = FaultProxy::spread(r.addrs(), FaultPlan::clean(), 3)
        .await
        .unwrap();
    let (phones, residents) = streaming_phones(&r, &rs, &proxy, "kill").await;

    // Stream 1: a replica is SIGKILLed while the phones flush.
    for (i, p) in phones.iter().enumerate() {
        queue(p, &format!("kill-{i}"), 40);
    }
    let flushing = {
        let phones = Arc::clone(&phones);
        tokio::spawn(async move { drain(&phones, Duration::from_secs(120)).await })
    };
    mid_stream(&phones, 10).await;
    r.servers[1].kill();
    flushing.await.unwrap();
    check_exactly_once(&r, &phones, &residents, 40).await;

    // Stream 2: every connection to the database is cut (what a PostgreSQL
    // restart does to its clients) while the phones flush; the replicas
    // take new connections on their own.
    for (i, p) in phones.iter().enumerate() {
        queue(p, &format!("cut-{i}"), 40);
    }
    let flushing = {
        let phones = Arc::clone(&phones);
        tokio::spawn(async move { drain(&phones, Duration::from_secs(120)).await })
    };
    mid_stream(&phones, 130).await;
    let url = r.db.url().to_owned();
    let cut = tokio::task::spawn_blocking(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        c.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .unwrap()
        .len()
    })
    .await
    .unwrap();
    assert!(cut > 0, "connections were cut");
    flushing.await.unwrap();
    check_exactly_once(&r, &phones, &residents, 80).await;
    // The two replicas left answered throughout; the killed one comes back
    // on the same database.
    r.servers[1].restart();
    let health = rs[1].req(Method::GET, "/healthz").send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgresql_crash_and_restart_mid_stream_loses_and_duplicates_nothing() {
    // A cluster of this test's own: the shared server is not restarted.
    let (cluster, r) = tokio::task::spawn_blocking(|| {
        let cluster = zhangban_tests::postgres::Cluster::start();
        let db = zhangban_tests::postgres::TestDatabase::create_on(&cluster.admin_url());
        let r = Replicas::start_on(REPLICAS, db);
        (cluster, r)
    })
    .await
    .unwrap();
    let cluster = Arc::new(cluster);
    let rs = remotes(&r);
    let proxy = FaultProxy::spread(r.addrs(), FaultPlan::clean(), 4)
        .await
        .unwrap();
    let (phones, residents) = streaming_phones(&r, &rs, &proxy, "restart").await;
    for (i, p) in phones.iter().enumerate() {
        queue(p, &format!("restart-{i}"), 40);
    }
    let flushing = {
        let phones = Arc::clone(&phones);
        tokio::spawn(async move { drain(&phones, Duration::from_secs(180)).await })
    };
    mid_stream(&phones, 10).await;
    let c = Arc::clone(&cluster);
    tokio::task::spawn_blocking(move || c.crash_and_restart())
        .await
        .unwrap();
    flushing.await.unwrap();
    check_exactly_once(&r, &phones, &residents, 40).await;
    // The replicas were not restarted: each answers from the database again.
    for remote in &rs {
        let v: Value = remote
            .req(Method::GET, "/healthz")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["status"], "ok", "{v}");
    }
    drop(r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_trust_bundle_published_on_one_replica_reaches_phones_of_the_others_in_time() {
    let r = start().await;
    let rs = remotes(&r);
    let mut phones = Vec::new();
    for (i, s) in r.servers.iter().enumerate().skip(1) {
        let p = phone(&r.path(&format!("trust-{i}.db")), &s.url, &r).await;
        let first = p.sync_trust().await.unwrap();
        assert_eq!(first.bundle_version, Some(1));
        phones.push(p);
    }
    // Version 2, signed with the demo root key, published through replica 0.
    let dir = &r.data_dir;
    let jws_path = r.path("bundle-v2.jws");
    let out = std::process::Command::new(zhangban_tests::process::server_bin())
        .args(["bundle", "sign", "--root"])
        .arg(dir.join("root.key.json"))
        .arg("--issuers")
        .arg(dir.join("issuers.json"))
        .args(["--version", "2", "--out"])
        .arg(&jws_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let jws = std::fs::read_to_string(&jws_path).unwrap();
    let published = Instant::now();
    let resp = rs[0]
        .req(Method::PUT, "/v1/operator/trust-bundle")
        .bearer_auth(r.operator_token("demo-admin"))
        .body(jws.trim().to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "{}",
        resp.text().await.unwrap()
    );
    // The bound is the refresh interval (plus a request); the deadline is
    // generous so a loaded machine does not fail it, the time is printed.
    let bound = Duration::from_secs(r.trust_refresh_secs);
    for p in &phones {
        loop {
            if p.sync_trust().await.unwrap().bundle_version == Some(2) {
                break;
            }
            assert!(
                published.elapsed() < bound * 20,
                "version 2 not served by another replica after {:?}",
                published.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    eprintln!(
        "trust bundle v2 reached phones of the other replicas after {:?} (bound {:?} + one request)",
        published.elapsed(),
        bound
    );
}
