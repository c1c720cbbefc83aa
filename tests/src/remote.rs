//! The phone-side HTTP steps (enrol, sign a challenge, get a token) against
//! any server base URL: the in-process [`crate::TestServer`] delegates here,
//! and the multi-replica tests use it against server processes or the
//! proxy in front of them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use zhangban_core::credential::jose::b64e;
use zhangban_core::credential::{HolderSigner, P256KeyPair, SoftwareHolderKey};
use zhangban_server::api;

use crate::server::{Device, Resident};

/// A server (or a proxy in front of servers) at `base`.
#[derive(Debug, Clone)]
pub struct Remote {
    /// `http://host:port`.
    pub base: String,
    /// The HTTP client.
    pub http: reqwest::Client,
}

impl Remote {
    /// A remote at `base` using `http`.
    pub fn new(base: &str, http: reqwest::Client) -> Self {
        Self {
            base: base.to_owned(),
            http,
        }
    }

    /// A request without credentials.
    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    /// Registers resident `id` with an activation code for `uses` devices,
    /// as the admin operator whose token is `admin_token`.
    pub async fn register(&self, admin_token: &str, id: &str, uses: u32) -> Resident {
        let resp = self
            .req(Method::POST, "/v1/operator/residents")
            .bearer_auth(admin_token)
            .json(&json!({"id": id, "name": "张三", "uses": uses, "valid_days": 30}))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        Resident {
            id: id.to_owned(),
            code: v["activation_code"].as_str().unwrap().to_owned(),
        }
    }

    /// `POST /v1/devices/enrol`.
    pub async fn enrol_raw(&self, code: &str, key: &dyn HolderSigner) -> Response {
        self.req(Method::POST, "/v1/devices/enrol")
            .json(&json!({"activation_code": code, "device_jwk": key.holder_key().to_jwk()}))
            .send()
            .await
            .unwrap()
    }

    /// `POST /v1/auth/challenge` → (challenge id, nonce).
    pub async fn challenge(&self, device_id: &str) -> (String, String) {
        let resp = self
            .req(Method::POST, "/v1/auth/challenge")
            .json(&json!({"device_id": device_id}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let v: Value = resp.json().await.unwrap();
        (
            v["challenge_id"].as_str().unwrap().to_owned(),
            v["nonce"].as_str().unwrap().to_owned(),
        )
    }

    /// `POST /v1/auth/token` with the signature of `signer`.
    pub async fn token_raw(
        &self,
        device_id: &str,
        challenge_id: &str,
        nonce: &str,
        signer: &dyn HolderSigner,
    ) -> Response {
        let msg = api::auth::challenge_message(challenge_id, nonce);
        let sig = signer.sign_raw(msg.as_bytes()).unwrap();
        self.req(Method::POST, "/v1/auth/token")
            .json(
                &json!({"device_id": device_id, "challenge_id": challenge_id,
                "signature": b64e(sig)}),
            )
            .send()
            .await
            .unwrap()
    }

    /// Challenge → signature → token.
    pub async fn login(&self, key: &dyn HolderSigner) -> String {
        let id = key.holder_key().thumbprint();
        let (cid, nonce) = self.challenge(&id).await;
        let resp = self.token_raw(&id, &cid, &nonce, key).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let v: Value = resp.json().await.unwrap();
        v["token"].as_str().unwrap().to_owned()
    }

    /// Enrols a new P-256 device key for `resident` and logs it in.
    pub async fn device(&self, resident: &Resident) -> Device {
        let key = SoftwareHolderKey::P256(P256KeyPair::generate(&mut rand::rngs::OsRng));
        self.device_with(resident, key).await
    }

    /// Enrols `key` for `resident` and logs it in.
    pub async fn device_with(&self, resident: &Resident, key: SoftwareHolderKey) -> Device {
        let resp = self.enrol_raw(&resident.code, &key).await;
        assert_eq!(
            resp.status(),
            StatusCode::OK,
            "{}",
            resp.text().await.unwrap()
        );
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["resident_id"], resident.id.as_str());
        let token = self.login(&key).await;
        Device {
            id: v["device_id"].as_str().unwrap().to_owned(),
            resident_id: resident.id.clone(),
            key,
            token,
        }
    }
}
