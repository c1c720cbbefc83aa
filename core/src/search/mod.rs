//! Offline Chinese search over the cached service guides.
//!
//! SQLite's FTS5 is the engine; the Chinese is handled here. FTS5's
//! `trigram` tokenizer cannot match a two-character query such as 户口, 社保
//! or 教师 (it needs three characters), and `unicode61` keeps a run of
//! ideographs as one token (so 户口 would not match inside 户口迁移). So each
//! run of CJK characters is indexed as its overlapping **bigrams** plus its
//! last character (`户口迁移` → `户口 口迁 迁移 移`); other text (codes,
//! Latin words, digits) is indexed as words. A query is turned the same way
//! into one phrase per CJK run (its bigrams, consecutive: exactly a
//! substring match; a single character is a prefix match) and one prefix
//! term per word, all of which must match.
//!
//! Ranking is FTS5's BM25 over weighted columns (the item's name counts most,
//! then department and topics, then materials, conditions and FAQ), with a
//! boost for names that contain the whole query. Highlights are computed on
//! the original name text (character ranges and a marked-up string), so the
//! app can render them as it likes.
//!
//! Everything here works on a plain [`rusqlite::Connection`] so the client
//! store runs it inside its own transactions.

pub mod lexicon;
pub mod pinyin;
mod query;

use rusqlite::{Connection, OptionalExtension as _, params};
use serde::Serialize;

use crate::guide::Guide;

pub use lexicon::Lexicon;
pub use query::{SearchOptions, search, search_with};

/// The search index schema (part of the client store's first migration).
/// Each row's `rowid` is the rowid of its guide in `guides`, so updates and
/// deletes find it by key (an UNINDEXED column would be a full scan).
pub const SCHEMA: &str = "
    CREATE VIRTUAL TABLE guide_fts USING fts5(
        guide_id UNINDEXED, name, department, topics, body,
        tokenize = 'unicode61 remove_diacritics 0');
";

/// The pinyin index of guide names (client store migration 6). Each row's
/// `rowid` is its guide's; see [`pinyin::index_columns`].
pub const PINYIN_SCHEMA: &str = "
    CREATE VIRTUAL TABLE guide_pinyin USING fts5(
        py_full, py_initials, tokenize = 'unicode61 remove_diacritics 0');
";

/// Why a search failed.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The database failed.
    #[error("search index: {0}")]
    Index(#[from] rusqlite::Error),
}

/// One ranked result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchHit {
    /// Guide id.
    pub guide_id: String,
    /// The item's name.
    pub name: String,
    /// The implementing department.
    pub department: String,
    /// The name with every match wrapped in `【` and `】`.
    pub highlighted: String,
    /// The matches in `name` as `[start, end)` character (not byte) offsets.
    pub highlights: Vec<(u32, u32)>,
    /// Relevance (higher is better), for display or merging.
    pub score: f64,
    /// How the hit was found: the query's own words, a lexicon term, its
    /// pinyin, or (when nothing matched) as a closest alternative.
    pub matched: MatchKind,
}

/// How a hit was found, in rank order: for hits whose names match the query
/// equally well, a literal match comes before a synonym, a synonym before
/// pinyin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    /// The query's own characters or words.
    Literal,
    /// A lexicon rewrite of the query (低保 → 最低生活保障).
    Synonym,
    /// The query's pinyin: typed in letters, initials, or a homophone slip.
    Pinyin,
    /// Nothing matched the whole query: the closest items, offered instead.
    Closest,
}

/// Whether `c` is a CJK ideograph (or a CJK-compatibility one).
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// A piece of text split into CJK runs and other words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    /// A run of consecutive CJK ideographs.
    Cjk(Vec<char>),
    /// A run of letters or digits (lower-cased).
    Word(String),
}

pub(crate) fn pieces(text: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut cjk: Vec<char> = Vec::new();
    let mut word = String::new();
    let flush = |out: &mut Vec<Piece>, cjk: &mut Vec<char>, word: &mut String| {
        if !cjk.is_empty() {
            out.push(Piece::Cjk(std::mem::take(cjk)));
        }
        if !word.is_empty() {
            out.push(Piece::Word(std::mem::take(word)));
        }
    };
    for c in text.chars() {
        if is_cjk(c) {
            if !word.is_empty() {
                flush(&mut out, &mut cjk, &mut word);
            }
            cjk.push(c);
        } else if c.is_alphanumeric() {
            if !cjk.is_empty() {
                flush(&mut out, &mut cjk, &mut word);
            }
            word.extend(c.to_lowercase());
        } else {
            flush(&mut out, &mut cjk, &mut word);
        }
    }
    flush(&mut out, &mut cjk, &mut word);
    out
}

