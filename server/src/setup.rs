//! Opening a data directory: the database, the pinned root, the issuer keys
//! this server signs with, the operator token; and the demo data that the
//! README's first command serves on a fresh machine.
//!
//! ```text
//! <data dir>/zhangban.db           SQLite (WAL)
//! <data dir>/root.pub.json         the national root public JWK (pinned)
//! <data dir>/issuers/*.json        {"issuer_id": …, "key": <private JWK>}
//! <data dir>/operator-token        created on first start unless given (0600)
//! <data dir>/activation-key        HMAC key of activation codes, created on first start (0600)
//! <data dir>/demo-operators/*.token the demo's operator tokens (`serve --demo` only, 0600)
//! ```
//!
//! The directory is 0700 and every file in it 0600 (the database with its
//! WAL and shared-memory files too): an existing directory is tightened
//! when it is opened (ADR 0167).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use zhangban_core::credential::demo::{self as cdemo, DemoWorld, ISSUERS};
use zhangban_core::credential::{Issuer, KeyPair, PublicKey, TrustBundleContent};
use zhangban_core::guide::fixture;

use crate::activation::{self, ActivationKey};
use crate::audit::AuditEntry;
use crate::database::DatabaseArgs;
use crate::roles::Role;
use crate::store::operators::{NewOperator, OperatorWrite};
use crate::store::{NewActivation, Store};

/// The real Guang'an service items the demo catalog is built from.
pub const FIXTURE: &str = include_str!("../data/guang-an-service-items.json");

/// The demo's life-event bundles (ADR 0230) over [`FIXTURE`]'s items.
pub const DEMO_BUNDLES: &str = include_str!("../data/demo-bundles.json");
/// The demo resident.
pub const DEMO_RESIDENT: &str = "demo-resident-0001";
/// The demo resident's activation code.
pub const DEMO_ACTIVATION_CODE: &str = "ZB-DEMO-2026";

/// Where `serve --demo` writes the demo operators' tokens (one
/// `<name>.token` file each, 0600).
pub const DEMO_OPERATORS_DIR: &str = "demo-operators";

/// The demo's operators, one per role: (name, role).
pub const DEMO_OPERATORS: [(&str, Role); 4] = [
    ("demo-admin", Role::Admin),
    ("demo-issuer", Role::Issuer),
    ("demo-reviewer", Role::Reviewer),
    ("demo-publisher", Role::Publisher),
];

/// Why a data directory could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// File system.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A key or JSON file is invalid.
    #[error("{path}: {message}")]
    Invalid {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The database.
    #[error("database: {0}")]
    Store(#[from] crate::store::StoreError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SetupError + '_ {
    move |source| SetupError::Io {
        path: path.to_owned(),
        source,
    }
}

fn invalid(path: &Path, message: impl ToString) -> SetupError {
    SetupError::Invalid {
        path: path.to_owned(),
        message: message.to_string(),
    }
}

fn read_json(path: &Path) -> Result<Value, SetupError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    serde_json::from_str(&text).map_err(|e| invalid(path, e))
}

/// Writes a file readable only by its owner.
fn write_secret(path: &Path, text: &str) -> Result<(), SetupError> {
    std::fs::write(path, text).map_err(io(path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io(path))?;
    }
    Ok(())
}

/// Makes `path` a directory only its owner can enter (created if absent,
/// tightened if it exists).
fn private_dir(path: &Path) -> Result<(), SetupError> {
    std::fs::create_dir_all(path).map_err(io(path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(io(path))?;
    }
    Ok(())
}

/// Makes an existing file owner-only (0600); absent files are left absent.
fn tighten(path: &Path) -> Result<(), SetupError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                    .map_err(io(path))?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(path)(e)),
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Creates the database file owner-only before SQLite opens it (SQLite
/// gives its WAL and shared-memory files the database file's mode).
fn create_private_file(path: &Path) -> Result<(), SetupError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path).map_err(io(path))?;
    tighten(path)
}

