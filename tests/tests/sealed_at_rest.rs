//! Personal data sealed at rest (issue 11, part 2), end to end against the
//! real server:
//!
//! - the must-show: after a full journey (enrol, sync, wallet, a draft with
//!   an ID number, an offline submit with an attached licence, a receipt, an
//!   event with a note, an attachment), the raw bytes of the store, its WAL
//!   and SHM and every file beside them that is not a key file hold none of
//!   the resident's name, ID number, address, licence claims (nor the
//!   base64url disclosures that carry them), the device private key or the
//!   data key — while controls show the scan finds what is public (guide
//!   names, tracking numbers) and that the needles are real;
//! - a store written before sealing (schema 6, plaintext rows) is sealed in
//!   place at open, scrubbed, and its queued submission goes out exactly once;
//! - a wrong or lost data key locks the personal data (typed error, queue
//!   untouched, catalog still searchable) until the right key is back, and
//!   the recovery path says exactly what is lost.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Map, Value, json};
use zhangban_core::client::api::ServerApi;
use zhangban_core::client::catalog::{CatalogStep, CatalogSync};
use zhangban_core::client::data_key::SOFTWARE_DATA_KEY_FILE;
use zhangban_core::client::keystore::HOLDER_KEY_ALIAS;
use zhangban_core::client::session::{Session, legacy_key_dir};
use zhangban_core::client::{
    Client, ClientError, ClientStore, Clock as _, DataKeyFault, DeviceIdentity, Draft,
    HolderKeystore as _, KeyHome, ManualClock, SoftwareKeystore, WalletLicenceRef,
};
use zhangban_core::credential::HolderKey;
use zhangban_core::guide::{FieldKind, Guide};
use zhangban_core::outbox::OutboxState;
use zhangban_tests::{DEMO_ACTIVATION_CODE, TestServer, fill, guide_taking, system_now};

/// The demo resident's name, ID number and spouse (server/src/setup.rs).
const NAME: &str = "张三";
const ID_NUMBER: &str = "11010519491231002X";
const SPOUSE: &str = "李四";
/// Personal text only this test writes.
const ADDRESS: &str = "广安区渠江北路88号3单元";
const NOTE: &str = "请张三携带户口簿原件到窗口核验";
const FILE_NAME: &str = "张三-身份证正反面.pdf";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && memchr::memmem::find(hay, needle).is_some()
}

/// Every file under `dir` (recursively) that is not a key file: the store,
/// its WAL, SHM and journal, and whatever else the phone wrote.
fn non_key_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                todo.push(p);
            } else if !(name.ends_with(".jwk") || name == SOFTWARE_DATA_KEY_FILE) {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    assert!(
        out.iter()
            .any(|(p, b)| p.ends_with("phone.db") && b.len() > 4096)
    );
    out
}

/// Asserts no needle is in any of `files`; returns how many bytes it scanned.
fn assert_absent(files: &[(PathBuf, Vec<u8>)], needles: &[(String, Vec<u8>)]) -> usize {
    let mut scanned = 0;
    for (path, bytes) in files {
        scanned += bytes.len();
        for (what, needle) in needles {
            assert!(
                !contains(bytes, needle),
                "{} holds {what} in the clear",
                path.display()
            );
        }
    }
    scanned
}

fn found_anywhere(files: &[(PathBuf, Vec<u8>)], needle: &[u8]) -> bool {
    files.iter().any(|(_, b)| contains(b, needle))
}

