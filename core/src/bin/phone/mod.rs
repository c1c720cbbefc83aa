//! `zhangban phone …`: a headless resident's phone over the client core —
//! enrol, sync, search, read a guide, fill a form, submit (queued while
//! offline), flush the outbox, and look at the outbox, the wallet and a
//! submission's timeline. Everything is kept in one SQLite store file.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use zhangban_core::client::{
    Client, ClientError, Clock, Draft, SoftwareDataKeyStore, SoftwareKeystore, SystemClock,
    WalletLicenceRef,
};
use zhangban_core::credential::PublicKey;
use zhangban_core::guide::{FieldKind, Guide};

use super::{Done, Outcome, input};

/// The phone's options and command.
#[derive(Debug, Args)]
pub struct PhoneArgs {
    /// The phone's store (SQLite), created on first use.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "zhangban-phone.db",
        env = "ZHANGBAN_PHONE_STORE"
    )]
    store: PathBuf,
    /// The server.
    #[arg(
        long,
        value_name = "URL",
        default_value = "http://127.0.0.1:8080",
        env = "ZHANGBAN_SERVER"
    )]
    server: String,
    /// The pinned national root public key (the demo server writes
    /// `zhangban-data/root.pub.json`).
    #[arg(
        long,
        value_name = "PUB.json",
        default_value = "zhangban-data/root.pub.json",
        env = "ZHANGBAN_ROOT_PUB"
    )]
    root_pub: PathBuf,
    #[command(subcommand)]
    command: PhoneCommand,
}

/// What the phone does.
#[derive(Debug, Subcommand)]
pub enum PhoneCommand {
    /// Enrol this phone's device key with the resident's activation code.
    Enrol {
        /// The activation code (the demo's is ZB-DEMO-2026).
        code: String,
    },
    /// Sync the catalog, trust data, and (once enrolled) wallet and status events.
    Sync,
    /// Search the cached guides offline.
    Search {
        /// Words in Chinese or codes, e.g. 户口迁移.
        query: String,
        /// Hits to show.
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// Only items of this department (e.g. 区民政局).
        #[arg(long)]
        department: Option<String>,
    },
    /// Show a cached guide and its form.
    Guide {
        /// The guide id.
        id: String,
    },
    /// Fill a form: creates or updates a draft and checks it.
    Fill {
        /// The guide id.
        guide: String,
        /// The draft to update (default: a new one, named after the guide).
        #[arg(long)]
        draft: Option<String>,
        /// A value: `field=value` (repeatable; for a multiple choice, comma-separated).
        #[arg(long = "set", value_name = "FIELD=VALUE")]
        set: Vec<String>,
        /// A licence from the wallet: `field=LICENCE_ID:claim,claim,…`.
        #[arg(long = "licence", value_name = "FIELD=ID:CLAIMS")]
        licence: Vec<String>,
        /// A file for an attachment field: `field=PATH` (PDF, JPEG or PNG).
        #[arg(long = "attach", value_name = "FIELD=PATH")]
        attach: Vec<String>,
    },
    /// Validate a draft and queue it (works offline); then try to send it.
    Submit {
        /// The draft id.
        draft: String,
        /// Only queue it: do not try to send now.
        #[arg(long)]
        no_flush: bool,
    },
    /// Send what is due in the outbox.
    Flush {
        /// Also send at once what is waiting out its retry delay (the
        /// network is back: do not wait for the backoff).
        #[arg(long)]
        now: bool,
    },
    /// List the outbox: each submission's state, attempts and receipt.
    Outbox,
    /// A submission's status timeline.
    Timeline {
        /// The client id.
        client_id: String,
    },
    /// The wallet: licences and their state now.
    Wallet,
    /// Show a wallet licence to an inspector: a QR code in the terminal
    /// (key-bound now, chosen fields only).
    Present {
        /// The licence id (see `wallet`).
        licence: String,
        /// The fields to disclose (comma-separated).
        #[arg(long, value_delimiter = ',', required = true)]
        fields: Vec<String>,
        /// The nonce shown on the inspector's screen, if any.
        #[arg(long)]
        nonce: Option<String>,
        /// Also write the QR code as a PNG image.
        #[arg(long, value_name = "QR.png")]
        png: Option<PathBuf>,
    },
    /// Print a card for someone without a smartphone: an A4 SVG page.
    Print {
        /// The licence id.
        licence: String,
        /// The fields to print (comma-separated).
        #[arg(long, value_delimiter = ',', required = true)]
        fields: Vec<String>,
        /// Validity in days (at most 366).
        #[arg(long, default_value_t = 180, value_parser = clap::value_parser!(i64).range(1..=366))]
        valid_days: i64,
        /// Where to write the page.
        #[arg(long, value_name = "CARD.svg")]
        out: PathBuf,
    },
    /// Inspector mode, offline: verify a scanned code (a PNG image of it,
    /// its frame, or the SD-JWT text; `-` for stdin).
    Inspect {
        /// The scan.
        scan: PathBuf,
        /// The nonce this inspector showed the holder, if any.
        #[arg(long)]
        nonce: Option<String>,
    },
}

