//! The store's sealed columns against the ways they can be fooled: a
//! sealed value moved to another row, altered bytes, a wrong key, a value
//! left in plaintext. Real SQLite files; no server needed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Map, json};
use zhangban_core::client::personal::install_key;
use zhangban_core::client::sealing::DataKey;
use zhangban_core::client::{ClientError, ClientStore, DataKeyFault, Draft};

fn draft(id: &str, id_number: &str) -> Draft {
    let mut values = Map::new();
    values.insert("id_number".into(), json!(id_number));
    Draft {
        id: id.into(),
        guide_id: "g".into(),
        form_version: 1,
        values,
        created_at: 1,
        updated_at: 1,
    }
}

fn store_with_two_drafts(dir: &tempfile::TempDir) -> (ClientStore, std::path::PathBuf) {
    let path = dir.path().join("phone.db");
    let store = ClientStore::open(&path).unwrap();
    install_key(&store, &DataKey::from_bytes(vec![3; 32]).unwrap()).unwrap();
    store.save_draft(&draft("a", "11010519491231002X")).unwrap();
    store.save_draft(&draft("b", "510102198001011234")).unwrap();
    (store, path)
}

#[test]
fn a_sealed_value_moved_to_another_row_is_corruption_not_data() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = store_with_two_drafts(&dir);
    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute(
        "UPDATE drafts SET body = (SELECT body FROM drafts WHERE id = 'a') WHERE id = 'b'",
        [],
    )
    .unwrap();
    match store.draft("b") {
        Err(ClientError::Corrupted(table)) => assert_eq!(table, "drafts"),
        other => panic!("{other:?}"),
    }
    // The untouched row still opens.
    assert_eq!(
        store.draft("a").unwrap().unwrap().values["id_number"],
        json!("11010519491231002X")
    );
}

#[test]
fn altered_bytes_and_plaintext_rows_do_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = store_with_two_drafts(&dir);
    let db = rusqlite::Connection::open(&path).unwrap();
    let mut body: Vec<u8> = db
        .query_row("SELECT body FROM drafts WHERE id = 'a'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(body[0], 1, "version byte");
    let last = body.len() - 1;
    body[last] ^= 0x80;
    db.execute("UPDATE drafts SET body = ?1 WHERE id = 'a'", [&body])
        .unwrap();
    assert!(matches!(store.draft("a"), Err(ClientError::Corrupted(_))));
    // Plaintext slipped into a sealed column is refused, not trusted.
    db.execute(
        "UPDATE drafts SET body = CAST('{\"id_number\":\"x\"}' AS BLOB) WHERE id = 'b'",
        [],
    )
    .unwrap();
    assert!(matches!(store.draft("b"), Err(ClientError::Corrupted(_))));
}

#[test]
fn a_wrong_key_is_told_apart_from_corruption_and_locks_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = store_with_two_drafts(&dir);
    drop(store);
    let store = ClientStore::open(&path).unwrap();
    // Before any key: locked, nothing read.
    assert!(matches!(
        store.drafts(),
        Err(ClientError::DataKey(DataKeyFault::Missing))
    ));
    assert!(matches!(
        install_key(&store, &DataKey::from_bytes(vec![4; 32]).unwrap()),
        Err(ClientError::DataKey(DataKeyFault::WrongKey))
    ));
    assert!(matches!(
        store.drafts(),
        Err(ClientError::DataKey(DataKeyFault::WrongKey))
    ));
    assert!(matches!(
        store.save_draft(&draft("c", "x")),
        Err(ClientError::DataKey(DataKeyFault::WrongKey))
    ));
    // The right key opens everything.
    install_key(&store, &DataKey::from_bytes(vec![3; 32]).unwrap()).unwrap();
    assert_eq!(store.drafts().unwrap().len(), 2);
}

#[test]
fn sealing_in_place_runs_once_even_if_asked_again() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = store_with_two_drafts(&dir);
    // A marker left behind (as if the step were interrupted after sealing):
    // the step runs again and must not seal the sealed rows a second time.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute(
            "INSERT INTO meta(key, value) VALUES ('seal_pending', '1')",
            [],
        )
        .unwrap();
    install_key(&store, &DataKey::from_bytes(vec![3; 32]).unwrap()).unwrap();
    assert_eq!(
        store.draft("b").unwrap().unwrap().values["id_number"],
        json!("510102198001011234")
    );
}
