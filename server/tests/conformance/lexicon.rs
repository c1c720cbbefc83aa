//! [`LexiconStore`]: the search lexicon as a versioned document. The seed
//! is the first version; each change, committed with its audit row, is the
//! next; history rows are appended and never change; entries keep the place
//! they were first added at.

use zhangban_core::search::lexicon::{Entry, Lexicon};
use zhangban_server::audit::AuditEntry;
use zhangban_server::store::operators::{AuditFilter, OperatorWrite, Written};
use zhangban_server::store::prelude::*;
use zhangban_server::store::{Store, StoreError};

use super::{Backend, T0};

fn entry(term: &str, target: &str) -> Entry {
    Entry {
        term: term.to_owned(),
        targets: vec![target.to_owned()],
        two_way: false,
        source: Some("conformance".to_owned()),
    }
}

fn seed() -> Lexicon {
    Lexicon {
        version: 5,
        stopwords: vec!["怎么".to_owned()],
        entries: vec![entry("低保", "最低生活保障"), entry("驾照", "驾驶证")],
        note: Some("seed".to_owned()),
    }
}

fn audit(action: &str) -> AuditEntry {
    AuditEntry {
        at: T0,
        actor: "pub-1".into(),
        role: "publisher".into(),
        action: action.into(),
        target: "{}".into(),
        outcome: "ok".into(),
    }
}

fn put(s: &impl Store, e: Entry) -> Result<Written, StoreError> {
    s.audited(
        &audit("lexicon.put"),
        OperatorWrite::PutLexiconEntry {
            entry: e,
            actor: "pub-1".into(),
            at: T0,
        },
    )
}

fn delete(s: &impl Store, term: &str) -> Result<Written, StoreError> {
    s.audited(
        &audit("lexicon.delete"),
        OperatorWrite::DeleteLexiconEntry {
            term: term.into(),
            actor: "pub-1".into(),
            at: T0,
        },
    )
}

fn terms(s: &impl Store) -> Vec<String> {
    s.lexicon()
        .unwrap()
        .unwrap()
        .entries
        .into_iter()
        .map(|e| e.term)
        .collect()
}

pub fn lexicon_versions_start_at_the_seed_and_each_change_is_the_next<B: Backend>(b: &B) {
    let s = b.open();
    assert_eq!(s.lexicon_version().unwrap(), None);
    assert_eq!(s.lexicon().unwrap(), None);
    // No change before the seed, and no audit row for it.
    assert!(matches!(
        put(&s, entry("社保", "社会保险")),
        Err(StoreError::InvalidState(_))
    ));
    assert!(s.audit_log(&AuditFilter::default()).unwrap().is_empty());

    assert_eq!(s.seed_lexicon(&seed(), T0).unwrap(), 5);
    assert_eq!(s.lexicon().unwrap().unwrap(), seed(), "the seed as given");
    // Seeding again (every start) changes nothing.
    let mut other = seed();
    other.version = 9;
    other.entries.clear();
    assert_eq!(s.seed_lexicon(&other, T0 + 1).unwrap(), 5);
    assert_eq!(s.lexicon().unwrap().unwrap(), seed());

    assert_eq!(
        put(&s, entry("社保", "社会保险")).unwrap(),
        Written::Version(6)
    );
    // Replacing keeps the entry's place; adding goes last.
    assert_eq!(
        put(&s, entry("低保", "低保金")).unwrap(),
        Written::Version(7)
    );
    assert_eq!(terms(&s), ["低保", "驾照", "社保"]);
    let now = s.lexicon().unwrap().unwrap();
    assert_eq!(now.version, 7);
    assert_eq!(now.entries[0].targets, ["低保金"]);
    assert_eq!(now.stopwords, seed().stopwords, "stopwords from the seed");
    assert_eq!(delete(&s, "驾照").unwrap(), Written::Version(8));
    assert_eq!(terms(&s), ["低保", "社保"]);
    // A missing term: no version used, no row.
    let rows = s.audit_log(&AuditFilter::default()).unwrap().len();
    assert!(matches!(delete(&s, "驾照"), Err(StoreError::NotFound)));
    assert_eq!(s.lexicon_version().unwrap(), Some(8));
    assert_eq!(s.audit_log(&AuditFilter::default()).unwrap().len(), rows);
    assert_eq!(rows, 3, "one audit row per change");
    // A re-added term goes last.
    assert_eq!(
        put(&s, entry("驾照", "驾驶证")).unwrap(),
        Written::Version(9)
    );
    assert_eq!(terms(&s), ["低保", "社保", "驾照"]);

    let history = s.lexicon_history(0, 100).unwrap();
    let changes: Vec<(u64, &str, Option<&str>)> = history
        .iter()
        .map(|h| (h.version, h.change.as_str(), h.term.as_deref()))
        .collect();
    assert_eq!(
        changes,
        [
            (5, "seed", None),
            (6, "put", Some("社保")),
            (7, "put", Some("低保")),
            (8, "delete", Some("驾照")),
            (9, "put", Some("驾照")),
        ]
    );
    assert_eq!(history[0].actor, "setup");
    assert_eq!(history[2].actor, "pub-1");
    assert_eq!(history[2].entry, Some(entry("低保", "低保金")));
    assert_eq!(history[3].entry, None);
    assert_eq!(s.lexicon_history(7, 1).unwrap()[0].version, 8);
    // The result is a lexicon a phone accepts.
    let text = serde_json::to_string(&s.lexicon().unwrap().unwrap()).unwrap();
    assert_eq!(Lexicon::from_json(&text).unwrap().version, 9);
}

pub fn lexicon_survives_a_reopen<B: Backend>(b: &B) {
    {
        let s = b.open();
        s.seed_lexicon(&seed(), T0).unwrap();
        put(&s, entry("社保", "社会保险")).unwrap();
    }
    let s = b.open();
    // The seed at start does not reset it.
    assert_eq!(s.seed_lexicon(&seed(), T0).unwrap(), 6);
    assert_eq!(terms(&s), ["低保", "驾照", "社保"]);
    assert_eq!(s.lexicon_history(0, 10).unwrap().len(), 2);
}
