//! The client core against its limits, measured in the same run: catalog
//! sync against bare SQLite inserts of the same rows, offline search against
//! the bare FTS5 query of the same expressions, an outbox flush against
//! posting the same bodies with a raw HTTP client, and the bytes a full sync
//! and a 1 % re-sync put on the wire.
//!
//! `cargo bench -p zhangban-tests --bench client` builds a catalog of 20,000
//! guides (the 1,135 Guang'an guides and township copies of them) in the
//! real server's store, serves it on loopback, runs the criterion groups
//! (search), then prints each figure, its limit, their ratio and the target.
//! With `ZHANGBAN_BENCH_QUICK=1` (or when run without `--bench`, e.g. by
//! `cargo test --all-targets`) it is a smoke run: 2,000 guides, 100
//! submissions, few repetitions, no criterion groups. Figures are reported,
//! never asserted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use rusqlite::{Connection, OpenFlags, params};
use serde_json::{Value, json};
use zhangban_core::client::catalog::CatalogReport;
use zhangban_core::client::flush::new_client_id;
use zhangban_core::client::{Client, Draft, SyncListener, SyncProgress, SystemClock};
use zhangban_core::guide::{FieldKind, Guide, demo_catalog};
use zhangban_server::store::prelude::*;
use zhangban_server::store::sqlite::SqliteStore;
use zhangban_tests::{DEMO_ACTIVATION_CODE, TestServer, fill, filled_draft};

/// Sync: sync throughput at least 0.6 of the bare inserts' (rows + both
/// FTS5 indexes: the bigram index and the pinyin index of the names).
const SYNC_TARGET: f64 = 0.6;
/// Search: p95 of literal queries within 2× the bare FTS query's p95.
const SEARCH_TARGET: f64 = 2.0;
/// Flush: within 2× posting the same bodies directly.
const FLUSH_TARGET: f64 = 2.0;
/// Results asked of a search (one screen of the app).
const SEARCH_LIMIT: usize = 20;
/// The client store's catalog page (`catalog::PAGE_SIZE`).
const PAGE: usize = 500;

/// Townships of Guang'an district: each copy of the 1,135 fixture guides is
/// the same item as implemented by one of them.
const TOWNS: &[&str] = &[
    "浓洋镇",
    "协兴镇",
    "悦来镇",
    "大安镇",
    "花桥镇",
    "龙台镇",
    "恒升镇",
    "石笋镇",
    "白市镇",
    "大龙镇",
    "观阁镇",
    "桂兴镇",
    "井河镇",
    "兴平镇",
    "广福镇",
    "官盛镇",
    "肖溪镇",
    "穿石镇",
    "龙安乡",
    "彭家乡",
];

/// The query set: two-character words, longer phrases, departments, an
/// item code, single characters (the literal kinds, timed against the bare
/// FTS query), then what residents type that no name contains: colloquial
/// terms (through the lexicon), pinyin and initials, a homophone slip.
const QUERIES: &[(&str, &str)] = &[
    ("word", "户口"),
    ("word", "社保"),
    ("word", "教师"),
    ("word", "婚姻"),
    ("word", "医保"),
    ("phrase", "户口迁移"),
    ("phrase", "最低生活保障"),
    ("phrase", "城乡居民养老保险"),
    ("phrase", "道路运输经营许可"),
    ("phrase", "企业投资项目备案"),
    ("department", "区人社局"),
    ("department", "区医疗保障局"),
    ("code", "511Z07001006"),
    ("char", "证"),
    ("char", "税"),
    ("char", "户"),
    ("colloquial", "低保"),
    ("colloquial", "驾照"),
    ("colloquial", "准生证"),
    ("colloquial", "结婚登记"),
    ("pinyin", "hukou"),
    ("pinyin", "hkqy"),
    ("pinyin", "shebao ka"),
    ("homophone", "户口签移"),
];

/// The kinds whose text occurs in the names as typed: the bare FTS query of
/// the same expression is their limit.
const LITERAL: &[&str] = &["word", "phrase", "department", "code", "char"];

fn literal(kind: &str) -> bool {
    LITERAL.contains(&kind)
}

#[derive(Debug, Clone, Copy)]
struct Plan {
    guides: usize,
    submissions: usize,
    /// Initial syncs timed (each into a fresh store).
    sync_runs: usize,
    /// Direct inserts (with and without FTS5) after each sync.
    direct_per_sync: usize,
    /// Rounds over the query set.
    search_rounds: usize,
    /// Flush / direct pairs (run ABBA).
    flush_rounds: usize,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                guides: 2_000,
                submissions: 100,
                sync_runs: 1,
                direct_per_sync: 1,
                search_rounds: 5,
                flush_rounds: 1,
            }
        } else {
            Self {
                guides: 20_000,
                submissions: 1_000,
                sync_runs: 1,
                direct_per_sync: 3,
                search_rounds: 40,
                flush_rounds: 2,
            }
        }
    }
}

