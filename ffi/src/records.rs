//! Plain records crossing the FFI, each converted from a core type. Free-form
//! JSON (form values, guide bodies, claims) crosses as JSON text.

use std::collections::BTreeMap;

use serde_json::Value;
use zhangban_core::client::api::StatusEventIn;
use zhangban_core::client::wallet::{LicenceState, WalletLicence as CoreWalletLicence};
use zhangban_core::client::{
    FlushReport as CoreFlushReport, OutboxEntry as CoreOutboxEntry,
    SyncProgress as CoreSyncProgress, SyncReport as CoreSyncReport,
};
use zhangban_core::guide::Guide as CoreGuide;
use zhangban_core::inspection::InspectionVerdict;
use zhangban_core::inspection::showing::ShowMode as CoreShowMode;
use zhangban_core::outbox::OutboxState as CoreOutboxState;
use zhangban_core::search::SearchHit as CoreSearchHit;

/// The enrolled device.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Device {
    /// The device id (its key's thumbprint).
    pub device_id: String,
    /// The resident it belongs to.
    pub resident_id: String,
}

/// A step of a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SyncProgress {
    /// A catalog page was applied.
    Catalog {
        /// The cursor reached.
        cursor: u64,
        /// The server's head.
        head: u64,
    },
    /// Trust data fetched.
    Trust,
    /// Wallet fetched.
    Wallet,
    /// Status events fetched.
    Events,
}

impl From<CoreSyncProgress> for SyncProgress {
    fn from(p: CoreSyncProgress) -> Self {
        match p {
            CoreSyncProgress::Catalog { cursor, head } => Self::Catalog { cursor, head },
            CoreSyncProgress::Trust => Self::Trust,
            CoreSyncProgress::Wallet => Self::Wallet,
            CoreSyncProgress::Events => Self::Events,
        }
    }
}

/// What the device holds of the catalog (for a settings or "offline
/// ready" screen).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct CatalogInfo {
    /// Guides cached on the device.
    pub guides: u64,
    /// The catalog cursor reached (0: never synced).
    pub cursor: u64,
}

/// What a sync did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncReport {
    /// Catalog pages applied.
    pub catalog_pages: u32,
    /// Guides added or changed.
    pub guides_upserted: u64,
    /// Guides withdrawn.
    pub guides_deleted: u64,
    /// The catalog cursor reached.
    pub catalog_cursor: u64,
    /// The server's catalog head.
    pub catalog_head: u64,
    /// Catalog bytes on the wire (compressed).
    pub catalog_wire_bytes: u64,
    /// The trust bundle version held.
    pub bundle_version: Option<u64>,
    /// Whether a newer bundle was taken.
    pub bundle_updated: bool,
    /// Status lists stored.
    pub status_lists_updated: u32,
    /// Licences new to this device (absent before enrolment).
    pub licences_received: Option<u32>,
    /// Licence copies refused on receipt, by rejection code.
    pub licences_refused: Vec<String>,
    /// New status events.
    pub events: u32,
}

impl From<CoreSyncReport> for SyncReport {
    fn from(r: CoreSyncReport) -> Self {
        Self {
            catalog_pages: r.catalog.pages,
            guides_upserted: r.catalog.upserted,
            guides_deleted: r.catalog.deleted,
            catalog_cursor: r.catalog.cursor,
            catalog_head: r.catalog.head,
            catalog_wire_bytes: r.catalog.wire_bytes,
            bundle_version: r.trust.bundle_version,
            bundle_updated: r.trust.bundle_updated,
            status_lists_updated: r.trust.lists_updated,
            licences_received: r.wallet.as_ref().map(|w| w.received),
            licences_refused: r.wallet.map(|w| w.refused).unwrap_or_default(),
            events: u32::try_from(r.events).unwrap_or(u32::MAX),
        }
    }
}

/// A match of an offline guide search.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SearchHit {
    /// Guide id.
    pub guide_id: String,
    /// The item's name.
    pub name: String,
    /// The implementing department.
    pub department: String,
    /// The name with every match wrapped in `【` and `】`.
    pub highlighted: String,
    /// The matches in `name`, as `[start, end)` character offsets.
    pub highlights: Vec<Highlight>,
    /// Relevance (higher is better).
    pub score: f64,
    /// How the hit was found.
    pub matched: SearchMatch,
}

