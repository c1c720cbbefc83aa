//! `zhangban`: the operator / issuer / inspector command-line tool for
//! electronic licences (SD-JWT VC): keys, trust bundles, status lists,
//! issue, present, verify, and a self-contained demo.
//!
//! Exit codes: 0 success (or a valid verdict), 1 a rejected verdict (its JSON
//! is on stdout), 2 a usage, I/O or input error (a message on stderr).
//!
//! The system clock is read once, in `main`; every command that needs "now"
//! takes `--now <unix seconds>` instead.

use chrono::{FixedOffset, TimeZone as _};
use clap::{ArgGroup, Args, Parser, Subcommand};
use rand::rngs::OsRng;
use rand::{CryptoRng, RngCore};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use zhangban_core::credential::claims::GBT_36903;
use zhangban_core::credential::demo::{self, DemoWorld};
use zhangban_core::credential::issuer_list::parse_issuer_list;
use zhangban_core::credential::jose::b64e;
use zhangban_core::credential::status_list::{BITS, MAX_LIST_BYTES};
use zhangban_core::credential::verifier::AUD_INSPECTION;
use zhangban_core::credential::{
    HeldLicence, HolderKey, HolderSigner, Issuer, KeyBindingPolicy, KeyBindingRequest, KeyPair,
    LicenceId, LicenceRequest, NoncePolicy, P256KeyPair, PublicKey, Rejection, SoftwareHolderKey,
    Status, StatusList, StatusListCache, StatusListToken, StatusReference, TrustBundle,
    TrustBundleContent, VerifiedLicence, VerifyPolicy, verify_presentation,
};
use zhangban_core::inspection::inspector::read_scan;
use zhangban_core::inspection::printable::card_svg;
use zhangban_core::inspection::qr::{Qr, read_png};
use zhangban_core::inspection::showing::present_printable;
use zhangban_core::inspection::{Inspector, ShowMode, compact};

#[path = "phone/mod.rs"]
mod phone;

// ---------------------------------------------------------------- arguments

/// 掌办 zhangban: electronic licences (SD-JWT VC, Ed25519) — keys, trust
/// bundles, status lists, issue, present, verify.
#[derive(Debug, Parser)]
#[command(name = "zhangban", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate an Ed25519 key pair (private JWK, optional public JWK); prints the kid.
    Keygen(KeygenArgs),
    /// Sign or verify a trust bundle.
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// Build a signed status list token.
    #[command(subcommand)]
    StatusList(StatusListCommand),
    /// Issue a licence (SD-JWT VC with every disclosure) to a holder device.
    Issue(IssueArgs),
    /// Make a presentation of an issued licence, disclosing chosen fields.
    Present(PresentArgs),
    /// Verify a presentation against a trust bundle and status lists; prints the verdict as JSON.
    Verify(VerifyArgs),
    /// Build a whole demo world in a directory, issue, present, verify, revoke.
    Demo(DemoArgs),
    /// A resident's phone: enrol, sync, search, fill, submit, outbox, wallet.
    Phone(phone::PhoneArgs),
}

#[derive(Debug, Args)]
struct KeygenArgs {
    /// Where to write the private JWK (keep it secret; mode 0600).
    #[arg(long, value_name = "KEY.json")]
    out: PathBuf,
    /// Where to write the public JWK.
    #[arg(long, value_name = "PUB.json")]
    public_out: Option<PathBuf>,
    /// Make a P-256 holder key (ES256) instead of an Ed25519 key (issuers,
    /// the root, legacy holder keys).
    #[arg(long)]
    p256: bool,
}

#[derive(Debug, Subcommand)]
enum BundleCommand {
    /// Sign a trust bundle with the root key.
    Sign(BundleSignArgs),
    /// Verify a trust bundle against the root public key and print its content.
    Verify(BundleVerifyArgs),
}

#[derive(Debug, Args)]
struct BundleSignArgs {
    /// The national root's private JWK.
    #[arg(long, value_name = "ROOT.json")]
    root: PathBuf,
    /// A JSON array of issuers: {id, name, code, licence_types, status_lists,
    /// keys: [{jwk, not_before, not_after, kid?}]}.
    #[arg(long, value_name = "ISSUERS.json")]
    issuers: PathBuf,
    /// The bundle version (monotonic: verifiers never accept a lower one).
    #[arg(long, value_name = "N")]
    version: u64,
    /// Issue time (Unix seconds); default: now.
    #[arg(long, value_name = "T")]
    iat: Option<i64>,
    /// Seconds after `iat` beyond which verifiers consider the bundle stale.
    #[arg(long, value_name = "SECS", default_value_t = 2_592_000,
          value_parser = clap::value_parser!(i64).range(1..))]
    max_staleness: i64,
    /// Where to write the bundle JWS.
    #[arg(long, value_name = "BUNDLE.jws")]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct BundleVerifyArgs {
    /// The national root's public JWK.
    #[arg(long, value_name = "PUB.json")]
    root_pub: PathBuf,
    /// The bundle currently held: the new one must not roll back from it.
    #[arg(long, value_name = "OLD.jws")]
    current: Option<PathBuf>,
    /// The bundle to verify.
    #[arg(value_name = "BUNDLE.jws")]
    bundle: PathBuf,
}

#[derive(Debug, Subcommand)]
enum StatusListCommand {
    /// Build and sign a status list token (2 bits per licence).
    Build(StatusListBuildArgs),
}

