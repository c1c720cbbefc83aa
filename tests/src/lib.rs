//! The one test-support crate: the test server (in process, restartable,
//! with an injected clock: [`server`]), the form filler ([`forms`]), the
//! server and CLIs as processes ([`process`]), a fault-injecting proxy
//! ([`proxy`]) and seeded randomness ([`seeded_rng`]). Used by the
//! end-to-end tests here, the server's HTTP tests and the benchmarks.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod forms;
pub mod postgres;
pub mod process;
pub mod proxy;
pub mod remote;
pub mod replicas;
pub mod server;

pub use forms::{day, fill, fill_with_files, filled_draft};
pub use server::{DEMO_ACTIVATION_CODE, TestClock, TestServer};

/// Guides of the client's cached catalog that [`fill`] can fill at `now`.
pub fn fillable_guides(
    client: &zhangban_core::client::Client,
    now: i64,
) -> Vec<zhangban_core::guide::Guide> {
    server::catalog()
        .iter()
        .filter_map(|g| client.guide(&g.id).ok())
        .filter(|g| fill(g, now).is_some())
        .collect()
}

/// The phone store at `path` opened directly (without a client), with its
/// personal data unlocked by the software data key beside it.
pub async fn open_store(path: &std::path::Path) -> zhangban_core::client::ClientStore {
    let store = zhangban_core::client::ClientStore::open(path).unwrap();
    let keys = zhangban_core::client::SoftwareDataKeyStore::beside(path).unwrap();
    zhangban_core::client::personal::unlock(&store, &keys)
        .await
        .unwrap_or_else(|e| panic!("unlock the store {}: {e}", path.display()));
    store
}

/// Like [`fillable_guides`], from a store's cached catalog.
pub fn fillable_guides_in(
    store: &zhangban_core::client::ClientStore,
    now: i64,
) -> Vec<zhangban_core::guide::Guide> {
    server::catalog()
        .iter()
        .filter_map(|g| store.guide(&g.id).ok().flatten())
        .filter(|g| fill(g, now).is_some())
        .collect()
}

/// The system clock now, in Unix seconds.
pub fn system_now() -> i64 {
    zhangban_core::clock::Clock::now(&zhangban_core::clock::SystemClock)
}

/// A seeded random generator for a test: the seed is `ZHANGBAN_TEST_SEED`
/// when set (to replay a failure), else fresh; it is printed on stderr,
/// which the test harness shows when the test fails.
pub fn seeded_rng(test: &str) -> rand::rngs::StdRng {
    use rand::{RngCore as _, SeedableRng as _};
    let seed = std::env::var("ZHANGBAN_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rngs::OsRng.next_u64());
    eprintln!("{test}: seed {seed} (replay with ZHANGBAN_TEST_SEED={seed})");
    rand::rngs::StdRng::seed_from_u64(seed)
}

/// A guide of the client's cached catalog with a licence field for `vct`
/// whose other required fields [`fill`] can fill at `now`, and that field's
/// name.
pub fn guide_taking(
    client: &zhangban_core::client::Client,
    vct: &str,
    now: i64,
) -> (zhangban_core::guide::Guide, String) {
    use zhangban_core::guide::FieldKind;
    for g in server::catalog() {
        let Ok(g) = client.guide(&g.id) else { continue };
        let field = g.form.fields.iter().find(|f| {
            matches!(&f.kind, FieldKind::LicenceRef { licence_types } if licence_types.iter().any(|t| t == vct))
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
    panic!("no cached guide takes {vct}");
}