fn client_error(e: ClientError) -> super::Failure {
    match e {
        ClientError::Form(errors) => {
            let lines: Vec<String> = errors
                .iter()
                .map(|f| format!("  {}: {} ({})", f.field, f.code.zh(), f.code.code()))
                .collect();
            input(format!("the form has errors:\n{}", lines.join("\n")))
        }
        other => input(other.to_string()),
    }
}

/// The refusal for a draft that was submitted (ADR 0201).
fn locked(draft: &str, client_id: &str, guide: &str) -> super::Failure {
    input(format!(
        "draft {draft} was already submitted as {client_id}: it is locked, nothing was changed \
         (see `outbox`). For a new application, fill a new draft: `fill {guide} --draft NEW-ID …`"
    ))
}

async fn open(a: &PhoneArgs) -> Outcome<Client> {
    let root = super::read_public_key(&a.root_pub)?;
    let roots: Vec<PublicKey> = vec![root];
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // The CLI has no platform keystore: the non-hardware fallback, beside the store.
    let keys =
        SoftwareKeystore::beside(&a.store).map_err(|e| input(format!("software keystore: {e}")))?;
    // Nor a platform-wrapped data key: the software fallback file, beside it too.
    let data_keys = SoftwareDataKeyStore::beside(&a.store)
        .map_err(|e| input(format!("software data key: {e}")))?;
    Client::open(
        &a.store,
        &a.server,
        roots,
        clock,
        Arc::new(keys),
        Arc::new(data_keys),
    )
    .await
    .map_err(client_error)
}

fn pretty(v: &impl serde::Serialize) -> Outcome<String> {
    serde_json::to_string_pretty(v)
        .map(|s| s + "\n")
        .map_err(|e| input(e.to_string()))
}

/// Runs a phone command.
pub fn run(a: PhoneArgs) -> Outcome<Done> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| input(format!("cannot start the runtime: {e}")))?;
    rt.block_on(run_async(a))
}

