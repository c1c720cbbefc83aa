//! Catalog sync: versioned, checksummed deltas since a cursor, with
//! tombstones; resumable after a cut; offline reads.
//!
//! [`CatalogSync`] is sans-IO: it says which page to fetch next and checks
//! a fetched page (cursor continuity, every checksum over the exact bytes
//! received, every guide parses and carries its id) before anything is
//! written. The store then applies one page — guides, search index and the
//! new cursor — in one transaction, so a cut at any moment leaves the
//! catalog at a page boundary and the next sync resumes from there.

use rusqlite::OptionalExtension as _;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::api::CatalogPageIn;
use super::error::{ClientError, ClientResult};
use super::store::{ClientStore, meta_in, set_meta_in};
use crate::guide::Guide;

/// Metadata key of the catalog cursor.
pub const CURSOR_KEY: &str = "catalog_cursor";
/// Default page size.
pub const PAGE_SIZE: u32 = 500;

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogStep {
    /// Fetch the page after `since`.
    Fetch {
        /// Cursor.
        since: u64,
        /// Page size.
        limit: u32,
    },
    /// Up to date.
    Done,
}

/// One guide of a checked page: what the store writes for it.
#[derive(Debug, Clone)]
pub struct CatalogUpsert {
    /// Its position in the catalog feed.
    pub seq: u64,
    /// The SHA-256 (hex) of `body`, as the server sent it and checked.
    pub checksum: String,
    /// The guide's JSON exactly as received.
    pub body: String,
    /// The guide, parsed.
    pub guide: Guide,
    /// Its search-index text, computed off the writer.
    pub index: crate::search::IndexText,
}

impl CatalogUpsert {
    /// An upsert of `guide` (its index text computed here).
    pub fn new(seq: u64, checksum: String, body: String, guide: Guide) -> Self {
        let index = crate::search::IndexText::of(&guide);
        Self {
            seq,
            checksum,
            body,
            guide,
            index,
        }
    }
}

/// A checked page, ready to apply.
#[derive(Debug, Clone)]
pub struct CatalogBatch {
    /// The cursor this page starts after.
    pub since: u64,
    /// The cursor after it.
    pub next: u64,
    /// Guides to insert or replace.
    pub upserts: Vec<CatalogUpsert>,
    /// Guide ids withdrawn.
    pub deletes: Vec<String>,
}

/// Progress and totals of a catalog sync.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CatalogReport {
    /// Pages applied.
    pub pages: u32,
    /// Guides added or changed.
    pub upserted: u64,
    /// Guides withdrawn.
    pub deleted: u64,
    /// Response bytes that crossed the network (compressed).
    pub wire_bytes: u64,
    /// The cursor reached.
    pub cursor: u64,
    /// The server's head when last asked.
    pub head: u64,
    /// The search lexicon, fetched with the catalog (ADR 0181).
    pub lexicon: super::lexicon::LexiconReport,
}

/// The catalog sync state machine.
#[derive(Debug, Clone)]
pub struct CatalogSync {
    cursor: u64,
    limit: u32,
    more: bool,
    report: CatalogReport,
}

impl CatalogSync {
    /// A sync starting from the stored `cursor`.
    pub fn new(cursor: u64, limit: u32) -> Self {
        Self {
            cursor,
            limit: limit.clamp(1, 1000),
            more: true,
            report: CatalogReport {
                cursor,
                ..CatalogReport::default()
            },
        }
    }

    /// The next step.
    pub fn next_step(&self) -> CatalogStep {
        if self.more {
            CatalogStep::Fetch {
                since: self.cursor,
                limit: self.limit,
            }
        } else {
            CatalogStep::Done
        }
    }

    /// Checks a fetched page (and computes its guides' index text); nothing
    /// is applied if anything is wrong.
    pub fn check(&self, page: &CatalogPageIn) -> ClientResult<CatalogBatch> {
        let bad = |m: String| Err(ClientError::Protocol(m));
        if page.since != self.cursor {
            return bad(format!(
                "page starts after {} but {} was asked",
                page.since, self.cursor
            ));
        }
        if page.next < page.since || page.head < page.next {
            return bad("page cursors out of order".into());
        }
        if page.more && page.changes.is_empty() {
            return bad("empty page that claims more".into());
        }
        let mut batch = CatalogBatch {
            since: page.since,
            next: page.next,
            upserts: Vec::new(),
            deletes: Vec::new(),
        };
        let mut last = page.since;
        for c in &page.changes {
            if c.seq <= last || c.seq > page.next {
                return bad(format!("change {} out of sequence", c.seq));
            }
            last = c.seq;
            match (&c.guide, c.deleted) {
                (None, true) => batch.deletes.push(c.id.clone()),
                (Some(raw), false) => {
                    let text = raw.get();
                    let sum = hex(&Sha256::digest(text.as_bytes()));
                    if sum != c.checksum {
                        return bad(format!("checksum mismatch for guide {}", c.id));
                    }
                    let guide: Guide = serde_json::from_str(text).map_err(|e| {
                        ClientError::Protocol(format!("guide {} does not parse: {e}", c.id))
                    })?;
                    if guide.id != c.id {
                        return bad(format!("guide {} carries another id", c.id));
                    }
                    batch.upserts.push(CatalogUpsert::new(
                        c.seq,
                        c.checksum.clone(),
                        text.to_owned(),
                        guide,
                    ));
                }
                _ => {
                    return bad(format!(
                        "change {} is neither a guide nor a tombstone",
                        c.id
                    ));
                }
            }
        }
        if last != page.next {
            return bad("page cursor does not match its last change".into());
        }
        Ok(batch)
    }

