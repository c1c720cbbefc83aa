//! PNG → QR: any image file an inspector's device is handed.
#![no_main]
use libfuzzer_sys::fuzz_target;
use zhangban_core::inspection::qr::read_png;

fuzz_target!(|data: &[u8]| {
    let _ = read_png(data);
});