#[derive(Debug, Args)]
struct StatusListBuildArgs {
    /// The issuer's private JWK.
    #[arg(long, value_name = "KEY.json")]
    issuer_key: PathBuf,
    /// The list's URI (`sub`), as licences reference it.
    #[arg(long, value_name = "URI")]
    uri: String,
    /// How many licences the list holds.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    size: u64,
    /// Indices to mark revoked (comma-separated, repeatable).
    #[arg(long, value_name = "IDX,…", value_delimiter = ',')]
    revoked: Vec<u64>,
    /// Indices to mark suspended (comma-separated, repeatable).
    #[arg(long, value_name = "IDX,…", value_delimiter = ',')]
    suspended: Vec<u64>,
    /// Issue time (Unix seconds); default: now.
    #[arg(long, value_name = "T")]
    iat: Option<i64>,
    /// Hard expiry (Unix seconds).
    #[arg(long, value_name = "T")]
    exp: Option<i64>,
    /// Suggested refresh interval (seconds).
    #[arg(long, value_name = "S", value_parser = clap::value_parser!(i64).range(1..))]
    ttl: Option<i64>,
    /// Where to write the token.
    #[arg(long, value_name = "STATUS.jwt")]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct IssueArgs {
    /// The issuer's private JWK.
    #[arg(long, value_name = "KEY.json")]
    issuer_key: PathBuf,
    /// The issuer's id in the trust bundle (`iss`).
    #[arg(long, value_name = "ID")]
    issuer_id: String,
    /// The issuing body's code (ZZBFJGDM) in the trust bundle; the licence
    /// identifier must name it. Default: the last `:` segment of the issuer
    /// id (`urn:zhangban:issuer:<code>`).
    #[arg(long, value_name = "CODE")]
    issuer_code: Option<String>,
    /// A JSON object of licence fields.
    #[arg(long, value_name = "CLAIMS.json")]
    claims: PathBuf,
    /// The holder device's public JWK (`cnf`).
    #[arg(long, value_name = "HOLDER_PUB.json")]
    holder: PathBuf,
    /// The status list URI.
    #[arg(long, value_name = "URI")]
    status_uri: String,
    /// The licence's index in the status list.
    #[arg(long, value_name = "N")]
    status_idx: u64,
    /// The licence type; default: derived from licence_type_code or licence_id.
    #[arg(long, value_name = "VCT")]
    vct: Option<String>,
    /// Issue time (Unix seconds); default: now.
    #[arg(long, value_name = "T")]
    now: Option<i64>,
    /// Where to write the issued licence.
    #[arg(long, value_name = "LICENCE.txt")]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct PresentArgs {
    /// The issued licence.
    #[arg(long, value_name = "LICENCE.txt")]
    licence: PathBuf,
    /// The fields to disclose (comma-separated), or `all`.
    #[arg(long, value_name = "a,b,c", value_delimiter = ',', required = true)]
    disclose: Vec<String>,
    /// The holder device's private JWK: adds a key binding JWT.
    #[arg(long, value_name = "KEY.json")]
    holder_key: Option<PathBuf>,
    /// Key binding audience.
    #[arg(long, value_name = "AUD", requires = "holder_key")]
    aud: Option<String>,
    /// Key binding nonce; default: a random 128-bit value. Base64url nonces
    /// may begin with `-`, so a value that looks like a flag is taken as is.
    #[arg(
        long,
        value_name = "NONCE",
        requires = "holder_key",
        allow_hyphen_values = true
    )]
    nonce: Option<String>,
    /// Key binding time (Unix seconds); default: now.
    #[arg(long, value_name = "T")]
    now: Option<i64>,
    /// Print the QR code in the terminal (and its version) instead of the text.
    #[arg(long)]
    qr: bool,
    /// Write the QR code as a PNG image.
    #[arg(long, value_name = "QR.png")]
    png: Option<PathBuf>,
    /// Write the QR code as an SVG image.
    #[arg(long, value_name = "QR.svg")]
    svg: Option<PathBuf>,
    /// Write the compact frame the QR code carries (binary).
    #[arg(long, value_name = "FRAME.bin")]
    frame_out: Option<PathBuf>,
    /// Make a printable card instead (sealed, valid for --valid-days) and
    /// write it as an A4 SVG page.
    #[arg(long, value_name = "CARD.svg", requires = "holder_key", conflicts_with_all = ["aud", "nonce"])]
    printable: Option<PathBuf>,
    /// Validity of a printed card, in days.
    #[arg(long, value_name = "DAYS", default_value_t = 180, value_parser = clap::value_parser!(i64).range(1..=366))]
    valid_days: i64,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("binding").required(true).multiple(true).args(["nonce", "any_nonce", "no_kb", "inspect"])))]
struct VerifyArgs {
    /// The national root's public JWK (pinned).
    #[arg(long, value_name = "PUB.json")]
    root_pub: PathBuf,
    /// The trust bundle.
    #[arg(long, value_name = "BUNDLE.jws")]
    bundle: PathBuf,
    /// A status list token (repeatable).
    #[arg(long, value_name = "STATUS.jwt")]
    status: Vec<PathBuf>,
    /// Expected key binding audience.
    #[arg(long, value_name = "AUD", default_value = AUD_INSPECTION, conflicts_with = "no_kb")]
    aud: String,
    /// The exact nonce the key binding must carry (may begin with `-`, as a
    /// base64url nonce can).
    #[arg(long, value_name = "NONCE", allow_hyphen_values = true)]
    nonce: Option<String>,
    /// Accept any non-empty nonce (keep your own replay cache).
    #[arg(long)]
    any_nonce: bool,
    /// Do not require key binding (a wallet check).
    #[arg(long)]
    no_kb: bool,
    /// Inspector mode: a dynamic presentation (any fresh nonce, or --nonce)
    /// or a printed card; prints the inspector's verdict (zh/en texts).
    #[arg(long)]
    inspect: bool,
    /// The licence must be bound to this holder public JWK.
    #[arg(long, value_name = "HOLDER_PUB.json")]
    holder: Option<PathBuf>,
    /// Allowed clock skew in seconds (default 300).
    #[arg(long, value_name = "S", value_parser = clap::value_parser!(i64).range(0..))]
    skew: Option<i64>,
    /// Verification time (Unix seconds); default: now.
    #[arg(long, value_name = "T")]
    now: Option<i64>,
    /// The presentation: SD-JWT text, a QR frame, or a PNG image of the QR
    /// code; `-` for stdin.
    #[arg(value_name = "PRESENTATION_FILE_or_-")]
    presentation: PathBuf,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Where to write the demo files; default: a new directory under the system temp dir.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Demo time (Unix seconds); default: now.
    #[arg(long, value_name = "T")]
    now: Option<i64>,
}