/// The text as the index stores it: space-separated tokens (each CJK run as
/// its bigrams and its last character, other runs as lower-case words).
/// Built in one pass into one string: indexing a page of guides is the
/// heaviest part of a catalog sync.
pub fn index_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    let mut prev_cjk: Option<char> = None;
    let mut in_word = false;
    let sep = |out: &mut String| {
        if !out.is_empty() {
            out.push(' ');
        }
    };
    for c in text.chars() {
        if is_cjk(c) {
            in_word = false;
            if let Some(p) = prev_cjk {
                sep(&mut out);
                out.push(p);
                out.push(c);
            }
            prev_cjk = Some(c);
            continue;
        }
        // The end of a CJK run: its last character on its own.
        if let Some(p) = prev_cjk.take() {
            sep(&mut out);
            out.push(p);
        }
        if c.is_alphanumeric() {
            if !in_word {
                sep(&mut out);
                in_word = true;
            }
            out.extend(c.to_lowercase());
        } else {
            in_word = false;
        }
    }
    if let Some(p) = prev_cjk {
        sep(&mut out);
        out.push(p);
    }
    out
}

fn quoted(token: &str) -> String {
    // Tokens are letters and digits only; quoting keeps FTS5 syntax out anyway.
    format!("\"{}\"", token.replace('"', "\"\""))
}

/// The FTS5 MATCH expression for a user's query, or `None` if it has no
/// searchable characters. Every piece must match (AND).
pub fn match_expression(query: &str) -> Option<String> {
    let parts: Vec<String> = pieces(query)
        .into_iter()
        .map(|p| match p {
            Piece::Cjk(run) if run.len() == 1 => format!("{}*", quoted(&run[0].to_string())),
            Piece::Cjk(run) => {
                let grams: Vec<String> = run
                    .windows(2)
                    .map(|w| w.iter().collect::<String>())
                    .collect();
                quoted(&grams.join(" "))
            }
            Piece::Word(w) => format!("{}*", quoted(&w)),
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(" AND "))
}

/// Text that is searched besides the name, department and topics.
fn body_text(g: &Guide) -> String {
    let mut parts: Vec<&str> = vec![&g.basic_code, &g.implementation_code];
    parts.extend(g.materials.iter().map(|m| m.name.as_str()));
    parts.extend(g.acceptance_conditions.iter().map(String::as_str));
    parts.extend(g.process.iter().map(|p| p.step.as_str()));
    for f in &g.faq {
        parts.push(&f.q);
        parts.push(&f.a);
    }
    if let Some(main) = &g.main_item {
        parts.push(main);
    }
    parts.join(" ")
}

/// A guide's search-index text: the bigram text of its name, department,
/// topics and body, and the pinyin of its name. Computing it is most of the
/// cost of indexing a guide, so a catalog sync computes it before the
/// writer's transaction (while the previous page is written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexText {
    name: String,
    department: String,
    topics: String,
    body: String,
    py_full: String,
    py_initials: String,
}

impl IndexText {
    /// The index text of `g`.
    pub fn of(g: &Guide) -> Self {
        let (py_full, py_initials) = pinyin::index_columns(&g.name);
        Self {
            name: index_text(&g.name),
            department: index_text(&g.department),
            topics: index_text(&g.topics.join(" ")),
            body: index_text(&body_text(g)),
            py_full,
            py_initials,
        }
    }
}

/// Indexes (or re-indexes) one guide, stored in `guides` at `rowid`.
pub fn index_guide(conn: &Connection, rowid: i64, g: &Guide) -> Result<(), SearchError> {
    index_prepared(conn, rowid, &g.id, &IndexText::of(g))
}

/// Indexes (or re-indexes) the guide `id`, stored at `rowid`, with its
/// index text computed beforehand.
pub fn index_prepared(
    conn: &Connection,
    rowid: i64,
    id: &str,
    text: &IndexText,
) -> Result<(), SearchError> {
    remove_guide(conn, rowid)?;
    insert_prepared(conn, rowid, id, text)
}

/// Indexes the guide `id`, stored at `rowid`, which the index does not hold
/// yet (a guide just inserted at a rowid above [`max_rowid`]): no delete
/// first, which is what an initial sync does for every guide.
pub fn insert_prepared(
    conn: &Connection,
    rowid: i64,
    id: &str,
    text: &IndexText,
) -> Result<(), SearchError> {
    conn.prepare_cached(
        "INSERT INTO guide_fts(rowid, guide_id, name, department, topics, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        rowid,
        id,
        text.name,
        text.department,
        text.topics,
        text.body,
    ])?;
    conn.prepare_cached(
        "INSERT INTO guide_pinyin(rowid, py_full, py_initials) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![rowid, text.py_full, text.py_initials])?;
    Ok(())
}

/// The highest rowid among the stored guides and both index tables (0 if
/// all are empty): a guide inserted at a rowid above it has no index rows.
/// Each lookup reads one end of a rowid-ordered b-tree.
pub fn max_rowid(conn: &Connection) -> Result<i64, SearchError> {
    let mut max = 0i64;
    for sql in [
        "SELECT rowid FROM guides ORDER BY rowid DESC LIMIT 1",
        "SELECT rowid FROM guide_fts ORDER BY rowid DESC LIMIT 1",
        "SELECT rowid FROM guide_pinyin ORDER BY rowid DESC LIMIT 1",
    ] {
        let top: Option<i64> = conn
            .prepare_cached(sql)?
            .query_row([], |r| r.get(0))
            .optional()?;
        max = max.max(top.unwrap_or(0));
    }
    Ok(max)
}

