//! Rate limits (ADR 0164): per client address and per target, with
//! `governor` (GCRA, one timestamp per key, lock-free).
//!
//! | kind | keyed by | guards |
//! |---|---|---|
//! | `activation` | client address | `POST /v1/devices/enrol` (every attempt) |
//! | `challenge` | address, device | `POST /v1/auth/challenge` |
//! | `token` | address, device | `POST /v1/auth/token` |
//! | `upload` | address, resident | submissions, attachment declarations and chunks |
//!
//! A refusal is 429 `rate_limited` with `Retry-After` (whole seconds). The
//! per-code lockout of activation codes is in the store (ADR 0163). The
//! client address is the TCP peer, or, behind a reverse proxy, the address
//! the configured trusted header carries ([`client_addr`]); never a header
//! the server was not told to trust.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, StatusCode};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;

/// What is limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Activation attempts, per client address.
    ActivationPerAddr,
    /// Challenges, per client address.
    ChallengePerAddr,
    /// Challenges, per device.
    ChallengePerDevice,
    /// Token requests, per client address.
    TokenPerAddr,
    /// Token requests, per device.
    TokenPerDevice,
    /// Uploads (submissions, attachment declarations and chunks), per address.
    UploadPerAddr,
    /// Uploads, per resident.
    UploadPerResident,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 7] = [
        Kind::ActivationPerAddr,
        Kind::ChallengePerAddr,
        Kind::ChallengePerDevice,
        Kind::TokenPerAddr,
        Kind::TokenPerDevice,
        Kind::UploadPerAddr,
        Kind::UploadPerResident,
    ];

    /// The configuration name (`--rate-limit NAME=…`) and metric label.
    pub fn name(self) -> &'static str {
        match self {
            Kind::ActivationPerAddr => "activation",
            Kind::ChallengePerAddr => "challenge",
            Kind::ChallengePerDevice => "challenge-device",
            Kind::TokenPerAddr => "token",
            Kind::TokenPerDevice => "token-device",
            Kind::UploadPerAddr => "upload",
            Kind::UploadPerResident => "upload-resident",
        }
    }

    /// The kind called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// One limit: `burst` requests at once, then one more each `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Requests allowed at once.
    pub burst: u32,
    /// Time for one request's allowance to come back.
    pub period: Duration,
}

impl Limit {
    /// A limit.
    pub const fn new(burst: u32, period: Duration) -> Self {
        Self { burst, period }
    }

    /// Parses `BURST/SECONDS` (seconds may be fractional: `20/0.05`).
    pub fn parse(text: &str) -> Option<Self> {
        let (burst, secs) = text.split_once('/')?;
        let burst: u32 = burst.trim().parse().ok()?;
        let secs: f64 = secs.trim().parse().ok()?;
        if burst == 0 || !secs.is_finite() || secs <= 0.0 || secs > 86_400.0 {
            return None;
        }
        Some(Self::new(burst, Duration::from_secs_f64(secs)))
    }

    fn quota(self) -> Option<Quota> {
        let burst = NonZeroU32::new(self.burst)?;
        Some(Quota::with_period(self.period)?.allow_burst(burst))
    }
}

/// The limits in force: a limit per kind; a kind without one is not limited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits(pub BTreeMap<Kind, Limit>);

impl Default for Limits {
    /// Sane defaults: five activation attempts per address, then one a
    /// minute; challenges and tokens 30 per address and 10 per device at
    /// once, then one every 2 and 6 seconds; uploads 400 per address and
    /// 200 per resident at once, then 40 and 20 a second.
    fn default() -> Self {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        Self(BTreeMap::from([
            (Kind::ActivationPerAddr, Limit::new(5, s(60))),
            (Kind::ChallengePerAddr, Limit::new(30, s(2))),
            (Kind::ChallengePerDevice, Limit::new(10, s(6))),
            (Kind::TokenPerAddr, Limit::new(30, s(2))),
            (Kind::TokenPerDevice, Limit::new(10, s(6))),
            (Kind::UploadPerAddr, Limit::new(400, ms(25))),
            (Kind::UploadPerResident, Limit::new(200, ms(50))),
        ]))
    }
}

impl Limits {
    /// No limits at all.
    pub fn off() -> Self {
        Self(BTreeMap::new())
    }

    /// Applies `NAME=BURST/SECONDS` (or `NAME=off`).
    pub fn set(&mut self, spec: &str) -> Result<(), String> {
        let (name, value) = spec
            .split_once('=')
            .ok_or_else(|| format!("{spec}: expected NAME=BURST/SECONDS"))?;
        let kind = Kind::from_name(name.trim()).ok_or_else(|| {
            let names: Vec<_> = Kind::ALL.iter().map(|k| k.name()).collect();
            format!("{name}: not one of {}", names.join(", "))
        })?;
        if value.trim() == "off" {
            self.0.remove(&kind);
        } else {
            let limit = Limit::parse(value)
                .ok_or_else(|| format!("{value}: expected BURST/SECONDS, both above 0"))?;
            self.0.insert(kind, limit);
        }
        Ok(())
    }
}

/// The limiters, one keyed `governor` limiter per limited kind.
pub struct Limiters {
    limiters: BTreeMap<Kind, DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
}

