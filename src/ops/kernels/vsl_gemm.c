// A float32 matrix product for tfjs-wasm with relaxed SIMD's fused multiply-add, built by
// scripts/build_kernels.sh into vsl_gemm.wasm (committed). It is a module of its own because relaxed SIMD is
// not in every engine (Node 20's V8 has it behind a flag): where it does not validate, tfjs' own XNNPACK product
// runs instead (ops/gemm.ts). Like vsl_kernels.c it imports tfjs-wasm's memory and works on tensors where they
// lie, so it has no static data and no stack of its own: every pointer is a byte offset into that memory, and
// the packing scratch is a buffer the caller allocates there.
//
//   C[t] (M x N, row-major) = act(A[t] B[t] + bias),  t < batch
// (B may also come packed ahead: gemm_pack.)
// A's element (i, k) of batch t is at a[t*aBatch + i*ars + k*acs] (floats), B's (k, j) at b[t*bBatch + k*brs +
// j*bcs]: transposed operands are only other strides. The classic blocking (Goto's): a KC x NC block of B is
// packed into column panels of NR, an MC x KC block of A into row strips of MR, and a register tile of MR x NR
// accumulates a whole KC run at a time. MR x NR = 3 x 12: twelve accumulators, three B vectors and one broadcast
// fill 16 of V8's 16 SIMD registers without spilling (6 x 8 spills, measured in docs/performance.md).
#include <wasm_simd128.h>

typedef unsigned long size_t;

#define MR 3
#define NR 12
#define NV (NR / 4)
#define KC 256
#define MC 48
#define NC 1020 /* a multiple of NR: a packed B block is KC x NC floats, ~1 MB, held in L2 */

/** The scratch the caller provides, in floats: the packed B block, then the packed A block. */
__attribute__((export_name("gemm_scratch_floats"))) int gemm_scratch_floats(void) { return KC * NC + MC * KC; }

static inline int min(int a, int b) { return a < b ? a : b; }
static inline int round_up(int n, int m) { return (n + m - 1) / m * m; }

/** B[0:kc, 0:nc] (strides brs, bcs) as panels of NR columns, each kc x NR row-major; short panels 0-padded. */
static void pack_b(const float *b, int brs, int bcs, int kc, int nc, float *out) {
  for (int j = 0; j < nc; j += NR) {
    int nr = min(NR, nc - j);
    for (int k = 0; k < kc; k++) {
      const float *src = b + (size_t)k * brs + (size_t)j * bcs;
      if (nr == NR && bcs == 1) {
        for (int v = 0; v < NV; v++) wasm_v128_store(out + 4 * v, wasm_v128_load(src + 4 * v));
      } else {
        for (int q = 0; q < NR; q++) out[q] = q < nr ? src[(size_t)q * bcs] : 0.0f;
      }
      out += NR;
    }
  }
}

/** A[0:mc, 0:kc] (strides ars, acs) as strips of MR rows, each kc x MR (k-major); short strips 0-padded. */
static void pack_a(const float *a, int ars, int acs, int mc, int kc, float *out) {
  for (int i = 0; i < mc; i += MR) {
    int mr = min(MR, mc - i);
    for (int k = 0; k < kc; k++) {
      const float *src = a + (size_t)i * ars + (size_t)k * acs;
      for (int q = 0; q < MR; q++) out[q] = q < mr ? src[(size_t)q * ars] : 0.0f;
      out += MR;
    }
  }
}

/** The first n (< 4) lanes of row r, the others 0. */
static inline v128_t load_part(const float *r, int n) {
  return wasm_f32x4_make(r[0], n > 1 ? r[1] : 0.0f, n > 2 ? r[2] : 0.0f, 0.0f);
}

static inline void store_part(float *r, v128_t x, int n) {
  r[0] = wasm_f32x4_extract_lane(x, 0);
  if (n > 1) r[1] = wasm_f32x4_extract_lane(x, 1);
  if (n > 2) r[2] = wasm_f32x4_extract_lane(x, 2);
}

/**
 * One MR x NR tile of C (mr x nr of it real) += the packed strip A times the packed panel B over kc. `first`: C
 * holds nothing yet (this is the first KC run); `last`: the bias and relu apply now.
 */
