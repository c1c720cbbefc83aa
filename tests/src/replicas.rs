//! Several `zhangban-server` processes on one PostgreSQL database (ADR
//! 0221): what a province runs behind its load balancer. Each replica is a
//! real process (`serve --demo --database-url …`) sharing one data
//! directory (the keys every replica must hold) and one database made for
//! the test; the first fills it with the demo data, the others start on it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::PathBuf;

use zhangban_core::credential::PublicKey;

use crate::postgres::TestDatabase;
use crate::process::{Scratch, ServerProcess};

/// Replicas of one deployment.
#[derive(Debug)]
pub struct Replicas {
    /// The server processes.
    pub servers: Vec<ServerProcess>,
    /// The database they share (dropped after them).
    pub db: TestDatabase,
    /// The data directory they share.
    pub data_dir: PathBuf,
    /// The pinned root key phones need.
    pub root: PublicKey,
    /// How often each replica re-reads trust data (`--trust-refresh-secs`).
    pub trust_refresh_secs: u64,
    scratch: Scratch,
}

impl Replicas {
    /// Starts `n` replicas (blocking: call it from `spawn_blocking` in an
    /// async test). Rate limits are off (every phone shares one address).
    pub fn start(n: usize) -> Self {
        Self::start_on(n, TestDatabase::create())
    }

    /// Starts `n` replicas on `db`.
    pub fn start_on(n: usize, db: TestDatabase) -> Self {
        let scratch = Scratch::new("replicas");
        let data_dir = scratch.path("zhangban-data");
        let trust_refresh_secs = 1;
        let refresh = trust_refresh_secs.to_string();
        let args = [
            "--database-url",
            db.url(),
            "--database-pool-size",
            "8",
            "--no-rate-limits",
            "--trust-refresh-secs",
            &refresh,
        ];
        let mut servers = Vec::with_capacity(n);
        // The first fills the fresh database and directory with the demo
        // data; the others find it there.
        for i in 0..n {
            let log = scratch.path(&format!("replica-{i}.log"));
            servers.push(ServerProcess::start(scratch.dir(), &data_dir, &log, &args));
        }
        let root_text = std::fs::read_to_string(data_dir.join("root.pub.json")).unwrap();
        let root = PublicKey::from_jwk(&serde_json::from_str(&root_text).unwrap()).unwrap();
        Self {
            servers,
            db,
            data_dir,
            root,
            trust_refresh_secs,
            scratch,
        }
    }

    /// Each replica's address.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.servers.iter().map(ServerProcess::addr).collect()
    }

    /// The token of demo operator `name` (`demo-admin`, `demo-reviewer`, …).
    pub fn operator_token(&self, name: &str) -> String {
        let path = self
            .data_dir
            .join(zhangban_server::setup::DEMO_OPERATORS_DIR)
            .join(format!("{name}.token"));
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .trim()
            .to_owned()
    }

    /// A scratch path (phones' stores, files).
    pub fn path(&self, name: &str) -> PathBuf {
        self.scratch.path(name)
    }

    /// Every replica's log, for a failure message.
    pub fn logs(&self) -> String {
        self.servers
            .iter()
            .enumerate()
            .map(|(i, s)| format!("--- replica {i} ---\n{}", s.log_text()))
            .collect()
    }
}
