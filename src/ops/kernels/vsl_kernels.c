// Fused kernels for tfjs-wasm, built by scripts/build_kernels.sh into vsl_kernels.wasm (committed), run on the
// tensors where they lie: the module imports tfjs-wasm's own memory, and every pointer below is a byte offset
// into it. So this code must never touch linear memory of its own: no static data, no arrays on the stack (the
// build checks that the module has no data section and never uses the stack pointer).
//
// SGR's graph attention (one reasoning step), for P pairs of N nodes of S dims, pairs laid out
// image-major (pair p belongs to caption p % nCap). Caption c has count[c] valid nodes (the global node and its
// words); padded nodes are neither keys nor queries: their rows come out 0. R = N (every query node) or 1 (node 0
// only: the last step, whose other rows nothing reads). q has R rows per pair, x has N.
//   forward:  E[i, j] = softmax_j(q_i . x_j) over valid j;  agg_i = sum_j E[i, j] x_j
//   backward: dE = dAgg x^T;  dL = E * (dE - rowsum(E * dE));  dq = dL x;  dx = E^T dAgg + dL^T q
// The tfjs-wasm batched matMul these replace runs such small products on a generic loop (docs/backends.md has its
// rate), and the softmax, mask and transposes around it would be separate passes over the data.
#include <wasm_simd128.h>

typedef unsigned long size_t;

static inline float hsum(v128_t v) {
  return wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1) + wasm_f32x4_extract_lane(v, 2) +
         wasm_f32x4_extract_lane(v, 3);
}

static inline float dot(const float *a, const float *b, int S) {
  v128_t s0 = wasm_f32x4_splat(0.0f), s1 = wasm_f32x4_splat(0.0f);
  int k = 0;
  for (; k + 8 <= S; k += 8) {
    s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(wasm_v128_load(a + k), wasm_v128_load(b + k)));
    s1 = wasm_f32x4_add(s1, wasm_f32x4_mul(wasm_v128_load(a + k + 4), wasm_v128_load(b + k + 4)));
  }
  for (; k + 4 <= S; k += 4) s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(wasm_v128_load(a + k), wasm_v128_load(b + k)));
  float r = hsum(wasm_f32x4_add(s0, s1));
  for (; k < S; k++) r += a[k] * b[k];
  return r;
}

/** out += w * x over S values */
static inline void axpy(float *out, float w, const float *x, int S) {
  v128_t wv = wasm_f32x4_splat(w);
  int k = 0;
  for (; k + 4 <= S; k += 4)
    wasm_v128_store(out + k, wasm_f32x4_add(wasm_v128_load(out + k), wasm_f32x4_mul(wv, wasm_v128_load(x + k))));
  for (; k < S; k++) out[k] += w * x[k];
}

static inline void zero(float *out, int n) {
  int k = 0;
  for (; k + 4 <= n; k += 4) wasm_v128_store(out + k, wasm_f32x4_splat(0.0f));
  for (; k < n; k++) out[k] = 0.0f;
}

/**
 * exp(x) for the softmax (x <= 0 there): x = k ln2 + r with |r| <= ln2/2, exp(r) by its Taylor series to r^7
 * (relative error < 6e-8, below float32's half ulp), times 2^k built in the exponent bits.
 */
static inline float expf_(float x) {
  if (x < -87.0f) return 0.0f;
  const float ln2hi = 0.693145751953125f, ln2lo = 1.42860682030941723212e-6f;
  float kf = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
  float r = (x - kf * ln2hi) - kf * ln2lo;
  float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720 + r * (1.0f / 5040)))))));
  union {
    float f;
    int i;
  } u;
  u.i = ((int)kf + 127) << 23;
  return p * u.f;
}

