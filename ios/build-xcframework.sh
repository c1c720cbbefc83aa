#!/usr/bin/env bash
# Builds ios/ZhangbanFFI.xcframework (device arm64 + simulator arm64/x86_64)
# from zhangban-ffi's staticlib, and regenerates the Swift bindings.
# Needs macOS with Xcode (xcodebuild, lipo) and rustup. See ios/README.md.
set -euo pipefail
export CARGO_TERM_COLOR=never
cd "$(dirname "$0")/.."

if [ "$(uname -s)" != Darwin ]; then
  echo "ios/build-xcframework.sh needs macOS with Xcode (xcodebuild, lipo)" >&2
  exit 1
fi
command -v xcodebuild >/dev/null || { echo "xcodebuild not found: install Xcode and run xcode-select" >&2; exit 1; }

profile=size
targets=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios)
rustup target add "${targets[@]}"
export IPHONEOS_DEPLOYMENT_TARGET="${IPHONEOS_DEPLOYMENT_TARGET:-15.0}"
for t in "${targets[@]}"; do
  cargo build -p zhangban-ffi --lib --profile "$profile" --target "$t"
done

# Swift + C header + modulemap, library mode, from a host build (the metadata
# is the same on every target).
cargo build -p zhangban-ffi
gen=target/uniffi-swift
rm -rf "$gen"
cargo run -p zhangban-ffi --bin uniffi-bindgen -- \
  generate --library target/debug/libzhangban_ffi.dylib --language swift --no-format --out-dir "$gen"

# The headers directory of the xcframework: the C header and a module.modulemap
# declaring the module ZhangbanFFIFFI that the generated Swift imports.
headers=target/uniffi-swift/headers
mkdir -p "$headers"
cp "$gen/ZhangbanFFIFFI.h" "$headers/"
cp "$gen/ZhangbanFFIFFI.modulemap" "$headers/module.modulemap"

# One fat simulator library (arm64 + x86_64).
sim=target/ios-sim-universal/$profile
mkdir -p "$sim"
lipo -create \
  "target/aarch64-apple-ios-sim/$profile/libzhangban_ffi.a" \
  "target/x86_64-apple-ios/$profile/libzhangban_ffi.a" \
  -output "$sim/libzhangban_ffi.a"

out=ios/ZhangbanFFI.xcframework
rm -rf "$out"
xcodebuild -create-xcframework \
  -library "target/aarch64-apple-ios/$profile/libzhangban_ffi.a" -headers "$headers" \
  -library "$sim/libzhangban_ffi.a" -headers "$headers" \
  -output "$out"

# Keep the committed Swift sources in step with the library.
rm -f ios/Sources/Zhangban/*.swift
cp "$gen"/*.swift ios/Sources/Zhangban/

echo "built $out and ios/Sources/Zhangban/$(cd "$gen" && ls ./*.swift | sed 's|^\./||' | tr '\n' ' ')"
