//! The search lexicon: what residents type (低保, 社保卡, 驾照, 网吧) mapped to
//! the words the official item names use (最低生活保障, 社会保障卡, 驾驶证,
//! 互联网上网服务营业场所), plus the question words a spoken or typed request
//! wraps around them (怎么办理, 在哪里, 需要什么材料).
//!
//! It is data, not code: a built-in seed ships in the library
//! (`core/data/search-lexicon.json`, every entry with its source), and a
//! newer version maintained by operators replaces it. Lexicon text is
//! untrusted input (it arrives over the network), so [`Lexicon::from_json`]
//! bounds every size and refuses control characters.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The built-in seed, compiled in.
const BUILTIN: &str = include_str!("../../data/search-lexicon.json");

/// At most this many entries (a province's list is a few thousand).
pub const MAX_ENTRIES: usize = 20_000;
/// At most this many characters in a term, a target or a stopword.
pub const MAX_TERM_CHARS: usize = 32;
/// At most this many targets per entry.
pub const MAX_TARGETS: usize = 8;
/// At most this many characters in an entry's source note.
pub const MAX_SOURCE_CHARS: usize = 200;
/// At most this many rewritten queries are tried for one query.
pub const MAX_EXPANSIONS: usize = 12;

/// One lexicon entry: a term residents use and the official words it means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// What residents type, e.g. 低保.
    pub term: String,
    /// The official words it stands for, e.g. 最低生活保障.
    pub targets: Vec<String>,
    /// Whether each target also finds the term (结婚登记 ↔ 婚姻登记).
    #[serde(default)]
    pub two_way: bool,
    /// Where the usage is seen (documentation for maintainers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// The lexicon as shipped and synced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lexicon {
    /// Monotonic version; a phone keeps the newest it has seen.
    pub version: u64,
    /// Question and filler words removed from a query before it is searched.
    #[serde(default)]
    pub stopwords: Vec<String>,
    /// The entries.
    pub entries: Vec<Entry>,
    /// Free text for maintainers (ignored by search).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Why a lexicon was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LexiconError {
    /// Not the lexicon's JSON shape.
    #[error("lexicon is not valid JSON of the expected shape: {0}")]
    Malformed(String),
    /// More entries than [`MAX_ENTRIES`].
    #[error("lexicon has {0} entries, more than {MAX_ENTRIES}")]
    TooManyEntries(usize),
    /// An entry breaks a rule (empty, too long, control characters, too many
    /// targets); the index says which.
    #[error("lexicon entry {index}: {why}")]
    BadEntry {
        /// Position in `entries` (or in `stopwords` for a stopword).
        index: usize,
        /// The rule it breaks.
        why: &'static str,
    },
}

fn check_word(w: &str) -> Option<&'static str> {
    let n = w.chars().count();
    if w.trim().is_empty() {
        Some("empty word")
    } else if n > MAX_TERM_CHARS {
        Some("word longer than 32 characters")
    } else if w.chars().any(char::is_control) {
        Some("control character")
    } else {
        None
    }
}

/// A query rewritten through the lexicon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expansion {
    /// The rewritten query (the target set off by spaces, so the words around
    /// it are matched on their own: 社保卡激活 → `社会保障卡 激活`).
    pub query: String,
    /// The first term of the query that was rewritten.
    pub term: String,
    /// What that term was rewritten to.
    pub target: String,
}

impl Lexicon {
    /// Parses and checks a lexicon.
    pub fn from_json(text: &str) -> Result<Self, LexiconError> {
        let lex: Lexicon =
            serde_json::from_str(text).map_err(|e| LexiconError::Malformed(e.to_string()))?;
        lex.check()?;
        Ok(lex)
    }

    /// Checks the bounds and rules of every entry.
    pub fn check(&self) -> Result<(), LexiconError> {
        if self.entries.len() > MAX_ENTRIES {
            return Err(LexiconError::TooManyEntries(self.entries.len()));
        }
        let mut terms = std::collections::HashSet::with_capacity(self.entries.len());
        for (index, e) in self.entries.iter().enumerate() {
            let bad = |why| Err(LexiconError::BadEntry { index, why });
            if let Some(why) = check_word(&e.term) {
                return bad(why);
            }
            if e.term.trim() != e.term {
                return bad("spaces around a term");
            }
            if !terms.insert(e.term.as_str()) {
                return bad("duplicate term");
            }
            if let Some(source) = &e.source {
                if source.chars().count() > MAX_SOURCE_CHARS {
                    return bad("source longer than 200 characters");
                }
                if source.chars().any(char::is_control) {
                    return bad("control character");
                }
            }
            if e.targets.is_empty() {
                return bad("no targets");
            }
            if e.targets.len() > MAX_TARGETS {
                return bad("more than 8 targets");
            }
            if let Some(why) = e.targets.iter().find_map(|t| check_word(t)) {
                return bad(why);
            }
        }
        for (index, w) in self.stopwords.iter().enumerate() {
            if let Some(why) = check_word(w) {
                return Err(LexiconError::BadEntry { index, why });
            }
        }
        Ok(())
    }

