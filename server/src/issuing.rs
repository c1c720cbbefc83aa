//! The server as issuer: issuing a licence to every enrolled device of a
//! resident (one copy per device key, each with its own status index), and
//! changing a licence's status (all copies), re-signing and publishing the
//! affected status lists at once.

use std::collections::BTreeMap;

use serde_json::Value;
use zhangban_core::credential::claims::{self, ClaimsError};
use zhangban_core::credential::{
    HolderKey, LicenceId, LicenceIdError, LicenceRequest, Status, StatusList, StatusListToken,
    StatusReference,
};

use crate::api::act::Act;
use crate::error::{ApiError, ApiResult};
use crate::state::{SharedState, blocking};
use crate::store::operators::OperatorWrite;
use axum::http::StatusCode;

use crate::store::{Device, Grant, WalletEntry};

/// Capacity of each status list this server creates.
pub const STATUS_LIST_CAPACITY: u64 = 65_536;

fn status_value(status: Status) -> u8 {
    match status {
        Status::Valid => 0,
        Status::Revoked => 1,
        Status::Suspended => 2,
    }
}

/// Creates (if needed) and publishes the status lists of every issuer this
/// server holds keys for, as listed in the current trust bundle.
pub async fn ensure_status_lists(state: &SharedState) -> ApiResult<()> {
    let lists: Vec<(String, String)> = {
        let trust = state
            .trust
            .read()
            .map_err(|_| ApiError::internal("trust lock poisoned"))?;
        let Some(bundle) = &trust.bundle else {
            return Ok(());
        };
        bundle
            .content()
            .issuers
            .iter()
            .filter(|i| state.issuers.contains_key(&i.id))
            .flat_map(|i| i.status_lists.iter().map(|u| (u.clone(), i.id.clone())))
            .collect()
    };
    for (uri, issuer_id) in lists {
        let (u, i) = (uri.clone(), issuer_id.clone());
        let row = blocking(state, move |s| {
            s.ensure_status_list(&u, &i, STATUS_LIST_CAPACITY)?;
            s.status_list(&u)
        })
        .await?;
        if let Some(row) = row {
            if row.token.is_none() {
                let _guard = state.status_lock.lock().await;
                publish(state, &uri, &issuer_id, row.bits).await?;
            }
        }
    }
    Ok(())
}

/// The `iat` of a status list token we signed (payload read, not verified:
/// only to decide when to re-sign our own token).
fn token_iat(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    let bytes = zhangban_core::credential::jose::b64d(
        payload,
        zhangban_core::credential::rejection::Part::StatusList,
    )
    .ok()?;
    serde_json::from_slice::<Value>(&bytes)
        .ok()?
        .get("iat")?
        .as_i64()
}

/// Whether a list's stored token was signed over its current bits. Not so
/// when the replica that changed the list died before storing its token
/// (another replica's older token was refused meanwhile): re-signed then.
fn token_covers(state: &SharedState, row: &crate::store::StatusListRow) -> ApiResult<bool> {
    let Some(token) = &row.token else {
        return Ok(false);
    };
    let trust = state
        .trust
        .read()
        .map_err(|_| ApiError::internal("trust lock poisoned"))?;
    let Some(bundle) = &trust.bundle else {
        return Ok(true);
    };
    Ok(
        zhangban_core::credential::VerifiedStatusList::verify(token, bundle)
            .is_ok_and(|l| l.list.as_bytes() == row.bits.as_slice()),
    )
}

/// Re-signs every list this server holds the key for whose token is missing,
/// was signed over older bits, or has lived half its validity, so that verifiers never see it expire
/// (24 h validity ⇒ re-signed every 12 h). Returns how many were re-signed.
pub async fn republish_due(state: &SharedState) -> ApiResult<usize> {
    let _guard = state.status_lock.lock().await;
    let rows = blocking(state, |s| s.status_lists()).await?;
    let now = state.clock.now();
    let half = state.config.status_list_validity / 2;
    let mut n = 0;
    for row in rows {
        if !state.issuers.contains_key(&row.issuer_id) {
            continue;
        }
        let due = row
            .token
            .as_deref()
            .and_then(token_iat)
            .is_none_or(|iat| now.saturating_sub(iat) >= half)
            || !token_covers(state, &row)?;
        if due {
            publish(state, &row.uri, &row.issuer_id, row.bits).await?;
            n += 1;
        }
    }
    if n > 0 {
        tracing::info!(lists = n, "status lists re-signed before expiry");
    }
    Ok(n)
}

/// Keeps trust data current for as long as the server runs: re-signs status
/// lists before they expire and re-reads the bundle and lists from the store
/// (another replica, or the operator CLI, may have published).
pub async fn maintain(state: SharedState, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = republish_due(&state).await {
            tracing::warn!(code = e.code, "re-signing status lists failed");
        }
        // Under the status lock: a list published here meanwhile is not
        // replaced by the older copy this reload read.
        let _guard = state.status_lock.lock().await;
        let s = std::sync::Arc::clone(&state);
        match tokio::task::spawn_blocking(move || s.reload_trust()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(code = e.code, "reloading trust data failed"),
            Err(e) => tracing::warn!(error = %e, "reloading trust data panicked"),
        }
    }
}