    /// Records that `batch` (of a page with `more`, `head`, `wire` bytes) was applied.
    pub fn applied(&mut self, batch: &CatalogBatch, more: bool, head: u64, wire: u64) {
        self.cursor = batch.next;
        self.more = more;
        self.report.pages += 1;
        self.report.upserted += batch.upserts.len() as u64;
        self.report.deleted += batch.deletes.len() as u64;
        self.report.wire_bytes += wire;
        self.report.cursor = batch.next;
        self.report.head = head;
    }

    /// The totals so far.
    pub fn report(&self) -> CatalogReport {
        self.report
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl ClientStore {
    /// The catalog cursor (0: never synced).
    pub fn catalog_cursor(&self) -> ClientResult<u64> {
        Ok(self
            .meta(CURSOR_KEY)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Applies a checked page in one transaction: guides, search index, cursor.
    /// A page that does not start at the stored cursor is refused (another
    /// sync got there first).
    pub fn apply_catalog(&self, batch: &CatalogBatch) -> ClientResult<()> {
        self.tx(|tx| {
            let cursor: u64 = meta_in(tx, CURSOR_KEY)?
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if cursor != batch.since {
                return Err(ClientError::Protocol(
                    "the catalog moved on meanwhile".into(),
                ));
            }
            // A guide inserted above every rowid the catalog and its index
            // hold is new: it has no index rows to delete first (every
            // guide of an initial sync). An existing guide's rowid is never
            // above it, so an update always replaces its index rows.
            let mut top = crate::search::max_rowid(tx).map_err(ClientError::from)?;
            for CatalogUpsert {
                seq,
                checksum,
                body,
                guide,
                index,
            } in &batch.upserts
            {
                // The guide's index rows share its rowid, which an update
                // keeps. No `RETURNING rowid`: it runs as a trigger, so the
                // statement opens a savepoint, and FTS5 writes its pending
                // index data out at every savepoint: each guide became a
                // segment of its own, merged again and again, instead of one
                // segment per page written at commit.
                let seq = i64::try_from(*seq).unwrap_or(i64::MAX);
                let stored: Option<i64> = tx
                    .prepare_cached("SELECT rowid FROM guides WHERE id = ?1")?
                    .query_row([&guide.id], |r| r.get(0))
                    .optional()?;
                let rowid = match stored {
                    Some(rowid) => {
                        tx.prepare_cached(
                            "UPDATE guides SET seq = ?2, checksum = ?3, body = ?4, name = ?5,
                                 department = ?6
                             WHERE rowid = ?1",
                        )?
                        .execute(rusqlite::params![
                            rowid,
                            seq,
                            checksum,
                            body,
                            guide.name,
                            guide.department
                        ])?;
                        rowid
                    }
                    None => {
                        tx.prepare_cached(
                            "INSERT INTO guides(id, seq, checksum, body, name, department)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        )?
                        .execute(rusqlite::params![
                            guide.id,
                            seq,
                            checksum,
                            body,
                            guide.name,
                            guide.department
                        ])?;
                        tx.last_insert_rowid()
                    }
                };
                if rowid > top {
                    top = rowid;
                    crate::search::insert_prepared(tx, rowid, &guide.id, index)
                } else {
                    crate::search::index_prepared(tx, rowid, &guide.id, index)
                }
                .map_err(ClientError::from)?;
            }
            for id in &batch.deletes {
                let rowid: Option<i64> = tx
                    .prepare_cached("SELECT rowid FROM guides WHERE id = ?1")?
                    .query_row([id], |r| r.get(0))
                    .optional()?;
                if let Some(rowid) = rowid {
                    crate::search::remove_guide(tx, rowid).map_err(ClientError::from)?;
                    tx.execute("DELETE FROM guides WHERE rowid = ?1", [rowid])?;
                }
            }
            set_meta_in(tx, CURSOR_KEY, &batch.next.to_string())
        })
    }

    /// A cached guide.
    pub fn guide(&self, id: &str) -> ClientResult<Option<Guide>> {
        let body: Option<String> = self
            .conn()?
            .query_row("SELECT body FROM guides WHERE id = ?1", [id], |r| r.get(0))
            .optional()?;
        body.map(|b| serde_json::from_str(&b).map_err(ClientError::from))
            .transpose()
    }

    /// How many guides are cached.
    pub fn guide_count(&self) -> ClientResult<u64> {
        let n: i64 = self
            .conn()?
            .query_row("SELECT COUNT(*) FROM guides", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Offline search over the cached guides.
    pub fn search(&self, query: &str, limit: usize) -> ClientResult<Vec<crate::search::SearchHit>> {
        self.search_with(&crate::search::SearchOptions::limit(limit), query)
    }

    /// Offline search with options (a department filter), through the
    /// lexicon in use ([`ClientStore::lexicon`]: the synced one if newer
    /// than the built-in).
    pub fn search_with(
        &self,
        opts: &crate::search::SearchOptions,
        query: &str,
    ) -> ClientResult<Vec<crate::search::SearchHit>> {
        let lexicon = self.lexicon()?;
        Ok(crate::search::search_with(
            &*self.conn()?,
            &lexicon,
            query,
            opts,
        )?)
    }
}
