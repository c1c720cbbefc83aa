//! [`AttachmentStore`] on PostgreSQL: uploads as BYTEA chunks keyed by
//! offset, hashed as they are read (rows streamed one at a time, never the
//! whole content besides what the caller asks for).
//!
//! Correct across replicas: every writer of an upload (a declaration that
//! restarts it, a chunk) locks the upload's row `FOR UPDATE` first and
//! decides from the row it then reads, so two replicas putting chunks of one
//! upload at once serialise: the second sees the first's `received` and
//! gets `Unchanged` or `OffsetMismatch`, never a second append at the same
//! offset. A first declaration is `INSERT ... ON CONFLICT DO NOTHING`: a
//! racing declaration on another replica waits for it, then finds the row.
//! Reads that combine the row and its chunks run in one repeatable-read
//! snapshot, so they agree.

use super::Tx;
use postgres::fallible_iterator::FallibleIterator as _;
use sha2::{Digest as _, Sha256};

use super::{PgStore, db, hex, to_i64, to_u64};
use crate::store::{
    AttachmentLink, AttachmentStore, ChunkOutcome, ChunkVerdict, StoreError, StoreResult, Upload,
    UploadStart,
};

const UPLOAD_COLUMNS: &str = "sha256, size, media_type, received, complete, generation";

fn upload_of(r: &postgres::Row) -> Upload {
    Upload {
        sha256: r.get(0),
        size: to_u64(r.get(1)),
        media_type: r.get(2),
        received: to_u64(r.get(3)),
        complete: r.get(4),
        generation: to_u64(r.get(5)),
    }
}

fn link_of(r: &postgres::Row) -> AttachmentLink {
    AttachmentLink {
        field: r.get(0),
        sha256: r.get(1),
        size: to_u64(r.get(2)),
        media_type: r.get(3),
        name: r.get(4),
    }
}

/// The resident's upload of `sha256`, read without a lock.
fn upload_row(tx: &mut Tx<'_>, resident_id: &str, sha256: &str) -> StoreResult<Option<Upload>> {
    Ok(tx
        .query_opt(
            &format!(
                "SELECT {UPLOAD_COLUMNS} FROM attachment_uploads
                 WHERE resident_id = $1 AND sha256 = $2"
            ),
            &[&resident_id, &sha256],
        )?
        .map(|r| upload_of(&r)))
}

/// The resident's upload of `sha256`, its row locked to the end of `tx`:
/// every writer of the upload's bytes takes this lock first.
fn lock_upload(tx: &mut Tx<'_>, resident_id: &str, sha256: &str) -> StoreResult<Option<Upload>> {
    Ok(tx
        .query_opt(
            &format!(
                "SELECT {UPLOAD_COLUMNS} FROM attachment_uploads
                 WHERE resident_id = $1 AND sha256 = $2 FOR UPDATE"
            ),
            &[&resident_id, &sha256],
        )?
        .map(|r| upload_of(&r)))
}

/// Feeds the stored chunks of an upload, in order, to `add`, one row at a
/// time as they arrive from the server.
fn chunks_of<A: Default>(
    tx: &mut Tx<'_>,
    resident_id: &str,
    sha256: &str,
    add: impl Fn(&mut A, &[u8]),
) -> StoreResult<A> {
    let mut acc = A::default();
    let mut rows = tx.query_raw(
        "SELECT data FROM attachment_chunks WHERE resident_id = $1 AND sha256 = $2 ORDER BY pos",
        [resident_id, sha256],
    )?;
    while let Some(row) = rows.next()? {
        let data: &[u8] = row.try_get(0)?;
        add(&mut acc, data);
    }
    Ok(acc)
}

/// Drops every stored byte of an upload and starts its next generation
/// (the caller holds the upload's row lock).
fn drop_chunks(tx: &mut Tx<'_>, resident_id: &str, sha256: &str) -> StoreResult<()> {
    tx.execute(
        "DELETE FROM attachment_chunks WHERE resident_id = $1 AND sha256 = $2",
        &[&resident_id, &sha256],
    )?;
    Ok(())
}

