//! Holder keys out of the database (issue 11), end to end against the real
//! server: a store written by the previous schema version (an Ed25519
//! private JWK in meta `device_key`, a queued submission) is upgraded in
//! place: the key moves into the software keystore file (0600 in a 0700
//! directory) and out of the database, the queued submission goes out
//! exactly once, signed from the file; then the device re-enrols to a new
//! P-256 key, gets fresh copies bound to it, shows one with ES256, and the
//! old key is gone from the phone and retired on the server: a copy of it
//! gets no token and cannot re-enrol. The phone's files are private (0600 /
//! 0700).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use zhangban_core::client::api::{ApiFailure, ServerApi};
use zhangban_core::client::session::legacy_key_dir;
use zhangban_core::client::{Clock as _, Draft, KeyHome, ManualClock};
use zhangban_core::credential::jose::b64e;
use zhangban_core::credential::{HeldLicence, KeyPair};
use zhangban_tests::{DEMO_ACTIVATION_CODE, TestServer, fill, system_now};

#[cfg(unix)]
fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_ed25519_key_moves_out_of_the_database_and_the_device_reenrols_to_p256() {
    let server = TestServer::start_demo().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.db");
    let clock = Arc::new(ManualClock::new(system_now()));
    let legacy = KeyPair::generate(&mut rand::rngs::OsRng);
    let secret = legacy.to_private_jwk()["d"].as_str().unwrap().to_owned();

    // A store as the previous version left it: enrolled with an Ed25519 key
    // kept in meta `device_key`, and a submission queued offline.
    let client_id = {
        let c = server.open_client(&path, clock.clone()).await;
        c.sync_catalog().await.unwrap();
        let api = ServerApi::new(&server.base).unwrap();
        let out = api
            .enrol(DEMO_ACTIVATION_CODE, &legacy.public().to_jwk(), None)
            .await
            .unwrap();
        let db = rusqlite::Connection::open(&path).unwrap();
        for (k, v) in [
            ("device_key", legacy.to_private_jwk().to_string()),
            ("device_id", out.device_id.clone()),
            ("resident_id", out.resident_id.clone()),
        ] {
            db.execute("INSERT INTO meta(key, value) VALUES (?1, ?2)", [k, &v])
                .unwrap();
        }
        drop(db);
        let guide = zhangban_tests::fillable_guides(&c, clock.now())
            .into_iter()
            .next()
            .unwrap();
        let now = clock.now();
        let draft = Draft {
            id: "queued-before-the-upgrade".into(),
            guide_id: guide.id.clone(),
            form_version: guide.form.version,
            values: fill(&guide, now).unwrap(),
            created_at: now,
            updated_at: now,
        };
        c.submit(&draft).unwrap()
    };
    assert!(
        std::fs::read(&path)
            .unwrap()
            .windows(secret.len())
            .any(|w| w == secret.as_bytes())
            || std::fs::read(dir.path().join("phone.db-wal"))
                .unwrap_or_default()
                .windows(secret.len())
                .any(|w| w == secret.as_bytes()),
        "the old store does hold the private key (the test's premise)"
    );

    // Opening it with this version migrates the key.
    let phone = server.open_client(&path, clock.clone()).await;
    assert!(!phone.store().has_legacy_private_key().unwrap());
    let device = phone.device().unwrap();
    assert_eq!(device.home, KeyHome::LegacySoftware);
    assert_eq!(device.device_id, legacy.public().thumbprint());
    let key_file = legacy_key_dir(&path).join("legacy-ed25519-device.jwk");
    let text = std::fs::read_to_string(&key_file).unwrap();
    assert!(text.contains(&secret));
    // Nothing of the private key is left in the database files (the
    // migration rewrote them: no free page or WAL frame keeps the row).
    for f in ["phone.db", "phone.db-wal"] {
        let bytes = std::fs::read(dir.path().join(f)).unwrap_or_default();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{f} still holds the private key"
        );
    }

    // The queued submission goes out exactly once (the token is signed
    // from the key file).
    let r = phone.flush().await.unwrap();
    assert_eq!(r.accepted, 1, "{r:?}");
    let again = phone.flush().await.unwrap();
    assert_eq!((again.sent, again.accepted), (0, 0), "{again:?}");
    let entry = phone.outbox().unwrap().into_iter().next().unwrap();
    assert_eq!(entry.client_id, client_id);
    assert!(entry.tracking_number.is_some());
    // The legacy device still gets its licences (bound to its Ed25519 key).
    phone.sync_trust().await.unwrap();
    let w = phone.sync_wallet().await.unwrap();
    assert!(w.received > 0, "{w:?}");

    // Re-enrolment to a new P-256 key: fresh copies bound to it.
    let new = phone
        .reenrol(DEMO_ACTIVATION_CODE, "zhangban-holder-hw")
        .await
        .unwrap();
    assert_eq!(new.home, KeyHome::App);
    assert_eq!(new.key.alg(), "ES256");
    assert_ne!(new.device_id, device.device_id);
    assert!(!key_file.exists(), "the old key is deleted from the phone");
    // A copy of the old key (a backup taken before, a file copied off the
    // phone) can no longer get a token: the server retired the old device
    // with the re-enrolment (ADR 0125). It is asked for a challenge and,
    // given one from before, for a token: both refused.
    let api = ServerApi::new(&server.base).unwrap();
    match api.challenge(&device.device_id).await {
        Err(ApiFailure::Http { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (403, "device_retired"));
        }
        other => panic!("a retired device got {other:?}"),
    }
    // Nor can it move the resident to a key of its own choosing.
    let thief = zhangban_core::credential::P256KeyPair::generate(&mut rand::rngs::OsRng);
    let thief_key = zhangban_core::credential::HolderSigner::holder_key(&thief);
    let msg =
        zhangban_core::credential::reenrolment_message(&device.device_id, &thief_key.thumbprint());
    let copied = zhangban_core::credential::SoftwareHolderKey::Ed25519(
        KeyPair::from_private_jwk(&legacy.to_private_jwk()).unwrap(),
    );
    let sig =
        b64e(zhangban_core::credential::HolderSigner::sign_raw(&copied, msg.as_bytes()).unwrap());
    match api
        .enrol(
            DEMO_ACTIVATION_CODE,
            &thief_key.to_jwk(),
            Some(&(device.device_id.clone(), sig)),
        )
        .await
    {
        Err(ApiFailure::Http { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (403, "reenrolment_refused"));
        }
        other => panic!("a retired key re-enrolled: {other:?}"),
    }
    phone.sync_wallet().await.unwrap();
    let wallet = phone.wallet().unwrap();
    assert!(!wallet.is_empty());
    let licence = &wallet[0];
    let shown = phone
        .show(&licence.licence_id, &["licence_name"], None)
        .await
        .unwrap();
    let kb = shown.presentation.rsplit('~').next().unwrap();
    assert!(kb.starts_with(&b64e(r#"{"alg":"ES256""#)[..10]), "{kb}");
    let held =
        HeldLicence::parse(&shown.presentation[..shown.presentation.rfind('~').unwrap() + 1])
            .unwrap();
    assert_eq!(held.holder_key(), Some(new.key.clone()));
    let verdict = phone.inspect(&shown.frame, None).unwrap();
    assert!(verdict.valid, "{verdict:?}");

    // The phone's files are private.
    #[cfg(unix)]
    {
        assert_eq!(mode(&path), 0o600);
        for f in ["phone.db-wal", "phone.db-shm"] {
            let p = dir.path().join(f);
            if p.exists() {
                assert_eq!(mode(&p), 0o600, "{f}");
            }
        }
        let keys = legacy_key_dir(&path);
        assert_eq!(mode(&keys), 0o700);
        let hw = keys.join("zhangban-holder-hw.jwk");
        assert_eq!(mode(&hw), 0o600);
    }
}
