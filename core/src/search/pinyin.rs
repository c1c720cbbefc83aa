//! Pinyin keys of guide names, for residents who type with a keyboard left in
//! pinyin mode (`hukou`, `hkqy`) or slip on a homophone (户口签移).
//!
//! Each character's reading comes from the `pinyin` crate (the pinyin-data
//! tables, the same as python-pinyin's); tones are dropped and `ü` is written
//! `v`, as every pinyin keyboard does. A character with several readings
//! takes the one its word calls for where the word is in [`WORD_READINGS`]
//! (行业 is *hang*ye, 会计 *kuai*ji, 调解 *tiao*jie); elsewhere it takes the
//! dictionary's first reading, which is right for the rest of the names in the
//! Guang'an catalog (checked against python-pinyin's phrase dictionary).
//!
//! A name is indexed as the pinyin of every run of syllables that starts at a
//! syllable (capped at [`WINDOW`] syllables), once in full and once as
//! initials, so that a prefix query finds a name by any stretch of it:
//! `qianyi` and `qy` both find 户口迁移审批.

use pinyin::ToPinyin as _;

/// How many syllables one index token covers at most. Long enough for any
/// query a resident types in one go; bounds the index for very long names.
pub const WINDOW: usize = 10;

/// How many characters of a name are indexed (the longest names in the
/// catalog run past 100 characters of legal qualifications).
const MAX_CHARS: usize = 48;

/// Words whose polyphonic characters do not take the dictionary's first
/// reading. Only words that occur in service-item names and in what residents
/// type for them: a general-purpose word list would belong in a crate.
pub const WORD_READINGS: &[(&str, &[&str])] = &[
    ("行业", &["hang", "ye"]),
    ("银行", &["yin", "hang"]),
    ("会计", &["kuai", "ji"]),
    ("校验", &["jiao", "yan"]),
    ("调解", &["tiao", "jie"]),
    ("调整", &["tiao", "zheng"]),
    ("调控", &["tiao", "kong"]),
    ("给付", &["ji", "fu"]),
    ("重建", &["chong", "jian"]),
    ("重新", &["chong", "xin"]),
    ("重庆", &["chong", "qing"]),
    ("重复", &["chong", "fu"]),
    ("无着", &["wu", "zhuo"]),
    ("返还", &["fan", "huan"]),
    ("退还", &["tui", "huan"]),
    ("长期", &["chang", "qi"]),
    ("畜牧", &["xu", "mu"]),
    ("结扎", &["jie", "za"]),
    ("单行", &["dan", "xing"]),
    ("朝阳", &["chao", "yang"]),
];

/// One syllable of a name: its plain reading and the character span it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Syllable {
    /// Plain pinyin, lower case, `ü` as `v`; for a Latin letter or digit run,
    /// the run itself lower-cased.
    pub text: String,
    /// The character offset in the original text.
    pub at: usize,
    /// How many characters it covers.
    pub len: usize,
    /// A character's reading (its initial is its first letter), not a Latin
    /// or digit run (which stays whole among initials: `icp`).
    pub reading: bool,
}

impl Syllable {
    /// What this syllable contributes to the initials column.
    pub fn initial(&self) -> &str {
        if self.reading {
            self.text.get(..1).unwrap_or("")
        } else {
            &self.text
        }
    }
}

fn plain(c: char) -> Option<String> {
    c.to_pinyin().map(|p| p.plain().replace('ü', "v"))
}

/// The syllables of `text`: one per CJK character with a reading, one per run
/// of Latin letters or digits; everything else separates.
pub fn syllables(text: &str) -> Vec<Syllable> {
    let chars: Vec<char> = text.chars().take(MAX_CHARS).collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if let Some((word, readings)) = WORD_READINGS
            .iter()
            .find(|(w, _)| starts_with(&chars[i..], w))
        {
            for (k, r) in readings.iter().enumerate() {
                out.push(Syllable {
                    text: (*r).to_owned(),
                    at: i + k,
                    len: 1,
                    reading: true,
                });
            }
            i += word.chars().count();
            continue;
        }
        if let Some(p) = plain(c) {
            out.push(Syllable {
                text: p,
                at: i,
                len: 1,
                reading: true,
            });
            i += 1;
        } else if c.is_ascii_alphanumeric() {
            let start = i;
            let mut run = String::new();
            while i < chars.len() && chars[i].is_ascii_alphanumeric() {
                run.push(chars[i].to_ascii_lowercase());
                i += 1;
            }
            out.push(Syllable {
                text: run,
                at: start,
                len: i - start,
                reading: false,
            });
        } else {
            i += 1;
        }
    }
    out
}

fn starts_with(chars: &[char], word: &str) -> bool {
    let mut it = chars.iter();
    word.chars().all(|w| it.next() == Some(&w))
}

/// The two index columns of a name: every syllable run of up to [`WINDOW`]
/// syllables, in full (`hukouqianyishenpi koqianyi…`) and as initials.
pub fn index_columns(name: &str) -> (String, String) {
    let syl = syllables(name);
    let mut full = String::new();
    let mut initials = String::new();
    for start in 0..syl.len() {
        let end = (start + WINDOW).min(syl.len());
        if !full.is_empty() {
            full.push(' ');
            initials.push(' ');
        }
        for s in &syl[start..end] {
            full.push_str(&s.text);
            initials.push_str(s.initial());
        }
    }
    (full, initials)
}

