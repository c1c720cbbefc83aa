//! A complete, self-consistent licence world for demos, tests and benchmarks:
//! a national root, three issuers (market regulation, public security, civil
//! affairs) with their licence types and status lists, a trust bundle, a
//! holder device, and a typical licence (a business licence with 8 fields).
//!
//! Keys come from the caller's RNG, so a seeded RNG gives a reproducible world.

use rand::{CryptoRng, RngCore};
use serde_json::{Value, json};
use std::collections::BTreeMap;

use super::holder::{HeldLicence, KeyBindingRequest};
use super::holder_key::{HolderKey, HolderSigner, P256KeyPair};
use super::issuer::{IssueError, Issuer, LicenceRequest, StatusReference};
use super::keys::KeyPair;
use super::licence_id::LicenceId;
use super::status_list::{StatusList, StatusListCache, StatusListToken};
use super::trust_bundle::{IssuerKeyEntry, TrustBundle, TrustBundleContent, TrustedIssuer};
use super::verifier::AUD_INSPECTION;

/// Prefix of the `vct` of a licence type: `vct` = prefix + GB/T licence type code.
pub const VCT_PREFIX: &str = "urn:zhangban:licence-type:";

/// The `vct` for a GB/T licence type code.
pub fn vct_for(type_code: &str) -> String {
    format!("{VCT_PREFIX}{type_code}")
}

/// One demo issuer's fixed description.
#[derive(Debug, Clone, Copy)]
pub struct DemoIssuerSpec {
    /// `iss`.
    pub id: &'static str,
    /// Name.
    pub name: &'static str,
    /// Unified social credit code.
    pub code: &'static str,
    /// Licence type code it issues.
    pub type_code: &'static str,
    /// The licence type's name.
    pub licence_name: &'static str,
}

/// 广安市市场监督管理局: business licences (营业执照).
pub const MARKET_REGULATION: DemoIssuerSpec = DemoIssuerSpec {
    id: "urn:zhangban:issuer:11511600MB1590032T",
    name: "广安市市场监督管理局",
    code: "11511600MB1590032T",
    type_code: "11100000000013338W050",
    licence_name: "营业执照",
};

/// 广安市公安局: residence permits (居住证).
pub const PUBLIC_SECURITY: DemoIssuerSpec = DemoIssuerSpec {
    id: "urn:zhangban:issuer:11511600008760423K",
    name: "广安市公安局",
    code: "11511600008760423K",
    type_code: "11100000000013127D031",
    licence_name: "居住证",
};

/// 广安市民政局: marriage certificates (结婚证).
pub const CIVIL_AFFAIRS: DemoIssuerSpec = DemoIssuerSpec {
    id: "urn:zhangban:issuer:11511600008760087Q",
    name: "广安市民政局",
    code: "11511600008760087Q",
    type_code: "11100000000013082A001",
    licence_name: "结婚证",
};

/// The demo issuers.
pub const ISSUERS: [DemoIssuerSpec; 3] = [MARKET_REGULATION, PUBLIC_SECURITY, CIVIL_AFFAIRS];

/// The status list URI of a demo issuer.
pub fn status_uri(spec: &DemoIssuerSpec) -> String {
    format!("https://zhangban.example/status/{}/1", spec.code)
}

/// A demo world.
#[derive(Debug, Clone)]
pub struct DemoWorld {
    /// The national root key (pinned in apps).
    pub root: KeyPair,
    /// One issuer per [`ISSUERS`] entry, same order.
    pub issuers: Vec<Issuer>,
    /// The holder's legacy Ed25519 device key (enrolled before issue 11).
    pub holder: KeyPair,
    /// The holder's P-256 device key (what a platform keystore holds).
    pub holder_p256: P256KeyPair,
    /// The bundle content.
    pub bundle_content: TrustBundleContent,
    /// The verified bundle.
    pub bundle: TrustBundle,
    /// One status list per issuer, same order.
    pub status_lists: Vec<StatusList>,
    /// The verifier's cache, filled with every list signed at `now`.
    pub status_cache: StatusListCache,
    /// The world's creation time.
    pub now: i64,
}

/// Seconds in a day.
pub const DAY: i64 = 86_400;

impl DemoWorld {
    /// Builds the world at `now`: keys valid from a year before to five years
    /// after, a bundle (version 1) valid for 30 days, status lists of 4096
    /// entries valid for a day.
    pub fn new<R: RngCore + CryptoRng>(rng: &mut R, now: i64) -> Self {
        let root = KeyPair::generate(rng);
        let issuers: Vec<Issuer> = ISSUERS
            .iter()
            .map(|s| Issuer::new(s.id, KeyPair::generate(rng)))
            .collect();
        let holder = KeyPair::generate(rng);
        let bundle_content = TrustBundleContent {
            version: 1,
            iat: now,
            max_staleness: 30 * DAY,
            issuers: ISSUERS
                .iter()
                .zip(&issuers)
                .map(|(spec, issuer)| TrustedIssuer {
                    id: spec.id.into(),
                    name: spec.name.into(),
                    code: spec.code.into(),
                    keys: vec![IssuerKeyEntry {
                        kid: issuer.key().kid(),
                        jwk: issuer.key().public().to_jwk(),
                        not_before: now - 365 * DAY,
                        not_after: now + 5 * 365 * DAY,
                    }],
                    licence_types: vec![vct_for(spec.type_code)],
                    status_lists: vec![status_uri(spec)],
                })
                .collect(),
        };
        let jws = bundle_content.sign(&root).unwrap_or_default();
        // A bundle we just signed with the root we hold always verifies.
        #[allow(clippy::expect_used)]
        let bundle =
            TrustBundle::verify(&jws, &[root.public()], None).expect("demo bundle verifies");
        let status_lists = vec![StatusList::new(4096); ISSUERS.len()];
        let mut world = Self {
            root,
            issuers,
            holder,
            holder_p256: P256KeyPair::generate(rng),
            bundle_content,
            bundle,
            status_lists,
            status_cache: StatusListCache::new(),
            now,
        };
        world.republish_status(now);
        world
    }

