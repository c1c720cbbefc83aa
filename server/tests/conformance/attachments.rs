//! [`AttachmentStore`]: resumable, hash-checked uploads, and the content
//! submissions reference. (Moved from `tests/store.rs`, where they ran
//! against SQLite alone.)

use sha2::{Digest as _, Sha256};
use zhangban_server::state::sha256_hex;
use zhangban_server::store::prelude::*;
use zhangban_server::store::{
    AttachmentLink, AttachmentStore, ChunkOutcome, ChunkVerdict, StoreError, UploadStart,
};

use super::{Backend, submission};

pub fn link(field: &str, bytes: &[u8]) -> AttachmentLink {
    AttachmentLink {
        field: field.to_owned(),
        sha256: sha256_hex(bytes),
        size: bytes.len() as u64,
        media_type: "application/pdf".to_owned(),
        name: "scan.pdf".to_owned(),
    }
}

/// Uploads `bytes` in one chunk (no verdict: the store hashes).
pub fn upload_all(store: &impl AttachmentStore, resident: &str, bytes: &[u8]) {
    let sha = sha256_hex(bytes);
    store
        .begin_upload(resident, &sha, bytes.len() as u64, "application/pdf", 0)
        .unwrap();
    match store.put_chunk(resident, &sha, 0, bytes, None, 0).unwrap() {
        ChunkOutcome::Completed(u) => assert!(u.complete),
        other => panic!("{other:?}"),
    }
}

pub fn chunks_append_at_the_end_and_the_last_is_hash_checked<B: Backend>(b: &B) {
    let store = b.open();
    let file: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let sha = sha256_hex(&file);
    assert!(matches!(
        store.put_chunk("r1", &sha, 0, &file, None, 0),
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .begin_upload("r1", &sha, 1000, "image/png", 0)
            .unwrap(),
        UploadStart::Created(_)
    ));
    let put = |offset: usize, end: usize, verdict| {
        store
            .put_chunk("r1", &sha, offset as u64, &file[offset..end], verdict, 0)
            .unwrap()
    };
    assert!(matches!(put(0, 400, None), ChunkOutcome::Appended(u) if u.received == 400));
    assert!(matches!(put(0, 400, None), ChunkOutcome::Unchanged(u) if u.received == 400));
    assert!(matches!(put(100, 200, None), ChunkOutcome::Unchanged(u) if u.received == 400));
    assert!(matches!(put(500, 600, None), ChunkOutcome::OffsetMismatch(u) if u.received == 400));
    assert!(matches!(put(300, 500, None), ChunkOutcome::OffsetMismatch(u) if u.received == 400));
    let mut long = file[400..].to_vec();
    long.push(0);
    assert!(matches!(
        store.put_chunk("r1", &sha, 400, &long, None, 0).unwrap(),
        ChunkOutcome::BeyondSize(_)
    ));
    assert!(matches!(
        store
            .put_chunk("r1", &sha, u64::MAX, &file[..1], None, 0)
            .unwrap(),
        ChunkOutcome::BeyondSize(_)
    ));

    // The caller's verdict for the current generation and stored length is
    // used as it is: a "no" drops every byte and starts a new generation.
    let (u, _) = store.upload_digest("r1", &sha).unwrap().unwrap();
    assert_eq!((u.generation, u.received), (0, 400));
    let no = ChunkVerdict {
        generation: 0,
        received: 400,
        matches: false,
    };
    match put(400, 1000, Some(no)) {
        ChunkOutcome::HashMismatch(u) => assert_eq!((u.received, u.generation), (0, 1)),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.upload("r1", &sha).unwrap().unwrap().received, 0);
    // A verdict for another generation or another stored length is ignored:
    // the store hashes the bytes itself (here they match).
    assert!(matches!(put(0, 400, None), ChunkOutcome::Appended(_)));
    let stale = ChunkVerdict {
        generation: 0,
        received: 400,
        matches: false,
    };
    match put(400, 1000, Some(stale)) {
        ChunkOutcome::Completed(u) => assert!(u.complete && u.received == 1000),
        other => panic!("{other:?}"),
    }
    let (u, bytes) = store.upload_content("r1", &sha).unwrap().unwrap();
    assert!(u.complete);
    assert_eq!(bytes.unwrap(), file);
    // The digest is of every stored byte.
    let (_, digest) = store.upload_digest("r1", &sha).unwrap().unwrap();
    assert_eq!(sha256_hex(&file), hex(&digest.finalize()));
    assert_eq!(
        sha256_hex(&file),
        hex(&Sha256::digest(&file)),
        "the helper agrees"
    );

    // Complete: a retry is unchanged, another size a conflict.
    assert!(matches!(put(400, 1000, None), ChunkOutcome::Unchanged(u) if u.complete));
    assert!(matches!(
        store.begin_upload("r1", &sha, 999, "image/png", 0).unwrap(),
        UploadStart::Conflict(u) if u.size == 1000
    ));
    // Another resident's upload of the same content is theirs alone.
    assert!(store.upload("r2", &sha).unwrap().is_none());
    assert!(
        store
            .uploads("r2", std::slice::from_ref(&sha))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .uploads("r1", std::slice::from_ref(&sha))
            .unwrap()
            .len(),
        1
    );
}