impl std::fmt::Debug for Limiters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiters")
            .field("kinds", &self.limiters.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Limiters {
    /// Limiters for `limits`.
    pub fn new(limits: &Limits) -> Self {
        let limiters = limits
            .0
            .iter()
            .filter_map(|(k, l)| Some((*k, RateLimiter::keyed(l.quota()?))))
            .collect();
        Self {
            limiters,
            clock: DefaultClock::default(),
        }
    }

    /// Counts one request of `kind` for `key`: `Err` 429 with `Retry-After`
    /// when over the limit.
    pub fn check(&self, kind: Kind, key: &str) -> Result<(), ApiError> {
        let Some(limiter) = self.limiters.get(&kind) else {
            return Ok(());
        };
        match limiter.check_key(&key.to_owned()) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                ::metrics::counter!("zhangban_rate_limited_total", "kind" => kind.name())
                    .increment(1);
                Err(rate_limited(wait))
            }
        }
    }

    /// Forgets keys whose allowance is full again (bounded memory: called
    /// by the server's upkeep loop).
    pub fn prune(&self) {
        for limiter in self.limiters.values() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// Keys tracked, over every kind.
    pub fn tracked(&self) -> usize {
        self.limiters.values().map(RateLimiter::len).sum()
    }
}

/// The client address of a request (see [`client_addr`]).
#[derive(Debug, Clone)]
pub struct ClientAddr(pub String);

impl axum::extract::FromRequestParts<crate::state::SharedState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &crate::state::SharedState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(client_addr(
            parts,
            state.config.trusted_proxy_header.as_ref(),
        )))
    }
}

/// Counts an upload (a submission, an attachment declaration or chunk)
/// against the client address and the resident.
pub fn check_upload(
    state: &crate::state::SharedState,
    addr: &ClientAddr,
    resident_id: &str,
) -> Result<(), ApiError> {
    state.limiters.check(Kind::UploadPerAddr, &addr.0)?;
    state.limiters.check(Kind::UploadPerResident, resident_id)
}

/// 429 `rate_limited` with `Retry-After` rounded up to whole seconds.
pub fn rate_limited(wait: Duration) -> ApiError {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "too many requests; retry later",
    )
    .with_retry_after(secs.max(1))
}

/// The client address of a request: with `trusted_header` configured, the
/// last address that header carries (the one the trusted proxy appended;
/// earlier entries are the client's own claims); else the TCP peer
/// (`ConnectInfo`). `"unknown"` when neither is there.
pub fn client_addr(parts: &Parts, trusted_header: Option<&HeaderName>) -> String {
    if let Some(name) = trusted_header {
        return header_addr(&parts.headers, name)
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string())
}

fn header_addr(headers: &HeaderMap, name: &HeaderName) -> Option<IpAddr> {
    let last = headers.get_all(name).iter().next_back()?.to_str().ok()?;
    let entry = last.rsplit(',').next()?.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(headers: &[(&str, &str)], peer: Option<&str>) -> Parts {
        let mut b = Request::builder();
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let (mut p, ()) = b.body(()).unwrap().into_parts();
        if let Some(peer) = peer {
            p.extensions
                .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        }
        p
    }

    #[test]
    fn the_address_comes_from_the_trusted_header_only() {
        let xff = HeaderName::from_static("x-forwarded-for");
        let p = parts(
            &[("x-forwarded-for", "6.6.6.6, 10.0.0.7")],
            Some("127.0.0.1:5000"),
        );
        assert_eq!(client_addr(&p, None), "127.0.0.1", "header not trusted");
        assert_eq!(client_addr(&p, Some(&xff)), "10.0.0.7", "the proxy's entry");
        let p = parts(&[], Some("127.0.0.1:5000"));
        assert_eq!(client_addr(&p, Some(&xff)), "unknown");
        let p = parts(&[("x-forwarded-for", "garbage")], None);
        assert_eq!(client_addr(&p, Some(&xff)), "unknown");
        assert_eq!(client_addr(&parts(&[], None), None), "unknown");
    }

    #[test]
    fn a_burst_then_429_with_retry_after() {
        let mut limits = Limits::off();
        limits.set("activation=3/3600").unwrap();
        let l = Limiters::new(&limits);
        for _ in 0..3 {
            l.check(Kind::ActivationPerAddr, "a").unwrap();
        }
        let e = l.check(Kind::ActivationPerAddr, "a").unwrap_err();
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        let retry = e.retry_after.unwrap();
        assert!((3000..=3600).contains(&retry), "{retry}");
        l.check(Kind::ActivationPerAddr, "b").unwrap();
        l.check(Kind::ChallengePerAddr, "a").unwrap();
        assert_eq!(l.tracked(), 2);
    }

    #[test]
    fn limits_parse_and_refuse_nonsense() {
        assert_eq!(
            Limit::parse("20/0.05"),
            Some(Limit::new(20, Duration::from_millis(50)))
        );
        for bad in ["0/1", "5/0", "5/-1", "5", "x/1", "5/inf", "5/NaN"] {
            assert_eq!(Limit::parse(bad), None, "{bad}");
        }
        let mut l = Limits::default();
        assert!(l.set("nope=1/1").is_err());
        assert!(l.set("activation").is_err());
        l.set("activation=off").unwrap();
        assert!(!l.0.contains_key(&Kind::ActivationPerAddr));
        for k in Kind::ALL {
            assert_eq!(Kind::from_name(k.name()), Some(k));
        }
    }
}
