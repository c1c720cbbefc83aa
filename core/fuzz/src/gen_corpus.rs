//! Writes the seed corpora (small files from a real demo world: frames,
//! presentations, trust bundle, status lists, a QR PNG, submission bodies)
//! into `corpus/<target>/`. Deterministic (seed [`SEED`]): running it again
//! rewrites the same files. `cargo +nightly run --bin gen_corpus` from core/fuzz.

use std::path::Path;

use rand::SeedableRng as _;
use rand::rngs::StdRng;
use zhangban_core::credential::demo::{DAY, DemoWorld};
use zhangban_core::inspection::qr::Qr;
use zhangban_core::inspection::{present_dynamic, present_printable};
use zhangban_core_fuzz::{NOW, SEED, fixture};

fn put(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn main() {
    let f = fixture();
    let mut rng = StdRng::seed_from_u64(SEED + 1);
    let names: Vec<String> = f.held.claims().keys().map(|k| (*k).to_owned()).collect();
    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    let typical = present_dynamic(
        &f.held,
        &DemoWorld::TYPICAL_DISCLOSED,
        &f.world.holder,
        None,
        NOW,
        &mut rng,
    )
    .unwrap_or_else(|e| panic!("present: {e}"));
    let full = present_dynamic(&f.held, &all, &f.world.holder, Some("n-1"), NOW, &mut rng)
        .unwrap_or_else(|e| panic!("present: {e}"));
    let printed = present_printable(&f.held, &all, &f.world.holder, NOW, 30 * DAY)
        .unwrap_or_else(|e| panic!("present: {e}"));
    for (name, shown) in [
        ("typical", &typical),
        ("full", &full),
        ("printed", &printed),
    ] {
        put("compact_frame", name, &shown.frame);
        put("presentation", &format!("{name}.frame"), &shown.frame);
        put(
            "presentation",
            &format!("{name}.txt"),
            shown.presentation.as_bytes(),
        );
    }
    put(
        "png_qr",
        "typical.png",
        &Qr::new(&typical.frame)
            .unwrap_or_else(|e| panic!("{e}"))
            .to_png(2),
    );
    put(
        "png_qr",
        "short.png",
        &Qr::new(b"zhangban")
            .unwrap_or_else(|e| panic!("{e}"))
            .to_png(3),
    );
    put("trust_data", "bundle.jws", f.world.bundle.jws().as_bytes());
    for i in 0..f.world.status_lists.len() {
        if let Some(t) = f.world.status_token(i, NOW) {
            put("trust_data", &format!("status-{i}.jwt"), t.as_bytes());
        }
        if let Some(list) = f.world.status_lists.get(i) {
            put(
                "trust_data",
                &format!("list-{i}.json"),
                list.to_json().to_string().as_bytes(),
            );
        }
    }
    let mut body = serde_json::Map::new();
    for field in &f.form.fields {
        body.insert(field.name.clone(), serde_json::json!("示例"));
    }
    put(
        "submission_body",
        "strings.json",
        serde_json::Value::Object(body).to_string().as_bytes(),
    );
    put("submission_body", "empty.json", b"{}");
    println!("seed corpora written (world seed {SEED})");
}
