//! [`ResidentStore`] on SQLite: residents, activation codes, devices,
//! challenges and session tokens.

use rusqlite::{Connection, OptionalExtension as _, params};

use super::{SqliteStore, owned, to_u64};
use crate::activation::{SealedCode, macs_equal};
use crate::store::{
    Device, Enrolment, NewActivation, NewChallenge, Refusal, ResidentStore, Retirement, Session,
    StoreError, StoreResult,
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

fn retirement_in(c: &Connection, id: &str) -> StoreResult<Option<Retirement>> {
    let row: Option<(Option<i64>, Option<String>)> = c
        .prepare_cached("SELECT retired_at, replaced_by FROM devices WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match row {
        Some((Some(at), replaced_by)) => Some(Retirement {
            at,
            replaced_by: replaced_by.unwrap_or_default(),
        }),
        _ => None,
    })
}

/// Whether `old` may be retired in favour of `new` for `resident_id`:
/// `Ok(true)` to retire it now, `Ok(false)` if it already was (a retry),
/// `Err(NotReplaceable)` otherwise. Reads only.
fn replaceable(
    c: &Connection,
    old: &str,
    new: &str,
    resident_id: &str,
) -> StoreResult<Result<bool, Enrolment>> {
    if old == new {
        return Ok(Err(Enrolment::NotReplaceable));
    }
    let owner: Option<String> = c
        .query_row(
            "SELECT resident_id FROM devices WHERE id = ?1",
            [old],
            |r| r.get(0),
        )
        .optional()?;
    if owner.as_deref() != Some(resident_id) {
        return Ok(Err(Enrolment::NotReplaceable));
    }
    Ok(match retirement_in(c, old)? {
        None => Ok(true),
        Some(r) if r.replaced_by == new => Ok(false),
        Some(_) => Err(Enrolment::NotReplaceable),
    })
}

/// Retires `old` in favour of `new` and deletes its tokens; their hashes.
fn retire_in(c: &Connection, old: &str, new: &str, now: i64) -> StoreResult<Vec<String>> {
    c.execute(
        "UPDATE devices SET retired_at = ?2, replaced_by = ?3 WHERE id = ?1 AND retired_at IS NULL",
        params![old, now, new],
    )?;
    c.execute("DELETE FROM challenges WHERE device_id = ?1", [old])?;
    let mut stmt = c.prepare_cached("DELETE FROM tokens WHERE device_id = ?1 RETURNING hash")?;
    let hashes = stmt
        .query_map([old], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(hashes)
}

/// [`ResidentStore::enrol`] (no `replaces`) and [`ResidentStore::reenrol`],
/// inside the writer's transaction. Every refusal is decided before the
/// first write but a wrong code's failure count.
fn enrol_in(
    c: &Connection,
    code: &SealedCode,
    device: &Device,
    replaces: Option<&str>,
    now: i64,
    max_failures: u32,
) -> StoreResult<(Enrolment, Vec<String>)> {
    let refused = |why| Ok((Enrolment::Refused(why), Vec::new()));
    let row: Option<(String, String, i64, i64, i64)> = c
        .query_row(
            "SELECT code_hash, resident_id, expires_at, uses_left, failures
             FROM activation_codes WHERE code_id = ?1",
            [&code.id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?;
    let Some((mac, resident_id, expires_at, uses_left, failures)) = row else {
        return refused(Refusal::Unknown);
    };
    if failures >= i64::from(max_failures) {
        return refused(Refusal::Locked);
    }
    if !macs_equal(&mac, &code.mac) {
        c.execute(
            "UPDATE activation_codes SET failures = failures + 1 WHERE code_id = ?1",
            [&code.id],
        )?;
        return refused(Refusal::Wrong);
    }
    let existing: Option<String> = c
        .query_row(
            "SELECT resident_id FROM devices WHERE id = ?1",
            [&device.id],
            |r| r.get(0),
        )
        .optional()?;
    let enrolled = Enrolment::Enrolled(Device {
        resident_id: resident_id.clone(),
        ..device.clone()
    });
    let known = match existing {
        Some(owner) if owner == resident_id => {
            if retirement_in(c, &device.id)?.is_some() {
                return Ok((Enrolment::DeviceRetired, Vec::new()));
            }
            true
        }
        Some(_) => {
            return Err(StoreError::Conflict("device enrolled for another resident"));
        }
        None => false,
    };
    let retire = match replaces {
        None => false,
        Some(old) => match replaceable(c, old, &device.id, &resident_id)? {
            Ok(now_retire) => now_retire,
            Err(refusal) => return Ok((refusal, Vec::new())),
        },
    };
    if !known {
        if expires_at < now {
            return refused(Refusal::Expired);
        }
        if uses_left <= 0 {
            return refused(Refusal::UsedUp);
        }
        c.execute(
            "UPDATE activation_codes SET uses_left = uses_left - 1 WHERE code_hash = ?1",
            [&mac],
        )?;
        c.execute(
            "INSERT INTO devices(id, resident_id, jwk, enrolled_at) VALUES (?1, ?2, ?3, ?4)",
            params![device.id, resident_id, device.jwk, now],
        )?;
    }
    let revoked = match (replaces, retire) {
        (Some(old), true) => retire_in(c, old, &device.id, now)?,
        _ => Vec::new(),
    };
    Ok((enrolled, revoked))
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
        self.write(move |c| Ok(enrol_in(c, &code, &device, None, now, max_failures)?.0))
    }

    fn reenrol(
        &self,
        code: &SealedCode,
        device: &Device,
        replaces: &str,
        now: i64,
        max_failures: u32,
    ) -> StoreResult<(Enrolment, Vec<String>)> {
        let (code, device, replaces) = (code.clone(), device.clone(), owned(replaces));
        self.write(move |c| enrol_in(c, &code, &device, Some(&replaces), now, max_failures))
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

    fn retirement(&self, id: &str) -> StoreResult<Option<Retirement>> {
        let id = owned(id);
        self.read(move |c| retirement_in(c, &id))
    }

    fn devices_of(&self, resident_id: &str) -> StoreResult<Vec<Device>> {
        let resident_id = owned(resident_id);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, resident_id, jwk FROM devices
                 WHERE resident_id = ?1 AND retired_at IS NULL ORDER BY enrolled_at, id",
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
            let stored = c
                .prepare_cached(
                    "INSERT INTO tokens(hash, device_id, resident_id, expires_at)
                     SELECT ?1, ?2, ?3, ?4 WHERE NOT EXISTS (
                         SELECT 1 FROM devices WHERE id = ?2 AND retired_at IS NOT NULL)",
                )?
                .execute(params![hash, s.device_id, s.resident_id, s.expires_at])?;
            if stored == 0 {
                return Err(StoreError::InvalidState("device retired"));
            }
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
