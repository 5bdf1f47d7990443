#!/usr/bin/env bash
# Build src/ops/kernels/vsl_kernels.wasm from vsl_kernels.c with Debian's clang + lld
# (apt-get install -y clang lld wabt). The .wasm is committed, so users need no compiler; CI rebuilds it and
# checks that the bytes are the same. The module imports tfjs-wasm's memory, so it must have no data section
# and must never use a stack of its own in that memory: both are checked here.
set -euo pipefail
cd "$(dirname "$0")/../src/ops/kernels"
out=${1:-vsl_kernels.wasm}
clang --target=wasm32 -O3 -msimd128 -nostdlib -ffreestanding -fno-builtin -Wall -Werror \
  -Wl,--no-entry -Wl,--import-memory -Wl,--strip-all -Wl,-z,stack-size=0 \
  -o "$out" vsl_kernels.c
dump=$(wasm-objdump -x "$out")
if grep -q '^Data\[' <<<"$dump"; then echo "build_kernels: $out has a data section" >&2; exit 1; fi
# the only global is wasm-ld's stack pointer; no instruction may read or write it
if wasm-objdump -d "$out" | grep -qE 'global\.(get|set) 0'; then echo "build_kernels: $out uses the stack" >&2; exit 1; fi
echo "built $(pwd)/$out ($(stat -c %s "$out") bytes)"