/// Indexes the pinyin of one guide's name.
fn index_pinyin(conn: &Connection, rowid: i64, name: &str) -> Result<(), SearchError> {
    let (full, initials) = pinyin::index_columns(name);
    conn.prepare_cached(
        "INSERT INTO guide_pinyin(rowid, py_full, py_initials) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![rowid, full, initials])?;
    Ok(())
}

/// Indexes the pinyin of every stored guide that lacks it: a store upgraded
/// to migration 6 fills its new pinyin index here, once. Returns how many.
pub fn backfill_pinyin(conn: &Connection) -> Result<usize, SearchError> {
    let mut stmt = conn.prepare(
        "SELECT rowid, name FROM guides
         WHERE rowid NOT IN (SELECT rowid FROM guide_pinyin)",
    )?;
    let rows: Vec<(i64, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (rowid, name) in &rows {
        index_pinyin(conn, *rowid, name)?;
    }
    Ok(rows.len())
}

/// Removes the guide stored at `rowid` from the index (by key).
pub fn remove_guide(conn: &Connection, rowid: i64) -> Result<(), SearchError> {
    conn.prepare_cached("DELETE FROM guide_fts WHERE rowid = ?1")?
        .execute([rowid])?;
    conn.prepare_cached("DELETE FROM guide_pinyin WHERE rowid = ?1")?
        .execute([rowid])?;
    Ok(())
}

/// Where the query's pieces occur in `name`, as merged character ranges.
pub fn highlight_ranges(name: &str, query: &str) -> Vec<(u32, u32)> {
    let hay: Vec<char> = name.chars().collect();
    let lower: Vec<char> = hay
        .iter()
        .map(|c| c.to_lowercase().next().unwrap_or(*c))
        .collect();
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for p in pieces(query) {
        let needle: Vec<char> = match p {
            Piece::Cjk(run) => run,
            Piece::Word(w) => w.chars().collect(),
        };
        if needle.is_empty() || needle.len() > lower.len() {
            continue;
        }
        let mut i = 0;
        while i + needle.len() <= lower.len() {
            if lower[i..i + needle.len()] == needle[..] {
                ranges.push((i, i + needle.len()));
                i += needle.len();
            } else {
                i += 1;
            }
        }
    }
    ranges.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for (s, e) in ranges {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
        .into_iter()
        .map(|(s, e)| {
            (
                u32::try_from(s).unwrap_or(u32::MAX),
                u32::try_from(e).unwrap_or(u32::MAX),
            )
        })
        .collect()
}

/// `name` with each range wrapped in 【 】.
pub(crate) fn mark(name: &str, ranges: &[(u32, u32)]) -> String {
    let mut out = String::with_capacity(name.len() + ranges.len() * 6);
    let mut r = ranges.iter().peekable();
    for (i, c) in name.chars().enumerate() {
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        if r.peek().is_some_and(|(s, _)| *s == i) {
            out.push('【');
        }
        out.push(c);
        if let Some((_, e)) = r.peek() {
            if *e == i + 1 {
                out.push('】');
                r.next();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cjk_runs_become_bigrams_and_their_last_character() {
        assert_eq!(index_text("户口迁移"), "户口 口迁 迁移 移");
        assert_eq!(index_text("社保"), "社保 保");
        assert_eq!(index_text("证"), "证");
        assert_eq!(index_text("ICP备案（新办）"), "icp 备案 案 新办 办");
        assert_eq!(index_text("51160221"), "51160221");
    }

    #[test]
    fn queries_are_phrases_of_bigrams_and_prefix_words() {
        assert_eq!(match_expression("户口").unwrap(), "\"户口\"");
        assert_eq!(match_expression("户口迁移").unwrap(), "\"户口 口迁 迁移\"");
        assert_eq!(match_expression("证").unwrap(), "\"证\"*");
        assert_eq!(
            match_expression("ICP 备案").unwrap(),
            "\"icp\"* AND \"备案\""
        );
        assert_eq!(match_expression("  ，。! "), None);
        // FTS5 syntax in the query is only text.
        assert_eq!(
            match_expression("a\" OR b").unwrap(),
            "\"a\"* AND \"or\"* AND \"b\"*"
        );
    }

    #[test]
    fn highlights_are_character_ranges_merged() {
        assert_eq!(highlight_ranges("户口迁移登记", "户口"), vec![(0, 2)]);
        assert_eq!(highlight_ranges("户口迁移登记", "迁移 户口"), vec![(0, 4)]);
        assert_eq!(highlight_ranges("教师资格认定", "资格"), vec![(2, 4)]);
        assert_eq!(mark("教师资格认定", &[(2, 4)]), "教师【资格】认定");
        assert_eq!(highlight_ranges("无关", "户口"), Vec::<(u32, u32)>::new());
    }
}