// ---------------------------------------------------------------- outcomes

/// What a command produced: stdout text and the exit code.
#[derive(Debug)]
struct Done {
    stdout: String,
    exit: u8,
}

impl Done {
    fn ok(stdout: String) -> Self {
        Self { stdout, exit: 0 }
    }
}

/// Why a command did not complete.
#[derive(Debug)]
enum Failure {
    /// Usage, I/O or input error: a message for stderr, exit 2.
    Input(String),
    /// A verdict: the rejection JSON on stdout, exit 1.
    Rejected(Rejection),
}

fn input(msg: impl Into<String>) -> Failure {
    Failure::Input(msg.into())
}

type Outcome<T> = Result<T, Failure>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let clock = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let (stdout, stderr, code) = match run(cli.command, clock, &mut OsRng) {
        Ok(done) => (done.stdout, String::new(), done.exit),
        Err(Failure::Rejected(r)) => (rejected_json(&r), String::new(), 1),
        Err(Failure::Input(msg)) => (String::new(), format!("zhangban: error: {msg}\n"), 2),
    };
    // A closed stdout/stderr (e.g. a pipe into `head`) is not worth a panic.
    let _ = std::io::stdout().lock().write_all(stdout.as_bytes());
    let _ = std::io::stderr().lock().write_all(stderr.as_bytes());
    ExitCode::from(code)
}

fn run<R: RngCore + CryptoRng>(command: Command, clock: i64, rng: &mut R) -> Outcome<Done> {
    match command {
        Command::Keygen(a) => keygen(&a, rng),
        Command::Bundle(BundleCommand::Sign(a)) => bundle_sign(&a, clock),
        Command::Bundle(BundleCommand::Verify(a)) => bundle_verify(&a),
        Command::StatusList(StatusListCommand::Build(a)) => status_list_build(&a, clock),
        Command::Issue(a) => issue(&a, clock, rng),
        Command::Present(a) => present(&a, clock, rng),
        Command::Verify(a) => verify(&a, clock),
        Command::Demo(a) => run_demo(&a, clock, rng),
        Command::Phone(a) => phone::run(a),
    }
}

// ---------------------------------------------------------------- files

fn read_text(path: &Path) -> Outcome<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| input(format!("cannot read stdin: {e}")))?;
        return Ok(text);
    }
    std::fs::read_to_string(path).map_err(|e| input(format!("cannot read {}: {e}", path.display())))
}

fn read_json(path: &Path) -> Outcome<Value> {
    serde_json::from_str(&read_text(path)?)
        .map_err(|e| input(format!("{}: not valid JSON: {e}", path.display())))
}

/// Checks an optional `kid` member against the key's RFC 7638 thumbprint.
fn check_kid(jwk: &Value, key: &PublicKey, path: &Path) -> Outcome<()> {
    check_kid_is(jwk, &key.thumbprint(), path)
}

fn check_kid_is(jwk: &Value, thumbprint: &str, path: &Path) -> Outcome<()> {
    match jwk.get("kid") {
        None => Ok(()),
        Some(Value::String(kid)) if kid == thumbprint => Ok(()),
        Some(kid) => Err(input(format!(
            "{}: kid {kid} is not the key's RFC 7638 thumbprint {thumbprint}",
            path.display(),
        ))),
    }
}

/// A holder device's private JWK: P-256 or (legacy) Ed25519.
fn read_holder_private_key(path: &Path) -> Outcome<SoftwareHolderKey> {
    let jwk = read_json(path)?;
    let key = SoftwareHolderKey::from_private_jwk(&jwk).map_err(|e| {
        input(format!(
            "{}: not a private P-256 or Ed25519 JWK: {e}",
            path.display()
        ))
    })?;
    check_kid_is(&jwk, &key.holder_key().thumbprint(), path)?;
    Ok(key)
}

/// A holder device's public JWK: P-256 or (legacy) Ed25519.
fn read_holder_public_key(path: &Path) -> Outcome<HolderKey> {
    let jwk = read_json(path)?;
    let key = HolderKey::from_jwk(&jwk).map_err(|e| {
        input(format!(
            "{}: not a public P-256 or Ed25519 JWK: {e}",
            path.display()
        ))
    })?;
    check_kid_is(&jwk, &key.thumbprint(), path)?;
    Ok(key)
}

fn read_private_key(path: &Path) -> Outcome<KeyPair> {
    let jwk = read_json(path)?;
    let key = KeyPair::from_private_jwk(&jwk).map_err(|e| {
        input(format!(
            "{}: not a private Ed25519 JWK: {e}",
            path.display()
        ))
    })?;
    check_kid(&jwk, &key.public(), path)?;
    Ok(key)
}

fn read_public_key(path: &Path) -> Outcome<PublicKey> {
    let jwk = read_json(path)?;
    let key = PublicKey::from_jwk(&jwk)
        .map_err(|e| input(format!("{}: not a public Ed25519 JWK: {e}", path.display())))?;
    check_kid(&jwk, &key, path)?;
    Ok(key)
}

/// How a file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    /// Anything public: created or replaced.
    Public,
    /// A private key: readable by its owner only, created or replaced.
    Secret,
    /// A freshly generated private key: never replaces an existing file.
    NewSecret,
}

fn write_file(path: &Path, contents: &str, kind: FileKind) -> Outcome<()> {
    let fail = |e: std::io::Error| input(format!("cannot write {}: {e}", path.display()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if kind == FileKind::NewSecret {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
    }
    #[cfg(unix)]
    if kind != FileKind::Public {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            input(format!(
                "{} already exists; refusing to overwrite a key",
                path.display()
            ))
        } else {
            fail(e)
        }
    })?;
    file.write_all(contents.as_bytes()).map_err(fail)?;
    Ok(())
}

