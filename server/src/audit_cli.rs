//! `zhangban-server audit verify|list`: the audit trail read from the data
//! directory's database, or PostgreSQL with `--database-url` (not through
//! the server: the chain is checked on the stored rows themselves, with the
//! server stopped or not trusted; ADR 0166).
//!
//! Exit codes: 0 intact (or listed); 1 the chain is broken, or the given
//! head is not in it; 2 usage, I/O or database errors.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use zhangban_server::audit::{self, AuditRow};
use zhangban_server::database::DatabaseArgs;
use zhangban_server::store::Store;
use zhangban_server::store::operators::AuditFilter;

/// `audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain; name the first row edited, deleted or inserted out of order.
    Verify {
        #[command(flatten)]
        dir: DataDirArg,
        /// A head recorded earlier (64 hex digits): it must still be in the chain,
        /// which catches rows removed from the end or a chain rewritten after it.
        #[arg(long, value_name = "HASH")]
        head: Option<String>,
    },
    /// List audit rows (oldest first), filtered.
    List {
        #[command(flatten)]
        dir: DataDirArg,
        /// Only this operator (its name; `setup` for the data directory's setup).
        #[arg(long, value_name = "NAME")]
        actor: Option<String>,
        /// Only this action (e.g. `licence.revoke`, `operator.add`).
        #[arg(long, value_name = "ACTION")]
        action: Option<String>,
        /// Only rows at or after this time (Unix seconds or RFC 3339).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only rows before this time (Unix seconds or RFC 3339).
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// At most this many rows (the newest).
        #[arg(long, value_name = "N", default_value_t = 100)]
        limit: u32,
    },
}

/// The data directory.
#[derive(Debug, Args)]
pub struct DataDirArg {
    /// The server's data directory.
    #[arg(
        long,
        env = "ZHANGBAN_DATA_DIR",
        default_value = "zhangban-data",
        value_name = "DIR"
    )]
    data_dir: PathBuf,
    #[command(flatten)]
    database: DatabaseArgs,
}

/// Runs an audit subcommand; prints its output and returns the exit code.
pub fn run(command: AuditCommand) -> ExitCode {
    let (stdout, stderr, code) = match dispatch(command) {
        Ok((out, err, code)) => (out, err, code),
        Err(message) => (String::new(), format!("zhangban-server: {message}\n"), 2),
    };
    let _ = std::io::stdout().lock().write_all(stdout.as_bytes());
    let _ = std::io::stderr().lock().write_all(stderr.as_bytes());
    ExitCode::from(code)
}

fn open(arg: &DataDirArg) -> Result<std::sync::Arc<dyn Store>, String> {
    if arg.database.database_url.is_some() {
        return arg
            .database
            .open(Path::new(""))
            .map_err(|e| format!("PostgreSQL: {e}"));
    }
    let db = arg.data_dir.join("zhangban.db");
    if !db.is_file() {
        return Err(format!(
            "{}: no database (is --data-dir right?)",
            db.display()
        ));
    }
    arg.database
        .open(&db)
        .map_err(|e| format!("{}: {e}", db.display()))
}

fn rows(dir: &DataDirArg, filter: &AuditFilter) -> Result<Vec<AuditRow>, String> {
    open(dir)?
        .audit_log(filter)
        .map_err(|e| format!("reading the audit trail: {e}"))
}

fn time(text: &str) -> Result<i64, String> {
    if let Ok(t) = text.parse::<i64>() {
        return Ok(t);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp())
        .map_err(|_| format!("{text}: not Unix seconds or an RFC 3339 time"))
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default() + "\n"
}

fn dispatch(command: AuditCommand) -> Result<(String, String, u8), String> {
    match command {
        AuditCommand::Verify { dir, head } => {
            let head = match head {
                Some(h) => Some(
                    audit::from_hex(h.trim())
                        .map(|b| audit::to_hex(&b))
                        .ok_or_else(|| format!("--head {h}: not 64 hex digits"))?,
                ),
                None => None,
            };
            let all = rows(&dir, &AuditFilter::default())?;
            match audit::verify(&all) {
                Err(finding) => Ok((
                    String::new(),
                    format!(
                        "audit: the chain is broken: row {} was {}\n",
                        finding.seq,
                        finding.tamper.as_str()
                    ),
                    1,
                )),
                Ok(intact) => {
                    if let Some(h) = &head {
                        let genesis = audit::to_hex(&audit::GENESIS);
                        if *h != genesis && !all.iter().any(|r| r.hash == *h) {
                            return Ok((
                                String::new(),
                                format!(
                                    "audit: the head {h} is not in the chain: rows after it were removed or rewritten\n"
                                ),
                                1,
                            ));
                        }
                    }
                    Ok((
                        pretty(&json!({"intact": true, "rows": intact.rows, "head": intact.head})),
                        String::new(),
                        0,
                    ))
                }
            }
        }
        AuditCommand::List {
            dir,
            actor,
            action,
            since,
            until,
            limit,
        } => {
            let filter = AuditFilter {
                actor,
                action,
                since: since.as_deref().map(time).transpose()?,
                until: until.as_deref().map(time).transpose()?,
                limit: Some(limit),
            };
            let listed: Vec<Value> = rows(&dir, &filter)?
                .into_iter()
                .map(|r| {
                    json!({
                        "seq": r.seq, "at": r.entry.at, "actor": r.entry.actor,
                        "role": r.entry.role, "action": r.entry.action,
                        "target": serde_json::from_str::<Value>(&r.entry.target)
                            .unwrap_or(Value::String(r.entry.target)),
                        "outcome": r.entry.outcome, "hash": r.hash,
                    })
                })
                .collect();
            Ok((pretty(&Value::Array(listed)), String::new(), 0))
        }
    }
}
