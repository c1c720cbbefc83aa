//! A submission's body as the server reads it: JSON values checked by the
//! form validator the server (and the phone) run.
#![no_main]
use libfuzzer_sys::fuzz_target;
use zhangban_core::guide::validate::validate_submission;
use zhangban_core_fuzz::fixture;

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    if let Ok(serde_json::Value::Object(values)) = serde_json::from_slice(data) {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 18).unwrap_or_default();
        let _ = validate_submission(&f.form, &values, today);
    }
});
