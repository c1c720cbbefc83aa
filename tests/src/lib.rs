//! End-to-end harness: the real server (its library, on the embedded SQLite
//! with the demo data) on a loopback port that survives restarts, and a
//! fault-injecting proxy between clients and server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod proxy;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use zhangban_core::credential::PublicKey;
use zhangban_server::clock::SystemClock;
use zhangban_server::setup;
use zhangban_server::state::AppState;
use zhangban_server::store::prelude::*;
use zhangban_server::{api, issuing};

pub use zhangban_server::setup::DEMO_ACTIVATION_CODE;

/// A server that can be stopped and started again on the same port and data.
#[derive(Debug)]
pub struct TestServer {
    /// Its data directory (kept for the whole test).
    pub dir: PathBuf,
    /// Its address (fixed across restarts).
    pub addr: SocketAddr,
    /// The pinned root key clients need.
    pub root: PublicKey,
    /// The operator token.
    pub operator_token: String,
    running: Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    )>,
    _tmp: Option<tempfile::TempDir>,
}

impl TestServer {
    /// A fresh data directory with the demo data, served on a free port.
    pub async fn start_demo() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        let now = chrono_now();
        {
            let d = setup::open(&dir, None).unwrap();
            setup::demo(&dir, d.store.as_ref(), now).unwrap();
        }
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        let d = setup::open(&dir, None).unwrap();
        let root = d.roots[0].clone();
        let mut s = Self {
            dir,
            addr,
            root,
            operator_token: d.operator_token,
            running: None,
            _tmp: Some(tmp),
        };
        drop(d.store);
        s.start().await;
        s
    }

    /// The token of the demo operator whose role an operator path needs
    /// (least privilege, ADR 0165): guides → `demo-publisher`, licences →
    /// `demo-issuer`, submissions → `demo-reviewer`; anything else → the
    /// bootstrap admin ([`Self::operator_token`]).
    pub fn operator_token_for(&self, path: &str) -> String {
        let name = if path.contains("/v1/operator/guides") {
            "demo-publisher"
        } else if path.contains("/v1/operator/licences") {
            "demo-issuer"
        } else if path.contains("/v1/operator/submissions") {
            "demo-reviewer"
        } else {
            return self.operator_token.clone();
        };
        let file = self
            .dir
            .join(setup::DEMO_OPERATORS_DIR)
            .join(format!("{name}.token"));
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .trim()
            .to_owned()
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A phone's client core against this server: its store at `path`, the
    /// server's pinned root, `clock`, and the software keystore beside the
    /// store.
    pub fn open_client(
        &self,
        path: &Path,
        clock: Arc<dyn zhangban_core::client::Clock>,
    ) -> zhangban_core::client::Client {
        let keystore = zhangban_core::client::SoftwareKeystore::beside(path)
            .unwrap_or_else(|e| panic!("software keystore beside {}: {e}", path.display()));
        zhangban_core::client::Client::open(
            path,
            &self.url(),
            vec![self.root.clone()],
            clock,
            Arc::new(keystore),
        )
        .unwrap_or_else(|e| panic!("open the client store {}: {e}", path.display()))
    }

    /// Whether it is serving.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Starts serving (after [`Self::stop`]).
    pub async fn start(&mut self) {
        if self.running.is_some() {
            return;
        }
        let d = setup::open(&self.dir, Some(self.operator_token.clone())).unwrap();
        let state = Arc::new(
            AppState::new(
                d.store.clone(),
                Arc::new(SystemClock),
                {
                    // One loopback address and one resident flushing thousands
                    // of submissions: durability is tested here, not limits.
                    let mut config = d.config();
                    config.limits = zhangban_server::limits::Limits::off();
                    config
                },
                d.roots,
                d.issuers,
            )
            .unwrap(),
        );
        issuing::ensure_status_lists(&state).await.unwrap();
        // The port was just released by a previous run: retry briefly.
        let mut listener = None;
        for _ in 0..100 {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => {
                    listener = Some(l);
                    break;
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        }
        let listener = listener.expect("the server's port is free again");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = api::router(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        self.running = Some((tx, task));
    }

    /// Stops serving: the port refuses connections until [`Self::start`].
    pub async fn stop(&mut self) {
        if let Some((tx, task)) = self.running.take() {
            let _ = tx.send(());
            let _ = task.await;
        }
    }

    /// How many submissions the server holds for the demo resident.
    pub fn submissions(&self) -> Vec<zhangban_server::store::SubmissionRecord> {
        let store =
            zhangban_server::store::sqlite::SqliteStore::open(&self.dir.join("zhangban.db"))
                .unwrap();
        store.submissions_of(setup::DEMO_RESIDENT).unwrap()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.dir
    }
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

/// Values that pass the form validator for `guide` on the day of `now`, or
/// `None` if the guide requires a licence or an attachment (which need a
/// wallet or an upload).
pub fn fill(
    guide: &zhangban_core::guide::Guide,
    now: i64,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    use serde_json::json;
    use zhangban_core::guide::FieldKind;
    let mut values = serde_json::Map::new();
    for f in guide.form.fields.iter().filter(|f| f.required) {
        let v = match &f.kind {
            FieldKind::Text {
                min_len,
                max_len,
                pattern,
            } => match pattern.as_deref() {
                Some(p) if p == zhangban_core::guide::fixture::CREDIT_CODE_PATTERN => {
                    json!("91511602MA62000001")
                }
                Some(_) => return None,
                None => json!("测".repeat((*min_len).max(2).min(*max_len) as usize)),
            },
            FieldKind::Number { min, .. } => json!(min.unwrap_or(1.0).max(1.0).ceil()),
            // Today fits both "not before today" and "not after today".
            FieldKind::Date { .. } => json!(day(now)),
            FieldKind::Choice { options, multiple } => {
                let first = options.first()?.value.clone();
                if *multiple {
                    json!([first])
                } else {
                    json!(first)
                }
            }
            FieldKind::IdNumber => json!("11010519491231002X"),
            FieldKind::Phone => json!("13800138000"),
            FieldKind::LicenceRef { .. } | FieldKind::Attachment { .. } => return None,
        };
        values.insert(f.name.clone(), v);
    }
    Some(values)
}

/// Like [`fill`], but a required attachment field gets a file of `size`
/// pseudo-random bytes (seeded by `seed`) kept by `client`. `None` if the
/// guide requires a licence.
pub fn fill_with_files(
    client: &zhangban_core::client::Client,
    guide: &zhangban_core::guide::Guide,
    now: i64,
    size: usize,
    seed: u64,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    use rand::{RngCore as _, SeedableRng as _};
    use zhangban_core::guide::FieldKind;
    let mut probe = guide.clone();
    let files: Vec<(String, Vec<String>)> = guide
        .form
        .fields
        .iter()
        .filter(|f| f.required)
        .filter_map(|f| match &f.kind {
            FieldKind::Attachment { media_types, .. } => {
                Some((f.name.clone(), media_types.clone()))
            }
            _ => None,
        })
        .collect();
    probe
        .form
        .fields
        .retain(|f| !files.iter().any(|(n, _)| *n == f.name));
    let mut values = fill(&probe, now)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for (name, types) in files {
        let media = if types.iter().any(|t| t == "application/pdf") {
            "application/pdf"
        } else {
            "image/jpeg"
        };
        let mut data = vec![0u8; size];
        rng.fill_bytes(&mut data);
        let r = client.attach_file(&data, media, "scan.pdf").ok()?;
        values.insert(name, serde_json::to_value(r).ok()?);
    }
    Some(values)
}

/// The day (China Standard Time) at `t`, `YYYY-MM-DD`.
pub fn day(t: i64) -> String {
    chrono::DateTime::from_timestamp(t + 8 * 3600, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// Guides of the demo catalog that [`fill`] can fill, from the client's
/// cached catalog.
pub fn fillable_guides(
    client: &zhangban_core::client::Client,
    now: i64,
) -> Vec<zhangban_core::guide::Guide> {
    zhangban_core::guide::demo_catalog(setup::FIXTURE, now)
        .unwrap()
        .into_iter()
        .filter_map(|g| client.guide(&g.id).ok())
        .filter(|g| fill(g, now).is_some())
        .collect()
}

/// The system clock now, in Unix seconds.
pub fn system_now() -> i64 {
    chrono_now()
}
