//! The one test server ([`TestServer`]): the real server, in process, on a
//! loopback port that survives restarts, with a SQLite store in a temporary
//! directory, an injected clock, a demo licence world from a fixed seed and
//! the Guang'an catalog; plus the client-side steps a phone takes (enrol,
//! sign a challenge, present a licence, upload) as helpers for the HTTP tests;
//! and one operator of each role (least privilege, ADR 0165).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    missing_debug_implementations
)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use rand::SeedableRng as _;
use rand::rngs::StdRng;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use zhangban_core::credential::demo::{DemoWorld, ISSUERS};

pub use crate::forms::{SCAN, day as today, scan_ref, valid_values};
use zhangban_core::credential::PublicKey;
use zhangban_core::credential::{
    HeldLicence, HolderSigner, KeyBindingRequest, KeyPair, LicenceId, SoftwareHolderKey,
};
use zhangban_core::guide::{FieldKind, Guide, demo_catalog};
use zhangban_server::api;
use zhangban_server::clock::{Clock, ManualClock, SystemClock};
use zhangban_server::issuing;
use zhangban_server::setup;
pub use zhangban_server::setup::DEMO_ACTIVATION_CODE;
use zhangban_server::state::{AppState, Config, SharedState, sha256_hex};
use zhangban_server::store::Store;
use zhangban_server::store::prelude::*;
use zhangban_server::store::sqlite::SqliteStore;

/// The bootstrap admin's token every test server accepts.
pub const OPERATOR_TOKEN: &str = "test-operator-token";
/// An issuer of the three demo issuers.
pub const ISSUER_TOKEN: &str = "zbo_test-issuer-token";
/// A reviewer of every department of the catalog.
pub const REVIEWER_TOKEN: &str = "zbo_test-reviewer-token";
/// A publisher of every department of the catalog.
pub const PUBLISHER_TOKEN: &str = "zbo_test-publisher-token";

/// The tokens of a test server's operators, one per role (least privilege,
/// ADR 0165): the bootstrap admin's, and one operator each of the issuer,
/// reviewer and publisher roles. A server from [`TestServer::start`] has the
/// fixed `test-*` operators ([`add_test_operators`]); one from
/// [`TestServer::start_demo`] has the demo's (`demo-*`, their tokens read
/// from the data directory's [`setup::DEMO_OPERATORS_DIR`]).
#[derive(Debug, Clone)]
pub struct OperatorTokens {
    /// The bootstrap admin (residents, the trust bundle, operators).
    pub admin: String,
    /// An issuer of the three demo issuers (licences).
    pub issuer: String,
    /// A reviewer of every department (submissions).
    pub reviewer: String,
    /// A publisher of every department (guides).
    pub publisher: String,
}

impl OperatorTokens {
    /// The fixed tokens of [`add_test_operators`].
    pub fn test() -> Self {
        Self {
            admin: OPERATOR_TOKEN.to_owned(),
            issuer: ISSUER_TOKEN.to_owned(),
            reviewer: REVIEWER_TOKEN.to_owned(),
            publisher: PUBLISHER_TOKEN.to_owned(),
        }
    }

    /// The demo operators' tokens `serve --demo` wrote to `dir`.
    pub fn demo(dir: &std::path::Path, admin: &str) -> Self {
        let read = |name: &str| {
            let file = dir
                .join(setup::DEMO_OPERATORS_DIR)
                .join(format!("{name}.token"));
            std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
                .trim()
                .to_owned()
        };
        Self {
            admin: admin.to_owned(),
            issuer: read("demo-issuer"),
            reviewer: read("demo-reviewer"),
            publisher: read("demo-publisher"),
        }
    }

    /// The token of the operator whose role `path` needs: guides and the
    /// search lexicon → the publisher, licences → the issuer, submissions → the reviewer, the
    /// rest → the bootstrap admin. `path` may be a whole URL.
    pub fn for_path(&self, path: &str) -> &str {
        if path.contains("/v1/operator/guides") || path.contains("/v1/operator/lexicon") {
            &self.publisher
        } else if path.contains("/v1/operator/licences") {
            &self.issuer
        } else if path.contains("/v1/operator/submissions") {
            &self.reviewer
        } else {
            &self.admin
        }
    }
}