/// Tightens every file the data directory holds (ADR 0167): the database
/// and its `-wal` / `-shm`, the secrets, the issuer keys, the demo tokens.
fn tighten_all(dir: &Path) -> Result<(), SetupError> {
    for name in [
        "zhangban.db",
        "zhangban.db-wal",
        "zhangban.db-shm",
        "zhangban.db-journal",
        "operator-token",
        "activation-key",
        "root.key.json",
        "root.pub.json",
        "issuers.json",
    ] {
        tighten(&dir.join(name))?;
    }
    for sub in ["issuers", DEMO_OPERATORS_DIR] {
        let path = dir.join(sub);
        if !path.is_dir() {
            continue;
        }
        private_dir(&path)?;
        for entry in std::fs::read_dir(&path).map_err(io(&path))? {
            tighten(&entry.map_err(io(&path))?.path())?;
        }
    }
    Ok(())
}

/// What a data directory provides.
#[derive(Debug)]
pub struct DataDir {
    /// The database (the directory's SQLite file, or PostgreSQL).
    pub store: Arc<dyn Store>,
    /// Pinned roots.
    pub roots: Vec<PublicKey>,
    /// Issuer keys held.
    pub issuers: Vec<Issuer>,
    /// The operator token.
    pub operator_token: String,
    /// The key activation codes are stored under.
    pub activation_key: ActivationKey,
}

impl DataDir {
    /// The default configuration with this directory's operator token and
    /// activation key.
    pub fn config(&self) -> crate::state::Config {
        let mut c = crate::state::Config::with_operator_token(&self.operator_token);
        c.activation_key = self.activation_key.clone();
        c
    }
}

/// The data directory's activation key (`activation-key`, 64 hex digits,
/// 0600), created if absent.
pub fn activation_key(dir: &Path) -> Result<ActivationKey, SetupError> {
    let path = dir.join("activation-key");
    if path.exists() {
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        return ActivationKey::from_hex(&text).ok_or_else(|| invalid(&path, "not 64 hex digits"));
    }
    let key = ActivationKey::generate();
    write_secret(&path, &key.to_hex())?;
    Ok(key)
}

/// Opens (creating if needed) a data directory with its SQLite database.
pub fn open(dir: &Path, operator_token: Option<String>) -> Result<DataDir, SetupError> {
    open_with(dir, operator_token, &DatabaseArgs::sqlite())
}

/// Opens (creating if needed) a data directory, its keys and the database
/// `database` names (its SQLite file unless a PostgreSQL URL is given).
/// Blocking: call it outside the async runtime.
pub fn open_with(
    dir: &Path,
    operator_token: Option<String>,
    database: &DatabaseArgs,
) -> Result<DataDir, SetupError> {
    private_dir(dir)?;
    private_dir(&dir.join("issuers"))?;
    let db_path = dir.join("zhangban.db");
    if database.database_url.is_none() {
        create_private_file(&db_path)?;
    }
    let store = database.open(&db_path)?;
    tighten_all(dir)?;
    let root_path = dir.join("root.pub.json");
    let roots = if root_path.exists() {
        vec![PublicKey::from_jwk(&read_json(&root_path)?).map_err(|e| invalid(&root_path, e))?]
    } else {
        Vec::new()
    };
    let mut issuers = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir.join("issuers"))
        .map_err(io(dir))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    for path in entries {
        let v = read_json(&path)?;
        let id = v
            .get("issuer_id")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(&path, "missing issuer_id"))?;
        let key = KeyPair::from_private_jwk(v.get("key").unwrap_or(&Value::Null))
            .map_err(|e| invalid(&path, e))?;
        issuers.push(Issuer::new(id, key));
    }
    let token_path = dir.join("operator-token");
    let operator_token = match operator_token {
        Some(t) => t,
        None if token_path.exists() => std::fs::read_to_string(&token_path)
            .map_err(io(&token_path))?
            .trim()
            .to_owned(),
        None => {
            let t = crate::api::auth::random_token(32);
            write_secret(&token_path, &t)?;
            t
        }
    };
    Ok(DataDir {
        store,
        roots,
        issuers,
        operator_token,
        activation_key: activation_key(dir)?,
    })
}

