//! The server and the CLIs as processes, the way a person runs them: the
//! `zhangban-server` and `zhangban` binaries cargo built, a `serve --demo`
//! on a free loopback port in its own directory, and a poll with a deadline
//! for it to answer.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A binary of this workspace: `$env_var` if set, else the file cargo built
/// next to the running test (`target/<profile>/<name>`). Panics with the
/// command that builds it when it is missing.
pub fn workspace_bin(name: &str, env_var: &str, build: &str) -> PathBuf {
    if let Ok(p) = std::env::var(env_var) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from target/<profile>/deps");
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} is missing: build it with `{build}` (or set {env_var})",
        bin.display()
    );
    bin
}

/// The `zhangban` CLI (phone, licences, inspector).
pub fn zhangban_bin() -> PathBuf {
    workspace_bin(
        "zhangban",
        "ZHANGBAN_BIN",
        "cargo build -p zhangban-core --features cli --bin zhangban",
    )
}

/// The `zhangban-server` binary (server and operator CLI).
pub fn server_bin() -> PathBuf {
    workspace_bin(
        "zhangban-server",
        "ZHANGBAN_SERVER_BIN",
        "cargo build -p zhangban-server --bin zhangban-server",
    )
}

/// A scratch directory for one test (files the CLIs write, a server's
/// data), removed when dropped.
#[derive(Debug)]
pub struct Scratch(tempfile::TempDir);

impl Scratch {
    /// A fresh one, its name starting with `zhangban-<tag>-`.
    pub fn new(tag: &str) -> Self {
        Self(
            tempfile::Builder::new()
                .prefix(&format!("zhangban-{tag}-"))
                .tempdir()
                .expect("a scratch directory"),
        )
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        self.0.path()
    }

    /// `name` inside it.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Polls `ready` until it holds or `deadline` passes; `false` on timeout.
/// The wait between polls grows from 10 ms to 200 ms.
pub fn poll_until(deadline: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    let mut pause = Duration::from_millis(10);
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// A `zhangban-server serve --demo` process on a free loopback port;
/// SIGKILLed when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Its log (stdout and stderr, appended across restarts).
    pub log: PathBuf,
    launch: Launch,
}

/// How a server process was started (to start it again alike).
#[derive(Debug, Clone)]
struct Launch {
    cwd: PathBuf,
    data: PathBuf,
    extra: Vec<String>,
    addr: String,
}

impl Launch {
    fn spawn(&self, log: &Path) -> Child {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open the server log");
        let err = out.try_clone().expect("clone the log handle");
        Command::new(server_bin())
            .args(["serve", "--demo", "--addr", &self.addr, "--data-dir"])
            .arg(&self.data)
            .args(&self.extra)
            .current_dir(&self.cwd)
            .env_remove("ZHANGBAN_OPERATOR_TOKEN")
            .env_remove("ZHANGBAN_DATA_DIR")
            .env_remove("ZHANGBAN_ADDR")
            .env_remove("ZHANGBAN_DATABASE_URL")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start zhangban-server")
    }
}

impl ServerProcess {
    /// `serve --demo --data-dir zhangban-data` run in `cwd` (where the CLIs
    /// look by default), logging to `cwd/server.log`.
    pub fn start_in(cwd: &Path) -> Self {
        Self::start(
            cwd,
            Path::new("zhangban-data"),
            &cwd.join("server.log"),
            &[],
        )
    }

    /// `serve --demo --data-dir <data> <extra…>` run in `cwd`, appending to
    /// `log`; waits (at most 120 s) until `/healthz` answers 200.
    pub fn start(cwd: &Path, data: &Path, log: &Path, extra: &[&str]) -> Self {
        let addr = format!("127.0.0.1:{}", free_port());
        let launch = Launch {
            cwd: cwd.to_owned(),
            data: data.to_owned(),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            addr: addr.clone(),
        };
        let child = launch.spawn(log);
        let mut server = Self {
            child,
            url: format!("http://{addr}"),
            log: log.to_owned(),
            launch,
        };
        server.wait_healthy();
        server
    }

    /// Starts it again (after [`Self::kill`]) with the same arguments on
    /// the same address, and waits until it answers.
    pub fn restart(&mut self) {
        self.kill();
        self.child = self.launch.spawn(&self.log);
        self.wait_healthy();
    }

    /// Its address (`127.0.0.1:<port>`).
    pub fn addr(&self) -> std::net::SocketAddr {
        self.launch
            .addr
            .parse()
            .expect("the address the server was started on")
    }

    /// Its operating-system process id (of the current run, after a
    /// [`Self::restart`] the new one).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_healthy(&mut self) {
        let health = format!("{}/healthz", self.url);
        let up = poll_until(Duration::from_secs(120), || {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the server exited with {status}:\n{}", self.log_text());
            }
            plain_http::get_status(&health) == Some(200)
        });
        assert!(
            up,
            "the server did not answer in 120 s:\n{}",
            self.log_text()
        );
    }

    /// SIGKILL (`Child::kill` on Unix): no shutdown code runs.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// What it logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

mod plain_http {
    //! A plain HTTP/1.1 GET over a loopback socket, enough for `/healthz`
    //! without a runtime (the callers are synchronous tests).
    use std::io::{Read as _, Write as _};
    use std::net::TcpStream;
    use std::time::Duration;

    /// The status code of `GET url` (`http://host:port/path`), if any.
    pub fn get_status(url: &str) -> Option<u16> {
        let rest = url.strip_prefix("http://")?;
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let mut s = TcpStream::connect(host).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut head = [0u8; 16];
        s.read_exact(&mut head).ok()?;
        std::str::from_utf8(&head).ok()?.get(9..12)?.parse().ok()
    }
}