__attribute__((export_name("graph_attend_fwd"))) void graph_attend_fwd(int P, int R, int N, int S, int nCap,
                                                                        const int *count, const float *q,
                                                                        const float *x, float *E, float *agg) {
  for (int p = 0; p < P; p++) {
    const int n = count[p % nCap];
    const float *xp = x + (size_t)p * N * S;
    for (int i = 0; i < R; i++) {
      float *e = E + ((size_t)p * R + i) * N;
      float *a = agg + ((size_t)p * R + i) * S;
      zero(a, S);
      if (i >= n) {
        zero(e, N);
        continue;
      }
      const float *qi = q + ((size_t)p * R + i) * S;
      float m = -3.4e38f;
      for (int j = 0; j < n; j++) {
        e[j] = dot(qi, xp + (size_t)j * S, S);
        if (e[j] > m) m = e[j];
      }
      float sum = 0.0f;
      for (int j = 0; j < n; j++) {
        e[j] = expf_(e[j] - m);
        sum += e[j];
      }
      const float inv = 1.0f / sum;
      for (int j = 0; j < n; j++) {
        e[j] *= inv;
        axpy(a, e[j], xp + (size_t)j * S, S);
      }
      for (int j = n; j < N; j++) e[j] = 0.0f;
    }
  }
}

/**
 * The gradient of graph_attend_fwd. `dL` is scratch of R*N floats per pair (the softmax gradient), written
 * before it is read. dq and dx are written whole (padded rows 0).
 */
__attribute__((export_name("graph_attend_bwd"))) void graph_attend_bwd(int P, int R, int N, int S, int nCap,
                                                                        const int *count, const float *q,
                                                                        const float *x, const float *E,
                                                                        const float *dAgg, float *dL, float *dq,
                                                                        float *dx) {
  for (int p = 0; p < P; p++) {
    const int n = count[p % nCap];
    const float *xp = x + (size_t)p * N * S;
    float *dxp = dx + (size_t)p * N * S;
    zero(dxp, N * S);
    for (int i = 0; i < R; i++) {
      float *dqi = dq + ((size_t)p * R + i) * S;
      zero(dqi, S);
      if (i >= n) continue;
      const float *e = E + ((size_t)p * R + i) * N;
      const float *da = dAgg + ((size_t)p * R + i) * S;
      const float *qi = q + ((size_t)p * R + i) * S;
      float *dl = dL + ((size_t)p * R + i) * N;
      float t = 0.0f;
      for (int j = 0; j < n; j++) {
        dl[j] = dot(da, xp + (size_t)j * S, S); // dE[i, j]
        t += e[j] * dl[j];
      }
      for (int j = 0; j < n; j++) {
        dl[j] = e[j] * (dl[j] - t);
        axpy(dqi, dl[j], xp + (size_t)j * S, S);
        axpy(dxp + (size_t)j * S, e[j], da, S);
        axpy(dxp + (size_t)j * S, dl[j], qi, S);
      }
    }
  }
}

// One Adam step over n parameters (train/adam.ts: PyTorch 1.10's update), in one pass where the tf ops make
// thirteen. Every operation is the float32 operation the tf ops do, in their order (no fused multiply-add: plain
// SIMD has none), so the result is the same bits:
//   m1 = m b1 + g c1;  v1 = v b2 + (g g) c2;  p1 = p - (m1 / (sqrt(v1) / sqrtBc2 + eps)) stepSize
// with c1 = 1 - b1 and c2 = 1 - b2 as the caller rounds them; with `scaled`, g is first g * scale (the gradient
// clipping's tf.mul).
__attribute__((export_name("adam_step"))) void adam_step(int n, const float *p, const float *g, const float *m,
                                                         const float *v, float *p1, float *m1, float *v1, float b1,
                                                         float c1, float b2, float c2, float sqrtBc2, float eps,
                                                         float stepSize, int scaled, float scale) {
  const v128_t B1 = wasm_f32x4_splat(b1), C1 = wasm_f32x4_splat(c1), B2 = wasm_f32x4_splat(b2),
               C2 = wasm_f32x4_splat(c2), SB = wasm_f32x4_splat(sqrtBc2), EPS = wasm_f32x4_splat(eps),
               LR = wasm_f32x4_splat(stepSize), SC = wasm_f32x4_splat(scale);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    v128_t gi = wasm_v128_load(g + i);
    if (scaled) gi = wasm_f32x4_mul(gi, SC);
    v128_t mi = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(m + i), B1), wasm_f32x4_mul(gi, C1));
    v128_t vi = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(v + i), B2), wasm_f32x4_mul(wasm_f32x4_mul(gi, gi), C2));
    v128_t d = wasm_f32x4_add(wasm_f32x4_div(wasm_f32x4_sqrt(vi), SB), EPS);
    wasm_v128_store(p1 + i, wasm_f32x4_sub(wasm_v128_load(p + i), wasm_f32x4_mul(wasm_f32x4_div(mi, d), LR)));
    wasm_v128_store(m1 + i, mi);
    wasm_v128_store(v1 + i, vi);
  }
  for (; i < n; i++) {
    float gi = scaled ? g[i] * scale : g[i];
    float mi = m[i] * b1 + gi * c1;
    float vi = v[i] * b2 + (gi * gi) * c2;
    float d = __builtin_sqrtf(vi) / sqrtBc2 + eps;
    p1[i] = p[i] - (mi / d) * stepSize;
    m1[i] = mi;
    v1[i] = vi;
  }
}

