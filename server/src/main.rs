//! `zhangban-server`: the server and its operator CLI (see [`operator_cli`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use zhangban_server::clock::{Clock, SystemClock};
use zhangban_server::database::DatabaseArgs;
use zhangban_server::limits::Limits;
use zhangban_server::setup::{self, DEMO_ACTIVATION_CODE};
use zhangban_server::state::AppState;
use zhangban_server::{api, issuing};

mod audit_cli;
mod operator_cli;

#[derive(Debug, Parser)]
#[command(
    name = "zhangban-server",
    version,
    about = "掌办 Zhangban server and operator CLI"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API.
    Serve {
        /// Listen address.
        #[arg(long, env = "ZHANGBAN_ADDR", default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// Admin listen address for `GET /metrics` (keep it loopback or
        /// internal); without it metrics are not served.
        #[arg(long, env = "ZHANGBAN_ADMIN_ADDR")]
        admin_addr: Option<SocketAddr>,
        /// Data directory (database, keys).
        #[arg(long, env = "ZHANGBAN_DATA_DIR", default_value = "zhangban-data")]
        data_dir: PathBuf,
        /// Fill a fresh data directory with demo data (keys, trust bundle, the
        /// 1,135 Guang'an guides, a demo resident with licences).
        #[arg(long)]
        demo: bool,
        /// Override a rate limit: `NAME=BURST/SECONDS` or `NAME=off`
        /// (names: activation, challenge, challenge-device, token,
        /// token-device, upload, upload-resident). Repeatable.
        #[arg(long = "rate-limit", value_name = "NAME=BURST/SECONDS")]
        rate_limits: Vec<String>,
        /// Turn every rate limit off (benchmarks).
        #[arg(long)]
        no_rate_limits: bool,
        /// Behind a reverse proxy: the header it puts the client address in
        /// (its last entry is used), e.g. `x-forwarded-for`. Without it the
        /// TCP peer is the client and no header is believed.
        #[arg(long, env = "ZHANGBAN_TRUSTED_PROXY_HEADER", value_name = "NAME")]
        trusted_proxy_header: Option<String>,
        /// Operator bearer token (default: the data directory's `operator-token`, created if absent).
        #[arg(long, env = "ZHANGBAN_OPERATOR_TOKEN", hide_env_values = true)]
        operator_token: Option<String>,
        /// How often each replica re-reads the trust bundle and status lists
        /// another replica (or the operator CLI) may have published: the
        /// bound on how stale a replica's trust data can be.
        #[arg(long, default_value_t = 10, value_name = "SECONDS")]
        trust_refresh_secs: u64,
        /// Working days a department has to answer a 差评's rectification
        /// case (好差评; the provincial schemes under 国办发〔2019〕51号 say 15).
        #[arg(long, env = "ZHANGBAN_RECTIFICATION_DAYS", default_value_t = zhangban_core::evaluation::DEFAULT_RECTIFICATION_DAYS, value_parser = clap::value_parser!(u32).range(1..=200))]
        rectification_days: u32,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Import the Guang'an service items (or another file of the same shape) as guides.
    ImportGuides {
        /// Data directory.
        #[arg(long, env = "ZHANGBAN_DATA_DIR", default_value = "zhangban-data")]
        data_dir: PathBuf,
        #[command(flatten)]
        database: DatabaseArgs,
        /// The JSON file (default: the embedded Guang'an fixture).
        file: Option<PathBuf>,
    },
    /// Check and read the audit trail (from the data directory).
    #[command(subcommand)]
    Audit(audit_cli::AuditCommand),
    #[command(flatten)]
    Operator(operator_cli::OperatorCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("zhangban-server: {e}");
            ExitCode::from(2)
        }
    }
}

