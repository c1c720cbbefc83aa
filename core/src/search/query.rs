//! Running a resident's query: literal match, lexicon rewrites, pinyin, and
//! the closest alternatives when nothing matches; one ranking over all.
//!
//! Ranking puts the intended item first: hits whose *name* matches come
//! before hits that only mention the query (in the department, materials,
//! conditions or FAQ); among each, literal before synonym before pinyin;
//! then how the name relates to what matched (equal, starting with it,
//! containing it); then BM25. So 社保 lists the items named 社保… first,
//! then those named 社会保险/社会保障…; 低保 puts 最低生活保障 (a synonym
//! equal to a name) above an item that merely mentions 低保 among its
//! materials; and 户口登记 puts 户口登记 first.

use std::collections::HashMap;

use rusqlite::{Connection, params};

use super::lexicon::{Expansion, Lexicon};
use super::pinyin::{self, QueryKeys};
use super::{
    MatchKind, Piece, SearchError, SearchHit, highlight_ranges, mark, match_expression, pieces,
};

/// BM25 column weights: guide_id (unindexed), name, department, topics, body.
const WEIGHTS: &str = "0.0, 10.0, 3.0, 3.0, 1.0";

/// How many candidates BM25 picks per sub-query before ranking.
const CANDIDATES: usize = 200;

/// Below this many literal and synonym hits, the query's pinyin is tried too
/// (a homophone slip such as 户口签移 finds nothing literally).
const HOMOPHONE_BELOW: usize = 3;

/// What to search for and how much to return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchOptions {
    /// At most this many hits (1..=500).
    pub limit: usize,
    /// Only items of this department (its name as in the guide, e.g. 区民政局).
    pub department: Option<String>,
}

impl SearchOptions {
    /// `limit` hits, every department.
    pub fn limit(limit: usize) -> Self {
        Self {
            limit,
            department: None,
        }
    }
}

/// Searches with the built-in lexicon: at most `limit` hits, best first. An
/// empty or punctuation-only query gives no hits (not an error).
pub fn search(conn: &Connection, query: &str, limit: usize) -> Result<Vec<SearchHit>, SearchError> {
    search_with(
        conn,
        Lexicon::builtin(),
        query,
        &SearchOptions::limit(limit),
    )
}

/// One candidate row: guide id, BM25 (FTS5's, lower is better), name, department.
type Row = (String, f64, String, String);

