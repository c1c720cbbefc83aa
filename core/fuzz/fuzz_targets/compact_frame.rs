//! The compact QR frame decoder: any bytes a scanner hands over.
#![no_main]
use libfuzzer_sys::fuzz_target;
use zhangban_core::inspection::compact;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = compact::decode(data) {
        // What decodes and re-encodes decodes to the same text.
        if let Ok(again) = compact::encode(&text) {
            assert_eq!(compact::decode(&again).ok().as_deref(), Some(text.as_str()));
        }
    }
});