// tanh, vectorised: tfjs-wasm's own Tanh is a scalar library call per element (~15 ns; its sigmoid is ~1 ns), and
// the model takes it of every region, word and GRU step. Odd Taylor series below |x| = 0.55 (9 terms: the next is
// < 3e-8 of the value); above, (1 - e) / (1 + e) with e = exp(-2|x|) in (0, 0.34), no cancellation. Within 2 ulp.

/** exp(x) for x <= 0, four at a time (expf_ above, vectorised); 0 below -87. */
static inline v128_t exp4_nonpos(v128_t x) {
  const v128_t lo = wasm_f32x4_splat(-87.0f);
  v128_t under = wasm_f32x4_lt(x, lo);
  x = wasm_f32x4_max(x, lo);
  v128_t kf = wasm_f32x4_floor(wasm_f32x4_add(wasm_f32x4_mul(x, wasm_f32x4_splat(1.44269504088896341f)),
                                              wasm_f32x4_splat(0.5f)));
  v128_t r = wasm_f32x4_sub(wasm_f32x4_sub(x, wasm_f32x4_mul(kf, wasm_f32x4_splat(0.693145751953125f))),
                            wasm_f32x4_mul(kf, wasm_f32x4_splat(1.42860682030941723212e-6f)));
  v128_t p = wasm_f32x4_splat(1.0f / 5040);
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 720));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 120));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 24));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 6));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(0.5f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f));
  v128_t scale = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(kf), wasm_i32x4_splat(127)), 23);
  return wasm_v128_andnot(wasm_f32x4_mul(p, scale), under);
}

static inline v128_t tanh4(v128_t x) {
  const v128_t sign = wasm_i32x4_splat((int)0x80000000);
  v128_t ax = wasm_v128_andnot(x, sign);
  // small |x|: x (1 + x^2 (c1 + x^2 (c2 + ...))), Horner in x^2
  v128_t x2 = wasm_f32x4_mul(ax, ax);
  v128_t p = wasm_f32x4_splat(6404582.0f / 10854718875.0f);
  p = wasm_f32x4_add(wasm_f32x4_mul(p, x2), wasm_f32x4_splat(-929569.0f / 638512875.0f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, x2), wasm_f32x4_splat(21844.0f / 6081075.0f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, x2), wasm_f32x4_splat(-1382.0f / 155925.0f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, x2), wasm_f32x4_splat(62.0f / 2835.0f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, x2), wasm_f32x4_splat(-17.0f / 315.0f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, x2), wasm_f32x4_splat(2.0f / 15.0f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, x2), wasm_f32x4_splat(-1.0f / 3.0f));
  v128_t small = wasm_f32x4_add(ax, wasm_f32x4_mul(ax, wasm_f32x4_mul(x2, p)));
  v128_t e = exp4_nonpos(wasm_f32x4_mul(ax, wasm_f32x4_splat(-2.0f)));
  v128_t one = wasm_f32x4_splat(1.0f);
  v128_t large = wasm_f32x4_div(wasm_f32x4_sub(one, e), wasm_f32x4_add(one, e));
  v128_t t = wasm_v128_bitselect(small, large, wasm_f32x4_lt(ax, wasm_f32x4_splat(0.55f)));
  return wasm_v128_or(t, wasm_v128_and(x, sign)); // the sign of x (tanh is odd)
}

