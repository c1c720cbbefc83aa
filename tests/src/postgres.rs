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
}

fn admin<T: Send + 'static>(f: impl FnOnce(&mut postgres::Client) -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        let url = admin_url();
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
    /// Creates a fresh, empty database.
    pub fn create() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "zb_test_{}_{}_{:08x}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        );
        let create = format!("CREATE DATABASE {name}");
        admin(move |c| c.batch_execute(&create))
            .unwrap_or_else(|e| panic!("create the test database: {e}"));
        let mut url = with_database(&admin_url(), &name);
        if !url.contains("sslmode=") {
            // A local test server's self-signed certificate would fail the
            // store's verified TLS; loopback needs none.
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str("sslmode=disable");
        }
        Self { name, url }
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
        let _ = std::thread::spawn(move || {
            if let Ok(mut c) = postgres::Client::connect(&admin_url(), postgres::NoTls) {
                let _ = c.batch_execute(&drop);
            }
        })
        .join();
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