fn pretty(value: &impl Serialize) -> String {
    // Serializing JSON values and plain structs into a String cannot fail.
    serde_json::to_string_pretty(value).unwrap_or_default()
}

fn write_json(path: &Path, value: &Value, kind: FileKind) -> Outcome<()> {
    write_file(path, &(pretty(value) + "\n"), kind)
}

fn public_jwk_with_kid(key: &PublicKey) -> Value {
    let mut jwk = key.to_jwk();
    if let Value::Object(m) = &mut jwk {
        m.insert("kid".into(), Value::String(key.thumbprint()));
    }
    jwk
}

// ---------------------------------------------------------------- keygen

fn keygen<R: RngCore + CryptoRng>(a: &KeygenArgs, rng: &mut R) -> Outcome<Done> {
    if a.p256 {
        let key = P256KeyPair::generate(rng);
        let public = key.holder_key();
        write_json(&a.out, &key.to_private_jwk(), FileKind::NewSecret)?;
        if let Some(path) = &a.public_out {
            let mut jwk = public.to_jwk();
            if let Value::Object(m) = &mut jwk {
                m.insert("kid".into(), Value::String(public.thumbprint()));
            }
            write_json(path, &jwk, FileKind::Public)?;
        }
        return Ok(Done::ok(format!("{}\n", public.thumbprint())));
    }
    let key = KeyPair::generate(rng);
    write_json(&a.out, &key.to_private_jwk(), FileKind::NewSecret)?;
    if let Some(path) = &a.public_out {
        write_json(path, &public_jwk_with_kid(&key.public()), FileKind::Public)?;
    }
    Ok(Done::ok(format!("{}\n", key.kid())))
}

// ---------------------------------------------------------------- bundle

fn bundle_sign(a: &BundleSignArgs, clock: i64) -> Outcome<Done> {
    let root = read_private_key(&a.root)?;
    let issuers = parse_issuer_list(&read_json(&a.issuers)?)
        .map_err(|e| input(format!("{}: {e}", a.issuers.display())))?;
    let content = TrustBundleContent {
        version: a.version,
        iat: a.iat.unwrap_or(clock),
        max_staleness: a.max_staleness,
        issuers,
    };
    let jws = content
        .sign(&root)
        .map_err(|e| input(format!("cannot serialize the bundle: {e}")))?;
    // The same checks every verifier makes, before anything is published.
    TrustBundle::verify(&jws, &[root.public()], None)
        .map_err(|r| input(format!("the signed bundle does not verify: {r}")))?;
    write_file(&a.out, &format!("{jws}\n"), FileKind::Public)?;
    let keys: usize = content.issuers.iter().map(|i| i.keys.len()).sum();
    Ok(Done::ok(format!(
        "trust bundle v{} ({} issuers, {keys} keys, iat {}, max staleness {} s) signed by root {} → {}\n",
        content.version,
        content.issuers.len(),
        content.iat,
        content.max_staleness,
        root.kid(),
        a.out.display()
    )))
}

/// Reads and verifies a bundle; a bundle that does not verify is a verdict.
fn load_bundle(
    root: &PublicKey,
    path: &Path,
    current: Option<&TrustBundle>,
) -> Outcome<TrustBundle> {
    let jws = read_text(path)?;
    TrustBundle::verify(jws.trim(), std::slice::from_ref(root), current).map_err(Failure::Rejected)
}

fn bundle_verify(a: &BundleVerifyArgs) -> Outcome<Done> {
    let root = read_public_key(&a.root_pub)?;
    let current = match &a.current {
        None => None,
        Some(path) => Some(load_bundle(&root, path, None).map_err(|f| match f {
            Failure::Rejected(r) => input(format!(
                "the current bundle {} does not verify: {r}",
                path.display()
            )),
            other => other,
        })?),
    };
    let bundle = load_bundle(&root, &a.bundle, current.as_ref())?;
    Ok(Done::ok(pretty(bundle.content()) + "\n"))
}

// ---------------------------------------------------------------- status list

fn status_list_build(a: &StatusListBuildArgs, clock: i64) -> Outcome<Done> {
    let key = read_private_key(&a.issuer_key)?;
    let max_entries = (MAX_LIST_BYTES as u64) * 8 / u64::from(BITS);
    if a.size > max_entries {
        return Err(input(format!(
            "--size {} is beyond the {max_entries} entries a verifier accepts",
            a.size
        )));
    }
    let revoked: HashSet<u64> = a.revoked.iter().copied().collect();
    let suspended: HashSet<u64> = a.suspended.iter().copied().collect();
    if let Some(both) = revoked.intersection(&suspended).min() {
        return Err(input(format!("index {both} is both revoked and suspended")));
    }
    let mut list = StatusList::new(a.size);
    for (indices, status) in [(&revoked, Status::Revoked), (&suspended, Status::Suspended)] {
        for &idx in indices {
            if idx >= a.size {
                return Err(input(format!(
                    "index {idx} is beyond the list (--size {})",
                    a.size
                )));
            }
            list.set(idx, status)
                .map_err(|e| input(format!("{e} (--size {})", a.size)))?;
        }
    }
    let iat = a.iat.unwrap_or(clock);
    if a.exp.is_some_and(|exp| exp < iat) {
        return Err(input("--exp is before the list's issue time"));
    }
    let token = StatusListToken {
        uri: &a.uri,
        list: &list,
        iat,
        exp: a.exp,
        ttl: a.ttl,
    }
    .sign(&key);
    write_file(&a.out, &format!("{token}\n"), FileKind::Public)?;
    Ok(Done::ok(format!(
        "status list {} ({} entries, {} revoked, {} suspended, iat {iat}) signed by {} → {}\n",
        a.uri,
        a.size,
        revoked.len(),
        suspended.len(),
        key.kid(),
        a.out.display()
    )))
}

