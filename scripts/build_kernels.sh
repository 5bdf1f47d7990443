#!/usr/bin/env bash
# Build src/ops/kernels/*.wasm from their C sources: vsl_kernels.wasm with Debian's clang + lld (plain SIMD),
# vsl_gemm.wasm with clang-19 + lld-19 (relaxed SIMD, which Debian's clang 14 does not know)
# (apt-get install -y clang lld clang-19 lld-19 wabt). The .wasm files are committed, so users need no compiler;
# CI rebuilds them into a temporary folder and checks that the bytes are the same.
#   bash scripts/build_kernels.sh [OUTDIR]      (default: src/ops/kernels itself)
# Each module imports tfjs-wasm's memory, so it must have no data section and must never use a stack of its own
# in that memory: both are checked here.
set -euo pipefail
src="$(cd "$(dirname "$0")/../src/ops/kernels" && pwd)"
outdir=$(cd "${1:-$src}" && pwd)
flags=(--target=wasm32 -O3 -msimd128 -nostdlib -ffreestanding -fno-builtin -Wall -Werror
  -Wl,--no-entry -Wl,--import-memory -Wl,--strip-all -Wl,-z,stack-size=0)
build() { # name compiler extra-flags...
  local name=$1 cc=$2
  shift 2
  local out="$outdir/$name.wasm"
  (cd "$src" && "$cc" "${flags[@]}" "$@" -o "$out" "$name.c")
  if wasm-objdump -x "$out" | grep -q '^Data\['; then echo "build_kernels: $out has a data section" >&2; exit 1; fi
  # the only global is wasm-ld's stack pointer; no instruction may read or write it
  if wasm-objdump -d "$out" | grep -qE 'global\.(get|set) 0'; then echo "build_kernels: $out uses the stack" >&2; exit 1; fi
  echo "built $out ($(stat -c %s "$out") bytes)"
}
build vsl_kernels clang
build vsl_gemm clang-19 -mrelaxed-simd