/// Logs to stdout for the server; to stderr (warnings only, unless RUST_LOG
/// says otherwise) for the operator subcommands, whose stdout is the answer.
fn init_tracing(server: bool) {
    let default = if server {
        "info,tower_http=info"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if server {
        builder.init();
    } else {
        builder.with_writer(std::io::stderr).init();
    }
}

fn run(cli: Cli) -> Result<ExitCode, Box<dyn std::error::Error>> {
    match cli.command {
        Command::Serve {
            addr,
            admin_addr,
            data_dir,
            demo,
            operator_token,
            rate_limits,
            no_rate_limits,
            trusted_proxy_header,
            trust_refresh_secs,
            rectification_days,
            database,
        } => {
            let mut limits = if no_rate_limits {
                Limits::off()
            } else {
                Limits::default()
            };
            for spec in &rate_limits {
                limits.set(spec)?;
            }
            let proxy_header = trusted_proxy_header
                .map(|h| axum::http::HeaderName::try_from(h.trim().to_ascii_lowercase()))
                .transpose()?;
            let net = Net {
                addr,
                admin_addr,
                limits,
                proxy_header,
                trust_refresh: std::time::Duration::from_secs(trust_refresh_secs.max(1)),
                rectification_days,
            };
            init_tracing(true);
            // The store is opened (and the demo data written) before the
            // async runtime starts: both block on the database.
            let clock = Arc::new(SystemClock);
            let state = prepare(&data_dir, demo, operator_token, &database, &net, &clock)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(serve(net, &data_dir, &database, demo, state))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::ImportGuides {
            data_dir,
            file,
            database,
        } => {
            init_tracing(true);
            let dir = setup::open_with(&data_dir, None, &database)?;
            let json = match file {
                Some(path) => std::fs::read_to_string(path)?,
                None => setup::FIXTURE.to_owned(),
            };
            let n = setup::import_fixture(dir.store.as_ref(), &json, SystemClock.now())?;
            println!("{n} guides in the catalog");
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(command) => {
            init_tracing(false);
            Ok(audit_cli::run(command))
        }
        Command::Operator(command) => {
            init_tracing(false);
            Ok(operator_cli::run(command))
        }
    }
}

/// Where and how `serve` listens.
#[derive(Debug)]
struct Net {
    addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    limits: Limits,
    proxy_header: Option<axum::http::HeaderName>,
    trust_refresh: std::time::Duration,
    /// [`zhangban_server::state::Config::rectification_days`].
    rectification_days: u32,
}

/// Opens the data directory and its database (writing the demo data into a
/// fresh one if asked) and builds the shared state. Blocking.
fn prepare(
    data_dir: &Path,
    demo: bool,
    operator_token: Option<String>,
    database: &DatabaseArgs,
    net: &Net,
    clock: &Arc<SystemClock>,
) -> Result<Arc<AppState>, Box<dyn std::error::Error>> {
    let mut dir = setup::open_with(data_dir, operator_token, database)?;
    let fresh_demo = demo && setup::demo(data_dir, dir.store.as_ref(), clock.now())?;
    if fresh_demo {
        dir = setup::open_with(data_dir, Some(dir.operator_token), database)?;
    }
    if dir.roots.is_empty() {
        return Err(format!(
            "{}: no root.pub.json (pin the national root public key there, or start with --demo)",
            data_dir.display()
        )
        .into());
    }
    let mut config = dir.config();
    config.limits = net.limits.clone();
    config.trusted_proxy_header = net.proxy_header.clone();
    config.rectification_days = net.rectification_days;
    let state = Arc::new(AppState::new(
        dir.store.clone(),
        Arc::clone(clock) as Arc<dyn zhangban_server::clock::Clock>,
        config,
        dir.roots,
        dir.issuers,
    )?);
    Ok(state)
}

async fn serve(
    net: Net,
    data_dir: &Path,
    database: &DatabaseArgs,
    demo: bool,
    state: Arc<AppState>,
) -> Result<(), Box<dyn std::error::Error>> {
    let Net {
        addr,
        admin_addr,
        trust_refresh,
        ..
    } = net;
    issuing::ensure_status_lists(&state).await?;
    tokio::spawn(issuing::maintain(Arc::clone(&state), trust_refresh));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let db = database.describe(&data_dir.join("zhangban.db"));
    tracing::info!(%local, data_dir = %data_dir.display(), database = %db, "serving");
    println!(
        "掌办 Zhangban server listening on http://{local}  (data: {}, database: {db})",
        data_dir.display()
    );
    if let Some(admin) = admin_addr {
        let admin_listener = tokio::net::TcpListener::bind(admin).await?;
        let admin_local = admin_listener.local_addr()?;
        tracing::info!(%admin_local, "serving /metrics");
        println!("metrics on http://{admin_local}/metrics");
        tokio::spawn(async move {
            if let Err(e) = axum::serve(admin_listener, api::admin_router()).await {
                tracing::error!(error = %e, "admin listener stopped");
            }
        });
    }
    if demo {
        print_demo_help(local, data_dir);
    }
    let upkeep = Arc::clone(&state);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tick.tick().await;
            upkeep.limiters.prune();
        }
    });
    let app = api::router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("stopped");
    Ok(())
}

fn print_demo_help(addr: SocketAddr, data_dir: &std::path::Path) {
    println!(
        "
Demo data: 1,135 Guang'an service guides, 3 issuers, a trust bundle, and a resident
(张三) with 3 licences waiting for their first device. Try:

  curl -s http://{addr}/healthz
  curl -s 'http://{addr}/v1/catalog/changes?since=0&limit=2'
  curl -s http://{addr}/v1/trust/bundle
  # enrol a device with the activation code {DEMO_ACTIVATION_CODE} (a device key from `zhangban keygen`):
  curl -s -X POST http://{addr}/v1/devices/enrol -H 'content-type: application/json' \\
       -d '{{\"activation_code\": \"{DEMO_ACTIVATION_CODE}\", \"device_jwk\": <public JWK>}}'

Operators, one per role (least privilege; tokens in {ops}/<name>.token):
  demo-admin      admin: trust bundle, residents, operators
  demo-issuer     issuer of the 3 demo issuers: licence issue / suspend / reinstate / revoke
  demo-reviewer   reviewer of every demo department: submission transitions, attachments
  demo-publisher  publisher of every demo department: guides
  {dir}/operator-token is the bootstrap admin. Try:

  ZHANGBAN_OPERATOR_TOKEN=$(cat {ops}/demo-admin.token) zhangban-server operator list --server http://{addr}
  # a publisher may not list operators: 403 forbidden_role (and an audit row)
  curl -s http://{addr}/v1/operator/operators -H \"authorization: Bearer $(cat {ops}/demo-publisher.token)\"
  zhangban-server audit verify --data-dir {dir}
",
        dir = data_dir.display(),
        ops = data_dir.join(setup::DEMO_OPERATORS_DIR).display(),
    );
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
