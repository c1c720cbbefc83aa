//! Test harness: the real server, in process, on a loopback port, with a
//! SQLite store in a temporary directory, a clock the test drives, a demo
//! licence world (root + three issuers) and the Guang'an catalog; plus the
//! client-side steps a phone takes (enrol, sign a challenge, present a
//! licence) as helpers.

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
use serde_json::{Map, Value, json};
use zhangban_core::credential::demo::{self as cdemo, DemoWorld, ISSUERS};
use zhangban_core::credential::jose::b64e;
use zhangban_core::credential::{
    HeldLicence, HolderSigner, KeyBindingRequest, KeyPair, LicenceId, P256KeyPair,
    SoftwareHolderKey,
};
use zhangban_core::guide::fixture::CREDIT_CODE_PATTERN;
use zhangban_core::guide::{FieldKind, Guide, demo_catalog, validate_versioned_submission};
use zhangban_server::api;
use zhangban_server::clock::{Clock as _, ManualClock};
use zhangban_server::issuing;
use zhangban_server::setup;
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

/// The operator whose role an operator path needs (least privilege, ADR
/// 0165): guides → the publisher, licences → the issuer, submissions → the
/// reviewer, the rest (residents, trust bundle, operators) → the bootstrap admin.
pub fn token_for(path: &str) -> &'static str {
    if path.starts_with("/v1/operator/guides") {
        PUBLISHER_TOKEN
    } else if path.starts_with("/v1/operator/licences") {
        ISSUER_TOKEN
    } else if path.starts_with("/v1/operator/submissions") {
        REVIEWER_TOKEN
    } else {
        OPERATOR_TOKEN
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

/// A running server.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The admin listener (`/metrics`), `http://127.0.0.1:<port>`.
    pub admin: String,
    /// A client that asks for gzip and decodes it.
    pub http: reqwest::Client,
    /// The server's clock.
    pub clock: Arc<ManualClock>,
    /// The server's state (for peeking; tests go through HTTP).
    pub state: SharedState,
    /// Root and issuer keys.
    pub world: DemoWorld,
    /// How many guides were imported.
    pub guides: usize,
    serial: AtomicU64,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
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
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("zhangban.db")).unwrap());
        let clock = Arc::new(ManualClock::new(T0));
        let mut rng = StdRng::seed_from_u64(7);
        let world = DemoWorld::new(&mut rng, T0);
        store.put_trust_bundle(1, world.bundle.jws(), T0).unwrap();
        let json = match catalog_size {
            Catalog::Full => setup::FIXTURE.to_owned(),
            Catalog::Small => fixture_subset(40),
        };
        let guides = setup::import_fixture(store.as_ref(), &json, T0).unwrap();
        let mut config = Config::with_operator_token(OPERATOR_TOKEN);
        // Tests share one loopback address: limits only where a test asks.
        config.limits = zhangban_server::limits::Limits::off();
        tune(&mut config);
        let state = Arc::new(
            AppState::new(
                store,
                clock.clone(),
                config,
                vec![world.root.public()],
                world.issuers.clone(),
            )
            .unwrap(),
        );
        issuing::ensure_status_lists(&state).await.unwrap();
        let issuers = ISSUERS.iter().map(|i| i.id.to_owned()).collect();
        add_operator(
            state.store.as_ref(),
            "test-issuer",
            "issuer",
            issuers,
            ISSUER_TOKEN,
        );
        for (name, role, token) in [
            ("test-reviewer", "reviewer", REVIEWER_TOKEN),
            ("test-publisher", "publisher", PUBLISHER_TOKEN),
        ] {
            add_operator(state.store.as_ref(), name, role, departments(), token);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = api::router(state.clone())
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        let admin_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = admin_listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            use std::future::IntoFuture as _;
            // One task: aborting it stops both listeners.
            let (api, admin) = tokio::join!(
                axum::serve(listener, app).into_future(),
                axum::serve(admin_listener, api::admin_router()).into_future()
            );
            api.unwrap();
            admin.unwrap();
        });
        Self {
            base: format!("http://{addr}"),
            admin: format!("http://{admin}"),
            http: reqwest::Client::builder().build().unwrap(),
            clock,
            state,
            world,
            guides,
            serial: AtomicU64::new(1),
            task,
            _dir: dir,
        }
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

    /// A request with the token of the operator whose role the path needs
    /// ([`token_for`]).
    pub fn op(&self, method: Method, path: &str) -> RequestBuilder {
        self.req(method, path).bearer_auth(token_for(path))
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

    /// `POST /v1/devices/enrol`.
    pub async fn enrol_raw(&self, code: &str, key: &dyn HolderSigner) -> Response {
        self.req(Method::POST, "/v1/devices/enrol")
            .json(&json!({"activation_code": code, "device_jwk": key.holder_key().to_jwk()}))
            .send()
            .await
            .unwrap()
    }

    /// `POST /v1/auth/challenge` → (challenge id, nonce).
    pub async fn challenge(&self, device_id: &str) -> (String, String) {
        let resp = self
            .req(Method::POST, "/v1/auth/challenge")
            .json(&json!({"device_id": device_id}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let v: Value = resp.json().await.unwrap();
        (
            v["challenge_id"].as_str().unwrap().to_owned(),
            v["nonce"].as_str().unwrap().to_owned(),
        )
    }

    /// `POST /v1/auth/token` with the signature of `signer`.
    pub async fn token_raw(
        &self,
        device_id: &str,
        challenge_id: &str,
        nonce: &str,
        signer: &dyn HolderSigner,
    ) -> Response {
        let msg = api::auth::challenge_message(challenge_id, nonce);
        let sig = signer.sign_raw(msg.as_bytes()).unwrap();
        self.req(Method::POST, "/v1/auth/token")
            .json(
                &json!({"device_id": device_id, "challenge_id": challenge_id,
                "signature": b64e(sig)}),
            )
            .send()
            .await
            .unwrap()
    }

    /// Challenge → signature → token.
    pub async fn login(&self, key: &dyn HolderSigner) -> String {
        let id = key.holder_key().thumbprint();
        let (cid, nonce) = self.challenge(&id).await;
        let resp = self.token_raw(&id, &cid, &nonce, key).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let v: Value = resp.json().await.unwrap();
        v["token"].as_str().unwrap().to_owned()
    }

    /// Enrols a new P-256 device key (what a platform keystore makes) for
    /// `resident` and logs it in.
    pub async fn device(&self, resident: &Resident) -> Device {
        let key = SoftwareHolderKey::P256(P256KeyPair::generate(&mut rand::rngs::OsRng));
        self.device_with(resident, key).await
    }

    /// Enrols a legacy Ed25519 device key (enrolled before hardware keys).
    pub async fn device_ed25519(&self, resident: &Resident) -> Device {
        let key = SoftwareHolderKey::Ed25519(KeyPair::generate(&mut rand::rngs::OsRng));
        self.device_with(resident, key).await
    }

    /// Enrols `key` for `resident` and logs it in.
    pub async fn device_with(&self, resident: &Resident, key: SoftwareHolderKey) -> Device {
        let resp = self.enrol_raw(&resident.code, &key).await;
        assert_eq!(
            resp.status(),
            StatusCode::OK,
            "{}",
            resp.text().await.unwrap()
        );
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["resident_id"], resident.id.as_str());
        let token = self.login(&key).await;
        Device {
            id: v["device_id"].as_str().unwrap().to_owned(),
            resident_id: resident.id.clone(),
            key,
            token,
        }
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
        let resp = self
            .op(
                Method::POST,
                &format!("/v1/operator/licences/{licence_id}/status"),
            )
            .json(&json!({"status": status}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::OK,
            "{}",
            resp.text().await.unwrap()
        );
        resp.json().await.unwrap()
    }

    /// The device's wallet.
    pub async fn wallet(&self, dev: &Device) -> Vec<Value> {
        let resp = self
            .as_dev(dev, Method::GET, "/v1/wallet")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.unwrap()
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

/// The file [`valid_values`] puts in every required attachment field, and
/// that [`TestServer::submit`] uploads first.
pub const SCAN: &[u8] = b"%PDF-1.4\n% zhangban test scan\n%%EOF\n";

/// An attachment field value referencing [`SCAN`].
pub fn scan_ref() -> Value {
    json!({"sha256": sha256_hex(SCAN), "size": SCAN.len(),
        "media_type": "application/pdf", "name": "scan.pdf"})
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

/// Values for every required field of `guide` that pass the form validator at `now`.
pub fn valid_values(guide: &Guide, now: i64) -> Map<String, Value> {
    let mut values = Map::new();
    for f in guide.form.fields.iter().filter(|f| f.required) {
        let v = match &f.kind {
            FieldKind::Text {
                min_len,
                max_len,
                pattern,
            } => match pattern.as_deref() {
                Some(p) if p == CREDIT_CODE_PATTERN => json!("91511602MA62000001"),
                Some(p) => panic!("no value for pattern {p}"),
                None => {
                    let n = (*min_len).max(2).min(*max_len) as usize;
                    json!("测".repeat(n))
                }
            },
            FieldKind::Number { min, .. } => json!(min.unwrap_or(1.0).max(1.0).ceil()),
            FieldKind::Date { .. } => json!(today(now + 7 * cdemo::DAY)),
            FieldKind::Choice { options, multiple } => {
                let first = options[0].value.clone();
                if *multiple {
                    json!([first])
                } else {
                    json!(first)
                }
            }
            FieldKind::IdNumber => json!("11010519491231002X"),
            FieldKind::Phone => json!("13800138000"),
            FieldKind::LicenceRef { .. } => panic!("required licence field {}", f.name),
            FieldKind::Attachment { .. } => scan_ref(),
        };
        values.insert(f.name.clone(), v);
    }
    let day = chrono::NaiveDate::parse_from_str(&today(now), "%Y-%m-%d").unwrap();
    validate_versioned_submission(&guide.form, guide.form.version, &values, day)
        .unwrap_or_else(|e| panic!("filler made invalid values for {}: {e:?}", guide.id));
    values
}

/// The day (China Standard Time) at `t`, `YYYY-MM-DD`.
pub fn today(t: i64) -> String {
    chrono::DateTime::from_timestamp(t + 8 * 3600, 0)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string()
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