/// Signs `bits` as the list at `uri`, stores the token and caches it.
async fn publish(
    state: &SharedState,
    uri: &str,
    issuer_id: &str,
    bits: Vec<u8>,
) -> ApiResult<String> {
    let issuer = state
        .issuers
        .get(issuer_id)
        .ok_or_else(|| ApiError::not_found("issuer key not held here"))?;
    let list = StatusList::from_bytes(2, bits.clone()).map_err(ApiError::internal)?;
    // Strictly increasing `iat` per list: verifiers given two lists with one
    // `iat` keep the most severe status (ADR 0101), so a reinstatement signed
    // within the same second as the revocation must carry a later `iat`.
    // Later than this replica's copy and than the stored token, which
    // another replica may have signed since.
    let cached = state
        .trust
        .read()
        .map_err(|_| ApiError::internal("trust lock poisoned"))?
        .status
        .get(uri)
        .map(|l| l.iat);
    let u = uri.to_owned();
    let stored = blocking(state, move |s| s.status_list(&u))
        .await?
        .and_then(|row| row.token)
        .as_deref()
        .and_then(token_iat);
    let last = cached.max(stored);
    let now = state.clock.now();
    let iat = last.map_or(now, |last| now.max(last.saturating_add(1)));
    let token = StatusListToken {
        uri,
        list: &list,
        iat,
        exp: Some(iat + state.config.status_list_validity),
        ttl: Some(3600),
    }
    .sign(issuer.key());
    let (u, t) = (uri.to_owned(), token.clone());
    let kept = blocking(state, move |s| s.put_status_token(&u, &t, &bits)).await?;
    if kept {
        state.cache_status_token(&token)?;
    } else {
        // Another replica changed the list after these bits were read; its
        // token covers this change too (ADR 0221).
        tracing::debug!(%uri, "status list token superseded by a newer one");
    }
    Ok(token)
}

/// The licence type, status list and issuing body's code (ZZBFJGDM) a
/// grant is issued under.
fn type_and_list(
    state: &SharedState,
    issuer_id: &str,
    vct: Option<&str>,
) -> ApiResult<(String, String, String)> {
    let trust = state
        .trust
        .read()
        .map_err(|_| ApiError::internal("trust lock poisoned"))?;
    let bundle = trust
        .bundle
        .as_ref()
        .ok_or_else(|| ApiError::not_found("no trust bundle published"))?;
    let entry = bundle
        .issuer(issuer_id)
        .ok_or_else(|| ApiError::not_found("issuer not in the trust bundle"))?;
    let vct = match vct {
        Some(v) if entry.licence_types.iter().any(|t| t == v) => v.to_owned(),
        Some(_) => {
            return Err(ApiError::bad_request(
                "licence_type_not_authorized",
                "issuer may not issue that type",
            ));
        }
        None => entry.licence_types.first().cloned().ok_or_else(|| {
            ApiError::bad_request("no_licence_type", "issuer has no licence type")
        })?,
    };
    let uri = entry
        .status_lists
        .first()
        .cloned()
        .ok_or_else(|| ApiError::bad_request("no_status_list", "issuer has no status list"))?;
    Ok((vct, uri, entry.code.clone()))
}

/// Grants a licence to a resident and delivers a copy to each enrolled
/// device; devices enrolled later receive theirs at enrolment ([`deliver`]).
pub async fn grant(
    state: &SharedState,
    act: &mut Act,
    resident_id: &str,
    issuer_id: &str,
    vct: Option<String>,
    claims: BTreeMap<String, Value>,
) -> ApiResult<Vec<WalletEntry>> {
    if !state.issuers.contains_key(issuer_id) {
        return Err(ApiError::not_found(
            "this server holds no key for that issuer",
        ));
    }
    let (type_vct, _, issuer_code) = type_and_list(state, issuer_id, vct.as_deref())?;
    let invalid = |e: ClaimsError| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_licence",
            e.to_string(),
        )
    };
    claims::validate(&claims).map_err(invalid)?;
    // The identifier must name this issuer and this licence type (validate
    // has just parsed it, so it parses).
    let id: LicenceId = claims
        .get("licence_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .parse()
        .map_err(|e: LicenceIdError| invalid(e.into()))?;
    claims::check_identity(&id, &type_vct, &issuer_code).map_err(invalid)?;
    let licence_id = claims
        .get("licence_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let grant = Grant {
        licence_id,
        resident_id: resident_id.to_owned(),
        issuer_id: issuer_id.to_owned(),
        vct,
        claims: Value::Object(claims.into_iter().collect()).to_string(),
        status: 0,
        granted_at: state.clock.now(),
    };
    // The grant is the licence (copies follow from it): it commits with the
    // action's audit row.
    act.write(state, OperatorWrite::PutGrant(grant)).await?;
    deliver(state, resident_id).await
}