/// Imports the Guang'an fixture as guides (idempotent: unchanged guides keep
/// their sequence numbers). Returns how many guides the catalog has.
pub fn import_fixture(store: &dyn Store, json: &str, now: i64) -> Result<usize, SetupError> {
    let guides = fixture::demo_catalog(json, now).map_err(|e| invalid(Path::new("fixture"), e))?;
    let rows = guides
        .iter()
        .map(|g| {
            Ok((
                g.id.clone(),
                g.checksum(),
                serde_json::to_string(g).map_err(|e| invalid(Path::new("guide"), e))?,
            ))
        })
        .collect::<Result<Vec<_>, SetupError>>()?;
    store.put_guides(&rows)?;
    Ok(rows.len())
}

/// Fills a fresh data directory with demo data: a root key and three
/// issuers (keys written to the directory), a signed trust bundle, the real
/// Guang'an guides, and a demo resident with an activation code and three
/// licences waiting for the resident's first device. Does nothing to a
/// directory that already has a root.
pub fn demo(dir: &Path, store: &dyn Store, now: i64) -> Result<bool, SetupError> {
    demo_with_world(
        dir,
        store,
        now,
        &DemoWorld::new(&mut rand::rngs::OsRng, now),
    )
}

/// [`demo`] with the given keys (tests pass a world made from a seed, so
/// that they hold its root and issuer keys).
pub fn demo_with_world(
    dir: &Path,
    store: &dyn Store,
    now: i64,
    world: &DemoWorld,
) -> Result<bool, SetupError> {
    let root_pub = dir.join("root.pub.json");
    if root_pub.exists() {
        return Ok(false);
    }
    let mut content: TrustBundleContent = world.bundle_content.clone();
    content.max_staleness = 30 * cdemo::DAY;
    let jws = content.sign(&world.root).map_err(|e| invalid(dir, e))?;
    write_secret(
        &dir.join("root.key.json"),
        &world.root.to_private_jwk().to_string(),
    )?;
    // Public, but every file of the directory is owner-only (ADR 0167).
    write_secret(&root_pub, &world.root.public().to_jwk().to_string())?;
    for (spec, issuer) in ISSUERS.iter().zip(&world.issuers) {
        let file =
            json!({"issuer_id": spec.id, "name": spec.name, "key": issuer.key().to_private_jwk()});
        write_secret(
            &dir.join("issuers").join(format!("{}.json", spec.code)),
            &file.to_string(),
        )?;
    }
    // The bundle's issuer list, as `bundle sign --issuers` takes it: the
    // starting point of the operator's next bundle (public data, but every
    // file of the directory is owner-only, ADR 0167).
    let issuers = serde_json::to_string_pretty(&content.issuers).map_err(|e| invalid(dir, e))?;
    write_secret(&dir.join("issuers.json"), &(issuers + "\n"))?;
    store.put_trust_bundle(content.version, &jws, now)?;
    import_fixture(store, FIXTURE, now)?;
    publish_demo_bundles(dir, store, now)?;
    demo_operators(dir, store, now)?;
    store.put_resident(DEMO_RESIDENT, "张三", now)?;
    // The demo code is public by design (printed, in the README): it is
    // stored directly, below the bar a supplied code must meet (ADR 0163).
    let demo_code = activation::normalise(DEMO_ACTIVATION_CODE).map_err(|e| invalid(dir, e))?;
    store.put_activation(&NewActivation {
        code: &activation_key(dir)?.seal(&demo_code),
        resident_id: DEMO_RESIDENT,
        expires_at: now + 365 * cdemo::DAY,
        uses: 100,
    })?;
    for (i, claims) in demo_licences().into_iter().enumerate() {
        let spec = ISSUERS.get(i).copied().unwrap_or(cdemo::MARKET_REGULATION);
        let licence_id = claims
            .get("licence_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        store.put_grant(&crate::store::Grant {
            licence_id,
            resident_id: DEMO_RESIDENT.into(),
            issuer_id: spec.id.into(),
            vct: None,
            claims: Value::Object(claims.into_iter().collect()).to_string(),
            status: 0,
            granted_at: now,
        })?;
    }
    Ok(true)
}

