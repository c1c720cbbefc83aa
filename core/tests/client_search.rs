//! Offline Chinese search over the real Guang'an catalog (1,135 items):
//! two-character words that a trigram index misses, ranking, highlights,
//! re-indexing on update and removal on withdrawal.

#![cfg(feature = "client")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;

use sha2::{Digest as _, Sha256};
use zhangban_core::client::ClientStore;
use zhangban_core::client::catalog::{CatalogBatch, CatalogUpsert};
use zhangban_core::guide::Guide;
use zhangban_core::guide::fixture::demo_catalog;
use zhangban_core::search::MatchKind;

const FIXTURE: &str = include_str!("../../server/data/guang-an-service-items.json");

fn catalog() -> &'static [Guide] {
    static C: OnceLock<Vec<Guide>> = OnceLock::new();
    C.get_or_init(|| demo_catalog(FIXTURE, 1_790_000_000).unwrap())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn batch(since: u64, guides: &[Guide], deletes: &[&str]) -> CatalogBatch {
    let upserts: Vec<_> = guides
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let body = serde_json::to_string(g).unwrap();
            CatalogUpsert::new(
                since + 1 + i as u64,
                hex(&Sha256::digest(body.as_bytes())),
                body,
                g.clone(),
            )
        })
        .collect();
    let next = since + (upserts.len() + deletes.len()) as u64;
    CatalogBatch {
        since,
        next,
        upserts,
        deletes: deletes.iter().map(|d| (*d).to_owned()).collect(),
    }
}

fn store() -> ClientStore {
    let s = ClientStore::in_memory().unwrap();
    s.apply_catalog(&batch(0, catalog(), &[])).unwrap();
    assert_eq!(s.guide_count().unwrap(), 1135);
    s
}

/// The names of the hits that match the query's own words (not a lexicon
/// rewrite, its pinyin or a closest alternative).
fn names(s: &ClientStore, q: &str, limit: usize) -> Vec<String> {
    s.search(q, limit)
        .unwrap()
        .into_iter()
        .filter(|h| h.matched == MatchKind::Literal)
        .map(|h| h.name)
        .collect()
}

/// Every fixture item whose name contains `word`.
fn expected(word: &str) -> Vec<String> {
    let mut v: Vec<String> = catalog()
        .iter()
        .filter(|g| g.name.contains(word))
        .map(|g| g.name.clone())
        .collect();
    v.sort();
    v
}

#[test]
fn two_character_words_find_every_item_that_names_them() {
    let s = store();
    for word in ["户口", "社保", "教师", "婚姻", "医保", "残疾"] {
        let want = expected(word);
        assert!(!want.is_empty(), "the fixture names {word}");
        // Unfiltered: the items that name the word come before every lexicon,
        // pinyin or body match.
        let hits: Vec<String> = s
            .search(word, 500)
            .unwrap()
            .into_iter()
            .map(|h| h.name)
            .collect();
        for name in &want {
            assert!(hits.contains(name), "{word}: missing {name}");
        }
        // Items that name the word rank above items that match elsewhere.
        let top: Vec<String> = hits[..want.len()].to_vec();
        let mut top_sorted = top.clone();
        top_sorted.sort();
        assert_eq!(top_sorted, want, "{word}: name matches first");
    }
}

#[test]
fn longer_queries_are_substring_matches_not_loose_bags_of_characters() {
    let s = store();
    let hits = names(&s, "户口迁移", 50);
    assert!(!hits.is_empty());
    assert!(
        hits[0].contains("户口迁移"),
        "best hit names the phrase: {hits:?}"
    );
    // 口户 (reversed) is not 户口: the forward word names many items, and
    // none of those comes back for the reversed one (an empty answer is
    // right only because the forward one is not).
    let forward = names(&s, "户口", 50);
    assert!(forward.len() >= 10, "户口 names {} items", forward.len());
    let reversed = names(&s, "口户", 50);
    for h in &reversed {
        assert!(!forward.contains(h) || h.contains("口户"), "{h}");
    }
    // Words separated by a space must all match.
    // (Lexicon rewrites such as 补发 → 补领 are other hits, said so.)
    for h in s
        .search("教师 补发", 20)
        .unwrap()
        .into_iter()
        .filter(|h| h.matched == MatchKind::Literal)
    {
        let g = catalog().iter().find(|g| g.id == h.guide_id).unwrap();
        let all = serde_json::to_string(g).unwrap();
        assert!(all.contains("教师") && all.contains("补发"), "{}", h.name);
    }
    assert!(
        names(&s, "教师 补发", 20)
            .iter()
            .any(|n| n == "教师资格证书补发、换发")
    );
}