/// What a query looks like in pinyin: `full` for the full-pinyin column (CJK
/// characters read as pinyin, Latin letters as typed) and `initials` for the
/// initials column (CJK characters as their initials, Latin letters as typed).
/// Spaces and punctuation are dropped: `hu kou` is `hukou`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryKeys {
    /// For the full-pinyin column.
    pub full: String,
    /// For the initials column.
    pub initials: String,
    /// Each space-separated word's keys as typed in letters (`menzhen`,
    /// `baoxiao`), when there are several.
    pub words: Vec<String>,
}

impl QueryKeys {
    /// The keys of one word typed in letters.
    pub fn word(w: &str) -> Self {
        Self {
            full: w.to_owned(),
            initials: w.to_owned(),
            words: Vec::new(),
        }
    }
}

/// The pinyin keys of a query, or `None` if it has no letters or characters
/// (digits alone are codes, searched literally).
pub fn query_keys(query: &str) -> Option<QueryKeys> {
    let mut full = String::new();
    let mut initials = String::new();
    let mut any_letter = false;
    let words: Vec<String> = query
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| w.chars().any(|c| c.is_ascii_alphabetic()))
        .map(str::to_ascii_lowercase)
        .collect();
    let chars: Vec<char> = query.chars().take(MAX_CHARS).collect();
    let mut i = 0;
    while i < chars.len() {
        if let Some((word, readings)) = WORD_READINGS
            .iter()
            .find(|(w, _)| starts_with(&chars[i..], w))
        {
            for r in *readings {
                full.push_str(r);
                initials.push_str(r.get(..1).unwrap_or(""));
            }
            any_letter = true;
            i += word.chars().count();
            continue;
        }
        let c = chars[i];
        if let Some(p) = plain(c) {
            initials.push_str(p.get(..1).unwrap_or(""));
            full.push_str(&p);
            any_letter = true;
        } else if c.is_ascii_alphanumeric() {
            let l = c.to_ascii_lowercase();
            any_letter |= l.is_ascii_lowercase();
            full.push(l);
            initials.push(l);
        }
        i += 1;
    }
    // `ü` typed as `u` after l/n (lushi for 律师) is left alone: the keyboards
    // write `v`, and `lu` is a syllable of its own.
    let words = if words.len() > 1 && !query.chars().any(is_cjk_reading) {
        words
    } else {
        Vec::new()
    };
    (any_letter && !full.is_empty()).then_some(QueryKeys {
        full,
        initials,
        words,
    })
}

fn is_cjk_reading(c: char) -> bool {
    !c.is_ascii() && c.to_pinyin().is_some()
}

/// Where in `name` a pinyin key matches, as a character range: the syllable
/// run whose full pinyin (or initials) starts with `key` and covers it, the
/// first one found.
pub fn match_range(name: &str, keys: &QueryKeys) -> Option<(usize, usize)> {
    let syl = syllables(name);
    for start in 0..syl.len() {
        for (key, initials) in [(&keys.full, false), (&keys.initials, true)] {
            let mut acc = String::new();
            for (k, s) in syl[start..].iter().enumerate() {
                acc.push_str(if initials { s.initial() } else { &s.text });
                if acc.len() >= key.len() {
                    if acc.starts_with(key.as_str()) {
                        let last = &syl[start + k];
                        return Some((syl[start].at, last.at + last.len));
                    }
                    break;
                }
                if !key.starts_with(acc.as_str()) {
                    break;
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn texts(s: &str) -> Vec<String> {
        syllables(s).into_iter().map(|s| s.text).collect()
    }

    #[test]
    fn readings_are_plain_and_polyphones_follow_their_word() {
        assert_eq!(texts("户口迁移"), ["hu", "kou", "qian", "yi"]);
        assert_eq!(texts("律师"), ["lv", "shi"]);
        assert_eq!(texts("特种行业"), ["te", "zhong", "hang", "ye"]);
        assert_eq!(texts("会计专业"), ["kuai", "ji", "zhuan", "ye"]);
        assert_eq!(texts("重庆银行"), ["chong", "qing", "yin", "hang"]);
        assert_eq!(
            texts("消费纠纷调解"),
            ["xiao", "fei", "jiu", "fen", "tiao", "jie"]
        );
        assert_eq!(texts("ICP备案"), ["icp", "bei", "an"]);
    }

    #[test]
    fn index_columns_hold_every_syllable_run_in_full_and_initials() {
        let (full, ini) = index_columns("户口迁移");
        assert_eq!(full, "hukouqianyi kouqianyi qianyi yi");
        assert_eq!(ini, "hkqy kqy qy y");
        let (_, ini) = index_columns("ICP备案");
        assert_eq!(ini, "icpba ba a");
    }

    #[test]
    fn queries_mix_characters_and_letters() {
        let k = query_keys("户口qy").unwrap();
        assert_eq!(k.initials, "hkqy");
        let k = query_keys("hu kou 迁移").unwrap();
        assert_eq!(k.full, "hukouqianyi");
        assert_eq!(query_keys("户口签移").unwrap().full, "hukouqianyi");
        assert_eq!(query_keys("  ，"), None);
        assert_eq!(query_keys("2026"), None);
    }

    #[test]
    fn a_key_maps_back_to_the_characters_it_matched() {
        let k = query_keys("qianyi").unwrap();
        assert_eq!(match_range("户口迁移审批", &k), Some((2, 4)));
        let k = query_keys("hkqy").unwrap();
        assert_eq!(match_range("户口迁移审批", &k), Some((0, 4)));
        let k = query_keys("hukouq").unwrap();
        assert_eq!(match_range("户口迁移审批", &k), Some((0, 3)));
        let k = query_keys("zzz").unwrap();
        assert_eq!(match_range("户口迁移审批", &k), None);
    }
}
