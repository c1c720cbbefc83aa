//! [`ResidentStore`] on SQLite: residents, activation codes, devices,
//! challenges and session tokens.

use rusqlite::{Connection, OptionalExtension as _, params};

use super::{SqliteStore, owned, to_u64};
use crate::activation::{SealedCode, macs_equal};
use crate::store::{
    Device, Enrolment, NewActivation, NewChallenge, Refusal, ResidentStore, Session, StoreError,
    StoreResult,
};

pub(super) fn put_resident_in(c: &Connection, id: &str, name: &str, at: i64) -> StoreResult<()> {
    c.execute(
        "INSERT INTO residents(id, name, created_at) VALUES (?1, ?2, ?3) ON CONFLICT(id) DO NOTHING",
        params![id, name, at],
    )?;
    Ok(())
}

pub(super) fn put_activation_in(
    c: &Connection,
    code: &SealedCode,
    resident_id: &str,
    expires_at: i64,
    uses: u32,
) -> StoreResult<()> {
    let changed = c.execute(
        "INSERT INTO activation_codes(code_hash, code_id, resident_id, expires_at, uses_left, failures)
         VALUES (?1, ?2, ?3, ?4, ?5, 0)
         ON CONFLICT(code_id) DO UPDATE SET resident_id = ?3, expires_at = ?4, uses_left = ?5, failures = 0
         WHERE code_hash = ?1",
        params![code.mac, code.id, resident_id, expires_at, uses],
    )?;
    if changed == 0 {
        return Err(StoreError::Conflict("another activation code has this id"));
    }
    Ok(())
}

pub(super) fn device_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Device> {
    Ok(Device {
        id: r.get(0)?,
        resident_id: r.get(1)?,
        jwk: r.get(2)?,
    })
}

impl ResidentStore for SqliteStore {
    fn put_resident(&self, id: &str, name: &str, at: i64) -> StoreResult<()> {
        let (id, name) = (owned(id), owned(name));
        self.write(move |c| put_resident_in(c, &id, &name, at))
    }

    fn put_activation(&self, a: &NewActivation<'_>) -> StoreResult<()> {
        let (code, resident_id) = (a.code.clone(), owned(a.resident_id));
        let (expires_at, uses) = (a.expires_at, a.uses);
        self.write(move |c| put_activation_in(c, &code, &resident_id, expires_at, uses))
    }

