//! [`AttachmentStore`] on SQLite: uploads as BLOB chunks keyed by offset,
//! hashed as they are read (never more than one chunk in memory).

use rusqlite::{Connection, OptionalExtension as _, params};
use sha2::{Digest as _, Sha256};

use super::{ReadTx, SqliteStore, db, hex, owned, to_i64, to_u64};
use crate::store::{
    AttachmentLink, AttachmentStore, ChunkOutcome, ChunkVerdict, StoreError, StoreResult, Upload,
    UploadStart,
};

pub(super) fn upload_row(
    conn: &Connection,
    resident_id: &str,
    sha256: &str,
) -> StoreResult<Option<Upload>> {
    Ok(conn
        .prepare_cached(
            "SELECT sha256, size, media_type, received, complete, generation FROM attachment_uploads
             WHERE resident_id = ?1 AND sha256 = ?2",
        )?
        .query_row([resident_id, sha256], |r| {
            Ok(Upload {
                sha256: r.get(0)?,
                size: to_u64(r.get(1)?),
                media_type: r.get(2)?,
                received: to_u64(r.get(3)?),
                complete: r.get(4)?,
                generation: to_u64(r.get(5)?),
            })
        })
        .optional()?)
}

pub(super) fn link_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AttachmentLink> {
    Ok(AttachmentLink {
        field: r.get(0)?,
        sha256: r.get(1)?,
        size: to_u64(r.get(2)?),
        media_type: r.get(3)?,
        name: r.get(4)?,
    })
}

/// Feeds the stored chunks of an upload, in order, to `add`, one row at a
/// time (never more than one chunk in memory besides the accumulator).
pub(super) fn chunks_of<A: Default>(
    conn: &Connection,
    resident_id: &str,
    sha256: &str,
    add: impl Fn(&mut A, &[u8]),
) -> StoreResult<A> {
    let mut acc = A::default();
    let mut stmt = conn.prepare_cached(
        "SELECT data FROM attachment_chunks WHERE resident_id = ?1 AND sha256 = ?2 ORDER BY pos",
    )?;
    let mut rows = stmt.query([resident_id, sha256])?;
    while let Some(row) = rows.next()? {
        add(&mut acc, row.get_ref(0)?.as_blob().map_err(db)?);
    }
    Ok(acc)
}

