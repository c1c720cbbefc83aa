//! The trust bundle and status list parsers (tokens and the list JSON).
#![no_main]
use libfuzzer_sys::fuzz_target;
use zhangban_core::credential::{StatusList, StatusListCache, TrustBundle, VerifiedStatusList};
use zhangban_core_fuzz::{NOW, fixture};

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    if let Ok(text) = std::str::from_utf8(data) {
        let root = f.world.root.public();
        let _ = TrustBundle::verify(text, &[root.clone()], None);
        let _ = TrustBundle::verify(text, &[root], Some(f.bundle()));
        let _ = VerifiedStatusList::verify(text, f.bundle());
        let mut cache = StatusListCache::new();
        let _ = cache.insert_token_at(text, f.bundle(), NOW, 300);
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(list) = StatusList::from_json(&value) {
            let _ = list.get(list.len().saturating_sub(1));
        }
    }
});