impl AttachmentStore for PgStore {
    fn begin_upload(
        &self,
        resident_id: &str,
        sha256: &str,
        size: u64,
        media_type: &str,
        now: i64,
    ) -> StoreResult<UploadStart> {
        self.write(|tx| {
            // A concurrent first declaration on another replica: this insert
            // waits for it, does nothing, and the locked read below finds it.
            let created = tx.execute(
                "INSERT INTO attachment_uploads(resident_id, sha256, size, media_type, received,
                     complete, generation, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, 0, FALSE, 0, $5, $5)
                 ON CONFLICT (resident_id, sha256) DO NOTHING",
                &[&resident_id, &sha256, &to_i64(size), &media_type, &now],
            )?;
            if created == 1 {
                return Ok(UploadStart::Created(Upload {
                    sha256: sha256.to_owned(),
                    size,
                    media_type: media_type.to_owned(),
                    received: 0,
                    complete: false,
                    generation: 0,
                }));
            }
            let found = lock_upload(tx, resident_id, sha256)?.ok_or(StoreError::Database(
                "a concurrent upload declaration vanished".into(),
            ))?;
            if found.size != size {
                if found.complete {
                    return Ok(UploadStart::Conflict(found));
                }
                drop_chunks(tx, resident_id, sha256)?;
                let generation = found.generation.saturating_add(1);
                tx.execute(
                    "UPDATE attachment_uploads SET size = $3, media_type = $4, received = 0,
                         generation = $5, updated_at = $6
                     WHERE resident_id = $1 AND sha256 = $2",
                    &[
                        &resident_id,
                        &sha256,
                        &to_i64(size),
                        &media_type,
                        &to_i64(generation),
                        &now,
                    ],
                )?;
                return Ok(UploadStart::Restarted(Upload {
                    sha256: sha256.to_owned(),
                    size,
                    media_type: media_type.to_owned(),
                    received: 0,
                    complete: false,
                    generation,
                }));
            }
            if found.media_type != media_type {
                tx.execute(
                    "UPDATE attachment_uploads SET media_type = $3, updated_at = $4
                     WHERE resident_id = $1 AND sha256 = $2",
                    &[&resident_id, &sha256, &media_type, &now],
                )?;
            }
            Ok(UploadStart::Existing(Upload {
                media_type: media_type.to_owned(),
                ..found
            }))
        })
    }

    fn upload_usage(&self, resident_id: &str, except_sha256: &str) -> StoreResult<(u64, u64)> {
        self.read(|tx| {
            let row = tx.query_one(
                "SELECT COALESCE(SUM(size), 0)::BIGINT,
                        COALESCE(SUM(CASE WHEN complete THEN 0 ELSE 1 END), 0)::BIGINT
                 FROM attachment_uploads WHERE resident_id = $1 AND sha256 != $2",
                &[&resident_id, &except_sha256],
            )?;
            Ok((to_u64(row.get(0)), to_u64(row.get(1))))
        })
    }

    fn upload(&self, resident_id: &str, sha256: &str) -> StoreResult<Option<Upload>> {
        self.read(|tx| upload_row(tx, resident_id, sha256))
    }

    fn uploads(&self, resident_id: &str, sha256s: &[String]) -> StoreResult<Vec<Upload>> {
        self.read(|tx| {
            let mut found = Vec::with_capacity(sha256s.len());
            for sha256 in sha256s {
                if let Some(u) = upload_row(tx, resident_id, sha256)? {
                    found.push(u);
                }
            }
            Ok(found)
        })
    }

    fn upload_digest(
        &self,
        resident_id: &str,
        sha256: &str,
    ) -> StoreResult<Option<(Upload, Sha256)>> {
        // One snapshot, so that the row and the chunks agree.
        self.read(|tx| {
            let Some(upload) = upload_row(tx, resident_id, sha256)? else {
                return Ok(None);
            };
            let digest = chunks_of(tx, resident_id, sha256, |h: &mut Sha256, d| h.update(d))?;
            Ok(Some((upload, digest)))
        })
    }

    fn put_chunk(
        &self,
        resident_id: &str,
        sha256: &str,
        offset: u64,
        data: &[u8],
        verdict: Option<ChunkVerdict>,
        now: i64,
    ) -> StoreResult<ChunkOutcome> {
        self.write(|tx| {
            // Held to commit: a chunk of this upload on another replica waits
            // here and then sees this one's `received`.
            let upload = lock_upload(tx, resident_id, sha256)?.ok_or(StoreError::NotFound)?;
            let len = u64::try_from(data.len()).map_err(db)?;
            let Some(end) = offset.checked_add(len).filter(|end| *end <= upload.size) else {
                return Ok(ChunkOutcome::BeyondSize(upload));
            };
            if end <= upload.received {
                return Ok(ChunkOutcome::Unchanged(upload));
            }
            if offset != upload.received {
                return Ok(ChunkOutcome::OffsetMismatch(upload));
            }
            let last = end == upload.size;
            if last {
                let matches = match verdict {
                    // `offset == received` here, so the verdict covers exactly
                    // the bytes this chunk completes.
                    Some(v) if v.generation == upload.generation && v.received == offset => {
                        v.matches
                    }
                    // The caller hashed other bytes (or none): hash here (the
                    // row lock keeps the stored chunks as they are).
                    _ => {
                        let mut h =
                            chunks_of(tx, resident_id, sha256, |h: &mut Sha256, d| h.update(d))?;
                        h.update(data);
                        hex(&h.finalize()) == sha256
                    }
                };
                if !matches {
                    drop_chunks(tx, resident_id, sha256)?;
                    let generation = upload.generation.saturating_add(1);
                    tx.execute(
                        "UPDATE attachment_uploads SET received = 0, generation = $3, updated_at = $4
                         WHERE resident_id = $1 AND sha256 = $2",
                        &[&resident_id, &sha256, &to_i64(generation), &now],
                    )?;
                    return Ok(ChunkOutcome::HashMismatch(Upload {
                        received: 0,
                        generation,
                        ..upload
                    }));
                }
            }
            tx.execute(
                "INSERT INTO attachment_chunks(resident_id, sha256, pos, data) VALUES ($1, $2, $3, $4)",
                &[&resident_id, &sha256, &to_i64(offset), &data],
            )?;
            tx.execute(
                "UPDATE attachment_uploads SET received = $3, complete = $4, updated_at = $5
                 WHERE resident_id = $1 AND sha256 = $2",
                &[&resident_id, &sha256, &to_i64(end), &last, &now],
            )?;
            let upload = Upload {
                received: end,
                complete: last,
                ..upload
            };
            Ok(if last {
                ChunkOutcome::Completed(upload)
            } else {
                ChunkOutcome::Appended(upload)
            })
        })
    }

    fn upload_content(
        &self,
        resident_id: &str,
        sha256: &str,
    ) -> StoreResult<Option<(Upload, Option<Vec<u8>>)>> {
        self.read(|tx| {
            let Some(upload) = upload_row(tx, resident_id, sha256)? else {
                return Ok(None);
            };
            if !upload.complete {
                return Ok(Some((upload, None)));
            }
            let bytes = chunks_of(tx, resident_id, sha256, |all: &mut Vec<u8>, d| {
                all.extend_from_slice(d);
            })?;
            Ok(Some((upload, Some(bytes))))
        })
    }

    fn submission_attachments(
        &self,
        tracking_number: &str,
    ) -> StoreResult<Option<Vec<AttachmentLink>>> {
        self.read(|tx| {
            let Some(row) = tx.query_opt(
                "SELECT client_id FROM submissions WHERE tracking_number = $1",
                &[&tracking_number],
            )?
            else {
                return Ok(None);
            };
            let client_id: String = row.get(0);
            // Byte order, as SQLite's BINARY collation.
            let links = tx
                .query(
                    "SELECT field, sha256, size, media_type, name FROM submission_attachments
                     WHERE client_id = $1 ORDER BY field COLLATE \"C\"",
                    &[&client_id],
                )?
                .iter()
                .map(link_of)
                .collect();
            Ok(Some(links))
        })
    }

    fn submission_attachment(
        &self,
        tracking_number: &str,
        sha256: &str,
    ) -> StoreResult<Option<(AttachmentLink, Vec<u8>)>> {
        self.read(|tx| {
            let Some(row) = tx.query_opt(
                "SELECT a.field, a.sha256, a.size, a.media_type, a.name, a.resident_id
                 FROM submission_attachments a JOIN submissions s ON s.client_id = a.client_id
                 WHERE s.tracking_number = $1 AND a.sha256 = $2
                 ORDER BY a.field COLLATE \"C\" LIMIT 1",
                &[&tracking_number, &sha256],
            )?
            else {
                return Ok(None);
            };
            let (link, resident_id): (AttachmentLink, String) = (link_of(&row), row.get(5));
            let bytes = chunks_of(tx, &resident_id, sha256, |all: &mut Vec<u8>, d| {
                all.extend_from_slice(d);
            })?;
            Ok(Some((link, bytes)))
        })
    }
}
