//! The thin HTTP shell: one method per server endpoint, typed requests and
//! responses, nothing decided here. Bodies are asked for gzip-compressed and
//! decompressed here (rather than by reqwest) so that sync can report the
//! bytes that really crossed the network.

use std::io::Read as _;
use std::time::Duration;

use reqwest::header::{ACCEPT_ENCODING, CONTENT_ENCODING, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// Why a request failed, as the outbox and sync need to tell it apart.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiFailure {
    /// No answer: offline, DNS, refused, timed out, or cut mid-body. The
    /// request may or may not have reached the server.
    #[error("network: {0}")]
    Network(String),
    /// The server answered with an error status.
    #[error("HTTP {status} {code}")]
    Http {
        /// Status code.
        status: u16,
        /// The server's stable error code (`internal`, `validation_failed` …).
        code: String,
        /// Its message.
        message: String,
        /// Structured details (per-field errors).
        details: Option<Value>,
        /// `Retry-After`, in seconds, if given.
        retry_after: Option<u64>,
    },
    /// A success status with a body that does not parse.
    #[error("bad response: {0}")]
    Decode(String),
    /// The device key could not sign (the keystore failed or the user did
    /// not authorise); nothing was sent.
    #[error("keystore: {0}")]
    Keystore(String),
}

/// Result alias.
pub type ApiResult<T> = Result<T, ApiFailure>;

/// `POST /v1/devices/enrol` answer.
#[derive(Debug, Clone, Deserialize)]
pub struct EnrolOut {
    /// The device id (key thumbprint).
    pub device_id: String,
    /// The resident.
    pub resident_id: String,
}

/// A one-time authentication challenge.
#[derive(Debug, Clone, Deserialize)]
pub struct ChallengeOut {
    /// Its id.
    pub challenge_id: String,
    /// The nonce to sign.
    pub nonce: String,
}

/// A bearer token.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenOut {
    /// The token.
    pub token: String,
    /// Its expiry.
    pub expires_at: i64,
}

/// One catalog change, with the guide's JSON exactly as sent (its checksum
/// is over these bytes).
#[derive(Debug, Deserialize)]
pub struct ChangeIn {
    /// Guide id.
    pub id: String,
    /// Sequence number.
    pub seq: u64,
    /// SHA-256 hex of the guide JSON; empty for a tombstone.
    pub checksum: String,
    /// Whether the guide was withdrawn.
    pub deleted: bool,
    /// The guide.
    pub guide: Option<Box<RawValue>>,
}

/// A page of the catalog feed.
#[derive(Debug, Deserialize)]
pub struct CatalogPageIn {
    /// The cursor asked for.
    pub since: u64,
    /// The cursor after this page.
    pub next: u64,
    /// The newest sequence number.
    pub head: u64,
    /// Whether more follow.
    pub more: bool,
    /// The changes.
    pub changes: Vec<ChangeIn>,
}

/// A published status list.
#[derive(Debug, Clone, Deserialize)]
pub struct StatusListIn {
    /// Its URI.
    pub uri: String,
    /// The signed token.
    pub token: String,
}

/// A licence copy from `GET /v1/wallet`.
#[derive(Debug, Clone, Deserialize)]
pub struct WalletEntryIn {
    /// GB/T 36904 identifier.
    pub licence_id: String,
    /// The device the copy is bound to.
    pub device_id: String,
    /// Licence type.
    pub vct: String,
    /// The SD-JWT with every disclosure.
    pub sd_jwt: String,
    /// Issue time.
    pub issued_at: i64,
}

/// A status event from `GET /v1/events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusEventIn {
    /// Feed cursor.
    pub seq: u64,
    /// The submission.
    pub client_id: String,
    /// Its tracking number.
    pub tracking_number: String,
    /// The new state (`submitted`, `accepted`, `in_review`, `approved`, `rejected` …).
    pub state: String,
    /// The officer's note.
    pub note: Option<String>,
    /// When.
    pub at: i64,
}

/// A page of status events.
#[derive(Debug, Clone, Deserialize)]
pub struct EventsPageIn {
    /// The cursor after this page.
    pub next: u64,
    /// The events.
    pub events: Vec<StatusEventIn>,
}

/// A presentation nonce.
#[derive(Debug, Clone, Deserialize)]
pub struct NonceIn {
    /// The nonce.
    pub nonce: String,
    /// The `aud` to use.
    pub audience: String,
    /// Expiry.
    pub expires_at: i64,
}

