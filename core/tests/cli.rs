//! The `zhangban` binary, end to end: an operator makes keys, signs a trust
//! bundle and a status list, issues a licence; the holder presents it; an
//! inspector verifies it. Exit codes: 0 valid / success, 1 rejected, 2 input error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const NOW: i64 = 1_795_000_000; // 2026-11-18
const ISSUER_ID: &str = "urn:zhangban:issuer:11511600MB1590032T";
const ISSUER_CODE: &str = "11511600MB1590032T";
const TYPE_CODE: &str = "11100000000013338W050";
const STATUS_URI: &str = "https://zhangban.example/status/11511600MB1590032T/1";
const IDX: u64 = 42;

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("zhangban-cli-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn zhangban(args: &[&str]) -> Output {
    zhangban_stdin(args, None)
}

fn zhangban_stdin(args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_zhangban"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run zhangban");
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.unwrap_or_default().as_bytes())
        .unwrap();
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// Runs and insists on exit code 0.
fn ok(args: &[&str]) -> String {
    let out = zhangban(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "zhangban {args:?}\nstdout: {}\nstderr: {}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

fn verdict(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verdict is not JSON ({e}): {}\nstderr: {}",
            stdout(out),
            stderr(out)
        )
    })
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The check character of a GB/T 36904 identifier (ISO/IEC 7064 MOD 37,36),
/// written out independently of the library.
fn licence_id(serial: &str) -> String {
    licence_id_of(ISSUER_CODE, serial)
}

fn licence_id_of(issuer_code: &str, serial: &str) -> String {
    let data = format!("{TYPE_CODE}{issuer_code}{serial}001");
    let mut p = 36u32;
    for c in data.chars() {
        let v = c.to_digit(36).unwrap();
        let s = match (p + v) % 36 {
            0 => 36,
            s => s,
        };
        p = (s * 2) % 37;
    }
    let check = std::char::from_digit((37 - p) % 36, 36)
        .unwrap()
        .to_ascii_uppercase();
    format!("1.2.156.3005.2.{TYPE_CODE}.{issuer_code}.{serial}.001.{check}")
}

/// Keys, a trust bundle, a status list and an issued licence, made with the CLI.
struct Operator {
    dir: Scratch,
}