    /// The built-in seed. Checked by a test; should it ever fail to parse,
    /// search still works, without a lexicon (and says so in the log).
    pub fn builtin() -> &'static Lexicon {
        static LEX: OnceLock<Lexicon> = OnceLock::new();
        LEX.get_or_init(|| {
            Lexicon::from_json(BUILTIN).unwrap_or_else(|e| {
                tracing::error!(error = %e, "built-in search lexicon refused; searching without it");
                Lexicon {
                    version: 0,
                    stopwords: Vec::new(),
                    entries: Vec::new(),
                    note: None,
                }
            })
        })
    }

    /// The query with every stopword replaced by a space (longest first), so
    /// 怎么办理低保 is searched as 低保. A query that is nothing but
    /// stopwords is kept as it was.
    pub fn strip_stopwords(&self, query: &str) -> String {
        let mut words: Vec<&str> = self.stopwords.iter().map(String::as_str).collect();
        words.sort_by_key(|w| std::cmp::Reverse(w.chars().count()));
        let mut out = query.to_owned();
        for w in words {
            if out.contains(w) {
                out = out.replace(w, " ");
            }
        }
        if out.chars().any(|c| c.is_alphanumeric()) {
            out
        } else {
            query.to_owned()
        }
    }

    /// Every directed mapping, term → targets (and, for two-way entries,
    /// each target → the term and the other targets).
    fn mappings(&self) -> BTreeMap<String, Vec<String>> {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut add = |from: &str, to: &str| {
            if from != to {
                let v = map.entry(from.to_lowercase()).or_default();
                if !v.iter().any(|x| x == to) {
                    v.push(to.to_owned());
                }
            }
        };
        for e in &self.entries {
            for t in &e.targets {
                add(&e.term, t);
                if e.two_way {
                    add(t, &e.term);
                    for other in &e.targets {
                        add(t, other);
                    }
                }
            }
        }
        map
    }

    /// The query rewritten through the lexicon. The terms found in it are
    /// taken longest first (a term overlapping a longer one already taken is
    /// skipped: 社保卡 before 社保); each rewrite replaces every taken term,
    /// one target each (社保卡丢了 → `社会保障卡 挂失`), then rewrites that
    /// keep some terms as typed follow. At most [`MAX_EXPANSIONS`].
    pub fn expansions(&self, query: &str) -> Vec<Expansion> {
        let folded = query.to_lowercase();
        let map = self.mappings();
        let mut terms: Vec<(&String, &Vec<String>)> = map
            .iter()
            .filter(|(term, _)| folded.contains(term.as_str()))
            .collect();
        terms.sort_by_key(|(t, _)| std::cmp::Reverse(t.chars().count()));
        // The taken terms, by position: (start, end, term, targets).
        let mut taken: Vec<(usize, usize, &String, &Vec<String>)> = Vec::new();
        for (term, targets) in terms {
            let Some(at) = folded.find(term.as_str()) else {
                continue;
            };
            let end = at + term.len();
            if taken.iter().all(|(s, e, _, _)| end <= *s || *e <= at) {
                taken.push((at, end, term, targets));
            }
        }
        taken.sort_by_key(|t| t.0);
        // Every combination of (as typed | one target) per taken term, the
        // ones that rewrite more terms first; the all-as-typed one is the
        // query itself and is not an expansion.
        let mut combos: Vec<Vec<Option<usize>>> = vec![Vec::new()];
        for (_, _, _, targets) in &taken {
            let mut next = Vec::new();
            for c in &combos {
                for choice in targets
                    .iter()
                    .enumerate()
                    .map(|(i, _)| Some(i))
                    .chain([None])
                {
                    let mut c = c.clone();
                    c.push(choice);
                    next.push(c);
                }
                if next.len() > MAX_EXPANSIONS * 8 {
                    break;
                }
            }
            combos = next;
        }
        combos.retain(|c| c.iter().any(Option::is_some));
        combos.sort_by_key(|c| std::cmp::Reverse(c.iter().filter(|x| x.is_some()).count()));
        let mut out = Vec::new();
        for combo in combos.into_iter().take(MAX_EXPANSIONS) {
            let mut text = String::new();
            let mut last = 0;
            let mut first: Option<(String, String)> = None;
            for ((at, end, term, targets), choice) in taken.iter().zip(&combo) {
                text.push_str(&folded[last..*at]);
                match choice.and_then(|i| targets.get(i)) {
                    Some(target) => {
                        text.push(' ');
                        text.push_str(target);
                        text.push(' ');
                        first.get_or_insert_with(|| ((*term).clone(), target.clone()));
                    }
                    None => text.push_str(term),
                }
                last = *end;
            }
            text.push_str(&folded[last..]);
            if let Some((term, target)) = first {
                out.push(Expansion {
                    query: text.split_whitespace().collect::<Vec<_>>().join(" "),
                    term,
                    target,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_builtin_seed_parses_and_every_entry_has_a_source() {
        let lex = Lexicon::from_json(BUILTIN).unwrap();
        assert!(lex.entries.len() >= 100, "{}", lex.entries.len());
        assert!(lex.entries.iter().all(|e| e.source.is_some()));
        assert_eq!(Lexicon::builtin().version, lex.version);
    }

    #[test]
    fn terms_are_rewritten_longest_first() {
        let lex = Lexicon::builtin();
        let e = lex.expansions("社保卡激活");
        assert_eq!(e[0].query, "社会保障卡 激活");
        assert!(e.iter().all(|x| x.term == "社保卡"), "{e:?}");
        let e = lex.expansions("低保");
        assert_eq!(e[0].query, "最低生活保障");
        assert!(lex.expansions("户口登记").is_empty());
    }

    #[test]
    fn two_way_entries_work_both_ways() {
        let lex = Lexicon::builtin();
        assert!(
            lex.expansions("婚姻登记")
                .iter()
                .any(|e| e.query == "结婚登记")
        );
        assert!(
            lex.expansions("结婚登记")
                .iter()
                .any(|e| e.query == "婚姻登记")
        );
    }

    #[test]
    fn stopwords_go_but_a_query_of_only_stopwords_stays() {
        let lex = Lexicon::builtin();
        assert_eq!(lex.strip_stopwords("怎么办理低保").trim(), "低保");
        assert_eq!(lex.strip_stopwords("怎么"), "怎么");
    }

    #[test]
    fn hostile_lexicons_are_refused_with_the_rule_they_break() {
        assert!(matches!(
            Lexicon::from_json("[1]"),
            Err(LexiconError::Malformed(_))
        ));
        let bad = |e: &str| {
            Lexicon::from_json(&format!(r#"{{"version":2,"entries":[{e}]}}"#)).unwrap_err()
        };
        assert_eq!(
            bad(r#"{"term":"","targets":["x"]}"#),
            LexiconError::BadEntry {
                index: 0,
                why: "empty word"
            }
        );
        assert_eq!(
            bad(r#"{"term":"a","targets":[]}"#),
            LexiconError::BadEntry {
                index: 0,
                why: "no targets"
            }
        );
        assert_eq!(
            bad(r#"{"term":"a\u0000","targets":["b"]}"#),
            LexiconError::BadEntry {
                index: 0,
                why: "control character"
            }
        );
        assert_eq!(
            bad(r#"{"term":"a","targets":["b"]},{"term":"a","targets":["c"]}"#),
            LexiconError::BadEntry {
                index: 1,
                why: "duplicate term"
            }
        );
        assert_eq!(
            bad(r#"{"term":" a","targets":["b"]}"#),
            LexiconError::BadEntry {
                index: 0,
                why: "spaces around a term"
            }
        );
        let long_source = "s".repeat(201);
        assert_eq!(
            bad(&format!(
                r#"{{"term":"a","targets":["b"],"source":"{long_source}"}}"#
            )),
            LexiconError::BadEntry {
                index: 0,
                why: "source longer than 200 characters"
            }
        );
        let long = "长".repeat(33);
        assert_eq!(
            bad(&format!(r#"{{"term":"a","targets":["{long}"]}}"#)),
            LexiconError::BadEntry {
                index: 0,
                why: "word longer than 32 characters"
            }
        );
    }
}
