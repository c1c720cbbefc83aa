//! The real server with the demo data on a loopback port, for the host-JVM
//! Kotlin test (android/jvm-test.sh). Once it serves, it writes a Java
//! properties file (the path is its one argument): `url`, `closed_url` (a
//! loopback port nobody listens on: "no network"), `root_jwk`, and a draft
//! that passes the form validator (`guide_id`, `form_version`,
//! `values_json`), and a guide that takes the demo business licence with its
//! other fields filled (`licence_guide_id`, `licence_form_version`,
//! `licence_field`, `licence_values_json`). It serves until interrupted (SIGINT), then removes its
//! data directory.

use std::fmt::Write as _;

use zhangban_tests::{TestServer, fill, system_now};

/// `key=value` with the value escaped for `java.util.Properties`.
fn property(out: &mut String, key: &str, value: &str) {
    let escaped = value.replace('\\', "\\\\").replace('\n', "\\n");
    let _ = writeln!(out, "{key}={escaped}");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let info = std::env::args_os()
        .nth(1)
        .ok_or("usage: zhangban-test-server <info.properties>")?;
    let mut server = TestServer::start_demo().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let now = system_now();
    let guides = zhangban_core::guide::demo_catalog(zhangban_server::setup::FIXTURE, now)?;
    let (guide, values) = guides
        .iter()
        .find_map(|g| fill(g, now).map(|v| (g, v)))
        .ok_or("no demo guide the test can fill")?;
    // A guide that takes the demo business licence and no attachment: the
    // Kotlin test fills the licence field from its wallet (`licence_field`);
    // the other fields are filled here (`licence_values_json`).
    let licence_field = "business_licence";
    let (with_licence, licence_values) = guides
        .iter()
        .filter(|g| g.form.fields.iter().any(|f| f.name == licence_field))
        .find_map(|g| {
            let mut rest = g.clone();
            rest.form.fields.retain(|f| f.name != licence_field);
            fill(&rest, now).map(|v| (g, v))
        })
        .ok_or("no demo guide with a business licence field the test can fill")?;
    let mut body = String::new();
    property(&mut body, "url", &server.base);
    property(&mut body, "closed_url", &format!("http://{closed}"));
    property(&mut body, "root_jwk", &server.root.to_jwk().to_string());
    property(&mut body, "guide_id", &guide.id);
    property(&mut body, "form_version", &guide.form.version.to_string());
    property(
        &mut body,
        "values_json",
        &serde_json::Value::Object(values).to_string(),
    );
    property(&mut body, "licence_guide_id", &with_licence.id);
    property(
        &mut body,
        "licence_form_version",
        &with_licence.form.version.to_string(),
    );
    property(&mut body, "licence_field", licence_field);
    property(
        &mut body,
        "licence_values_json",
        &serde_json::Value::Object(licence_values).to_string(),
    );
    let tmp = std::path::PathBuf::from(&info).with_extension("tmp");
    std::fs::write(&tmp, body)?;
    std::fs::rename(&tmp, &info)?;
    tokio::signal::ctrl_c().await?;
    server.stop().await;
    Ok(())
}
