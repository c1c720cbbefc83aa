//! The operator CLI end to end: a real `zhangban-server serve --demo` process
//! on a loopback port with a scratch data directory, and every operator
//! subcommand run as a separate `zhangban-server` process against it. Each
//! test checks exit codes, what the command printed, and the server's state
//! afterwards (through the public API a phone or inspector uses).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use ed25519_dalek::Signer as _;
use serde_json::{Value, json};
use zhangban_core::credential::demo::{DemoWorld, MARKET_REGULATION};
use zhangban_core::credential::jose::b64e;
use zhangban_core::credential::{HeldLicence, KeyPair, PublicKey, TrustBundle, VerifiedStatusList};
use zhangban_core::guide::Guide;
use zhangban_server::api::auth::challenge_message;
use zhangban_server::setup::DEMO_ACTIVATION_CODE;

use zhangban_tests::forms::fill;
use zhangban_tests::process::{Scratch, ServerProcess, free_port};

const BIN: &str = env!("CARGO_BIN_EXE_zhangban-server");

/// A blocking HTTP client for looking at the server's state.
struct Http {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Http {
    fn new() -> Self {
        Self {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    /// (status, body) of a request.
    fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(u16, String), reqwest::Error> {
        self.runtime.block_on(async {
            let mut req = self.client.request(method, url);
            if let Some(t) = bearer {
                req = req.bearer_auth(t);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req.send().await?;
            let status = resp.status().as_u16();
            Ok((status, resp.text().await?))
        })
    }

    fn get_text(&self, url: &str) -> (u16, String) {
        self.send(reqwest::Method::GET, url, None, None).unwrap()
    }

    fn get_json(&self, url: &str) -> Value {
        let (status, text) = self.get_text(url);
        assert_eq!(status, 200, "GET {url}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    fn post_json(&self, url: &str, bearer: Option<&str>, body: &Value) -> Value {
        let (status, text) = self
            .send(reqwest::Method::POST, url, bearer, Some(body))
            .unwrap();
        assert!((200..300).contains(&status), "POST {url}: {status} {text}");
        serde_json::from_str(&text).unwrap()
    }
}

/// A `serve --demo` process on its own data directory; killed when dropped.
struct Server {
    _process: ServerProcess,
    base: String,
    data: PathBuf,
    http: Http,
    _scratch: Scratch,
}

impl Server {
    fn start(tag: &str) -> Self {
        let scratch = Scratch::new(tag);
        let data = scratch.path("data");
        let process = ServerProcess::start(scratch.dir(), &data, &scratch.path("server.log"), &[]);
        Self {
            base: process.url.clone(),
            _process: process,
            data,
            http: Http::new(),
            _scratch: scratch,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn token(&self) -> String {
        std::fs::read_to_string(self.data.join("operator-token"))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// The token of the demo operator a subcommand needs (least privilege,
    /// ADR 0165): licences → demo-issuer, guides → demo-publisher,
    /// submissions → demo-reviewer; the rest → the bootstrap admin (the
    /// data directory's `operator-token`).
    fn token_for(&self, args: &[&str]) -> String {
        let name = match args.first().copied() {
            Some("licence") => "demo-issuer",
            Some("guide" | "lexicon") => "demo-publisher",
            Some("submission") => "demo-reviewer",
            _ => return self.token(),
        };
        std::fs::read_to_string(
            self.data
                .join("demo-operators")
                .join(format!("{name}.token")),
        )
        .unwrap()
        .trim()
        .to_owned()
    }

    /// An operator subcommand against this server, as the operator whose
    /// role it needs ([`Self::token_for`]; the bootstrap admin's token from
    /// the data directory).
    fn cli(&self, args: &[&str]) -> Run {
        self.cli_env(args, &[])
    }

    /// Like [`Self::cli`], with extra environment variables.
    fn cli_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let token = self.token_for(args);
        let mut cmd = cli_command();
        cmd.args(args)
            .arg("--server")
            .arg(&self.base)
            .arg("--data-dir")
            .arg(&self.data);
        if token != self.token() {
            cmd.env("ZHANGBAN_OPERATOR_TOKEN", &token);
        }
        cmd.envs(env.iter().copied());
        Run::of(&mut cmd, &[&self.token(), &token])
    }

    fn bundle_jws(&self) -> String {
        let (status, jws) = self.http.get_text(&self.url("/v1/trust/bundle"));
        assert_eq!(status, 200);
        jws
    }

    fn root_pub(&self) -> PublicKey {
        let jwk: Value = serde_json::from_str(
            &std::fs::read_to_string(self.data.join("root.pub.json")).unwrap(),
        )
        .unwrap();
        PublicKey::from_jwk(&jwk).unwrap()
    }

    /// The server's bundle, verified against the pinned root.
    fn bundle(&self) -> TrustBundle {
        TrustBundle::verify(&self.bundle_jws(), &[self.root_pub()], None).unwrap()
    }

    /// The status list token published for `uri`, verified.
    fn status_list(&self, uri: &str) -> VerifiedStatusList {
        let lists = self.http.get_json(&self.url("/v1/trust/status-lists"));
        let token = lists
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["uri"] == json!(uri))
            .unwrap_or_else(|| panic!("no status list {uri} in {lists}"))["token"]
            .as_str()
            .unwrap()
            .to_owned();
        VerifiedStatusList::verify(&token, &self.bundle()).unwrap()
    }

    /// Enrols a fresh device key with `code` and returns it with a bearer token.
    fn enrol_device(&self, code: &str) -> (KeyPair, String) {
        let key = KeyPair::generate(&mut rand::rngs::OsRng);
        self.http.post_json(
            &self.url("/v1/devices/enrol"),
            None,
            &json!({"activation_code": code, "device_jwk": key.public().to_jwk()}),
        );
        let device_id = key.public().thumbprint();
        let c = self.http.post_json(
            &self.url("/v1/auth/challenge"),
            None,
            &json!({"device_id": device_id}),
        );
        let cid = c["challenge_id"].as_str().unwrap();
        let nonce = c["nonce"].as_str().unwrap();
        let sig = key
            .signing_key()
            .sign(challenge_message(cid, nonce).as_bytes());
        let t = self.http.post_json(
            &self.url("/v1/auth/token"),
            None,
            &json!({"device_id": device_id, "challenge_id": cid, "signature": b64e(sig.to_bytes())}),
        );
        (key, t["token"].as_str().unwrap().to_owned())
    }
}

/// `zhangban-server` with no operator settings inherited from the environment.
fn cli_command() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("ZHANGBAN_OPERATOR_TOKEN")
        .env_remove("ZHANGBAN_DATA_DIR")
        .env_remove("ZHANGBAN_SERVER")
        .env_remove("ZHANGBAN_ACTIVATION_CODE")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    cmd
}

/// A finished CLI process.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Runs `cmd`; asserts none of `secrets` appears in its output.
    fn of(cmd: &mut Command, secrets: &[&str]) -> Self {
        let Output {
            status,
            stdout,
            stderr,
        } = cmd.output().unwrap();
        let run = Self {
            code: status.code().expect("exited, not killed"),
            stdout: String::from_utf8(stdout).unwrap(),
            stderr: String::from_utf8(stderr).unwrap(),
        };
        for s in secrets {
            assert!(
                !run.stdout.contains(s) && !run.stderr.contains(s),
                "the operator token was printed: {run:?}"
            );
        }
        run
    }

    /// Asserts exit 0 and returns stdout as JSON.
    fn json(&self) -> Value {
        assert_eq!(self.code, 0, "{self:?}");
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }

    /// Asserts a typed API error: exit 1, `error: <code>: …` on stderr, nothing on stdout.
    fn api_error(&self, code: &str) {
        assert_eq!(self.code, 1, "{self:?}");
        assert!(
            self.stderr.starts_with(&format!("error: {code}: ")),
            "expected error code {code}: {self:?}"
        );
        assert!(self.stdout.is_empty(), "{self:?}");
    }

    /// Asserts a usage / I/O error: exit 2, a message on stderr, nothing on stdout.
    fn usage_error(&self) {
        assert_eq!(self.code, 2, "{self:?}");
        assert!(!self.stderr.trim().is_empty(), "{self:?}");
        assert!(self.stdout.is_empty(), "{self:?}");
    }
}

fn run_local(args: &[&str]) -> Run {
    Run::of(cli_command().args(args), &[])
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn write_json(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(value).unwrap()).unwrap();
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

// ---------------------------------------------------------------- keygen

#[test]
fn keygen_writes_an_owner_only_private_jwk_and_prints_its_kid() {
    let dir = Scratch::new("keygen");
    let (key_path, pub_path) = (dir.path("k.json"), dir.path("k.pub.json"));
    let run = run_local(&[
        "keygen",
        "--out",
        s(&key_path),
        "--public-out",
        s(&pub_path),
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let kid = run.stdout.trim().to_owned();
    assert_eq!(kid.len(), 43, "a base64url SHA-256: {kid}");

    let private = read_json(&key_path);
    let pair = KeyPair::from_private_jwk(&private).unwrap();
    assert_eq!(
        pair.kid(),
        kid,
        "the printed kid is the RFC 7638 thumbprint"
    );
    assert_eq!(private["kid"], json!(kid));
    let public = read_json(&pub_path);
    assert!(public.get("d").is_none(), "no private part in {public}");
    assert_eq!(public["kid"], json!(kid));
    let pk = PublicKey::from_jwk(&public).unwrap();
    assert_eq!(pk, pair.public());
    assert_eq!(pk.thumbprint(), kid);
    #[cfg(unix)]
    {
        assert_eq!(mode(&key_path), 0o600, "the private key is owner-only");
        assert_ne!(
            mode(&pub_path) & 0o044,
            0,
            "the public key is readable by others"
        );
    }

    // A second key gets a fresh kid; an existing key is never replaced.
    let other = run_local(&["keygen", "--out", s(&dir.path("k2.json"))]);
    assert_eq!(other.code, 0, "{other:?}");
    assert_ne!(other.stdout.trim(), kid);
    let again = run_local(&["keygen", "--out", s(&key_path)]);
    again.usage_error();
    assert!(again.stderr.contains("already exists"), "{again:?}");
    assert_eq!(read_json(&key_path), private, "the key file is untouched");

    // Missing required options are usage errors.
    run_local(&["keygen"]).usage_error();
}

// ---------------------------------------------------------------- trust bundle

#[test]
fn bundle_sign_and_publish_only_a_newer_bundle_of_the_pinned_root() {
    let server = Server::start("bundle");
    let dir = Scratch::new("bundle-files");
    let current = server.bundle();
    assert_eq!(current.version(), 1);
    // The bundle's own issuer list is a valid ISSUERS.json.
    let issuers = dir.path("issuers.json");
    write_json(
        &issuers,
        &serde_json::to_value(&current.content().issuers).unwrap(),
    );
    // `serve --demo` keeps the demo root's private key in the data directory.
    let root = server.data.join("root.key.json");
    #[cfg(unix)]
    assert_eq!(mode(&root), 0o600);

    // A bundle signed by another root: signed fine locally, refused by the server.
    let stranger = dir.path("stranger.json");
    assert_eq!(
        run_local(&["keygen", "--out", s(&stranger)]).code,
        0,
        "keygen"
    );
    let forged = dir.path("forged.jws");
    let signed = run_local(&[
        "bundle",
        "sign",
        "--root",
        s(&stranger),
        "--issuers",
        s(&issuers),
        "--version",
        "7",
        "--out",
        s(&forged),
    ]);
    assert_eq!(signed.json()["version"], json!(7));
    let refused = server.cli(&["bundle", "publish", s(&forged)]);
    refused.api_error("trust_bundle_rejected");
    assert!(refused.stderr.contains("details:"), "{refused:?}");
    assert_eq!(server.bundle().version(), 1, "the pinned bundle stays");

    // Signed by the pinned root but not newer (same version, other content): rollback refused.
    let same = dir.path("same.jws");
    let signed = run_local(&[
        "bundle",
        "sign",
        "--root",
        s(&root),
        "--issuers",
        s(&issuers),
        "--version",
        "1",
        "--iat",
        &(current.content().iat + 1).to_string(),
        "--out",
        s(&same),
    ]);
    assert_eq!(signed.code, 0, "{signed:?}");
    server
        .cli(&["bundle", "publish", s(&same)])
        .api_error("trust_bundle_rejected");
    assert_eq!(server.bundle().jws(), current.jws(), "nothing changed");

    // Version 2 by the pinned root: accepted, served, and in use.
    let newer = dir.path("v2.jws");
    let signed = run_local(&[
        "bundle",
        "sign",
        "--root",
        s(&root),
        "--issuers",
        s(&issuers),
        "--version",
        "2",
        "--max-staleness",
        "86400",
        "--out",
        s(&newer),
    ]);
    let summary = signed.json();
    assert_eq!(summary["version"], json!(2));
    assert_eq!(summary["issuers"], json!(3));
    assert_eq!(summary["root_kid"], json!(server.root_pub().thumbprint()));
    let jws = std::fs::read_to_string(&newer).unwrap();
    let local = TrustBundle::verify(jws.trim(), &[server.root_pub()], Some(&current)).unwrap();
    assert_eq!(local.content().max_staleness, 86_400);
    assert_eq!(local.content().issuers, current.content().issuers);

    let published = server.cli(&["bundle", "publish", s(&newer)]);
    assert_eq!(published.json(), json!({"version": 2}));
    assert_eq!(
        server.bundle_jws().trim(),
        jws.trim(),
        "served as published"
    );
    let health = server.http.get_json(&server.url("/healthz"));
    assert_eq!(health["trust_bundle_version"], json!(2));
    // Now version 1 is a rollback even with the exact content it had.
    std::fs::write(dir.path("v1.jws"), current.jws()).unwrap();
    server
        .cli(&["bundle", "publish", s(&dir.path("v1.jws"))])
        .api_error("trust_bundle_rejected");
    assert_eq!(server.bundle().version(), 2);

    // Local input errors are exit 2: not a private key, not an issuer list, no file.
    let pub_only = dir.path("root.pub.json");
    std::fs::copy(server.data.join("root.pub.json"), &pub_only).unwrap();
    let args = |root: &Path, issuers: &Path| {
        run_local(&[
            "bundle",
            "sign",
            "--root",
            s(root),
            "--issuers",
            s(issuers),
            "--version",
            "3",
            "--out",
            s(&dir.path("x.jws")),
        ])
    };
    args(&pub_only, &issuers).usage_error();
    args(&root, &pub_only).usage_error();
    args(&root, &dir.path("missing.json")).usage_error();
    assert!(!dir.path("x.jws").exists());
    server
        .cli(&["bundle", "publish", s(&dir.path("missing.jws"))])
        .usage_error();
}

// ---------------------------------------------------------------- residents and licences

/// The status of `licence`'s copy as the server's published status list says.
fn published_status(server: &Server, sd_jwt: &str) -> u8 {
    let held = HeldLicence::parse(sd_jwt).unwrap();
    let reference = &held.visible()["status"]["status_list"];
    let uri = reference["uri"].as_str().unwrap();
    let idx = reference["idx"].as_u64().unwrap();
    server.status_list(uri).list.get(idx).unwrap()
}

#[test]
fn resident_add_then_licence_issue_suspend_reinstate_revoke() {
    let server = Server::start("licence");
    let dir = Scratch::new("licence-files");
    let code = "7KQ2-M9XD-4TRB-H0WE";
    let before = chrono::Utc::now().timestamp();
    let run = server.cli_env(
        &[
            "resident",
            "add",
            "--id",
            "cli-resident-1",
            "--name",
            "王五",
            "--uses",
            "2",
            "--valid-days",
            "7",
        ],
        &[("ZHANGBAN_ACTIVATION_CODE", code)],
    );
    assert!(
        !run.stdout.contains(code),
        "the activation code is not echoed"
    );
    let added = run.json();
    assert_eq!(added["id"], json!("cli-resident-1"));
    assert_eq!(added["uses"], json!(2));
    let expires = added["activation_expires_at"].as_i64().unwrap();
    assert!(
        (before + 7 * 86_400..=before + 7 * 86_400 + 60).contains(&expires),
        "{added}"
    );
    // The server's own validation comes back typed.
    server
        .cli_env(
            &[
                "resident",
                "add",
                "--id",
                "cli-resident-2",
                "--name",
                "赵六",
            ],
            &[("ZHANGBAN_ACTIVATION_CODE", "short")],
        )
        .api_error("invalid_resident");
    // From a file; and generated by the server, printed once.
    let code_file = dir.path("code.txt");
    std::fs::write(&code_file, "MX4N-8QZR-2KDT-7WPA\n").unwrap();
    let from_file = server
        .cli(&[
            "resident",
            "add",
            "--id",
            "cli-resident-3",
            "--name",
            "钱七",
            "--activation-code-file",
            s(&code_file),
        ])
        .json();
    assert!(from_file.get("activation_code").is_none(), "{from_file}");
    let generated = server
        .cli(&[
            "resident",
            "add",
            "--id",
            "cli-resident-4",
            "--name",
            "孙八",
        ])
        .json();
    let shown = generated["activation_code"].as_str().unwrap();
    assert_eq!(shown.len(), 19, "{shown}");
    let _ = server.enrol_device(shown);

    // The resident's phone enrols with the code, so issuing makes a copy for it.
    let (device, _token) = server.enrol_device(code);
    let claims_path = dir.path("claims.json");
    let claims = DemoWorld::typical_claims(4242);
    let licence_id = claims["licence_id"].as_str().unwrap().to_owned();
    write_json(&claims_path, &serde_json::to_value(&claims).unwrap());
    let issued = server
        .cli(&[
            "licence",
            "issue",
            "--resident",
            "cli-resident-1",
            "--issuer",
            MARKET_REGULATION.id,
            "--claims",
            s(&claims_path),
        ])
        .json();
    let copies = issued.as_array().unwrap();
    assert_eq!(copies.len(), 1, "one copy for the one device: {issued}");
    assert_eq!(copies[0]["licence_id"], json!(licence_id));
    assert_eq!(copies[0]["device_id"], json!(device.public().thumbprint()));
    let sd_jwt = copies[0]["sd_jwt"].as_str().unwrap().to_owned();
    let held = HeldLicence::parse(&sd_jwt).unwrap();
    assert_eq!(
        held.holder_key(),
        Some(device.public().into()),
        "bound to the device"
    );
    assert_eq!(published_status(&server, &sd_jwt), 0, "valid when issued");

    let status_change = |verb: &str, word: &str, bits: u8| {
        let out = server.cli(&["licence", verb, &licence_id]).json();
        assert_eq!(
            out,
            json!({"licence_id": licence_id, "status": word, "copies": 1})
        );
        assert_eq!(
            published_status(&server, &sd_jwt),
            bits,
            "{verb}: the status list was re-signed"
        );
    };
    status_change("suspend", "suspended", 2);
    status_change("reinstate", "valid", 0);
    status_change("revoke", "revoked", 1);

    // Typed errors: an unknown licence, an issuer outside the demo issuer's
    // scope (one this server holds no key for either), claims the validator refuses.
    server
        .cli(&["licence", "revoke", "no-such-licence"])
        .api_error("not_found");
    server
        .cli(&[
            "licence",
            "issue",
            "--resident",
            "cli-resident-1",
            "--issuer",
            "urn:zhangban:issuer:nobody",
            "--claims",
            s(&claims_path),
        ])
        .api_error("out_of_scope");
    let bad_claims = dir.path("bad-claims.json");
    write_json(&bad_claims, &json!({"licence_name": "营业执照"}));
    server
        .cli(&[
            "licence",
            "issue",
            "--resident",
            "cli-resident-1",
            "--issuer",
            MARKET_REGULATION.id,
            "--claims",
            s(&bad_claims),
        ])
        .api_error("invalid_licence");
    // Claims that are not a JSON object never leave the machine.
    write_json(&bad_claims, &json!(["licence_name"]));
    server
        .cli(&[
            "licence",
            "issue",
            "--resident",
            "cli-resident-1",
            "--issuer",
            MARKET_REGULATION.id,
            "--claims",
            s(&bad_claims),
        ])
        .usage_error();
}

// ---------------------------------------------------------------- guides

#[test]
fn guide_publish_then_withdraw_leaves_a_tombstone() {
    let server = Server::start("guide");
    let dir = Scratch::new("guide-files");
    let first = server
        .http
        .get_json(&server.url("/v1/catalog/changes?since=0&limit=1"));
    let mut guide: Guide = serde_json::from_value(first["changes"][0]["guide"].clone()).unwrap();
    // A new guide: same shape, a new implementation code (the id).
    let id = format!("{}CLI1", guide.implementation_code);
    guide.id.clone_from(&id);
    guide.implementation_code.clone_from(&id);
    guide.name = "命令行测试事项".into();
    let path = dir.path("guide.json");
    write_json(&path, &serde_json::to_value(&guide).unwrap());

    let head = first["head"].as_u64().unwrap();
    let published = server.cli(&["guide", "publish", s(&path)]).json();
    assert_eq!(published["id"], json!(id));
    assert_eq!(published["checksum"], json!(guide.checksum()));
    let seq = published["seq"].as_u64().unwrap();
    assert!(seq > head, "{published}");
    let served: Guide = serde_json::from_value(
        server
            .http
            .get_json(&server.url(&format!("/v1/catalog/guides/{id}"))),
    )
    .unwrap();
    assert_eq!(served, guide);

    let withdrawn = server.cli(&["guide", "withdraw", &id]).json();
    assert_eq!(withdrawn["id"], json!(id));
    assert_eq!(withdrawn["deleted"], json!(true));
    let tomb_seq = withdrawn["seq"].as_u64().unwrap();
    assert!(tomb_seq > seq);
    let feed = server
        .http
        .get_json(&server.url(&format!("/v1/catalog/changes?since={seq}")));
    let changes = feed["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{feed}");
    assert_eq!(changes[0]["id"], json!(id));
    assert_eq!(changes[0]["seq"], json!(tomb_seq));
    assert_eq!(changes[0]["deleted"], json!(true));
    assert!(changes[0]["guide"].is_null(), "a tombstone has no guide");
    let (status, _) = server
        .http
        .get_text(&server.url(&format!("/v1/catalog/guides/{id}")));
    assert_eq!(status, 404);

    // Withdrawing it again: typed 404. An invalid guide: typed 422. No id: usage.
    server
        .cli(&["guide", "withdraw", &id])
        .api_error("not_found");
    guide.name = " ".into();
    write_json(&path, &serde_json::to_value(&guide).unwrap());
    server
        .cli(&["guide", "publish", s(&path)])
        .api_error("invalid_guide");
    write_json(&path, &json!({"name": "no id"}));
    server.cli(&["guide", "publish", s(&path)]).usage_error();
    let after = server
        .http
        .get_json(&server.url(&format!("/v1/catalog/changes?since={tomb_seq}")));
    assert_eq!(after["changes"], json!([]), "nothing else was published");
}

// ---------------------------------------------------------------- submissions

#[test]
fn submission_transition_moves_a_real_submission_and_refuses_bad_moves() {
    let server = Server::start("submission");
    // The demo resident's phone submits a form that needs no licence.
    let (_device, token) = server.enrol_device(DEMO_ACTIVATION_CODE);
    let now = zhangban_tests::system_now();
    let mut since = 0;
    let (guide, values) = loop {
        let page = server
            .http
            .get_json(&server.url(&format!("/v1/catalog/changes?since={since}&limit=200")));
        let found = page["changes"].as_array().unwrap().iter().find_map(|c| {
            let g: Guide = serde_json::from_value(c["guide"].clone()).ok()?;
            let v = fill(&g, now)?;
            Some((g, v))
        });
        if let Some(found) = found {
            break found;
        }
        assert_eq!(page["more"], json!(true), "no simple guide in the catalog");
        since = page["next"].as_u64().unwrap();
    };
    let body = json!({"guide_id": guide.id, "form_version": guide.form.version, "values": values});
    let (status, text) = server
        .http
        .send(
            reqwest::Method::PUT,
            &server.url("/v1/submissions/cli-sub-1"),
            Some(&token),
            Some(&body),
        )
        .unwrap();
    assert_eq!(status, 200, "{text}");
    let receipt: Value = serde_json::from_str(&text).unwrap();
    let tracking = receipt["tracking_number"].as_str().unwrap().to_owned();

    let event = server
        .cli(&[
            "submission",
            "transition",
            &tracking,
            "accepted",
            "--note",
            "材料齐全，已受理",
        ])
        .json();
    assert_eq!(event["tracking_number"], json!(tracking));
    assert_eq!(event["state"], json!("accepted"));
    assert_eq!(event["note"], json!("材料齐全，已受理"));
    // The resident sees it.
    let (status, text) = server
        .http
        .send(
            reqwest::Method::GET,
            &server.url("/v1/submissions/cli-sub-1"),
            Some(&token),
            None,
        )
        .unwrap();
    assert_eq!(status, 200, "{text}");
    let record: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(record["state"], json!("accepted"));

    // accepted → approved skips review: the server's typed conflict.
    let refused = server.cli(&["submission", "transition", &tracking, "approved"]);
    refused.api_error("invalid_transition");
    let reviewing = server
        .cli(&["submission", "transition", &tracking, "reviewing"])
        .json();
    assert_eq!(reviewing["state"], json!("reviewing"));
    assert!(reviewing["note"].is_null());

    // An unknown tracking number: typed 404; an unknown state word: usage error.
    server
        .cli(&["submission", "transition", "ZB-NO-SUCH-NUMBER", "accepted"])
        .api_error("not_found");
    server
        .cli(&["submission", "transition", &tracking, "finished"])
        .usage_error();
}

// ---------------------------------------------------------------- credentials

#[test]
fn operator_token_sources_and_a_wrong_token() {
    let server = Server::start("token");
    let token = server.token();
    let wrong = "wrong-token-0123456789";
    let data = s(&server.data).to_owned();
    // `operator revoke` of an operator that does not exist (the bootstrap
    // admin's command): a 404 once authenticated.
    let withdraw_unknown = |env: &[(&str, &str)], args: &[&str]| {
        let mut cmd = cli_command();
        cmd.envs(env.iter().copied())
            .args([
                "operator",
                "revoke",
                "--name",
                "no-such-operator",
                "--server",
                &server.base,
            ])
            .args(args);
        Run::of(&mut cmd, &[&token, wrong])
    };

    // A wrong token: the server's typed 403 (a missing one would be 401 `unauthorized`).
    withdraw_unknown(&[], &["--operator-token", wrong, "--data-dir", &data]).api_error("forbidden");
    withdraw_unknown(
        &[("ZHANGBAN_OPERATOR_TOKEN", wrong)],
        &["--data-dir", &data],
    )
    .api_error("forbidden");

    // The right token from the flag, the environment, or the data directory
    // (flag and env win over the file): past authentication to the 404.
    withdraw_unknown(&[], &["--operator-token", &token]).api_error("not_found");
    withdraw_unknown(&[("ZHANGBAN_OPERATOR_TOKEN", &token)], &[]).api_error("not_found");
    withdraw_unknown(&[], &["--data-dir", &data]).api_error("not_found");
    withdraw_unknown(&[("ZHANGBAN_DATA_DIR", &data)], &[]).api_error("not_found");
    // ZHANGBAN_SERVER names the server when --server is absent.
    Run::of(
        cli_command().env("ZHANGBAN_SERVER", &server.base).args([
            "operator",
            "revoke",
            "--name",
            "no-such-operator",
            "--data-dir",
            &data,
        ]),
        &[&token],
    )
    .api_error("not_found");

    // Path segments are percent-encoded (a `/` in an id stays inside the
    // segment: the operator route answers, not the router's fallback), and a
    // path prefix of --server is kept.
    let encoded = withdraw_unknown(&[], &["--operator-token", &token]);
    assert!(
        encoded
            .stderr
            .contains("not_found: no such active operator"),
        "{encoded:?}"
    );
    let slash = Run::of(
        cli_command().args([
            "operator",
            "revoke",
            "--name",
            "a/b c",
            "--server",
            &server.base,
            "--data-dir",
            &data,
        ]),
        &[&token],
    );
    slash.api_error("not_found");
    assert!(
        slash.stderr.contains("not_found: no such active operator"),
        "{slash:?}"
    );
    let prefixed = Run::of(
        cli_command().args([
            "operator",
            "revoke",
            "--name",
            "no-such-operator",
            "--server",
            &format!("{}/prefix/", server.base),
            "--data-dir",
            &data,
        ]),
        &[&token],
    );
    prefixed.api_error("not_found");
    assert!(
        prefixed.stderr.contains("no such endpoint"),
        "/prefix/v1/operator/… is not a route: {prefixed:?}"
    );
    Run::of(
        cli_command().args([
            "operator",
            "revoke",
            "--name",
            "x",
            "--server",
            "ftp://127.0.0.1/",
            "--data-dir",
            &data,
        ]),
        &[&token],
    )
    .usage_error();

    // No token anywhere: a usage error before any request.
    let empty = Scratch::new("no-token");
    let none = withdraw_unknown(&[], &["--data-dir", s(empty.dir())]);
    none.usage_error();
    assert!(none.stderr.contains("operator token"), "{none:?}");

    // No server there: an I/O error (exit 2), not a typed one.
    let gone = format!("http://127.0.0.1:{}", free_port());
    Run::of(
        cli_command().args([
            "operator",
            "revoke",
            "--name",
            "x",
            "--server",
            &gone,
            "--operator-token",
            &token,
        ]),
        &[&token],
    )
    .usage_error();
}

// ---------------------------------------------------------------- audit trail

impl Server {
    /// Every audit row, oldest first, through `zhangban-server audit list`
    /// on the data directory (the server keeps running).
    fn audit_rows(&self) -> Vec<Value> {
        let run = Run::of(
            cli_command()
                .args(["audit", "list", "--limit", "100000", "--data-dir"])
                .arg(&self.data),
            &[&self.token()],
        );
        run.json().as_array().unwrap().clone()
    }

    /// Runs an operator subcommand and asserts it left exactly one audit
    /// row, by `actor`, for `action`, with outcome `ok`; returns the run.
    fn audited_once(&self, args: &[&str], actor: &str, action: &str) -> Run {
        let before = self.audit_rows();
        let run = self.cli(args);
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
        let after = self.audit_rows();
        assert_eq!(
            after.len(),
            before.len() + 1,
            "{args:?}: {:?}",
            &after[before.len()..]
        );
        assert_eq!(after[..before.len()], before[..], "older rows untouched");
        let row = &after[before.len()];
        assert_eq!(
            (
                row["actor"].as_str(),
                row["action"].as_str(),
                row["outcome"].as_str()
            ),
            (Some(actor), Some(action), Some("ok")),
            "{args:?}: {row}"
        );
        run
    }
}

#[test]
fn every_operator_subcommand_leaves_exactly_one_audit_row_and_the_chain_verifies() {
    let server = Server::start("audit");
    let dir = Scratch::new("audit-files");
    // Local-only commands touch no server: no row.
    let before = server.audit_rows().len();
    let root = server.data.join("root.key.json");
    assert_eq!(
        run_local(&["keygen", "--out", s(&dir.path("k.json"))]).code,
        0
    );
    let issuers = dir.path("issuers.json");
    write_json(
        &issuers,
        &serde_json::to_value(&server.bundle().content().issuers).unwrap(),
    );
    let v2 = dir.path("v2.jws");
    let signed = run_local(&[
        "bundle",
        "sign",
        "--root",
        s(&root),
        "--issuers",
        s(&issuers),
        "--version",
        "2",
        "--out",
        s(&v2),
    ]);
    assert_eq!(signed.code, 0, "{signed:?}");
    assert_eq!(
        server.audit_rows().len(),
        before,
        "keygen and bundle sign are local"
    );

    // Each command that acts through the server: one row, by the operator
    // whose token it used (the bootstrap admin or a demo operator).
    server.audited_once(
        &["bundle", "publish", s(&v2)],
        "bootstrap",
        "trust_bundle.publish",
    );
    server.audited_once(
        &[
            "resident",
            "add",
            "--id",
            "audit-resident",
            "--name",
            "周九",
        ],
        "bootstrap",
        "resident.add",
    );
    let claims = DemoWorld::typical_claims(7777);
    let licence_id = claims["licence_id"].as_str().unwrap().to_owned();
    let claims_path = dir.path("claims.json");
    write_json(&claims_path, &serde_json::to_value(&claims).unwrap());
    server.audited_once(
        &[
            "licence",
            "issue",
            "--resident",
            "audit-resident",
            "--issuer",
            MARKET_REGULATION.id,
            "--claims",
            s(&claims_path),
        ],
        "demo-issuer",
        "licence.issue",
    );
    for (verb, action) in [
        ("suspend", "licence.suspend"),
        ("reinstate", "licence.reinstate"),
        ("revoke", "licence.revoke"),
    ] {
        server.audited_once(&["licence", verb, &licence_id], "demo-issuer", action);
    }
    let first = server
        .http
        .get_json(&server.url("/v1/catalog/changes?since=0&limit=1"));
    let mut guide: Guide = serde_json::from_value(first["changes"][0]["guide"].clone()).unwrap();
    let id = format!("{}AUD1", guide.implementation_code);
    guide.id.clone_from(&id);
    guide.implementation_code.clone_from(&id);
    let guide_path = dir.path("guide.json");
    write_json(&guide_path, &serde_json::to_value(&guide).unwrap());
    server.audited_once(
        &["guide", "publish", s(&guide_path)],
        "demo-publisher",
        "guide.publish",
    );
    server.audited_once(
        &["guide", "withdraw", &id],
        "demo-publisher",
        "guide.withdraw",
    );

    // A submission to move (the demo resident's phone, a form without licences).
    let (_device, token) = server.enrol_device(DEMO_ACTIVATION_CODE);
    let now = zhangban_tests::system_now();
    let page = server
        .http
        .get_json(&server.url("/v1/catalog/changes?since=0&limit=1000"));
    let (g, values) = page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|c| {
            let g: Guide = serde_json::from_value(c["guide"].clone()).ok()?;
            let v = fill(&g, now)?;
            Some((g, v))
        })
        .expect("a simple guide");
    let body = json!({"guide_id": g.id, "form_version": g.form.version, "values": values});
    let (status, text) = server
        .http
        .send(
            reqwest::Method::PUT,
            &server.url("/v1/submissions/audit-sub-1"),
            Some(&token),
            Some(&body),
        )
        .unwrap();
    assert_eq!(status, 200, "{text}");
    let tracking = serde_json::from_str::<Value>(&text).unwrap()["tracking_number"]
        .as_str()
        .unwrap()
        .to_owned();
    server.audited_once(
        &[
            "submission",
            "transition",
            &tracking,
            "accepted",
            "--note",
            "已受理",
        ],
        "demo-reviewer",
        "submission.transition",
    );

    let added = server.audited_once(
        &[
            "operator",
            "add",
            "--name",
            "audit-reviewer",
            "--role",
            "reviewer",
            "--scope",
            &g.department_code,
        ],
        "bootstrap",
        "operator.add",
    );
    let created = added.json();
    assert!(
        created["token"].as_str().unwrap().starts_with("zbo_"),
        "{created}"
    );
    server.audited_once(&["operator", "list"], "bootstrap", "operator.list");
    server.audited_once(
        &["operator", "revoke", "--name", "audit-reviewer"],
        "bootstrap",
        "operator.revoke",
    );

    // The search lexicon (ADR 0181): add, list, remove; phones see each
    // change as a new version.
    let version = |server: &Server| {
        server.http.get_json(&server.url("/v1/catalog/lexicon"))["version"]
            .as_u64()
            .unwrap()
    };
    let v0 = version(&server);
    let added = server.audited_once(
        &[
            "lexicon",
            "add",
            "--term",
            "办低保",
            "--target",
            "最低生活保障",
            "--target",
            "低保",
            "--two-way",
            "--source",
            "民政窗口",
        ],
        "demo-publisher",
        "lexicon.put",
    );
    assert_eq!(added.json()["version"], json!(v0 + 1));
    let served = server.http.get_json(&server.url("/v1/catalog/lexicon"));
    let entry = served["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["term"] == json!("办低保"))
        .unwrap()
        .clone();
    assert_eq!(
        entry,
        json!({"term": "办低保", "targets": ["最低生活保障", "低保"], "two_way": true, "source": "民政窗口"})
    );
    let listed = server.audited_once(&["lexicon", "list"], "demo-publisher", "lexicon.list");
    assert_eq!(listed.json(), served);
    server.audited_once(
        &["lexicon", "remove", "--term", "办低保"],
        "demo-publisher",
        "lexicon.delete",
    );
    assert_eq!(version(&server), v0 + 2);
    server
        .cli(&["lexicon", "remove", "--term", "办低保"])
        .api_error("not_found");
    let long = "长".repeat(33);
    server
        .cli(&["lexicon", "add", "--term", "办低保", "--target", &long])
        .api_error("invalid_entry");

    // A refusal is one row too (a reviewer may not publish guides).
    let before = server.audit_rows().len();
    let reviewer =
        std::fs::read_to_string(server.data.join("demo-operators/demo-reviewer.token")).unwrap();
    server
        .cli_env(
            &["guide", "withdraw", &g.id],
            &[("ZHANGBAN_OPERATOR_TOKEN", reviewer.trim())],
        )
        .api_error("forbidden_role");
    let rows = server.audit_rows();
    assert_eq!(rows.len(), before + 1);
    assert_eq!(rows[before]["outcome"], json!("refused:forbidden_role"));
    assert_eq!(rows[before]["actor"], json!("demo-reviewer"));

    // No personal data in the trail: no names, no note, no claims.
    let all = serde_json::to_string(&rows).unwrap();
    for secret in ["周九", "已受理", "张三"] {
        assert!(!all.contains(secret), "{secret} in the audit trail");
    }
    for (field, value) in &claims {
        // The licence id (and the number inside it) is an id; the rest is not.
        if let (false, Some(v)) = (
            ["licence_id", "licence_number"].contains(&field.as_str()),
            value.as_str(),
        ) {
            assert!(!all.contains(v), "claim {field} in the audit trail");
        }
    }
    // Filters.
    let only = Run::of(
        cli_command()
            .args([
                "audit",
                "list",
                "--actor",
                "demo-issuer",
                "--action",
                "licence.revoke",
                "--data-dir",
            ])
            .arg(&server.data),
        &[],
    )
    .json();
    assert_eq!(only.as_array().unwrap().len(), 1, "{only}");

    // The untouched chain verifies, and its head is the last row's hash.
    let verified = Run::of(
        cli_command()
            .args(["audit", "verify", "--data-dir"])
            .arg(&server.data),
        &[],
    )
    .json();
    assert_eq!(verified["intact"], json!(true));
    assert_eq!(verified["rows"], json!(rows.len()));
    assert_eq!(verified["head"], rows[rows.len() - 1]["hash"]);
}
