//! The real server with the demo data on a loopback port, for the host-JVM
//! Kotlin test (android/jvm-test.sh): writes `{"url", "closed_url",
//! "root_jwk"}` to the file named by its one argument once it serves, then
//! serves until interrupted (SIGINT), removing its data directory.

use zhangban_tests::TestServer;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let info = std::env::args_os()
        .nth(1)
        .ok_or("usage: zhangban-test-server <info.json>")?;
    let mut server = TestServer::start_demo().await;
    // A loopback port nobody listens on: the "no network" server.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let body = serde_json::json!({
        "url": server.url(),
        "closed_url": format!("http://{closed}"),
        "root_jwk": server.root.to_jwk().to_string(),
    });
    let tmp = std::path::PathBuf::from(&info).with_extension("tmp");
    std::fs::write(&tmp, body.to_string())?;
    std::fs::rename(&tmp, &info)?;
    tokio::signal::ctrl_c().await?;
    server.stop().await;
    Ok(())
}
