//! The audit trail's hash chain (ADR 0166): the canonical bytes of a row,
//! its hash, and the walk that finds the first row edited, deleted or
//! inserted out of order. Sans-IO: the store appends rows
//! (`store::OperatorStore`), the CLI reads them (`audit verify`).
//!
//! # Canonical bytes
//!
//! With `lp(s)` = the byte length of `s` as a 4-byte big-endian unsigned
//! integer followed by the UTF-8 bytes of `s`:
//!
//! ```text
//! lp("zhangban-audit-v1") ‖ prev (32 bytes) ‖ at (8 bytes, big-endian two's complement)
//!   ‖ lp(actor) ‖ lp(role) ‖ lp(action) ‖ lp(target) ‖ lp(outcome)
//! ```
//!
//! `prev` is the previous row's hash (32 zero bytes for the first row);
//! a row's hash is SHA-256 of its canonical bytes. The row's sequence
//! number is deliberately *not* hashed: a row's place is its link to the
//! previous row, so a row renumbered to make room for a forged one still
//! hashes the same and the forgery shows as the row nobody links to.
//! Every field is length-prefixed, so no two different rows share
//! canonical bytes (`actor = "a", role = "bc"` differs from `"ab", "c"`).

use sha2::{Digest as _, Sha256};

/// The domain tag that starts every row's canonical bytes.
pub const TAG: &str = "zhangban-audit-v1";
/// The `prev` of the first row.
pub const GENESIS: [u8; 32] = [0; 32];

/// What happened, as appended (the store adds the chain fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// When (Unix seconds, from the injected clock).
    pub at: i64,
    /// The operator's name (`setup` for the data directory's own setup).
    pub actor: String,
    /// The operator's role.
    pub role: String,
    /// The action's stable name (`licence.revoke`, …).
    pub action: String,
    /// The target's ids as a JSON object of strings (keys sorted); ids only,
    /// never names, claims, notes or other personal data.
    pub target: String,
    /// `ok`, `refused:<code>` or `failed:<code>`.
    pub outcome: String,
}

/// A stored row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// Position in the table (1, 2, …).
    pub seq: u64,
    /// The entry.
    pub entry: AuditEntry,
    /// The previous row's hash, 64 lower-case hex digits.
    pub prev: String,
    /// This row's hash, 64 lower-case hex digits.
    pub hash: String,
}

fn lp(out: &mut Vec<u8>, s: &str) {
    // Fields are far below 4 GiB (ids, short names): saturate rather than wrap.
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The canonical bytes of `entry` chained after `prev`.
pub fn canonical_bytes(entry: &AuditEntry, prev: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + entry.target.len());
    lp(&mut out, TAG);
    out.extend_from_slice(prev);
    out.extend_from_slice(&entry.at.to_be_bytes());
    lp(&mut out, &entry.actor);
    lp(&mut out, &entry.role);
    lp(&mut out, &entry.action);
    lp(&mut out, &entry.target);
    lp(&mut out, &entry.outcome);
    out
}

/// SHA-256 of the canonical bytes.
pub fn row_hash(entry: &AuditEntry, prev: &[u8; 32]) -> [u8; 32] {
    Sha256::digest(canonical_bytes(entry, prev)).into()
}

/// Lower-case hex.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 64 hex digits → 32 bytes.
pub fn from_hex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// What is wrong at the first bad place of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// The row's fields no longer hash to its recorded hash, or (its hash
    /// recomputed) the next row no longer links to it.
    Edited,
    /// Rows are missing before the named one (the named seq is the first missing).
    Deleted,
    /// The row is not where the chain says: nothing links to it, or the
    /// next row links past it.
    Inserted,
}

impl Tamper {
    /// A stable word for the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Edited => "edited",
            Self::Deleted => "deleted",
            Self::Inserted => "inserted out of order",
        }
    }
}

/// The first bad row found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    /// The row's sequence number (for [`Tamper::Deleted`]: the first missing one).
    pub seq: u64,
    /// What happened to it.
    pub tamper: Tamper,
}

/// An intact chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intact {
    /// How many rows.
    pub rows: u64,
    /// The last row's hash (hex; the genesis for an empty trail). Record it
    /// elsewhere: a later `verify --head` shows that no row up to it was
    /// changed even by someone who recomputed the chain after it.
    pub head: String,
}

/// Walks `rows` (in `seq` order) and returns the first row edited, deleted
/// or inserted out of order, or the chain's length and head.
///
/// Per row: its fields must hash to its recorded hash (else *edited*); its
/// `prev` must be the previous row's hash. When it is not: a `prev` that is
/// the hash of an earlier row means the rows after that one were inserted
/// (the first of them is named); a gap in the sequence numbers means rows
/// were deleted; a row the next row links past was inserted; otherwise the
/// previous row was edited (and its recorded hash recomputed).
///
/// Limits (ADR 0166): rows removed from the end, or a chain rewritten from
/// some row onward by someone who recomputes every hash, look intact; the
/// head, recorded outside the database and checked with `head`, catches both.
pub fn verify(rows: &[AuditRow]) -> Result<Intact, Finding> {
    let mut seen: std::collections::HashMap<[u8; 32], usize> = std::collections::HashMap::new();
    let mut prev_hash = GENESIS;
    let mut prev_seq = 0u64;
    for (i, row) in rows.iter().enumerate() {
        let edited = Finding {
            seq: row.seq,
            tamper: Tamper::Edited,
        };
        let (Some(recorded_prev), Some(recorded_hash)) = (from_hex(&row.prev), from_hex(&row.hash))
        else {
            return Err(edited);
        };
        if row_hash(&row.entry, &recorded_prev) != recorded_hash {
            return Err(edited);
        }
        if recorded_prev != prev_hash {
            if let Some(&j) = seen.get(&recorded_prev) {
                // Links to an earlier row: everything after it up to here is foreign.
                let first = rows.get(j + 1).map_or(row.seq, |r| r.seq);
                return Err(Finding {
                    seq: first,
                    tamper: Tamper::Inserted,
                });
            }
            if row.seq != prev_seq.saturating_add(1) {
                return Err(Finding {
                    seq: prev_seq.saturating_add(1),
                    tamper: Tamper::Deleted,
                });
            }
            let next_skips = rows
                .get(i + 1)
                .and_then(|n| from_hex(&n.prev))
                .is_some_and(|p| p == prev_hash);
            return Err(if next_skips || i == 0 {
                Finding {
                    seq: row.seq,
                    tamper: Tamper::Inserted,
                }
            } else {
                Finding {
                    seq: prev_seq,
                    tamper: Tamper::Edited,
                }
            });
        }
        if row.seq != prev_seq.saturating_add(1) && i == 0 {
            return Err(Finding {
                seq: 1,
                tamper: Tamper::Deleted,
            });
        }
        seen.insert(recorded_hash, i);
        prev_hash = recorded_hash;
        prev_seq = row.seq;
    }
    Ok(Intact {
        rows: rows.len() as u64,
        head: to_hex(&prev_hash),
    })
}