/// Issues every missing copy of the resident's grants to each of their
/// devices; returns the copies issued now.
///
/// Runs under the status lock, like [`set_status`]: a copy issued while a
/// licence is being revoked either exists before the revocation reads the
/// copies (and is revoked with them) or is issued after it, from the grant's
/// new status. Two deliveries for one resident cannot both issue a copy: the
/// second finds the first's (and the store refuses a second copy per device).
pub async fn deliver(state: &SharedState, resident_id: &str) -> ApiResult<Vec<WalletEntry>> {
    let _guard = state.status_lock.lock().await;
    let rid = resident_id.to_owned();
    let (grants, devices) = blocking(state, move |s| {
        Ok((s.grants_of(&rid)?, s.devices_of(&rid)?))
    })
    .await?;
    let mut out = Vec::new();
    for grant in &grants {
        for device in &devices {
            let (l, d) = (grant.licence_id.clone(), device.id.clone());
            if blocking(state, move |s| s.has_copy(&l, &d)).await? {
                continue;
            }
            if let Some(entry) = issue_copy(state, grant, device).await? {
                out.push(entry);
            }
        }
    }
    Ok(out)
}

/// Issues one copy; `None` if the device got one meanwhile. The caller holds
/// the status lock.
async fn issue_copy(
    state: &SharedState,
    grant: &Grant,
    device: &Device,
) -> ApiResult<Option<WalletEntry>> {
    let issuer = state
        .issuers
        .get(&grant.issuer_id)
        .ok_or_else(|| ApiError::not_found("this server holds no key for that issuer"))?;
    let (vct, uri, issuer_code) = type_and_list(state, &grant.issuer_id, grant.vct.as_deref())?;
    let claims: BTreeMap<String, Value> =
        serde_json::from_str(&grant.claims).map_err(ApiError::internal)?;
    let jwk: Value = serde_json::from_str(&device.jwk).map_err(ApiError::internal)?;
    let holder = HolderKey::from_jwk(&jwk).map_err(ApiError::internal)?;
    let u = uri.clone();
    let idx = blocking(state, move |s| s.allocate_status_index(&u)).await?;
    let request = LicenceRequest {
        vct: vct.clone(),
        claims,
        holder,
        status: StatusReference {
            uri: uri.clone(),
            idx,
        },
        issuer_code,
    };
    let now = state.clock.now();
    let sd_jwt = issuer
        .issue(&request, now, &mut rand::rngs::OsRng)
        .map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_licence",
                e.to_string(),
            )
        })?;
    let mut entry = WalletEntry {
        id: 0,
        licence_id: grant.licence_id.clone(),
        device_id: device.id.clone(),
        vct,
        sd_jwt,
        issued_at: now,
    };
    let (rid, e, iid, u) = (
        grant.resident_id.clone(),
        entry.clone(),
        grant.issuer_id.clone(),
        uri.clone(),
    );
    entry.id = match blocking(state, move |s| s.put_licence(&rid, &e, &iid, &u, idx)).await {
        Ok(id) => id,
        Err(e) if e.code == "conflict" => return Ok(None),
        Err(e) => return Err(e),
    };
    if grant.status != 0 {
        // A licence revoked or suspended before this device enrolled: its new copy carries the status too.
        let (u, v, iid) = (uri.clone(), grant.status, grant.issuer_id.clone());
        let bits = blocking(state, move |s| s.set_status(&u, idx, v)).await?;
        publish(state, &uri, &iid, bits).await?;
    }
    tracing::info!(issuer = %grant.issuer_id, device = %device.id, "licence copy issued");
    Ok(Some(entry))
}

/// Sets the status of every copy of `licence_id` and republishes the lists.
///
/// The grant's status is the decision (copies issued later follow it): it
/// commits with the action's audit row; the lists are re-signed after.
pub async fn set_status(
    state: &SharedState,
    act: &mut Act,
    licence_id: &str,
    status: Status,
) -> ApiResult<usize> {
    let _guard = state.status_lock.lock().await;
    let lid = licence_id.to_owned();
    let copies = blocking(state, move |s| s.licence_copies(&lid)).await?;
    if copies.is_empty() && !grant_exists(state, licence_id).await? {
        return Err(ApiError::not_found("no such licence"));
    }
    let write = OperatorWrite::SetGrantStatus {
        licence_id: licence_id.to_owned(),
        status: status_value(status),
    };
    act.write(state, write).await?;
    let mut touched = BTreeMap::new();
    for (uri, idx) in &copies {
        let (u, i, v) = (uri.clone(), *idx, status_value(status));
        let bits = blocking(state, move |s| s.set_status(&u, i, v)).await?;
        touched.insert(uri.clone(), bits);
    }
    for (uri, bits) in touched {
        let u = uri.clone();
        let row = blocking(state, move |s| s.status_list(&u))
            .await?
            .ok_or_else(|| ApiError::not_found("status list"))?;
        publish(state, &uri, &row.issuer_id, bits).await?;
    }
    tracing::info!(copies = copies.len(), ?status, "licence status changed");
    Ok(copies.len())
}

async fn grant_exists(state: &SharedState, licence_id: &str) -> ApiResult<bool> {
    let lid = licence_id.to_owned();
    blocking(state, move |s| s.grant(&lid))
        .await
        .map(|g| g.is_some())
}