/// Publishes the demo's bundles ([`DEMO_BUNDLES`]), each checked whole
/// against the demo catalog as a publisher's would be; returns how many.
pub fn publish_demo_bundles(dir: &Path, store: &dyn Store, now: i64) -> Result<usize, SetupError> {
    let guides = fixture::demo_catalog(FIXTURE, now).map_err(|e| invalid(dir, e))?;
    let bundles: Vec<zhangban_core::bundle::Bundle> =
        serde_json::from_str(DEMO_BUNDLES).map_err(|e| invalid(dir, e))?;
    for b in &bundles {
        zhangban_core::bundle::merge(b, &guides)
            .map_err(|e| invalid(dir, format!("demo bundle {}: {e}", b.id)))?;
        store.put_bundle(b, now)?;
    }
    Ok(bundles.len())
}

/// Creates the demo's operators ([`DEMO_OPERATORS`]): the issuer scoped to
/// the three demo issuers, the reviewer and the publisher to every
/// department of the demo catalog (one district's service centre). Each
/// creation is audited (actor `setup`); the tokens go to
/// `demo-operators/<name>.token`.
pub fn demo_operators(dir: &Path, store: &dyn Store, now: i64) -> Result<(), SetupError> {
    let guides = fixture::demo_catalog(FIXTURE, now).map_err(|e| invalid(dir, e))?;
    let mut departments: Vec<String> = guides.iter().map(|g| g.department_code.clone()).collect();
    departments.sort();
    departments.dedup();
    let issuers: Vec<String> = ISSUERS.iter().map(|i| i.id.to_owned()).collect();
    let tokens = dir.join(DEMO_OPERATORS_DIR);
    private_dir(&tokens)?;
    for (name, role) in DEMO_OPERATORS {
        let scopes = match role {
            Role::Admin => Vec::new(),
            Role::Issuer => issuers.clone(),
            Role::Reviewer | Role::Publisher => departments.clone(),
        };
        let token = format!(
            "{}{}",
            crate::api::operators::TOKEN_PREFIX,
            crate::api::auth::random_token(crate::api::operators::TOKEN_BYTES)
        );
        let entry = AuditEntry {
            at: now,
            actor: "setup".into(),
            role: "setup".into(),
            action: "operator.add".into(),
            target: json!({"operator": name, "role": role.as_str()}).to_string(),
            outcome: "ok".into(),
        };
        store.audited(
            &entry,
            OperatorWrite::PutOperator(NewOperator {
                name: name.to_owned(),
                role: role.as_str().to_owned(),
                scopes,
                token_hash: crate::state::sha256_hex(token.as_bytes()),
                created_at: now,
            }),
        )?;
        write_secret(&tokens.join(format!("{name}.token")), &token)?;
    }
    Ok(())
}

/// The demo resident's licences: a business licence, a residence permit and
/// a marriage certificate (one per demo issuer, same order as [`ISSUERS`]).
pub fn demo_licences() -> Vec<BTreeMap<String, Value>> {
    let id = |spec: &cdemo::DemoIssuerSpec, serial: &str| {
        zhangban_core::credential::LicenceId::new(spec.type_code, spec.code, serial, 1)
            .map(|i| i.to_string())
            .unwrap_or_default()
    };
    let ps = cdemo::PUBLIC_SECURITY;
    let ca = cdemo::CIVIL_AFFAIRS;
    let list = [
        DemoWorld::typical_claims(1),
        serde_json::from_value(json!({
            "licence_name": ps.licence_name, "licence_number": "511602202600012",
            "licence_id": id(&ps, "511602202600012"), "issuer_name": ps.name,
            "holder_name": "张三", "holder_code_type": "公民身份号码", "holder_code": "11010519491231002X",
            "address": "四川省广安市广安区建设路1号", "valid_from": "2026-01-01", "valid_until": "2031-01-01"
        }))
        .unwrap_or_default(),
        serde_json::from_value(json!({
            "licence_name": ca.licence_name, "licence_number": "J511602-2020-000123",
            "licence_id": id(&ca, "J5116022020000123"), "issuer_name": ca.name,
            "holder_name": "张三", "spouse_name": "李四", "registration_date": "2020-05-20",
            "valid_from": "2020-05-20", "valid_until": "长期"
        }))
        .unwrap_or_default(),
    ];
    list.into_iter().collect()
}