pub fn a_wrong_verdict_cannot_complete_other_bytes<B: Backend>(b: &B) {
    // A verdict computed over a shorter prefix (a racing request appended
    // meanwhile) must not be applied to the longer one.
    let store = b.open();
    let file: Vec<u8> = (0..100u8).collect();
    let sha = sha256_hex(&file);
    store.begin_upload("r1", &sha, 100, "image/png", 0).unwrap();
    store
        .put_chunk("r1", &sha, 0, &file[..50], None, 0)
        .unwrap();
    let lying = ChunkVerdict {
        generation: 0,
        received: 40,
        matches: false,
    };
    match store
        .put_chunk("r1", &sha, 50, &file[50..], Some(lying), 0)
        .unwrap()
    {
        ChunkOutcome::Completed(u) => assert!(u.complete),
        other => panic!("{other:?}"),
    }
    // And a store-side hash of wrong bytes restarts the upload.
    let other: Vec<u8> = (0..100u8).rev().collect();
    let sha2 = sha256_hex(&other);
    store
        .begin_upload("r1", &sha2, 100, "image/png", 0)
        .unwrap();
    match store.put_chunk("r1", &sha2, 0, &file, None, 0).unwrap() {
        ChunkOutcome::HashMismatch(u) => assert_eq!((u.received, u.generation), (0, 1)),
        other => panic!("{other:?}"),
    }
    // An incomplete upload declared with another size restarts too.
    store
        .put_chunk("r1", &sha2, 0, &other[..10], None, 0)
        .unwrap();
    match store.begin_upload("r1", &sha2, 90, "image/png", 0).unwrap() {
        UploadStart::Restarted(u) => assert_eq!((u.received, u.size, u.generation), (0, 90, 2)),
        other => panic!("{other:?}"),
    }
}

pub fn a_submission_needs_complete_uploads_and_stores_nothing_otherwise<B: Backend>(b: &B) {
    let store = b.open();
    let file = b"scan bytes".to_vec();
    let sha = sha256_hex(&file);
    store
        .begin_upload("r1", &sha, 10, "application/pdf", 0)
        .unwrap();
    store.put_chunk("r1", &sha, 0, &file[..5], None, 0).unwrap();
    let mut s = submission("client-0001", "r1", "{}");
    s.attachments = vec![link("scan", &file)];
    assert!(matches!(store.submit(&s), Err(StoreError::InvalidState(_))));
    assert!(store.receipt("client-0001").unwrap().is_none());
    assert!(store.submissions_of("r1").unwrap().is_empty());
    // Another resident's complete upload does not count.
    upload_all(&store, "r2", &file);
    assert!(matches!(store.submit(&s), Err(StoreError::InvalidState(_))));
    // Complete with another size does not count.
    store.put_chunk("r1", &sha, 5, &file[5..], None, 0).unwrap();
    let mut wrong = s.clone();
    wrong.attachments[0].size = 11;
    assert!(matches!(
        store.submit(&wrong),
        Err(StoreError::InvalidState(_))
    ));
    // Complete: accepted, the link recorded with it; a retry gets the receipt.
    let first = store.submit(&s).unwrap();
    assert!(first.fresh);
    let again = store.submit(&s).unwrap();
    assert!(!again.fresh);
    assert_eq!(again.receipt, first.receipt);
    let tracking = &first.receipt.tracking_number;
    assert_eq!(
        store.submission_attachments(tracking).unwrap(),
        Some(vec![link("scan", &file)])
    );
    assert!(
        store
            .submission_attachment(tracking, &sha256_hex(b"x"))
            .unwrap()
            .is_none()
    );
    // The failed attempts used no tracking number.
    assert!(tracking.ends_with("0000001"), "{tracking}");
}

pub fn upload_usage_counts_other_uploads<B: Backend>(b: &B) {
    let store = b.open();
    assert_eq!(store.upload_usage("r1", "").unwrap(), (0, 0));
    let done = b"complete bytes".to_vec();
    upload_all(&store, "r1", &done);
    let pending = sha256_hex(b"pending");
    store
        .begin_upload("r1", &pending, 1000, "image/png", 0)
        .unwrap();
    store
        .begin_upload("r2", &sha256_hex(b"theirs"), 77, "image/png", 0)
        .unwrap();
    // Declared bytes of all, and how many are incomplete.
    assert_eq!(store.upload_usage("r1", "").unwrap(), (1014, 1));
    // Except the one being declared (its own size may change).
    assert_eq!(store.upload_usage("r1", &pending).unwrap(), (14, 0));
    assert_eq!(store.upload_usage("r2", "").unwrap(), (77, 1));
    // The same declaration again: the existing upload, its media type updated.
    match store
        .begin_upload("r1", &pending, 1000, "application/pdf", 1)
        .unwrap()
    {
        UploadStart::Existing(u) => assert_eq!(u.media_type, "application/pdf"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.upload("r1", &pending).unwrap().unwrap().media_type,
        "application/pdf"
    );
    // Not complete: no bytes handed out.
    let (u, bytes) = store.upload_content("r1", &pending).unwrap().unwrap();
    assert!(!u.complete && bytes.is_none());
    assert!(
        store
            .upload_content("r1", &sha256_hex(b"none"))
            .unwrap()
            .is_none()
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