#[test]
fn an_exact_name_ranks_first() {
    let s = store();
    for g in catalog().iter().step_by(97) {
        let hits = s.search(&g.name, 10).unwrap();
        assert!(
            hits.iter().take(3).any(|h| h.name == g.name),
            "{}: {:?}",
            g.name,
            hits.iter().map(|h| &h.name).collect::<Vec<_>>()
        );
    }
}

#[test]
fn highlights_mark_the_matches_in_the_name() {
    let s = store();
    let hit = s
        .search("教师资格", 5)
        .unwrap()
        .into_iter()
        .find(|h| h.name == "教师资格认定")
        .unwrap();
    assert_eq!(hit.highlights, vec![(0, 4)]);
    assert_eq!(hit.highlighted, "【教师资格】认定");
    let hit = &s.search("注销 户口", 5).unwrap()[0];
    assert_eq!(hit.name, "注销户口证明");
    assert_eq!(hit.highlighted, "【注销户口】证明");
}

#[test]
fn item_codes_department_and_single_characters_are_searchable() {
    let s = store();
    let g = &catalog()[3];
    let hits = s.search(&g.basic_code, 10).unwrap();
    assert!(hits.iter().any(|h| h.guide_id == g.id), "by basic code");
    let by_dept = s.search("区教科体局", 500).unwrap();
    let in_dept = catalog()
        .iter()
        .filter(|g| g.department == "区教科体局")
        .count();
    assert!(by_dept.len() >= in_dept, "{} of {in_dept}", by_dept.len());
    assert!(
        by_dept
            .iter()
            .take(in_dept)
            .all(|h| h.department == "区教科体局")
    );
    assert!(!s.search("证", 5).unwrap().is_empty());
}

#[test]
fn nothing_to_search_is_no_hits_and_syntax_is_text() {
    let s = store();
    assert!(s.search("", 10).unwrap().is_empty());
    assert!(s.search("，。！  ", 10).unwrap().is_empty());
    assert!(s.search("\" OR *", 10).unwrap().is_empty());
    assert!(s.search("NEAR(户口 社保)", 10).is_ok());
    // A query nothing matches is answered with the closest items, said so.
    let closest = s.search("不存在的事项名称", 10).unwrap();
    assert!(!closest.is_empty());
    assert!(closest.iter().all(|h| h.matched == MatchKind::Closest));
}

#[test]
fn updates_reindex_and_withdrawals_leave_the_index() {
    let s = store();
    let mut g = catalog()
        .iter()
        .find(|g| g.name == "教师资格认定")
        .unwrap()
        .clone();
    g.name = "托育机构教师资格认定".into();
    g.version += 1;
    s.apply_catalog(&batch(1135, &[g.clone()], &[])).unwrap();
    assert_eq!(names(&s, "托育机构", 10), vec![g.name.clone()]);
    assert!(!names(&s, "教师资格认定", 50).contains(&"教师资格认定".to_owned()));
    let b = batch(1136, &[], &[&g.id]);
    s.apply_catalog(&b).unwrap();
    assert!(names(&s, "托育机构", 10).is_empty());
    assert_eq!(s.guide_count().unwrap(), 1134);
}

#[test]
fn a_store_from_before_the_pinyin_index_fills_it_when_it_upgrades() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.db");
    // A store at schema 5 (the last one without the pinyin index), with a
    // guide written as that version wrote it.
    drop(ClientStore::open_at_version(&path, 5).unwrap());
    let g = catalog().iter().find(|g| g.name == "户口迁移审批").unwrap();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute(
            "INSERT INTO guides(id, seq, checksum, name, department, body)
             VALUES (?1, 1, 'x', ?2, ?3, ?4)",
            rusqlite::params![
                g.id,
                g.name,
                g.department,
                serde_json::to_string(g).unwrap()
            ],
        )
        .unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM guides", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }
    let s = ClientStore::open(&path).unwrap();
    let hits = s.search("hkqy", 5).unwrap();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].matched, MatchKind::Pinyin);
    assert_eq!(hits[0].highlighted, "【户口迁移】审批");
}