    /// Signs every issuer's status list at `at` (valid for a day) and puts it
    /// in the cache, replacing older ones.
    pub fn republish_status(&mut self, at: i64) {
        for ((spec, issuer), list) in ISSUERS.iter().zip(&self.issuers).zip(&self.status_lists) {
            let uri = status_uri(spec);
            let token = StatusListToken {
                uri: &uri,
                list,
                iat: at,
                exp: Some(at + DAY),
                ttl: Some(3600),
            }
            .sign(issuer.key());
            // Signed by a key of the bundle just above: cannot fail.
            let _ = self.status_cache.insert_token(&token, &self.bundle);
        }
    }

    /// The signed status list token of issuer `i` at `at`.
    pub fn status_token(&self, i: usize, at: i64) -> Option<String> {
        let spec = ISSUERS.get(i)?;
        let uri = status_uri(spec);
        Some(
            StatusListToken {
                uri: &uri,
                list: self.status_lists.get(i)?,
                iat: at,
                exp: Some(at + DAY),
                ttl: Some(3600),
            }
            .sign(self.issuers.get(i)?.key()),
        )
    }

    /// The claims of a typical business licence: 8 fields.
    pub fn typical_claims(serial: u32) -> BTreeMap<String, Value> {
        let spec = MARKET_REGULATION;
        let id = LicenceId::new(spec.type_code, spec.code, &format!("2026{serial:06}"), 1)
            .map(|id| id.to_string())
            .unwrap_or_default();
        let claims = json!({
            "licence_name": spec.licence_name,
            "licence_number": format!("91511602MA6{serial:07}"),
            "licence_id": id,
            "issuer_name": spec.name,
            "holder_name": "广安市示例商贸有限公司",
            "legal_representative": "张三",
            "valid_from": "2026-01-01",
            "valid_until": "2045-12-31",
        });
        serde_json::from_value(claims).unwrap_or_default()
    }

    /// The 5 fields a typical inspection discloses.
    pub const TYPICAL_DISCLOSED: [&'static str; 5] = [
        "licence_name",
        "licence_number",
        "holder_name",
        "legal_representative",
        "valid_until",
    ];

    /// Issues the typical licence (index `serial` in the market-regulation list) to the holder.
    pub fn issue_typical<R: RngCore + CryptoRng>(
        &self,
        serial: u32,
        rng: &mut R,
    ) -> Result<String, IssueError> {
        self.issue(0, Self::typical_claims(serial), u64::from(serial), rng)
    }

    /// Issues the typical licence bound to the P-256 holder key (ES256).
    pub fn issue_typical_es256<R: RngCore + CryptoRng>(
        &self,
        serial: u32,
        rng: &mut R,
    ) -> Result<String, IssueError> {
        let holder = self.holder_p256.holder_key();
        self.issue_to(
            0,
            Self::typical_claims(serial),
            u64::from(serial),
            holder,
            rng,
        )
    }

    /// Issues a licence of issuer `i`'s type with `claims` at status index `idx`.
    pub fn issue<R: RngCore + CryptoRng>(
        &self,
        i: usize,
        claims: BTreeMap<String, Value>,
        idx: u64,
        rng: &mut R,
    ) -> Result<String, IssueError> {
        self.issue_to(i, claims, idx, self.holder.public().into(), rng)
    }

    /// Issues a licence of issuer `i`'s type with `claims` at status index
    /// `idx`, bound to `holder`.
    pub fn issue_to<R: RngCore + CryptoRng>(
        &self,
        i: usize,
        claims: BTreeMap<String, Value>,
        idx: u64,
        holder: HolderKey,
        rng: &mut R,
    ) -> Result<String, IssueError> {
        let spec = ISSUERS.get(i).copied().unwrap_or(MARKET_REGULATION);
        let issuer = self.issuers.get(i).ok_or(IssueError::EmptyType)?;
        let request = LicenceRequest {
            vct: vct_for(spec.type_code),
            claims,
            holder,
            status: StatusReference {
                uri: status_uri(&spec),
                idx,
            },
            issuer_code: spec.code.into(),
        };
        issuer.issue(&request, self.now, rng)
    }

    /// A typical inspection presentation of `issued`: 5 fields, key binding
    /// for `aud` = "inspection" with `nonce` at `at`.
    pub fn present_typical(&self, issued: &str, nonce: &str, at: i64) -> Option<String> {
        self.present_typical_with(issued, nonce, at, &self.holder)
    }

    /// As [`Self::present_typical`], signed by `key` (e.g. [`Self::holder_p256`]).
    pub fn present_typical_with(
        &self,
        issued: &str,
        nonce: &str,
        at: i64,
        key: &dyn HolderSigner,
    ) -> Option<String> {
        let held = HeldLicence::parse(issued).ok()?;
        held.present(
            &Self::TYPICAL_DISCLOSED,
            Some(KeyBindingRequest {
                key,
                audience: AUD_INSPECTION,
                nonce,
                iat: at,
            }),
        )
        .ok()
    }
}