fn candidates(
    conn: &Connection,
    table: &str,
    weights: &str,
    expr: &str,
    department: Option<&str>,
) -> Result<Vec<Row>, SearchError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT g.id, c.r, g.name, g.department
         FROM (SELECT rowid, bm25({table}{weights}) AS r FROM {table}
               WHERE {table} MATCH ?1
                 AND (?3 IS NULL OR rowid IN (SELECT rowid FROM guides WHERE department = ?3))
               ORDER BY r LIMIT ?2) c
         JOIN guides g ON g.rowid = c.rowid
         ORDER BY c.r"
    ))?;
    let limit = i64::try_from(CANDIDATES).unwrap_or(200);
    let rows = stmt.query_map(params![expr, limit, department], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, f64>(1)?,
            r.get::<_, Option<String>>(2)?.unwrap_or_default(),
            r.get::<_, Option<String>>(3)?.unwrap_or_default(),
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// How the name relates to the matched text: 4 equal, 3 starts with it,
/// 2 contains it (or all its pieces), 1 the match is elsewhere.
fn name_class(name: &str, text: &str) -> u8 {
    let folded = name.to_lowercase();
    let parts: Vec<String> = pieces(text)
        .into_iter()
        .map(|p| match p {
            Piece::Cjk(run) => run.into_iter().collect(),
            Piece::Word(w) => w,
        })
        .collect();
    let whole: String = parts.concat();
    if whole.is_empty() {
        1
    } else if folded == whole {
        4
    } else if folded.starts_with(&whole) {
        3
    } else if folded.contains(&whole) || parts.iter().all(|p| folded.contains(p.as_str())) {
        2
    } else {
        1
    }
}

fn source_rank(kind: MatchKind) -> f64 {
    match kind {
        MatchKind::Literal => 3.0,
        MatchKind::Synonym => 2.0,
        MatchKind::Pinyin => 1.0,
        MatchKind::Closest => 0.0,
    }
}

/// The score band of hits whose name matched.
const NAMED: f64 = 10_000.0;

/// Name matched or not, then source, then name class, then BM25 (flipped
/// and bounded to stay inside its band).
fn score(class: u8, kind: MatchKind, bm25: f64) -> f64 {
    let named = if class >= 2 { NAMED } else { 0.0 };
    named + source_rank(kind) * 1000.0 + f64::from(class) * 100.0 + (-bm25).clamp(0.0, 99.0)
}

/// The hits found so far, one per guide, the best-scored kept.
#[derive(Default)]
struct Found(HashMap<String, SearchHit>);

impl Found {
    fn offer(&mut self, hit: SearchHit) {
        match self.0.get(&hit.guide_id) {
            Some(old) if old.score >= hit.score => {}
            _ => {
                self.0.insert(hit.guide_id.clone(), hit);
            }
        }
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

fn hit(row: Row, kind: MatchKind, class: u8, ranges: Vec<(u32, u32)>) -> SearchHit {
    let (guide_id, bm25, name, department) = row;
    SearchHit {
        highlighted: mark(&name, &ranges),
        highlights: ranges,
        score: score(class, kind, bm25),
        guide_id,
        name,
        department,
        matched: kind,
    }
}

/// Literal (or rewritten) text through the bigram index; how many rows matched.
/// `anchor`: a rewritten term whose presence in a name makes the name count
/// as matched even when the other words of the query are found elsewhere.
fn literal(
    conn: &Connection,
    found: &mut Found,
    text: &str,
    kind: MatchKind,
    anchor: Option<&str>,
    department: Option<&str>,
) -> Result<usize, SearchError> {
    let Some(expr) = match_expression(text) else {
        return Ok(0);
    };
    let rows = candidates(
        conn,
        "guide_fts",
        &format!(", {WEIGHTS}"),
        &expr,
        department,
    )?;
    let n = rows.len();
    for row in rows {
        let mut class = name_class(&row.2, text);
        if anchor.is_some_and(|a| name_class(&row.2, a) >= 2) {
            class = class.max(2);
        }
        let ranges = highlight_ranges(&row.2, text);
        found.offer(hit(row, kind, class, ranges));
    }
    Ok(n)
}

/// A lexicon rewrite; if the words left around the rewritten term find
/// nothing with it (养狗要办什么证 → `犬类准养证 要办什么证`), the target
/// on its own.
fn synonym(
    conn: &Connection,
    found: &mut Found,
    e: &Expansion,
    department: Option<&str>,
) -> Result<(), SearchError> {
    // The target anchors a name only when little else was typed around it
    // (低保 申请, not 补领 身份证, where 身份证 is what the resident wants).
    let left = e.query.replacen(e.target.as_str(), "", 1);
    let anchor =
        (left.chars().filter(|c| c.is_alphanumeric()).count() <= 2).then_some(e.target.as_str());
    if literal(
        conn,
        found,
        &e.query,
        MatchKind::Synonym,
        anchor,
        department,
    )? == 0
        && e.query != e.target
    {
        literal(
            conn,
            found,
            &e.target,
            MatchKind::Synonym,
            anchor,
            department,
        )?;
    }
    Ok(())
}

fn quoted(token: &str) -> String {
    format!("\"{}\"", token.replace('"', "\"\""))
}

/// The query's pinyin through the pinyin index. `homophone`: the keys came
/// from characters that found too little, so a name match ranks below any
/// literal match of a name.
fn by_pinyin(
    conn: &Connection,
    found: &mut Found,
    keys: &QueryKeys,
    homophone: bool,
    department: Option<&str>,
) -> Result<(), SearchError> {
    let mut expr = format!(
        "py_full : {}* OR py_initials : {}*",
        quoted(&keys.full),
        quoted(&keys.initials)
    );
    // Several words (`menzhen baoxiao`): also each word anywhere in the name.
    if keys.words.len() > 1 {
        let each: Vec<String> = keys
            .words
            .iter()
            .map(|w| format!("(py_full : {q}* OR py_initials : {q}*)", q = quoted(w)))
            .collect();
        expr = format!("({expr}) OR ({})", each.join(" AND "));
    }
    for row in candidates(conn, "guide_pinyin", "", &expr, department)? {
        let Some((s, e)) = pinyin::match_range(&row.2, keys).or_else(|| {
            // Each word on its own: the span from the first to the last.
            let spans: Option<Vec<(usize, usize)>> = keys
                .words
                .iter()
                .map(|w| pinyin::match_range(&row.2, &QueryKeys::word(w)))
                .collect();
            spans.and_then(|v| Some((v.iter().map(|x| x.0).min()?, v.iter().map(|x| x.1).max()?)))
        }) else {
            continue;
        };
        let len = row.2.chars().count();
        let class = if homophone {
            1
        } else if s == 0 && e >= len {
            4
        } else if s == 0 {
            3
        } else {
            2
        };
        let ranges = vec![(
            u32::try_from(s).unwrap_or(u32::MAX),
            u32::try_from(e).unwrap_or(u32::MAX),
        )];
        found.offer(hit(row, MatchKind::Pinyin, class, ranges));
    }
    Ok(())
}

/// Nothing matched the whole query: items that match any of its bigrams or
/// words, best first, offered as the closest alternatives.
fn closest(
    conn: &Connection,
    found: &mut Found,
    text: &str,
    department: Option<&str>,
) -> Result<(), SearchError> {
    let mut terms: Vec<String> = Vec::new();
    for p in pieces(text) {
        match p {
            Piece::Cjk(run) if run.len() == 1 => terms.push(run[0].to_string()),
            Piece::Cjk(run) => terms.extend(run.windows(2).map(|w| w.iter().collect())),
            Piece::Word(w) => terms.push(w),
        }
    }
    terms.sort();
    terms.dedup();
    if terms.is_empty() {
        return Ok(());
    }
    let expr = terms
        .iter()
        .map(|t| quoted(t))
        .collect::<Vec<_>>()
        .join(" OR ");
    let spaced = terms.join(" ");
    for row in candidates(
        conn,
        "guide_fts",
        &format!(", {WEIGHTS}"),
        &expr,
        department,
    )? {
        // A name holding half the query's bigrams or more counts as named.
        let folded = row.2.to_lowercase();
        let inside = terms.iter().filter(|t| folded.contains(t.as_str())).count();
        let class = if inside * 2 >= terms.len() { 2 } else { 1 };
        let ranges = highlight_ranges(&row.2, &spaced);
        found.offer(hit(row, MatchKind::Closest, class, ranges));
    }
    Ok(())
}

/// The lexicon terms whose full pinyin is the query's letters, or whose
/// initials are (for two letters or more).
fn terms_spelled(lexicon: &Lexicon, keys: &QueryKeys) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in &lexicon.entries {
        let Some(k) = pinyin::query_keys(&e.term) else {
            continue;
        };
        let spelled = k.full == keys.full || (keys.full.len() >= 2 && k.initials == keys.full);
        if spelled && !out.contains(&e.term) {
            out.push(e.term.clone());
        }
    }
    out
}

/// Searches the index with `lexicon`: literal words, lexicon rewrites, pinyin
/// (for queries in letters, and for characters that found too little), and
/// the closest alternatives when nothing at all matched. Best first.
pub fn search_with(
    conn: &Connection,
    lexicon: &Lexicon,
    query: &str,
    opts: &SearchOptions,
) -> Result<Vec<SearchHit>, SearchError> {
    let limit = opts.limit.clamp(1, 500);
    let department = opts.department.as_deref();
    let text = lexicon.strip_stopwords(query);
    let mut found = Found::default();
    literal(
        conn,
        &mut found,
        &text,
        MatchKind::Literal,
        None,
        department,
    )?;
    for e in lexicon.expansions(&text) {
        synonym(conn, &mut found, &e, department)?;
    }
    let has_letters = pieces(&text)
        .iter()
        .any(|p| matches!(p, Piece::Word(w) if w.chars().any(|c| c.is_ascii_lowercase())));
    if let Some(keys) = pinyin::query_keys(&text) {
        if has_letters {
            // `dibao` or `db` typed for 低保: the lexicon term whose pinyin
            // or initials the query spells, rewritten like the term itself.
            for term in terms_spelled(lexicon, &keys) {
                for e in lexicon.expansions(&term) {
                    synonym(conn, &mut found, &e, department)?;
                }
            }
        }
        if keys.full.len() >= 2 && (has_letters || found.len() < HOMOPHONE_BELOW) {
            by_pinyin(conn, &mut found, &keys, !has_letters, department)?;
        }
    }
    // No name matched (at most mentions elsewhere): offer the closest names.
    if !found.0.values().any(|h| h.score >= NAMED) {
        closest(conn, &mut found, &text, department)?;
    }
    let mut hits: Vec<SearchHit> = found.0.into_values().collect();
    hits.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.name.chars().count().cmp(&b.name.chars().count()))
            .then_with(|| a.guide_id.cmp(&b.guide_id))
    });
    hits.truncate(limit);
    Ok(hits)
}