#[test]
fn synonyms_pinyin_and_closest_say_how_they_matched() {
    let s = store();
    let top = |q: &str| s.search(q, 5).unwrap().into_iter().next().unwrap();
    let h = top("低保");
    assert_eq!(
        (h.name.as_str(), h.matched),
        ("最低生活保障", MatchKind::Synonym)
    );
    assert_eq!(h.highlighted, "【最低生活保障】");
    let h = top("hukou qianyi");
    assert_eq!(
        (h.name.as_str(), h.matched),
        ("户口迁移审批", MatchKind::Pinyin)
    );
    let h = top("户口签移");
    assert_eq!(
        (h.name.as_str(), h.matched),
        ("户口迁移审批", MatchKind::Pinyin)
    );
    let h = top("户口迁移");
    assert_eq!(h.matched, MatchKind::Literal);
    // A department filter keeps only that department's items.
    let opts = zhangban_core::search::SearchOptions {
        limit: 50,
        department: Some("区民政局".into()),
    };
    let hits = s.search_with(&opts, "登记").unwrap();
    assert!(!hits.is_empty());
    assert!(hits.iter().all(|h| h.department == "区民政局"), "{hits:?}");
}

/// A lexicon of the seed plus one entry, at `version`.
fn lexicon_with(
    version: u64,
    term: &str,
    target: &str,
) -> (zhangban_core::search::Lexicon, String) {
    let mut lex = zhangban_core::search::Lexicon::builtin().clone();
    lex.version = version;
    lex.entries.push(zhangban_core::search::lexicon::Entry {
        term: term.to_owned(),
        targets: vec![target.to_owned()],
        two_way: false,
        source: None,
    });
    let text = serde_json::to_string(&lex).unwrap();
    (lex, text)
}

#[test]
fn a_synced_lexicon_newer_than_the_builtin_is_searched_and_an_older_one_is_not() {
    use zhangban_core::client::LexiconFault;
    use zhangban_core::client::lexicon::accept;
    let s = store();
    let builtin = zhangban_core::search::Lexicon::builtin().version;
    let target = catalog()
        .iter()
        .map(|g| g.name.clone())
        .find(|n| n.chars().count() <= 32 && !n.contains('证'))
        .unwrap();
    // Every hit, however it matched.
    let names = |s: &ClientStore, q: &str, limit: usize| -> Vec<String> {
        s.search(q, limit)
            .unwrap()
            .into_iter()
            .map(|h| h.name)
            .collect()
    };
    let term = "跑一趟证";
    assert!(names(&s, term, 10).iter().all(|n| *n != target));
    assert_eq!(s.lexicon().unwrap().version, builtin);

    // Checked on receipt: each way a text is refused keeps what is in use.
    let (newer, text) = lexicon_with(builtin + 3, term, &target);
    assert_eq!(accept(&text, builtin).unwrap(), Some(newer.clone()));
    assert_eq!(
        accept(&text, builtin + 3).unwrap(),
        None,
        "the same version"
    );
    assert_eq!(
        accept(&text, builtin + 4),
        Err(LexiconFault::Older {
            offered: builtin + 3,
            kept: builtin + 4
        })
    );
    assert_eq!(
        accept("{\"version\":", builtin),
        Err(LexiconFault::Malformed)
    );
    let bad = text.replace(&format!("\"{term}\""), "\"\"");
    assert!(matches!(
        accept(&bad, builtin),
        Err(LexiconFault::BadEntry {
            why: "empty word",
            ..
        })
    ));

    // Stored: searched at once (the cache is replaced).
    assert!(s.put_lexicon(newer, &text, 1).unwrap());
    assert_eq!(s.lexicon().unwrap().version, builtin + 3);
    assert_eq!(names(&s, term, 10)[0], target);
    // An older one is never stored over it.
    let (older, old_text) = lexicon_with(builtin + 2, "别的词", &target);
    assert!(!s.put_lexicon(older, &old_text, 2).unwrap());
    assert_eq!(s.lexicon().unwrap().version, builtin + 3);
    assert_eq!(names(&s, term, 10)[0], target);
}