// ---------------------------------------------------------------- issue

/// The default `vct`: from `licence_type_code`, else from the type code of `licence_id`.
fn default_vct(claims: &BTreeMap<String, Value>) -> Outcome<String> {
    if let Some(code) = claims.get("licence_type_code").and_then(Value::as_str) {
        return Ok(demo::vct_for(code));
    }
    let id = claims
        .get("licence_id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            input("cannot derive vct: no licence_type_code or licence_id; pass --vct")
        })?;
    let id: LicenceId = id
        .parse()
        .map_err(|e| input(format!("cannot derive vct from licence_id: {e}")))?;
    Ok(demo::vct_for(id.type_code()))
}

fn issue<R: RngCore + CryptoRng>(a: &IssueArgs, clock: i64, rng: &mut R) -> Outcome<Done> {
    let key = read_private_key(&a.issuer_key)?;
    let holder = read_holder_public_key(&a.holder)?;
    let claims: BTreeMap<String, Value> =
        serde_json::from_value(read_json(&a.claims)?).map_err(|_| {
            input(format!(
                "{}: must be a JSON object of licence fields",
                a.claims.display()
            ))
        })?;
    let vct = match &a.vct {
        Some(v) => v.clone(),
        None => default_vct(&claims)?,
    };
    let issuer_code = match &a.issuer_code {
        Some(c) => c.clone(),
        None => a
            .issuer_id
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_owned(),
    };
    let issuer = Issuer::new(a.issuer_id.clone(), key);
    let request = LicenceRequest {
        vct: vct.clone(),
        claims,
        holder,
        status: StatusReference {
            uri: a.status_uri.clone(),
            idx: a.status_idx,
        },
        issuer_code,
    };
    let licence = issuer
        .issue(&request, a.now.unwrap_or(clock), rng)
        .map_err(|e| input(format!("cannot issue: {e}")))?;
    write_file(&a.out, &format!("{licence}\n"), FileKind::Public)?;
    Ok(Done::ok(format!(
        "issued {vct} ({} fields, {} bytes, status {}#{}) by {} → {}\n",
        request.claims.len(),
        licence.len(),
        a.status_uri,
        a.status_idx,
        issuer.key().kid(),
        a.out.display()
    )))
}

// ---------------------------------------------------------------- present

fn read_licence(path: &Path) -> Outcome<HeldLicence> {
    HeldLicence::parse(read_text(path)?.trim())
        .map_err(|r| input(format!("{}: not an issued licence: {r}", path.display())))
}

fn random_nonce<R: RngCore + CryptoRng>(rng: &mut R) -> String {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    b64e(bytes)
}

fn present<R: RngCore + CryptoRng>(a: &PresentArgs, clock: i64, rng: &mut R) -> Outcome<Done> {
    let held = read_licence(&a.licence)?;
    let fields: Vec<&str> = if a.disclose.iter().any(|f| f == "all") {
        held.claims().into_keys().collect()
    } else {
        a.disclose.iter().map(|f| f.trim()).collect()
    };
    let key = a
        .holder_key
        .as_deref()
        .map(read_holder_private_key)
        .transpose()?;
    let now = a.now.unwrap_or(clock);
    if let Some(card_path) = &a.printable {
        let key = key
            .as_ref()
            .ok_or_else(|| input("--printable needs --holder-key"))?;
        let shown = present_printable(&held, &fields, key, now, a.valid_days * 86_400)
            .map_err(|e| input(format!("cannot present: {e}")))?;
        let qr = Qr::new(&shown.frame).map_err(|e| input(e.to_string()))?;
        let ShowMode::Printable {
            printed_at,
            valid_until,
        } = shown.mode
        else {
            return Err(input("not a printable presentation"));
        };
        let claims: BTreeMap<String, Value> = fields
            .iter()
            .filter_map(|f| {
                held.claims()
                    .get(f)
                    .map(|v| ((*f).to_owned(), (*v).clone()))
            })
            .collect();
        write_bytes(
            card_path,
            card_svg(&qr, &claims, printed_at, valid_until).as_bytes(),
        )?;
        return qr_outputs(a, &shown.presentation, &shown.frame, &qr);
    }
    let nonce = match &a.nonce {
        Some(n) => n.clone(),
        None => random_nonce(rng),
    };
    let binding = key.as_ref().map(|key| KeyBindingRequest {
        key,
        audience: a.aud.as_deref().unwrap_or(AUD_INSPECTION),
        nonce: &nonce,
        iat: now,
    });
    let presentation = held
        .present(&fields, binding)
        .map_err(|e| input(format!("cannot present: {e}")))?;
    if !(a.qr || a.png.is_some() || a.svg.is_some() || a.frame_out.is_some()) {
        return Ok(Done::ok(format!("{presentation}\n")));
    }
    let frame = compact::encode(&presentation).map_err(|e| input(e.to_string()))?;
    let qr = Qr::new(&frame).map_err(|e| input(e.to_string()))?;
    qr_outputs(a, &presentation, &frame, &qr)
}

/// Writes the requested QR outputs; stdout is the terminal QR (with
/// `--qr`) or the presentation text.
fn qr_outputs(a: &PresentArgs, presentation: &str, frame: &[u8], qr: &Qr) -> Outcome<Done> {
    if let Some(p) = &a.frame_out {
        write_bytes(p, frame)?;
    }
    if let Some(p) = &a.png {
        write_bytes(p, &qr.to_png(6))?;
    }
    if let Some(p) = &a.svg {
        write_bytes(p, qr.to_svg(8).as_bytes())?;
    }
    let summary = format!(
        "QR version {} at ECC M: {} bytes ({} characters as text)\n",
        qr.version(),
        frame.len(),
        presentation.len()
    );
    if a.qr {
        Ok(Done::ok(qr.to_terminal() + &summary))
    } else {
        Ok(Done::ok(format!("{presentation}\n")))
    }
}

