//! The operator / issuer subcommands of `zhangban-server`: key generation
//! and trust bundle signing on local files, and everything else through a
//! running server's operator API (`/v1/operator/*`, bearer operator token).
//!
//! Which commands open the data directory and which talk to the server:
//! `keygen` and `bundle sign` touch only local key files; `serve`,
//! `import-guides` and `audit verify|list` open the data directory (the
//! audit chain is checked on the file itself, even with the server down or
//! distrusted); every command that changes what the server serves —
//! residents, licences, guides, submissions, operators — goes through the
//! operator API, where the role check and the audit row are done.
//!
//! Output: the server's JSON answer pretty-printed on stdout (exit 0); a
//! typed API error as `error: <code>: <message>` on stderr (exit 1); usage,
//! I/O, network and input errors on stderr (exit 2). The operator token is
//! never printed.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::builder::PossibleValuesParser;
use clap::{Args, Subcommand};
use reqwest::{Method, Url};
use serde_json::{Value, json};
use zhangban_core::credential::issuer_list::parse_issuer_list;
use zhangban_core::credential::{KeyPair, PublicKey, TrustBundle, TrustBundleContent};
use zhangban_server::api::operator::TRANSITIONS;
use zhangban_server::clock::{Clock as _, SystemClock};

/// How long one request to the server may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------- arguments

/// The operator / issuer subcommands (flattened into `zhangban-server`'s).
#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Generate an Ed25519 key pair as JWKs (private file mode 0600); prints the RFC 7638 kid.
    Keygen(KeygenArgs),
    /// Sign a trust bundle with the root key, or publish one to the server.
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// Register residents.
    #[command(subcommand)]
    Resident(ResidentCommand),
    /// Issue licences and change their status.
    #[command(subcommand)]
    Licence(LicenceCommand),
    /// Publish and withdraw service guides.
    #[command(subcommand)]
    Guide(GuideCommand),
    /// Move submissions through their states.
    #[command(subcommand)]
    Submission(SubmissionCommand),
    /// Manage named operators and their roles (an admin's token).
    #[command(subcommand)]
    Operator(OperatorAdminCommand),
    /// Maintain the search lexicon phones sync (a publisher's token).
    #[command(subcommand)]
    Lexicon(LexiconCommand),
}

/// `lexicon …`: residents' words → the official words of item names
/// (ADR 0181). Each change is a new version phones take at their next sync.
#[derive(Debug, Subcommand)]
pub enum LexiconCommand {
    /// Add or replace a term's entry (PUT /v1/operator/lexicon/entries/{term}).
    Add {
        /// What residents type, e.g. 低保.
        #[arg(long, value_name = "TERM")]
        term: String,
        /// An official word it stands for, e.g. 最低生活保障. Repeatable (1..=8).
        #[arg(long = "target", value_name = "WORD", required = true)]
        targets: Vec<String>,
        /// Each target also finds the term.
        #[arg(long)]
        two_way: bool,
        /// Where the usage is seen (at most 200 characters).
        #[arg(long, value_name = "TEXT")]
        source: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Remove a term's entry (DELETE /v1/operator/lexicon/entries/{term}).
    Remove {
        /// The term.
        #[arg(long, value_name = "TERM")]
        term: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Print the current lexicon (GET /v1/operator/lexicon).
    List {
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// `operator …`: through the server, like every other command that changes
/// server state, so that the role check and the audit row happen in the one
/// place that does them for every operator action (ADR 0165).
#[derive(Debug, Subcommand)]
pub enum OperatorAdminCommand {
    /// Create an operator (POST /v1/operator/operators); its token is printed once.
    Add {
        /// Unique name (a-z 0-9 . _ -); never reused, even after revocation.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// The operator's one role.
        #[arg(long, value_name = "ROLE",
              value_parser = PossibleValuesParser::new(["admin", "issuer", "reviewer", "publisher"]))]
        role: String,
        /// An issuer id (issuer) or a department code (reviewer, publisher). Repeatable.
        #[arg(long = "scope", value_name = "CODE")]
        scopes: Vec<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List every operator, active and revoked (GET /v1/operator/operators).
    List {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Revoke an operator: its token stops working at once (DELETE /v1/operator/operators/{name}).
    Revoke {
        /// The operator's name.
        #[arg(long, value_name = "NAME")]
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// Where the server is and how to authenticate as its operator.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The server's base URL.
    #[arg(
        long = "server",
        env = "ZHANGBAN_SERVER",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL"
    )]
    server: String,
    /// The operator bearer token (default: the data directory's `operator-token`).
    #[arg(
        long,
        env = "ZHANGBAN_OPERATOR_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    operator_token: Option<String>,
    /// The server's data directory, whose `operator-token` is read when no token is given.
    #[arg(
        long,
        env = "ZHANGBAN_DATA_DIR",
        default_value = "zhangban-data",
        value_name = "DIR"
    )]
    data_dir: PathBuf,
}

/// `keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the private JWK (mode 0600; an existing file is never replaced).
    #[arg(long, value_name = "KEY.json")]
    out: PathBuf,
    /// Where to write the public JWK (with its kid).
    #[arg(long, value_name = "PUB.json")]
    public_out: Option<PathBuf>,
}