/// Adds the `test-issuer` (scoped to the three demo issuers),
/// `test-reviewer` and `test-publisher` (scoped to every department of the
/// fixture) operators with the fixed tokens of [`OperatorTokens::test`].
pub fn add_test_operators(store: &dyn Store) {
    let issuers = ISSUERS.iter().map(|i| i.id.to_owned()).collect();
    add_operator(store, "test-issuer", "issuer", issuers, ISSUER_TOKEN);
    for (name, role, token) in [
        ("test-reviewer", "reviewer", REVIEWER_TOKEN),
        ("test-publisher", "publisher", PUBLISHER_TOKEN),
    ] {
        add_operator(store, name, role, departments(), token);
    }
}

/// Every department code of the fixture.
pub fn departments() -> Vec<String> {
    let mut d: Vec<String> = catalog()
        .iter()
        .map(|g| g.department_code.clone())
        .collect();
    d.sort();
    d.dedup();
    d
}

/// Adds an operator with a known token straight to the store (as the
/// data directory's setup would), audited as `setup`.
pub fn add_operator(store: &dyn Store, name: &str, role: &str, scopes: Vec<String>, token: &str) {
    use zhangban_server::audit::AuditEntry;
    use zhangban_server::store::operators::{NewOperator, OperatorWrite};
    let entry = AuditEntry {
        at: T0,
        actor: "setup".into(),
        role: "setup".into(),
        action: "operator.add".into(),
        target: json!({"operator": name, "role": role}).to_string(),
        outcome: "ok".into(),
    };
    store
        .audited(
            &entry,
            OperatorWrite::PutOperator(NewOperator {
                name: name.into(),
                role: role.into(),
                scopes,
                token_hash: sha256_hex(token.as_bytes()),
                created_at: T0,
            }),
        )
        .unwrap();
}

/// The time every test server starts at: 2026-03-31 23:33:20 UTC.
pub const T0: i64 = 1_775_000_000;

/// How much of the catalog a server gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Catalog {
    /// All 1,135 guides of the fixture.
    Full,
    /// The first guides of the fixture plus the guides the licence tests use.
    Small,
}

/// The fixture as guides (parsed once per test binary).
pub fn catalog() -> &'static [Guide] {
    static GUIDES: OnceLock<Vec<Guide>> = OnceLock::new();
    GUIDES.get_or_init(|| demo_catalog(setup::FIXTURE, T0).expect("fixture parses"))
}

fn field_names(g: &Guide) -> Vec<&str> {
    g.form.fields.iter().map(|f| f.name.as_str()).collect()
}

/// A guide whose form takes a business licence but no residence permit,
/// and whose required fields [`valid_values`] can fill.
pub fn business_guide() -> &'static Guide {
    catalog()
        .iter()
        .find(|g| {
            let names = field_names(g);
            names.contains(&"business_licence") && !names.contains(&"residence_permit")
        })
        .expect("a guide with a business licence field")
}

/// A guide whose form takes a residence permit.
pub fn residence_guide() -> &'static Guide {
    catalog()
        .iter()
        .find(|g| field_names(g).contains(&"residence_permit"))
        .expect("a guide with a residence permit field")
}

/// A guide without licence fields.
pub fn plain_guide() -> &'static Guide {
    catalog()
        .iter()
        .find(|g| {
            g.form
                .fields
                .iter()
                .all(|f| !matches!(f.kind, FieldKind::LicenceRef { .. }))
                && g.form
                    .fields
                    .iter()
                    .any(|f| f.name == "applicant_id_number")
        })
        .expect("a guide without licence fields")
}

fn fixture_subset(n: usize) -> String {
    let mut items: Vec<Value> = serde_json::from_str(setup::FIXTURE).unwrap();
    let wanted = [
        business_guide().id.clone(),
        residence_guide().id.clone(),
        plain_guide().id.clone(),
    ];
    let mut keep: Vec<Value> = Vec::new();
    for (i, item) in items.drain(..).enumerate() {
        let code = item["item_code"].as_str().unwrap_or_default();
        if i < n || wanted.iter().any(|w| w == code) {
            keep.push(item);
        }
    }
    serde_json::to_string(&keep).unwrap()
}

/// A registered resident.
#[derive(Debug, Clone)]
pub struct Resident {
    /// Id.
    pub id: String,
    /// Activation code.
    pub code: String,
}