__attribute__((export_name("tanh_f32"))) void tanh_f32(int n, const float *x, float *y) {
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(y + i, tanh4(wasm_v128_load(x + i)));
  if (i < n) {
    // the last 1-3 values through a vector of their own (read lane by lane: nothing past the end is touched)
    v128_t v = wasm_f32x4_make(x[i], i + 1 < n ? x[i + 1] : 0.0f, i + 2 < n ? x[i + 2] : 0.0f, 0.0f);
    v128_t t = tanh4(v);
    y[i] = wasm_f32x4_extract_lane(t, 0);
    if (i + 1 < n) y[i + 1] = wasm_f32x4_extract_lane(t, 1);
    if (i + 2 < n) y[i + 2] = wasm_f32x4_extract_lane(t, 2);
  }
}

// Transpose of `batch` row-major (rows x cols) matrices of 4-byte values: tfjs-wasm's own Transpose walks a generic
// n-d index per element (~13 ns: 40 ms for the GRU's 3072 x 1024 weight, made anew each step for every Linear).
// 4 x 4 tiles through registers, 32 x 32 blocks to stay in cache.
static inline void tile4(const float *x, int cols, float *y, int rows) {
  v128_t a = wasm_v128_load(x), b = wasm_v128_load(x + cols), c = wasm_v128_load(x + 2 * (size_t)cols),
         d = wasm_v128_load(x + 3 * (size_t)cols);
  v128_t ab0 = wasm_i32x4_shuffle(a, b, 0, 4, 1, 5), ab1 = wasm_i32x4_shuffle(a, b, 2, 6, 3, 7);
  v128_t cd0 = wasm_i32x4_shuffle(c, d, 0, 4, 1, 5), cd1 = wasm_i32x4_shuffle(c, d, 2, 6, 3, 7);
  wasm_v128_store(y, wasm_i64x2_shuffle(ab0, cd0, 0, 2));
  wasm_v128_store(y + rows, wasm_i64x2_shuffle(ab0, cd0, 1, 3));
  wasm_v128_store(y + 2 * (size_t)rows, wasm_i64x2_shuffle(ab1, cd1, 0, 2));
  wasm_v128_store(y + 3 * (size_t)rows, wasm_i64x2_shuffle(ab1, cd1, 1, 3));
}

__attribute__((export_name("transpose_f32"))) void transpose_f32(int batch, int rows, int cols, const float *x,
                                                                  float *y) {
  for (int t = 0; t < batch; t++, x += (size_t)rows * cols, y += (size_t)rows * cols)
    for (int i0 = 0; i0 < rows; i0 += 32)
      for (int j0 = 0; j0 < cols; j0 += 32) {
        int i1 = i0 + 32 < rows ? i0 + 32 : rows, j1 = j0 + 32 < cols ? j0 + 32 : cols;
        int i = i0;
        for (; i + 4 <= i1; i += 4) {
          int j = j0;
          for (; j + 4 <= j1; j += 4) tile4(x + (size_t)i * cols + j, cols, y + (size_t)j * rows + i, rows);
          for (; j < j1; j++)
            for (int q = 0; q < 4; q++) y[(size_t)j * rows + i + q] = x[(size_t)(i + q) * cols + j];
        }
        for (; i < i1; i++)
          for (int j = j0; j < j1; j++) y[(size_t)j * rows + i] = x[(size_t)i * cols + j];
      }
}