impl Operator {
    fn new(name: &str, revoked: Option<u64>) -> Self {
        let dir = Scratch::new(name);
        for who in ["root", "issuer", "holder"] {
            let kid = ok(&[
                "keygen",
                "--out",
                &dir.arg(&format!("{who}.json")),
                "--public-out",
                &dir.arg(&format!("{who}.pub.json")),
            ]);
            let public = read_json(&dir.path(&format!("{who}.pub.json")));
            assert_eq!(kid.trim(), public["kid"], "keygen prints the kid");
            assert!(
                public.get("d").is_none(),
                "the public JWK has no private part"
            );
            assert!(read_json(&dir.path(&format!("{who}.json")))["d"].is_string());
        }
        let issuer_pub = read_json(&dir.path("issuer.pub.json"));
        let issuers = json!([{
            "id": ISSUER_ID,
            "name": "广安市市场监督管理局",
            "code": ISSUER_CODE,
            "licence_types": [format!("urn:zhangban:licence-type:{TYPE_CODE}")],
            "status_lists": [STATUS_URI],
            "keys": [{
                "jwk": {"kty": "OKP", "crv": "Ed25519", "x": issuer_pub["x"]},
                "not_before": NOW - 86_400,
                "not_after": NOW + 365 * 86_400,
            }],
        }]);
        std::fs::write(dir.path("issuers.json"), issuers.to_string()).unwrap();
        ok(&[
            "bundle",
            "sign",
            "--root",
            &dir.arg("root.json"),
            "--issuers",
            &dir.arg("issuers.json"),
            "--version",
            "1",
            "--iat",
            &NOW.to_string(),
            "--out",
            &dir.arg("bundle.jws"),
        ]);
        let idx = IDX.to_string();
        let revoked_idx = revoked.map(|i| i.to_string());
        let mut status = vec![
            "status-list",
            "build",
            "--issuer-key",
            &dir.arg("issuer.json"),
            "--uri",
            STATUS_URI,
            "--size",
            "1024",
            "--iat",
            &NOW.to_string(),
            "--ttl",
            "3600",
            "--out",
            &dir.arg("status.jwt"),
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
        if let Some(r) = &revoked_idx {
            status.extend(["--revoked".to_owned(), format!("1,{r}")]);
        }
        ok(&status.iter().map(String::as_str).collect::<Vec<_>>());
        let claims = json!({
            "licence_name": "营业执照",
            "licence_number": "91511602MA60000042",
            "licence_id": licence_id("2026000042"),
            "issuer_name": "广安市市场监督管理局",
            "holder_name": "广安市示例商贸有限公司",
            "legal_representative": "张三",
            "valid_from": "2026-01-01",
            "valid_until": "2045-12-31",
        });
        std::fs::write(dir.path("claims.json"), claims.to_string()).unwrap();
        ok(&[
            "issue",
            "--issuer-key",
            &dir.arg("issuer.json"),
            "--issuer-id",
            ISSUER_ID,
            "--claims",
            &dir.arg("claims.json"),
            "--holder",
            &dir.arg("holder.pub.json"),
            "--status-uri",
            STATUS_URI,
            "--status-idx",
            &idx,
            "--now",
            &NOW.to_string(),
            "--out",
            &dir.arg("licence.txt"),
        ]);
        Self { dir }
    }

    /// A presentation of `fields` with key binding for `nonce`, written to `presentation.txt`.
    fn present(&self, fields: &str, nonce: &str) -> String {
        let text = ok(&[
            "present",
            "--licence",
            &self.dir.arg("licence.txt"),
            "--disclose",
            fields,
            "--holder-key",
            &self.dir.arg("holder.json"),
            "--nonce",
            nonce,
            "--now",
            &(NOW + 10).to_string(),
        ]);
        std::fs::write(self.dir.path("presentation.txt"), &text).unwrap();
        text
    }

    fn verify(&self, extra: &[&str]) -> Output {
        self.verify_with(NOW + 20, &["status.jwt"], extra)
    }

    /// `verify` at `now` with the status list files `statuses` (in order).
    fn verify_with(&self, now: i64, statuses: &[&str], extra: &[&str]) -> Output {
        let mut args = vec![
            "verify".to_owned(),
            "--root-pub".to_owned(),
            self.dir.arg("root.pub.json"),
            "--bundle".to_owned(),
            self.dir.arg("bundle.jws"),
            "--now".to_owned(),
            now.to_string(),
        ];
        for s in statuses {
            args.push("--status".to_owned());
            args.push(self.dir.arg(s));
        }
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args.push(self.dir.arg("presentation.txt"));
        zhangban(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }
}

#[test]
fn keygen_bundle_status_issue_present_verify_is_valid() {
    let op = Operator::new("valid", None);
    let pres = op.present(
        "licence_name,licence_number,holder_name,legal_representative,valid_until",
        "n-123",
    );
    assert_eq!(
        pres.matches('\n').count(),
        1,
        "exactly one trailing newline"
    );
    assert_eq!(
        pres.trim_end().matches('~').count(),
        6,
        "issuer JWT, 5 disclosures, KB-JWT"
    );

    let out = op.verify(&[
        "--nonce",
        "n-123",
        "--holder",
        &op.dir.arg("holder.pub.json"),
    ]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let v = verdict(&out);
    assert_eq!(v["verdict"], "valid");
    assert_eq!(v["issuer"]["id"], ISSUER_ID);
    assert_eq!(v["issuer"]["name"], "广安市市场监督管理局");
    assert_eq!(v["vct"], format!("urn:zhangban:licence-type:{TYPE_CODE}"));
    assert_eq!(v["iat"], NOW);
    assert_eq!(v["nbf"], 1_767_196_800); // 2026-01-01T00:00:00+08:00
    assert_eq!(
        v["claims"],
        json!({
            "licence_name": "营业执照",
            "licence_number": "91511602MA60000042",
            "holder_name": "广安市示例商贸有限公司",
            "legal_representative": "张三",
            "valid_until": "2045-12-31",
        })
    );
    assert_eq!(v["bound"], true);
    assert_eq!(
        v["key_binding"],
        json!({"iat": NOW + 10, "aud": "inspection", "nonce": "n-123"})
    );
    assert_eq!(v["status"], json!({"uri": STATUS_URI, "idx": IDX}));

    // The same presentation from stdin, with any nonce.
    let out = zhangban_stdin(
        &[
            "verify",
            "--root-pub",
            &op.dir.arg("root.pub.json"),
            "--bundle",
            &op.dir.arg("bundle.jws"),
            "--status",
            &op.dir.arg("status.jwt"),
            "--any-nonce",
            "--now",
            &(NOW + 20).to_string(),
            "-",
        ],
        Some(&format!("\n  {pres}\n")),
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(
        verdict(&out)["claims"]["holder_name"],
        "广安市示例商贸有限公司"
    );

    // The bundle verifies and shows what was signed.
    let content: Value = serde_json::from_str(&ok(&[
        "bundle",
        "verify",
        "--root-pub",
        &op.dir.arg("root.pub.json"),
        &op.dir.arg("bundle.jws"),
    ]))
    .unwrap();
    assert_eq!(content["version"], 1);
    assert_eq!(content["issuers"][0]["id"], ISSUER_ID);
    let kid = read_json(&op.dir.path("issuer.pub.json"))["kid"].clone();
    assert_eq!(content["issuers"][0]["keys"][0]["kid"], kid, "kid computed");
}

/// A base64url nonce may begin with `-` (one in 64 random nonces does): both
/// `present --nonce` and `verify --nonce` take it as a value, not a flag.
#[test]
fn a_nonce_that_begins_with_a_dash_is_a_value() {
    let op = Operator::new("dash-nonce", None);
    op.present("licence_name,holder_name", "-Fz4a_framd7Ows6zN1NCA");
    let out = op.verify(&["--nonce", "-Fz4a_framd7Ows6zN1NCA"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(
        verdict(&out)["key_binding"]["nonce"],
        "-Fz4a_framd7Ows6zN1NCA"
    );
    let out = op.verify(&["--nonce", "-other"]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    assert_eq!(verdict(&out)["code"], "kb_nonce_mismatch");
}

#[test]
fn wrong_nonce_wrong_holder_and_missing_binding_are_rejected() {
    let op = Operator::new("reject", None);
    op.present("licence_name,holder_name", "right");
    let out = op.verify(&["--nonce", "wrong"]);
    assert_eq!(out.status.code(), Some(1));
    let v = verdict(&out);
    assert_eq!(v["verdict"], "rejected");
    assert_eq!(v["code"], "kb_nonce_mismatch");
    assert_eq!(v["class"], "stale_presentation");
    assert_eq!(v["zh"], "核验码不符，请持证人重新亮证");
    assert_eq!(v["en"], "Challenge mismatch, present again");

    // Expected holder: the issuer's key is not the holder's.
    let out = op.verify(&[
        "--nonce",
        "right",
        "--holder",
        &op.dir.arg("issuer.pub.json"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(verdict(&out)["code"], "wrong_holder");

    // An unbound presentation: refused by an inspector, accepted by --no-kb.
    let unbound = ok(&[
        "present",
        "--licence",
        &op.dir.arg("licence.txt"),
        "--disclose",
        "all",
    ]);
    std::fs::write(op.dir.path("presentation.txt"), &unbound).unwrap();
    let out = op.verify(&["--any-nonce"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(verdict(&out)["code"], "kb_missing");
    let out = op.verify(&["--no-kb"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let v = verdict(&out);
    assert_eq!(v["bound"], false);
    assert_eq!(v["key_binding"], Value::Null);
    assert_eq!(v["claims"].as_object().unwrap().len(), 8, "--disclose all");
}

#[test]
fn revoked_index_is_rejected_with_code_revoked() {
    let op = Operator::new("revoked", Some(IDX));
    op.present("licence_name,holder_name", "n");
    let out = op.verify(&["--nonce", "n"]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    let v = verdict(&out);
    assert_eq!(v["verdict"], "rejected");
    assert_eq!(v["code"], "revoked");
    assert_eq!(v["class"], "revoked");
    assert_eq!(v["zh"], "证照已被注销");
    assert!(stderr(&out).is_empty());
}

#[test]
fn a_status_list_that_fails_verification_is_a_rejection() {
    let op = Operator::new("badstatus", None);
    op.present("licence_name", "n");
    // A status list signed by the holder's key, which the bundle does not list.
    ok(&[
        "status-list",
        "build",
        "--issuer-key",
        &op.dir.arg("holder.json"),
        "--uri",
        STATUS_URI,
        "--size",
        "1024",
        "--iat",
        &NOW.to_string(),
        "--out",
        &op.dir.arg("status.jwt"),
    ]);
    let out = op.verify(&["--nonce", "n"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(verdict(&out)["code"], "status_list_signature_invalid");
}

#[test]
fn missing_file_is_an_input_error_with_exit_2() {
    let dir = Scratch::new("missing");
    let missing = dir.arg("no-such-bundle.jws");
    let out = zhangban(&[
        "verify",
        "--root-pub",
        &dir.arg("no-such-root.json"),
        "--bundle",
        &missing,
        "--any-nonce",
        &dir.arg("p.txt"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "no verdict on an input error");
    let err = stderr(&out);
    assert!(
        err.contains("no-such-root.json"),
        "stderr names the file: {err}"
    );

    let out = zhangban(&[
        "issue",
        "--issuer-key",
        &dir.arg("nope.json"),
        "--issuer-id",
        "x",
        "--claims",
        &dir.arg("claims.json"),
        "--holder",
        &dir.arg("holder.json"),
        "--status-uri",
        "u",
        "--status-idx",
        "1",
        "--out",
        &dir.arg("l.txt"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("nope.json"));
}

#[test]
fn bad_inputs_exit_2_with_a_clear_message() {
    let op = Operator::new("inputs", None);
    // keygen never overwrites a key.
    let out = zhangban(&["keygen", "--out", &op.dir.arg("issuer.json")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("refusing to overwrite"));

    // A public key where a private one is needed, and the reverse.
    let out = zhangban(&[
        "present",
        "--licence",
        &op.dir.arg("licence.txt"),
        "--disclose",
        "licence_name",
        "--holder-key",
        &op.dir.arg("holder.pub.json"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = zhangban(&[
        "verify",
        "--root-pub",
        &op.dir.arg("root.json"),
        "--bundle",
        &op.dir.arg("bundle.jws"),
        "--no-kb",
        &op.dir.arg("licence.txt"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("private key"), "{}", stderr(&out));

    // Unknown field to disclose.
    let out = zhangban(&[
        "present",
        "--licence",
        &op.dir.arg("licence.txt"),
        "--disclose",
        "shoe_size",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("shoe_size"));

    // Verify needs a nonce policy.
    let out = zhangban(&[
        "verify",
        "--root-pub",
        &op.dir.arg("root.pub.json"),
        "--bundle",
        &op.dir.arg("bundle.jws"),
        &op.dir.arg("licence.txt"),
    ]);
    assert_eq!(out.status.code(), Some(2));

    // A given kid that is not the key's thumbprint.
    let mut issuers = read_json(&op.dir.path("issuers.json"));
    issuers[0]["keys"][0]["kid"] = json!("not-the-thumbprint");
    std::fs::write(op.dir.path("issuers.json"), issuers.to_string()).unwrap();
    let out = zhangban(&[
        "bundle",
        "sign",
        "--root",
        &op.dir.arg("root.json"),
        "--issuers",
        &op.dir.arg("issuers.json"),
        "--version",
        "2",
        "--out",
        &op.dir.arg("bundle2.jws"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not-the-thumbprint"));
    assert!(!op.dir.path("bundle2.jws").exists());

    // Claims that are not a licence: the issue error is shown.
    std::fs::write(op.dir.path("claims.json"), r#"{"licence_name":"营业执照"}"#).unwrap();
    let out = zhangban(&[
        "issue",
        "--issuer-key",
        &op.dir.arg("issuer.json"),
        "--issuer-id",
        ISSUER_ID,
        "--claims",
        &op.dir.arg("claims.json"),
        "--holder",
        &op.dir.arg("holder.pub.json"),
        "--status-uri",
        STATUS_URI,
        "--status-idx",
        "1",
        "--vct",
        "urn:x",
        "--out",
        &op.dir.arg("l.txt"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("licence_id"),
        "names the missing claim: {}",
        stderr(&out)
    );
}

#[test]
fn bundle_rollback_is_rejected() {
    let op = Operator::new("rollback", None);
    let sign = |version: &str, out: &str| {
        ok(&[
            "bundle",
            "sign",
            "--root",
            &op.dir.arg("root.json"),
            "--issuers",
            &op.dir.arg("issuers.json"),
            "--version",
            version,
            "--out",
            &op.dir.arg(out),
        ])
    };
    sign("5", "v5.jws");
    sign("4", "v4.jws");
    let out = zhangban(&[
        "bundle",
        "verify",
        "--root-pub",
        &op.dir.arg("root.pub.json"),
        "--current",
        &op.dir.arg("v5.jws"),
        &op.dir.arg("v4.jws"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(verdict(&out)["code"], "bundle_rollback");
}

#[test]
fn demo_runs_and_its_files_verify() {
    let dir = Scratch::new("demo");
    let out = zhangban(&[
        "demo",
        "--dir",
        &dir.arg("world"),
        "--now",
        &NOW.to_string(),
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(text.contains("\"verdict\": \"valid\""), "{text}");
    assert!(text.contains("\"code\": \"revoked\""), "{text}");

    let world = dir.path("world");
    let market = "11511600MB1590032T";
    let out = zhangban(&[
        "verify",
        "--root-pub",
        &world.join("root.pub.json").display().to_string(),
        "--bundle",
        &world.join("bundle.jws").display().to_string(),
        "--status",
        &world
            .join(format!("status-{market}.jwt"))
            .display()
            .to_string(),
        "--holder",
        &world.join("holder.pub.json").display().to_string(),
        "--any-nonce",
        "--now",
        &NOW.to_string(),
        &world.join("presentation.txt").display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let v = verdict(&out);
    assert_eq!(v["claims"].as_object().unwrap().len(), 5);
    assert_eq!(v["status"]["idx"], 42);

    let out = zhangban(&[
        "verify",
        "--root-pub",
        &world.join("root.pub.json").display().to_string(),
        "--bundle",
        &world.join("bundle.jws").display().to_string(),
        "--status",
        &world
            .join(format!("status-{market}.revoked.jwt"))
            .display()
            .to_string(),
        "--any-nonce",
        "--now",
        &(NOW + 60).to_string(),
        &world.join("presentation.txt").display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(verdict(&out)["code"], "revoked");
}

#[test]
fn demo_without_dir_uses_a_fresh_temp_dir() {
    let out = zhangban(&["demo"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let dir = text
        .lines()
        .find_map(|l| l.strip_prefix("目录 dir : "))
        .expect("the demo names its directory");
    let dir = PathBuf::from(dir.trim());
    assert!(dir.starts_with(std::env::temp_dir()));
    assert!(dir.join("presentation.txt").is_file());
    std::fs::remove_dir_all(dir).unwrap();
}

/// Issue 13: under `--no-kb`, `bound` means a key binding inside the
/// freshness window; `--nonce ''` is a usage error.
#[test]
fn no_kb_reports_bound_only_when_fresh_and_empty_nonce_is_refused() {
    let op = Operator::new("nokb", None);
    op.present("licence_name", "n");
    let fresh = op.verify_with(NOW + 20, &["status.jwt"], &["--no-kb"]);
    assert_eq!(fresh.status.code(), Some(0), "stderr: {}", stderr(&fresh));
    assert_eq!(verdict(&fresh)["bound"], true);
    let old = op.verify_with(NOW + 2000, &["status.jwt"], &["--no-kb"]);
    assert_eq!(old.status.code(), Some(0), "stderr: {}", stderr(&old));
    let v = verdict(&old);
    assert_eq!(
        v["bound"], false,
        "a 33-minute-old key binding is not a binding now"
    );
    assert_eq!(v["key_binding"]["nonce"], "n");
    for extra in [&["--nonce", ""][..], &["--inspect", "--nonce", ""][..]] {
        let out = op.verify(extra);
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        assert!(stderr(&out).contains("--nonce"), "{}", stderr(&out));
    }
}

/// Issue 13 finding 1: `issue` refuses an identifier naming another issuer,
/// even without `issuer_code` among the claims.
#[test]
fn issue_refuses_an_identifier_naming_another_issuer() {
    let op = Operator::new("idissuer", None);
    let claims = json!({
        "licence_name": "营业执照",
        "licence_id": licence_id_of("11511600008760423K", "2026000043"),
        "holder_name": "广安市示例商贸有限公司",
    });
    std::fs::write(op.dir.path("claims2.json"), claims.to_string()).unwrap();
    let out = zhangban(&[
        "issue",
        "--issuer-key",
        &op.dir.arg("issuer.json"),
        "--issuer-id",
        ISSUER_ID,
        "--claims",
        &op.dir.arg("claims2.json"),
        "--holder",
        &op.dir.arg("holder.pub.json"),
        "--status-uri",
        STATUS_URI,
        "--status-idx",
        "43",
        "--now",
        &NOW.to_string(),
        "--out",
        &op.dir.arg("l2.txt"),
    ]);
    assert_eq!(out.status.code(), Some(2), "stdout: {}", stdout(&out));
    assert!(stderr(&out).contains("another issuer"), "{}", stderr(&out));
    assert!(!op.dir.path("l2.txt").exists());
}

/// Issue 13 finding 2: a list dated tomorrow never un-revokes, whatever
/// the order of `--status`.
#[test]
fn a_future_status_list_does_not_unrevoke_in_either_order() {
    let op = Operator::new("futurelist", Some(IDX));
    op.present("licence_name,holder_name", "n");
    ok(&[
        "status-list",
        "build",
        "--issuer-key",
        &op.dir.arg("issuer.json"),
        "--uri",
        STATUS_URI,
        "--size",
        "1024",
        "--iat",
        &(NOW + 86_400).to_string(),
        "--out",
        &op.dir.arg("future.jwt"),
    ]);
    for order in [["status.jwt", "future.jwt"], ["future.jwt", "status.jwt"]] {
        let out = op.verify_with(NOW + 20, &order, &["--nonce", "n"]);
        assert_eq!(out.status.code(), Some(1), "{order:?}: {}", stdout(&out));
        let v = verdict(&out);
        assert_eq!(v["code"], "status_list_iat_in_future", "{order:?}");
        assert_eq!(v["class"], "stale_trust_data");
    }
    // Alone, the present list says revoked.
    let out = op.verify_with(NOW + 20, &["status.jwt"], &["--nonce", "n"]);
    assert_eq!(verdict(&out)["code"], "revoked");
}
