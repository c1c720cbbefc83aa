#!/usr/bin/env bash
# Size report of the library the apps ship: the host cdylib libzhangban_ffi
# built with the workspace's `size` profile (opt-level z, fat LTO, one codegen
# unit, panic=abort, stripped), in bytes against the 6 MB target, and the five
# largest crates by contribution to .text (the same profile with symbols
# kept, read with nm). Needs cargo, nm (binutils), python3. Takes minutes (fat LTO).
set -euo pipefail
export CARGO_TERM_COLOR=never
cd "$(dirname "$0")/.."

target_bytes=6000000   # 6 MB (decimal); 6 MiB would be 6291456
case "$(uname -s)" in
  Darwin) libname=libzhangban_ffi.dylib; size_of() { stat -f %z "$1"; } ;;
  *) libname=libzhangban_ffi.so; size_of() { stat -c %s "$1"; } ;;
esac

target="${CARGO_TARGET_DIR:-target}"
cargo build --quiet -p zhangban-ffi --lib --profile size
lib="$target/size/$libname"
bytes=$(size_of "$lib")
verdict=$([ "$bytes" -le "$target_bytes" ] && echo "within" || echo "OVER")
echo "$lib (stripped, profile size): $bytes bytes" \
  "($(awk -v b="$bytes" 'BEGIN { printf "%.2f MB, %.2f MiB", b / 1e6, b / 1048576 }'))," \
  "target <= $target_bytes bytes: $verdict"

# cargo-bloat refuses this crate ("only 'bin', 'dylib' and 'cdylib' crate
# types are supported": zhangban-ffi is cdylib + staticlib + lib), so this
# does what `cargo bloat --crates` does itself: read the symbol table of the
# same build with symbols kept (nm) and add up each function's size by the
# crate its demangled path names (for `<T as Trait>::f`, T's crate; generic
# code is counted under the crate that defines it, as cargo-bloat does; C and
# assembly by source file and prefix: sqlite3.c, ring's .c/.S).
# Its own target dir keeps both builds cached.
CARGO_PROFILE_SIZE_STRIP=false cargo build --quiet -p zhangban-ffi --lib --profile size \
  --target-dir "$target/size-bloat"
unstripped="$target/size-bloat/size/$libname"
for tool in nm readelf python3; do
  command -v "$tool" >/dev/null || { echo "$tool is needed for the per-crate report (binutils, python3)" >&2; exit 1; }
done
echo
echo "five largest crates by .text contribution ($unstripped, profile size with symbols kept):"
python3 - "$unstripped" <<'PY'
import re, subprocess, sys
lib = sys.argv[1]
STD = {"std", "core", "alloc", "compiler_builtins", "std_detect", "panic_abort"}
# Demangled names by address (nm -C), kinds and source files from the ELF symbol table.
demangled = {}
for line in subprocess.run(["nm", "-C", "--defined-only", lib], capture_output=True, text=True, check=True).stdout.splitlines():
    parts = line.split(" ", 2)
    if len(parts) == 3 and parts[1] in "tT":
        demangled.setdefault(int(parts[0], 16), []).append(parts[2])
def rust_crate(name):
    name = re.sub(r"::h[0-9a-f]{16}$", "", name)
    while name.startswith("<"):
        name = re.sub(r"^(&mut |&|\*const |\*mut |dyn |\[|\()+", "", name[1:])
    m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)::", name)
    if not m:
        return None
    return "std" if m.group(1) in STD else m.group(1)
RING = ("ring_core_", "_aesni", "__ecp_nistz", "__bn_", "CRYPTO_", "OPENSSL_", "_vpaes", "_bsaes", "_x86_64_")
def c_crate(name, source):
    if source == "sqlite3.c" or name.startswith("sqlite3"):
        return "libsqlite3-sys (C sqlite)"
    if name.startswith(RING) or (source.endswith((".c", ".S", ".s")) and source != "crtstuff.c"):
        return "ring"
    return "[Unknown]"
sizes, total, source = {}, 0, ""
out = subprocess.run(["readelf", "-sW", lib], capture_output=True, text=True, check=True).stdout
in_symtab = False
for line in out.splitlines():
    if line.startswith("Symbol table"):
        in_symtab = "'.symtab'" in line
        continue
    f = line.split()
    if not in_symtab or len(f) < 8 or not f[0].endswith(":"):
        continue
    kind, bind, name = f[3], f[4], f[7]
    if kind == "FILE":
        source = name
        continue
    if kind != "FUNC" or f[6] == "UND":
        continue
    size = int(f[2], 0)
    if size == 0:
        continue
    addr = int(f[1], 16)
    crate = None
    if name.startswith(("_ZN", "_R")):
        for d in demangled.get(addr, []):
            crate = rust_crate(d)
            if crate:
                break
    if crate is None:
        crate = c_crate(name, source if bind == "LOCAL" else "")
    total += size
    sizes[crate] = sizes.get(crate, 0) + size
print(" %6s %10s  %s" % ("share", "bytes", "crate"))
for c, n in sorted(sizes.items(), key=lambda kv: -kv[1])[:5]:
    print(" %5.1f%% %10d  %s" % (100.0 * n / total, n, c))
print(" %5.1f%% %10d  (all functions, %d crates)" % (100.0, total, len(sizes)))
PY
[ "$verdict" = within ]