fn write_bytes(path: &Path, bytes: &[u8]) -> Outcome<()> {
    std::fs::write(path, bytes).map_err(|e| input(format!("cannot write {}: {e}", path.display())))
}

/// Reads a scanned presentation: a PNG image of a QR code, a QR frame, or text.
fn read_scan_file(path: &Path) -> Outcome<Vec<u8>> {
    let bytes = if path == Path::new("-") {
        let mut b = Vec::new();
        std::io::stdin()
            .read_to_end(&mut b)
            .map_err(|e| input(format!("cannot read stdin: {e}")))?;
        b
    } else {
        std::fs::read(path).map_err(|e| input(format!("cannot read {}: {e}", path.display())))?
    };
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return match read_png(&bytes) {
            Ok(mut codes) => Ok(codes.swap_remove(0)),
            Err(_) => Err(Failure::Rejected(Rejection::UnreadableCode)),
        };
    }
    Ok(bytes)
}

// ---------------------------------------------------------------- verify

#[derive(Debug, Serialize)]
struct ValidVerdict<'a> {
    verdict: &'static str,
    issuer: IssuerOut<'a>,
    vct: &'a str,
    iat: i64,
    nbf: Option<i64>,
    exp: Option<i64>,
    claims: &'a BTreeMap<String, Value>,
    bound: bool,
    key_binding: Option<KeyBindingOut<'a>>,
    status: Option<StatusOut<'a>>,
}

#[derive(Debug, Serialize)]
struct IssuerOut<'a> {
    id: &'a str,
    name: &'a str,
}

#[derive(Debug, Serialize)]
struct KeyBindingOut<'a> {
    iat: i64,
    aud: &'a str,
    nonce: &'a str,
}

#[derive(Debug, Serialize)]
struct StatusOut<'a> {
    uri: &'a str,
    idx: u64,
}

#[derive(Debug, Serialize)]
struct RejectedVerdict {
    verdict: &'static str,
    code: String,
    class: &'static str,
    zh: &'static str,
    en: &'static str,
}

/// `bound` says the holder's device signed this presentation *now*: a key
/// binding that was checked for freshness (a required one always is; one
/// shown under `--no-kb` only counts inside the freshness window).
fn valid_json(v: &VerifiedLicence, policy: &VerifyPolicy, now: i64) -> String {
    let fresh = |iat: i64| {
        iat >= now
            .saturating_sub(policy.kb_max_age)
            .saturating_sub(policy.skew)
    };
    let bound = v.key_binding.as_ref().is_some_and(|k| {
        matches!(policy.key_binding, KeyBindingPolicy::Required { .. }) || fresh(k.iat)
    });
    let verdict = ValidVerdict {
        verdict: "valid",
        issuer: IssuerOut {
            id: &v.issuer_id,
            name: &v.issuer_name,
        },
        vct: &v.vct,
        iat: v.iat,
        nbf: v.nbf,
        exp: v.exp,
        claims: &v.claims,
        bound,
        key_binding: v.key_binding.as_ref().map(|k| KeyBindingOut {
            iat: k.iat,
            aud: &k.aud,
            nonce: &k.nonce,
        }),
        status: v.status.as_ref().map(|s| StatusOut {
            uri: &s.uri,
            idx: s.idx,
        }),
    };
    pretty(&verdict) + "\n"
}

fn rejected_json(r: &Rejection) -> String {
    let verdict = RejectedVerdict {
        verdict: "rejected",
        code: r.code(),
        class: r.class().code(),
        zh: r.zh(),
        en: r.en(),
    };
    pretty(&verdict) + "\n"
}

/// Verifies status list tokens into a cache; one that does not verify is a verdict.
fn load_status(paths: &[PathBuf], bundle: &TrustBundle) -> Outcome<StatusListCache> {
    let mut cache = StatusListCache::new();
    for path in paths {
        let token = read_text(path)?;
        cache
            .insert_token(token.trim(), bundle)
            .map_err(Failure::Rejected)?;
    }
    Ok(cache)
}

fn verify(a: &VerifyArgs, clock: i64) -> Outcome<Done> {
    let root = read_public_key(&a.root_pub)?;
    let now = a.now.unwrap_or(clock);
    if a.nonce.as_deref() == Some("") {
        return Err(input("--nonce must not be empty"));
    }
    if a.inspect {
        if a.any_nonce || a.no_kb {
            return Err(input("--inspect takes --nonce at most"));
        }
        let scanned = read_scan_file(&a.presentation)?;
        let bundle = load_bundle(&root, &a.bundle, None)?;
        let cache = load_status(&a.status, &bundle)?;
        let verdict =
            Inspector::new(Some(bundle), cache, None).verify(&scanned, a.nonce.as_deref(), now);
        let exit = if verdict.valid { 0 } else { 1 };
        return Ok(Done {
            stdout: pretty(&verdict) + "\n",
            exit,
        });
    }
    let mut policy = match (&a.nonce, a.any_nonce, a.no_kb) {
        (_, _, true) if a.nonce.is_some() || a.any_nonce => {
            return Err(input("choose one of --nonce, --any-nonce, --no-kb"));
        }
        (Some(_), true, _) => return Err(input("choose one of --nonce, --any-nonce, --no-kb")),
        (_, _, true) => VerifyPolicy::wallet(),
        (Some(n), _, false) => VerifyPolicy::required(a.aud.clone(), NoncePolicy::Exact(n.clone())),
        (None, true, false) => VerifyPolicy::required(a.aud.clone(), NoncePolicy::Any),
        (None, false, false) => {
            return Err(input(
                "key binding is required: pass --nonce NONCE or --any-nonce (or --no-kb)",
            ));
        }
    };
    if let Some(skew) = a.skew {
        policy.skew = skew;
    }
    if let Some(path) = &a.holder {
        policy.expected_holder = Some(read_holder_public_key(path)?);
    }
    let scanned = read_scan_file(&a.presentation)?;
    let presentation = read_scan(&scanned).map_err(Failure::Rejected)?;
    let bundle = load_bundle(&root, &a.bundle, None)?;
    let cache = load_status(&a.status, &bundle)?;
    let verified = verify_presentation(presentation.trim(), &bundle, &cache, &policy, now)
        .map_err(Failure::Rejected)?;
    Ok(Done::ok(valid_json(&verified, &policy, now)))
}