/// The private key and the data key beside the store, as needles (raw,
/// base64url and hex forms).
fn secret_needles(path: &Path) -> Vec<(String, Vec<u8>)> {
    let keys = legacy_key_dir(path);
    let jwk: Value =
        serde_json::from_str(&std::fs::read_to_string(keys.join("zhangban-holder.jwk")).unwrap())
            .unwrap();
    let d = jwk["d"].as_str().unwrap().to_owned();
    let d_raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&d)
        .unwrap();
    let data_key = std::fs::read(keys.join(SOFTWARE_DATA_KEY_FILE)).unwrap();
    assert_eq!(data_key.len(), 32);
    vec![
        ("the device private key (JWK d)".into(), d.into_bytes()),
        ("the device private key (raw)".into(), d_raw),
        ("the data key (raw)".into(), data_key.clone()),
        (
            "the data key (base64url)".into(),
            b64(&data_key).into_bytes(),
        ),
        ("the data key (hex)".into(), hex(&data_key).into_bytes()),
    ]
}

/// A cached guide with a required attachment field (PDF accepted) whose
/// other required fields [`fill`] can fill.
fn guide_with_attachment(client: &Client, now: i64) -> (Guide, String) {
    for g in zhangban_core::guide::demo_catalog(zhangban_server::setup::FIXTURE, now).unwrap() {
        let Ok(g) = client.guide(&g.id) else { continue };
        let field = g.form.fields.iter().find(|f| {
            f.required
                && matches!(&f.kind, FieldKind::Attachment { media_types, .. } if media_types.iter().any(|t| t == "application/pdf"))
        });
        let Some(field) = field.map(|f| f.name.clone()) else {
            continue;
        };
        let mut probe = g.clone();
        probe.form.fields.retain(|f| f.name != field);
        if fill(&probe, now).is_some() {
            return (g, field);
        }
    }
    panic!("no guide takes a PDF attachment");
}

fn draft(id: &str, g: &Guide, values: Map<String, Value>, now: i64) -> Draft {
    Draft {
        id: id.into(),
        guide_id: g.id.clone(),
        form_version: g.form.version,
        values,
        created_at: now,
        updated_at: now,
    }
}