impl AttachmentStore for SqliteStore {
    fn begin_upload(
        &self,
        resident_id: &str,
        sha256: &str,
        size: u64,
        media_type: &str,
        now: i64,
    ) -> StoreResult<UploadStart> {
        let (resident_id, sha256, media_type) =
            (owned(resident_id), owned(sha256), owned(media_type));
        self.write(move |c| {
            let Some(found) = upload_row(c, &resident_id, &sha256)? else {
                c.prepare_cached(
                    "INSERT INTO attachment_uploads(resident_id, sha256, size, media_type, received,
                         complete, generation, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, 0, 0, 0, ?5, ?5)",
                )?
                .execute(params![resident_id, sha256, to_i64(size), media_type, now])?;
                return Ok(UploadStart::Created(Upload {
                    sha256,
                    size,
                    media_type,
                    received: 0,
                    complete: false,
                    generation: 0,
                }));
            };
            if found.size != size {
                if found.complete {
                    return Ok(UploadStart::Conflict(found));
                }
                c.prepare_cached(
                    "DELETE FROM attachment_chunks WHERE resident_id = ?1 AND sha256 = ?2",
                )?
                .execute([&resident_id, &sha256])?;
                let generation = found.generation.saturating_add(1);
                c.prepare_cached(
                    "UPDATE attachment_uploads SET size = ?3, media_type = ?4, received = 0,
                         generation = ?5, updated_at = ?6
                     WHERE resident_id = ?1 AND sha256 = ?2",
                )?
                .execute(params![
                    resident_id,
                    sha256,
                    to_i64(size),
                    media_type,
                    to_i64(generation),
                    now
                ])?;
                return Ok(UploadStart::Restarted(Upload {
                    sha256,
                    size,
                    media_type,
                    received: 0,
                    complete: false,
                    generation,
                }));
            }
            if found.media_type != media_type {
                c.prepare_cached(
                    "UPDATE attachment_uploads SET media_type = ?3, updated_at = ?4
                     WHERE resident_id = ?1 AND sha256 = ?2",
                )?
                .execute(params![resident_id, sha256, media_type, now])?;
            }
            Ok(UploadStart::Existing(Upload {
                media_type,
                ..found
            }))
        })
    }

    fn upload_usage(&self, resident_id: &str, except_sha256: &str) -> StoreResult<(u64, u64)> {
        let (resident_id, except) = (owned(resident_id), owned(except_sha256));
        self.read(move |c| {
            let (bytes, pending): (i64, i64) = c
                .prepare_cached(
                    "SELECT COALESCE(SUM(size), 0), COALESCE(SUM(complete = 0), 0)
                     FROM attachment_uploads WHERE resident_id = ?1 AND sha256 != ?2",
                )?
                .query_row(params![resident_id, except], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok((to_u64(bytes), to_u64(pending)))
        })
    }

    fn upload(&self, resident_id: &str, sha256: &str) -> StoreResult<Option<Upload>> {
        let (resident_id, sha256) = (owned(resident_id), owned(sha256));
        self.read(move |c| upload_row(c, &resident_id, &sha256))
    }

    fn uploads(&self, resident_id: &str, sha256s: &[String]) -> StoreResult<Vec<Upload>> {
        let (resident_id, sha256s) = (owned(resident_id), sha256s.to_vec());
        self.read(move |c| {
            let mut found = Vec::with_capacity(sha256s.len());
            for sha256 in &sha256s {
                if let Some(u) = upload_row(c, &resident_id, sha256)? {
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
        let (resident_id, sha256) = (owned(resident_id), owned(sha256));
        // One read transaction, so that the row and the chunks agree.
        self.read(move |c| {
            let tx = ReadTx::begin(c)?;
            let Some(upload) = upload_row(c, &resident_id, &sha256)? else {
                return Ok(None);
            };
            let digest = chunks_of(c, &resident_id, &sha256, |h: &mut Sha256, d| h.update(d))?;
            tx.end()?;
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
        let (resident_id, sha256, data) = (owned(resident_id), owned(sha256), data.to_vec());
        self.write(move |c| {
            let upload = upload_row(c, &resident_id, &sha256)?.ok_or(StoreError::NotFound)?;
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
                    // The caller hashed other bytes (or none): hash here.
                    _ => {
                        let mut h =
                            chunks_of(c, &resident_id, &sha256, |h: &mut Sha256, d| h.update(d))?;
                        h.update(&data);
                        hex(&h.finalize()) == sha256
                    }
                };
                if !matches {
                    c.prepare_cached(
                        "DELETE FROM attachment_chunks WHERE resident_id = ?1 AND sha256 = ?2",
                    )?
                    .execute([&resident_id, &sha256])?;
                    let generation = upload.generation.saturating_add(1);
                    c.prepare_cached(
                        "UPDATE attachment_uploads SET received = 0, generation = ?3, updated_at = ?4
                         WHERE resident_id = ?1 AND sha256 = ?2",
                    )?
                    .execute(params![resident_id, sha256, to_i64(generation), now])?;
                    return Ok(ChunkOutcome::HashMismatch(Upload {
                        received: 0,
                        generation,
                        ..upload
                    }));
                }
            }
            c.prepare_cached(
                "INSERT INTO attachment_chunks(resident_id, sha256, pos, data) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![resident_id, sha256, to_i64(offset), data])?;
            c.prepare_cached(
                "UPDATE attachment_uploads SET received = ?3, complete = ?4, updated_at = ?5
                 WHERE resident_id = ?1 AND sha256 = ?2",
            )?
            .execute(params![resident_id, sha256, to_i64(end), last, now])?;
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
        let (resident_id, sha256) = (owned(resident_id), owned(sha256));
        self.read(move |c| {
            let Some(upload) = upload_row(c, &resident_id, &sha256)? else {
                return Ok(None);
            };
            if !upload.complete {
                return Ok(Some((upload, None)));
            }
            // A complete upload never changes, so no read transaction is needed.
            let bytes = chunks_of(c, &resident_id, &sha256, |all: &mut Vec<u8>, d| {
                all.extend_from_slice(d);
            })?;
            Ok(Some((upload, Some(bytes))))
        })
    }

    fn submission_attachments(
        &self,
        tracking_number: &str,
    ) -> StoreResult<Option<Vec<AttachmentLink>>> {
        let tracking_number = owned(tracking_number);
        self.read(move |c| {
            let client_id: Option<String> = c
                .query_row(
                    "SELECT client_id FROM submissions WHERE tracking_number = ?1",
                    [&tracking_number],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(client_id) = client_id else {
                return Ok(None);
            };
            let mut stmt = c.prepare_cached(
                "SELECT field, sha256, size, media_type, name FROM submission_attachments
                 WHERE client_id = ?1 ORDER BY field",
            )?;
            let links = stmt
                .query_map([&client_id], link_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(links))
        })
    }

    fn submission_attachment(
        &self,
        tracking_number: &str,
        sha256: &str,
    ) -> StoreResult<Option<(AttachmentLink, Vec<u8>)>> {
        let (tracking_number, sha256) = (owned(tracking_number), owned(sha256));
        self.read(move |c| {
            let found: Option<(AttachmentLink, String)> = c
                .query_row(
                    "SELECT a.field, a.sha256, a.size, a.media_type, a.name, a.resident_id
                     FROM submission_attachments a JOIN submissions s ON s.client_id = a.client_id
                     WHERE s.tracking_number = ?1 AND a.sha256 = ?2 ORDER BY a.field LIMIT 1",
                    [&tracking_number, &sha256],
                    |r| Ok((link_row(r)?, r.get(5)?)),
                )
                .optional()?;
            let Some((link, resident_id)) = found else {
                return Ok(None);
            };
            let bytes = chunks_of(c, &resident_id, &sha256, |all: &mut Vec<u8>, d| {
                all.extend_from_slice(d);
            })?;
            Ok(Some((link, bytes)))
        })
    }
}