/// `bundle …`.
#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Sign a trust bundle with the root's private key (no server involved).
    Sign(BundleSignArgs),
    /// Publish a root-signed trust bundle (PUT /v1/operator/trust-bundle).
    Publish {
        /// The bundle JWS (from `bundle sign`).
        #[arg(value_name = "BUNDLE.jws")]
        bundle: PathBuf,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// `bundle sign`.
#[derive(Debug, Args)]
pub struct BundleSignArgs {
    /// The national root's private JWK.
    #[arg(long, value_name = "ROOT.json")]
    root: PathBuf,
    /// A JSON array of issuers: {id, name, code, licence_types, status_lists,
    /// keys: [{jwk, not_before, not_after, kid?}]} (the `issuers` of a bundle fit).
    #[arg(long, value_name = "ISSUERS.json")]
    issuers: PathBuf,
    /// The bundle version (servers and phones refuse a lower one).
    #[arg(long, value_name = "N")]
    version: u64,
    /// Issue time (Unix seconds); default: now.
    #[arg(long, value_name = "T")]
    iat: Option<i64>,
    /// Seconds after `iat` beyond which verifiers consider the bundle stale.
    #[arg(long, value_name = "S", default_value_t = 2_592_000,
          value_parser = clap::value_parser!(i64).range(1..))]
    max_staleness: i64,
    /// Where to write the bundle JWS.
    #[arg(long, value_name = "BUNDLE.jws")]
    out: PathBuf,
}

