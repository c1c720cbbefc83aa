//! Submitting: the thin I/O shell around the outbox state machine
//! ([`crate::outbox`]). `submit` validates a draft with the shared validator
//! and queues it (no network needed); `flush` sends what is due, one entry
//! at a time, and stores each transition the machine decides.
//!
//! A licence attached to a form is kept in the draft as a reference into
//! the wallet ([`WalletLicenceRef`]); the presentation (key binding with the
//! server's nonce for this submission, `aud` = the service item) is made
//! when the entry is first sent, then frozen with the request body so that
//! every retry is byte-identical and gets the stored receipt.

use std::sync::Arc;

use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::api::{ApiFailure, ReceiptIn};
use super::drafts::Draft;
use super::error::{ClientError, ClientResult};
use super::facade::Client;
use super::listeners::ListenerId;
use super::outbox_store::OutboxEntry;
use crate::credential::{HeldLicence, KeyBindingClaims, PendingPresentation};
use crate::guide::{
    FieldError, FieldKind, Guide, validate_draft, validate_form_version,
    validate_versioned_submission,
};
use crate::outbox::{self, Heal, OutboxState, SendOutcome};

/// Attached licences waiting for the device key's signature, by field name.
type PendingFields = Vec<(String, PendingPresentation)>;

/// A licence from the wallet attached to a `licence_ref` field, as a draft
/// keeps it: which licence and which of its fields to disclose. Replaced by
/// a key-bound presentation when the submission is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalletLicenceRef {
    /// The licence's GB/T 36904 identifier (its wallet key).
    pub wallet_licence: String,
    /// The fields to disclose (at least one).
    pub disclose: Vec<String>,
}

/// Receives outbox changes (an entry queued, sent, accepted, rejected, failed).
pub trait OutboxListener: Send + Sync {
    /// An entry changed; `entry` is its new state.
    fn on_outbox_change(&self, entry: &OutboxEntry);
}

/// What a flush did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FlushReport {
    /// Sends made (including retries within this flush).
    pub sent: u32,
    /// Entries accepted now (receipt stored).
    pub accepted: u32,
    /// Entries refused by the server now.
    pub rejected: u32,
    /// Sends that failed and will be retried.
    pub failed: u32,
    /// Entries whose send lease had expired (the app died mid-send), resent.
    pub recovered: u32,
    /// The flush stopped early because the server could not be reached.
    pub offline: bool,
    /// When the next entry falls due, if any is waiting.
    pub next_attempt_at: Option<i64>,
    /// Entries that were waiting out their backoff and were sent at once
    /// because the resident asked ([`Client::flush_now`]); 0 for a plain flush.
    pub retried_now: u32,
}

/// Codes of licence errors that a fresh presentation cures.
const PROOF_STALE_CODES: &[&str] = &["kb_stale", "kb_nonce_mismatch"];
/// Codes of errors that are the server's trust data, not the submission's.
const SERVER_TRUST_CODES: &[&str] = &["status_list_stale", "bundle_stale"];
/// Field codes that a later send can cure without the resident (an upload
/// the server has not seen complete yet is uploaded again first).
const TRANSIENT_FIELD_CODES: &[&str] = &["attachment_missing"];

