// The wasm backend's Slice, SplitV and Unpack are replaced (src/ops/wasmKernels.ts) by versions that copy only
// the slice. They are checked here against index arithmetic on the source array, for contiguous and strided
// slices of every rank the model uses, and for int32 and bool tensors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/ops/backend.js';

await selectBackend('wasm');

/** Reference slice by index arithmetic on a row-major array. */
function refSlice(src: ArrayLike<number>, shape: number[], begin: number[], size: number[]): number[] {
  const out: number[] = [];
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const walk = (axis: number, off: number) => {
    if (axis === shape.length) {
      out.push(src[off]);
      return;
    }
    for (let i = 0; i < size[axis]; i++) walk(axis + 1, off + (begin[axis] + i) * strides[axis]);
  };
  walk(0, 0);
  return out;
}

const cases: { shape: number[]; begin: number[]; size: number[] }[] = [
  { shape: [7], begin: [2], size: [4] },
  { shape: [5, 6], begin: [1, 0], size: [3, 6] }, // contiguous rows
  { shape: [5, 6], begin: [1, 2], size: [3, 3] }, // strided
  { shape: [4, 3, 5], begin: [2, 0, 0], size: [1, 3, 5] }, // one image of a batch
  { shape: [4, 3, 5], begin: [0, 1, 1], size: [4, 2, 3] },
  { shape: [3, 4, 5, 6], begin: [1, 1, 0, 2], size: [2, 3, 5, 4] },
  { shape: [3, 4, 5, 6], begin: [0, 0, 0, 0], size: [3, 4, 5, 6] },
  { shape: [3, 4, 5, 6], begin: [1, 2, 3, 0], size: [1, 1, 1, 6] },
  { shape: [4, 0, 3], begin: [1, 0, 0], size: [2, 0, 3] },
];

test('wasm Slice copies exactly the slice (float32, int32, bool; contiguous and strided)', () => {
  for (const { shape, begin, size } of cases) {
    const n = shape.reduce((a, b) => a * b, 1);
    const src = Array.from({ length: n }, (_, i) => i * 0.5 - 3);
    const x = tf.tensor(src, shape);
    assert.deepEqual(
      Array.from(tf.slice(x, begin, size).dataSync()),
      refSlice(src, shape, begin, size),
      JSON.stringify({ shape, begin, size }),
    );
    const xi = tf.tensor(
      src.map((v) => Math.round(v * 2)),
      shape,
      'int32',
    );
    assert.deepEqual(
      Array.from(tf.slice(xi, begin, size).dataSync()),
      refSlice(
        src.map((v) => Math.round(v * 2)),
        shape,
        begin,
        size,
      ),
    );
    const xb = tf.tensor(
      src.map((v) => (v > 0 ? 1 : 0)),
      shape,
      'bool',
    );
    assert.deepEqual(
      Array.from(tf.slice(xb, begin, size).dataSync()),
      refSlice(
        src.map((v) => (v > 0 ? 1 : 0)),
        shape,
        begin,
        size,
      ),
    );
    tf.dispose([x, xi, xb]);
  }
});

test('wasm SplitV and Unpack give the slices along any axis', () => {
  const shape = [3, 4, 5];
  const src = Array.from({ length: 60 }, (_, i) => i);
  const x = tf.tensor(src, shape);
  for (let axis = 0; axis < 3; axis++) {
    const parts = tf.unstack(x, axis);
    assert.equal(parts.length, shape[axis]);
    parts.forEach((p, i) => {
      const begin = [0, 0, 0];
      const size = [...shape];
      begin[axis] = i;
      size[axis] = 1;
      assert.deepEqual(
        p.shape,
        shape.filter((_, a) => a !== axis),
      );
      assert.deepEqual(Array.from(p.dataSync()), refSlice(src, shape, begin, size));
    });
    const sizes = axis === 1 ? [1, 3] : axis === 2 ? [2, 1, 2] : [2, 1];
    let start = 0;
    tf.split(x, sizes, axis).forEach((p, i) => {
      const begin = [0, 0, 0];
      const size = [...shape];
      begin[axis] = start;
      size[axis] = sizes[i];
      start += sizes[i];
      assert.deepEqual(Array.from(p.dataSync()), refSlice(src, shape, begin, size));
    });
    tf.dispose(parts);
  }
  x.dispose();
});