/// How a search hit was found: the query's own words, a lexicon term
/// (低保 → 最低生活保障), its pinyin (`hukou`, `hkqy`, a homophone slip), or,
/// when nothing matched the whole query, as a closest alternative (show these
/// as "did you mean").
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SearchMatch {
    /// The query's own words.
    Literal,
    /// A lexicon rewrite of the query.
    Synonym,
    /// The query's pinyin.
    Pinyin,
    /// A closest alternative: nothing matched the whole query.
    Closest,
}

impl From<zhangban_core::search::MatchKind> for SearchMatch {
    fn from(k: zhangban_core::search::MatchKind) -> Self {
        use zhangban_core::search::MatchKind as K;
        match k {
            K::Literal => Self::Literal,
            K::Synonym => Self::Synonym,
            K::Pinyin => Self::Pinyin,
            K::Closest => Self::Closest,
        }
    }
}

/// A match's place in a name, in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct Highlight {
    /// First character.
    pub start: u32,
    /// One past the last character.
    pub end: u32,
}

impl From<CoreSearchHit> for SearchHit {
    fn from(h: CoreSearchHit) -> Self {
        Self {
            guide_id: h.guide_id,
            name: h.name,
            department: h.department,
            highlighted: h.highlighted,
            highlights: h
                .highlights
                .into_iter()
                .map(|(start, end)| Highlight { start, end })
                .collect(),
            score: h.score,
            matched: h.matched.into(),
        }
    }
}

/// A cached service guide: the fields a list shows, and the whole guide
/// (materials, process, form schema …) as JSON.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Guide {
    /// Guide id.
    pub id: String,
    /// The item's name.
    pub name: String,
    /// The implementing department.
    pub department: String,
    /// The 12-digit basic code.
    pub basic_code: String,
    /// The form schema's version (to put in a draft).
    pub form_version: u32,
    /// The whole guide, as core serialises it.
    pub json: String,
}

impl TryFrom<CoreGuide> for Guide {
    type Error = serde_json::Error;
    fn try_from(g: CoreGuide) -> Result<Self, Self::Error> {
        Ok(Self {
            json: serde_json::to_string(&g)?,
            id: g.id,
            name: g.name,
            department: g.department,
            basic_code: g.basic_code,
            form_version: g.form.version,
        })
    }
}

/// A draft of a submission, as the app fills it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Draft {
    /// The app's id for the draft.
    pub id: String,
    /// The guide it applies to.
    pub guide_id: String,
    /// The form schema version it was filled against.
    pub form_version: u32,
    /// The values, a JSON object keyed by field name.
    pub values_json: String,
}

/// An outbox entry's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum OutboxState {
    /// Waiting for its first send.
    Queued,
    /// A send is in flight.
    Sending,
    /// The server's receipt is stored locally. Final.
    Accepted,
    /// Refused by the server; kept with its errors for the resident to fix.
    Rejected,
    /// Not delivered yet; retried at `next_attempt_at`.
    Failed,
}

impl From<CoreOutboxState> for OutboxState {
    fn from(s: CoreOutboxState) -> Self {
        match s {
            CoreOutboxState::Queued => Self::Queued,
            CoreOutboxState::Sending => Self::Sending,
            CoreOutboxState::Accepted => Self::Accepted,
            CoreOutboxState::Rejected => Self::Rejected,
            CoreOutboxState::Failed => Self::Failed,
        }
    }
}

/// A submission in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OutboxEntry {
    /// The client-generated submission id.
    pub client_id: String,
    /// The draft it came from.
    pub draft_id: String,
    /// The guide.
    pub guide_id: String,
    /// The form schema version.
    pub form_version: u32,
    /// State.
    pub state: OutboxState,
    /// Send attempts so far.
    pub attempts: u32,
    /// When the next attempt is due (Unix seconds).
    pub next_attempt_at: i64,
    /// The last failure's stable code.
    pub last_error: Option<String>,
    /// The server's validation errors (JSON), for a rejected entry.
    pub errors_json: Option<String>,
    /// The receipt's tracking number, once accepted.
    pub tracking_number: Option<String>,
    /// The latest status (`submitted`, `in_review`, `approved` …).
    pub status: Option<String>,
    /// Queued at.
    pub created_at: i64,
    /// Last changed at.
    pub updated_at: i64,
}