/// Builds the row that follows `prev` (the store's append, sans-IO).
pub fn chain(seq: u64, entry: AuditEntry, prev: &[u8; 32]) -> AuditRow {
    let hash = row_hash(&entry, prev);
    AuditRow {
        seq,
        entry,
        prev: to_hex(prev),
        hash: to_hex(&hash),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: i64) -> AuditEntry {
        AuditEntry {
            at: 1_000 + n,
            actor: format!("op{n}"),
            role: "admin".into(),
            action: "resident.add".into(),
            target: format!("{{\"resident\":\"r{n}\"}}"),
            outcome: "ok".into(),
        }
    }

    fn trail(n: u64) -> Vec<AuditRow> {
        let mut rows = Vec::new();
        let mut prev = GENESIS;
        for seq in 1..=n {
            let row = chain(seq, entry(seq as i64), &prev);
            prev = from_hex(&row.hash).unwrap();
            rows.push(row);
        }
        rows
    }

    fn renumber(rows: &mut [AuditRow]) {
        for (i, r) in rows.iter_mut().enumerate() {
            r.seq = i as u64 + 1;
        }
    }

    #[test]
    fn an_untouched_trail_verifies_and_names_its_head() {
        let rows = trail(6);
        let ok = verify(&rows).unwrap();
        assert_eq!(ok.rows, 6);
        assert_eq!(ok.head, rows[5].hash);
        assert_eq!(verify(&[]).unwrap().head, to_hex(&GENESIS));
    }

    #[test]
    fn length_prefixes_keep_fields_apart() {
        let mut a = entry(1);
        let mut b = entry(1);
        a.actor = "a".into();
        a.role = "bc".into();
        b.actor = "ab".into();
        b.role = "c".into();
        assert_ne!(canonical_bytes(&a, &GENESIS), canonical_bytes(&b, &GENESIS));
    }

    #[test]
    fn an_edited_field_names_its_row() {
        let mut rows = trail(6);
        rows[2].entry.outcome = "refused:forbidden_role".into();
        assert_eq!(
            verify(&rows),
            Err(Finding {
                seq: 3,
                tamper: Tamper::Edited
            })
        );
    }

    #[test]
    fn an_edit_with_its_hash_recomputed_names_the_row() {
        let mut rows = trail(6);
        rows[2].entry.actor = "someone-else".into();
        let prev = from_hex(&rows[2].prev).unwrap();
        rows[2].hash = to_hex(&row_hash(&rows[2].entry, &prev));
        assert_eq!(
            verify(&rows),
            Err(Finding {
                seq: 3,
                tamper: Tamper::Edited
            })
        );
    }

    #[test]
    fn a_deleted_row_is_named() {
        let mut rows = trail(6);
        rows.remove(3);
        assert_eq!(
            verify(&rows),
            Err(Finding {
                seq: 4,
                tamper: Tamper::Deleted
            })
        );
        let mut first = trail(3);
        first.remove(0);
        assert_eq!(
            verify(&first),
            Err(Finding {
                seq: 1,
                tamper: Tamper::Deleted
            })
        );
    }

    #[test]
    fn an_inserted_row_is_named_even_when_well_formed() {
        // A forged row with a correct link and hash, the rows after it renumbered.
        let mut rows = trail(6);
        let prev = from_hex(&rows[2].hash).unwrap();
        rows.insert(3, chain(4, entry(99), &prev));
        renumber(&mut rows);
        assert_eq!(
            verify(&rows),
            Err(Finding {
                seq: 4,
                tamper: Tamper::Inserted
            })
        );
        // A forged row with a made-up link.
        let mut rows = trail(6);
        rows.insert(3, chain(4, entry(99), &[7; 32]));
        renumber(&mut rows);
        assert_eq!(
            verify(&rows),
            Err(Finding {
                seq: 4,
                tamper: Tamper::Inserted
            })
        );
    }

    #[test]
    fn swapped_rows_are_found() {
        let mut rows = trail(6);
        rows.swap(2, 3);
        renumber(&mut rows);
        assert!(verify(&rows).is_err());
    }

    #[test]
    fn malformed_hash_columns_are_edits() {
        let mut rows = trail(3);
        rows[1].prev = "zz".into();
        assert_eq!(
            verify(&rows),
            Err(Finding {
                seq: 2,
                tamper: Tamper::Edited
            })
        );
    }
}
