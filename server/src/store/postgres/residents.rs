//! [`ResidentStore`] on PostgreSQL: residents, activation codes, devices,
//! challenges and session tokens, with SQLite's behaviour
//! (`sqlite/residents.rs` is the contract).
//!
//! Correct across replicas because every decision that a concurrent writer
//! could invalidate is taken under a row lock held to commit:
//! - an activation code is checked, counted as failed or consumed under its
//!   row lock (`FOR UPDATE`), so single use and the failure lockout hold
//!   when several replicas try the same code at once;
//! - the device a re-enrolment retires is locked (`FOR UPDATE`) before the
//!   decision, so two re-enrolments cannot both replace it, and `put_token`
//!   reads the device under `FOR SHARE`, so a token racing a re-enrolment
//!   either commits before it (and is deleted by it) or sees the retirement;
//! - a new device is inserted with `ON CONFLICT DO NOTHING`: losing a race
//!   to the same key on another replica is answered as a known device;
//! - a device's challenges are capped under a transaction-scoped advisory
//!   lock on the device id, and `take_challenge` is one
//!   `DELETE … RETURNING`, so a challenge is taken at most once.

use super::Tx;

use super::{PgStore, to_u64};
use crate::activation::{SealedCode, macs_equal};
use crate::store::residents::*;
use crate::store::{StoreError, StoreResult};

/// The advisory lock class of a device's challenges (the first key of the
/// two-key form, which never collides with the one-key migration lock).
const CHALLENGE_LOCK_CLASS: i32 = 0x5a42_4348; // "ZBCH"

pub(super) fn put_resident_in(tx: &mut Tx<'_>, id: &str, name: &str, at: i64) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO residents(id, name, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO NOTHING",
        &[&id, &name, &at],
    )?;
    Ok(())
}

pub(super) fn put_activation_in(
    tx: &mut Tx<'_>,
    code: &SealedCode,
    resident_id: &str,
    expires_at: i64,
    uses: u32,
) -> StoreResult<()> {
    // One statement: a concurrent reissue of the same code waits on the row
    // and then updates it; another code with this id is never overwritten.
    let changed = tx.execute(
        "INSERT INTO activation_codes(code_hash, code_id, resident_id, expires_at, uses_left, failures)
         VALUES ($1, $2, $3, $4, $5, 0)
         ON CONFLICT (code_id) DO UPDATE
             SET resident_id = $3, expires_at = $4, uses_left = $5, failures = 0
             WHERE activation_codes.code_hash = $1",
        &[&code.mac, &code.id, &resident_id, &expires_at, &i64::from(uses)],
    )?;
    if changed == 0 {
        return Err(StoreError::Conflict("another activation code has this id"));
    }
    Ok(())
}

fn device_row(r: &postgres::Row) -> Device {
    Device {
        id: r.get(0),
        resident_id: r.get(1),
        jwk: r.get(2),
    }
}

fn retirement_of(at: Option<i64>, replaced_by: Option<String>) -> Option<Retirement> {
    at.map(|at| Retirement {
        at,
        replaced_by: replaced_by.unwrap_or_default(),
    })
}

/// Whether `old` may be retired in favour of `new` for `resident_id`:
/// `Ok(true)` to retire it now, `Ok(false)` if it already was (a retry),
/// `Err(NotReplaceable)` otherwise. Locks `old`'s row to the end of the
/// transaction, so the answer holds until the retirement commits.
fn replaceable(
    tx: &mut Tx<'_>,
    old: &str,
    new: &str,
    resident_id: &str,
) -> StoreResult<Result<bool, Enrolment>> {
    if old == new {
        return Ok(Err(Enrolment::NotReplaceable));
    }
    let row = tx.query_opt(
        "SELECT resident_id, retired_at, replaced_by FROM devices WHERE id = $1 FOR UPDATE",
        &[&old],
    )?;
    let Some(row) = row else {
        return Ok(Err(Enrolment::NotReplaceable));
    };
    let owner: String = row.get(0);
    if owner != resident_id {
        return Ok(Err(Enrolment::NotReplaceable));
    }
    Ok(match retirement_of(row.get(1), row.get(2)) {
        None => Ok(true),
        Some(r) if r.replaced_by == new => Ok(false),
        Some(_) => Err(Enrolment::NotReplaceable),
    })
}

