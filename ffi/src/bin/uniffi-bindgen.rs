//! uniffi's bindgen, in library mode:
//! `cargo run -p zhangban-ffi --bin uniffi-bindgen -- generate --library target/debug/libzhangban_ffi.so --language kotlin --out-dir <dir>`.

fn main() {
    uniffi::uniffi_bindgen_main()
}