// ---------------------------------------------------------------- demo

/// A fresh, uniquely named directory under the system temp dir.
fn fresh_temp_dir<R: RngCore + CryptoRng>(rng: &mut R) -> Outcome<PathBuf> {
    let base = std::env::temp_dir();
    let mut last = None;
    for _ in 0..8 {
        let dir = base.join(format!("zhangban-demo-{:08x}", rng.next_u32()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) => last = Some(e),
        }
    }
    Err(input(format!(
        "cannot create a directory under {}: {}",
        base.display(),
        last.map(|e| e.to_string()).unwrap_or_default()
    )))
}

fn cst_time(t: i64) -> String {
    FixedOffset::east_opt(8 * 3600)
        .and_then(|tz| tz.timestamp_opt(t, 0).single())
        .map(|d| d.format("%Y-%m-%d %H:%M:%S %:z").to_string())
        .unwrap_or_else(|| t.to_string())
}

/// `证照名称 licence_name` for GB/T 36903 metadata, the bare name otherwise.
fn field_label(name: &str) -> String {
    match GBT_36903.iter().find(|f| f.claim == name) {
        Some(f) => format!("{} {name}", f.zh),
        None => match name {
            "legal_representative" => format!("法定代表人 {name}"),
            _ => name.to_owned(),
        },
    }
}

/// Terminal columns of `text`: CJK and full-width characters take two.
fn display_width(text: &str) -> usize {
    text.chars()
        .map(|c| if c >= '\u{2E80}' { 2 } else { 1 })
        .sum()
}

/// `text` padded with spaces to `width` terminal columns.
fn pad(text: &str, width: usize) -> String {
    let fill = width.saturating_sub(display_width(text));
    format!("{text}{}", " ".repeat(fill))
}

/// One `file  description` line of the demo's walk-through.
fn row(w: &mut String, left: &str, right: &str) {
    let _ = writeln!(w, "   {} {right}", pad(left, 40));
}

fn indent(text: &str, prefix: &str) -> String {
    text.lines().fold(String::new(), |mut out, line| {
        let _ = writeln!(out, "{prefix}{line}");
        out
    })
}

/// Writes `name` into `dir` and returns its path.
fn put(dir: &Path, name: &str, contents: &str, kind: FileKind) -> Outcome<PathBuf> {
    let path = dir.join(name);
    write_file(&path, contents, kind)?;
    Ok(path)
}

/// Writes a key pair as `<stem>.key.json` (secret) and `<stem>.pub.json`;
/// returns the public key's path.
fn put_key_pair(dir: &Path, stem: &str, key: &KeyPair) -> Outcome<PathBuf> {
    let private = pretty(&key.to_private_jwk()) + "\n";
    put(dir, &format!("{stem}.key.json"), &private, FileKind::Secret)?;
    let public = pretty(&public_jwk_with_kid(&key.public())) + "\n";
    put(dir, &format!("{stem}.pub.json"), &public, FileKind::Public)
}

/// The demo licence's serial, which is also its status list index.
const DEMO_SERIAL: u32 = 42;

