//! The baseline for android/jvm-bench.sh: the same searches as the Kotlin
//! benchmark through the same facade (`zhangban_ffi::Client::search`, with
//! its record conversions), called from Rust, so no FFI crossing. Opens the
//! store the Kotlin benchmark synced; needs no network.
//! Usage: search_native <store path> <root jwk> <quick: 0|1>
//! Prints "native search <q>: <us> us/call (<n> calls)".

use std::time::Instant;

fn micros(rounds: usize, calls: usize, mut body: impl FnMut()) -> f64 {
    for _ in 0..3 * calls {
        body();
    }
    let mut per_call: Vec<f64> = (0..rounds)
        .map(|_| {
            let t0 = Instant::now();
            for _ in 0..calls {
                body();
            }
            t0.elapsed().as_secs_f64() * 1e6 / calls as f64
        })
        .collect();
    per_call.sort_by(f64::total_cmp);
    per_call[per_call.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, store, root, quick] = args.as_slice() else {
        return Err("usage: search_native <store path> <root jwk> <quick: 0|1>".into());
    };
    let quick = quick == "1";
    // Port 9 (discard): the searches are offline.
    let open = zhangban_ffi::Client::open(
        store.clone(),
        "http://127.0.0.1:9".into(),
        root.clone(),
        zhangban_ffi::SoftwareKeystore::open(format!("{store}.keys"))?,
        zhangban_ffi::SoftwareDataKeyStore::open(format!("{store}.keys"))?,
    );
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(open)?;
    let (rounds, calls) = if quick { (3, 50) } else { (9, 400) };
    let mut sink = 0usize;
    for (q, limit) in [("魑魅", 10), ("社保", 1), ("社保", 10), ("营业执照", 10)] {
        let us = micros(rounds, calls, || {
            sink += client.search(q.into(), limit).map(|h| h.len()).unwrap_or(0);
        });
        println!("native search {q} top {limit}: {us:.1} us/call ({calls} calls)");
    }
    std::hint::black_box(sink);
    Ok(())
}