/// `resident …`.
#[derive(Debug, Subcommand)]
pub enum ResidentCommand {
    /// Register a resident with an activation code (POST /v1/operator/residents).
    Add {
        /// Resident id (from the real-name system), 1..=64 characters.
        #[arg(long, value_name = "ID")]
        id: String,
        /// Display name.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// Read the activation code from this file (`-`: standard input),
        /// never from the command line (it would show in the process list).
        /// Without it the code comes from `ZHANGBAN_ACTIVATION_CODE`, else the
        /// server generates one and it is printed once. A supplied code must
        /// be 16+ Crockford base32 symbols (grouped with `-` as you like).
        #[arg(long, value_name = "FILE|-")]
        activation_code_file: Option<PathBuf>,
        /// How many devices may enrol with the code (server default 3).
        #[arg(long, value_name = "N")]
        uses: Option<u32>,
        /// Days the code stays valid (server default 30).
        #[arg(long, value_name = "D")]
        valid_days: Option<u32>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// `licence …`.
#[derive(Debug, Subcommand)]
pub enum LicenceCommand {
    /// Issue a licence to a resident (POST /v1/operator/licences): a copy per enrolled device.
    Issue {
        /// The resident.
        #[arg(long, value_name = "ID")]
        resident: String,
        /// The issuer (the server must hold its key).
        #[arg(long, value_name = "ISSUER_ID")]
        issuer: String,
        /// The licence type (default: the issuer's first).
        #[arg(long, value_name = "VCT")]
        vct: Option<String>,
        /// A JSON object of licence fields.
        #[arg(long, value_name = "CLAIMS.json")]
        claims: PathBuf,
        /// Build the licence identifier (GB/T 36904, check character
        /// computed) from this serial, the type code of `--vct` and the
        /// issuer's code (the last `:` segment of `--issuer`), and add it to
        /// the claims as `licence_id`; the answer then names it:
        /// `{"licence_id": …, "copies": […]}`.
        #[arg(long, value_name = "SERIAL", requires = "vct")]
        serial: Option<String>,
        /// The identifier's version, with `--serial`.
        #[arg(long, value_name = "N", default_value_t = 1, requires = "serial")]
        licence_version: u16,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Suspend a licence (status `suspended`).
    Suspend(LicenceStatusArgs),
    /// Revoke a licence for good (status `revoked`).
    Revoke(LicenceStatusArgs),
    /// Make a suspended licence valid again (status `valid`).
    Reinstate(LicenceStatusArgs),
}

/// `licence suspend|revoke|reinstate`.
#[derive(Debug, Args)]
pub struct LicenceStatusArgs {
    /// The licence id (GB/T 36904).
    #[arg(value_name = "LICENCE_ID")]
    licence_id: String,
    #[command(flatten)]
    server: ServerArgs,
}

/// `guide …`.
#[derive(Debug, Subcommand)]
pub enum GuideCommand {
    /// Publish (create or replace) a guide (PUT /v1/operator/guides/{id}).
    Publish {
        /// The guide JSON (its `id` names it).
        #[arg(value_name = "GUIDE.json")]
        guide: PathBuf,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Withdraw a guide (DELETE /v1/operator/guides/{id}); phones see a tombstone.
    Withdraw {
        /// The guide id.
        #[arg(value_name = "ID")]
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// `submission …`.
#[derive(Debug, Subcommand)]
pub enum SubmissionCommand {
    /// Move a submission to a new state (POST /v1/operator/submissions/{tracking}/transition).
    Transition {
        /// The tracking number.
        #[arg(value_name = "TRACKING")]
        tracking: String,
        /// The new state.
        #[arg(value_name = "STATE", value_parser = state_parser())]
        state: String,
        /// A note for the resident (at most 500 characters, no personal data).
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// The states a submission can be moved to (every target of [`TRANSITIONS`]).
fn state_parser() -> PossibleValuesParser {
    let mut targets: Vec<&'static str> = Vec::new();
    for (_, next) in TRANSITIONS {
        for state in *next {
            if !targets.contains(state) {
                targets.push(state);
            }
        }
    }
    PossibleValuesParser::new(targets)
}

// ---------------------------------------------------------------- outcome

/// Why a subcommand failed.
#[derive(Debug)]
enum Failure {
    /// A typed error from the server (exit 1).
    Api {
        code: String,
        message: String,
        details: Option<Value>,
    },
    /// Usage, I/O, network or input (exit 2).
    Input(String),
}

fn input(message: impl Into<String>) -> Failure {
    Failure::Input(message.into())
}

type Outcome<T> = Result<T, Failure>;

/// Runs an operator subcommand; prints its output and returns the exit code.
pub fn run(command: OperatorCommand) -> ExitCode {
    let (stdout, stderr, code) = match dispatch(command) {
        Ok(out) => (out, String::new(), 0),
        Err(Failure::Api {
            code,
            message,
            details,
        }) => {
            let mut err = format!("error: {code}: {message}\n");
            if let Some(d) = details {
                err.push_str(&format!("details: {d}\n"));
            }
            (String::new(), err, 1)
        }
        Err(Failure::Input(message)) => (String::new(), format!("zhangban-server: {message}\n"), 2),
    };
    // A closed stdout/stderr (a pipe into `head`) is not worth a panic.
    let _ = std::io::stdout().lock().write_all(stdout.as_bytes());
    let _ = std::io::stderr().lock().write_all(stderr.as_bytes());
    ExitCode::from(code)
}

fn dispatch(command: OperatorCommand) -> Outcome<String> {
    match command {
        OperatorCommand::Keygen(a) => keygen(&a),
        OperatorCommand::Bundle(BundleCommand::Sign(a)) => bundle_sign(&a),
        OperatorCommand::Bundle(BundleCommand::Publish { bundle, server }) => {
            let jws = read_text(&bundle)?;
            let jws = jws.trim();
            if jws.is_empty() {
                return Err(input(format!("{}: empty", bundle.display())));
            }
            call(
                &server,
                Method::PUT,
                &["trust-bundle"],
                Body::Jwt(jws.to_owned()),
            )
        }
        OperatorCommand::Resident(ResidentCommand::Add {
            id,
            name,
            activation_code_file,
            uses,
            valid_days,
            server,
        }) => {
            let mut body = json!({"id": id, "name": name});
            if let Some(code) = supplied_activation_code(activation_code_file.as_deref())? {
                body["activation_code"] = json!(code);
            }
            if let Some(uses) = uses {
                body["uses"] = json!(uses);
            }
            if let Some(days) = valid_days {
                body["valid_days"] = json!(days);
            }
            call(&server, Method::POST, &["residents"], Body::Json(body))
        }
        OperatorCommand::Licence(LicenceCommand::Issue {
            resident,
            issuer,
            vct,
            claims,
            serial,
            licence_version,
            server,
        }) => {
            let mut fields = read_json(&claims)?;
            let Some(object) = fields.as_object_mut() else {
                return Err(input(format!(
                    "{}: not a JSON object of licence fields",
                    claims.display()
                )));
            };
            let built = match (&serial, &vct) {
                (Some(serial), Some(vct)) => {
                    if object.contains_key("licence_id") {
                        return Err(input(format!(
                            "{} has a licence_id already: drop it or drop --serial",
                            claims.display()
                        )));
                    }
                    let issuer_code = issuer.rsplit(':').next().unwrap_or(&issuer);
                    let type_code = zhangban_core::credential::claims::type_code_of_vct(vct);
                    let id = zhangban_core::credential::LicenceId::new(
                        type_code,
                        issuer_code,
                        serial,
                        licence_version,
                    )
                    .map_err(|e| input(format!("cannot build the licence id: {e}")))?
                    .to_string();
                    object.insert("licence_id".into(), json!(id));
                    Some(id)
                }
                _ => None,
            };
            let mut body = json!({"resident_id": resident, "issuer_id": issuer, "claims": fields});
            if let Some(vct) = vct {
                body["vct"] = json!(vct);
            }
            let answer = call(&server, Method::POST, &["licences"], Body::Json(body))?;
            match built {
                None => Ok(answer),
                Some(id) => {
                    let copies: Value = serde_json::from_str(&answer)
                        .map_err(|e| input(format!("the server's answer is not JSON: {e}")))?;
                    Ok(pretty(&json!({"licence_id": id, "copies": copies})))
                }
            }
        }
        OperatorCommand::Licence(LicenceCommand::Suspend(a)) => licence_status(&a, "suspended"),
        OperatorCommand::Licence(LicenceCommand::Revoke(a)) => licence_status(&a, "revoked"),
        OperatorCommand::Licence(LicenceCommand::Reinstate(a)) => licence_status(&a, "valid"),
        OperatorCommand::Guide(GuideCommand::Publish { guide, server }) => {
            let value = read_json(&guide)?;
            let id = value
                .get("id")
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty())
                .ok_or_else(|| input(format!("{}: a guide needs a string `id`", guide.display())))?
                .to_owned();
            call(&server, Method::PUT, &["guides", &id], Body::Json(value))
        }
        OperatorCommand::Guide(GuideCommand::Withdraw { id, server }) => {
            call(&server, Method::DELETE, &["guides", &id], Body::None)
        }
        OperatorCommand::Submission(SubmissionCommand::Transition {
            tracking,
            state,
            note,
            server,
        }) => {
            let mut body = json!({"state": state});
            if let Some(note) = note {
                body["note"] = json!(note);
            }
            call(
                &server,
                Method::POST,
                &["submissions", &tracking, "transition"],
                Body::Json(body),
            )
        }
        OperatorCommand::Operator(command) => operator_admin(command),
        OperatorCommand::Lexicon(command) => lexicon(command),
    }
}

fn lexicon(command: LexiconCommand) -> Outcome<String> {
    match command {
        LexiconCommand::Add {
            term,
            targets,
            two_way,
            source,
            server,
        } => {
            let mut body = json!({"targets": targets, "two_way": two_way});
            if let Some(source) = source {
                body["source"] = json!(source);
            }
            call(
                &server,
                Method::PUT,
                &["lexicon", "entries", &term],
                Body::Json(body),
            )
        }
        LexiconCommand::Remove { term, server } => call(
            &server,
            Method::DELETE,
            &["lexicon", "entries", &term],
            Body::None,
        ),
        LexiconCommand::List { server } => call(&server, Method::GET, &["lexicon"], Body::None),
    }
}

fn operator_admin(command: OperatorAdminCommand) -> Outcome<String> {
    match command {
        OperatorAdminCommand::Add {
            name,
            role,
            scopes,
            server,
        } => call(
            &server,
            Method::POST,
            &["operators"],
            Body::Json(json!({"name": name, "role": role, "scopes": scopes})),
        ),
        OperatorAdminCommand::List { server } => {
            call(&server, Method::GET, &["operators"], Body::None)
        }
        OperatorAdminCommand::Revoke { name, server } => {
            call(&server, Method::DELETE, &["operators", &name], Body::None)
        }
    }
}

fn licence_status(a: &LicenceStatusArgs, status: &str) -> Outcome<String> {
    call(
        &a.server,
        Method::POST,
        &["licences", &a.licence_id, "status"],
        Body::Json(json!({"status": status})),
    )
}

// ---------------------------------------------------------------- files

/// The environment variable an activation code may come from.
pub const ACTIVATION_CODE_ENV: &str = "ZHANGBAN_ACTIVATION_CODE";

/// The activation code the operator supplies: from `file` (`-`: stdin),
/// else from [`ACTIVATION_CODE_ENV`]; `None`: let the server generate one.
fn supplied_activation_code(file: Option<&Path>) -> Outcome<Option<String>> {
    let text = match file {
        Some(p) if p.as_os_str() == "-" => {
            let mut t = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut t)
                .map_err(|e| input(format!("cannot read the activation code from stdin: {e}")))?;
            t
        }
        Some(p) => read_text(p)?,
        None => match std::env::var(ACTIVATION_CODE_ENV) {
            Ok(t) => t,
            Err(_) => return Ok(None),
        },
    };
    let code = text.trim();
    if code.is_empty() {
        return Err(input("the activation code is empty"));
    }
    Ok(Some(code.to_owned()))
}

fn read_text(path: &Path) -> Outcome<String> {
    std::fs::read_to_string(path).map_err(|e| input(format!("cannot read {}: {e}", path.display())))
}

fn read_json(path: &Path) -> Outcome<Value> {
    serde_json::from_str(&read_text(path)?)
        .map_err(|e| input(format!("{}: not valid JSON: {e}", path.display())))
}

fn pretty(value: &Value) -> String {
    // Serializing a JSON value into a String cannot fail.
    serde_json::to_string_pretty(value).unwrap_or_default() + "\n"
}

/// Writes a public file (created or replaced).
fn write_public(path: &Path, contents: &str) -> Outcome<()> {
    std::fs::write(path, contents)
        .map_err(|e| input(format!("cannot write {}: {e}", path.display())))
}

/// Writes a fresh private key: owner-only from the moment it exists, and
/// never over an existing file.
fn write_new_secret(path: &Path, contents: &str) -> Outcome<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
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
            input(format!("cannot write {}: {e}", path.display()))
        }
    })?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| input(format!("cannot write {}: {e}", path.display())))
}

/// Checks an optional `kid` member against the key's RFC 7638 thumbprint.
fn check_kid(jwk: &Value, key: &PublicKey, what: &str) -> Outcome<()> {
    match jwk.get("kid") {
        None => Ok(()),
        Some(Value::String(kid)) if *kid == key.thumbprint() => Ok(()),
        Some(kid) => Err(input(format!(
            "{what}: kid {kid} is not the key's RFC 7638 thumbprint {}",
            key.thumbprint()
        ))),
    }
}

// ---------------------------------------------------------------- keygen

fn keygen(a: &KeygenArgs) -> Outcome<String> {
    let key = KeyPair::generate(&mut rand::rngs::OsRng);
    if let Some(public) = &a.public_out {
        if public == &a.out {
            return Err(input("--out and --public-out name the same file"));
        }
    }
    write_new_secret(&a.out, &pretty(&key.to_private_jwk()))?;
    if let Some(path) = &a.public_out {
        let mut jwk = key.public().to_jwk();
        if let Value::Object(m) = &mut jwk {
            m.insert("kid".into(), Value::String(key.kid()));
        }
        write_public(path, &pretty(&jwk))?;
    }
    Ok(format!("{}\n", key.kid()))
}

// ---------------------------------------------------------------- bundle sign

fn bundle_sign(a: &BundleSignArgs) -> Outcome<String> {
    let jwk = read_json(&a.root)?;
    let root = KeyPair::from_private_jwk(&jwk).map_err(|e| {
        input(format!(
            "{}: not a private Ed25519 JWK: {e}",
            a.root.display()
        ))
    })?;
    check_kid(&jwk, &root.public(), &a.root.display().to_string())?;
    let issuers = parse_issuer_list(&read_json(&a.issuers)?)
        .map_err(|e| input(format!("{}: {e}", a.issuers.display())))?;
    let content = TrustBundleContent {
        version: a.version,
        iat: a.iat.unwrap_or_else(|| SystemClock.now()),
        max_staleness: a.max_staleness,
        issuers,
    };
    let jws = content
        .sign(&root)
        .map_err(|e| input(format!("cannot serialize the bundle: {e}")))?;
    // The checks every verifier makes (duplicate kids, status lists, …),
    // before anything is written or published.
    TrustBundle::verify(&jws, &[root.public()], None)
        .map_err(|r| input(format!("the signed bundle does not verify: {r}")))?;
    write_public(&a.out, &format!("{jws}\n"))?;
    Ok(pretty(&json!({
        "version": content.version,
        "iat": content.iat,
        "max_staleness": content.max_staleness,
        "issuers": content.issuers.len(),
        "keys": content.issuers.iter().map(|i| i.keys.len()).sum::<usize>(),
        "root_kid": root.kid(),
        "out": a.out.display().to_string(),
    })))
}

// ---------------------------------------------------------------- HTTP

/// A request body.
#[derive(Debug)]
enum Body {
    None,
    Json(Value),
    Jwt(String),
}

/// The operator token: `--operator-token` / `ZHANGBAN_OPERATOR_TOKEN`, else
/// the data directory's `operator-token` file.
fn operator_token(server: &ServerArgs) -> Outcome<String> {
    let token = match &server.operator_token {
        Some(t) => t.clone(),
        None => {
            let path = server.data_dir.join("operator-token");
            std::fs::read_to_string(&path)
                .map_err(|e| {
                    input(format!(
                        "no operator token: give --operator-token, set ZHANGBAN_OPERATOR_TOKEN, \
                         or point --data-dir at the server's data directory ({}: {e})",
                        path.display()
                    ))
                })?
                .trim()
                .to_owned()
        }
    };
    if token.is_empty() {
        return Err(input("the operator token is empty"));
    }
    Ok(token)
}

/// `{server}/v1/operator/{segments…}`, each segment percent-encoded.
fn operator_url(base: &str, segments: &[&str]) -> Outcome<Url> {
    let mut url =
        Url::parse(base).map_err(|e| input(format!("--server {base}: not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(input(format!("--server {base}: not an http(s) URL")));
    }
    url.set_query(None);
    url.set_fragment(None);
    {
        let mut path = url
            .path_segments_mut()
            .map_err(|()| input(format!("--server {base}: not a base URL")))?;
        path.pop_if_empty()
            .extend(["v1", "operator"])
            .extend(segments);
    }
    Ok(url)
}

/// One request to the operator API; the answer's JSON pretty-printed.
fn call(server: &ServerArgs, method: Method, segments: &[&str], body: Body) -> Outcome<String> {
    let url = operator_url(&server.server, segments)?;
    let token = operator_token(server)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| input(format!("cannot start the HTTP runtime: {e}")))?;
    runtime.block_on(send(url, method, &token, body))
}

async fn send(url: Url, method: Method, token: &str, body: Body) -> Outcome<String> {
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("zhangban-server/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| input(format!("cannot build the HTTP client: {e}")))?;
    let shown = format!("{method} {url}");
    let mut request = client.request(method, url).bearer_auth(token);
    request = match body {
        Body::None => request,
        Body::Json(v) => request.json(&v),
        Body::Jwt(jws) => request
            .header(reqwest::header::CONTENT_TYPE, "application/jwt")
            .body(jws),
    };
    // reqwest's errors name the URL, never the headers: the token stays out.
    let response = request
        .send()
        .await
        .map_err(|e| input(format!("{shown}: {e}")))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| input(format!("{shown}: reading the answer: {e}")))?;
    let json: Option<Value> = serde_json::from_str(&text).ok();
    if status.is_success() {
        return Ok(match json {
            Some(v) => pretty(&v),
            None if text.is_empty() => String::new(),
            None => format!("{text}\n"),
        });
    }
    let typed = json.as_ref().and_then(|v| v.get("error")).and_then(|e| {
        Some(Failure::Api {
            code: e.get("code")?.as_str()?.to_owned(),
            message: e
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            details: e.get("details").cloned(),
        })
    });
    Err(typed.unwrap_or_else(|| {
        let snippet: String = text.chars().take(200).collect();
        input(format!(
            "{shown}: {status} without a typed error: {snippet}"
        ))
    }))
}
