//! The one form filler of the test suites and benchmarks: values for every
//! required field of a guide's form that the shared validator accepts on the
//! day of `now`, and the catalog read over HTTP to pick guides from.

use chrono::NaiveDate;
use serde_json::{Map, Value, json};
use zhangban_core::guide::fixture::CREDIT_CODE_PATTERN;
use zhangban_core::guide::{
    FieldKind, FormField, Guide, validate_draft, validate_versioned_submission,
};

/// The file [`valid_values`] puts in every required attachment field (a
/// test uploads it first: see `TestServer::submit`).
pub const SCAN: &[u8] = b"%PDF-1.4\n% zhangban test scan\n%%EOF\n";

/// An attachment field value referencing [`SCAN`].
pub fn scan_ref() -> Value {
    json!({"sha256": zhangban_server::state::sha256_hex(SCAN), "size": SCAN.len(),
        "media_type": "application/pdf", "name": "scan.pdf"})
}

/// The day in China Standard Time at `t` (the validator's "today").
pub fn today_cst(t: i64) -> NaiveDate {
    zhangban_core::client::flush::today_cst(t)
}

/// The day (China Standard Time) at `t`, `YYYY-MM-DD`.
pub fn day(t: i64) -> String {
    today_cst(t).format("%Y-%m-%d").to_string()
}

/// A date the field's own bounds accept on `today`: today, else a week
/// later or earlier (the first that passes).
fn a_valid_date(field: &FormField, today: NaiveDate) -> Option<Value> {
    [0_i64, 7, -7, 365, -365].into_iter().find_map(|days| {
        let d = today.checked_add_signed(chrono::Duration::days(days))?;
        let v = json!(d.format("%Y-%m-%d").to_string());
        let schema = zhangban_core::guide::FormSchema {
            version: 1,
            fields: vec![field.clone()],
        };
        let one: Map<String, Value> = [(field.name.clone(), v.clone())].into_iter().collect();
        validate_draft(&schema, &one, today).is_ok().then_some(v)
    })
}

/// Values for every required field of `guide` that pass the shared
/// validator on the day of `now`; each required attachment field gets what
/// `attach` makes of it. `None` if the form needs what this filler does not
/// make: a licence, a pattern other than the credit code, an attachment
/// `attach` declines.
pub fn fill_with(
    guide: &Guide,
    now: i64,
    mut attach: impl FnMut(&FormField) -> Option<Value>,
) -> Option<Map<String, Value>> {
    let today = today_cst(now);
    let mut values = Map::new();
    for f in guide.form.fields.iter().filter(|f| f.required) {
        let v = match &f.kind {
            FieldKind::Text {
                min_len,
                max_len,
                pattern,
            } => match pattern.as_deref() {
                Some(p) if p == CREDIT_CODE_PATTERN => json!("91511602MA62000001"),
                Some(_) => return None,
                None => json!("测".repeat((*min_len).max(2).min(*max_len) as usize)),
            },
            FieldKind::Number { min, integer, .. } => {
                let n = min.unwrap_or(1.0).max(1.0).ceil();
                if *integer {
                    #[allow(clippy::cast_possible_truncation)]
                    let n = n as i64;
                    json!(n)
                } else {
                    json!(n)
                }
            }
            FieldKind::Date { .. } => a_valid_date(f, today)?,
            FieldKind::Choice { options, multiple } => {
                let first = options.first()?.value.clone();
                if *multiple {
                    json!([first])
                } else {
                    json!(first)
                }
            }
            FieldKind::IdNumber => json!("11010519491231002X"),
            FieldKind::Phone => json!("13800138000"),
            FieldKind::LicenceRef { .. } => return None,
            FieldKind::Attachment { .. } => attach(f)?,
        };
        values.insert(f.name.clone(), v);
    }
    validate_versioned_submission(&guide.form, guide.form.version, &values, today).ok()?;
    Some(values)
}

/// [`fill_with`] for forms without a required attachment.
pub fn fill(guide: &Guide, now: i64) -> Option<Map<String, Value>> {
    fill_with(guide, now, |_| None)
}

/// A draft of `guide` named `id`, filled by [`fill`] at `now` (created and
/// saved then); `None` if [`fill`] cannot fill the form.
pub fn filled_draft(id: &str, guide: &Guide, now: i64) -> Option<zhangban_core::client::Draft> {
    Some(zhangban_core::client::Draft {
        id: id.to_owned(),
        guide_id: guide.id.clone(),
        form_version: guide.form.version,
        values: fill(guide, now)?,
        created_at: now,
        updated_at: now,
    })
}

/// [`fill_with`], every required attachment being [`SCAN`]; panics if the
/// form cannot be filled (the test chose the guide for this).
pub fn valid_values(guide: &Guide, now: i64) -> Map<String, Value> {
    fill_with(guide, now, |_| Some(scan_ref()))
        .unwrap_or_else(|| panic!("the filler cannot fill the form of {}", guide.id))
}

/// Like [`fill`], but each required attachment field gets a file of `size`
/// pseudo-random bytes (seeded by `seed`) kept by `client`.
pub fn fill_with_files(
    client: &zhangban_core::client::Client,
    guide: &Guide,
    now: i64,
    size: usize,
    seed: u64,
) -> Option<Map<String, Value>> {
    use rand::{RngCore as _, SeedableRng as _};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    fill_with(guide, now, |f| {
        let FieldKind::Attachment { media_types, .. } = &f.kind else {
            return None;
        };
        let media = if media_types.iter().any(|t| t == "application/pdf") {
            "application/pdf"
        } else {
            "image/jpeg"
        };
        let mut data = vec![0u8; size];
        rng.fill_bytes(&mut data);
        let r = client.attach_file(&data, media, "scan.pdf").ok()?;
        serde_json::to_value(r).ok()
    })
}

/// Every guide the server at `base` publishes, through the catalog feed.
pub async fn catalog(http: &reqwest::Client, base: &str) -> Vec<Guide> {
    let mut guides = Vec::new();
    let mut since = 0u64;
    loop {
        let page: Value = http
            .get(format!(
                "{base}/v1/catalog/changes?since={since}&limit=1000"
            ))
            .send()
            .await
            .expect("the catalog feed answers")
            .json()
            .await
            .expect("a catalog page is JSON");
        for c in page["changes"].as_array().expect("changes") {
            if !c["guide"].is_null() {
                guides.push(serde_json::from_value(c["guide"].clone()).expect("a guide"));
            }
        }
        since = page["next"].as_u64().expect("next");
        if !page["more"].as_bool().expect("more") {
            return guides;
        }
    }
}
