#!/usr/bin/env bash
# Runs a train -> save -> load -> predict cycle of the CLI under valgrind's leak checker and
# fails on any definite or indirect leak or memory error.
#   scripts/valgrind-check.sh build/mediaml
set -euo pipefail
bin=${1:-build/mediaml}
data=${MEDIAML_DATA:-$(dirname "$0")/../../shared/data}
command -v valgrind >/dev/null || { apt-get install -y -qq valgrind >/dev/null; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
vg=(valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect --error-exitcode=99)
# GOMP_SPINCOUNT set: the CLI re-executes itself to set it otherwise, and valgrind (without
# --trace-children) would let that second process run unchecked.
export MEDIAML_THREADS=1 OMP_NUM_THREADS=1 GOMP_SPINCOUNT=10000
echo "valgrind: train + save"
"${vg[@]}" "$bin" vision train --data "$data/mnist" --limit 256 --epochs 1 --batch-size 32 --out "$tmp/m.safetensors" >/dev/null
echo "valgrind: load + eval"
"${vg[@]}" "$bin" vision eval --model "$tmp/m.safetensors" --data "$data/mnist" --limit 256 >/dev/null
echo "valgrind: load + summary"
"${vg[@]}" "$bin" summary "$tmp/m.safetensors" >/dev/null
if command -v python3 >/dev/null; then
  python3 - "$tmp/digit.png" <<'PY'
import struct, sys, zlib
w = h = 28
rows = b"".join(b"\x00" + bytes((x * 9 + y * 5) % 256 for x in range(w)) for y in range(h))
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
PY
  echo "valgrind: load + predict"
  "${vg[@]}" "$bin" vision predict --model "$tmp/m.safetensors" "$tmp/digit.png" >/dev/null
fi
echo "valgrind: no leaks, no errors"
