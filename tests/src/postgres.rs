//! A PostgreSQL database of its own for each test (ADR 0221).
//!
//! The server is `ZHANGBAN_TEST_DATABASE_URL` when set, else the one on
//! `127.0.0.1:5432` (user `postgres`); `tests/run-all.sh` starts a
//! throwaway cluster when neither answers. A [`TestDatabase`] creates a
//! fresh database there with a unique name and drops it (forcing out any
//! connection left) when dropped. Its admin work runs on a thread of its
//! own, so it may be used from sync tests and from inside a tokio runtime.

use std::sync::atomic::{AtomicU32, Ordering};

/// The variable naming the PostgreSQL server tests use.
pub const URL_VAR: &str = "ZHANGBAN_TEST_DATABASE_URL";
const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The URL of the server tests create their databases on.
pub fn admin_url() -> String {
    std::env::var(URL_VAR).unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// One test's database, dropped with this value.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    admin: String,
}

fn on<T: Send + 'static>(
    url: &str,
    f: impl FnOnce(&mut postgres::Client) -> T + Send + 'static,
) -> T {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {url} does not answer ({e}); run the tests with `bash tests/run-all.sh`, \
                 which starts one, or set {URL_VAR}"
            )
        });
        f(&mut client)
    })
    .join()
    .expect("the PostgreSQL admin thread panicked")
}

/// Replaces the database name (the path) of a `postgres://` URL.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

impl TestDatabase {
    /// Creates a fresh, empty database on the tests' server ([`admin_url`]).
    pub fn create() -> Self {
        Self::create_on(&admin_url())
    }

    /// Creates a fresh, empty database on the server at `admin` (a
    /// superuser's URL).
    pub fn create_on(admin: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "zb_test_{}_{}_{:08x}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        );
        let create = format!("CREATE DATABASE {name}");
        let admin_url = admin.to_owned();
        on(&admin_url, move |c| c.batch_execute(&create))
            .unwrap_or_else(|e| panic!("create the test database: {e}"));
        let mut url = with_database(&admin_url, &name);
        if !url.contains("sslmode=") {
            // A local test server's self-signed certificate would fail the
            // store's verified TLS; loopback needs none.
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str("sslmode=disable");
        }
        Self {
            name,
            url,
            admin: admin_url,
        }
    }

    /// Its URL (for `PgOptions` or `--database-url`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let admin = self.admin.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(mut c) = postgres::Client::connect(&admin, postgres::NoTls) {
                let _ = c.batch_execute(&drop);
            }
        })
        .join();
    }
}

/// A PostgreSQL cluster of a test's own (Debian's binaries, `initdb` in a
/// temporary directory, an unprivileged owner when the test runs as root),
/// for what the shared server must not undergo: a restart mid-test.
#[derive(Debug)]
pub struct Cluster {
    dir: tempfile::TempDir,
    bindir: std::path::PathBuf,
    owner: Option<String>,
    port: u16,
}

fn bindir() -> std::path::PathBuf {
    let mut dirs: Vec<std::path::PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs.into_iter()
        .rev()
        .find(|d| d.join("initdb").exists())
        .or_else(|| {
            std::env::var_os("PATH")
                .and_then(|p| std::env::split_paths(&p).find(|d| d.join("initdb").exists()))
        })
        .unwrap_or_else(|| {
            panic!("initdb not found: install Debian's postgresql (tests/run-all.sh does)")
        })
}

impl Cluster {
    /// `initdb` and start a cluster on a free loopback port.
    pub fn start() -> Self {
        let bindir = bindir();
        // initdb refuses to run as root: the cluster then belongs to postgres.
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let owner = root.then(|| "postgres".to_owned());
        let dir = tempfile::Builder::new()
            .prefix("zhangban-pg-cluster-")
            .tempdir()
            .unwrap();
        if let Some(owner) = &owner {
            let ok = std::process::Command::new("chown")
                .arg(owner)
                .arg(dir.path())
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown the cluster directory to {owner}");
        }
        let port = crate::process::free_port();
        let c = Self {
            dir,
            bindir,
            owner,
            port,
        };
        let data = c.data();
        c.run(
            "initdb",
            &["-D", &data, "-U", "postgres", "-A", "trust", "--no-sync"],
        );
        c.pg_ctl("start");
        c
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let exe = self.bindir.join(tool);
        let mut cmd = match &self.owner {
            Some(owner) => {
                let mut c = std::process::Command::new("runuser");
                c.args(["-u", owner, "--"]).arg(&exe);
                c
            }
            None => std::process::Command::new(&exe),
        };
        let out = cmd
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn pg_ctl(&self, what: &str) {
        let data = self.data();
        let log = self.dir.path().join("log").display().to_string();
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {}",
            self.port,
            self.dir.path().display()
        );
        match what {
            "start" => self.run(
                "pg_ctl",
                &["-D", &data, "-l", &log, "-w", "-o", &opts, "start"],
            ),
            // An immediate stop is a crash: recovery replays the WAL at start.
            _ => self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]),
        }
    }

    /// A superuser's URL.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server as a crash would (`pg_ctl stop -m immediate`), then
    /// starts it again on the same port; committed data survives by WAL
    /// recovery.
    pub fn crash_and_restart(&self) {
        self.pg_ctl("stop");
        self.pg_ctl("start");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let pg_ctl = self.bindir.join("pg_ctl");
        let mut cmd = match &self.owner {
            Some(owner) => {
                let mut c = std::process::Command::new("runuser");
                c.args(["-u", owner, "--"]).arg(&pg_ctl);
                c
            }
            None => std::process::Command::new(&pg_ctl),
        };
        let _ = cmd
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_of_a_url_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "zb"),
            "postgres://postgres@127.0.0.1:5432/zb"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "zb"),
            "postgres://u:p@h/zb?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "zb"), "postgres://h:1/zb");
    }
}