async fn run_async(a: PhoneArgs) -> Outcome<Done> {
    let client = open(&a).await?;
    let out = match &a.command {
        PhoneCommand::Enrol { code } => {
            let d = client.enrol(code).await.map_err(client_error)?;
            format!("enrolled device {}\n", d.device_id)
        }
        PhoneCommand::Sync => pretty(&client.sync().await.map_err(client_error)?)?,
        PhoneCommand::Search {
            query,
            limit,
            department,
        } => {
            let opts = zhangban_core::search::SearchOptions {
                limit: *limit,
                department: department.clone(),
            };
            let hits = client.search_with(query, &opts).map_err(client_error)?;
            let mut s = String::new();
            if hits.is_empty() {
                s.push_str("no guide matches\n");
            } else if hits
                .iter()
                .all(|h| h.matched == zhangban_core::search::MatchKind::Closest)
            {
                s.push_str("no guide matches all of it; the closest:\n");
            }
            for h in &hits {
                let how = match h.matched {
                    zhangban_core::search::MatchKind::Synonym => "  [synonym]",
                    zhangban_core::search::MatchKind::Pinyin => "  [pinyin]",
                    _ => "",
                };
                s.push_str(&format!(
                    "{}  {}  ({}){how}\n",
                    h.guide_id, h.highlighted, h.department
                ));
            }
            s
        }
        PhoneCommand::Guide { id } => show_guide(&client.guide(id).map_err(client_error)?),
        PhoneCommand::Fill {
            guide,
            draft,
            set,
            licence,
            attach,
        } => fill(&client, guide, draft.as_deref(), set, licence, attach)?,
        PhoneCommand::Submit { draft, no_flush } => {
            let d = client
                .store()
                .draft(draft)
                .map_err(client_error)?
                .ok_or_else(|| input(format!("no draft {draft}")))?;
            let before = client.store().submitted_as(draft).map_err(client_error)?;
            let id = client.submit(&d).map_err(|e| match e {
                ClientError::DraftSubmitted { client_id } => locked(draft, &client_id, &d.guide_id),
                other => client_error(other),
            })?;
            let mut s = if before.is_some() {
                let state = client
                    .store()
                    .outbox_entry(&id)
                    .map_err(client_error)?
                    .map_or("?", |e| e.state.as_str());
                format!(
                    "draft {draft} was already submitted as {id} ({state}): nothing new was queued\n"
                )
            } else {
                format!("queued as {id}\n")
            };
            if !*no_flush {
                s.push_str(&flush_text(&client, false).await?);
            }
            s
        }
        PhoneCommand::Flush { now } => flush_text(&client, *now).await?,
        PhoneCommand::Outbox => {
            let mut s = String::new();
            for e in client.outbox().map_err(client_error)? {
                s.push_str(&format!(
                    "{}  {:<8}  attempts {}  {}  {}\n",
                    e.client_id,
                    e.state.as_str(),
                    e.attempts,
                    e.tracking_number.as_deref().unwrap_or("-"),
                    e.status
                        .as_deref()
                        .or(e.last_error.as_deref())
                        .unwrap_or(""),
                ));
            }
            if s.is_empty() {
                s.push_str("the outbox is empty\n");
            }
            s
        }
        PhoneCommand::Timeline { client_id } => {
            pretty(&client.store().timeline(client_id).map_err(client_error)?)?
        }
        PhoneCommand::Wallet => {
            let mut s = String::new();
            for l in client.wallet().map_err(client_error)? {
                let name = l
                    .claims
                    .get("licence_name")
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                s.push_str(&format!(
                    "{}  {}  {:?}{}\n",
                    l.licence_id,
                    name,
                    l.state,
                    l.reason.map(|r| format!(" ({r})")).unwrap_or_default()
                ));
                let fields: Vec<&str> = l.claims.keys().map(String::as_str).collect();
                s.push_str(&format!("    fields: {}\n", fields.join(",")));
            }
            if s.is_empty() {
                s.push_str("the wallet is empty (enrol, then sync)\n");
            }
            s
        }
        PhoneCommand::Present {
            licence,
            fields,
            nonce,
            png,
        } => {
            let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
            let r = client
                .show_rendered(licence, &fields, nonce.as_deref())
                .await
                .map_err(client_error)?;
            if let Some(p) = png {
                std::fs::write(p, &r.png)
                    .map_err(|e| input(format!("cannot write {}: {e}", p.display())))?;
            }
            format!(
                "{}show this to the inspector within 90 s (QR version {}, {} bytes)\n",
                r.text,
                r.qr_version,
                r.shown.frame.len()
            )
        }
        PhoneCommand::Print {
            licence,
            fields,
            valid_days,
            out,
        } => {
            let fields_ref: Vec<&str> = fields.iter().map(String::as_str).collect();
            let card = client
                .print_card_page(licence, &fields_ref, Some(valid_days * 86_400))
                .await
                .map_err(client_error)?;
            std::fs::write(out, &card.svg)
                .map_err(|e| input(format!("cannot write {}: {e}", out.display())))?;
            format!(
                "card written to {} (valid until {}, QR version {})\n",
                out.display(),
                zhangban_core::inspection::printable::cst_day(card.valid_until),
                card.rendered.qr_version
            )
        }
        PhoneCommand::Inspect { scan, nonce } => {
            let bytes = super::read_scan_file(scan)?;
            let v = client
                .inspect(&bytes, nonce.as_deref())
                .map_err(client_error)?;
            let out = pretty(&v)?;
            if !v.valid {
                return Ok(Done {
                    stdout: out,
                    exit: 1,
                });
            }
            out
        }
    };
    Ok(Done::ok(out))
}

