//! Filling forms of the live catalog, shared by the process-level server
//! tests (crash, operator CLI) and the load benchmark, which talk to a
//! server binary over HTTP. Included with `#[path]` (each is its own crate).

use chrono::NaiveDate;
use serde_json::{Map, Value, json};
use zhangban_core::guide::{FieldKind, Guide, validate_submission};

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
            .unwrap()
            .json()
            .await
            .unwrap();
        for c in page["changes"].as_array().unwrap() {
            if !c["guide"].is_null() {
                guides.push(serde_json::from_value(c["guide"].clone()).unwrap());
            }
        }
        since = page["next"].as_u64().unwrap();
        if !page["more"].as_bool().unwrap() {
            return guides;
        }
    }
}

/// The day in China Standard Time, as the server's validator sees it.
pub fn today_cst() -> NaiveDate {
    (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive()
}

/// Valid values for every required field, or `None` if the form needs
/// something this simple filler does not make (a pattern, an attachment, a licence).
pub fn fill_simple(guide: &Guide, today: NaiveDate) -> Option<Map<String, Value>> {
    let mut values = Map::new();
    for f in guide.form.fields.iter().filter(|f| f.required) {
        let v = match &f.kind {
            FieldKind::Text {
                min_len,
                max_len,
                pattern: None,
            } => json!("办".repeat((*min_len).max(2).min(*max_len) as usize)),
            FieldKind::Number { min, integer, .. } => {
                let n = min.unwrap_or(0.0).max(1.0);
                if *integer {
                    json!(n.ceil() as i64)
                } else {
                    json!(n)
                }
            }
            FieldKind::Date { .. } => json!(today.format("%Y-%m-%d").to_string()),
            FieldKind::Choice { options, multiple } => {
                let first = json!(options.first()?.value);
                if *multiple { json!([first]) } else { first }
            }
            FieldKind::IdNumber => json!("11010519491231002X"),
            FieldKind::Phone => json!("13800138000"),
            FieldKind::Text { .. }
            | FieldKind::LicenceRef { .. }
            | FieldKind::Attachment { .. } => return None,
        };
        values.insert(f.name.clone(), v);
    }
    validate_submission(&guide.form, &values, today).ok()?;
    Some(values)
}
