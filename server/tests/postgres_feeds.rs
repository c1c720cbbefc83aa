//! Why PostgreSQL's feeds need the feed rule of ADR 0221, shown
//! deterministically (no timing): with a plain sequence, a reader that
//! passed a position skips a row committed later below it; the store's
//! writers instead wait on the feed's lock row while another writer's
//! transaction is open, so a position can only appear after every lower one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use zhangban_server::store::postgres::{PgOptions, PgStore};
use zhangban_server::store::prelude::*;
use zhangban_tests::postgres::TestDatabase;

fn connect(db: &TestDatabase) -> postgres::Client {
    postgres::Client::connect(db.url(), postgres::NoTls).unwrap()
}

fn store(db: &TestDatabase) -> PgStore {
    PgStore::connect(&PgOptions::new(db.url())).unwrap()
}

/// Waits until a backend of the store's pool is blocked on a lock.
fn wait_for_a_blocked_writer(admin: &mut postgres::Client) {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let waiting: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND application_name = 'zhangban-server'
                   AND wait_event_type = 'Lock'",
                &[],
            )
            .unwrap()
            .get(0);
        if waiting > 0 {
            return;
        }
        assert!(Instant::now() < until, "the store's writer never waited");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_plain_sequence_feed_skips_a_row_that_commits_late() {
    let db = TestDatabase::create();
    let mut setup = connect(&db);
    setup
        .batch_execute("CREATE TABLE naive (seq BIGSERIAL PRIMARY KEY, id TEXT NOT NULL)")
        .unwrap();
    let (mut a, mut b, mut reader) = (connect(&db), connect(&db), connect(&db));
    let mut ta = a.transaction().unwrap();
    ta.execute("INSERT INTO naive(id) VALUES ('first')", &[])
        .unwrap(); // takes 1
    b.execute("INSERT INTO naive(id) VALUES ('second')", &[])
        .unwrap(); // takes 2, commits
    let page: Vec<i64> = reader
        .query("SELECT seq FROM naive WHERE seq > 0 ORDER BY seq", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        page,
        vec![2],
        "the reader sees 2 and moves its cursor there"
    );
    ta.commit().unwrap(); // 1 commits after the reader passed it
    let next = reader
        .query("SELECT seq FROM naive WHERE seq > 2 ORDER BY seq", &[])
        .unwrap();
    assert!(
        next.is_empty(),
        "row 1 is never seen: the plain feed skipped it"
    );
}

#[test]
fn a_catalog_writer_waits_for_the_open_one_so_positions_commit_in_order() {
    let db = TestDatabase::create();
    let s = store(&db);
    s.put_guide("g0", "c0", "{}").unwrap();
    // Another replica's writer in the middle of its transaction, exactly as
    // the store writes: it holds the catalog counter row.
    let mut other = connect(&db);
    let mut open = other.transaction().unwrap();
    let seq: i64 = open
        .query_one(
            "UPDATE counters SET value = value + 1 WHERE name = 'catalog' RETURNING value",
            &[],
        )
        .unwrap()
        .get(0);
    open.execute(
        "INSERT INTO guides(id, seq, checksum, body, deleted) VALUES ('g1', $1, 'c1', '{}', FALSE)",
        &[&seq],
    )
    .unwrap();
    let writer = {
        let url = db.url().to_owned();
        std::thread::spawn(move || {
            let s = PgStore::connect(&PgOptions::new(url)).unwrap();
            s.put_guide("g2", "c2", "{}").unwrap()
        })
    };
    let mut admin = connect(&db);
    wait_for_a_blocked_writer(&mut admin);
    // While the first writer is open the reader sees neither new guide,
    // so its cursor cannot pass the first writer's position.
    let page = s.catalog_changes(1, 100).unwrap();
    assert!(page.changes.is_empty(), "{page:?}");
    open.commit().unwrap();
    let later = writer.join().unwrap();
    assert_eq!(later, u64::try_from(seq).unwrap() + 1);
    let ids: Vec<String> = s
        .catalog_changes(1, 100)
        .unwrap()
        .changes
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, ["g1", "g2"]);
}

fn submission(client_id: &str, resident: &str) -> zhangban_server::store::NewSubmission {
    zhangban_server::store::NewSubmission {
        client_id: client_id.to_owned(),
        resident_id: resident.to_owned(),
        device_id: "d".to_owned(),
        guide_id: "g".to_owned(),
        form_version: 1,
        body: "{}".to_owned(),
        request_hash: format!("h-{client_id}"),
        area_code: "511602".to_owned(),
        department_code: "dept".to_owned(),
        at: 1_790_000_000,
        attachments: Vec::new(),
    }
}

#[test]
fn an_event_writer_waits_for_the_same_residents_open_one_but_not_for_others() {
    let db = TestDatabase::create();
    let s = store(&db);
    let t1 = s
        .submit(&submission("c1", "alice"))
        .unwrap()
        .receipt
        .tracking_number;
    s.submit(&submission("c2", "bob")).unwrap();
    // A writer of alice's timeline holds her feed row.
    let mut other = connect(&db);
    let mut open = other.transaction().unwrap();
    open.execute(
        "UPDATE event_feeds SET head = nextval('event_seq') WHERE resident_id = 'alice'",
        &[],
    )
    .unwrap();
    // bob's timeline is not held up by it.
    s.submit(&submission("c3", "bob")).unwrap();
    let before = s.events_since("alice", 0, 100).unwrap().len();
    let writer = {
        let (url, t1) = (db.url().to_owned(), t1.clone());
        std::thread::spawn(move || {
            let s = PgStore::connect(&PgOptions::new(url)).unwrap();
            s.transition(&t1, "submitted", "accepted", None, 1_790_000_100)
                .unwrap()
        })
    };
    let mut admin = connect(&db);
    wait_for_a_blocked_writer(&mut admin);
    assert_eq!(s.events_since("alice", 0, 100).unwrap().len(), before);
    open.commit().unwrap();
    let event = writer.join().unwrap();
    let events = s.events_since("alice", 0, 100).unwrap();
    assert_eq!(events.last().map(|e| e.seq), Some(event.seq));
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
}