/// An enrolled, authenticated device.
#[derive(Debug, Clone)]
pub struct Device {
    /// Its key (P-256 unless made by [`TestServer::device_ed25519`]).
    pub key: SoftwareHolderKey,
    /// Its id (thumbprint).
    pub id: String,
    /// Its resident.
    pub resident_id: String,
    /// A bearer token.
    pub token: String,
}

/// The seed of every test server's demo world (its root and issuer keys).
pub const WORLD_SEED: u64 = 7;

/// The server's state over the store in `dir`, its status lists signed.
async fn app_state(
    dir: &std::path::Path,
    clock: &TestClock,
    config: &Config,
    roots: &[PublicKey],
    issuers: &[zhangban_core::credential::Issuer],
) -> SharedState {
    let store = Arc::new(SqliteStore::open(&dir.join("zhangban.db")).unwrap());
    let state = Arc::new(
        AppState::new(
            store,
            clock.as_dyn(),
            config.clone(),
            roots.to_vec(),
            issuers.to_vec(),
        )
        .unwrap(),
    );
    issuing::ensure_status_lists(&state).await.unwrap();
    state
}

/// Serves the API and the admin listener in one task (aborting it stops both).
fn spawn_serving(
    state: SharedState,
    listener: tokio::net::TcpListener,
    admin_listener: tokio::net::TcpListener,
) -> tokio::task::JoinHandle<()> {
    let app = api::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move {
        use std::future::IntoFuture as _;
        let (api, admin) = tokio::join!(
            axum::serve(listener, app).into_future(),
            axum::serve(admin_listener, api::admin_router()).into_future()
        );
        api.unwrap();
        admin.unwrap();
    })
}

/// Binds `addr` again after a stop; the port may take a moment to be
/// released, so it is polled with a deadline.
async fn bind_again(addr: std::net::SocketAddr) -> tokio::net::TcpListener {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => return l,
            Err(e) if tokio::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{addr} is not free again after 10 s: {e}"),
        }
    }
}

/// The clock a test server runs on: one the test drives, or the system's
/// (for servers that real phones and CLI processes talk to in real time).
#[derive(Debug, Clone)]
pub enum TestClock {
    /// Moves only when the test says.
    Manual(Arc<ManualClock>),
    /// The system clock.
    System,
}

impl TestClock {
    /// Now, in Unix seconds.
    pub fn now(&self) -> i64 {
        match self {
            Self::Manual(c) => c.now(),
            Self::System => SystemClock.now(),
        }
    }

    /// Moves a manual clock by `secs`; panics on the system clock.
    pub fn advance(&self, secs: i64) {
        match self {
            Self::Manual(c) => c.advance(secs),
            Self::System => panic!("this test server runs on the system clock"),
        }
    }

    /// Sets a manual clock; panics on the system clock.
    pub fn set(&self, now: i64) {
        match self {
            Self::Manual(c) => c.set(now),
            Self::System => panic!("this test server runs on the system clock"),
        }
    }

    fn as_dyn(&self) -> Arc<dyn Clock> {
        match self {
            Self::Manual(c) => c.clone(),
            Self::System => Arc::new(SystemClock),
        }
    }
}

