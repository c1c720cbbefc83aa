//! The presentation / disclosure parser and the whole verifier, from the
//! text and from the inspector's scanned bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use zhangban_core::credential::sd_jwt::Disclosure;
use zhangban_core::credential::{VerifyPolicy, verify_presentation};
use zhangban_core::inspection::Inspector;
use zhangban_core_fuzz::{NOW, fixture};

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let inspector = Inspector::new(Some(f.bundle().clone()), f.status().clone(), Some(NOW));
    let verdict = inspector.verify(data, None, NOW + 5);
    // A verdict always carries a code and a class a person can act on.
    assert!(!verdict.code.is_empty());
    if let Ok(text) = std::str::from_utf8(data) {
        for policy in [VerifyPolicy::inspection(), VerifyPolicy::wallet()] {
            let _ = verify_presentation(text, f.bundle(), f.status(), &policy, NOW + 5);
        }
        for piece in text.split('~') {
            let _ = Disclosure::parse(piece);
        }
    }
});