async fn flush_text(client: &Client, now: bool) -> Outcome<String> {
    let r = if now {
        client.flush_now().await
    } else {
        client.flush().await
    }
    .map_err(client_error)?;
    let mut s = format!(
        "flush: {} sent, {} accepted, {} rejected, {} to retry",
        r.sent, r.accepted, r.rejected, r.failed
    );
    if r.retried_now > 0 {
        s.push_str(&format!(
            " ({} sent before its retry time, as asked)",
            r.retried_now
        ));
    }
    if r.offline {
        s.push_str(" (server unreachable: queued, will retry)");
    }
    s.push('\n');
    if let Some(at) = r.next_attempt_at.filter(|_| r.sent == 0) {
        let wait = at.saturating_sub(client.now()).max(0);
        s.push_str(&format!(
            "nothing was due: the next retry is in {wait} s; `flush --now` sends it at once\n"
        ));
    }
    Ok(s)
}

fn show_guide(g: &Guide) -> String {
    let mut s = format!(
        "{}\n  id {}  basic code {}  implementation code {}\n  {}  online depth {:?}  visits {}  promised {} days (statutory {})\n",
        g.name,
        g.id,
        g.basic_code,
        g.implementation_code,
        g.department,
        g.online_depth,
        g.visits_required,
        g.promised_limit_days,
        g.statutory_limit_days
    );
    s.push_str("  materials:\n");
    for m in &g.materials {
        let by: String = if m.licence_types.is_empty() {
            String::new()
        } else {
            format!("  (or a licence: {})", m.licence_types.join(", "))
        };
        s.push_str(&format!(
            "    - {}{}{}\n",
            m.name,
            if m.required { "" } else { " (optional)" },
            by
        ));
    }
    s.push_str(&format!("  form (version {}):\n", g.form.version));
    for f in &g.form.fields {
        s.push_str(&format!(
            "    {}{}  {}  [{}]\n",
            f.name,
            if f.required { "*" } else { "" },
            f.label_zh,
            f.kind.type_name()
        ));
    }
    s
}

/// Converts a `--set` value to the JSON its field takes.
fn value_for(g: &Guide, field: &str, text: &str) -> Outcome<Value> {
    let f = g
        .form
        .fields
        .iter()
        .find(|f| f.name == field)
        .ok_or_else(|| input(format!("the form has no field `{field}`")))?;
    Ok(match &f.kind {
        FieldKind::Number { .. } => text
            .parse::<f64>()
            .map(|n| json!(n))
            .map_err(|_| input(format!("`{field}` takes a number")))?,
        FieldKind::Choice { multiple: true, .. } => {
            json!(text.split(',').map(str::trim).collect::<Vec<_>>())
        }
        FieldKind::LicenceRef { .. } | FieldKind::Attachment { .. } => {
            return Err(input(format!(
                "`{field}` takes a licence (--licence) or an attachment"
            )));
        }
        _ => json!(text),
    })
}