impl From<&CoreOutboxEntry> for OutboxEntry {
    fn from(e: &CoreOutboxEntry) -> Self {
        Self {
            client_id: e.client_id.clone(),
            draft_id: e.draft_id.clone(),
            guide_id: e.guide_id.clone(),
            form_version: e.form_version,
            state: e.state.into(),
            attempts: e.attempts,
            next_attempt_at: e.next_attempt_at,
            last_error: e.last_error.clone(),
            errors_json: e.errors.as_ref().map(Value::to_string),
            tracking_number: e.tracking_number.clone(),
            status: e.status.clone(),
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// What a flush did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FlushReport {
    /// Sends attempted.
    pub sent: u32,
    /// Accepted (receipt stored).
    pub accepted: u32,
    /// Rejected by the server.
    pub rejected: u32,
    /// Failed, to be retried.
    pub failed: u32,
    /// Sends left in flight by an earlier run, made due again.
    pub recovered: u32,
    /// The network was unreachable: the rest waits.
    pub offline: bool,
    /// When to flush next (Unix seconds), if anything is pending.
    pub next_attempt_at: Option<i64>,
    /// Entries waiting out their backoff that `flush_now` sent at once.
    pub retried_now: u32,
}

impl From<CoreFlushReport> for FlushReport {
    fn from(r: CoreFlushReport) -> Self {
        Self {
            sent: r.sent,
            accepted: r.accepted,
            rejected: r.rejected,
            failed: r.failed,
            recovered: r.recovered,
            offline: r.offline,
            next_attempt_at: r.next_attempt_at,
            retried_now: r.retried_now,
        }
    }
}

/// A status event of an accepted submission (受理, 审查, 办结 …).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct StatusEvent {
    /// Feed position.
    pub seq: u64,
    /// The submission.
    pub client_id: String,
    /// Its tracking number.
    pub tracking_number: String,
    /// The new state.
    pub state: String,
    /// The officer's note.
    pub note: Option<String>,
    /// When (Unix seconds).
    pub at: i64,
}

impl From<&StatusEventIn> for StatusEvent {
    fn from(e: &StatusEventIn) -> Self {
        Self {
            seq: e.seq,
            client_id: e.client_id.clone(),
            tracking_number: e.tracking_number.clone(),
            state: e.state.clone(),
            note: e.note.clone(),
            at: e.at,
        }
    }
}

/// A licence's state as the resident sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum WalletLicenceState {
    /// Valid now.
    Valid,
    /// Past its validity.
    Expired,
    /// Not yet valid.
    NotYetValid,
    /// Revoked by the issuer.
    Revoked,
    /// Suspended by the issuer.
    Suspended,
    /// Cannot be checked now (no or stale trust data).
    Unverified,
}

impl From<LicenceState> for WalletLicenceState {
    fn from(s: LicenceState) -> Self {
        match s {
            LicenceState::Valid => Self::Valid,
            LicenceState::Expired => Self::Expired,
            LicenceState::NotYetValid => Self::NotYetValid,
            LicenceState::Revoked => Self::Revoked,
            LicenceState::Suspended => Self::Suspended,
            LicenceState::Unverified => Self::Unverified,
        }
    }
}

/// A licence in the wallet.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct WalletLicence {
    /// The wallet's id for it (to show or attach it).
    pub licence_id: String,
    /// Licence type (`vct`).
    pub vct: String,
    /// All its claims, as a JSON object.
    pub claims_json: String,
    /// Received at.
    pub issued_at: i64,
    /// Its state now.
    pub state: WalletLicenceState,
    /// Why it is not valid, as a stable code.
    pub reason: Option<String>,
}

impl TryFrom<CoreWalletLicence> for WalletLicence {
    type Error = serde_json::Error;
    fn try_from(l: CoreWalletLicence) -> Result<Self, Self::Error> {
        Ok(Self {
            claims_json: serde_json::to_string(&l.claims)?,
            licence_id: l.licence_id,
            vct: l.vct,
            issued_at: l.issued_at,
            state: l.state.into(),
            reason: l.reason,
        })
    }
}