fn run_demo<R: RngCore + CryptoRng>(a: &DemoArgs, clock: i64, rng: &mut R) -> Outcome<Done> {
    let now = a.now.unwrap_or(clock);
    let dir = match &a.dir {
        Some(d) => {
            std::fs::create_dir_all(d)
                .map_err(|e| input(format!("cannot create {}: {e}", d.display())))?;
            d.clone()
        }
        None => fresh_temp_dir(rng)?,
    };
    let mut world = DemoWorld::new(rng, now);
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "掌办 Zhangban · 电子证照演示 electronic licence demo");
    let _ = writeln!(w, "目录 dir : {}", dir.display());
    let _ = writeln!(w, "时间 now : {} ({now})", cst_time(now));

    // ① the national root, the issuers, their status lists and the bundle
    let _ = writeln!(
        w,
        "\n① 信任体系 Trust: a national root, three issuers, a trust bundle"
    );
    let root_pub = put_key_pair(&dir, "root", &world.root)?;
    row(
        w,
        "root.key.json  root.pub.json",
        &format!("国家信任根 national root, kid {}", world.root.kid()),
    );
    let mut status_files = Vec::new();
    for (i, (spec, issuer)) in demo::ISSUERS.iter().zip(&world.issuers).enumerate() {
        put_key_pair(&dir, &format!("issuer-{}", spec.code), issuer.key())?;
        let token = world
            .status_token(i, now)
            .ok_or_else(|| input("demo world has no status list"))?;
        let name = format!("status-{}.jwt", spec.code);
        status_files.push(put(&dir, &name, &format!("{token}\n"), FileKind::Public)?);
        row(
            w,
            &format!("issuer-{}.key.json", spec.code),
            &format!(
                "{} 可签发 issues {} ({})",
                spec.name, spec.licence_name, spec.type_code
            ),
        );
        row(
            w,
            &name,
            &format!("状态列表 status list, 4096 × 2 bits, {} bytes", token.len()),
        );
    }
    let bundle_path = put(
        &dir,
        "bundle.jws",
        &format!("{}\n", world.bundle.jws()),
        FileKind::Public,
    )?;
    row(
        w,
        "bundle.jws",
        &format!(
            "信任列表 trust bundle v{}, {} issuers, {} bytes, signed by the root",
            world.bundle.version(),
            world.bundle.content().issuers.len(),
            world.bundle.jws().len()
        ),
    );

    // ② issue the typical business licence to the holder's device
    let spec = demo::MARKET_REGULATION;
    let claims = DemoWorld::typical_claims(DEMO_SERIAL);
    let licence = world
        .issue_typical(DEMO_SERIAL, rng)
        .map_err(|e| input(format!("cannot issue the demo licence: {e}")))?;
    let holder_pub = put_key_pair(&dir, "holder", &world.holder)?;
    let licence_path = put(
        &dir,
        "licence.txt",
        &format!("{licence}\n"),
        FileKind::Public,
    )?;
    let _ = writeln!(
        w,
        "\n② 签发 Issue: {} → 持证人设备 the holder's device",
        spec.name
    );
    row(
        w,
        "holder.key.json  holder.pub.json",
        &format!(
            "持证人设备密钥 holder device key, kid {}",
            world.holder.kid()
        ),
    );
    row(
        w,
        "licence.txt",
        &format!(
            "{}, {} fields (each selectively disclosable), {} bytes, status index {DEMO_SERIAL}",
            spec.licence_name,
            claims.len(),
            licence.len()
        ),
    );

    // ③ present five fields with key binding, as for an inspector (亮证)
    let nonce = random_nonce(rng);
    let presentation = world
        .present_typical(&licence, &nonce, now)
        .ok_or_else(|| input("cannot present the demo licence"))?;
    let pres_path = put(
        &dir,
        "presentation.txt",
        &format!("{presentation}\n"),
        FileKind::Public,
    )?;
    let _ = writeln!(
        w,
        "\n③ 亮证 Present: {} of {} fields + key binding (aud \"{AUD_INSPECTION}\", nonce {nonce})",
        DemoWorld::TYPICAL_DISCLOSED.len(),
        claims.len()
    );
    row(
        w,
        "presentation.txt",
        &format!("{} bytes", presentation.len()),
    );

    // ④ verify from the files just written, as an inspector's device would
    let root = read_public_key(&root_pub)?;
    let policy = VerifyPolicy::required(AUD_INSPECTION, NoncePolicy::Exact(nonce.clone()));
    let verify_files =
        |status: &[PathBuf], at: i64| -> Outcome<Result<VerifiedLicence, Rejection>> {
            let bundle = load_bundle(&root, &bundle_path, None)?;
            let cache = load_status(status, &bundle)?;
            let text = read_text(&pres_path)?;
            Ok(verify_presentation(
                text.trim(),
                &bundle,
                &cache,
                &policy,
                at,
            ))
        };
    let mut exit = 0;
    match verify_files(&status_files, now)? {
        Ok(v) => {
            let _ = writeln!(
                w,
                "\n④ 核验 Verify → ✔ 有效 valid: {} · {}",
                v.issuer_name, v.vct
            );
            for (name, value) in &v.claims {
                let shown = value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_owned);
                let _ = writeln!(w, "   {} {shown}", pad(&field_label(name), 36));
            }
            let hidden: Vec<&str> = claims
                .keys()
                .filter(|k| !v.claims.contains_key(*k))
                .map(String::as_str)
                .collect();
            let _ = writeln!(w, "   未披露 not disclosed: {}", hidden.join(", "));
            let _ = write!(w, "{}", indent(&valid_json(&v, &policy, now), "   "));
        }
        Err(r) => {
            exit = 1;
            let _ = writeln!(w, "\n④ 核验 Verify → ✘ unexpected rejection:");
            let _ = write!(w, "{}", indent(&rejected_json(&r), "   "));
        }
    }

    // ⑤ the issuer revokes the licence and republishes its list a minute later
    let later = now + 60;
    world
        .status_lists
        .first_mut()
        .ok_or_else(|| input("demo world has no status list"))?
        .set(u64::from(DEMO_SERIAL), Status::Revoked)
        .map_err(|e| input(format!("cannot revoke: {e}")))?;
    let token = world
        .status_token(0, later)
        .ok_or_else(|| input("demo world has no status list"))?;
    let revoked_name = format!("status-{}.revoked.jwt", spec.code);
    let mut revoked_files = status_files.clone();
    if let Some(first) = revoked_files.first_mut() {
        *first = put(&dir, &revoked_name, &format!("{token}\n"), FileKind::Public)?;
    }
    let _ = writeln!(
        w,
        "\n⑤ 注销 Revoke: {} marks index {DEMO_SERIAL} revoked and republishes its list",
        spec.name
    );
    row(
        w,
        &revoked_name,
        &format!("状态列表 status list, iat {later}"),
    );
    match verify_files(&revoked_files, later)? {
        Err(r) if r == Rejection::Revoked => {
            let _ = writeln!(
                w,
                "   核验 Verify → ✘ {} · {} ({})",
                r.zh(),
                r.en(),
                r.code()
            );
            let _ = write!(w, "{}", indent(&rejected_json(&r), "   "));
        }
        other => {
            exit = 1;
            let _ = writeln!(w, "   核验 Verify → unexpected verdict (expected revoked):");
            let text = match other {
                Ok(v) => valid_json(&v, &policy, later),
                Err(r) => rejected_json(&r),
            };
            let _ = write!(w, "{}", indent(&text, "   "));
        }
    }

    let d = |p: &Path| p.display().to_string();
    let status_args: String = status_files
        .iter()
        .map(|p| format!(" \\\n      --status {}", d(p)))
        .collect();
    let _ = writeln!(
        w,
        "\n自己试试 Try it yourself (--now replays the demo's time):"
    );
    let _ = writeln!(
        w,
        "   zhangban verify --root-pub {} --bundle {}{status_args} \\\n      --nonce {nonce} --holder {} --now {now} \\\n      {}",
        d(&root_pub),
        d(&bundle_path),
        d(&holder_pub),
        d(&pres_path)
    );
    let _ = writeln!(
        w,
        "   zhangban present --licence {} --disclose licence_name,holder_name \\\n      --holder-key {} --now {now}",
        d(&licence_path),
        d(&dir.join("holder.key.json"))
    );
    Ok(Done { stdout: out, exit })
}