fn now() -> i64 {
    zhangban_tests::system_now()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort_unstable();
    xs[xs.len() / 2]
}

/// The `q`-quantile (nearest rank) of `xs`.
fn quantile(xs: &[Duration], q: f64) -> Duration {
    let mut v = xs.to_vec();
    v.sort_unstable();
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

fn verdict(ok: bool) -> &'static str {
    if ok { "OK" } else { "MISSED TARGET" }
}

/// `n` distinct, valid guides: the fixture's, then township copies of them
/// (new implementation code and id, the township in the name and address).
fn catalog(n: usize, at: i64) -> Vec<Guide> {
    let base = demo_catalog(zhangban_server::setup::FIXTURE, at).unwrap();
    let mut out = base.clone();
    let mut k = 0usize;
    while out.len() < n {
        let copy = k / base.len();
        let town = TOWNS[copy % TOWNS.len()];
        let mut g = base[k % base.len()].clone();
        g.id = format!("{}-Z{copy:02}", g.id);
        g.implementation_code = g.id.clone();
        g.name = format!("{}（{town}）", g.name);
        for l in &mut g.locations {
            l.address = format!("四川省广安市广安区{town}便民服务中心");
        }
        g.validate().unwrap();
        out.push(g);
        k += 1;
    }
    out.truncate(n);
    out
}

/// The server's rows for `guides` (id, checksum, canonical JSON), exactly as
/// the operator API prepares them.
fn server_rows(guides: &[Guide]) -> Vec<(String, String, String)> {
    guides
        .iter()
        .map(|g| zhangban_server::api::operator::prepare_guide(g).unwrap())
        .collect()
}

/// The demo server with `n` guides: the demo data, then the extra guides
/// written in one transaction through the server's store while it is down.
async fn server_with(n: usize, at: i64) -> (TestServer, Vec<Guide>) {
    let mut server = TestServer::start_demo().await;
    server.stop().await;
    let guides = catalog(n, at);
    {
        let store = SqliteStore::open(&server.dir.as_path().join("zhangban.db")).unwrap();
        store.put_guides(&server_rows(&guides[1135..])).unwrap();
    }
    server.restart().await;
    (server, guides)
}

fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

// ---------------------------------------------------------------- sync ----

/// One catalog row as the client stores it, with its search-index text.
struct Row {
    id: String,
    seq: i64,
    checksum: String,
    body: String,
    name: String,
    department: String,
    /// The guide_fts columns name, department, topics, body.
    fts: [String; 4],
    /// The guide_pinyin columns py_full, py_initials.
    py: [String; 2],
}

/// Which search indexes the bare inserts fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Index {
    /// The catalog rows alone.
    None,
    /// Rows and the bigram FTS5 index (the index before pinyin).
    Bigram,
    /// Rows, the bigram index and the pinyin index (what the client keeps).
    Both,
}