fn fill(
    client: &Client,
    guide_id: &str,
    draft_id: Option<&str>,
    set: &[String],
    licence: &[String],
    attach: &[String],
) -> Outcome<String> {
    let g = client.guide(guide_id).map_err(client_error)?;
    let now = client.now();
    let id = draft_id.map_or_else(|| format!("draft-{guide_id}"), str::to_owned);
    let mut d = client
        .store()
        .draft(&id)
        .map_err(client_error)?
        .unwrap_or(Draft {
            id: id.clone(),
            guide_id: g.id.clone(),
            form_version: g.form.version,
            values: Map::new(),
            created_at: now,
            updated_at: now,
        });
    if d.guide_id != g.id {
        return Err(input(format!("draft {id} is for another guide")));
    }
    // A submitted draft is locked (ADR 0201); only a rejected one can be
    // corrected, under the same id.
    let submitted = client.store().submitted_as(&id).map_err(client_error)?;
    if let Some(client_id) = &submitted {
        let state = client
            .store()
            .outbox_entry(client_id)
            .map_err(client_error)?
            .map(|e| e.state);
        if state != Some(zhangban_core::outbox::OutboxState::Rejected) {
            return Err(locked(&id, client_id, &g.id));
        }
    }
    for kv in set {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| input(format!("--set takes FIELD=VALUE, not `{kv}`")))?;
        d.values.insert(k.to_owned(), value_for(&g, k, v)?);
    }
    for kv in licence {
        let (k, rest) = kv
            .split_once('=')
            .ok_or_else(|| input(format!("--licence takes FIELD=ID:CLAIMS, not `{kv}`")))?;
        let (lid, claims) = rest
            .split_once(':')
            .unwrap_or((rest, "licence_name,holder_name"));
        let r = WalletLicenceRef {
            wallet_licence: lid.to_owned(),
            disclose: claims.split(',').map(|c| c.trim().to_owned()).collect(),
        };
        d.values.insert(
            k.to_owned(),
            serde_json::to_value(r).map_err(|e| input(e.to_string()))?,
        );
    }
    for kv in attach {
        let (k, path) = kv
            .split_once('=')
            .ok_or_else(|| input(format!("--attach takes FIELD=PATH, not `{kv}`")))?;
        let path = std::path::Path::new(path);
        let data = std::fs::read(path)
            .map_err(|e| input(format!("cannot read {}: {e}", path.display())))?;
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let media_type = match ext.as_deref() {
            Some("pdf") => "application/pdf",
            Some("jpg" | "jpeg") => "image/jpeg",
            Some("png") => "image/png",
            _ => {
                return Err(input(format!(
                    "{}: attach a PDF, JPEG or PNG",
                    path.display()
                )));
            }
        };
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("attachment");
        let r = client
            .attach_file(&data, media_type, name)
            .map_err(client_error)?;
        d.values.insert(
            k.to_owned(),
            serde_json::to_value(r).map_err(|e| input(e.to_string()))?,
        );
    }
    d.form_version = g.form.version;
    d.updated_at = now;
    // Every value is checked now, with the validator `submit` and the
    // server run: a bad value is refused here, and the draft is left as it
    // was (ADR 0202).
    let errors = client.check_draft(&d).map_err(client_error)?;
    if !errors.is_empty() {
        let lines: Vec<String> = errors
            .iter()
            .map(|f| format!("  {}: {} ({})", f.field, f.code.zh(), f.code.code()))
            .collect();
        return Err(input(format!(
            "not saved: the draft is unchanged; these values are invalid:\n{}",
            lines.join("\n")
        )));
    }
    if let Some(client_id) = submitted {
        // Only a rejected submission gets here: corrected under its id.
        client
            .correct(&client_id, &d.values)
            .map_err(client_error)?;
        return Ok(format!(
            "draft {id} was rejected as {client_id}: corrected and queued again under the same id ({} values)\n",
            d.values.len()
        ));
    }
    client.save_draft(&d).map_err(client_error)?;
    let missing = zhangban_core::guide::missing_required(&g.form, &d.values);
    let next = if missing.is_empty() {
        format!("complete: `submit {id}` queues it")
    } else {
        format!("still to fill: {}", missing.join(", "))
    };
    Ok(format!(
        "draft {id} saved ({} values); {next}\n",
        d.values.len()
    ))
}
