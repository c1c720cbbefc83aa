//! The printable card (亮证卡) for residents without a smartphone: one A4
//! page as SVG with the QR code, the disclosed fields in large type, and the
//! card's validity, so that an inspector without a scanner can still read
//! it and one with a scanner can verify it.

use std::collections::BTreeMap;

use chrono::{FixedOffset, TimeZone as _};
use serde_json::Value;

use crate::credential::claims::GBT_36903;

use super::qr::Qr;

/// zh-CN labels of the face fields the demo licence types carry.
const FACE_LABELS: &[(&str, &str)] = &[
    ("legal_representative", "法定代表人"),
    ("address", "住址"),
    ("spouse_name", "配偶姓名"),
    ("registration_date", "登记日期"),
    ("registered_capital", "注册资本"),
    ("business_scope", "经营范围"),
];

/// The label of a claim: its GB/T 36903 name, a known face field, or the name itself.
pub fn label(claim: &str) -> &str {
    GBT_36903
        .iter()
        .find(|m| m.claim == claim)
        .map(|m| m.zh)
        .or_else(|| {
            FACE_LABELS
                .iter()
                .find(|(c, _)| *c == claim)
                .map(|(_, l)| *l)
        })
        .unwrap_or(claim)
}

/// The day in China Standard Time, `YYYY-MM-DD`.
pub fn cst_day(t: i64) -> String {
    FixedOffset::east_opt(8 * 3600)
        .and_then(|tz| tz.timestamp_opt(t, 0).single())
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The card as an SVG document (A4, millimetres).
pub fn card_svg(
    qr: &Qr,
    claims: &BTreeMap<String, Value>,
    printed_at: i64,
    valid_until: i64,
) -> String {
    let side = qr.width() as f64 + 8.0;
    let qr_mm = 120.0;
    let scale = qr_mm / side;
    let title = claims
        .get("licence_name")
        .map(text_of)
        .unwrap_or_else(|| "电子证照".into());
    let mut rows = String::new();
    let mut y: f64 = 180.0;
    for (k, v) in claims {
        if k == "licence_name" {
            continue;
        }
        rows.push_str(&format!(
            r#"<text x="20" y="{y:.1}" font-size="7">{}</text><text x="75" y="{y:.1}" font-size="9" font-weight="bold">{}</text>"#,
            escape(label(k)),
            escape(&text_of(v))
        ));
        y += 12.0;
    }
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="210mm" height="297mm" viewBox="0 0 210 297" font-family="Noto Sans CJK SC, Source Han Sans SC, sans-serif">
<rect width="210" height="297" fill="#fff"/>
<text x="105" y="22" font-size="12" text-anchor="middle">电子证照亮证卡</text>
<text x="105" y="36" font-size="14" font-weight="bold" text-anchor="middle">{title}</text>
<g transform="translate({qx:.2} 45) scale({scale:.4}) translate(4 4)">{path}</g>
{rows}
<text x="105" y="{vy:.1}" font-size="9" text-anchor="middle">打印于 {printed}，有效期至 {until}</text>
<text x="105" y="{vy2:.1}" font-size="6" text-anchor="middle">扫码核验 · 本卡不能证明出示人即持证人</text>
<text x="105" y="{vy3:.1}" font-size="4.5" text-anchor="middle">Printed {printed}, valid until {until}. It does not prove its bearer is the holder.</text>
</svg>
"##,
        title = escape(&title),
        qx = (210.0 - qr_mm) / 2.0,
        path = qr.svg_path(),
        vy = y.max(240.0) + 10.0,
        vy2 = y.max(240.0) + 18.0,
        vy3 = y.max(240.0) + 25.0,
        printed = cst_day(printed_at),
        until = cst_day(valid_until),
    )
}