/// The rows and index text a synced store holds, in sync order.
fn stored_rows(path: &Path) -> Vec<Row> {
    let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut stmt = c
        .prepare(
            "SELECT g.id, g.seq, g.checksum, g.body, g.name, g.department,
                    f.name, f.department, f.topics, f.body, p.py_full, p.py_initials
             FROM guides g JOIN guide_fts f ON f.guide_id = g.id
                  JOIN guide_pinyin p ON p.rowid = g.rowid
             ORDER BY g.seq",
        )
        .unwrap();
    stmt.query_map([], |r| {
        Ok(Row {
            id: r.get(0)?,
            seq: r.get(1)?,
            checksum: r.get(2)?,
            body: r.get(3)?,
            name: r.get(4)?,
            department: r.get(5)?,
            fts: [r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?],
            py: [r.get(10)?, r.get(11)?],
        })
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// The limit: the same rows (and, per `index`, the same index text) into a
/// fresh file with the client store's table, FTS5 schemas and pragmas (WAL,
/// `synchronous=FULL`), one transaction per page of 500, prepared
/// statements. Returns the time and the database's size in bytes.
fn direct_insert(path: &Path, rows: &[Row], index: Index) -> (Duration, u64) {
    remove_db(path);
    let mut c = Connection::open(path).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.pragma_update(None, "synchronous", "FULL").unwrap();
    c.execute_batch(
        "CREATE TABLE guides (
            id TEXT PRIMARY KEY, seq INTEGER NOT NULL, checksum TEXT NOT NULL, body TEXT NOT NULL,
            name TEXT NOT NULL, department TEXT NOT NULL);",
    )
    .unwrap();
    c.execute_batch(zhangban_core::search::SCHEMA).unwrap();
    c.execute_batch(zhangban_core::search::PINYIN_SCHEMA)
        .unwrap();
    let start = Instant::now();
    for page in rows.chunks(PAGE) {
        let tx = c.transaction().unwrap();
        {
            let mut g = tx
                .prepare_cached(
                    "INSERT INTO guides(id, seq, checksum, body, name, department)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .unwrap();
            let mut f = tx
                .prepare_cached(
                    "INSERT INTO guide_fts(guide_id, name, department, topics, body)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .unwrap();
            let mut p = tx
                .prepare_cached(
                    "INSERT INTO guide_pinyin(rowid, py_full, py_initials)
                     VALUES (?1, ?2, ?3)",
                )
                .unwrap();
            for r in page {
                g.execute(params![
                    r.id,
                    r.seq,
                    r.checksum,
                    r.body,
                    r.name,
                    r.department
                ])
                .unwrap();
                let rowid = tx.last_insert_rowid();
                if index != Index::None {
                    f.execute(params![r.id, r.fts[0], r.fts[1], r.fts[2], r.fts[3]])
                        .unwrap();
                }
                if index == Index::Both {
                    p.execute(params![rowid, r.py[0], r.py[1]]).unwrap();
                }
            }
        }
        tx.commit().unwrap();
    }
    let t = start.elapsed();
    let pages: u64 = c.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
    let page_size: u64 = c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
    drop(c);
    remove_db(path);
    (t, pages * page_size)
}

/// One initial sync into a fresh store at `path` (opening it is not timed).
/// Records when each catalog page was applied.
struct PageClock(std::sync::Mutex<Vec<Instant>>);

impl SyncListener for PageClock {
    fn on_progress(&self, p: SyncProgress) {
        if matches!(p, SyncProgress::Catalog { .. }) {
            self.0.lock().unwrap().push(Instant::now());
        }
    }
}

/// An initial sync.
struct Synced {
    time: Duration,
    report: CatalogReport,
    /// How long each page took (fetch, check, apply).
    pages: Vec<Duration>,
}

/// One initial sync into a fresh store at `path` (opening it is not timed).
async fn sync_fresh(server: &TestServer, path: &Path) -> Synced {
    remove_db(path);
    let client = server.open_client(path, Arc::new(SystemClock)).await;
    let clock = Arc::new(PageClock(std::sync::Mutex::new(Vec::new())));
    client.add_sync_listener(clock.clone());
    let start = Instant::now();
    let report = client.sync_catalog().await.unwrap();
    let time = start.elapsed();
    let mut last = start;
    let pages = clock
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|t| {
            let d = t.duration_since(last);
            last = *t;
            d
        })
        .collect();
    Synced {
        time,
        report,
        pages,
    }
}

/// Uncompressed size of the catalog feed after `since`: the same pages,
/// fetched without `Accept-Encoding`.
async fn feed_bytes(server: &TestServer, mut since: u64) -> u64 {
    let http = reqwest::Client::builder().no_gzip().build().unwrap();
    let mut total = 0u64;
    loop {
        let url = format!(
            "{}/v1/catalog/changes?since={since}&limit={PAGE}",
            server.base
        );
        let body = http.get(url).send().await.unwrap().bytes().await.unwrap();
        total += body.len() as u64;
        let page: Value = serde_json::from_slice(&body).unwrap();
        since = page["next"].as_u64().unwrap();
        if !page["more"].as_bool().unwrap() {
            return total;
        }
    }
}

struct SyncFigures {
    guides: u64,
    sync: Duration,
    /// Bare inserts of the rows and both indexes: the limit.
    direct: Duration,
    /// Bare inserts of the rows and the bigram index only (before pinyin).
    direct_bigram: Duration,
    direct_rows_only: Duration,
    /// Database bytes with no index, the bigram index, both indexes.
    bytes: [u64; 3],
    direct_runs: usize,
    report: CatalogReport,
    /// Per page, of the first sync.
    pages: Vec<Duration>,
    scan: IdScan,
}

/// What the index's delete-before-re-index costs on a full store: the
/// client runs `DELETE FROM guide_fts WHERE rowid = ?1` before re-indexing
/// a guide it already holds (`search::remove_guide` in
/// `search::index_prepared`); keyed by rowid, it is a lookup, not a scan. A
/// new guide (every guide of an initial sync) is inserted above every
/// indexed rowid and skips it (`search::insert_prepared`).
struct IdScan {
    plan: String,
    once: Duration,
}

/// The query plan of that delete, and its time for an id that is not
/// indexed (the case of every guide in an initial sync), in a transaction
/// rolled back.
fn id_scan(path: &Path) -> IdScan {
    let mut c = Connection::open(path).unwrap();
    let plan = c
        .query_row(
            "EXPLAIN QUERY PLAN DELETE FROM guide_fts WHERE rowid = ?1",
            [-1],
            |r| r.get::<_, String>(3),
        )
        .unwrap();
    let tx = c.transaction().unwrap();
    let times = (0..5)
        .map(|_| {
            let t = Instant::now();
            let n = tx
                .execute("DELETE FROM guide_fts WHERE rowid = ?1", [-1])
                .unwrap();
            assert_eq!(n, 0);
            t.elapsed()
        })
        .collect();
    tx.rollback().unwrap();
    IdScan {
        plan,
        once: median(times),
    }
}

fn report_sync(plan: &Plan, f: &SyncFigures) {
    let rate = |d: Duration| f.guides as f64 / d.as_secs_f64();
    let ratio = rate(f.sync) / rate(f.direct);
    println!(
        "\n1. initial catalog sync, {} guides, {} pages of {PAGE}, fresh store (sync: median of {}, inserts: median of {})",
        f.guides, f.report.pages, plan.sync_runs, f.direct_runs
    );
    println!(
        "   sync_catalog from the loopback server:          {:>8.0} guides/s  ({:.2} s)",
        rate(f.sync),
        f.sync.as_secs_f64()
    );
    println!(
        "   limit: same rows + same text in both FTS5 indexes, bare SQLite: {:>8.0} guides/s  ({:.2} s)",
        rate(f.direct),
        f.direct.as_secs_f64()
    );
    println!(
        "   (reference: rows + the bigram index only, as before pinyin: {:>8.0} guides/s  ({:.2} s))",
        rate(f.direct_bigram),
        f.direct_bigram.as_secs_f64()
    );
    println!(
        "   (reference: same rows without any FTS5 insert:  {:>8.0} guides/s  ({:.2} s))",
        rate(f.direct_rows_only),
        f.direct_rows_only.as_secs_f64()
    );
    println!(
        "   ratio sync/direct throughput {ratio:.3} (target ≥ {SYNC_TARGET})  {}",
        verdict(ratio >= SYNC_TARGET)
    );
    let per_guide = |b: u64| (b.saturating_sub(f.bytes[0])) as f64 / f.guides as f64;
    println!(
        "   index size per guide: {:.0} bytes before pinyin (bigram index), {:.0} bytes now (bigram + pinyin index), +{:.1} %; the catalog rows alone {:.0} bytes/guide",
        per_guide(f.bytes[1]),
        per_guide(f.bytes[2]),
        100.0 * (per_guide(f.bytes[2]) / per_guide(f.bytes[1]) - 1.0),
        f.bytes[0] as f64 / f.guides as f64,
    );
    // Pages 1, ¼, ½, ¾ and last: a page's time must not grow with the store.
    let n = f.pages.len();
    let mut marks: Vec<usize> = vec![1, n.div_ceil(4), n.div_ceil(2), (3 * n).div_ceil(4), n];
    marks.dedup();
    let shown: Vec<String> = marks
        .iter()
        .map(|&k| format!("page {k} {:.0} ms", ms(f.pages[k - 1])))
        .collect();
    println!("   where it goes: {}", shown.join(", "));
    println!(
        "   the delete before each re-index (of a guide already held; a new guide skips it) is `{}` ({:.3} ms on the full store), so a page costs the same at any store size; on top of the bare inserts a page is received and inflated, its 500 SHA-256 checksums checked and its guides parsed and turned into index text (while the page before it is applied and the page after it fetched)",
        f.scan.plan,
        ms(f.scan.once),
    );
}

// -------------------------------------------------------------- search ----

/// The bare FTS query of the search's own MATCH expression.
fn bare_search(c: &Connection, expr: &str, limit: usize) -> usize {
    let mut stmt = c
        .prepare_cached(
            "SELECT guide_id FROM guide_fts WHERE guide_fts MATCH ?1 ORDER BY rank LIMIT ?2",
        )
        .unwrap();
    let ids = stmt
        .query_map(params![expr, limit as i64], |r| r.get::<_, String>(0))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    ids.len()
}

fn bare_connection(path: &Path) -> Connection {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

/// How many guides match `expr` (to describe the query set).
fn match_count(c: &Connection, expr: &str) -> u64 {
    c.query_row(
        "SELECT COUNT(*) FROM guide_fts WHERE guide_fts MATCH ?1",
        [expr],
        |r| r.get(0),
    )
    .unwrap()
}

fn criterion_groups(c: &mut Criterion, client: &Client, bare: &Connection) {
    let mut group = c.benchmark_group("search_20000");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for q in ["户口", "最低生活保障", "区人社局", "证"] {
        let expr = zhangban_core::search::match_expression(q).unwrap();
        group.bench_function(format!("client_search/{q}"), |b| {
            b.iter(|| black_box(client.search(black_box(q), SEARCH_LIMIT).unwrap().len()));
        });
        group.bench_function(format!("bare_fts/{q}"), |b| {
            b.iter(|| black_box(bare_search(bare, black_box(&expr), SEARCH_LIMIT)));
        });
    }
    group.finish();
}

/// The client's own statement (`search::search`: weighted BM25 joined to
/// the guides for the name and department, 200 candidates), without the
/// ranking boost and highlighting done in Rust after it.
const CLIENT_SQL: &str =
    "SELECT f.guide_id, bm25(guide_fts, 0.0, 10.0, 3.0, 3.0, 1.0) AS r, g.name, g.department
     FROM guide_fts f JOIN guides g ON g.id = f.guide_id
     WHERE guide_fts MATCH ?1 ORDER BY r LIMIT ?2";
/// The same rows with the 200 candidates chosen before the join.
const TOPK_SQL: &str = "SELECT f.guide_id, f.r, g.name, g.department
     FROM (SELECT guide_id, bm25(guide_fts, 0.0, 10.0, 3.0, 3.0, 1.0) AS r FROM guide_fts
           WHERE guide_fts MATCH ?1 ORDER BY r LIMIT ?2) f
     JOIN guides g ON g.id = f.guide_id ORDER BY f.r";
/// `search::CANDIDATES`.
const CANDIDATES: i64 = 200;

fn candidates(c: &Connection, sql: &str, expr: &str) -> usize {
    let mut stmt = c.prepare_cached(sql).unwrap();
    let rows = stmt
        .query_map(params![expr, CANDIDATES], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, f64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    rows.len()
}

/// `s` padded to `width` terminal columns (CJK characters take two).
fn pad(s: &str, width: usize) -> String {
    let w: usize = s.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum();
    format!("{s}{}", " ".repeat(width.saturating_sub(w)))
}

/// Every query of the set `rounds` times: the client's search, the bare
/// query, and (to say where the difference goes) the client's SQL alone
/// and that SQL with the candidates chosen before the join, back to back
/// in an order that rotates by round.
fn report_search(plan: &Plan, client: &Client, bare: &Connection) {
    // Non-literal queries have no bare limit: their expression is timed all
    // the same (it is what the first pass of the search runs) but only the
    // literal ones make the ratio.
    let exprs: Vec<String> = QUERIES
        .iter()
        .map(|(_, q)| zhangban_core::search::match_expression(q).unwrap_or_default())
        .collect();
    let run = |m: usize, q: &str, e: &str| -> Duration {
        let t = Instant::now();
        match m {
            0 => {
                black_box(client.search(black_box(q), SEARCH_LIMIT).unwrap());
            }
            _ if e.is_empty() => {}
            1 => {
                black_box(bare_search(bare, black_box(e), SEARCH_LIMIT));
            }
            2 => {
                black_box(candidates(bare, CLIENT_SQL, black_box(e)));
            }
            _ => {
                black_box(candidates(bare, TOPK_SQL, black_box(e)));
            }
        }
        t.elapsed()
    };
    // Warm both connections' caches.
    for ((_, q), e) in QUERIES.iter().zip(&exprs) {
        for m in 0..4 {
            run(m, q, e);
        }
    }
    let mut times: Vec<Vec<Vec<Duration>>> = vec![vec![Vec::new(); QUERIES.len()]; 4];
    for round in 0..plan.search_rounds {
        for (i, ((_, q), e)) in QUERIES.iter().zip(&exprs).enumerate() {
            for k in 0..4 {
                let m = (k + round) % 4;
                times[m][i].push(run(m, q, e));
            }
        }
    }
    // Every timing of method `m` over the queries whose kind passes `keep`.
    let pooled = |m: usize, keep: &dyn Fn(&str) -> bool| -> Vec<Duration> {
        QUERIES
            .iter()
            .enumerate()
            .filter(|(_, (kind, _))| keep(kind))
            .flat_map(|(i, _)| times[m][i].iter().copied())
            .collect()
    };
    let all: Vec<Vec<Duration>> = (0..4).map(|m| pooled(m, &literal)).collect();
    let p95: Vec<Duration> = all.iter().map(|xs| quantile(xs, 0.95)).collect();
    let ratio = p95[0].as_secs_f64() / p95[1].as_secs_f64();
    println!(
        "\n2. search over {} guides, limit {SEARCH_LIMIT}: {} queries × {} interleaved rounds",
        plan.guides,
        QUERIES.len(),
        plan.search_rounds
    );
    println!("   query                     matches   search p50   bare FTS p50   first hit");
    for (i, ((kind, q), e)) in QUERIES.iter().zip(&exprs).enumerate() {
        let first = client
            .search(q, 1)
            .unwrap()
            .first()
            .map_or_else(|| "(none)".to_owned(), |h| h.name.clone());
        let (count, bare_p50) = if literal(kind) {
            (
                match_count(bare, e).to_string(),
                format!("{:>7.3} ms", ms(quantile(&times[1][i], 0.5))),
            )
        } else {
            ("-".to_owned(), format!("{:>10}", "-"))
        };
        println!(
            "   {}{}{:>8}   {:>7.3} ms   {bare_p50}   {first}",
            pad(kind, 11),
            pad(q, 14),
            count,
            ms(quantile(&times[0][i], 0.5)),
        );
    }
    println!(
        "   literal queries: search p50 {:.3} ms  p95 {:.3} ms   bare FTS p50 {:.3} ms  p95 {:.3} ms",
        ms(quantile(&all[0], 0.5)),
        ms(p95[0]),
        ms(quantile(&all[1], 0.5)),
        ms(p95[1]),
    );
    println!(
        "   ratio p95(search)/p95(bare), literal queries {ratio:.2} (target ≤ {SEARCH_TARGET})  {}",
        verdict(ratio <= SEARCH_TARGET)
    );
    let beside: Vec<String> = ["colloquial", "pinyin", "homophone"]
        .iter()
        .map(|k| {
            let xs = pooled(0, &|kind: &str| kind == *k);
            format!(
                "{k} p50 {:.3} ms p95 {:.3} ms",
                ms(quantile(&xs, 0.5)),
                ms(quantile(&xs, 0.95))
            )
        })
        .collect();
    println!(
        "   beside it, queries no name contains (no bare limit): {}",
        beside.join("; ")
    );
    println!(
        "   where it goes (p95, literal): the same SQL joining before the LIMIT (as first written) {:.3} ms; choosing the {CANDIDATES} candidates before the join (as the client does now) {:.3} ms",
        ms(p95[2]),
        ms(p95[3]),
    );
}

// --------------------------------------------------------------- flush ----

/// Guides with no licence or attachment field at all, which `fill` can fill.
fn plain_guides(guides: &[Guide], at: i64) -> Vec<Guide> {
    guides
        .iter()
        .filter(|g| {
            g.form.fields.iter().all(|f| {
                !matches!(
                    f.kind,
                    FieldKind::LicenceRef { .. } | FieldKind::Attachment { .. }
                )
            }) && fill(g, at).is_some()
        })
        .cloned()
        .collect()
}

/// `n` drafts over the plain guides.
fn drafts(plain: &[Guide], n: usize, tag: &str, at: i64) -> Vec<Draft> {
    (0..n)
        .map(|i| {
            let g = &plain[i % plain.len()];
            filled_draft(&format!("bench-{tag}-{i:05}"), g, at).unwrap()
        })
        .collect()
}

/// The request body the outbox sends for a draft without licences.
fn body_of(d: &Draft) -> String {
    json!({"guide_id": d.guide_id, "form_version": d.form_version, "values": d.values}).to_string()
}

/// Queues the drafts (offline, not part of the flush time); returns the
/// time per `submit`.
fn queue(client: &Client, drafts: &[Draft]) -> Duration {
    let start = Instant::now();
    for d in drafts {
        client.submit(d).unwrap();
    }
    start.elapsed() / u32::try_from(drafts.len()).unwrap()
}

/// Flushes the queue; returns its duration and the request bodies it sent.
async fn flush_all(client: &Client, drafts: &[Draft]) -> (Duration, Vec<String>) {
    let start = Instant::now();
    let report = client.flush().await.unwrap();
    let t = start.elapsed();
    assert_eq!(report.accepted as usize, drafts.len(), "{report:?}");
    let ids: std::collections::HashSet<&str> = drafts.iter().map(|d| d.id.as_str()).collect();
    let mut sent: Vec<(String, String)> = client
        .outbox()
        .unwrap()
        .into_iter()
        .filter(|e| ids.contains(e.draft_id.as_str()))
        // A body without presentations is not stored (it is rebuilt
        // identically): rebuild it the same way.
        .map(|e| {
            let body = e.wire.clone().unwrap_or_else(|| {
                serde_json::json!({"guide_id": e.guide_id, "form_version": e.form_version, "values": e.values})
                    .to_string()
            });
            (e.draft_id, body)
        })
        .collect();
    sent.sort();
    (t, sent.into_iter().map(|(_, w)| w).collect())
}

/// The limit: the same bodies `PUT` one after another under fresh client
/// ids with a raw HTTP client (one kept-alive connection) and a token of
/// the same device.
async fn post_direct(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    bodies: &[String],
) -> Duration {
    let start = Instant::now();
    for body in bodies {
        let resp = http
            .put(format!("{url}/v1/submissions/{}", new_client_id()))
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
        black_box(resp.bytes().await.unwrap());
    }
    start.elapsed()
}

/// A token for the client's device, by the same challenge handshake.
async fn device_token(client: &Client, _url: &str) -> String {
    client.token().await.unwrap()
}

/// One small durable commit on a store configured like the client's (WAL,
/// `synchronous=FULL`), on the same disk: the median of 100.
fn durable_commit(path: &Path) -> Duration {
    remove_db(path);
    let c = Connection::open(path).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.pragma_update(None, "synchronous", "FULL").unwrap();
    c.execute_batch("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        .unwrap();
    let times = (0..100)
        .map(|i| {
            let t = Instant::now();
            c.execute(
                "INSERT INTO meta(key, value) VALUES ('k', ?1)
                 ON CONFLICT(key) DO UPDATE SET value = ?1",
                [i.to_string()],
            )
            .unwrap();
            t.elapsed()
        })
        .collect();
    drop(c);
    remove_db(path);
    median(times)
}

/// Reading and parsing one cached guide (`Client::guide`): the median of 100.
fn guide_read(client: &Client, id: &str) -> Duration {
    let times = (0..100)
        .map(|_| {
            let t = Instant::now();
            black_box(client.guide(id).unwrap());
            t.elapsed()
        })
        .collect();
    median(times)
}

async fn report_flush(
    plan: &Plan,
    server: &TestServer,
    client: &Client,
    guides: &[Guide],
    work: &Path,
) {
    let at = now();
    let plain = plain_guides(guides, at);
    let url = server.base.clone();
    let token = device_token(client, &url).await;
    let http = reqwest::Client::new();
    let n = plan.submissions;
    let (mut flush_t, mut direct_t, mut submit_t) = (Vec::new(), Vec::new(), Vec::new());
    // ABBA (flush, direct, direct, flush …) so that the server's store,
    // which grows with every submission, weighs on both alike.
    for round in 0..plan.flush_rounds {
        let ds = drafts(&plain, n, &format!("r{round}"), at);
        let bodies: Vec<String> = {
            let mut v: Vec<(String, String)> =
                ds.iter().map(|d| (d.id.clone(), body_of(d))).collect();
            v.sort();
            v.into_iter().map(|(_, b)| b).collect()
        };
        if round % 2 == 1 {
            direct_t.push(post_direct(&http, &url, &token, &bodies).await);
        }
        submit_t.push(queue(client, &ds));
        let (t, sent) = flush_all(client, &ds).await;
        assert_eq!(sent, bodies, "the direct posts send what the outbox sent");
        flush_t.push(t);
        if round % 2 == 0 {
            direct_t.push(post_direct(&http, &url, &token, &bodies).await);
        }
    }
    let (f, d) = (median(flush_t), median(direct_t));
    let ratio = f.as_secs_f64() / d.as_secs_f64();
    println!(
        "\n3. flush of {n} queued submissions over {} plain guides (no licence or attachment field), median of {} ABBA rounds",
        plain.len().min(n),
        plan.flush_rounds
    );
    println!(
        "   Client::flush:                     {:>8.2} s  {:>6.2} ms/submission",
        f.as_secs_f64(),
        ms(f) / n as f64
    );
    println!(
        "   limit: same bodies, raw PUT loop:  {:>8.2} s  {:>6.2} ms/submission",
        d.as_secs_f64(),
        ms(d) / n as f64
    );
    println!(
        "   (queueing them offline: submit {:.2} ms each, not part of the flush)",
        ms(median(submit_t))
    );
    println!(
        "   ratio flush/direct time {ratio:.2} (target ≤ {FLUSH_TARGET})  {}",
        verdict(ratio <= FLUSH_TARGET)
    );
    let commit = durable_commit(&work.join("commit.db"));
    let read = guide_read(client, &plain[0].id);
    println!(
        "   where it goes, per send: two atomic but unflushed client commits (begin_send, finish_send; one durable commit of {:.2} ms per flush), and the guide read and parsed twice (upload_all, wire_body) at {:.3} ms each: {:.2} ms of the {:.2} ms difference; the rest is the client's own HTTP round trip and store reads on the same 2 cores as the server",
        ms(commit),
        ms(read),
        2.0 * ms(read),
        (ms(f) - ms(d)) / n as f64,
    );
}

// --------------------------------------------------------------- bytes ----

/// A new version of `g`: what an operator's edit changes.
fn edited(g: &Guide) -> Guide {
    let mut g = g.clone();
    g.version += 1;
    g.updated_at += 86_400;
    g.contact_phone = "0826-2345678".into();
    if let Some(f) = g.faq.first_mut() {
        f.a.push_str("（2026年12月起按新规定办理。）");
    }
    g
}

/// Republishes 1 % of the guides through the operator API, then re-syncs
/// `client`.
async fn report_bytes(
    server: &TestServer,
    client: &Client,
    guides: &[Guide],
    full: &CatalogReport,
) {
    let full_raw = feed_bytes(server, 0).await;
    let cursor = client.store().catalog_cursor().unwrap();
    let http = reqwest::Client::new();
    let changed: Vec<Guide> = guides.iter().step_by(100).map(edited).collect();
    for g in &changed {
        let resp = http
            .put(format!("{}/v1/operator/guides/{}", server.base, g.id))
            .bearer_auth(server.operator_token_for("/v1/operator/guides"))
            .json(g)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
    }
    let start = Instant::now();
    let delta = client.sync_catalog().await.unwrap();
    let t = start.elapsed();
    assert_eq!(delta.upserted as usize, changed.len());
    let delta_raw = feed_bytes(server, cursor).await;
    println!(
        "\n4. bytes on the wire (gzip, as the client counts them; uncompressed JSON for reference)"
    );
    println!(
        "   full sync, {} guides, {} pages:  {:>11} bytes  (uncompressed {} bytes, {:.1}×; {:.0} bytes/guide)",
        full.upserted,
        full.pages,
        full.wire_bytes,
        full_raw,
        full_raw as f64 / full.wire_bytes as f64,
        full.wire_bytes as f64 / full.upserted as f64,
    );
    println!(
        "   re-sync after 1 % changed ({} guides republished): {} bytes (uncompressed {} bytes) in {} page(s), {:.0} ms; {:.2} % of the full sync",
        delta.upserted,
        delta.wire_bytes,
        delta_raw,
        delta.pages,
        ms(t),
        100.0 * delta.wire_bytes as f64 / full.wire_bytes as f64,
    );
}

// ---------------------------------------------------------------- main ----

fn main() {
    // `cargo bench` passes `--bench`; without it (`cargo test --benches`,
    // `cargo test --all-targets`) this is a smoke run like quick mode.
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let quick = !bench_mode || std::env::var("ZHANGBAN_BENCH_QUICK").is_ok_and(|v| v == "1");
    let plan = Plan::new(quick);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let wall = Instant::now();
    let at = now();
    let (server, guides) = rt.block_on(server_with(plan.guides, at));
    let work = tempfile::tempdir().unwrap();
    println!(
        "client benchmarks ({}: {} guides, {} submissions; server on {}, stores under {})",
        if quick { "quick mode" } else { "full mode" },
        plan.guides,
        plan.submissions,
        server.base.clone(),
        work.path().display()
    );

    // 1. Sync, against the bare inserts of what that sync stored. The
    // initial sync of 20,000 guides runs once; the inserts before and after it.
    let first = work.path().join("first.db");
    let direct_path = work.path().join("direct.db");
    let mut direct_t = Vec::new();
    let mut bigram_t = Vec::new();
    let mut rows_only_t = Vec::new();
    let mut bytes = [0u64; 3];
    let mut sync_t = Vec::new();
    let mut report = CatalogReport::default();
    let mut pages = Vec::new();
    let mut rows = Vec::new();
    for run in 0..plan.sync_runs {
        let path = if run == 0 {
            first.clone()
        } else {
            work.path().join("scratch.db")
        };
        let synced = rt.block_on(sync_fresh(&server, &path));
        assert_eq!(synced.report.upserted as usize, plan.guides);
        sync_t.push(synced.time);
        if run == 0 {
            report = synced.report;
            pages = synced.pages;
            rows = stored_rows(&first);
            assert_eq!(rows.len(), plan.guides);
        } else {
            remove_db(&path);
        }
        for _ in 0..plan.direct_per_sync {
            for (k, index) in [Index::Both, Index::Bigram, Index::None]
                .into_iter()
                .enumerate()
            {
                let (t, b) = direct_insert(&direct_path, &rows, index);
                [&mut direct_t, &mut bigram_t, &mut rows_only_t][k].push(t);
                bytes[2 - k] = b;
            }
        }
    }
    let sync_figures = SyncFigures {
        guides: plan.guides as u64,
        sync: median(sync_t),
        direct: median(direct_t),
        direct_bigram: median(bigram_t),
        direct_rows_only: median(rows_only_t),
        bytes,
        direct_runs: plan.sync_runs * plan.direct_per_sync,
        report,
        pages,
        scan: id_scan(&first),
    };
    report_sync(&plan, &sync_figures);

    // 2. Search on the first synced store.
    let client = rt.block_on(server.open_client(&first, Arc::new(SystemClock)));
    let bare = bare_connection(&first);
    if !quick {
        let mut c = Criterion::default().configure_from_args();
        criterion_groups(&mut c, &client, &bare);
        c.final_summary();
    }
    report_search(&plan, &client, &bare);

    // 3. Flush, with the same client enrolled.
    rt.block_on(async {
        client.enrol(DEMO_ACTIVATION_CODE).await.unwrap();
        report_flush(&plan, &server, &client, &guides, work.path()).await;
    });

    // 4. Bytes: the first sync's, and a re-sync after 1 % changed.
    rt.block_on(report_bytes(
        &server,
        &client,
        &guides,
        &sync_figures.report,
    ));
    println!("\n(whole run {:.0} s)", wall.elapsed().as_secs_f64());
    drop(client);
    drop(bare);
    rt.block_on(async move {
        let mut server = server;
        server.stop().await;
    });
}
