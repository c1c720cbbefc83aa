//! A fault-injecting HTTP/1.1 proxy for end-to-end tests.
//!
//! Each client connection is served one request at a time; every request is
//! forwarded on a fresh upstream connection (with `Connection: close`), so
//! faults hit exactly one request. Per request, a fault is drawn from a
//! seeded RNG with the configured odds:
//!
//! - `DropRequest`: the request is read and the connection closed; the
//!   server never sees it.
//! - `DropResponse`: the request reaches the server, which commits; the
//!   response is thrown away and the connection closed.
//! - `Duplicate`: the request is sent to the server twice; the client gets
//!   the second answer.
//! - `Delay`: forwarded after a pause.
//! - `ServerError`: answered `503` by the proxy without forwarding.
//! - `CutBody`: forwarded; the client gets the headers and half the body,
//!   then the connection closes.
//!
//! Counters record what happened so a test can prove the faults fired.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forwarded normally.
    None,
    /// Never forwarded.
    DropRequest,
    /// Forwarded; the answer is lost.
    DropResponse,
    /// Forwarded twice.
    Duplicate,
    /// Forwarded late.
    Delay,
    /// Answered 503 by the proxy.
    ServerError,
    /// Answered with half a body.
    CutBody,
}

/// The odds of each fault (per mille) and the delay used.
#[derive(Debug, Clone, Copy)]
pub struct FaultPlan {
    /// Per-mille odds of [`Fault::DropRequest`].
    pub drop_request: u32,
    /// … of [`Fault::DropResponse`].
    pub drop_response: u32,
    /// … of [`Fault::Duplicate`].
    pub duplicate: u32,
    /// … of [`Fault::Delay`].
    pub delay: u32,
    /// … of [`Fault::ServerError`].
    pub server_error: u32,
    /// … of [`Fault::CutBody`].
    pub cut_body: u32,
    /// How long a delayed request waits.
    pub delay_by: Duration,
}

impl FaultPlan {
    /// No faults.
    pub fn clean() -> Self {
        Self {
            drop_request: 0,
            drop_response: 0,
            duplicate: 0,
            delay: 0,
            server_error: 0,
            cut_body: 0,
            delay_by: Duration::ZERO,
        }
    }

    /// Every fault, often: about 40% of requests hit one.
    pub fn hostile() -> Self {
        Self {
            drop_request: 70,
            drop_response: 80,
            duplicate: 70,
            delay: 60,
            server_error: 60,
            cut_body: 60,
            delay_by: Duration::from_millis(30),
        }
    }

    fn draw(&self, rng: &mut StdRng) -> Fault {
        let mut x = rng.gen_range(0..1000u32);
        for (odds, fault) in [
            (self.drop_request, Fault::DropRequest),
            (self.drop_response, Fault::DropResponse),
            (self.duplicate, Fault::Duplicate),
            (self.delay, Fault::Delay),
            (self.server_error, Fault::ServerError),
            (self.cut_body, Fault::CutBody),
        ] {
            if x < odds {
                return fault;
            }
            x -= odds;
        }
        Fault::None
    }
}

/// What the proxy did, by fault.
#[derive(Debug, Default)]
pub struct FaultCounts {
    /// Requests seen.
    pub requests: AtomicU64,
    /// Per fault.
    pub dropped_requests: AtomicU64,
    /// …
    pub dropped_responses: AtomicU64,
    /// …
    pub duplicated: AtomicU64,
    /// …
    pub delayed: AtomicU64,
    /// …
    pub server_errors: AtomicU64,
    /// …
    pub cut_bodies: AtomicU64,
}

impl FaultCounts {
    /// Requests that hit any fault.
    pub fn faults(&self) -> u64 {
        [
            &self.dropped_requests,
            &self.dropped_responses,
            &self.duplicated,
            &self.delayed,
            &self.server_errors,
            &self.cut_bodies,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }
}

/// A running proxy.
#[derive(Debug)]
pub struct FaultProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// What happened.
    pub counts: Arc<FaultCounts>,
    enabled: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Starts a proxy to `upstream` with `plan` and RNG `seed`.
    pub async fn start(upstream: SocketAddr, plan: FaultPlan, seed: u64) -> std::io::Result<Self> {
        Self::spread(vec![upstream], plan, seed).await
    }