    fn enrol(
        &self,
        code: &SealedCode,
        device: &Device,
        now: i64,
        max_failures: u32,
    ) -> StoreResult<Enrolment> {
        let (code, device) = (code.clone(), device.clone());
        self.write(move |c| {
            let row: Option<(String, String, i64, i64, i64)> = c
                .query_row(
                    "SELECT code_hash, resident_id, expires_at, uses_left, failures
                     FROM activation_codes WHERE code_id = ?1",
                    [&code.id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()?;
            let Some((mac, resident_id, expires_at, uses_left, failures)) = row else {
                return Ok(Enrolment::Refused(Refusal::Unknown));
            };
            if failures >= i64::from(max_failures) {
                return Ok(Enrolment::Refused(Refusal::Locked));
            }
            if !macs_equal(&mac, &code.mac) {
                c.execute(
                    "UPDATE activation_codes SET failures = failures + 1 WHERE code_id = ?1",
                    [&code.id],
                )?;
                return Ok(Enrolment::Refused(Refusal::Wrong));
            }
            let existing: Option<String> = c
                .query_row(
                    "SELECT resident_id FROM devices WHERE id = ?1",
                    [&device.id],
                    |r| r.get(0),
                )
                .optional()?;
            match existing {
                Some(owner) if owner == resident_id => {
                    return Ok(Enrolment::Enrolled(Device {
                        resident_id,
                        ..device
                    }));
                }
                Some(_) => {
                    return Err(StoreError::Conflict("device enrolled for another resident"));
                }
                None => {}
            }
            if expires_at < now {
                return Ok(Enrolment::Refused(Refusal::Expired));
            }
            if uses_left <= 0 {
                return Ok(Enrolment::Refused(Refusal::UsedUp));
            }
            c.execute(
                "UPDATE activation_codes SET uses_left = uses_left - 1 WHERE code_hash = ?1",
                [&mac],
            )?;
            c.execute(
                "INSERT INTO devices(id, resident_id, jwk, enrolled_at) VALUES (?1, ?2, ?3, ?4)",
                params![device.id, resident_id, device.jwk, now],
            )?;
            Ok(Enrolment::Enrolled(Device {
                resident_id,
                ..device
            }))
        })
    }

    fn device(&self, id: &str) -> StoreResult<Option<Device>> {
        let id = owned(id);
        self.read(move |c| {
            Ok(
                c.prepare_cached("SELECT id, resident_id, jwk FROM devices WHERE id = ?1")?
                    .query_row([&id], device_row)
                    .optional()?,
            )
        })
    }

    fn devices_of(&self, resident_id: &str) -> StoreResult<Vec<Device>> {
        let resident_id = owned(resident_id);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, resident_id, jwk FROM devices WHERE resident_id = ?1 ORDER BY enrolled_at, id",
            )?;
            let rows = stmt
                .query_map([&resident_id], device_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn put_challenge(&self, ch: &NewChallenge<'_>, now: i64) -> StoreResult<()> {
        let (id, device_id, nonce) = (owned(ch.id), owned(ch.device_id), owned(ch.nonce));
        let (expires_at, keep) = (ch.expires_at, ch.max_pending.max(1));
        self.write(move |c| {
            c.prepare_cached("DELETE FROM challenges WHERE expires_at < ?1")?
                .execute([now])?;
            c.prepare_cached(
                "INSERT INTO challenges(id, device_id, nonce, expires_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![id, device_id, nonce, expires_at])?;
            c.prepare_cached(
                "DELETE FROM challenges WHERE device_id = ?1 AND rowid NOT IN (
                     SELECT rowid FROM challenges WHERE device_id = ?1
                     ORDER BY expires_at DESC, rowid DESC LIMIT ?2)",
            )?
            .execute(params![device_id, keep])?;
            Ok(())
        })
    }

    fn challenge_count(&self) -> StoreResult<u64> {
        self.read(|c| {
            let n: i64 = c.query_row("SELECT COUNT(*) FROM challenges", [], |r| r.get(0))?;
            Ok(to_u64(n))
        })
    }

    fn take_challenge(&self, id: &str) -> StoreResult<Option<(String, String, i64)>> {
        let id = owned(id);
        self.write(move |c| {
            Ok(c.prepare_cached(
                "DELETE FROM challenges WHERE id = ?1 RETURNING device_id, nonce, expires_at",
            )?
            .query_row([&id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?)
        })
    }

    fn put_token(&self, hash: &str, s: &Session) -> StoreResult<()> {
        let (hash, s) = (owned(hash), s.clone());
        self.write(move |c| {
            c.prepare_cached("DELETE FROM tokens WHERE expires_at < ?1")?
                .execute([s.expires_at - 86_400])?;
            c.prepare_cached(
                "INSERT INTO tokens(hash, device_id, resident_id, expires_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![hash, s.device_id, s.resident_id, s.expires_at])?;
            Ok(())
        })
    }

    fn session(&self, hash: &str) -> StoreResult<Option<Session>> {
        let hash = owned(hash);
        self.read(move |c| {
            Ok(c.prepare_cached(
                "SELECT device_id, resident_id, expires_at FROM tokens WHERE hash = ?1",
            )?
            .query_row([&hash], |r| {
                Ok(Session {
                    device_id: r.get(0)?,
                    resident_id: r.get(1)?,
                    expires_at: r.get(2)?,
                })
            })
            .optional()?)
        })
    }
}
