//! Residents and their devices: the activation codes that enrol a device,
//! the authentication challenges a device signs and the session tokens it
//! gets. Nothing here lives in server memory, so any replica can answer.

use super::StoreResult;
use crate::activation::SealedCode;

/// A device enrolled for a resident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Device id (its key thumbprint).
    pub id: String,
    /// Owner.
    pub resident_id: String,
    /// The device's public JWK (JSON text).
    pub jwk: String,
}

/// An authenticated session resolved from a token hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The device.
    pub device_id: String,
    /// Its resident.
    pub resident_id: String,
    /// Expiry (Unix seconds).
    pub expires_at: i64,
}

/// An activation code to store (see [`ResidentStore::put_activation`]).
#[derive(Debug, Clone, Copy)]
pub struct NewActivation<'a> {
    /// The code's id and keyed hash.
    pub code: &'a SealedCode,
    /// The resident it enrols devices for.
    pub resident_id: &'a str,
    /// Expiry (Unix seconds).
    pub expires_at: i64,
    /// How many devices may enrol with it.
    pub uses: u32,
}

/// Why an activation code was refused. Logged and counted only: every
/// refusal gets the same answer, so a guesser learns nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No code has that id.
    Unknown,
    /// A code has that id but the rest is wrong (a failure was counted).
    Wrong,
    /// The code failed too often and is locked.
    Locked,
    /// The code expired.
    Expired,
    /// Every use is taken.
    UsedUp,
}

impl Refusal {
    /// A stable code for logs and metrics.
    pub fn code(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Wrong => "wrong",
            Self::Locked => "locked",
            Self::Expired => "expired",
            Self::UsedUp => "used_up",
        }
    }
}

/// The outcome of [`ResidentStore::enrol`] and [`ResidentStore::reenrol`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enrolment {
    /// The device is enrolled (now, or already for the same resident).
    Enrolled(Device),
    /// The code was refused.
    Refused(Refusal),
    /// The device to enrol was retired: a retired key never comes back.
    DeviceRetired,
    /// The device a re-enrolment would retire is unknown, of another
    /// resident, or already retired (in favour of another device).
    NotReplaceable,
}

/// A device's retirement (see [`ResidentStore::reenrol`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retirement {
    /// When (Unix seconds).
    pub at: i64,
    /// The device that replaced it.
    pub replaced_by: String,
}

/// An authentication challenge to store (see [`ResidentStore::put_challenge`]).
#[derive(Debug, Clone, Copy)]
pub struct NewChallenge<'a> {
    /// Challenge id.
    pub id: &'a str,
    /// The device it was issued to.
    pub device_id: &'a str,
    /// The nonce the device signs.
    pub nonce: &'a str,
    /// Expiry (Unix seconds).
    pub expires_at: i64,
    /// The most pending challenges one device keeps.
    pub max_pending: u32,
}

/// Residents, devices, activation codes, challenges and sessions.
pub trait ResidentStore {
    /// Creates a resident (idempotent by id).
    fn put_resident(&self, id: &str, name: &str, at: i64) -> StoreResult<()>;
    /// Stores an activation code (its id and keyed hash, never the code).
    /// Storing the same code again resets its expiry, uses and failures;
    /// `Conflict` if another code has the same id.
    fn put_activation(&self, activation: &NewActivation<'_>) -> StoreResult<()>;
    /// Checks a code and, if it is good, consumes one use and enrols the
    /// device, in one transaction. A wrong code for an existing id counts a
    /// failure of that code (committed: `Ok(Refused(Wrong))`); at
    /// `max_failures` the code is locked. Re-enrolling the same key for the
    /// same resident is idempotent (no use consumed); a retired key is
    /// `DeviceRetired`.
    fn enrol(
        &self,
        code: &SealedCode,
        device: &Device,
        now: i64,
        max_failures: u32,
    ) -> StoreResult<Enrolment>;
    /// Re-enrolment of a phone to a new key: checks the code as
    /// [`Self::enrol`] does, then, in the same transaction, enrols `device`
    /// and retires `replaces` (which must be an active device of the code's
    /// resident), deleting its session tokens; returns their hashes so that
    /// the caller can drop them from any cache. The caller has checked that
    /// the old key signed the request. A retry of the same re-enrolment
    /// (`replaces` already retired in favour of `device`) is idempotent: no
    /// use consumed, the same answer. `device` itself retired:
    /// `DeviceRetired`.
    fn reenrol(
        &self,
        code: &SealedCode,
        device: &Device,
        replaces: &str,
        now: i64,
        max_failures: u32,
    ) -> StoreResult<(Enrolment, Vec<String>)>;
    /// A device by id (retired or not: see [`Self::retirement`]).
    fn device(&self, id: &str) -> StoreResult<Option<Device>>;
    /// The device's retirement, if it is retired.
    fn retirement(&self, id: &str) -> StoreResult<Option<Retirement>>;
    /// The active (not retired) devices of a resident: those that get
    /// licence copies.
    fn devices_of(&self, resident_id: &str) -> StoreResult<Vec<Device>>;
    /// Stores an authentication challenge, in one transaction with the
    /// upkeep that keeps the table bounded: every challenge expired at `now`
    /// is deleted, and of the device's pending challenges only the newest
    /// `max_pending` are kept (the oldest are dropped, so a flood cannot
    /// lock the device out, and the rows per device stay capped).
    fn put_challenge(&self, challenge: &NewChallenge<'_>, now: i64) -> StoreResult<()>;
    /// How many challenges are stored (all devices; for tests and upkeep).
    fn challenge_count(&self) -> StoreResult<u64>;
    /// Deletes and returns a challenge (device id, nonce, expiry): at most once.
    fn take_challenge(&self, id: &str) -> StoreResult<Option<(String, String, i64)>>;
    /// Stores a session token hash (pruning tokens expired a day before
    /// this one expires; live ones stay). `InvalidState` if the device is
    /// retired: no token outlives a re-enrolment.
    fn put_token(&self, hash: &str, session: &Session) -> StoreResult<()>;
    /// Resolves a token hash (expired sessions are returned; the caller judges).
    fn session(&self, hash: &str) -> StoreResult<Option<Session>>;
}