/// How a presentation is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ShowMode {
    /// On a screen: key-bound, fresh, single use.
    Dynamic,
    /// On paper: sealed at `printed_at`, valid until `valid_until`, unbound.
    Printable {
        /// Print time.
        printed_at: i64,
        /// End of the card's validity.
        valid_until: i64,
    },
}

impl From<CoreShowMode> for ShowMode {
    fn from(m: CoreShowMode) -> Self {
        match m {
            CoreShowMode::Dynamic => Self::Dynamic,
            CoreShowMode::Printable {
                printed_at,
                valid_until,
            } => Self::Printable {
                printed_at,
                valid_until,
            },
        }
    }
}

/// A presentation ready to show to an inspector.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Shown {
    /// The SD-JWT presentation.
    pub presentation: String,
    /// The compact frame the QR code carries (what an inspector verifies).
    pub frame: Vec<u8>,
    /// The QR code as a PNG image.
    pub png: Vec<u8>,
    /// The QR code as text (block characters), for a terminal or a log.
    pub text: String,
    /// The QR code's version (size).
    pub qr_version: i16,
    /// How it is shown.
    pub mode: ShowMode,
}

/// A printable card: an SVG page with the QR code and the chosen fields.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PrintCard {
    /// The card, an SVG document (A4).
    pub svg: String,
    /// The presentation it carries.
    pub shown: Shown,
}

/// An inspector's verdict on a scan.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Verdict {
    /// Whether the licence is accepted.
    pub valid: bool,
    /// `valid`, or the rejection's stable code.
    pub code: String,
    /// `valid`, or the class (`expired`, `revoked`, `forged` …).
    pub class: String,
    /// Short zh-CN text to show as it is.
    pub zh: String,
    /// Short English text to show as it is.
    pub en: String,
    /// How it was shown (for an accepted licence).
    pub mode: Option<ShowMode>,
    /// Whether the presenter proved they hold the licence's device.
    pub bound: bool,
    /// Licence type, if accepted.
    pub vct: Option<String>,
    /// The issuer's name, if accepted.
    pub issuer_name: Option<String>,
    /// The disclosed fields only, as a JSON object (`{}` if rejected).
    pub claims_json: String,
    /// Validity end (`None`: 长期, or rejected).
    pub valid_until: Option<i64>,
    /// Seconds since the trust data was fetched.
    pub trust_data_age_secs: Option<i64>,
    /// When the check ran (Unix seconds).
    pub checked_at: i64,
}

impl TryFrom<InspectionVerdict> for Verdict {
    type Error = serde_json::Error;
    fn try_from(v: InspectionVerdict) -> Result<Self, Self::Error> {
        let empty = BTreeMap::<String, Value>::new();
        let claims = v.licence.as_ref().map_or(&empty, |l| &l.claims);
        Ok(Self {
            claims_json: serde_json::to_string(claims)?,
            valid: v.valid,
            code: v.code,
            class: v.class,
            zh: v.zh,
            en: v.en,
            mode: v.mode.map(Into::into),
            bound: v.bound,
            vct: v.licence.as_ref().map(|l| l.vct.clone()),
            issuer_name: v.licence.as_ref().map(|l| l.issuer_name.clone()),
            valid_until: v.licence.as_ref().and_then(|l| l.valid_until),
            trust_data_age_secs: v.trust_data_age_secs,
            checked_at: v.checked_at,
        })
    }
}

/// What `resetPersonalData` wiped: everything personal on this device (the
/// catalog, search index and trust data are kept).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ResetReport {
    /// Submissions that never reached the server (queued, failed, or
    /// rejected and not corrected), by client id: lost, to be filled again.
    pub unsent: Vec<String>,
    /// Drafts wiped.
    pub drafts: u32,
    /// Wallet copies wiped (fetched again after enrolling again).
    pub licences: u32,
    /// Receipts wiped (the submissions are on the server).
    pub receipts: u32,
    /// Status events wiped (fetched again).
    pub events: u32,
    /// Kept attachment files wiped.
    pub attachments: u32,
}

impl From<zhangban_core::client::ResetReport> for ResetReport {
    fn from(r: zhangban_core::client::ResetReport) -> Self {
        let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        Self {
            unsent: r.unsent,
            drafts: n(r.drafts),
            licences: n(r.licences),
            receipts: n(r.receipts),
            events: n(r.events),
            attachments: n(r.attachments),
        }
    }
}