/// An operator call (POST with the token of the operator whose role the
/// path needs); asserts success.
async fn operator_post(server: &TestServer, path: &str, body: Value) {
    let resp = reqwest::Client::new()
        .post(server.url(path))
        .bearer_auth(server.operator_token_for(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
}

/// The attachment's bytes: a PDF-looking header naming the resident, then
/// seeded pseudo-random bytes (seed printed on failure).
fn scan_bytes(seed: u64) -> Vec<u8> {
    use rand::{RngCore as _, SeedableRng as _};
    let mut data = format!("%PDF-1.4\n% {NAME} {ID_NUMBER}\n").into_bytes();
    let mut rest = vec![0u8; 8192];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut rest);
    data.extend_from_slice(&rest);
    data
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_full_journey_no_personal_data_or_key_is_readable_in_the_phones_files() {
    let seed = system_now().unsigned_abs();
    println!("attachment seed {seed}");
    let mut server = TestServer::start_demo().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.db");
    let clock = Arc::new(ManualClock::new(system_now()));
    let phone = server.open_client(&path, clock.clone()).await;
    phone.enrol(DEMO_ACTIVATION_CODE).await.unwrap();
    let synced = phone.sync().await.unwrap();
    assert_eq!(synced.wallet.as_ref().map(|w| w.received), Some(3));
    let now = clock.now();

    // A draft with an ID number and an address, kept (not submitted).
    let (any_guide, _) = guide_with_attachment(&phone, now);
    let mut values = Map::new();
    values.insert("applicant_name".into(), json!(NAME));
    values.insert("id_number".into(), json!(ID_NUMBER));
    values.insert("address".into(), json!(ADDRESS));
    phone
        .save_draft(&draft("kept-draft", &any_guide, values, now))
        .unwrap();

    // An offline submit with an attached licence: queued while the server
    // is down, sent when it is back.
    let wallet = phone.wallet().unwrap();
    let business = wallet
        .iter()
        .find(|l| l.claims.contains_key("legal_representative"))
        .unwrap()
        .clone();
    let (lg, lfield) = guide_taking(&phone, &business.vct, now);
    let mut probe = lg.clone();
    probe.form.fields.retain(|f| f.name != lfield);
    let mut lvalues = fill(&probe, now).unwrap();
    lvalues.insert(
        lfield.clone(),
        serde_json::to_value(WalletLicenceRef {
            wallet_licence: business.licence_id.clone(),
            disclose: vec!["licence_name".into(), "holder_name".into()],
        })
        .unwrap(),
    );
    server.stop().await;
    let licence_sub = phone
        .submit(&draft("licence-draft", &lg, lvalues, now))
        .unwrap();
    let offline = phone.flush().await.unwrap();
    assert!(offline.offline, "{offline:?}");
    server.restart().await;
    // Past the backoff, within the presentation time skew the server allows.
    clock.advance(120);

    // An attachment (a scanned proof) in another submission.
    let (ag, afield) = guide_with_attachment(&phone, now);
    let scan = scan_bytes(seed);
    let aref = phone
        .attach_file(&scan, "application/pdf", FILE_NAME)
        .unwrap();
    let mut probe = ag.clone();
    probe.form.fields.retain(|f| f.name != afield);
    let mut avalues = fill(&probe, now).unwrap();
    avalues.insert(afield, serde_json::to_value(&aref).unwrap());
    let attachment_sub = phone
        .submit(&draft("attachment-draft", &ag, avalues, now))
        .unwrap();
    let sent = phone.flush().await.unwrap();
    assert_eq!(
        sent.accepted,
        2,
        "seed {seed}: {sent:?} {:?}",
        phone
            .outbox()
            .unwrap()
            .iter()
            .map(|e| (&e.last_error, &e.errors))
            .collect::<Vec<_>>()
    );

    // Receipts, and an event whose note names the resident.
    let entry = phone.store().outbox_entry(&licence_sub).unwrap().unwrap();
    assert_eq!(entry.state, OutboxState::Accepted);
    let tracking = entry.tracking_number.clone().unwrap();
    operator_post(
        &server,
        &format!("/v1/operator/submissions/{tracking}/transition"),
        json!({"state": "accepted", "note": NOTE}),
    )
    .await;
    phone.sync_events().await.unwrap();
    let timeline = phone.store().timeline(&licence_sub).unwrap();
    assert!(timeline.iter().any(|e| e.note.as_deref() == Some(NOTE)));
    let wire = entry.wire.clone().unwrap();
    assert_eq!(
        phone.store().attachment_data(&aref.sha256).unwrap(),
        Some(scan.clone())
    );

    // The needles, each checked to be real: present in the plaintext the
    // phone handled (so the scan below would find them if it were stored
    // in the clear) and absent from a catalog-only store (so it is not
    // public data).
    let mut needles: Vec<(String, Vec<u8>)> = vec![
        ("the resident's name".into(), NAME.into()),
        ("the resident's ID number".into(), ID_NUMBER.into()),
        ("the spouse's name".into(), SPOUSE.into()),
        ("the draft's address".into(), ADDRESS.into()),
        ("the event's note".into(), NOTE.into()),
        ("the attachment's name".into(), FILE_NAME.into()),
        ("the attachment's bytes".into(), scan[200..264].to_vec()),
    ];
    let copies = phone.store().licences().unwrap();
    assert_eq!(copies.len(), 3);
    for (licence_id, _vct, sd_jwt, _) in &copies {
        needles.push(("a licence id".into(), licence_id.clone().into_bytes()));
        let parts: Vec<&str> = sd_jwt.split('~').collect();
        needles.push(("a licence's issuer JWT".into(), parts[0].into()));
        for d in parts[1..].iter().filter(|d| !d.is_empty()) {
            needles.push((
                "a licence disclosure (base64url)".into(),
                d.as_bytes().to_vec(),
            ));
        }
    }
    let claim_values: Vec<String> = wallet
        .iter()
        .flat_map(|l| l.claims.values())
        .filter_map(|v| v.as_str().map(str::to_owned))
        .filter(|v| v.len() >= 6)
        .collect();
    assert!(
        claim_values.iter().any(|v| v == NAME) && claim_values.iter().any(|v| v == ID_NUMBER),
        "the wallet's claims carry the name and ID number: {claim_values:?}"
    );
    // Public control: a catalog-only phone of the same server.
    let control_dir = tempfile::tempdir().unwrap();
    let control = server
        .open_client(&control_dir.path().join("phone.db"), clock.clone())
        .await;
    control.sync_catalog().await.unwrap();
    drop(control);
    let public = non_key_files(control_dir.path());
    let mut public_claims = 0;
    for v in claim_values {
        if found_anywhere(&public, v.as_bytes()) {
            public_claims += 1; // a licence or issuer name also in the catalog
        } else {
            needles.push(("a licence claim".into(), v.into_bytes()));
        }
    }
    for (what, n) in &needles {
        assert!(!found_anywhere(&public, n), "{what} is public data");
    }
    // The presentation sent with the submission carries the holder's name
    // in a disclosure: that disclosure is among the needles.
    assert!(
        needles
            .iter()
            .any(|(w, n)| w.contains("disclosure") && contains(wire.as_bytes(), n)),
        "the frozen request holds a disclosure of the wallet copy"
    );
    needles.extend(secret_needles(&path));

    // Scan while the client is open (the WAL holds the latest frames) and
    // again after it closed.
    let open_files = non_key_files(dir.path());
    assert!(
        open_files
            .iter()
            .any(|(p, b)| p.ends_with("phone.db-wal") && !b.is_empty()),
        "the WAL is scanned while it has frames"
    );
    let scanned = assert_absent(&open_files, &needles);
    // Controls: public data and the plaintext-by-design tracking number are
    // found by the same scan.
    let guide_name = lg.name.as_bytes();
    assert!(
        found_anywhere(&open_files, guide_name),
        "guide names are plaintext"
    );
    assert!(
        found_anywhere(&open_files, tracking.as_bytes()),
        "tracking numbers are plaintext"
    );
    // The personal columns hold sealed values (version 1 BLOBs).
    {
        let db = rusqlite::Connection::open(&path).unwrap();
        for (sql, what) in [
            ("SELECT sd_jwt FROM wallet", "wallet copy"),
            ("SELECT body FROM drafts", "draft body"),
            (
                "SELECT wire FROM outbox WHERE wire IS NOT NULL",
                "frozen request",
            ),
            (
                "SELECT note FROM status_events WHERE note IS NOT NULL",
                "event note",
            ),
            ("SELECT data FROM attachments", "attachment"),
        ] {
            let blobs: Vec<Vec<u8>> = db
                .prepare(sql)
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(!blobs.is_empty(), "{what}");
            assert!(blobs.iter().all(|b| b[0] == 1), "{what} is sealed");
        }
    }
    println!(
        "sealed at rest: {} needles ({public_claims} public claim values skipped), {scanned} bytes scanned, {} files",
        needles.len(),
        open_files.len()
    );
    let _ = attachment_sub;
    drop(phone);
    let closed_files = non_key_files(dir.path());
    assert_absent(&closed_files, &needles);
}

/// Enrols a software P-256 key with the API and records it in `store`'s
/// meta as the version before sealing did.
async fn enrol_raw(
    store: &ClientStore,
    api: &ServerApi,
    keys: &SoftwareKeystore,
) -> DeviceIdentity {
    let jwk: Value =
        serde_json::from_str(&keys.create_key(HOLDER_KEY_ALIAS.into()).await.unwrap()).unwrap();
    let out = api.enrol(DEMO_ACTIVATION_CODE, &jwk, None).await.unwrap();
    let d = DeviceIdentity {
        key: HolderKey::from_jwk(&jwk).unwrap(),
        alias: HOLDER_KEY_ALIAS.into(),
        home: KeyHome::App,
        device_id: out.device_id,
        resident_id: out.resident_id,
    };
    store.set_device(&d).unwrap();
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_written_before_sealing_is_sealed_in_place_and_its_queue_goes_out_once() {
    let server = TestServer::start_demo().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.db");
    let clock = Arc::new(ManualClock::new(system_now()));
    let now = clock.now();
    let api = ServerApi::new(&server.base).unwrap();

    // A store as the version before sealing left it (schema 6): the
    // catalog, an enrolment, the wallet, a queued submission, an accepted
    // one with its receipt and an event, a kept attachment — all plaintext.
    let (client_id, licence_ids) = {
        let store = ClientStore::open_at_version(&path, 6).unwrap();
        let mut sync = CatalogSync::new(0, 500);
        while let CatalogStep::Fetch { since, limit } = sync.next_step() {
            let (page, wire) = api.catalog_changes(since, limit).await.unwrap();
            let batch = sync.check(&page).unwrap();
            store.apply_catalog(&batch).unwrap();
            sync.applied(&batch, page.more, page.head, wire);
        }
        let keys = SoftwareKeystore::beside(&path).unwrap();
        let device = enrol_raw(&store, &api, &keys).await;
        let token = Session::default()
            .token(&api, &device, &keys, now)
            .await
            .unwrap();
        let entries = api.wallet(&token).await.unwrap();
        let db = rusqlite::Connection::open(&path).unwrap();
        for e in &entries {
            db.execute(
                "INSERT INTO wallet(licence_id, vct, sd_jwt, issued_at, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![e.licence_id, e.vct, e.sd_jwt, e.issued_at, now],
            )
            .unwrap();
        }
        let guide = zhangban_tests::fillable_guides_in(&store, now)
            .into_iter()
            .next()
            .unwrap();
        let values = fill(&guide, now).unwrap();
        let body = Value::Object(values.clone()).to_string();
        let mut kept = values;
        kept.insert("address".into(), json!(ADDRESS));
        let kept = Value::Object(kept).to_string();
        db.execute(
            "INSERT INTO drafts(id, guide_id, form_version, body, created_at, updated_at)
             VALUES ('kept-draft', ?1, ?2, ?3, ?4, ?4)",
            rusqlite::params![guide.id, guide.form.version, kept, now],
        )
        .unwrap();
        for (draft_id, client_id, state) in [
            ("queued-draft", "queued-before-sealing", "queued"),
            ("accepted-draft", "accepted-before-sealing", "accepted"),
        ] {
            db.execute(
                "INSERT INTO drafts(id, guide_id, form_version, body, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                rusqlite::params![draft_id, guide.id, guide.form.version, body, now],
            )
            .unwrap();
            db.execute(
                "INSERT INTO outbox(client_id, draft_id, guide_id, form_version, body, state,
                     attempts, next_attempt_at, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?7, ?7)",
                rusqlite::params![
                    client_id,
                    draft_id,
                    guide.id,
                    guide.form.version,
                    body,
                    state,
                    now
                ],
            )
            .unwrap();
        }
        db.execute(
            "INSERT INTO receipts(client_id, tracking_number, guide_id, accepted_at, state)
             VALUES ('accepted-before-sealing', 'ZB-OLD-0001', ?1, ?2, 'accepted')",
            rusqlite::params![guide.id, now],
        )
        .unwrap();
        db.execute(
            "INSERT INTO status_events(seq, client_id, tracking_number, state, note, at)
             VALUES (1, 'accepted-before-sealing', 'ZB-OLD-0001', 'accepted', ?1, ?2)",
            rusqlite::params![NOTE, now],
        )
        .unwrap();
        db.execute(
            "INSERT INTO attachments(sha256, size, media_type, name, data, created_at)
             VALUES ('00', 4, 'application/pdf', ?1, ?2, ?3)",
            rusqlite::params![FILE_NAME, scan_bytes(7), now],
        )
        .unwrap();
        (
            "queued-before-sealing".to_owned(),
            entries
                .iter()
                .map(|e| e.licence_id.clone())
                .collect::<Vec<_>>(),
        )
    };
    let files = non_key_files(dir.path());
    for premise in [
        NAME.as_bytes(),
        ID_NUMBER.as_bytes(),
        ADDRESS.as_bytes(),
        NOTE.as_bytes(),
    ] {
        assert!(
            found_anywhere(&files, premise),
            "the old store is plaintext (the premise)"
        );
    }

    // Opening it with this version seals it in place.
    let phone = server.open_client(&path, clock.clone()).await;
    assert_eq!(
        phone.store().schema_version().unwrap(),
        zhangban_core::client::store::MIGRATIONS.len(),
        "upgraded to the newest schema"
    );
    assert_eq!(phone.personal_data_state(), Ok(()));
    let mut needles: Vec<(String, Vec<u8>)> = vec![
        ("the resident's name".into(), NAME.into()),
        ("the resident's ID number".into(), ID_NUMBER.into()),
        ("the draft's address".into(), ADDRESS.into()),
        ("the event's note".into(), NOTE.into()),
        ("the attachment's name".into(), FILE_NAME.into()),
        (
            "the attachment's bytes".into(),
            scan_bytes(7)[200..264].to_vec(),
        ),
    ];
    for id in &licence_ids {
        needles.push(("a licence id".into(), id.clone().into_bytes()));
    }
    needles.extend(secret_needles(&path));
    assert_absent(&non_key_files(dir.path()), &needles);

    // Everything reads back.
    phone.sync_trust().await.unwrap();
    let wallet = phone.wallet().unwrap();
    let mut ids: Vec<String> = wallet.iter().map(|l| l.licence_id.clone()).collect();
    ids.sort();
    let mut want = licence_ids.clone();
    want.sort();
    assert_eq!(ids, want);
    assert_eq!(phone.store().drafts().unwrap().len(), 3);
    let kept = phone.store().draft("kept-draft").unwrap().unwrap();
    assert_eq!(kept.values["address"], json!(ADDRESS));
    assert_eq!(
        phone.store().timeline("accepted-before-sealing").unwrap()[0]
            .note
            .as_deref(),
        Some(NOTE)
    );
    assert_eq!(
        phone.store().attachment_data("00").unwrap(),
        Some(scan_bytes(7))
    );
    let e = phone.store().outbox_entry(&client_id).unwrap().unwrap();
    assert_eq!(e.state, OutboxState::Queued);

    // The queued submission goes out exactly once.
    let r = phone.flush().await.unwrap();
    assert_eq!((r.sent, r.accepted), (1, 1), "{r:?}");
    let again = phone.flush().await.unwrap();
    assert_eq!((again.sent, again.accepted), (0, 0), "{again:?}");
    let stored = server.submissions();
    assert_eq!(
        stored
            .iter()
            .filter(|s| s.receipt.client_id == client_id)
            .count(),
        1,
        "exactly once on the server"
    );
    drop(phone);
    // Reopened: no second sealing, same data.
    let phone = server.open_client(&path, clock.clone()).await;
    assert_eq!(phone.wallet().unwrap().len(), licence_ids.len());
    assert_absent(&non_key_files(dir.path()), &needles);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_lost_data_key_locks_personal_data_and_the_reset_says_what_is_lost() {
    let server = TestServer::start_demo().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.db");
    let key_file = legacy_key_dir(&path).join(SOFTWARE_DATA_KEY_FILE);
    let clock = Arc::new(ManualClock::new(system_now()));
    let now = clock.now();
    let queued = {
        let phone = server.open_client(&path, clock.clone()).await;
        phone.enrol(DEMO_ACTIVATION_CODE).await.unwrap();
        phone.sync().await.unwrap();
        let guide = zhangban_tests::fillable_guides(&phone, now)
            .into_iter()
            .next()
            .unwrap();
        phone
            .submit(&draft("d1", &guide, fill(&guide, now).unwrap(), now))
            .unwrap()
    };
    let right_key = std::fs::read(&key_file).unwrap();
    let outbox_row = || {
        let db = rusqlite::Connection::open(&path).unwrap();
        db.query_row(
            "SELECT state, attempts, next_attempt_at, updated_at, body FROM outbox",
            [],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Vec<u8>>(4)?,
                ))
            },
        )
        .unwrap()
    };
    let before = outbox_row();

    // Another key (e.g. a backup of another device's key store).
    std::fs::write(&key_file, [9u8; 32]).unwrap();
    let phone = server.open_client(&path, clock.clone()).await;
    assert_eq!(phone.personal_data_state(), Err(DataKeyFault::WrongKey));
    for e in [
        phone.wallet().map(|_| ()),
        phone.flush().await.map(|_| ()),
        phone.store().drafts().map(|_| ()),
        phone.outbox().map(|_| ()),
        phone.store().delete_draft("d1"),
    ] {
        assert!(
            matches!(e, Err(ClientError::DataKey(DataKeyFault::WrongKey))),
            "{e:?}"
        );
    }
    // The catalog still works; the queue is untouched.
    assert!(!phone.search("社保", 5).unwrap().is_empty());
    assert_eq!(outbox_row(), before);
    // A wrong length is a wrong key too, not a panic.
    std::fs::write(&key_file, [9u8; 5]).unwrap();
    assert_eq!(
        phone.unlock().await.unwrap_err().to_string(),
        "data key: wrong_key"
    );

    // The right key comes back: unlocked, the queue goes out once.
    std::fs::write(&key_file, &right_key).unwrap();
    phone.unlock().await.unwrap();
    let r = phone.flush().await.unwrap();
    assert_eq!(r.accepted, 1, "{r:?}");
    assert_eq!(
        server
            .submissions()
            .iter()
            .filter(|s| s.receipt.client_id == queued)
            .count(),
        1
    );
    let guide = zhangban_tests::fillable_guides(&phone, now)
        .into_iter()
        .next()
        .unwrap();
    let unsent = phone
        .submit(&draft("d2", &guide, fill(&guide, now).unwrap(), now))
        .unwrap();
    drop(phone);

    // The key is lost (the app's key store was wiped).
    std::fs::remove_file(&key_file).unwrap();
    let phone = server.open_client(&path, clock.clone()).await;
    assert_eq!(phone.personal_data_state(), Err(DataKeyFault::Missing));
    assert!(matches!(
        phone.wallet(),
        Err(ClientError::DataKey(DataKeyFault::Missing))
    ));
    assert!(
        !key_file.exists(),
        "no new key replaced the lost one on its own"
    );
    // The recovery path: exactly what is lost, then enrol and sync again.
    let report = phone.reset_personal_data().await.unwrap();
    assert_eq!(report.unsent, vec![unsent]);
    assert_eq!((report.drafts, report.receipts, report.licences), (2, 1, 3));
    assert!(key_file.exists());
    assert_eq!(phone.personal_data_state(), Ok(()));
    assert!(phone.outbox().unwrap().is_empty());
    assert!(matches!(phone.device(), Err(ClientError::NotEnrolled)));
    assert!(!phone.search("社保", 5).unwrap().is_empty(), "catalog kept");
    phone.enrol(DEMO_ACTIVATION_CODE).await.unwrap();
    let s = phone.sync().await.unwrap();
    assert_eq!(s.wallet.map(|w| w.received), Some(3));
    assert!(s.events >= 1, "the accepted submission's events come back");
    drop(phone);
    // And the new key opens it next time.
    let phone = server.open_client(&path, clock.clone()).await;
    assert_eq!(phone.wallet().unwrap().len(), 3);
}