/// A new client id: 128 random bits, 32 hex digits.
pub fn new_client_id() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The day in China Standard Time (the validator's "today").
pub fn today_cst(now: i64) -> chrono::NaiveDate {
    chrono::DateTime::from_timestamp(now.saturating_add(8 * 3600), 0)
        .map(|t| t.date_naive())
        .unwrap_or_default()
}

/// Classifies a send's result for the state machine.
pub fn classify(client_id: &str, result: Result<ReceiptIn, ApiFailure>) -> SendOutcome {
    match result {
        Ok(r) if r.client_id == client_id => SendOutcome::Accepted {
            tracking_number: r.tracking_number,
            accepted_at: r.accepted_at,
        },
        Ok(_) => SendOutcome::Transient {
            code: "receipt_mismatch".into(),
            retry_after: None,
        },
        Err(f) => classify_failure(f),
    }
}

/// Classifies a failed request (a submission, a nonce, a token, an upload).
pub fn classify_failure(failure: ApiFailure) -> SendOutcome {
    match failure {
        ApiFailure::Network(_) => SendOutcome::Transient {
            code: "network".into(),
            retry_after: None,
        },
        ApiFailure::Decode(_) => SendOutcome::Transient {
            code: "bad_response".into(),
            retry_after: None,
        },
        // The key is away (user did not authorise, keystore busy): the entry
        // waits, unchanged, for the next flush.
        ApiFailure::Keystore(_) => SendOutcome::Transient {
            code: "holder_key".into(),
            retry_after: None,
        },
        ApiFailure::Http {
            status,
            code,
            details,
            retry_after,
            ..
        } => match status {
            401 => SendOutcome::Unauthorized,
            408 | 425 | 429 | 500..=599 => SendOutcome::Transient { code, retry_after },
            422 if code == "validation_failed" => {
                let codes: Vec<&str> = details
                    .as_ref()
                    .and_then(|d| d.get("fields"))
                    .and_then(Value::as_array)
                    .map(|fs| {
                        fs.iter()
                            .map(|f| f.get("code").and_then(Value::as_str).unwrap_or(""))
                            .collect()
                    })
                    .unwrap_or_default();
                if !codes.is_empty() && codes.iter().all(|c| PROOF_STALE_CODES.contains(c)) {
                    SendOutcome::ProofsStale
                } else if !codes.is_empty()
                    && codes.iter().all(|c| {
                        SERVER_TRUST_CODES.contains(c)
                            || PROOF_STALE_CODES.contains(c)
                            || TRANSIENT_FIELD_CODES.contains(c)
                    })
                {
                    SendOutcome::Transient {
                        code: codes
                            .iter()
                            .find(|c| !PROOF_STALE_CODES.contains(c))
                            .map_or("server_trust_data_stale", |c| *c)
                            .to_owned(),
                        retry_after,
                    }
                } else {
                    SendOutcome::Rejected { code, details }
                }
            }
            _ => SendOutcome::Rejected { code, details },
        },
    }
}

/// What a failure to build an entry's request body (its guide, its
/// licence proofs, freezing it) means for the entry (ADR 0204). Only a
/// failure of the submission itself rejects it: a licence no longer in the
/// wallet, a licence or disclosure that does not make a presentation. A
/// fault of the phone — its store (busy, full, corrupt, I/O), its data key,
/// the device keystore — leaves the entry queued, to be retried with
/// backoff: the resident never redoes a submission for it.
pub fn building_failed(err: &ClientError) -> SendOutcome {
    let transient = |code: String| SendOutcome::Transient {
        code,
        retry_after: None,
    };
    let rejected = |code: &str| SendOutcome::Rejected {
        code: code.into(),
        details: None,
    };
    match err {
        ClientError::NotFound(_) => rejected("licence_not_in_wallet"),
        ClientError::Verification(_) | ClientError::Invalid(_) | ClientError::Form(_) => {
            rejected("presentation_failed")
        }
        ClientError::Store(e) => transient(format!("store_{}", e.kind.code())),
        ClientError::Corrupted(_) => transient("store_sealed_corrupt".into()),
        ClientError::DataKey(f) => transient(format!("data_key_{}", f.code())),
        ClientError::Keystore(_) => transient("holder_key".into()),
        ClientError::NotEnrolled => transient("not_enrolled".into()),
        ClientError::Network(_) => transient("network".into()),
        ClientError::Protocol(_) => transient("bad_response".into()),
        ClientError::Server { code, .. } => transient(code.clone()),
        ClientError::DraftSubmitted { .. } => transient("draft_submitted".into()),
    }
}

/// Cheap jitter draw in `[0, 1)`.
fn unit() -> f64 {
    f64::from(rand::rngs::OsRng.next_u32()) / (f64::from(u32::MAX) + 1.0)
}

impl Client {
    /// Adds a listener for outbox changes; the id removes it
    /// ([`Client::remove_listener`]).
    pub fn add_outbox_listener(&self, l: Arc<dyn OutboxListener>) -> ListenerId {
        self.outbox_listeners.add(&self.listener_ids, l)
    }

    fn outbox_changed(&self, client_id: &str) {
        let listeners = self.outbox_listeners.snapshot();
        if listeners.is_empty() {
            return;
        }
        if let Ok(Some(e)) = self.store.outbox_entry(client_id) {
            for l in &listeners {
                l.on_outbox_change(&e);
            }
        }
    }

    /// Saves a draft (offline).
    pub fn save_draft(&self, draft: &Draft) -> ClientResult<()> {
        self.store.save_draft(draft)
    }

    /// Replaces wallet references in `values` by shape-only presentations
    /// and returns, per field, the presentation waiting for its signature
    /// (`nonce = None`: a placeholder nonce, for validation only).
    fn prepare_values(
        &self,
        guide: &Guide,
        values: &Map<String, Value>,
        nonce: Option<&str>,
    ) -> ClientResult<(Map<String, Value>, PendingFields)> {
        let mut out = values.clone();
        let mut pending_all = Vec::new();
        for f in &guide.form.fields {
            if !matches!(f.kind, FieldKind::LicenceRef { .. }) {
                continue;
            }
            let Some(v) = values.get(&f.name) else {
                continue;
            };
            let Ok(r) = WalletLicenceRef::deserialize(v) else {
                // Not a wallet reference: sent as given (the validator judges).
                continue;
            };
            let device = self.device()?;
            let sd_jwt = self
                .store
                .licences()?
                .into_iter()
                .find(|(id, ..)| *id == r.wallet_licence)
                .map(|(_, _, sd_jwt, _)| sd_jwt)
                .ok_or_else(|| ClientError::NotFound("wallet licence".into()))?;
            let held = HeldLicence::parse(&sd_jwt).map_err(ClientError::Verification)?;
            let fields: Vec<&str> = r.disclose.iter().map(String::as_str).collect();
            let pending = held
                .prepare(
                    &fields,
                    KeyBindingClaims {
                        key: &device.key,
                        audience: &guide.id,
                        nonce: nonce.unwrap_or("validation-only"),
                        iat: self.now(),
                    },
                )
                .map_err(|e| ClientError::Invalid(e.to_string()))?;
            out.insert(
                f.name.clone(),
                json!({ "presentation": pending.shape_only() }),
            );
            pending_all.push((f.name.clone(), pending));
        }
        Ok((out, pending_all))
    }

    /// The values as the validator sees them before sending: each attached
    /// licence as a presentation of the exact shape and size, its KB-JWT
    /// signature zeros (no keystore prompt to queue offline; never sent).
    fn shape_values(
        &self,
        guide: &Guide,
        values: &Map<String, Value>,
    ) -> ClientResult<Map<String, Value>> {
        Ok(self.prepare_values(guide, values, None)?.0)
    }

    /// The values as sent: each attached licence as a presentation
    /// key-bound to the server's `nonce`, signed by the device key.
    async fn wire_values(
        &self,
        guide: &Guide,
        values: &Map<String, Value>,
        nonce: &str,
    ) -> ClientResult<Map<String, Value>> {
        let (mut out, pending) = self.prepare_values(guide, values, Some(nonce))?;
        if pending.is_empty() {
            return Ok(out);
        }
        let device = self.device()?;
        for (name, p) in pending {
            let sig = self.sign_with_device(&device, p.signing_input()).await?;
            let presentation = p
                .finish(&sig)
                .map_err(|e| ClientError::Invalid(e.to_string()))?;
            out.insert(name, json!({ "presentation": presentation }));
        }
        Ok(out)
    }

    /// Validates a draft with the shared form validator (the server runs the
    /// same) and queues it under a new client id, in one transaction with
    /// the draft. Works offline.
    ///
    /// A submitted draft is locked (ADR 0201): submitting it again with the
    /// same content returns the id it was queued under (a double tap, a
    /// retry after a crash); with other content it is refused with
    /// [`ClientError::DraftSubmitted`], never queued under the old id with
    /// the change dropped.
    pub fn submit(&self, draft: &Draft) -> ClientResult<String> {
        if let Some(id) = self.store.submitted_as(&draft.id)? {
            return self.same_submission(draft, id);
        }
        let guide = self.guide(&draft.guide_id)?;
        let now = self.now();
        let values = self.shape_values(&guide, &draft.values)?;
        validate_versioned_submission(&guide.form, draft.form_version, &values, today_cst(now))
            .map_err(ClientError::Form)?;
        let new_id = new_client_id();
        let id = self.store.queue(draft, &new_id, now)?;
        if id != new_id {
            // Submitted meanwhile (another call won the race).
            return self.same_submission(draft, id);
        }
        self.outbox_changed(&id);
        Ok(id)
    }

    /// Checks the values a draft holds so far with the shared validator
    /// ([`validate_draft`]: every value present, by the server's rules; a
    /// required field still empty is not an error yet). Attached licences
    /// are checked in the shape they will be sent in. Empty if all is well.
    /// Nothing is stored: the app shows the errors while the resident fills.
    pub fn check_draft(&self, draft: &Draft) -> ClientResult<Vec<FieldError>> {
        let guide = self.guide(&draft.guide_id)?;
        if let Err(e) = validate_form_version(&guide.form, draft.form_version) {
            return Ok(vec![e]);
        }
        let values = self.shape_values(&guide, &draft.values)?;
        Ok(validate_draft(&guide.form, &values, today_cst(self.now()))
            .err()
            .unwrap_or_default())
    }

    /// `Ok(client_id)` if the submission queued under `client_id` holds
    /// exactly `draft`'s content, else [`ClientError::DraftSubmitted`].
    fn same_submission(&self, draft: &Draft, client_id: String) -> ClientResult<String> {
        let e = self
            .store
            .outbox_entry(&client_id)?
            .ok_or_else(|| ClientError::NotFound("outbox entry".into()))?;
        if e.guide_id == draft.guide_id
            && e.form_version == draft.form_version
            && e.values == draft.values
        {
            Ok(client_id)
        } else {
            Err(ClientError::DraftSubmitted { client_id })
        }
    }

    /// Corrects a rejected submission and queues it again under its id: the
    /// values are validated against the form as cached now (the guide may
    /// have changed since it was first filled).
    pub fn correct(&self, client_id: &str, values: &Map<String, Value>) -> ClientResult<()> {
        let e = self
            .store
            .outbox_entry(client_id)?
            .ok_or_else(|| ClientError::NotFound("outbox entry".into()))?;
        let guide = self.guide(&e.guide_id)?;
        let now = self.now();
        let wire = self.shape_values(&guide, values)?;
        validate_versioned_submission(&guide.form, guide.form.version, &wire, today_cst(now))
            .map_err(ClientError::Form)?;
        self.store
            .requeue(client_id, values, guide.form.version, now)?;
        self.outbox_changed(client_id);
        Ok(())
    }

    /// The outbox, newest first.
    pub fn outbox(&self) -> ClientResult<Vec<OutboxEntry>> {
        self.store.outbox()
    }

    /// The request body for an entry: the frozen one, or a new one with
    /// fresh presentations (frozen before it is sent).
    async fn wire_body(&self, e: &OutboxEntry, token: &str) -> Result<String, SendOutcome> {
        if let Some(w) = &e.wire {
            return Ok(w.clone());
        }
        let guide = self.guide(&e.guide_id).map_err(|err| match err {
            ClientError::NotFound(_) => SendOutcome::Rejected {
                code: "guide_not_cached".into(),
                details: None,
            },
            other => building_failed(&other),
        })?;
        let needs_nonce = guide.form.fields.iter().any(|f| {
            matches!(f.kind, FieldKind::LicenceRef { .. })
                && e.values
                    .get(&f.name)
                    .is_some_and(|v| WalletLicenceRef::deserialize(v).is_ok())
        });
        let nonce = if needs_nonce {
            match self.api.nonce(token, &e.client_id, &e.guide_id).await {
                Ok(n) => Some(n.nonce),
                Err(f) => return Err(classify_failure(f)),
            }
        } else {
            None
        };
        let values = match nonce.as_deref() {
            Some(n) => self.wire_values(&guide, &e.values, n).await,
            None => self.shape_values(&guide, &e.values),
        };
        let values = values.map_err(|err| building_failed(&err))?;
        let body =
            json!({"guide_id": e.guide_id, "form_version": e.form_version, "values": values})
                .to_string();
        // A body with presentations is new every time it is built (nonce,
        // `iat`): it must be durable before it leaves, so that a retry after
        // a crash sends the same bytes and gets the stored receipt. A body
        // without them is rebuilt identically (the values' keys are
        // ordered), so it costs no write.
        if needs_nonce {
            self.store
                .set_wire(&e.client_id, &body)
                .map_err(|err| building_failed(&err))?;
        }
        Ok(body)
    }

    /// Uploads every attachment the entry references (resuming each).
    async fn upload_all(&self, e: &OutboxEntry, token: &str) -> Result<(), SendOutcome> {
        let Ok(guide) = self.guide(&e.guide_id) else {
            // Without the guide no field is known to be an attachment; the
            // body step reports the missing guide.
            return Ok(());
        };
        for a in super::attachments::referenced(&guide, &e.values) {
            self.upload(token, &a).await?;
        }
        Ok(())
    }

    /// Sends one entry and stores the outcome. `None` if the entry was not
    /// due to this flush (finished meanwhile, or another flush holds it).
    async fn send_one(&self, client_id: &str) -> ClientResult<Option<(OutboxState, bool)>> {
        let Some(e) = self.store.begin_send(client_id, self.now())? else {
            return Ok(None);
        };
        self.outbox_changed(client_id);
        let outcome = match self.device() {
            // The device's identity comes from the store: a store fault
            // there is the phone's, not "not enrolled" (which `token` would
            // make of it).
            Err(err) if !matches!(err, ClientError::NotEnrolled) => building_failed(&err),
            _ => match self.token().await {
                Err(f) => classify_failure(f),
                Ok(token) => match self.upload_all(&e, &token).await {
                    Err(o) => o,
                    Ok(()) => match self.wire_body(&e, &token).await {
                        Err(o) => o,
                        Ok(body) => {
                            let raw: Value = serde_json::from_str(&body)?;
                            classify(client_id, self.api.submit(&token, client_id, &raw).await)
                        }
                    },
                },
            },
        };
        if outcome == SendOutcome::Unauthorized {
            self.session.invalidate();
        }
        let offline = matches!(&outcome, SendOutcome::Transient { code, .. } if code == "network");
        let now = self.now();
        let t = outbox::after_send(&e.view(), &outcome, now, &self.backoff, unit());
        self.store.finish_send(client_id, &t, now)?;
        if let Some(code) = &t.last_error {
            tracing::debug!(state = t.state.as_str(), code = %code, "outbox send ended");
        }
        self.outbox_changed(client_id);
        Ok(Some((t.state, offline)))
    }

    /// Sends every due entry, oldest first, until none is due. Rejected
    /// entries are skipped (they never block the rest); when the server
    /// cannot be reached the flush stops and the remaining due entries wait
    /// for the failed one's retry time. Concurrent calls run one after the
    /// other.
    pub async fn flush(&self) -> ClientResult<FlushReport> {
        let _one_at_a_time = self.flush_gate.lock().await;
        // While the personal data is locked the queue is not touched at all.
        self.store.sealer()?;
        let report = self.flush_rounds().await;
        // One disk flush for the whole batch of sends and receipts.
        self.store.make_durable(self.now())?;
        report
    }

    /// The machine's view of every pending entry.
    fn pending_views(&self) -> ClientResult<Vec<outbox::EntryView>> {
        Ok(self
            .store
            .pending()?
            .iter()
            .map(OutboxEntry::view)
            .collect())
    }

    /// The resident's "try now": like [`Client::flush`], but first makes
    /// due every entry that is waiting out its backoff (the outbox
    /// machine's [`outbox::retry_now`]), so that a resident who sees the
    /// network back need not wait for the retry time. Rejected entries stay
    /// rejected (they need [`Client::correct`]); attempts are not reset, so
    /// a new failure backs off further. [`FlushReport::retried_now`] says
    /// how many entries were brought forward.
    pub async fn flush_now(&self) -> ClientResult<FlushReport> {
        let _one_at_a_time = self.flush_gate.lock().await;
        let now = self.now();
        let views = self.pending_views()?;
        let waiting = outbox::retry_now(&views, now);
        if !waiting.is_empty() {
            self.store.make_due(&waiting, now)?;
        }
        let report = self.flush_rounds().await.map(|mut r| {
            r.retried_now = u32::try_from(waiting.len()).unwrap_or(u32::MAX);
            r
        });
        self.store.make_durable(self.now())?;
        report
    }

    async fn flush_rounds(&self) -> ClientResult<FlushReport> {
        let mut report = FlushReport::default();
        // Immediate retries are bounded per entry by the backoff policy; the
        // round bound only guards against a clock that stands still.
        for _round in 0..=self.backoff.max_immediate.saturating_add(1) {
            let now = self.now();
            let views: Vec<_> = self
                .store
                .pending()?
                .iter()
                .map(OutboxEntry::view)
                .collect();
            let p = outbox::plan(&views, now);
            if !p.expired_leases.is_empty() {
                report.recovered += u32::try_from(p.expired_leases.len()).unwrap_or(u32::MAX);
                self.store.make_due(&p.expired_leases, now)?;
            }
            report.next_attempt_at = p.wake_at;
            if p.send.is_empty() {
                break;
            }
            for (i, id) in p.send.iter().enumerate() {
                let Some((state, offline)) = self.send_one(id).await? else {
                    continue;
                };
                report.sent += 1;
                match state {
                    OutboxState::Accepted => report.accepted += 1,
                    OutboxState::Rejected => report.rejected += 1,
                    _ => report.failed += 1,
                }
                if offline {
                    report.offline = true;
                    let at = self
                        .store
                        .outbox_entry(id)?
                        .map_or(self.now(), |e| e.next_attempt_at);
                    self.store.defer(&p.send[i + 1..], at)?;
                    report.next_attempt_at = Some(at);
                    return Ok(report);
                }
            }
        }
        let views = self.pending_views()?;
        report.next_attempt_at = outbox::plan(&views, self.now()).wake_at;
        Ok(report)
    }

    /// The liveness check: if the queue is non-empty, the device is
    /// `online`, and no send was attempted for `threshold_secs` although an
    /// entry is overdue, the pending entries are made due now and the heal
    /// is reported (and logged: it is a bug somewhere). The caller flushes.
    pub fn check_liveness(&self, online: bool, threshold_secs: i64) -> ClientResult<Option<Heal>> {
        let now = self.now();
        let views = self.pending_views()?;
        let heal = outbox::liveness(
            &views,
            online,
            self.store.last_attempt_at()?,
            now,
            threshold_secs,
            &self.backoff,
        );
        if let Some(h) = &heal {
            tracing::warn!(
                entries = h.reset.len(),
                idle_secs = h.idle_secs,
                "outbox stuck while online: healed"
            );
            self.store.make_due(&h.reset, now)?;
        }
        Ok(heal)
    }
}