/// The server's receipt for a submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptIn {
    /// The client id.
    pub client_id: String,
    /// The tracking number.
    pub tracking_number: String,
    /// The guide.
    pub guide_id: String,
    /// Acceptance time.
    pub accepted_at: i64,
}

/// The server's state of an attachment upload.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UploadStateIn {
    /// SHA-256 of the content.
    pub sha256: String,
    /// Declared size.
    pub size: u64,
    /// Bytes stored: where the next chunk starts.
    pub received: u64,
    /// Whether every byte arrived and hashes right.
    pub complete: bool,
}

/// The server, over HTTP.
#[derive(Debug, Clone)]
pub struct ServerApi {
    http: reqwest::Client,
    base: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorInner,
}

#[derive(Deserialize)]
struct ErrorInner {
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    details: Option<Value>,
}

impl ServerApi {
    /// A client for the server at `base_url` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base_url: &str) -> ApiResult<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .no_gzip()
            .build()
            .map_err(|e| ApiFailure::Network(e.to_string()))?;
        Ok(Self {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
        })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn req(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(ACCEPT_ENCODING, "gzip");
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r
    }

    /// Sends, reads the whole body (decompressed), maps error statuses.
    /// Returns the body and the bytes that crossed the wire.
    async fn exchange(&self, req: RequestBuilder) -> ApiResult<(Vec<u8>, u64)> {
        let resp = req
            .send()
            .await
            .map_err(|e| ApiFailure::Network(without_url(&e)))?;
        let status = resp.status();
        let gzip = resp
            .headers()
            .get(CONTENT_ENCODING)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let raw = resp
            .bytes()
            .await
            .map_err(|e| ApiFailure::Network(without_url(&e)))?;
        let wire = u64::try_from(raw.len()).unwrap_or(u64::MAX);
        let body = if gzip {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&raw[..])
                .read_to_end(&mut out)
                .map_err(|e| ApiFailure::Network(format!("gzip body cut or corrupt: {e}")))?;
            out
        } else {
            raw.to_vec()
        };
        if status.is_success() {
            return Ok((body, wire));
        }
        let (code, message, details) = match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(b) => (b.error.code, b.error.message, b.error.details),
            Err(_) => (status_code_name(status), String::new(), None),
        };
        Err(ApiFailure::Http {
            status: status.as_u16(),
            code,
            message,
            details,
            retry_after,
        })
    }

    async fn json<T: DeserializeOwned>(&self, req: RequestBuilder) -> ApiResult<(T, u64)> {
        let (body, wire) = self.exchange(req).await?;
        let v = serde_json::from_slice(&body).map_err(|e| ApiFailure::Decode(e.to_string()))?;
        Ok((v, wire))
    }

    /// `POST /v1/devices/enrol`; `replaces` (old device id, its base64url
    /// signature over the re-enrolment message) makes it a re-enrolment.
    pub async fn enrol(
        &self,
        activation_code: &str,
        device_jwk: &Value,
        replaces: Option<&(String, String)>,
    ) -> ApiResult<EnrolOut> {
        let mut body =
            serde_json::json!({"activation_code": activation_code, "device_jwk": device_jwk});
        if let Some((device_id, signature)) = replaces {
            body["replaces"] = serde_json::json!({"device_id": device_id, "signature": signature});
        }
        Ok(self
            .json(
                self.req(Method::POST, "/v1/devices/enrol", None)
                    .json(&body),
            )
            .await?
            .0)
    }

    /// `POST /v1/auth/challenge`.
    pub async fn challenge(&self, device_id: &str) -> ApiResult<ChallengeOut> {
        let body = serde_json::json!({"device_id": device_id});
        Ok(self
            .json(
                self.req(Method::POST, "/v1/auth/challenge", None)
                    .json(&body),
            )
            .await?
            .0)
    }

    /// `POST /v1/auth/token`.
    pub async fn token(
        &self,
        device_id: &str,
        challenge_id: &str,
        signature: &str,
    ) -> ApiResult<TokenOut> {
        let body = serde_json::json!({"device_id": device_id, "challenge_id": challenge_id, "signature": signature});
        Ok(self
            .json(self.req(Method::POST, "/v1/auth/token", None).json(&body))
            .await?
            .0)
    }

    /// `GET /v1/catalog/changes`, with the bytes on the wire.
    pub async fn catalog_changes(&self, since: u64, limit: u32) -> ApiResult<(CatalogPageIn, u64)> {
        let path = format!("/v1/catalog/changes?since={since}&limit={limit}");
        self.json(self.req(Method::GET, &path, None)).await
    }

    /// `GET /v1/catalog/lexicon` with `If-None-Match: etag`: the lexicon's
    /// text and the bytes on the wire, or `None` if it has not changed (304).
    pub async fn lexicon(&self, etag: &str) -> ApiResult<Option<(String, u64)>> {
        let req = self
            .req(Method::GET, "/v1/catalog/lexicon", None)
            .header(reqwest::header::IF_NONE_MATCH, etag);
        match self.exchange(req).await {
            Ok((body, wire)) => {
                let text =
                    String::from_utf8(body).map_err(|e| ApiFailure::Decode(e.to_string()))?;
                Ok(Some((text, wire)))
            }
            Err(ApiFailure::Http { status: 304, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /v1/trust/bundle`: the bundle JWS.
    pub async fn trust_bundle(&self) -> ApiResult<(String, u64)> {
        let (body, wire) = self
            .exchange(self.req(Method::GET, "/v1/trust/bundle", None))
            .await?;
        let text = String::from_utf8(body).map_err(|e| ApiFailure::Decode(e.to_string()))?;
        Ok((text, wire))
    }

    /// `GET /v1/trust/status-lists`.
    pub async fn status_lists(&self) -> ApiResult<(Vec<StatusListIn>, u64)> {
        self.json(self.req(Method::GET, "/v1/trust/status-lists", None))
            .await
    }

    /// `GET /v1/wallet`.
    pub async fn wallet(&self, token: &str) -> ApiResult<Vec<WalletEntryIn>> {
        Ok(self
            .json(self.req(Method::GET, "/v1/wallet", Some(token)))
            .await?
            .0)
    }

    /// `GET /v1/events?since=`.
    pub async fn events(&self, token: &str, since: u64) -> ApiResult<EventsPageIn> {
        let path = format!("/v1/events?since={since}&limit=500");
        Ok(self
            .json(self.req(Method::GET, &path, Some(token)))
            .await?
            .0)
    }

    /// `POST /v1/submissions/{client_id}/nonce`.
    pub async fn nonce(&self, token: &str, client_id: &str, guide_id: &str) -> ApiResult<NonceIn> {
        let path = format!("/v1/submissions/{client_id}/nonce");
        let body = serde_json::json!({"guide_id": guide_id});
        Ok(self
            .json(self.req(Method::POST, &path, Some(token)).json(&body))
            .await?
            .0)
    }

    /// `PUT /v1/submissions/{client_id}`: `body` is `{guide_id, form_version, values}`.
    pub async fn submit(&self, token: &str, client_id: &str, body: &Value) -> ApiResult<ReceiptIn> {
        let path = format!("/v1/submissions/{client_id}");
        Ok(self
            .json(self.req(Method::PUT, &path, Some(token)).json(body))
            .await?
            .0)
    }
}

impl ServerApi {
    /// `PUT /v1/attachments/{sha256}`: declares (or finds) an upload.
    pub async fn declare_upload(
        &self,
        token: &str,
        sha256: &str,
        size: u64,
        media_type: &str,
    ) -> ApiResult<UploadStateIn> {
        let path = format!("/v1/attachments/{sha256}");
        let body = serde_json::json!({"size": size, "media_type": media_type});
        Ok(self
            .json(self.req(Method::PUT, &path, Some(token)).json(&body))
            .await?
            .0)
    }

    /// `PUT /v1/attachments/{sha256}/chunks/{offset}`: one chunk.
    pub async fn put_chunk(
        &self,
        token: &str,
        sha256: &str,
        offset: u64,
        bytes: Vec<u8>,
    ) -> ApiResult<UploadStateIn> {
        let path = format!("/v1/attachments/{sha256}/chunks/{offset}");
        Ok(self
            .json(
                self.req(Method::PUT, &path, Some(token))
                    .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .body(bytes),
            )
            .await?
            .0)
    }
}

/// reqwest's errors include the URL; ours should not (it may carry ids).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "response body cut"
    } else if e.is_request() {
        "request failed"
    } else {
        "transport error"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {detail}")
    }
}

fn status_code_name(status: StatusCode) -> String {
    match status.as_u16() {
        429 => "too_many_requests".into(),
        502 => "bad_gateway".into(),
        503 => "service_unavailable".into(),
        504 => "gateway_timeout".into(),
        s if s >= 500 => "server_error".into(),
        _ => "http_error".into(),
    }
}