/// Retires `old` in favour of `new` and deletes its challenges and tokens;
/// the tokens' hashes. The caller holds `old`'s row lock.
fn retire_in(tx: &mut Tx<'_>, old: &str, new: &str, now: i64) -> StoreResult<Vec<String>> {
    tx.execute(
        "UPDATE devices SET retired_at = $2, replaced_by = $3 WHERE id = $1 AND retired_at IS NULL",
        &[&old, &now, &new],
    )?;
    tx.execute("DELETE FROM challenges WHERE device_id = $1", &[&old])?;
    let hashes = tx
        .query(
            "DELETE FROM tokens WHERE device_id = $1 RETURNING hash",
            &[&old],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(hashes)
}

/// A device's owner and whether it is retired.
fn device_state(tx: &mut Tx<'_>, id: &str) -> StoreResult<Option<(String, bool)>> {
    Ok(tx
        .query_opt(
            "SELECT resident_id, retired_at IS NOT NULL FROM devices WHERE id = $1",
            &[&id],
        )?
        .map(|r| (r.get(0), r.get(1))))
}

/// How a device already stored answers an enrolment for `resident_id`:
/// `None` to go on (known, active), `Some(answer)` to stop.
fn known_device(
    owner: &str,
    retired: bool,
    resident_id: &str,
) -> StoreResult<Option<(Enrolment, Vec<String>)>> {
    if owner != resident_id {
        return Err(StoreError::Conflict("device enrolled for another resident"));
    }
    Ok(retired.then(|| (Enrolment::DeviceRetired, Vec::new())))
}

/// [`ResidentStore::enrol`] (no `replaces`) and [`ResidentStore::reenrol`],
/// inside the writer's transaction, under the code's row lock. Every
/// refusal is decided before the first write but a wrong code's failure
/// count.
fn enrol_in(
    tx: &mut Tx<'_>,
    code: &SealedCode,
    device: &Device,
    replaces: Option<&str>,
    now: i64,
    max_failures: u32,
) -> StoreResult<(Enrolment, Vec<String>)> {
    let refused = |why| Ok((Enrolment::Refused(why), Vec::new()));
    // The code's row lock serialises every attempt with this code on every
    // replica: failures and uses are counted exactly.
    let row = tx.query_opt(
        "SELECT code_hash, resident_id, expires_at, uses_left, failures
         FROM activation_codes WHERE code_id = $1 FOR UPDATE",
        &[&code.id],
    )?;
    let Some(row) = row else {
        return refused(Refusal::Unknown);
    };
    let (mac, resident_id, expires_at, uses_left, failures): (String, String, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    if failures >= i64::from(max_failures) {
        return refused(Refusal::Locked);
    }
    if !macs_equal(&mac, &code.mac) {
        tx.execute(
            "UPDATE activation_codes SET failures = failures + 1 WHERE code_id = $1",
            &[&code.id],
        )?;
        return refused(Refusal::Wrong);
    }
    let enrolled = Enrolment::Enrolled(Device {
        resident_id: resident_id.clone(),
        ..device.clone()
    });
    let known = match device_state(tx, &device.id)? {
        Some((owner, retired)) => {
            if let Some(answer) = known_device(&owner, retired, &resident_id)? {
                return Ok(answer);
            }
            true
        }
        None => false,
    };
    let retire = match replaces {
        None => false,
        Some(old) => match replaceable(tx, old, &device.id, &resident_id)? {
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
        // The same key enrolling with another code on another replica:
        // the loser of the insert waits for the winner, inserts nothing and
        // answers as for a device already stored (no use consumed).
        let inserted = tx.execute(
            "INSERT INTO devices(id, resident_id, jwk, enrolled_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO NOTHING",
            &[&device.id, &resident_id, &device.jwk, &now],
        )?;
        if inserted == 0 {
            let (owner, retired) = device_state(tx, &device.id)?.ok_or(StoreError::Database(
                "a concurrently enrolled device vanished".into(),
            ))?;
            if let Some(answer) = known_device(&owner, retired, &resident_id)? {
                return Ok(answer);
            }
        } else {
            tx.execute(
                "UPDATE activation_codes SET uses_left = uses_left - 1 WHERE code_hash = $1",
                &[&mac],
            )?;
        }
    }
    let revoked = match (replaces, retire) {
        (Some(old), true) => retire_in(tx, old, &device.id, now)?,
        _ => Vec::new(),
    };
    Ok((enrolled, revoked))
}

impl ResidentStore for PgStore {
    fn put_resident(&self, id: &str, name: &str, at: i64) -> StoreResult<()> {
        self.write(|tx| put_resident_in(tx, id, name, at))
    }

    fn put_activation(&self, a: &NewActivation<'_>) -> StoreResult<()> {
        self.write(|tx| put_activation_in(tx, a.code, a.resident_id, a.expires_at, a.uses))
    }

    fn enrol(
        &self,
        code: &SealedCode,
        device: &Device,
        now: i64,
        max_failures: u32,
    ) -> StoreResult<Enrolment> {
        self.write(|tx| Ok(enrol_in(tx, code, device, None, now, max_failures)?.0))
    }

    fn reenrol(
        &self,
        code: &SealedCode,
        device: &Device,
        replaces: &str,
        now: i64,
        max_failures: u32,
    ) -> StoreResult<(Enrolment, Vec<String>)> {
        self.write(|tx| enrol_in(tx, code, device, Some(replaces), now, max_failures))
    }

    fn device(&self, id: &str) -> StoreResult<Option<Device>> {
        self.read(|tx| {
            Ok(tx
                .query_opt(
                    "SELECT id, resident_id, jwk FROM devices WHERE id = $1",
                    &[&id],
                )?
                .map(|r| device_row(&r)))
        })
    }

    fn retirement(&self, id: &str) -> StoreResult<Option<Retirement>> {
        self.read(|tx| {
            Ok(tx
                .query_opt(
                    "SELECT retired_at, replaced_by FROM devices WHERE id = $1",
                    &[&id],
                )?
                .and_then(|r| retirement_of(r.get(0), r.get(1))))
        })
    }

    fn devices_of(&self, resident_id: &str) -> StoreResult<Vec<Device>> {
        self.read(|tx| {
            Ok(tx
                .query(
                    "SELECT id, resident_id, jwk FROM devices
                     WHERE resident_id = $1 AND retired_at IS NULL
                     ORDER BY enrolled_at, id COLLATE \"C\"",
                    &[&resident_id],
                )?
                .iter()
                .map(device_row)
                .collect())
        })
    }

    fn put_challenge(&self, ch: &NewChallenge<'_>, now: i64) -> StoreResult<()> {
        let keep = i64::from(ch.max_pending.max(1));
        self.write(|tx| {
            // Upkeep: rows another transaction holds (being taken, or pruned
            // by another replica) are left to it rather than waited for.
            tx.execute(
                "DELETE FROM challenges WHERE id IN (
                     SELECT id FROM challenges WHERE expires_at < $1 FOR UPDATE SKIP LOCKED)",
                &[&now],
            )?;
            // One writer per device at a time on every replica: the cap holds.
            tx.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                &[&CHALLENGE_LOCK_CLASS, &ch.device_id],
            )?;
            tx.execute(
                "INSERT INTO challenges(id, device_id, nonce, expires_at) VALUES ($1, $2, $3, $4)",
                &[&ch.id, &ch.device_id, &ch.nonce, &ch.expires_at],
            )?;
            // The newest `keep` by expiry stay. PostgreSQL has no insertion
            // order (SQLite's rowid): the challenge just stored always
            // stays, the others tie-break on their id.
            tx.execute(
                "DELETE FROM challenges WHERE device_id = $1 AND id <> $2 AND id NOT IN (
                     SELECT id FROM challenges WHERE device_id = $1 AND id <> $2
                     ORDER BY expires_at DESC, id COLLATE \"C\" DESC LIMIT $3)",
                &[&ch.device_id, &ch.id, &(keep - 1)],
            )?;
            Ok(())
        })
    }

    fn challenge_count(&self) -> StoreResult<u64> {
        self.read(|tx| {
            let n: i64 = tx.query_one("SELECT COUNT(*) FROM challenges", &[])?.get(0);
            Ok(to_u64(n))
        })
    }

    fn take_challenge(&self, id: &str) -> StoreResult<Option<(String, String, i64)>> {
        self.write(|tx| {
            Ok(tx
                .query_opt(
                    "DELETE FROM challenges WHERE id = $1 RETURNING device_id, nonce, expires_at",
                    &[&id],
                )?
                .map(|r| (r.get(0), r.get(1), r.get(2))))
        })
    }

    fn put_token(&self, hash: &str, s: &Session) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM tokens WHERE hash IN (
                     SELECT hash FROM tokens WHERE expires_at < $1 FOR UPDATE SKIP LOCKED)",
                &[&(s.expires_at - 86_400)],
            )?;
            // FOR SHARE: a re-enrolment retiring this device (which holds
            // its row FOR UPDATE) either committed before (seen here) or
            // waits for this token to commit and then deletes it.
            let retired = tx
                .query_opt(
                    "SELECT retired_at IS NOT NULL FROM devices WHERE id = $1 FOR SHARE",
                    &[&s.device_id],
                )?
                .is_some_and(|r| r.get::<_, bool>(0));
            if retired {
                return Err(StoreError::InvalidState("device retired"));
            }
            tx.execute(
                "INSERT INTO tokens(hash, device_id, resident_id, expires_at) VALUES ($1, $2, $3, $4)",
                &[&hash, &s.device_id, &s.resident_id, &s.expires_at],
            )?;
            Ok(())
        })
    }

    fn session(&self, hash: &str) -> StoreResult<Option<Session>> {
        self.read(|tx| {
            Ok(tx
                .query_opt(
                    "SELECT device_id, resident_id, expires_at FROM tokens WHERE hash = $1",
                    &[&hash],
                )?
                .map(|r| Session {
                    device_id: r.get(0),
                    resident_id: r.get(1),
                    expires_at: r.get(2),
                }))
        })
    }
}