/// The one test server: the real server (its library, in process) on a
/// loopback port, with its SQLite store in a temporary directory, an
/// injected clock and a demo licence world made from a fixed seed (the
/// test holds the root's and issuers' keys). It can be stopped and started
/// again on the same port and data, as a restarted process would be.
///
/// - [`TestServer::start`] / [`TestServer::start_with`] /
///   [`TestServer::start_configured`]: the imported catalog and the trust
///   bundle only, on a [`TestClock::Manual`] clock at [`T0`].
/// - [`TestServer::start_demo`]: what `serve --demo` makes (the whole
///   catalog, a demo resident with an activation code and three licences,
///   the keys in the data directory) on the system clock, for real phones.
///
/// Either has an operator of each role ([`OperatorTokens`]); operator calls
/// go through [`TestServer::op`] / [`TestServer::operator_token_for`], which
/// pick the operator whose role the path needs, never the bootstrap admin
/// for licences, guides or submissions (ADR 0165).
pub struct TestServer {
    /// `http://127.0.0.1:<port>` (the same across restarts).
    pub base: String,
    /// The admin listener (`/metrics`), `http://127.0.0.1:<port>`.
    pub admin: String,
    /// Its address (the same across restarts).
    pub addr: std::net::SocketAddr,
    /// A client that asks for gzip and decodes it.
    pub http: reqwest::Client,
    /// The server's clock.
    pub clock: TestClock,
    /// The server's state while it runs (for peeking; tests go through HTTP).
    pub state: SharedState,
    /// Root and issuer keys.
    pub world: DemoWorld,
    /// The pinned root key clients need.
    pub root: PublicKey,
    /// The bootstrap admin's token.
    pub operator_token: String,
    /// The tokens of its operators, one per role.
    pub operator_tokens: OperatorTokens,
    /// How many guides were imported.
    pub guides: usize,
    /// The data directory (the store, and for a demo server its keys).
    pub dir: std::path::PathBuf,
    config: Config,
    roots: Vec<PublicKey>,
    issuers: Vec<zhangban_core::credential::Issuer>,
    serial: AtomicU64,
    task: Option<tokio::task::JoinHandle<()>>,
    _tmp: tempfile::TempDir,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("base", &self.base)
            .field("running", &self.is_running())
            .finish_non_exhaustive()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl TestServer {
    /// Starts a server with the small catalog.
    pub async fn start() -> Self {
        Self::start_with(Catalog::Small).await
    }

    /// Starts a server.
    pub async fn start_with(catalog_size: Catalog) -> Self {
        Self::start_configured(catalog_size, |_| {}).await
    }

    /// Starts a server with its configuration adjusted by `tune`.
    pub async fn start_configured(catalog_size: Catalog, tune: impl FnOnce(&mut Config)) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&tmp.path().join("zhangban.db")).unwrap();
        let world = DemoWorld::new(&mut StdRng::seed_from_u64(WORLD_SEED), T0);
        store.put_trust_bundle(1, world.bundle.jws(), T0).unwrap();
        let json = match catalog_size {
            Catalog::Full => setup::FIXTURE.to_owned(),
            Catalog::Small => fixture_subset(40),
        };
        let guides = setup::import_fixture(&store, &json, T0).unwrap();
        add_test_operators(&store);
        drop(store);
        let mut config = Config::with_operator_token(OPERATOR_TOKEN);
        // Tests share one loopback address: limits only where a test asks.
        config.limits = zhangban_server::limits::Limits::off();
        tune(&mut config);
        let clock = TestClock::Manual(Arc::new(ManualClock::new(T0)));
        let roots = vec![world.root.public()];
        let issuers = world.issuers.clone();
        let tokens = OperatorTokens::test();
        Self::serve_first(tmp, clock, config, world, (roots, issuers), guides, tokens).await
    }

    /// Starts what `serve --demo` makes, on the system clock: the whole
    /// catalog, the demo resident (activation code [`DEMO_ACTIVATION_CODE`])
    /// with three licences waiting for the first device.
    pub async fn start_demo() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let now = SystemClock.now();
        let world = DemoWorld::new(&mut StdRng::seed_from_u64(WORLD_SEED), now);
        let d = setup::open(tmp.path(), Some(OPERATOR_TOKEN.to_owned())).unwrap();
        assert!(setup::demo_with_world(tmp.path(), d.store.as_ref(), now, &world).unwrap());
        drop(d);
        let d = setup::open(tmp.path(), Some(OPERATOR_TOKEN.to_owned())).unwrap();
        let mut config = d.config();
        // One loopback address and one resident flushing thousands of
        // submissions: durability is tested here, not limits.
        config.limits = zhangban_server::limits::Limits::off();
        let guides = catalog().len();
        let (roots, issuers) = (d.roots, d.issuers);
        drop(d.store);
        let tokens = OperatorTokens::demo(tmp.path(), OPERATOR_TOKEN);
        Self::serve_first(
            tmp,
            TestClock::System,
            config,
            world,
            (roots, issuers),
            guides,
            tokens,
        )
        .await
    }

    async fn serve_first(
        tmp: tempfile::TempDir,
        clock: TestClock,
        config: Config,
        world: DemoWorld,
        (roots, issuers): (Vec<PublicKey>, Vec<zhangban_core::credential::Issuer>),
        guides: usize,
        operator_tokens: OperatorTokens,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let admin = admin_listener.local_addr().unwrap();
        let dir = tmp.path().to_owned();
        let state = app_state(&dir, &clock, &config, &roots, &issuers).await;
        let task = spawn_serving(state.clone(), listener, admin_listener);
        Self {
            base: format!("http://{addr}"),
            admin: format!("http://{admin}"),
            addr,
            http: reqwest::Client::builder().build().unwrap(),
            clock,
            state,
            root: world.root.public(),
            world,
            operator_token: OPERATOR_TOKEN.to_owned(),
            operator_tokens,
            guides,
            dir,
            config,
            roots,
            issuers,
            serial: AtomicU64::new(1),
            task: Some(task),
            _tmp: tmp,
        }
    }

    /// Whether it is serving.
    pub fn is_running(&self) -> bool {
        self.task.is_some()
    }

    /// Stops serving, as a killed process would: the port refuses
    /// connections until [`Self::restart`]; what was committed stays.
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Serves again on the same ports, from the store on disk (a fresh
    /// state, as a restarted process has).
    pub async fn restart(&mut self) {
        if self.task.is_some() {
            return;
        }
        let admin_addr: std::net::SocketAddr =
            self.admin.trim_start_matches("http://").parse().unwrap();
        let listener = bind_again(self.addr).await;
        let admin_listener = bind_again(admin_addr).await;
        self.state = app_state(
            &self.dir,
            &self.clock,
            &self.config,
            &self.roots,
            &self.issuers,
        )
        .await;
        self.task = Some(spawn_serving(self.state.clone(), listener, admin_listener));
    }

    /// A phone's client core against this server: its store at `path`, the
    /// server's pinned root, `clock`, and the software keystore and data key
    /// beside the store.
    pub async fn open_client(
        &self,
        path: &std::path::Path,
        clock: Arc<dyn zhangban_core::client::Clock>,
    ) -> zhangban_core::client::Client {
        self.open_client_at(path, &self.base, clock).await
    }

    /// [`Self::open_client`] talking to `url` (a fault proxy in front of
    /// this server, say).
    pub async fn open_client_at(
        &self,
        path: &std::path::Path,
        url: &str,
        clock: Arc<dyn zhangban_core::client::Clock>,
    ) -> zhangban_core::client::Client {
        let keystore = zhangban_core::client::SoftwareKeystore::beside(path)
            .unwrap_or_else(|e| panic!("software keystore beside {}: {e}", path.display()));
        let data_keys = zhangban_core::client::SoftwareDataKeyStore::beside(path)
            .unwrap_or_else(|e| panic!("software data key beside {}: {e}", path.display()));
        zhangban_core::client::Client::open(
            path,
            url,
            vec![self.root.clone()],
            clock,
            Arc::new(keystore),
            Arc::new(data_keys),
        )
        .await
        .unwrap_or_else(|e| panic!("open the client store {}: {e}", path.display()))
    }

    /// The submissions the store holds for `resident_id`, read from disk.
    pub fn submissions_of(
        &self,
        resident_id: &str,
    ) -> Vec<zhangban_server::store::SubmissionRecord> {
        SqliteStore::open(&self.dir.join("zhangban.db"))
            .unwrap()
            .submissions_of(resident_id)
            .unwrap()
    }

    /// The demo resident's submissions ([`Self::start_demo`]).
    pub fn submissions(&self) -> Vec<zhangban_server::store::SubmissionRecord> {
        self.submissions_of(setup::DEMO_RESIDENT)
    }

    /// The server's now.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// A unique number per server (client ids, licence serials, resident ids).
    pub fn next(&self) -> u64 {
        self.serial.fetch_add(1, Ordering::SeqCst)
    }

    /// A fresh, valid client id.
    pub fn client_id(&self) -> String {
        format!("client-{:08}", self.next())
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The `/metrics` text from the admin listener.
    pub async fn metrics(&self) -> String {
        let resp = self
            .http
            .get(format!("{}/metrics", self.admin))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.text().await.unwrap()
    }

    /// A request without credentials.
    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    /// A request with a resident's token.
    pub fn as_dev(&self, dev: &Device, method: Method, path: &str) -> RequestBuilder {
        self.req(method, path).bearer_auth(&dev.token)
    }

    /// The token of the operator whose role an operator path needs
    /// ([`OperatorTokens::for_path`]).
    pub fn operator_token_for(&self, path: &str) -> String {
        self.operator_tokens.for_path(path).to_owned()
    }

    /// A request with the token of the operator whose role the path needs
    /// ([`Self::operator_token_for`]).
    pub fn op(&self, method: Method, path: &str) -> RequestBuilder {
        self.req(method, path)
            .bearer_auth(self.operator_tokens.for_path(path))
    }

    /// Registers a resident with an activation code.
    pub async fn register_with(&self, uses: u32, valid_days: u32) -> Resident {
        let n = self.next();
        let id = format!("resident-{n:04}");
        let resp = self
            .op(Method::POST, "/v1/operator/residents")
            .json(&json!({"id": id, "name": "张三", "uses": uses, "valid_days": valid_days}))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        Resident {
            id,
            code: v["activation_code"].as_str().unwrap().to_owned(),
        }
    }

    /// Registers a resident (3 uses, 30 days).
    pub async fn register(&self) -> Resident {
        self.register_with(3, 30).await
    }

    /// The phone-side HTTP steps against this server.
    pub fn remote(&self) -> crate::remote::Remote {
        crate::remote::Remote::new(&self.base, self.http.clone())
    }

    /// `POST /v1/devices/enrol`.
    pub async fn enrol_raw(&self, code: &str, key: &dyn HolderSigner) -> Response {
        self.remote().enrol_raw(code, key).await
    }

    /// `POST /v1/auth/challenge` → (challenge id, nonce).
    pub async fn challenge(&self, device_id: &str) -> (String, String) {
        self.remote().challenge(device_id).await
    }

    /// `POST /v1/auth/token` with the signature of `signer`.
    pub async fn token_raw(
        &self,
        device_id: &str,
        challenge_id: &str,
        nonce: &str,
        signer: &dyn HolderSigner,
    ) -> Response {
        self.remote()
            .token_raw(device_id, challenge_id, nonce, signer)
            .await
    }

    /// Challenge → signature → token.
    pub async fn login(&self, key: &dyn HolderSigner) -> String {
        self.remote().login(key).await
    }

    /// Enrols a new P-256 device key (what a platform keystore makes) for
    /// `resident` and logs it in.
    pub async fn device(&self, resident: &Resident) -> Device {
        self.remote().device(resident).await
    }

    /// Enrols a legacy Ed25519 device key (enrolled before hardware keys).
    pub async fn device_ed25519(&self, resident: &Resident) -> Device {
        let key = SoftwareHolderKey::Ed25519(KeyPair::generate(&mut rand::rngs::OsRng));
        self.device_with(resident, key).await
    }

    /// Enrols `key` for `resident` and logs it in.
    pub async fn device_with(&self, resident: &Resident, key: SoftwareHolderKey) -> Device {
        self.remote().device_with(resident, key).await
    }

    /// A new resident with one device.
    pub async fn resident_with_device(&self) -> (Resident, Device) {
        let r = self.register().await;
        let d = self.device(&r).await;
        (r, d)
    }

    /// Logs the device in again (after the clock moved past its token).
    pub async fn relogin(&self, dev: &mut Device) {
        dev.token = self.login(&dev.key).await;
    }

    /// Grants a licence of demo issuer `issuer` (0 business licence, 1
    /// residence permit, 2 marriage certificate); returns its licence id and
    /// the copies issued now.
    pub async fn grant(&self, resident_id: &str, issuer: usize) -> (String, Vec<Value>) {
        let claims = licence_claims(issuer, self.next());
        let licence_id = claims["licence_id"].as_str().unwrap().to_owned();
        let spec = ISSUERS[issuer];
        let resp = self
            .op(Method::POST, "/v1/operator/licences")
            .json(&json!({"resident_id": resident_id, "issuer_id": spec.id, "claims": claims}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::CREATED,
            "{}",
            resp.text().await.unwrap()
        );
        (licence_id, resp.json().await.unwrap())
    }

    /// Sets a licence's status.
    pub async fn set_licence_status(&self, licence_id: &str, status: &str) -> Value {
        json_ok(
            self.op(
                Method::POST,
                &format!("/v1/operator/licences/{licence_id}/status"),
            )
            .json(&json!({"status": status})),
        )
        .await
    }

    /// The device's wallet.
    pub async fn wallet(&self, dev: &Device) -> Vec<Value> {
        json_ok(self.as_dev(dev, Method::GET, "/v1/wallet")).await
    }

    /// The SD-JWT of the device's own copy of `licence_id`.
    pub async fn copy_for(&self, dev: &Device, licence_id: &str) -> String {
        self.wallet(dev)
            .await
            .into_iter()
            .find(|e| e["licence_id"] == licence_id && e["device_id"] == dev.id.as_str())
            .map(|e| e["sd_jwt"].as_str().unwrap().to_owned())
            .expect("the device holds a copy")
    }

    /// A presentation nonce for a submission.
    pub async fn nonce(&self, dev: &Device, client_id: &str, guide_id: &str) -> String {
        let resp = self
            .as_dev(
                dev,
                Method::POST,
                &format!("/v1/submissions/{client_id}/nonce"),
            )
            .json(&json!({"guide_id": guide_id}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::OK,
            "{}",
            resp.text().await.unwrap()
        );
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["audience"], guide_id);
        v["nonce"].as_str().unwrap().to_owned()
    }

    /// A presentation of `sd_jwt` signed by `key` for `aud` with `nonce`, at the server's now.
    pub fn present(&self, sd_jwt: &str, key: &dyn HolderSigner, aud: &str, nonce: &str) -> String {
        HeldLicence::parse(sd_jwt)
            .unwrap()
            .present(
                &["licence_name", "licence_number", "holder_name"],
                Some(KeyBindingRequest {
                    key,
                    audience: aud,
                    nonce,
                    iat: self.now(),
                }),
            )
            .unwrap()
    }

    /// `PUT /v1/submissions/{client_id}`, after uploading [`SCAN`] for the
    /// device's resident if the body references it (as a phone does before
    /// it sends a submission with attachments).
    pub async fn submit(&self, dev: &Device, client_id: &str, body: &Value) -> Response {
        if body.to_string().contains(&sha256_hex(SCAN)) {
            self.upload(dev, SCAN, "application/pdf", SCAN.len()).await;
        }
        self.submit_raw(dev, client_id, body).await
    }

    /// `PUT /v1/submissions/{client_id}` as it is (no upload first).
    pub async fn submit_raw(&self, dev: &Device, client_id: &str, body: &Value) -> Response {
        self.as_dev(dev, Method::PUT, &format!("/v1/submissions/{client_id}"))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// `PUT /v1/attachments/{sha256}`.
    pub async fn declare(
        &self,
        dev: &Device,
        sha256: &str,
        size: u64,
        media_type: &str,
    ) -> Response {
        self.as_dev(dev, Method::PUT, &format!("/v1/attachments/{sha256}"))
            .json(&json!({"size": size, "media_type": media_type}))
            .send()
            .await
            .unwrap()
    }

    /// `GET /v1/attachments/{sha256}`.
    pub async fn upload_state(&self, dev: &Device, sha256: &str) -> Response {
        self.as_dev(dev, Method::GET, &format!("/v1/attachments/{sha256}"))
            .send()
            .await
            .unwrap()
    }

    /// `PUT /v1/attachments/{sha256}/chunks/{offset}` with raw bytes.
    pub async fn put_chunk(
        &self,
        dev: &Device,
        sha256: &str,
        offset: u64,
        bytes: &[u8],
    ) -> Response {
        self.as_dev(
            dev,
            Method::PUT,
            &format!("/v1/attachments/{sha256}/chunks/{offset}"),
        )
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap()
    }

    /// Uploads `bytes` completely in chunks of `chunk` bytes, from wherever
    /// the upload stands; returns the final state.
    pub async fn upload(
        &self,
        dev: &Device,
        bytes: &[u8],
        media_type: &str,
        chunk: usize,
    ) -> Value {
        let sha = sha256_hex(bytes);
        let resp = self
            .declare(dev, &sha, bytes.len() as u64, media_type)
            .await;
        assert_eq!(
            resp.status(),
            StatusCode::OK,
            "{}",
            resp.text().await.unwrap()
        );
        let mut state: Value = resp.json().await.unwrap();
        while state["complete"] != true {
            let at = state["received"].as_u64().unwrap() as usize;
            let end = (at + chunk).min(bytes.len());
            let resp = self.put_chunk(dev, &sha, at as u64, &bytes[at..end]).await;
            assert_eq!(
                resp.status(),
                StatusCode::OK,
                "{}",
                resp.text().await.unwrap()
            );
            state = resp.json().await.unwrap();
        }
        state
    }

    /// A valid submission body for `guide` with `extra` values on top.
    pub fn body(&self, guide: &Guide, extra: &[(&str, Value)]) -> Value {
        let mut values = valid_values(guide, self.now());
        for (k, v) in extra {
            values.insert((*k).to_owned(), v.clone());
        }
        json!({"guide_id": guide.id, "form_version": guide.form.version, "values": values})
    }

    /// Submits `guide` with the device's copy of `licence_id` in `field`,
    /// presented properly (own key, aud = guide, a nonce issued for this id).
    pub async fn submit_with_licence(
        &self,
        dev: &Device,
        guide: &Guide,
        field: &str,
        licence_id: &str,
    ) -> Response {
        let cid = self.client_id();
        let sd_jwt = self.copy_for(dev, licence_id).await;
        let nonce = self.nonce(dev, &cid, &guide.id).await;
        let p = self.present(&sd_jwt, &dev.key, &guide.id, &nonce);
        let body = self.body(guide, &[(field, json!({"presentation": p}))]);
        self.submit(dev, &cid, &body).await
    }

    /// `POST /v1/operator/submissions/{tracking}/transition`.
    pub async fn transition(&self, tracking: &str, state: &str) -> Response {
        self.op(
            Method::POST,
            &format!("/v1/operator/submissions/{tracking}/transition"),
        )
        .json(&json!({"state": state, "note": format!("to {state}")}))
        .send()
        .await
        .unwrap()
    }
}

/// The claims of a licence of demo issuer `issuer` with a unique serial.
pub fn licence_claims(issuer: usize, serial: u64) -> BTreeMap<String, Value> {
    let spec = ISSUERS[issuer];
    match issuer {
        0 => DemoWorld::typical_claims(u32::try_from(serial).unwrap()),
        1 => {
            let number = format!("5116022026{serial:05}");
            let id = LicenceId::new(spec.type_code, spec.code, &number, 1)
                .unwrap()
                .to_string();
            serde_json::from_value(json!({
                "licence_name": spec.licence_name, "licence_number": number,
                "licence_id": id, "issuer_name": spec.name,
                "holder_name": "张三", "holder_code_type": "公民身份号码",
                "holder_code": "11010519491231002X",
                "address": "四川省广安市广安区建设路1号",
                "valid_from": "2026-01-01", "valid_until": "2031-01-01"
            }))
            .unwrap()
        }
        _ => {
            let number = format!("J5116022020{serial:06}");
            let id = LicenceId::new(spec.type_code, spec.code, &number, 1)
                .unwrap()
                .to_string();
            serde_json::from_value(json!({
                "licence_name": spec.licence_name, "licence_number": number,
                "licence_id": id, "issuer_name": spec.name,
                "holder_name": "张三", "spouse_name": "李四",
                "registration_date": "2020-05-20",
                "valid_from": "2020-05-20", "valid_until": "长期"
            }))
            .unwrap()
        }
    }
}

/// The JSON answer of a request that must succeed (2xx); panics with the
/// status and body otherwise.
pub async fn json_ok<T: serde::de::DeserializeOwned>(req: RequestBuilder) -> T {
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(status.is_success(), "{status}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Asserts a typed error: the status, and a body `{"error": {"code", "message"}}` with `code`.
pub async fn expect_error(resp: Response, status: StatusCode, code: &str) -> Value {
    let got = resp.status();
    let ct = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = resp.text().await.unwrap();
    assert_eq!(got, status, "body: {text}");
    assert!(
        ct.starts_with("application/json"),
        "content type {ct}: {text}"
    );
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(v["error"]["code"], code, "body: {text}");
    assert!(v["error"]["message"].is_string(), "body: {text}");
    v
}

/// The per-field errors of a `validation_failed` answer.
pub async fn field_errors(resp: Response) -> Vec<(String, String)> {
    let v = expect_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    v["error"]["details"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_owned(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}