test('a slice survives growth of the wasm heap after it was taken', () => {
  const x = tf.tensor2d(
    Array.from({ length: 12 }, (_, i) => i),
    [3, 4],
  );
  const s = tf.slice(x, [1, 1], [2, 2]);
  const big = tf.zeros([64 * 2 ** 20]); // 256 MB: forces the heap to grow
  assert.deepEqual(Array.from(s.dataSync()), [5, 6, 9, 10]);
  tf.dispose([x, s, big]);
});

test('Tanh (vsl_kernels.c tanh_f32) is within 2 ulp of tanh in float64, odd, and exact at 0, ±Infinity and NaN', () => {
  // both branches (|x| < 0.55 and above), their border, tiny and huge values, a length with a 1-3 value tail
  const xs: number[] = [0, -0, 1e-30, -1e-7, 0.1, 0.3, 0.5499, 0.55, 0.5501, 0.7, 1, 2.5, 5, 9, 9.1, 20, 44, 100, 1e30];
  for (let i = 0; i < 2001; i++) xs.push(-12 + (24 * i) / 2000);
  const all = Float32Array.from([...xs, ...xs.map((x) => -x), Infinity, -Infinity, NaN]);
  const y = tf.tanh(tf.tensor1d(all)).dataSync() as Float32Array;
  assert.equal(y.length, all.length);
  const ulp = (v: number) => {
    const f = new Float32Array([Math.abs(v)]);
    const u = new Uint32Array(f.buffer);
    u[0] += 1;
    return f[0] - Math.abs(v) || 1.4e-45;
  };
  let worst = 0;
  for (let i = 0; i < all.length - 3; i++) {
    const want = Math.tanh(all[i]);
    const err = Math.abs(y[i] - want) / ulp(Math.fround(want));
    worst = Math.max(worst, err);
    assert.ok(err <= 2, `tanh(${all[i]}) = ${y[i]}, float64 ${want}: ${err.toFixed(2)} ulp`);
  }
  assert.ok(worst > 0, 'the kernel differs from float64 somewhere: the check compares something');
  assert.deepEqual(Array.from(y.slice(-3)), [1, -1, NaN]);
  assert.ok(Object.is(y[xs.length + 1], -0) || y[xs.length + 1] === 0);
});

test('Transpose of the last two axes (vsl_kernels.c transpose_f32) moves every value, other permutations too', () => {
  // edges of its 4 x 4 tiles and 32 x 32 blocks, a batch, int32; a permutation it leaves to tfjs' own kernel
  for (const shape of [
    [1, 1],
    [3, 5],
    [33, 70],
    [64, 32],
    [2, 37, 9],
  ]) {
    for (const dtype of ['float32', 'int32'] as const) {
      const n = shape.reduce((a, b) => a * b, 1);
      const x = tf.tensor(
        Array.from({ length: n }, (_, i) => i),
        shape,
        dtype,
      );
      const r = shape.length;
      const perm = [...Array(r - 2).keys(), r - 1, r - 2];
      const y = tf.transpose(x, perm);
      assert.deepEqual(y.shape, [...shape.slice(0, -2), shape[r - 1], shape[r - 2]]);
      const got = y.dataSync();
      const [R, C] = shape.slice(-2);
      for (let i = 0; i < n; i++) {
        const [t, rest] = [Math.floor(i / (R * C)), i % (R * C)];
        const [col, row] = [Math.floor(rest / R), rest % R]; // y[t, col, row] = x[t, row, col]
        assert.equal(got[i], t * R * C + row * C + col, `${dtype} ${shape.join('x')} at ${i}`);
      }
      tf.dispose([x, y]);
    }
  }
  const z = tf.transpose(tf.tensor3d([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2]), [1, 0, 2]);
  assert.deepEqual(Array.from(z.dataSync()), [1, 2, 5, 6, 3, 4, 7, 8]);
});