static void tile(int kc, const float *A, const float *B, float *c, int ldc, int mr, int nr, int first, int last,
                 const float *bias, int relu) {
  v128_t acc[MR][NV];
  for (int i = 0; i < MR; i++)
    for (int v = 0; v < NV; v++) acc[i][v] = wasm_f32x4_splat(0.0f);
  for (int k = 0; k < kc; k++) {
    v128_t bv[NV];
    for (int v = 0; v < NV; v++) bv[v] = wasm_v128_load(B + 4 * v);
    for (int i = 0; i < MR; i++) {
      v128_t a = wasm_v128_load32_splat(A + i);
      for (int v = 0; v < NV; v++) acc[i][v] = wasm_f32x4_relaxed_madd(a, bv[v], acc[i][v]);
    }
    A += MR;
    B += NR;
  }
  for (int i = 0; i < MR; i++) {
    if (i >= mr) break;
    float *r = c + (size_t)i * ldc;
    for (int v = 0; v < NV; v++) {
      int n = nr - 4 * v; // real columns in this vector
      if (n <= 0) break;
      v128_t x = acc[i][v];
      if (!first) x = wasm_f32x4_add(x, n >= 4 ? wasm_v128_load(r + 4 * v) : load_part(r + 4 * v, n));
      if (last && bias) x = wasm_f32x4_add(x, n >= 4 ? wasm_v128_load(bias + 4 * v) : load_part(bias + 4 * v, n));
      if (last && relu) x = wasm_f32x4_max(x, wasm_f32x4_splat(0.0f));
      if (n >= 4)
        wasm_v128_store(r + 4 * v, x);
      else
        store_part(r + 4 * v, x, n);
    }
  }
}

/** Floats of a whole K x N right operand packed ahead (gemm_pack): every block as gemm would pack it. */
__attribute__((export_name("gemm_packed_floats"))) int gemm_packed_floats(int K, int N) { return K * round_up(N, NR); }

/** Where block (j0, p0) of a right operand packed by gemm_pack starts. */
static inline size_t packed_block(int K, int N, int j0, int p0) {
  return (size_t)j0 * K + (size_t)p0 * round_up(min(NC, N - j0), NR);
}

/**
 * Pack a whole K x N right operand ahead, for products that use the same one many times with few rows each (the
 * GRU's recurrent weight, once per time step): gemm then skips its own packing.
 */
__attribute__((export_name("gemm_pack"))) void gemm_pack(int K, int N, const float *b, int brs, int bcs, float *out) {
  for (int j0 = 0; j0 < N; j0 += NC)
    for (int p0 = 0; p0 < K; p0 += KC)
      pack_b(b + (size_t)p0 * brs + (size_t)j0 * bcs, brs, bcs, min(KC, K - p0), min(NC, N - j0),
             out + packed_block(K, N, j0, p0));
}

/** act(bias) in every row: the product of an empty inner dimension. */
static void fill_rows(int M, int N, float *c, const float *bias, int relu) {
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      float x = bias ? bias[j] : 0.0f;
      c[(size_t)i * N + j] = relu && x < 0.0f ? 0.0f : x;
    }
}

__attribute__((export_name("gemm"))) void gemm(int batch, int M, int N, int K, const float *a, int aBatch, int ars,
                                               int acs, const float *b, int bBatch, int brs, int bcs,
                                               const float *packed, float *c, const float *bias, int relu,
                                               float *scratch) {
  float *pb = scratch, *pa = scratch + KC * NC;
  for (int t = 0; t < batch; t++) {
    const float *at = a + (size_t)t * aBatch, *bt = b + (size_t)t * bBatch;
    float *ct = c + (size_t)t * M * N;
    if (K == 0) {
      fill_rows(M, N, ct, bias, relu);
      continue;
    }
    for (int j0 = 0; j0 < N; j0 += NC) {
      int nc = min(NC, N - j0);
      for (int p0 = 0; p0 < K; p0 += KC) {
        int kc = min(KC, K - p0);
        // B's block, packed here or ahead (gemm_pack; then B is the same for every t)
        const float *bb = packed ? packed + packed_block(K, N, j0, p0) : pb;
        if (!packed) pack_b(bt + (size_t)p0 * brs + (size_t)j0 * bcs, brs, bcs, kc, nc, pb);
        for (int i0 = 0; i0 < M; i0 += MC) {
          int mc = min(MC, M - i0);
          pack_a(at + (size_t)i0 * ars + (size_t)p0 * acs, ars, acs, mc, kc, pa);
          for (int j = 0; j < nc; j += NR) {
            int nr = min(NR, nc - j);
            for (int i = 0; i < mc; i += MR)
              tile(kc, pa + (size_t)i * kc, bb + (size_t)j * kc, ct + (size_t)(i0 + i) * N + j0 + j, N,
                   min(MR, mc - i), nr, p0 == 0, p0 + kc >= K, bias ? bias + j0 + j : 0, relu);
          }
        }
      }
    }
  }
}