    /// Starts a proxy that spreads requests over `upstreams` (several server
    /// replicas), as a load balancer does: each forwarded request goes to
    /// the next one in turn (a duplicated request's copy to the one after),
    /// and one that refuses the connection is skipped for the next
    /// (passive health checking).
    pub async fn spread(
        upstreams: Vec<SocketAddr>,
        plan: FaultPlan,
        seed: u64,
    ) -> std::io::Result<Self> {
        let upstream = Arc::new(Upstreams {
            addrs: upstreams,
            next: AtomicU64::new(0),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let counts = Arc::new(FaultCounts::default());
        let enabled = Arc::new(AtomicBool::new(true));
        let rng = Arc::new(Mutex::new(StdRng::seed_from_u64(seed)));
        let (c, e) = (Arc::clone(&counts), Arc::clone(&enabled));
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (c, e, rng) = (Arc::clone(&c), Arc::clone(&e), Arc::clone(&rng));
                let upstream = Arc::clone(&upstream);
                tokio::spawn(async move {
                    let _ = serve(conn, &upstream, plan, &rng, &c, &e).await;
                });
            }
        });
        Ok(Self {
            addr,
            counts,
            enabled,
            task,
        })
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Turns faults on or off (off: a plain proxy).
    pub fn set_faults(&self, on: bool) {
        self.enabled.store(on, Ordering::SeqCst);
    }
}

/// Reads one HTTP/1.1 message head and body (by Content-Length). `None` at EOF.
async fn read_request(conn: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<Option<Vec<u8>>> {
    loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len = content_length(&head);
            let total = end + 4 + len;
            while buf.len() < total {
                let mut chunk = [0u8; 16384];
                let n = conn.read(&mut chunk).await?;
                if n == 0 {
                    return Ok(None);
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let msg: Vec<u8> = buf.drain(..total).collect();
            return Ok(Some(msg));
        }
        let mut chunk = [0u8; 16384];
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn content_length(head: &str) -> usize {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Rewrites the request to close the upstream connection after one answer.
fn close_after(request: &[u8]) -> Vec<u8> {
    let Some(end) = find(request, b"\r\n\r\n") else {
        return request.to_vec();
    };
    let head = String::from_utf8_lossy(&request[..end]);
    let mut out = String::new();
    for line in head.split("\r\n") {
        if line
            .split_once(':')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("connection"))
        {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&request[end + 4..]);
    bytes
}

/// The servers behind the proxy and whose turn is next.
#[derive(Debug)]
struct Upstreams {
    addrs: Vec<SocketAddr>,
    next: AtomicU64,
}

impl Upstreams {
    /// A connection to the next upstream that accepts one.
    async fn connect(&self) -> std::io::Result<TcpStream> {
        let n = self.addrs.len().max(1) as u64;
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        let mut last = std::io::Error::other("no upstream");
        for i in 0..n {
            let Some(addr) = self.addrs.get(((first + i) % n) as usize) else {
                break;
            };
            match TcpStream::connect(addr).await {
                Ok(up) => return Ok(up),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// Forwards one request on a fresh connection and reads the whole answer.
async fn forward(upstream: &Upstreams, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut up = upstream.connect().await?;
    up.write_all(&close_after(request)).await?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer).await?;
    Ok(answer)
}

async fn serve(
    mut conn: TcpStream,
    upstream: &Upstreams,
    plan: FaultPlan,
    rng: &Mutex<StdRng>,
    counts: &FaultCounts,
    enabled: &AtomicBool,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    // One request per connection: every answer says `connection: close`.
    if let Some(request) = read_request(&mut conn, &mut buf).await? {
        counts.requests.fetch_add(1, Ordering::Relaxed);
        let fault = if enabled.load(Ordering::SeqCst) {
            plan.draw(&mut *rng.lock().await)
        } else {
            Fault::None
        };
        match fault {
            Fault::DropRequest => {
                counts.dropped_requests.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            Fault::ServerError => {
                counts.server_errors.fetch_add(1, Ordering::Relaxed);
                let body = r#"{"error":{"code":"service_unavailable","message":"proxy fault"}}"#;
                let resp = format!(
                    "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                conn.write_all(resp.as_bytes()).await?;
                return Ok(());
            }
            Fault::Delay => {
                counts.delayed.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(plan.delay_by).await;
            }
            _ => {}
        }
        let mut answer = forward(upstream, &request).await?;
        match fault {
            Fault::Duplicate => {
                counts.duplicated.fetch_add(1, Ordering::Relaxed);
                answer = forward(upstream, &request).await?;
            }
            Fault::DropResponse => {
                counts.dropped_responses.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            Fault::CutBody => {
                counts.cut_bodies.fetch_add(1, Ordering::Relaxed);
                let head_end = find(&answer, b"\r\n\r\n").map_or(answer.len(), |e| e + 4);
                let keep = head_end + (answer.len() - head_end) / 2;
                conn.write_all(&answer[..keep]).await?;
                return Ok(());
            }
            _ => {}
        }
        // The upstream answer says `connection: close`; so do we, and the
        // client opens a new connection for its next request.
        conn.write_all(&answer).await?;
    }
    Ok(())
}
