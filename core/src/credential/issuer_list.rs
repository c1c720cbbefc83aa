//! The operator's list of issuers (`issuers.json`), from which a trust bundle
//! is signed: `[{id, name, code, licence_types, status_lists, keys: [{jwk,
//! not_before, not_after, kid?}]}]`. The `issuers` array of a served bundle
//! has the same shape, so a bundle's issuers can be re-signed as they are.
//!
//! One parser for both command-line tools (`zhangban bundle sign`,
//! `zhangban-server bundle sign`), strict: unknown members, duplicate
//! issuers, status lists or keys, a `kid` that is not the key's RFC 7638
//! thumbprint, and a key window that ends before it starts are refused.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::Value;

use super::keys::PublicKey;
use super::trust_bundle::{IssuerKeyEntry, TrustedIssuer};

/// Why an issuer list is refused. Messages name the issuer and the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssuerListError {
    /// Not a JSON array of issuers of the expected shape.
    #[error("not an issuer list: {0}")]
    Shape(String),
    /// An issuer id appears twice.
    #[error("issuer {0} is listed twice")]
    DuplicateIssuer(String),
    /// A status list URI appears twice.
    #[error("status list {0} is listed twice")]
    DuplicateStatusList(String),
    /// A key appears twice (by thumbprint).
    #[error("key {0} is listed twice")]
    DuplicateKey(String),
    /// A key is not an Ed25519 public JWK.
    #[error("issuer {issuer}: bad key JWK: {error}")]
    BadKey {
        /// The issuer.
        issuer: String,
        /// Why.
        error: String,
    },
    /// A `kid` (beside the key or inside its JWK) is not its thumbprint.
    #[error("issuer {issuer}: kid {given} is not the key's RFC 7638 thumbprint {thumbprint}")]
    KidMismatch {
        /// The issuer.
        issuer: String,
        /// The kid given.
        given: String,
        /// The key's thumbprint.
        thumbprint: String,
    },
    /// `not_after` is before `not_before`.
    #[error("issuer {issuer}: key {kid} has not_after before not_before")]
    KeyWindow {
        /// The issuer.
        issuer: String,
        /// The key.
        kid: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuerSpec {
    id: String,
    name: String,
    code: String,
    licence_types: Vec<String>,
    status_lists: Vec<String>,
    keys: Vec<KeySpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeySpec {
    #[serde(default)]
    kid: Option<String>,
    jwk: Value,
    not_before: i64,
    not_after: i64,
}

fn check_kid(issuer: &str, given: Option<&Value>, key: &PublicKey) -> Result<(), IssuerListError> {
    let thumbprint = key.thumbprint();
    match given {
        None => Ok(()),
        Some(Value::String(k)) if *k == thumbprint => Ok(()),
        Some(other) => Err(IssuerListError::KidMismatch {
            issuer: issuer.to_owned(),
            given: match other {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            },
            thumbprint,
        }),
    }
}

/// Parses and checks an issuer list.
pub fn parse_issuer_list(list: &Value) -> Result<Vec<TrustedIssuer>, IssuerListError> {
    let specs: Vec<IssuerSpec> =
        serde_json::from_value(list.clone()).map_err(|e| IssuerListError::Shape(e.to_string()))?;
    let (mut ids, mut kids, mut uris) = (HashSet::new(), HashSet::new(), HashSet::new());
    let mut out = Vec::with_capacity(specs.len());
    for spec in specs {
        if !ids.insert(spec.id.clone()) {
            return Err(IssuerListError::DuplicateIssuer(spec.id));
        }
        for uri in &spec.status_lists {
            if !uris.insert(uri.clone()) {
                return Err(IssuerListError::DuplicateStatusList(uri.clone()));
            }
        }
        let mut keys = Vec::with_capacity(spec.keys.len());
        for k in spec.keys {
            let key = PublicKey::from_jwk(&k.jwk).map_err(|e| IssuerListError::BadKey {
                issuer: spec.id.clone(),
                error: e.to_string(),
            })?;
            check_kid(&spec.id, k.kid.map(Value::String).as_ref(), &key)?;
            check_kid(&spec.id, k.jwk.get("kid"), &key)?;
            let kid = key.thumbprint();
            if k.not_after < k.not_before {
                return Err(IssuerListError::KeyWindow {
                    issuer: spec.id,
                    kid,
                });
            }
            if !kids.insert(kid.clone()) {
                return Err(IssuerListError::DuplicateKey(kid));
            }
            keys.push(IssuerKeyEntry {
                kid,
                jwk: key.to_jwk(),
                not_before: k.not_before,
                not_after: k.not_after,
            });
        }
        out.push(TrustedIssuer {
            id: spec.id,
            name: spec.name,
            code: spec.code,
            keys,
            licence_types: spec.licence_types,
            status_lists: spec.status_lists,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::credential::KeyPair;
    use rand::SeedableRng as _;
    use serde_json::json;

    fn entry(id: &str, key: &PublicKey, uri: &str) -> Value {
        json!({"id": id, "name": "n", "code": "c", "licence_types": ["urn:t"], "status_lists": [uri],
               "keys": [{"jwk": key.to_jwk(), "not_before": 0, "not_after": 10}]})
    }

    #[test]
    fn a_list_parses_and_each_mistake_is_named() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let (a, b) = (
            KeyPair::generate(&mut rng).public(),
            KeyPair::generate(&mut rng).public(),
        );
        let ok = json!([entry("i1", &a, "u1"), entry("i2", &b, "u2")]);
        let list = parse_issuer_list(&ok).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].keys[0].kid, a.thumbprint());
        let dup = json!([entry("i1", &a, "u1"), entry("i1", &b, "u2")]);
        assert_eq!(
            parse_issuer_list(&dup),
            Err(IssuerListError::DuplicateIssuer("i1".into()))
        );
        let dup_uri = json!([entry("i1", &a, "u1"), entry("i2", &b, "u1")]);
        assert_eq!(
            parse_issuer_list(&dup_uri),
            Err(IssuerListError::DuplicateStatusList("u1".into()))
        );
        let dup_key = json!([entry("i1", &a, "u1"), entry("i2", &a, "u2")]);
        assert_eq!(
            parse_issuer_list(&dup_key),
            Err(IssuerListError::DuplicateKey(a.thumbprint()))
        );
        let mut bad_kid = entry("i1", &a, "u1");
        bad_kid["keys"][0]["kid"] = json!("not-the-thumbprint");
        assert!(
            matches!(parse_issuer_list(&json!([bad_kid])), Err(IssuerListError::KidMismatch { given, .. }) if given == "not-the-thumbprint")
        );
        let mut window = entry("i1", &a, "u1");
        window["keys"][0]["not_after"] = json!(-1);
        assert!(matches!(
            parse_issuer_list(&json!([window])),
            Err(IssuerListError::KeyWindow { .. })
        ));
        let mut extra = entry("i1", &a, "u1");
        extra["surprise"] = json!(1);
        assert!(matches!(
            parse_issuer_list(&json!([extra])),
            Err(IssuerListError::Shape(_))
        ));
    }
}
